#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_packages
short_description: List the packages installed in an image (dpkg or rpm), each with its package URL
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - Reads the package inventory of an image under O(root) (a live builder, a mounted volume, a chroot
    or a test tree) and returns one entry per installed package with its name, version, architecture,
    source package and package URL (purl). The bake turns the list into the image's CycloneDX SBOM
    (C(bake_sbom)).
  - "Debian and Ubuntu: the dpkg status database C(/var/lib/dpkg/status) is read as a file under
    O(root), without following a symbolic link out of it; nothing of the image is run and no chroot is
    needed. A package is listed when dpkg counts it as installed (the C(Status) field ends in
    C(installed), C(ii) or C(hi) in C(dpkg-query)'s abbreviation); half-installed, unpacked,
    config-files and removed entries are left out."
  - "Amazon Linux and other RPM-based roots: the rpm database can only be read by rpm, so the host's
    C(rpm --root <root> --query --all) reads it (the image's own rpm is never run). A host without
    C(rpm) fails naming the distribution and what is missing. C(gpg-pubkey) entries (keys, not packages)
    are left out."
options: {}
extends_documentation_fragment:
  - bakery.ami.root
attributes:
  check_mode:
    description: The module only reads; it runs the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
  idempotent:
    description: The module never changes anything.
    support: full
seealso:
  - module: bakery.ami.bake_outputs
    description: Writes the CycloneDX SBOM the bake builds from this list.
notes:
  - Package URLs follow the purl specification, C(pkg:deb/debian/<name>@<version>?arch=<arch>&distro=<codename>)
    for Debian (C(ubuntu) for Ubuntu) and C(pkg:rpm/amazon/<name>@<version>-<release>?arch=<arch>&distro=amzn-<version>)
    for Amazon Linux (with C(epoch=) when the package has one).
"""

EXAMPLES = r"""
- name: List the packages of the running builder
  bakery.ami.image_packages:
  register: packages

- name: List the packages of a mounted volume
  bakery.ami.image_packages:
    root: /mnt/image
  register: packages

- name: Show how many there are
  ansible.builtin.debug:
    msg: "{{ packages.count }} {{ packages.format }} packages on {{ packages.distro }} {{ packages.codename }}"
"""

RETURN = r"""
root:
  description: The root read, as an absolute path without symbolic links.
  returned: always
  type: str
  sample: /mnt/image
distro:
  description: The C(ID) of the root's os-release (empty when it has none).
  returned: always
  type: str
  sample: debian
distro_version:
  description: The C(VERSION_ID) of the root's os-release.
  returned: always
  type: str
  sample: "12"
codename:
  description: The C(VERSION_CODENAME) of the root's os-release (empty on Amazon Linux).
  returned: always
  type: str
  sample: bookworm
format:
  description: Which package database was read.
  returned: always
  type: str
  choices: [deb, rpm]
  sample: deb
count:
  description: The number of packages listed.
  returned: always
  type: int
  sample: 169
packages:
  description: The installed packages, sorted by name, then architecture.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The package name.
      type: str
    version:
      description: The full version (C(epoch:version-release) for rpm when it has an epoch).
      type: str
    arch:
      description: The architecture (V(all) or V(noarch) for architecture-independent packages).
      type: str
    source:
      description: The source package it was built from (its own name when the database names none).
      type: str
    source_version:
      description: The version of the source package.
      type: str
    purl:
      description: The package URL.
      type: str
  sample:
    - name: libc6
      version: 2.36-9+deb12u10
      arch: amd64
      source: glibc
      source_version: 2.36-9+deb12u10
      purl: pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64&distro=bookworm
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._packages import build_request, run_inventory


def main():
    module = AnsibleModule(argument_spec=dict(root=dict(type="path", default="/")), supports_check_mode=True)

    def run(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    try:
        request = build_request(module.params, rpm_path=module.get_bin_path("rpm"))
        result = run_inventory(request, run=run)
    except BakeryError as exc:
        module.fail_json(msg=exc.msg, **exc.result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
