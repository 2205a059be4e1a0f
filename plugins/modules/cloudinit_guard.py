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
  - Every file under O(root) is read and written through the collection's root-confined file
    layer, so a symbolic link in the image never leads outside it. The drop-in starts with
    C(#cloud-config) and is written atomically (a link at its path is replaced, never written
    through).
  - The image's cloud-init version is read from its files (C(cloudinit/version.py), dpkg's status,
    the Python package metadata) and returned in RV(cloud_init_version); the guard never writes a
    value that version deprecates.
  - System settings (C(network), C(datasource_list), C(datasource), C(manual_cache_clean),
    C(allow_userdata), C(system_info), the module lists, Amazon Linux's C(repo_upgrade)...) are
    checked by the module's own rules. The rest of the drop-in, the part cloud-init also accepts
    as user-data, is validated with the image's own C(cloud-init schema --config-file), in check
    mode too. When O(root) is not V(/) that cloud-init runs in private mount, PID, network, IPC
    and UTS namespaces, chrooted into a C(nodev,nosuid) bind of O(root) with a device-less
    C(/dev), fresh C(/tmp) and C(/run) and without the capabilities that leave a chroot (never as
    host root in a plain chroot); it reads the text from its standard
    input, so nothing is written into the image. Its own deprecation messages are returned as
    warnings. A key that is neither a known system setting nor in the image's cloud-init schema is
    refused.
  - B(User-data given at launch still wins) over everything under C(/etc/cloud), and so does
    vendor-data. The guard protects the image from its own defaults, not from what the person
    launching it asks for.
  - With O(audit), the module returns RV(first_boot_changes), what cloud-init will still change at
    first boot after the guard, and with O(customized_paths) the RV(unprotected) files among them.
  - With O(audit), the audit also covers what depends on the image's own files - the default user
    created with sudo rights over the image's sudoers policy (C(/etc/sudoers.d/90-cloud-init-users)),
    its home and C(authorized_keys), host keys generated for missing types when C(ssh_deletekeys) is
    false (DSA only where the image's cloud-init and OpenSSH still make it), C(sshd_config.d/50-cloud-init.conf),
    C(/etc/udev/rules.d/70-persistent-net.rules) - and leaves out the locale when cloud-init only
    re-applies the image's own. It warns when the default user is not in the image and cloud-init
    will not create it (the launch key pair would reach no user).
  - Bad input (an unknown protection, a O(filename) with a path or another suffix, a O(root) without
    C(/etc/cloud), a malformed existing configuration file, privileged or unbounded O(settings),
    settings cloud-init's schema rejects) fails with a message naming the option or the file and
    line, and writes nothing.
options:
  protect:
    description:
      - Named protections. Each maps, in one table of the collection, to the cloud-init settings or
        module removals that keep that part of the image as baked.
      - V(ssh_config) leaves C(ssh_pwauth) unset when no configuration file of the image sets it, so
        set_passwords leaves sshd_config and sshd_config.d alone; when one does, it writes the boolean
        of the image's effective C(PasswordAuthentication) (read from sshd_config and the files it
        includes, first value wins), so sshd keeps doing what it did. On cloud-init older than 22.2
        it writes C(unchanged), which those versions do not deprecate.
      - V(hostname) C(preserve_hostname=true). Every instance launched from the image then keeps
        the baked hostname, so all of them share one; the module warns. Not a default of the bake.
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
      - Keys that create users or groups or set passwords (C(users), C(groups), C(chpasswd),
        C(password), ...), install keys (C(ssh_authorized_keys), C(ssh_keys), C(ca_certs), ...), run
        commands or install software (C(runcmd), C(bootcmd), C(packages), C(yum_repos), C(snap),
        C(ansible), ...), write files or change disks (C(write_files), C(mounts), C(fs_setup), ...),
        send data (C(phone_home), C(reporting)), C(disable_root=false), sub-keys of C(apt) other than
        C(preserve_sources_list) and C(disable_suites), and C(system_info.default_user) are refused
        unless O(allow_privileged_settings).
      - Bounds - C(hostname) and C(fqdn) are host names of at most 253 characters; no string or
        key holds control characters other than newline and tab; at most 32 levels of nesting and
        64 KiB when written. C(network) may only set C(config) to V(disabled) (cloud-init then renders no
        network configuration).
    type: dict
    default: {}
  allow_privileged_settings:
    description:
      - Allow O(settings) that create users, set passwords, install keys or software, run commands,
        write files or send data at first boot.
    type: bool
    default: false
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
attributes:
  check_mode:
    description:
      - Reports what would change without writing the drop-in. Schema validation still runs; the
        image's cloud-init reads the drop-in from its standard input, so nothing is written.
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
- name: Keep sshd, /etc/hosts and the network as baked
  bakery.ami.cloudinit_guard:
    protect: [ssh_config, etc_hosts, network]
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
      datasource_list: [Ec2, None]

- name: Bake a user-data key that runs commands (refused without the explicit flag)
  bakery.ami.cloudinit_guard:
    settings:
      runcmd: [[systemctl, restart, my-app]]
    allow_privileged_settings: true

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
      the guard, with the key responsible, its value, the module's frequency, the files it
      overrides and, where useful, a C(detail) in words. Names in parentheses are not files
      (partition table, package set, commands). Empty without O(audit).
  returned: always
  type: list
  elements: dict
  sample: [{"module": "ssh", "file": "/etc/ssh/ssh_host_*_key", "key": "ssh_deletekeys",
            "value": true, "frequency": "once-per-instance", "overrides": [],
            "detail": "every host key deleted; new ones of types rsa, ecdsa, ed25519"}]
unprotected:
  description: The O(customized_paths) that a module will still rewrite or override at first boot.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/etc/hostname", "module": "set_hostname", "key": "preserve_hostname",
            "file": "/etc/hostname", "frequency": "once-per-instance"}]
