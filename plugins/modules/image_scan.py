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
    under O(root)) for everything M(bakery.ami.image_clean) and the C(bakery.ami.generalize) role
    remove, and reports each item with its path, category, reason and action.
  - It only reads. It needs no AWS access. Standard library only, so it runs on any builder with Python 3.7+.
options:
  fail_on_findings:
    description:
      - Fail the task when anything is found. The message names the count per category; the
        findings are returned as well.
    type: bool
    default: false
extends_documentation_fragment:
  - bakery.ami.root
  - bakery.ami.hygiene
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
  - module: bakery.ami.image_clean
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
      description: Why it must not ship. For V(secrets), the kind of secret and its line, never the secret.
      type: str
      sample: SSH private host key shared by every instance
    action:
      description:
        - What M(bakery.ami.image_clean) does with it. V(remove) deletes the file, link or directory;
          V(truncate) empties the file keeping mode and owner; V(lock_password) locks root's password;
          V(remove_key) deletes the lines holding the bake's key and keeps the rest of the file;
          V(reset_hostname) writes C(localhost) to C(/etc/hostname); V(strip_lines) deletes the
          C(HWADDR=)/C(MACADDR=) lines; V(review) nothing automatic (see O(keep_secret_files) and
          O(remove_secret_files)).
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
review:
  description: The findings whose action is V(review) (secrets in files that are not the builder's own).
  returned: always
  type: list
  elements: dict
  sample:
    - path: /etc/default/myapp
      category: secrets
      reason: assignment to API_TOKEN (line 2)
      action: review
      root_path: /mnt/image/etc/default/myapp
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
kept_secret_files:
  description: Files whose secrets O(keep_secret_files) accepts (they ship), with the reason.
  returned: when V(secrets) is scanned
  type: list
  elements: dict
  sample: [{path: /opt/app/.env, reason: "assignment to API_TOKEN (line 1)"}]
content_scan:
  description: What the content search read and skipped.
  returned: when V(secrets) or V(backup_files) is scanned
  type: dict
  contains:
    files:
      description: Files read.
      type: int
    bytes:
      description: Bytes read.
      type: int
    skipped_large:
      description: Files larger than O(content_max_file_size), not read.
      type: int
    skipped_binary:
      description: Files with a NUL byte in their first 8 KiB, not searched.
      type: int
    skipped_package_owned:
      description: Files with a match that a package installed unchanged (dpkg), not reported.
      type: int
    complete:
      description: False when O(content_max_files) stopped the search.
      type: bool
    package_check:
      description: How files a package installed were recognised, or why they were not.
      type: str
    max_file_size:
      description: O(content_max_file_size).
      type: int
    max_files:
      description: O(content_max_files).
      type: int
  sample: {files: 235, bytes: 3372130, skipped_large: 0, skipped_binary: 3, skipped_package_owned: 0,
           complete: true, package_check: "dpkg (md5sums and conffiles): ...", max_file_size: 1048576, max_files: 20000}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._hygiene import (
    ARGUMENT_SPEC,
    build_request,
    payload_dir,
    run_scan,
    summary,
    warnings,
)


def own_payload_dir(root):
    """The image path of the directory AnsiballZ unpacked this module into, when it is inside root."""
    return payload_dir(__file__, root)


def main():
    spec = dict(ARGUMENT_SPEC, fail_on_findings=dict(type="bool", default=False))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    try:
        request = build_request(module.params, own_payload_dir(module.params["root"]))
        result = run_scan(request)
    except BakeryError as exc:  # HygieneError, RootError: bad input, an unreadable root
        module.fail_json(msg=exc.msg, **exc.result)
    for warning in warnings(result):
        module.warn(warning)
    if request.fail_on_findings and not result["clean"]:
        module.fail_json(msg="image_scan: the image is not clean: " + summary(result), changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
