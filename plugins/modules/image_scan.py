#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_scan
short_description: Find what must not ship in an image (keys, histories, machine identity, builder state)
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - An image is a copy of a disk, so whatever the builder left behind ships to every instance
    started from it, and for shared or public images to strangers. This module scans an image
    (a live builder, a mounted volume of an image someone else built, a chroot or a fixture tree
    under O(root)) for everything the C(bakery.ami.generalize) role removes, and reports
    each item with its path, category and reason.
  - It only reads. It needs no AWS access.
  - "The categories (select them with O(categories)):"
  - "V(ssh_host_keys): C(/etc/ssh/ssh_host_*); every instance would share one SSH host identity."
  - "V(authorized_keys): C(~/.ssh/authorized_keys) and C(authorized_keys2) holding keys, of root
    and of every user (homes read from the image's C(/etc/passwd), plus every directory under
    C(/home)), except the users in O(keep_authorized_keys)."
  - "V(shell_history): histories in every home (bash, zsh, sh, ash, csh, fish, python, mysql,
    psql, sqlite, redis-cli, node, C(.lesshst), C(.viminfo))."
  - "V(cloud_init_state): the entries of C(/var/lib/cloud) other than C(seed) and C(scripts)
    (the instance link, the contents of C(instances), C(data), C(sem) ...), C(/var/log/cloud-init*.log)
    and C(/run/cloud-init) when C(/run) is part of the image (not a mount point on this host)."
  - "V(cloud_init_seed): the contents of C(/var/lib/cloud/seed), which cloud-init would prefer
    to the cloud's datasource."
  - "V(machine_id): a non-empty C(/etc/machine-id) (other than C(uninitialized)),
    C(/var/lib/dbus/machine-id) unless it links to C(/etc/machine-id), and systemd's
    C(/var/lib/systemd/random-seed) and C(credential.secret)."
  - "V(dhcp_leases): leases and client identities of dhclient, NetworkManager, dhcpcd and
    systemd-networkd."
  - "V(temp_files): everything in C(/tmp) and C(/var/tmp)."
  - "V(logs): the journal's machine directories and every non-empty file under C(/var/log)
    (cloud-init's logs excepted: they belong to V(cloud_init_state))."
  - "V(package_caches): apt's C(*.bin) caches, downloaded C(.deb) files and package lists; the
    dnf, libdnf5 and yum caches."
  - "V(cloud_init_sudoers): C(/etc/sudoers.d/90-cloud-init-users)."
  - "V(root_password): a usable or empty password for root in C(/etc/shadow)."
  - "V(bake_traces): authorized_keys files holding O(bake_authorized_key), the paths in
    O(bake_paths), and Ansible's C(~/.ansible/tmp) and C(~/.ansible_async) in every home."
  - Paths are resolved as a process chrooted into O(root) would see them. Symbolic links are
    examined with lstat and never followed out of O(root); a link is reported as itself.
options:
  categories:
    description:
      - The categories to scan for. V(all) selects every category.
    type: list
    elements: str
    default: [all]
  keep_authorized_keys:
    description:
      - Users whose C(authorized_keys) may stay in the image (not findings of V(authorized_keys)).
      - The bake's temporary key is still reported in their files (V(bake_traces)).
    type: list
    elements: str
    default: []
  exclude:
    description:
      - Paths inside the image that are not findings, with everything below them. Shell-style
        patterns are allowed (V(/var/log/myapp/*)); C(*) also matches C(/).
    type: list
    elements: path
    default: []
  bake_authorized_key:
    description:
      - The public key line the bake installed for its connection (C(ssh-ed25519 AAAA... comment)).
        Every C(authorized_keys) holding this key (compared by the key itself, so options and
        comments do not matter) is a V(bake_traces) finding.
    type: str
  bake_paths:
    description:
      - Paths inside the image that the bake left and that must be gone, such as a temporary
        private key. Each one that exists is a V(bake_traces) finding.
    type: list
    elements: path
    default: []
  fail_on_findings:
    description:
      - Fail the task when anything is found. The message names the count per category; the
        findings are returned as well.
    type: bool
    default: false
extends_documentation_fragment:
  - bakery.ami.root
  - bakery.ami.attributes
  - bakery.ami.group_defaults
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
notes:
  - No AWS access is needed; the module only reads files under O(root).
  - The directory Ansible unpacked this module into while it runs (C(ansible_*_payload_*) in the
    system temp dir, with pipelining) is never reported.
  - When O(root=/) on a running system, C(/run) is a separate file system that is not part of
    the snapshot, so its contents are not reported; under any other root whose C(/run) is a plain
    directory they are.
"""

EXAMPLES = r"""
- name: Prove that the builder holds nothing private before it is snapshotted
  bakery.ami.image_scan:
    fail_on_findings: true

- name: Scan a mounted volume of an image someone else built
  bakery.ami.image_scan:
    root: /mnt/their-image
  register: scan

- name: Show what was found
  ansible.builtin.debug:
    msg: "{{ scan.findings | map(attribute='path') | list }}"

- name: Only keys and identity; the service user keeps its authorized_keys
  bakery.ami.image_scan:
    root: /mnt/image
    categories: [ssh_host_keys, authorized_keys, machine_id, bake_traces]
    keep_authorized_keys: [deploy]
    bake_authorized_key: "{{ lookup('ansible.builtin.file', bake_key_path ~ '.pub') }}"
"""

RETURN = r"""
root:
  description: The scanned root, as an absolute path without symbolic links.
  returned: always
  type: str
  sample: /mnt/image
categories:
  description: The categories scanned, in report order.
  returned: always
  type: list
  elements: str
  sample: [ssh_host_keys, authorized_keys]
findings:
  description: One entry per item found, in category order.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path inside the image, without symbolic links before its last component.
      type: str
      sample: /etc/ssh/ssh_host_ed25519_key
    category:
      description: The category that found it.
      type: str
      sample: ssh_host_keys
    reason:
      description: Why it must not ship.
      type: str
      sample: SSH private host key shared by every instance
    action:
      description:
        - What the C(bakery.ami.generalize) role does with it. V(remove) deletes the file,
          link or directory; V(truncate) empties the file keeping mode and owner; V(lock_password)
          locks root's password; V(remove_key) deletes the lines holding the bake's key and keeps
          the rest of the file.
      type: str
      sample: remove
    root_path:
      description: The same item as a path on the host running the module (RV(root) joined with RV(findings[].path)).
      type: str
      sample: /mnt/image/etc/ssh/ssh_host_ed25519_key
  sample:
    - path: /etc/ssh/ssh_host_ed25519_key
      category: ssh_host_keys
      reason: SSH private host key shared by every instance
      action: remove
      root_path: /mnt/image/etc/ssh/ssh_host_ed25519_key
counts:
  description: The number of findings per scanned category (zero included).
  returned: always
  type: dict
  sample: {ssh_host_keys: 2, authorized_keys: 0}
clean:
  description: Whether nothing was found.
  returned: always
  type: bool
  sample: false
"""

import fnmatch
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bakery.ami.plugins.module_utils._group import accept_group_defaults
from ansible_collections.bakery.ami.plugins.module_utils._hygiene import (
    HygieneError,
    scan,
    summary,
)


def own_payload_dir(root):
    """The image path of the directory AnsiballZ unpacked this module into, when it is inside root.

    With pipelining the running scan itself sits in the system temp dir (/tmp/ansible_*_payload_*)
    and would report itself as a temporary file of the builder.
    """
    path = os.path.realpath(__file__)
    while path != os.path.dirname(path):
        if fnmatch.fnmatchcase(os.path.basename(path), "ansible_*_payload_*") and os.path.isdir(path):
            real_root = os.path.realpath(root)
            if real_root == "/":
                return path
            if path.startswith(real_root + "/"):
                return path[len(real_root):]
            return None
        path = os.path.dirname(path)
    return None


def main():
    module = AnsibleModule(
        argument_spec=accept_group_defaults(
            dict(
                root=dict(type="path", default="/"),
                categories=dict(type="list", elements="str", default=["all"]),
                keep_authorized_keys=dict(type="list", elements="str", default=[], no_log=False),
                exclude=dict(type="list", elements="path", default=[]),
                bake_authorized_key=dict(type="str", no_log=False),
                bake_paths=dict(type="list", elements="path", default=[]),
                fail_on_findings=dict(type="bool", default=False),
            )
        ),
        supports_check_mode=True,
    )
    params = module.params
    exclude = list(params["exclude"])
    own = own_payload_dir(params["root"]) if os.path.isdir(params["root"]) else None
    if own:
        exclude.append(own)
    try:
        result = scan(
            params["root"],
            categories=params["categories"],
            keep_authorized_keys=params["keep_authorized_keys"],
            exclude=exclude,
            bake_authorized_key=params["bake_authorized_key"],
            bake_paths=params["bake_paths"],
        )
    except HygieneError as exc:
        module.fail_json(msg=str(exc))
    if params["fail_on_findings"] and not result["clean"]:
        module.fail_json(msg="image_scan: the image is not clean: " + summary(result), changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
