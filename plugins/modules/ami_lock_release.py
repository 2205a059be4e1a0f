#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ami_lock_release
short_description: Pin an image's Amazon Linux release, or advance or release that pin
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - By default Amazon Linux follows the newest packages of its repositories, so an update applied
    long after a bake can pull in breaking changes. This module locks an image (a live builder, a
    mounted volume, a chroot or a fixture tree under O(root)) to one Amazon Linux release, so that
    every instance launched from it installs packages from that release only, until a new bake
    moves the lock forward on purpose.
  - The generation is read from C(/etc/os-release) (or C(/usr/lib/os-release)) under O(root).
  - B(Amazon Linux 2023) is locked by writing the release to C(/etc/dnf/vars/releasever)
    (V(latest) when unlocking).
  - B(The Amazon Linux AMI) (2018.03 and earlier) is locked by setting C(releasever) in the
    C([main]) section of C(/etc/yum.conf) and C(repo_releasever) in the cloud-init drop-in
    C(/etc/cloud/cloud.cfg.d/90_bakery_release_lock.cfg), which Amazon's cloud-init applies at
    every new instance. O(launch_updates) sets C(repo_upgrade) in the same drop-in.
  - B(Amazon Linux 2) cannot be locked, because its repositories are not versioned by release.
    The module says so (RV(lockable=false), RV(locked=false)) and only applies O(launch_updates)
    through C(repo_upgrade) in the drop-in.
  - Any other distribution is skipped (RV(skipped=true)) with the detected distribution in RV(msg).
  - Edits are minimal (comments, other keys, mode and owner of each file are kept), every write
    is atomic, and nothing is written unless every input is valid. A rerun changes nothing.
  - Every file under O(root) is read and written through the collection's root-confined file
    layer. A symbolic link in the image never leads outside it, and a link at a file's path is
    replaced, never written through.
  - User-data given at launch still wins over the image's cloud-init files.
options:
  release:
    description:
      - V(source) locks to the release the image is on now, read from the image itself
        (C(/etc/system-release) or the os-release C(PRETTY_NAME) on Amazon Linux 2023,
        C(VERSION_ID) on the Amazon Linux AMI), or from O(ami_name) when that is given.
      - V(latest) unlocks, so the image follows the newest release. Not possible on Amazon Linux 2.
      - Anything else is an explicit release, checked against the form of the generation,
        C(2023.<minor>.<YYYYMMDD>) such as V(2023.6.20241010) on Amazon Linux 2023,
        C(YYYY.MM) such as V(2018.03) on the Amazon Linux AMI. Amazon Linux 2 has none.
        The whole value must match, in ASCII digits (0-9) only.
    type: str
    default: source
  ami_name:
    description:
      - The name of the source AMI the image was built from. With O(release=source), the release
        is read from this name, for example V(2023.6.20241010) from
        V(al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64) and V(2018.03) from
        V(amzn-ami-hvm-2018.03.0.20231218.0-x86_64-gp2).
      - The name must be of the same generation as the image under O(root). Only allowed with
        O(release=source).
    type: str
  launch_updates:
    description:
      - Which updates new instances install at first boot, through cloud-init's C(repo_upgrade),
        where the generation supports it (the Amazon Linux AMI and Amazon Linux 2).
      - Unset leaves the image's setting as it is.
      - Amazon Linux 2023 installs no updates at launch; only V(none) (a no-op) is accepted there.
    type: str
    choices: [security, bugfix, all, none]
extends_documentation_fragment:
  - bakery.ami.root
attributes:
  check_mode:
    description: Reports what would change without writing anything.
    support: full
  diff_mode:
    description: Returns the before and after text of each file.
    support: full
  idempotent:
    description: A rerun with the same options changes nothing.
    support: full
notes:
  - No AWS access is needed; the module only reads and writes files under O(root).
  - The Amazon Linux AMI applies C(repo_releasever) from cloud-init once per instance; the lock
    in C(/etc/yum.conf) holds for the builder itself and for instances whose user-data overrides
    the drop-in.
