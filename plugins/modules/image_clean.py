#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_clean
short_description: Remove what must not ship in an image, then prove nothing is left
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - Scans an image under O(root) exactly as M(bakery.ami.image_scan) does, removes what it found
    through the collection's root-confined file layer, then scans again and fails if anything is
    left. This is what the C(bakery.ami.generalize) role runs.
  - "Order: the scan; a stop when V(secrets) found files that are not the builder's own (see
    O(keep_secret_files), O(remove_secret_files)), before anything changes; C(cloud-init clean) for
    cloud-init's categories (O(cloud_init_clean)); every finding's action in category order; the
    verifying scan."
  - "Every path is resolved inside O(root) one component at a time, and a symbolic link is never
    followed out of it: a root whose C(/etc) links to a host directory has only its own files
    changed. Removals never cross into another filesystem mounted inside the root."
  - "C(cloud-init clean) is the image's own program: with O(root=/) it runs directly (the image's
    own system); with any other root it runs in private mount, PID, network, IPC and UTS
    namespaces, chrooted into a nodev,nosuid bind of the root with a device-less C(/dev) and
    without the capabilities that leave a chroot. It gets the flags the image's cloud-init
    version has (read from its installed package): C(--logs), C(--seed) when V(cloud_init_seed) is
    selected, C(--machine-id) (22.3 and later) when V(machine_id) is, and C(--configs network) (23.4
    and later) when V(network_config) is and cloud-init renders the network at boot. It is skipped,
    and the same paths removed file by file, when C(/var/lib/cloud/scripts) holds files (clean would
    delete them), when an excluded path is one it would remove, when the image has no cloud-init,
    or when it fails."
  - "C(--configs ssh_config) is not used: it removes C(/etc/ssh/sshd_config.d/50-cloud-init.conf),
    which holds the password-login policy the image's sshd applies (C(PasswordAuthentication no)
    where sshd's own default is yes); the C(bakery.ami.cloudinit) role decides about it.
    C(--configs datasource) (25.2) is not used: it starts the datasource discovery of the image."
  - "Where cloud-init 22.4, or a later one without a running systemd (a chroot), deletes
    C(/etc/machine-id), an empty file is put back with its mode, so systemd makes a new id at first
    boot on every systemd version."
  - It needs no AWS access.
