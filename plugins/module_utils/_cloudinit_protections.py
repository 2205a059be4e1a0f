# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to bakery.ami: not a public API; may change without notice.
#
# Data tables of the cloudinit_guard module (plain literals, shipped by AnsiballZ):
#
# PROTECTIONS: protection name -> the cloud-init settings and module removals that keep
#   that part of a baked image as it was baked at first boot, and the image paths it keeps.
#   Settings are chosen so the drop-in passes `cloud-init schema` without a deprecation on
#   cloud-init 22.4 and 25.1; where no valid value turns a module off (locale: false and
#   users: [] fail the schema, timezone and mounts act on defaults), the module is removed from
#   its list instead. `derive` names settings computed from the image itself (ssh_pwauth, see
#   _cloudinit.ssh_pwauth_setting); `warning` is given whenever the protection is used.
# DISTRO_SETTINGS: extra settings of a protection that only the named distribution's
#   cloud-init understands (Amazon Linux's repo_upgrade).
# EXTRA_KEYS: Amazon Linux's keys, which cloud-init's schema does not know; the guard checks them
#   itself (they are system settings too).
# SYSTEM_KEYS: system settings (read from /etc/cloud only, not user-data): validated by the
#   guard's own rules and never sent to `cloud-init schema`, which validates user-data (and
#   from 24.x rejects keys it does not know, such as network).
# PRIVILEGED_KEYS / PRIVILEGED_SUBKEYS: settings that create users, set passwords, run
#   commands, install software or keys, write files or send data; refused unless
#   allow_privileged_settings. For the keys in PRIVILEGED_SUBKEYS only the listed harmless
#   sub-keys are free (apt: {preserve_sources_list: true} is the apt_sources protection).
# FIRST_BOOT_EFFECTS: for the audit, what each cloud-init module rewrites at first boot,
#   which key makes it act, and how (see _cloudinit.acts()). Effects that depend on the
#   image's own files (ssh host keys, the default user, set_passwords, locale) are computed in
#   _cloudinit.computed_effects().
#   acts: if_true (acts when the value is true), unless_true (acts unless true),
#         unless_false (acts unless false), if_set (acts when set and not empty),
#         if_bool (acts when true or false, not when unset or "unchanged"),
#         unless_in (acts unless the value is one of `values`), always.
#   also: further conditions that must all hold too.
#   expand: files depend on the value: "keys" (one file per key of a dict value, {item}),
#           or "field:<name>" (one file per list item, its field <name>).
#   distros: only on these distributions (system_info.distro or os-release ID).
#   Paths in parentheses are not files (partition table, package set, commands).

from __future__ import annotations

