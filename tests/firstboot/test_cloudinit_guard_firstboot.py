# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The first-boot proof of cloudinit_guard, with real cloud-init (Debian 12, 22.4.2).

A fresh debootstrap root is customized the way a bake does (an sshd_config.d drop-in, the
hostname, /etc/hosts, apt sources, the network file cloud-init generated once) and carries a
provider drop-in with real settings that rewrite files at first boot. Then it is first-booted
in a chroot with a new instance-id, a different hostname and a network-config, as an EC2
launch would:

1. without the guard, cloud-init rewrites the customizations (so this test can fail);
2. with the guard (the real module, run by ansible through AnsiballZ), every protected file is
   byte-identical after first boot while the SSH host keys, which the image ships none of,
   are generated;
3. the guard's audit predicted both outcomes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.rootfs import harness

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

CUSTOM = {
    "/etc/ssh/sshd_config.d/60-bake.conf": "# baked\nPasswordAuthentication yes\n",
    "/etc/hostname": "baked-host\n",
    "/etc/hosts": "127.0.0.1 localhost\n10.1.2.3 baked-host.internal baked-host\n",
    "/etc/apt/sources.list": "# baked sources\ndeb http://baked-mirror.invalid/debian bookworm main contrib\n",
    "/etc/network/interfaces.d/50-cloud-init": (
        "# baked by hand\nauto eth0\niface eth0 inet static\n    address 10.1.2.3/24\n"
    ),
}
# Image defaults a provider ships (lower priority than the guard's 99_ drop-in).
PROVIDER_CFG = ("#cloud-config\nmanage_etc_hosts: true\nssh_pwauth: false\n"
                "apt:\n  preserve_sources_list: false\n")
NETWORK_CONFIG = "version: 1\nconfig:\n  - type: physical\n    name: eth0\n    subnets:\n      - type: dhcp\n"
SSHD_CLOUD_INIT = "/etc/ssh/sshd_config.d/50-cloud-init.conf"
ACCOUNTS = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/sudoers.d/90-cloud-init-users"]
HOST_KEYS = ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ecdsa_key"]
PROTECT = ["ssh_config", "hostname", "etc_hosts", "apt_sources", "network", "default_user", "resolv_conf",
           "packages", "mounts", "ntp", "locale", "timezone", "growpart"]


def customize(root: Path) -> None:
    for path, text in CUSTOM.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (root / "etc/cloud/cloud.cfg.d/50_provider.cfg").write_text(PROVIDER_CFG)


def boot(root: Path, instance: str):
    return harness.first_boot(root, instance_id=instance, hostname="launched-host",
                              user_data="#cloud-config\n{}\n", network_config=NETWORK_CONFIG)


def guard(root: Path, tmp_path: Path, check: bool = False, **options) -> dict:
    """Run bakery.ami.cloudinit_guard for real: ansible ad-hoc on localhost, through AnsiballZ."""
    colls = tmp_path / "colls"
    link = colls / "ansible_collections/bakery/ami"
    if not link.exists():
        link.parent.mkdir(parents=True)
        link.symlink_to(REPO_ROOT)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(colls), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    argv = [str(VENV_BIN / "ansible"), "localhost", "-c", "local", "-m", "bakery.ami.cloudinit_guard",
            "-a", json.dumps(dict(options, root=str(root)))]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=300)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail("ansible output is not JSON (rc %d): %s %s"
                    % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    return data["plays"][0]["tasks"][0]["hosts"]["localhost"]


def watched() -> list[str]:
    return list(CUSTOM) + [SSHD_CLOUD_INIT] + ACCOUNTS + HOST_KEYS


def changed_paths(before: dict, after: dict) -> set:
    return {path for path in before if before[path] != after[path]}


def predicted(result: dict) -> set:
    return {item["path"] for item in result["unprotected"]}


def test_without_guard_first_boot_rewrites_customizations(fresh_root, tmp_path):
    customize(fresh_root)
    audit = guard(fresh_root, tmp_path, check=True, customized_paths=list(CUSTOM))
    assert audit["changed"] is False

    before = harness.snapshot_files(fresh_root, watched())
    result = boot(fresh_root, "i-0unguarded000001")
    after = harness.snapshot_files(fresh_root, watched())
    changed = changed_paths(before, after)

    assert (fresh_root / "etc/hostname").read_text() == "launched-host\n"
    assert "launched-host" in (fresh_root / "etc/hosts").read_text()
    assert "baked-mirror.invalid" not in (fresh_root / "etc/apt/sources.list").read_text()
    assert "inet dhcp" in (fresh_root / "etc/network/interfaces.d/50-cloud-init").read_text()
    assert "PasswordAuthentication no" in (fresh_root / SSHD_CLOUD_INIT.lstrip("/")).read_text()
    assert "debian:" in (fresh_root / "etc/passwd").read_text()
    assert all(after[key] is not None for key in HOST_KEYS)
    # the audit predicted every customization that was lost (the sshd drop-in is overridden
    # by 50-cloud-init.conf, which sorts first and sshd takes the first value)
    lost = (changed & set(CUSTOM)) | ({"/etc/ssh/sshd_config.d/60-bake.conf"} if SSHD_CLOUD_INIT in changed else set())
    assert lost == set(CUSTOM), result.summary()
    assert predicted(audit) == lost


def test_with_guard_protected_files_survive_first_boot(fresh_root, tmp_path):
    customize(fresh_root)
    options = dict(protect=PROTECT, customized_paths=list(CUSTOM) + ACCOUNTS, fail_on_unprotected=True)
    checked = guard(fresh_root, tmp_path, check=True, **options)
    assert checked["changed"] is True, checked
    assert not (fresh_root / "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg").exists()

    applied = guard(fresh_root, tmp_path, **options)
    assert applied["changed"] is True, applied
    assert applied["schema_validated"] is True, applied
    assert applied["unprotected"] == [] and applied["conflicts"] == []
    assert (fresh_root / "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg").read_text().startswith("#cloud-config\n")
    rerun = guard(fresh_root, tmp_path, **options)
    assert rerun["changed"] is False

    before = harness.snapshot_files(fresh_root, watched())
    result = boot(fresh_root, "i-0guarded00000001")
    after = harness.snapshot_files(fresh_root, watched())

    assert "i-0guarded00000001" in result.log
    survived = {path: (before[path], after[path]) for path in list(CUSTOM) + ACCOUNTS + [SSHD_CLOUD_INIT]}
    assert {p for p, (b, a) in survived.items() if b != a} == set(), result.summary()
    assert after[SSHD_CLOUD_INIT] is None
    assert all(before[key] is None for key in HOST_KEYS)
    assert all(after[key] is not None for key in HOST_KEYS)
    # the audit said host keys would still change, and they did
    assert any(c["module"] == "ssh" and c["key"] == "ssh_deletekeys" for c in applied["first_boot_changes"])

    # a second launch (new instance id) of the same image keeps them too
    result = boot(fresh_root, "i-0guarded00000002")
    again = harness.snapshot_files(fresh_root, list(CUSTOM) + ACCOUNTS)
    assert all(again[p] == before[p] for p in again), result.summary()


def test_guard_validates_against_the_image_schema(fresh_root, tmp_path):
    bad = guard(fresh_root, tmp_path, settings={"preserve_hostname": "sometimes"})
    assert bad.get("failed") is True
    assert "fails cloud-init's schema" in bad["msg"] and "preserve_hostname" in bad["msg"]
    assert not (fresh_root / "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg").exists()
    assert not [p for p in (fresh_root / "tmp").iterdir() if p.name.startswith(".bakery-guard-")]