options:
  defer:
    description:
      - Categories left for a final step run by the caller, when O(root) is the running system
        (resolves to V(/)) - what the session still needs (the SSH host keys for a new login, the
        sudoers file cloud-init wrote, the bake's key) and the logs a live system keeps writing.
        They are returned in RV(deferred) instead of being removed.
      - With any other root the module cleans every selected category itself, these included.
    type: list
    elements: str
    default: []
  cloud_init_clean:
    description:
      - Run the image's C(cloud-init clean) for cloud-init's categories when the image has it (see
        above); V(false) removes the same paths file by file.
    type: bool
    default: true
extends_documentation_fragment:
  - bakery.ami.root
  - bakery.ami.hygiene
attributes:
  check_mode:
    description: Scans and reports what would be removed (RV(actions)), changes nothing and runs nothing in the image.
    support: full
  diff_mode:
    description:
      - The removed and emptied paths, and the lines of the files it edits (root's line of C(/etc/shadow)
        with the hash shown as C(<hash>), the bake's key lines, C(/etc/hostname), MAC lines).
    support: full
  idempotent:
    description: A second run on a cleaned image finds nothing and changes nothing.
    support: full
seealso:
  - module: bakery.ami.image_scan
notes:
  - Fails, listing the files, when V(secrets) finds secrets in a file that is neither in
    O(keep_secret_files) nor in O(remove_secret_files); nothing has changed then.
  - Fails, listing what is left, when the verifying scan finds anything outside O(defer).
"""

EXAMPLES = r"""
- name: Clean a mounted volume before it is snapshotted
  bakery.ami.image_clean:
    root: /mnt/volume

- name: Clean the live builder; the session's own needs go in a final step
  bakery.ami.image_clean:
    defer: [ssh_host_keys, cloud_init_sudoers, bake_traces, logs, login_records]
    bake_authorized_key: "{{ bake_public_key }}"
    remove_secret_files: [/opt/myapp/.env]   # written again at launch from the secrets manager
  register: cleaned

- name: Show what the final step still has to remove
  ansible.builtin.debug:
    msg: "{{ cleaned.deferred | map(attribute='path') | list }}"
"""

RETURN = r"""
root:
  description: The cleaned root, as an absolute path without symbolic links.
  returned: always
  type: str
  sample: /mnt/volume
categories:
  description: The categories cleaned, in order.
  returned: always
  type: list
  elements: str
findings:
  description: What the first scan found (the same entries as M(bakery.ami.image_scan)'s RV(bakery.ami.image_scan#module:findings)).
  returned: always
  type: list
  elements: dict
counts:
  description: The number of findings of the first scan per category.
  returned: always
  type: dict
clean:
  description: Whether the first scan found nothing.
  returned: always
  type: bool
review:
  description: Findings of V(secrets) that need a decision; when not empty the module failed before any change.
  returned: always
  type: list
  elements: dict
actions:
  description: What was done (in check mode, what would be done), one entry per item, in order.
  returned: always
  type: list
  elements: dict
  sample: [{path: /etc/ssh/ssh_host_ed25519_key, category: ssh_host_keys, action: remove}]
cloud_init_clean:
  description: Whether C(cloud-init clean) ran, its command, the image's cloud-init version, exit code and output, or why it did not run.
  returned: always
  type: dict
  sample: {run: true, argv: [/usr/bin/cloud-init, clean, --logs, --seed, --machine-id], version: "22.4", rc: 0}
deferred:
  description: The findings of the categories in O(defer) (with the root V(/)), left for the caller's final step.
  returned: always
  type: list
  elements: dict
remaining:
  description: What the verifying scan still found outside O(defer) (the module failed when not empty).
  returned: always
  type: list
  elements: dict
failed:
  description: Actions that failed, with the error (the module failed when not empty).
  returned: always
  type: list
  elements: dict
kept_secret_files:
  description: Files whose secrets O(keep_secret_files) accepts (they ship).
  returned: when V(secrets) is selected
  type: list
  elements: dict
content_scan:
  description: What the content search read and skipped, as in M(bakery.ami.image_scan).
  returned: when V(secrets) or V(backup_files) is selected
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
check_mode:
  description: Whether this was a check-mode run (nothing changed).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._hygiene import (
    ARGUMENT_SPEC,
    build_request,
    payload_dir,
    run_clean,
    warnings,
)


def main():
    spec = dict(ARGUMENT_SPEC,
                defer=dict(type="list", elements="str", default=[]),
                cloud_init_clean=dict(type="bool", default=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    try:
        request = build_request(module.params, payload_dir(__file__, module.params["root"]))
        result = run_clean(request, check_mode=module.check_mode, run=module.run_command)
    except BakeryError as exc:
        failed = dict(exc.result)
        diff = failed.pop("diff", None)
        if module._diff and diff:  # pylint: disable=protected-access
            failed["diff"] = diff
        failed.setdefault("changed", bool(failed.get("actions")))
        module.fail_json(msg=exc.msg, **failed)
    for warning in warnings(result):
        module.warn(warning.replace("image_scan:", "image_clean:", 1))
    if result["cloud_init_clean"].get("rc") not in (None, 0):
        module.warn("image_clean: %s: %s" % (result["cloud_init_clean"]["reason"],
                                             (result["cloud_init_clean"].get("stderr") or "").strip()[-500:]))
    diff = result.pop("diff")
    if module._diff and result["changed"]:  # pylint: disable=protected-access
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