PROTECTIONS = {
    "ssh_config": {
        "description": "sshd settings such as PasswordAuthentication stay as baked: ssh_pwauth is "
                       "left unset when no configuration file of the image sets it (set_passwords "
                       "then leaves sshd alone); otherwise it is the boolean of the image's "
                       "effective PasswordAuthentication (cloud-init older than 22.2: unchanged).",
        "settings": {},
        "derive": ["ssh_pwauth"],
        "disable_modules": [],
        "paths": ["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/*"],
    },
    "hostname": {
        "description": "/etc/hostname keeps the baked name (set_hostname and update_hostname do not run).",
        "settings": {"preserve_hostname": True},
        "disable_modules": [],
        "paths": ["/etc/hostname"],
        "warning": "protect: hostname keeps the baked /etc/hostname{name} on every instance launched "
                   "from this image, so all of them share one hostname; leave it out unless that is "
                   "what you want",
    },
    "etc_hosts": {
        "description": "/etc/hosts stays as baked (update_etc_hosts does not render its template).",
        "settings": {"manage_etc_hosts": False},
        "disable_modules": [],
        "paths": ["/etc/hosts"],
    },
    "resolv_conf": {
        "description": "/etc/resolv.conf is not written by the resolv_conf module. Network "
                       "renderers that write it (sysconfig) are stopped by the network protection.",
        "settings": {"manage_resolv_conf": False},
        "disable_modules": [],
        "paths": ["/etc/resolv.conf"],
    },
    "network": {
        "description": "The baked network configuration stays: cloud-init renders none "
                       "(network: {config: disabled}).",
        "settings": {"network": {"config": "disabled"}},
        "disable_modules": [],
        "paths": [
            "/etc/network/interfaces",
            "/etc/network/interfaces.d/*",
            "/etc/netplan/*",
            "/etc/systemd/network/*",
            "/etc/sysconfig/network",
            "/etc/sysconfig/network-scripts/*",
            "/etc/NetworkManager/system-connections/*",
            "/etc/udev/rules.d/70-persistent-net.rules",
        ],
    },
    "apt_sources": {
        "description": "/etc/apt/sources.list stays as baked (apt: {preserve_sources_list: true}).",
        "settings": {"apt": {"preserve_sources_list": True}},
        "disable_modules": [],
        "paths": ["/etc/apt/sources.list", "/etc/apt/sources.list.d/*"],
    },
    "yum_repos": {
        "description": "No .repo file is added or rewritten from yum_repos (yum_add_repo removed).",
        "settings": {},
        "disable_modules": ["yum_add_repo"],
        "paths": ["/etc/yum.repos.d/*"],
    },
    "packages": {
        "description": "No package update or upgrade at first boot (package_update, "
                       "package_upgrade and package_reboot_if_required false; on Amazon Linux "
                       "also repo_upgrade: none).",
        "settings": {"package_update": False, "package_upgrade": False, "package_reboot_if_required": False},
        "disable_modules": [],
        "paths": ["(installed packages)"],
    },
    "default_user": {
        "description": "Users, groups and sudoers stay as baked: users_groups does not run, so "
                       "no default user is created. Bake the user the launch key pair should "
                       "reach (system_info.default_user) yourself.",
        "settings": {},
        "disable_modules": ["users_groups"],
        "paths": ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers",
                  "/etc/sudoers.d/*", "/home/*"],
    },
    "mounts": {
        "description": "/etc/fstab stays as baked: the mounts module (ephemeral and swap "
                       "entries) does not run.",
        "settings": {},
        "disable_modules": ["mounts"],
        "paths": ["/etc/fstab"],
    },
    "ntp": {
        "description": "The baked time-sync configuration stays (ntp: {enabled: false}).",
        "settings": {"ntp": {"enabled": False}},
        "disable_modules": [],
        "paths": [
            "/etc/chrony.conf",
            "/etc/chrony/chrony.conf",
            "/etc/ntp.conf",
            "/etc/systemd/timesyncd.conf",
            "/etc/systemd/timesyncd.conf.d/*",
        ],
    },
    "locale": {
        "description": "The baked locale stays: the locale module does not run.",
        "settings": {},
        "disable_modules": ["locale"],
        "paths": ["/etc/default/locale", "/etc/locale.conf", "/etc/locale.gen"],
    },
    "timezone": {
        "description": "The baked time zone stays: the timezone module does not run.",
        "settings": {},
        "disable_modules": ["timezone"],
        "paths": ["/etc/timezone", "/etc/localtime"],
    },
    "growpart": {
        "description": "The root partition and filesystem are not grown at boot "
                       "(growpart: {mode: 'off'}, resize_rootfs: false).",
        "settings": {"growpart": {"mode": "off"}, "resize_rootfs": False},
        "disable_modules": [],
        "paths": ["(root partition table)", "(root filesystem)"],
    },
}

DISTRO_SETTINGS = {
    "packages": {"amazon": {"repo_upgrade": "none"}},
}

# Host key types cloud-init generates when ssh_genkeytypes is unset (cc_ssh GENERATE_KEY_NAMES):
# 22.x and 23.x include dsa; it was dropped when OpenSSH stopped generating DSA keys.
GENKEYTYPES_WITH_DSA = ["rsa", "dsa", "ecdsa", "ed25519"]
GENKEYTYPES = ["rsa", "ecdsa", "ed25519"]
# The first cloud-init release whose default list has no dsa, and the first OpenSSH without DSA.
GENKEYTYPES_DSA_DROPPED = (23, 4)
OPENSSH_WITHOUT_DSA = (10, 0)
# The first cloud-init release that deprecates string values of ssh_pwauth ("unchanged").
SSH_PWAUTH_STRING_DEPRECATED = (22, 2)

EXTRA_KEYS = {
    "repo_upgrade": {"type": "str", "choices": ["security", "bugfix", "all", "none"]},
    "repo_upgrade_exclude": {"type": "list"},
    "repo_releasever": {"type": "str"},
}

