# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The first-boot proof of cloudinit_guard, with real cloud-init on both verified roots:
Debian 12 (cloud-init 22.4, OpenSSH 9.2) and Debian 13 (cloud-init 25.1, OpenSSH 10.0).

A fresh debootstrap root is customized the way a bake does (an sshd_config.d drop-in, the
hostname, /etc/hosts, apt sources, a network file written by hand, a sudoers policy that asks for
a password, the image's own locale) and carries a provider drop-in with real settings that
rewrite files at first boot. Then it is first-booted in a chroot with a new instance-id, a
different hostname and a network-config, as an EC2 launch would:

1. without the guard, cloud-init rewrites or overrides exactly the customizations the guard's
   audit predicted (so the guarded test can fail), and leaves the image's own locale alone, which
   the audit no longer flags;
2. with every protection (the real module, run by ansible through AnsiballZ), the drop-in passes
   the image's own cloud-init schema in the sandbox, every protected file is byte-identical after
   first boot, sshd's PasswordAuthentication is what was baked, an unguarded control changes, and
   cloud-init records no deprecation (status.json on 25.1, the log on 22.4) - a planted deprecated
   value shows that this check catches one;
3. the network protection leaves no rendered network file; host keys kept with
   ssh_deletekeys: false are completed with exactly the types the audit named for that version;
4. bad input fails with a clear message and leaves the whole tree as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.rootfs import harness

VENV_BIN = Path(sys.executable).parent
DROPIN = "/etc/cloud/cloud.cfg.d/99_bakery_guard.cfg"

CUSTOM = {
    "/etc/ssh/sshd_config.d/60-bake.conf": "# baked\nPasswordAuthentication yes\n",
    "/etc/hostname": "baked-host\n",
    "/etc/hosts": "127.0.0.1 localhost\n10.1.2.3 baked-host.internal baked-host\n",
    "/etc/apt/sources.list": "# baked sources\ndeb http://baked-mirror.invalid/debian stable main contrib\n",
    "/etc/network/interfaces.d/50-cloud-init": (
        "# baked by hand\nauto eth0\niface eth0 inet static\n    address 10.1.2.3/24\n"
    ),
    "/etc/sudoers.d/10-bake-policy": "# baked: sudo asks for a password\n%sudo ALL=(ALL:ALL) ALL\n",
}
# Baked too, but cloud-init only re-applies it: neither changed nor predicted.
LOCALE = {"/etc/default/locale": "LANG=C.UTF-8\n"}
# Image defaults a provider ships (lower priority than the guard's 99_ drop-in), and an unguarded
# control that first boot writes whatever the guard protects.
CONTROL = "/etc/bakery-control"
PROVIDER_CFG = ("#cloud-config\nmanage_etc_hosts: true\nssh_pwauth: false\n"
                "apt:\n  preserve_sources_list: false\n"
                "write_files:\n  - path: %s\n    content: written at first boot\n" % CONTROL)
NETWORK_CONFIG = "version: 1\nconfig:\n  - type: physical\n    name: eth0\n    subnets:\n      - type: dhcp\n"
SSHD_CLOUD_INIT = "/etc/ssh/sshd_config.d/50-cloud-init.conf"
SUDO_CLOUD_INIT = "/etc/sudoers.d/90-cloud-init-users"
UDEV_RULES = "/etc/udev/rules.d/70-persistent-net.rules"
ACCOUNTS = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", SUDO_CLOUD_INIT]
HOST_KEYS = ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ecdsa_key"]
EVERY_PROTECTION = ["apt_sources", "default_user", "etc_hosts", "growpart", "hostname", "locale", "mounts",
                    "network", "ntp", "packages", "resolv_conf", "ssh_config", "timezone", "yum_repos"]


@pytest.fixture(scope="module")
def core(collections):
    """The guard's core module, imported from this checkout."""
    if str(collections) not in sys.path:
        sys.path.insert(0, str(collections))
    import ansible_collections  # pylint: disable=import-outside-toplevel

    ours = str(collections / "ansible_collections")
    if ours not in list(ansible_collections.__path__):
        ansible_collections.__path__.append(ours)  # pylint: disable=no-member
    from ansible_collections.bakery.ami.plugins.module_utils import _cloudinit  # pylint: disable=import-outside-toplevel

    return _cloudinit


def customize(root: Path) -> None:
    for path, text in {**CUSTOM, **LOCALE}.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    os.chmod(root / "etc/sudoers.d/10-bake-policy", 0o440)
    (root / "etc/cloud/cloud.cfg.d/50_provider.cfg").write_text(PROVIDER_CFG)


def boot(root: Path, instance: str):
    return harness.first_boot(root, instance_id=instance, hostname="launched-host",
                              user_data="#cloud-config\n{}\n", network_config=NETWORK_CONFIG)


def run_guard(collections: Path, root: Path, tasks: list, check: bool = False) -> list:
    """Run bakery.ami.cloudinit_guard for real (ansible-playbook on localhost, AnsiballZ), one task
    per options dict; returns each task's result. Failures are results, not exceptions."""
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "guard %d" % index, "bakery.ami.cloudinit_guard": dict(options, root=str(root)),
         "ignore_errors": True} for index, options in enumerate(tasks)]}]
    playbook = root.parent / "guard-play.json"
    playbook.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
    if check:
        argv.append("--check")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=600)
    finally:
        playbook.unlink()
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail("ansible output is not JSON (rc %d): %s %s"
                    % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    return [task["hosts"]["localhost"] for task in data["plays"][0]["tasks"]]


def guard(collections: Path, root: Path, check: bool = False, **options) -> dict:
    return run_guard(collections, root, [options], check)[0]


def warnings_of(result: dict) -> list:
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


def watched() -> list:
    return list(CUSTOM) + list(LOCALE) + [SSHD_CLOUD_INIT, CONTROL, UDEV_RULES] + ACCOUNTS + HOST_KEYS


def changed_paths(before: dict, after: dict) -> set:
    return {path for path in before if before[path] != after[path]}


def predicted(result: dict) -> set:
    return {item["path"] for item in result["unprotected"]}


def sshd_password_auth(core, root: Path) -> bool:
    return core.ImageFacts(core.open_root(str(root))).sshd.effective


def deprecations(root: Path, result) -> list:
    """Every deprecation cloud-init recorded at this boot: DEPRECATED entries of status.json
    (/run/cloud-init/status.json links to it; 24.x and later) and deprecation lines of the log
    (22.x warns there)."""
    found = [line for line in result.log.splitlines() if re.search(r"deprecat", line, re.IGNORECASE)]
    status = root / "var/lib/cloud/data/status.json"
    if status.exists():
        for stage, data in json.loads(status.read_text())["v1"].items():
            if isinstance(data, dict):
                found += ["status.json %s: %s" % (stage, entry)
                          for entry in (data.get("recoverable_errors") or {}).get("DEPRECATED", [])]
    return found


def tree_digest(root: Path) -> str:
    """Every entry of the root: path, type, mode, owner, size, mtime and inode; the content of
    every regular file under the directories a guard run could touch."""
    digest = hashlib.sha256()
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(top, name)
            info = os.lstat(path)
            digest.update(repr((os.path.relpath(path, root), info.st_mode, info.st_uid, info.st_gid, info.st_size,
                                info.st_mtime_ns, info.st_ino)).encode())
            rel = os.path.relpath(path, root)
            if os.path.isfile(path) and not os.path.islink(path) and rel.split("/")[0] in ("etc", "tmp", "run", "root"):
                with open(path, "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------- the proof


def test_without_guard_first_boot_rewrites_what_the_audit_predicts(fresh_root, collections, core, suite):
    customize(fresh_root)
    audit = guard(collections, fresh_root, check=True, customized_paths=list(CUSTOM) + list(LOCALE))
    assert audit["changed"] is False and audit["cloud_init_version"].startswith(
        harness.SUITES[suite]["cloud_init"]), audit
    baked_password_auth = sshd_password_auth(core, fresh_root)

    before = harness.snapshot_files(fresh_root, watched())
    result = boot(fresh_root, "i-0unguarded000001")
    after = harness.snapshot_files(fresh_root, watched())
    changed = changed_paths(before, after)

    assert (fresh_root / "etc/hostname").read_text() == "launched-host\n"
    assert "launched-host" in (fresh_root / "etc/hosts").read_text()
    # 22.4 rewrites sources.list; 25.1 writes deb822 sources.list.d/debian.sources and removes it
    sources = fresh_root / "etc/apt/sources.list"
    assert not sources.exists() or "baked-mirror.invalid" not in sources.read_text()
    assert "inet dhcp" in (fresh_root / "etc/network/interfaces.d/50-cloud-init").read_text()
    assert "PasswordAuthentication no" in (fresh_root / SSHD_CLOUD_INIT.lstrip("/")).read_text()
    assert sshd_password_auth(core, fresh_root) is not baked_password_auth
    assert "NOPASSWD:ALL" in (fresh_root / SUDO_CLOUD_INIT.lstrip("/")).read_text()
    assert "debian:" in (fresh_root / "etc/passwd").read_text()
    assert all(after[key] is not None for key in HOST_KEYS)
    assert after[CONTROL] is not None
    # Lost: changed bytes, or overridden (sshd takes 50-cloud-init.conf's first value; sudo the
    # last matching rule, 90-cloud-init-users'). The audit predicted exactly those.
    overridden = set()
    if SSHD_CLOUD_INIT in changed:
        overridden.add("/etc/ssh/sshd_config.d/60-bake.conf")
    if SUDO_CLOUD_INIT in changed:
        overridden.add("/etc/sudoers.d/10-bake-policy")
    lost = (changed & set(CUSTOM)) | overridden
    assert lost == set(CUSTOM), result.summary()
    assert predicted(audit) == lost
    # The image's own locale is only re-applied: not changed, and not predicted any more.
    assert "/etc/default/locale" not in changed | predicted(audit)


def test_guard_with_every_protection_keeps_every_customization(fresh_root, collections, core, suite):
    customize(fresh_root)
    options = dict(protect=EVERY_PROTECTION, customized_paths=list(CUSTOM) + list(LOCALE) + ACCOUNTS,
                   fail_on_unprotected=True)
    before_check = tree_digest(fresh_root)
    checked = guard(collections, fresh_root, check=True, **options)
    assert checked["changed"] is True and checked["schema_validated"] is True, checked
    assert tree_digest(fresh_root) == before_check  # check mode, schema run included, wrote nothing

    applied = guard(collections, fresh_root, **options)
    assert applied["changed"] is True, applied
    assert applied["schema_validated"] is True, applied
    assert applied["cloud_init_version"].startswith(harness.SUITES[suite]["cloud_init"])
    assert applied["unprotected"] == [] and applied["conflicts"] == []
    assert not [w for w in warnings_of(applied) if "deprecat" in w.lower()], warnings_of(applied)
    assert any("share one hostname" in w for w in warnings_of(applied))
    text = (fresh_root / DROPIN.lstrip("/")).read_text()
    assert text.startswith("#cloud-config\n") and "unchanged" not in text
    assert "ssh_pwauth: true" in text  # the provider sets it; the baked sshd says yes
    assert "network:\n  config: disabled\n" in text
    rerun = guard(collections, fresh_root, **options)
    assert rerun["changed"] is False

    baked_password_auth = sshd_password_auth(core, fresh_root)
    before = harness.snapshot_files(fresh_root, watched())
    result = boot(fresh_root, "i-0guarded00000001")
    after = harness.snapshot_files(fresh_root, watched())

    assert "i-0guarded00000001" in result.log
    kept = list(CUSTOM) + list(LOCALE) + ACCOUNTS
    assert {p for p in kept if before[p] != after[p]} == set(), result.summary()
    assert after[SUDO_CLOUD_INIT] is None
    assert sshd_password_auth(core, fresh_root) is baked_password_auth
    assert after[UDEV_RULES] is None
    # the unguarded controls did change: host keys were made and the provider's write_files ran
    assert all(before[key] is None and after[key] is not None for key in HOST_KEYS)
    assert before[CONTROL] is None and after[CONTROL] is not None
    assert any(c["module"] == "ssh" and c["key"] == "ssh_deletekeys" for c in applied["first_boot_changes"])
    assert deprecations(fresh_root, result) == []

    # a second launch (new instance id) of the same image keeps them too
    result = boot(fresh_root, "i-0guarded00000002")
    again = harness.snapshot_files(fresh_root, kept)
    assert all(again[p] == before[p] for p in again), result.summary()
    assert deprecations(fresh_root, result) == []


def test_a_planted_deprecated_value_is_caught(fresh_root, collections):
    """The no-deprecation checks above can fail: the value the guard used to write (a string
    ssh_pwauth) is recorded by both cloud-init generations, and the guard's schema run warns."""
    planted = "#cloud-config\nssh_pwauth: unchanged\n"
    (fresh_root / "etc/cloud/cloud.cfg.d/98_planted.cfg").write_text(planted)
    result = boot(fresh_root, "i-0planted00000001")
    found = deprecations(fresh_root, result)
    assert found and any("ssh_pwauth" in line for line in found), result.summary()
    audited = guard(collections, fresh_root, settings={"ssh_pwauth": "unchanged"}, filename="97_x.cfg", check=True)
    assert any("deprecated" in w and "ssh_pwauth" in w for w in warnings_of(audited)), warnings_of(audited)


def test_network_protection_renders_no_network_file(fresh_root, collections):
    applied = guard(collections, fresh_root, protect=["network"])
    assert applied["changed"] is True and applied["schema_validated"] is True, applied
    result = boot(fresh_root, "i-0network00000001")
    assert not (fresh_root / "etc/network/interfaces.d/50-cloud-init").exists(), result.summary()
    assert not (fresh_root / UDEV_RULES.lstrip("/")).exists()
    assert "network config is disabled" in result.log.lower()
    assert deprecations(fresh_root, result) == []


def test_kept_host_keys_are_completed_with_the_types_the_audit_names(fresh_root, collections, suite):
    """ssh_deletekeys: false keeps the image's host keys, and cloud-init generates the types of
    ssh_genkeytypes that are missing: DSA on cloud-init 22.4 (OpenSSH 9.2 still makes one), not on
    25.1 / OpenSSH 10. The audit names the same files the boot creates."""
    (fresh_root / "etc/cloud/cloud.cfg.d/50_keep_keys.cfg").write_text("#cloud-config\nssh_deletekeys: false\n")
    for name in os.listdir(fresh_root / "etc/ssh"):
        if name.startswith("ssh_host_"):
            os.unlink(fresh_root / "etc/ssh" / name)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(fresh_root / "etc/ssh/ssh_host_ed25519_key")],
                   check=True, capture_output=True)
    audit = guard(collections, fresh_root, check=True, customized_paths=["/etc/ssh/ssh_host_ed25519_key"])
    expected = {c["file"] for c in audit["first_boot_changes"] if c["key"] == "ssh_genkeytypes"}
    assert audit["unprotected"] == []
    assert ("/etc/ssh/ssh_host_dsa_key" in expected) is (suite == "bookworm")
    before = set(os.listdir(fresh_root / "etc/ssh"))
    result = boot(fresh_root, "i-0keepkeys0000001")
    created = {"/etc/ssh/" + name for name in set(os.listdir(fresh_root / "etc/ssh")) - before}
    assert created == expected, result.summary()


