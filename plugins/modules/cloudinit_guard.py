#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudinit_guard
short_description: Keep what a bake customized from being rewritten by cloud-init at first boot
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - Every new EC2 instance has a new instance ID, so cloud-init runs its per-instance modules again
    on the first boot of an image, and the defaults under C(/etc/cloud) can rewrite what the bake
    customized (the hostname, C(/etc/hosts), sshd settings, apt sources, the network configuration).
  - This module writes one cloud-init drop-in, C(/etc/cloud/cloud.cfg.d/)O(filename) under O(root),
    holding the settings of the chosen O(protect) protections, the raw O(settings), and, for
    O(disable_modules), each affected module list in full.
  - It reads the image's effective configuration the way cloud-init does, C(/etc/cloud/cloud.cfg)
    then every C(/etc/cloud/cloud.cfg.d/*.cfg) in sorted file-name order, where dictionaries merge
    recursively and a list or scalar of a later file replaces the earlier one. Because a later list
    replaces an earlier one, a module is removed by writing the whole list without it, computed from
    the image's own lists.
  - Files that sort after the drop-in and set one of its keys back are reported in RV(conflicts)
    (and warned about); they win over the guard.
  - The drop-in starts with C(#cloud-config), is written atomically, and is validated with
    C(cloud-init schema --config-file) where cloud-init is installed under O(root) (in a chroot
    when O(root) is not V(/)). Keys the schema does not know, such as Amazon Linux's
    C(repo_upgrade), are checked by the module itself.
  - B(User-data given at launch still wins) over everything under C(/etc/cloud), and so does
    vendor-data. The guard protects the image from its own defaults, not from what the person
    launching it asks for.
  - With O(audit), the module returns RV(first_boot_changes), what cloud-init will still change at
    first boot after the guard, and with O(customized_paths) the RV(unprotected) files among them.
  - Bad input (an unknown protection, a O(filename) with a path or another suffix, a O(root) without
    C(/etc/cloud), a malformed existing configuration file, settings cloud-init's schema rejects)
    fails with a message naming the option or the file and line, and writes nothing.
options:
  protect:
    description:
      - Named protections. Each maps, in one table of the collection, to the cloud-init settings or
        module removals that keep that part of the image as baked.
      - V(ssh_config) C(ssh_pwauth=unchanged), so set_passwords leaves sshd_config and sshd_config.d alone.
      - V(hostname) C(preserve_hostname=true).
      - V(etc_hosts) C(manage_etc_hosts=false).
      - V(resolv_conf) C(manage_resolv_conf=false).
      - V(network) C(network.config=disabled).
      - V(apt_sources) C(apt.preserve_sources_list=true).
      - V(yum_repos) removes C(yum_add_repo).
      - V(packages) C(package_update), C(package_upgrade), C(package_reboot_if_required) false; on
        Amazon Linux also C(repo_upgrade=none).
      - V(default_user) removes C(users_groups) (no default user is created; bake the user the
        launch key pair should reach).
      - V(mounts) removes C(mounts) (no ephemeral or swap lines in /etc/fstab).
      - V(ntp) C(ntp.enabled=false).
      - V(locale) removes C(locale).
      - V(timezone) removes C(timezone).
      - V(growpart) C(growpart.mode=off) and C(resize_rootfs=false).
    type: list
    elements: str
    default: []
  settings:
    description:
      - Extra raw cloud-init keys to write into the drop-in, merged over the protections' settings.
      - A key that contradicts a chosen protection is refused.
      - C(cloud_init_modules), C(cloud_config_modules) and C(cloud_final_modules) cannot be given
        together with O(disable_modules).
    type: dict
    default: {}
  disable_modules:
    description:
      - cloud-init module names (with or without C(cc_); C(-) and C(_) are the same) to drop from
        C(cloud_init_modules), C(cloud_config_modules) and C(cloud_final_modules).
      - Each list that contains one of them is written in full without it, computed from the
        image's effective configuration (an entry's frequency is kept).
      - A name that none of the image's module lists contains is refused (a typo would otherwise
        write a drop-in that protects nothing). When the image's files set no module list at all,
        cloud-init's built-in lists apply and the names cannot be checked; that is a warning.
    type: list
    elements: str
    default: []
  filename:
    description:
      - File name of the drop-in in C(/etc/cloud/cloud.cfg.d/). A plain name ending in C(.cfg);
        a path separator, C(..) or another suffix is refused. It should sort after the files it
        overrides.
    type: str
    default: 99_bakery_guard.cfg
  audit:
    description:
      - Compute RV(first_boot_changes) and RV(unprotected).
    type: bool
    default: true
  customized_paths:
    description:
      - Absolute paths in the image that the bake changed. Those a module will still rewrite (or
        override, such as a C(sshd_config.d) drop-in) at first boot are returned in RV(unprotected).
    type: list
    elements: str
    default: []
  fail_on_unprotected:
    description:
      - Fail, writing nothing, when RV(unprotected) is not empty. Needs O(audit=true).
    type: bool
    default: false
extends_documentation_fragment:
  - bakery.ami.root
  - bakery.ami.attributes
  - bakery.ami.group_defaults
attributes:
  check_mode:
    description:
      - Reports what would change without writing the drop-in (schema validation still runs,
        through a temporary file in the image's /tmp that is removed at once).
    support: full
  diff_mode:
    description: Returns the before and after text of the drop-in.
    support: full
  idempotent:
    description: A rerun with the same options changes nothing.
    support: full
notes:
  - No AWS access is needed; the module only reads and writes files under O(root).
  - Without any of O(protect), O(settings) or O(disable_modules) the module only audits and writes nothing.
  - Files under C(/run/cloud-init), the kernel command line, vendor-data and user-data are not
    read, since they exist only on the launched instance; they override the drop-in.
seealso:
  - module: bakery.ami.ami_lock_release
  - module: bakery.ami.image_scan
"""

EXAMPLES = r"""
- name: Keep sshd, the hostname, /etc/hosts and the network as baked
  bakery.ami.cloudinit_guard:
    protect: [ssh_config, hostname, etc_hosts, network]
    customized_paths:
      - /etc/ssh/sshd_config.d/60-bake.conf
      - /etc/hosts
    fail_on_unprotected: true
  register: guard

- name: Guard a mounted volume, stop package upgrades and drop the landscape module
  bakery.ami.cloudinit_guard:
    root: /mnt/image
    protect: [packages, apt_sources]
    disable_modules: [landscape]
    settings:
      ssh_deletekeys: true

- name: Only audit what cloud-init will change at first boot
  bakery.ami.cloudinit_guard:
    customized_paths: [/etc/hostname, /etc/fstab]
  register: audit
"""

RETURN = r"""
path:
  description: The drop-in's path on this host (under O(root)).
  returned: always
  type: str
  sample: /etc/cloud/cloud.cfg.d/99_bakery_guard.cfg
written:
  description: Whether the drop-in was written (would be, in check mode).
  returned: always
  type: bool
  sample: true
effective:
  description:
    - The merged value, after the guard and every later file, of each key the guard manages,
      by dotted key. A value differing from the drop-in's means a later file wins (see RV(conflicts)).
  returned: always
  type: dict
  sample: {"preserve_hostname": true, "apt.preserve_sources_list": true}
conflicts:
  description: Files sorting after the drop-in that set one of its keys to another value.
  returned: always
  type: list
  elements: dict
  sample: [{"file": "/etc/cloud/cloud.cfg.d/99_zz.cfg", "key": "preserve_hostname",
            "value": false, "guard_value": true}]
first_boot_changes:
  description:
    - Each file a cloud-init module will still change at first boot under the configuration after
      the guard, with the key responsible, its value and the module's frequency. Names in
      parentheses are not files (partition table, package set, commands). Empty without O(audit).
  returned: always
  type: list
  elements: dict
  sample: [{"module": "ssh", "file": "/etc/ssh/ssh_host_*_key", "key": "ssh_deletekeys",
            "value": true, "frequency": "once-per-instance", "overrides": []}]
unprotected:
  description: The O(customized_paths) that a module will still rewrite or override at first boot.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/etc/hostname", "module": "set_hostname", "key": "preserve_hostname",
            "file": "/etc/hostname", "frequency": "once-per-instance"}]
schema_validated:
  description: Whether cloud-init's schema validated the drop-in (false when cloud-init is not in the image or nothing changed).
  returned: always
  type: bool
  sample: true
diff:
  description: Before and after text of the drop-in, in diff mode.
  returned: when diff mode is on and the drop-in changes
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.bakery.ami.plugins.module_utils._cloudinit import (
    DEFAULT_FILENAME,
    YAML_IMPORT_ERROR,
    GuardError,
    plan_guard,
    validate_schema,
    write_dropin,
)
from ansible_collections.bakery.ami.plugins.module_utils._group import accept_group_defaults


def _failure(result, **overrides):
    """The result to fail with: what the guard found, with what did not happen."""
    failure = dict(result)
    failure.update(overrides)
    return failure


def main():
    module = AnsibleModule(
        argument_spec=accept_group_defaults(
            dict(
                root=dict(type="path", default="/"),
                protect=dict(type="list", elements="str", default=[]),
                settings=dict(type="dict", default={}),
                disable_modules=dict(type="list", elements="str", default=[]),
                filename=dict(type="str", default=DEFAULT_FILENAME),
                audit=dict(type="bool", default=True),
                customized_paths=dict(type="list", elements="str", default=[]),
                fail_on_unprotected=dict(type="bool", default=False),
            )
        ),
        supports_check_mode=True,
    )
    if YAML_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=YAML_IMPORT_ERROR)
    params = module.params
    if params["fail_on_unprotected"] and not params["audit"]:
        module.fail_json(msg="fail_on_unprotected: needs audit=true")

    try:
        plan = plan_guard(params["root"], params["protect"], params["settings"], params["disable_modules"],
                          params["filename"], params["audit"], params["customized_paths"])
    except GuardError as exc:
        module.fail_json(msg=str(exc))

    result = dict(
        changed=plan.changed,
        path=plan.path,
        written=plan.changed,
        effective=plan.effective,
        conflicts=plan.conflicts,
        first_boot_changes=plan.first_boot_changes,
        unprotected=plan.unprotected,
        schema_validated=False,
    )
    if plan.changed:
        try:
            validated, warning = validate_schema(params["root"], plan.after, module.run_command)
        except GuardError as exc:
            module.fail_json(msg=str(exc), **_failure(result, changed=False, written=False))
        result["schema_validated"] = validated
        if warning:
            module.warn(warning)
    if params["fail_on_unprotected"] and plan.unprotected:
        module.fail_json(
            msg="customized_paths: cloud-init will still change %s at first boot; add a protection or "
                "settings for them" % ", ".join(
                    "%s (%s via %s)" % (u["path"], u["module"], u["key"]) for u in plan.unprotected),
            **_failure(result, changed=False, written=False))
    for warning in plan.warnings:
        module.warn(warning)
    if module._diff and plan.changed:
        result["diff"] = dict(before=plan.before or "", after=plan.after,
                              before_header=plan.path, after_header=plan.path)
    if plan.changed and not module.check_mode:
        try:
            write_dropin(plan, move=module.atomic_move)
        except OSError as exc:
            module.fail_json(msg="root: writing %s failed: %s" % (exc.filename or plan.path, exc.strerror),
                             **_failure(result, written=False))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