FIRST_BOOT_EFFECTS = [
    {"module": "network_config", "stage": "init-local", "frequency": "once-per-instance",
     "key": "network.config", "acts": "unless_in", "values": ["disabled"],
     "files": ["/etc/network/interfaces.d/50-cloud-init", "/etc/udev/rules.d/70-persistent-net.rules",
               "/etc/netplan/50-cloud-init.yaml",
               "/etc/systemd/network/10-cloud-init-*.network",
               "/etc/sysconfig/network-scripts/ifcfg-*",
               "/etc/NetworkManager/system-connections/cloud-init-*.nmconnection"],
     "overrides": ["/etc/network/interfaces", "/etc/network/interfaces.d/*", "/etc/netplan/*",
                   "/etc/systemd/network/*", "/etc/sysconfig/network-scripts/*",
                   "/etc/NetworkManager/system-connections/*"]},
    {"module": "write_files", "frequency": "once-per-instance", "key": "write_files",
     "acts": "if_set", "expand": "field:path", "files": ["{item}"]},
    {"module": "growpart", "frequency": "always", "key": "growpart.mode",
     "acts": "unless_in", "values": ["off", False], "files": ["(root partition table)"]},
    {"module": "resizefs", "frequency": "always", "key": "resize_rootfs",
     "acts": "unless_false", "default": True, "files": ["(root filesystem)"]},
    {"module": "mounts", "frequency": "once-per-instance", "key": "mounts",
     "acts": "always", "files": ["/etc/fstab"]},
    {"module": "set_hostname", "frequency": "once-per-instance", "key": "preserve_hostname",
     "acts": "unless_true", "files": ["/etc/hostname"]},
    {"module": "update_hostname", "frequency": "always", "key": "preserve_hostname",
     "acts": "unless_true", "files": ["/etc/hostname"]},
    {"module": "update_etc_hosts", "frequency": "always", "key": "manage_etc_hosts",
     "acts": "unless_false", "default": False, "files": ["/etc/hosts"]},
    {"module": "ca_certs", "frequency": "once-per-instance", "key": "ca_certs",
     "acts": "if_set", "files": ["/etc/ssl/certs/ca-certificates.crt"]},
    {"module": "rsyslog", "frequency": "once-per-instance", "key": "rsyslog",
     "acts": "if_set", "files": ["/etc/rsyslog.d/*"]},
    {"module": "users_groups", "frequency": "once-per-instance", "key": "groups",
     "acts": "if_set", "files": ["/etc/group", "/etc/gshadow"]},
    {"module": "resolv_conf", "frequency": "once-per-instance", "key": "manage_resolv_conf",
     "acts": "if_true", "files": ["/etc/resolv.conf"]},
    {"module": "apt_configure", "frequency": "once-per-instance", "key": "apt.preserve_sources_list",
     "acts": "unless_true", "distros": ["debian", "ubuntu"],
     "files": ["/etc/apt/sources.list", "/etc/apt/sources.list.d/debian.sources",
               "/etc/apt/sources.list.d/ubuntu.sources"]},
    {"module": "yum_add_repo", "frequency": "once-per-instance", "key": "yum_repos",
     "acts": "if_set", "expand": "keys", "files": ["/etc/yum.repos.d/{item}.repo"]},
    {"module": "ntp", "frequency": "once-per-instance", "key": "ntp", "acts": "if_set",
     "also": [{"key": "ntp.enabled", "acts": "unless_false", "default": True}],
     "files": ["/etc/chrony.conf", "/etc/chrony/chrony.conf", "/etc/ntp.conf",
               "/etc/systemd/timesyncd.conf.d/cloud-init.conf"]},
    {"module": "timezone", "frequency": "once-per-instance", "key": "timezone",
     "acts": "if_set", "files": ["/etc/timezone", "/etc/localtime"]},
    {"module": "runcmd", "frequency": "once-per-instance", "key": "runcmd",
     "acts": "if_set", "files": ["(any file: commands)"]},
    {"module": "bootcmd", "frequency": "always", "key": "bootcmd",
     "acts": "if_set", "files": ["(any file: commands)"]},
    {"module": "package_update_upgrade_install", "frequency": "once-per-instance",
     "key": "package_update", "acts": "if_true", "files": ["(installed packages)"]},
    {"module": "package_update_upgrade_install", "frequency": "once-per-instance",
     "key": "package_upgrade", "acts": "if_true", "files": ["(installed packages)"]},
    {"module": "package_update_upgrade_install", "frequency": "once-per-instance",
     "key": "packages", "acts": "if_set", "files": ["(installed packages)"]},
    {"module": "package_update_upgrade_install", "frequency": "once-per-instance",
     "key": "repo_upgrade", "acts": "unless_in", "values": ["none"], "default": "security",
     "distros": ["amazon"], "files": ["(installed packages)"]},
]