def test_default_user_missing_from_the_image_is_warned(fresh_root, collections):
    assert "debian:" not in (fresh_root / "etc/passwd").read_text()
    applied = guard(collections, fresh_root, protect=["default_user"])
    assert any(w.startswith("default_user: the image has no user 'debian'") for w in warnings_of(applied))
    result = boot(fresh_root, "i-0nouser000000001")
    assert "debian:" not in (fresh_root / "etc/passwd").read_text(), result.summary()
    assert not (fresh_root / SUDO_CLOUD_INIT.lstrip("/")).exists()


def test_bad_input_fails_clearly_and_changes_nothing(fresh_root, collections, suite):
    version = harness.SUITES[suite]["cloud_init"]
    cases = [
        ({"settings": {"users": [{"name": "ops", "plain_text_passwd": "pw", "sudo": "ALL=(ALL) NOPASSWD:ALL"}]}},
         "settings: refused without allow_privileged_settings=true: users ("),
        ({"settings": {"runcmd": [["touch", "/pwned"]], "write_files": [{"path": "/etc/x", "content": "y"}]}},
         "settings: refused without allow_privileged_settings=true: runcmd ("),
        ({"settings": {"bootcmd": ["id"]}}, "settings: refused without allow_privileged_settings=true: bootcmd ("),
        ({"settings": {"chpasswd": {"users": [{"name": "root", "password": "x"}]}}},
         "settings: refused without allow_privileged_settings=true: chpasswd ("),
        ({"settings": {"hostname": "h" * 100000}}, "settings.hostname: must be at most 253 characters, got 100000"),
        ({"settings": {"fqdn": "a" * 254}}, "settings.fqdn: must be at most 253 characters"),
        ({"settings": {"hostname": "evil\nhost"}}, "settings.hostname: must be a host name"),
        ({"settings": {"final_message": "done\x1b]0;x\x07"}}, "settings.final_message: must not contain control"),
        ({"settings": {"network": {"config": "enabled"}}}, "settings.network: the guard writes only"),
        ({"settings": {"preserve_hostnam": True}}, "settings: 'preserve_hostnam' is neither a system setting"),
        ({"settings": {"preserve_hostname": "sometimes"}}, "settings: the drop-in fails cloud-init's schema (cloud-init %s"
         % version),
        ({"protect": ["hostname"], "filename": "../../../etc/passwd"}, "filename: must be a plain file name"),
        ({"customized_paths": ["/etc/\nhosts"]}, "customized_paths: must not contain control characters"),
    ]
    before = tree_digest(fresh_root)
    results = run_guard(collections, fresh_root, [options for options, _message in cases])
    for (options, message), result in zip(cases, results, strict=True):
        assert result.get("failed") is True, (options, result)
        assert result["msg"].startswith(message), (message, result["msg"])
        assert "Traceback (most recent call last)" not in json.dumps(result)
    assert tree_digest(fresh_root) == before