seealso:
  - module: bakery.ami.ami_find
"""

EXAMPLES = r"""
- name: Lock the builder to the release of the source AMI it was launched from
  bakery.ami.ami_lock_release:
    ami_name: al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64
  register: lock

- name: Lock a mounted volume to the release it is on now
  bakery.ami.ami_lock_release:
    root: /mnt/image

- name: Move the lock forward to a newer release
  bakery.ami.ami_lock_release:
    release: 2023.7.20250331

- name: Unlock (follow the newest release; not advised in production)
  bakery.ami.ami_lock_release:
    release: latest

- name: Lock a 2018.03 image and make new instances install only security updates at launch
  bakery.ami.ami_lock_release:
    release: "2018.03"
    launch_updates: security

- name: Amazon Linux 2 - no release lock exists, but turn updates at launch off
  bakery.ami.ami_lock_release:
    launch_updates: none
"""

RETURN = r"""
generation:
  description: V(al2023), V(al2) or V(amzn) (the Amazon Linux AMI); null for other distributions.
  returned: always
  type: str
  sample: al2023
distribution:
  description: The distribution found under O(root), from its os-release.
  returned: always
  type: str
  sample: Amazon Linux 2023.6.20241010
release_before:
  description:
    - The release the image was pinned to before this task (V(latest) when floating).
    - Null when nothing was pinned explicitly (on Amazon Linux 2023 dnf then follows the
      installed system-release version) and on Amazon Linux 2.
  returned: always
  type: str
  sample: latest
release:
  description: The release the image is pinned to after this task (V(latest) when unlocked); null when not lockable.
  returned: always
  type: str
  sample: 2023.6.20241010
locked:
  description: Whether the image is now pinned to one release.
  returned: always
  type: bool
  sample: true
lockable:
  description: Whether the generation has a release lock at all (false on Amazon Linux 2 and other distributions).
  returned: always
  type: bool
  sample: true
files:
  description: The files written (or that would be written in check mode), as paths on this host.
  returned: always
  type: list
  elements: str
  sample: [/etc/dnf/vars/releasever]
skipped:
  description: True when O(root) holds no Amazon Linux.
  returned: when skipped
  type: bool
  sample: true
msg:
  description: What was done, in words.
  returned: always
  type: str
  sample: Amazon Linux 2023 locked to release 2023.6.20241010 through /etc/dnf/vars/releasever
diff:
  description: Before and after text of each file, in diff mode.
  returned: when diff mode is on and something changed
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._release import (
    apply_plan,
    build_request,
    diff_of,
    plan_request,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", default="/"),
            release=dict(type="str", default="source"),
            ami_name=dict(type="str"),
            launch_updates=dict(type="str", choices=["security", "bugfix", "all", "none"]),
        ),
        supports_check_mode=True,
    )
    result: dict = {}
    try:
        plan = plan_request(build_request(module.params))
        result = _report(plan, module)
        if plan.changes and not module.check_mode:
            apply_plan(plan)
    except BakeryError as exc:  # ReleaseLockError: bad input, an unreadable or unwritable root
        module.fail_json(**dict(result, msg=exc.msg, **exc.result))
    module.exit_json(**result)


def _report(plan, module) -> dict:
    """The result of a plan (and its warnings, told to the user once)."""
    result = dict(
        changed=bool(plan.changes),
        generation=plan.generation,
        distribution=plan.distribution,
        release_before=plan.release_before,
        release=plan.release,
        locked=plan.locked,
        lockable=plan.lockable,
        files=[change.path for change in plan.changes],
        msg=plan.msg,
    )
    if plan.skipped:
        result["skipped"] = True
    if module._diff and plan.changes:
        result["diff"] = diff_of(plan)
    for warning in plan.warnings:
        module.warn(warning)
    return result


if __name__ == "__main__":
    main()