# System settings: never sent to `cloud-init schema` (user-data validation); each checked by
# _cloudinit.check_system_key.
SYSTEM_KEYS = (
    "network",
    "datasource_list",
    "datasource",
    "manual_cache_clean",
    "allow_userdata",
    "system_info",
    "repo_upgrade",
    "repo_upgrade_exclude",
    "repo_releasever",
    "cloud_init_modules",
    "cloud_config_modules",
    "cloud_final_modules",
    "syslog_fix_perms",
    "output",
    "reporting",
    "def_log_file",
    "log_cfgs",
)

_USERS = "creates users or groups, or sets their passwords"
_KEYS = "installs SSH keys or trusted certificates"
_COMMANDS = "runs commands at boot"
_SOFTWARE = "installs or configures software, or adds package sources"
_FILES = "writes files or changes disks"
_SENDS = "sends data off the instance"

# Top-level keys refused unless allow_privileged_settings (cloud-init 22.4 and 25.1 schemas, and
# the system settings above): key -> what it does.
PRIVILEGED_KEYS = {
    "users": _USERS,
    "user": _USERS,
    "groups": _USERS,
    "chpasswd": _USERS,
    "password": _USERS,
    "rh_subscription": "registers the system with credentials",
    "ssh_authorized_keys": _KEYS,
    "ssh_keys": "installs SSH host private keys",
    "ssh_import_id": _KEYS,
    "ca_certs": _KEYS,
    "ca-certs": _KEYS,
    "wireguard": "installs private keys and brings up tunnels",
    "runcmd": _COMMANDS,
    "bootcmd": _COMMANDS,
    "power_state": _COMMANDS,
    "random_seed": _COMMANDS,
    "output": "pipes cloud-init's output through commands",
    "ansible": _SOFTWARE,
    "chef": _SOFTWARE,
    "puppet": _SOFTWARE,
    "salt_minion": _SOFTWARE,
    "mcollective": _SOFTWARE,
    "landscape": _SOFTWARE,
    "snap": _SOFTWARE,
    "lxd": _SOFTWARE,
    "drivers": _SOFTWARE,
    "fan": _SOFTWARE,
    "spacewalk": _SOFTWARE,
    "ubuntu_advantage": _SOFTWARE,
    "ubuntu_pro": _SOFTWARE,
    "autoinstall": _SOFTWARE,
    "packages": _SOFTWARE,
    "yum_repos": _SOFTWARE,
    "zypper": _SOFTWARE,
    "apk_repos": _SOFTWARE,
    "write_files": _FILES,
    "rsyslog": _FILES,
    "resolv_conf": _FILES,
    "mounts": _FILES,
    "swap": _FILES,
    "disk_setup": _FILES,
    "fs_setup": _FILES,
    "device_aliases": _FILES,
    "locale_configfile": _FILES,
    "def_log_file": _FILES,
    "log_cfgs": _FILES,
    "phone_home": _SENDS,
    "reporting": _SENDS,
}

# Keys whose listed sub-keys are harmless; any other sub-key is privileged with the reason given.
# For datasource the rule applies to the settings of each datasource (datasource: {Ec2: {...}}).
PRIVILEGED_SUBKEYS = {
    "apt": (("preserve_sources_list", "disable_suites"),
            "configures package sources, keys or apt's own commands"),
    "ntp": (("enabled", "servers", "pools", "peers", "allow", "ntp_client"),
            "installs packages and writes configuration templates"),
    "datasource": (("timeout", "max_wait", "retries", "apply_full_imds_network_config"),
                   "changes where the instance reads its metadata and user-data from"),
    "system_info": (("distro", "network", "ssh_svcname"),
                    "creates the default user, redirects cloud-init's paths or package mirrors"),
    "vendor_data": (("enabled",), "runs vendor-data scripts through a command"),
}