# Keys of the image's cloud-config schema that change nothing a privileged key would (reviewed one
# by one against cloud-init 22.4 and 25.1): everything else is privileged or has harmless sub-keys.
HARMLESS = {
    "allow_public_ssh_keys", "apt_pipelining", "apt_reboot_if_required", "apt_update", "apt_upgrade",
    "authkey_hash", "byobu_by_default", "cloud_config_modules", "cloud_final_modules", "cloud_init_modules",
    "create_hostname_file", "disable_ec2_metadata", "disable_root_opts", "final_message", "fqdn", "growpart",
    "grub-dpkg", "grub_dpkg", "hostname", "keyboard", "launch-index", "locale", "manage_etc_hosts",
    "manage_resolv_conf", "merge_how", "merge_type", "migrate", "mount_default_fields", "no_ssh_fingerprints",
    "package_reboot_if_required", "package_update", "package_upgrade", "prefer_fqdn_over_hostname",
    "preserve_hostname", "resize_rootfs", "ssh", "ssh_deletekeys", "ssh_fp_console_blacklist",
    "ssh_genkeytypes", "ssh_key_console_blacklist", "ssh_publish_hostkeys", "ssh_pwauth", "ssh_quiet_keygen",
    "timezone", "updates", "version", "yum_repo_dir", "disable_root",
}


def test_every_schema_key_of_the_image_is_classified(fresh_root, core):
    """Each top-level key of the image's own cloud-config schema is privileged, limited to
    harmless sub-keys, a system setting, or reviewed as harmless: a key a new cloud-init adds
    fails this test until it is classified."""
    keys = core.ImageFacts(core.open_root(str(fresh_root))).schema_keys()
    assert keys and {"preserve_hostname", "runcmd", "users"} <= keys
    classified = set(core.PRIVILEGED_KEYS) | set(core.PRIVILEGED_SUBKEYS) | set(core.SYSTEM_KEYS) | HARMLESS
    assert sorted(keys - classified) == []