schema_validated:
  description:
    - Whether the image's cloud-init schema validated the user-data part of the drop-in (false when
      cloud-init is not in the image, cannot be run, or nothing changed).
  returned: always
  type: bool
  sample: true
cloud_init_version:
  description: The version of the image's cloud-init, read from its files; null when unknown.
  returned: always
  type: str
  sample: 25.1.4
diff:
  description: Before and after text of the drop-in, in diff mode.
  returned: when diff mode is on and the drop-in changes
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.bakery.ami.plugins.module_utils._cloudinit import (
    DEFAULT_FILENAME,
    YAML_IMPORT_ERROR,
    build_request,
    plan_request,
    validate_schema,
    write_dropin,
)
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError


def _failure(result, **overrides):
    """The result to fail with: what the guard found, with what did not happen."""
    failure = dict(result)
    failure.update(overrides)
    return failure


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", default="/"),
            protect=dict(type="list", elements="str", default=[]),
            settings=dict(type="dict", default={}),
            disable_modules=dict(type="list", elements="str", default=[]),
            filename=dict(type="str", default=DEFAULT_FILENAME),
            audit=dict(type="bool", default=True),
            customized_paths=dict(type="list", elements="str", default=[]),
            fail_on_unprotected=dict(type="bool", default=False),
            allow_privileged_settings=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if YAML_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=YAML_IMPORT_ERROR)

    # what the task reports if it fails: nothing before a plan, then what the guard found
    failure: dict = {}
    try:
        request = build_request(module.params)
        plan = plan_request(request)
        result = _result(plan)
        if plan.changed:
            failure = _failure(result, changed=False, written=False)
            validated, schema_warnings = validate_schema(plan, module.run_command)
            result["schema_validated"] = validated
            for warning in schema_warnings:
                module.warn(warning)
        if request.fail_on_unprotected and plan.unprotected:
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
            failure = _failure(result, written=False)
            write_dropin(plan)
    except BakeryError as exc:  # GuardError: bad input, an unreadable root, a refused schema, a failed write
        module.fail_json(msg=exc.msg, **dict(failure, **exc.result))
    module.exit_json(**result)


def _result(plan) -> dict:
    """What the guard found and would do."""
    return dict(
        changed=plan.changed,
        path=plan.path,
        written=plan.changed,
        effective=plan.effective,
        conflicts=plan.conflicts,
        first_boot_changes=plan.first_boot_changes,
        unprotected=plan.unprotected,
        schema_validated=False,
        cloud_init_version=plan.cloud_init.version_text,
    )


if __name__ == "__main__":
    main()
