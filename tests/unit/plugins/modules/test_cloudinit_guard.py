# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudinit_guard main(): check mode, diff mode, idempotence, failures that write nothing, the
image's cloud-init run only through the sandbox (and its deprecations passed on as warnings)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml


from ansible_collections.bakery.ami.plugins.modules import cloudinit_guard

from tests.unit.plugins.modules.module_runner import run_module

DROPIN = "etc/cloud/cloud.cfg.d/99_bakery_guard.cfg"
CLOUD_CFG = {
    "preserve_hostname": False,
    "cloud_init_modules": ["set_hostname", "update_hostname", "update_etc_hosts", "users-groups", "ssh"],
    "cloud_config_modules": ["locale", "set-passwords", "apt-configure", "timezone"],
    "cloud_final_modules": ["package-update-upgrade-install", "final-message"],
    "system_info": {"distro": "debian"},
}


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "root"
    (path / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
    (path / "etc/cloud/cloud.cfg").write_text("#cloud-config\n" + yaml.safe_dump(CLOUD_CFG))
    return path


def tree_state(root: Path) -> dict:
    state = {}
    for path in sorted(root.rglob("*")):
        info = os.lstat(path)
        data = path.read_bytes() if path.is_file() else None
        state[str(path.relative_to(root))] = (data, stat.S_IMODE(info.st_mode), info.st_mtime_ns)
    return state


def warnings_of(result: dict) -> list:
    """Warning texts (ansible-core 2.19 wraps each in a WarningSummary event)."""
    texts = []
    for item in result.get("warnings", []):
        texts.append(item["event"]["msg"] if isinstance(item, dict) else item)
    return texts


def run_main(capsys, **args) -> dict:
    return run_module(cloudinit_guard.main, capsys, args)[1]


def install_cloud_init(root: Path, version: str = "25.1.4") -> None:
    binary = root / "usr/bin/cloud-init"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\n")
    package = root / "usr/lib/python3/dist-packages/cloudinit"
    package.mkdir(parents=True, exist_ok=True)
    (package / "version.py").write_text('__VERSION__ = "%s"\n' % version)


@pytest.fixture
def sandbox_host(monkeypatch):
    from ansible_collections.bakery.ami.plugins.module_utils import _sandbox
    monkeypatch.setattr(_sandbox.os, "geteuid", lambda: 0)
    monkeypatch.setattr(_sandbox, "find_unshare", lambda: "/usr/bin/unshare")


def test_check_then_real_then_idempotent(root, capsys):
    args = dict(root=str(root), protect=["hostname", "locale"], customized_paths=["/etc/hostname"])
    before = tree_state(root)
    result = run_main(capsys, _ansible_check_mode=True, _ansible_diff=True, **args)
    assert result["changed"] is True and result["written"] is True
    assert result["diff"]["before"] == "" and result["diff"]["after"].startswith("#cloud-config\n")
    assert tree_state(root) == before

    result = run_main(capsys, **args)
    assert result["changed"] is True
    assert result["path"] == str(root / DROPIN)
    written = yaml.safe_load((root / DROPIN).read_text())
    assert written["preserve_hostname"] is True
    assert written["cloud_config_modules"] == ["set-passwords", "apt-configure", "timezone"]
    assert result["effective"]["preserve_hostname"] is True
    assert result["unprotected"] == []
    assert not any(x["module"] in ("set_hostname", "locale") for x in result["first_boot_changes"])
    assert any("schema validation skipped" in w for w in warnings_of(result))

    after_real = tree_state(root)
    for check in (True, False):
        result = run_main(capsys, _ansible_check_mode=check, _ansible_diff=True, **args)
        assert result["changed"] is False and result["written"] is False
        assert "diff" not in result
    assert tree_state(root) == after_real


def test_unprotected_reported_and_fail_on_unprotected_writes_nothing(root, capsys):
    custom = ["/etc/hostname", "/etc/default/locale", "/etc/motd"]
    result = run_main(capsys, root=str(root), protect=["etc_hosts"], customized_paths=custom, _ansible_check_mode=True)
    assert [(u["path"], u["module"], u["key"]) for u in result["unprotected"]] == [
        ("/etc/hostname", "set_hostname", "preserve_hostname"),
        ("/etc/default/locale", "locale", "locale")]
    before = tree_state(root)
    result = run_main(capsys, root=str(root), protect=["etc_hosts"], customized_paths=custom,
                      fail_on_unprotected=True)
    assert result["failed"] is True and result["changed"] is False
    assert "/etc/hostname (set_hostname via preserve_hostname)" in result["msg"]
    assert tree_state(root) == before


def test_conflicts_returned(root, capsys):
    (root / "etc/cloud/cloud.cfg.d/99_zz.cfg").write_text("#cloud-config\npreserve_hostname: false\n")
    result = run_main(capsys, root=str(root), protect=["hostname"])
    assert result["conflicts"] == [{"file": "/etc/cloud/cloud.cfg.d/99_zz.cfg", "key": "preserve_hostname",
                                    "value": False, "guard_value": True}]
    assert result["effective"] == {"preserve_hostname": False}
    assert any("99_zz.cfg sets preserve_hostname back" in w for w in warnings_of(result))


@pytest.mark.parametrize("args, message", [
    (dict(protect=["nosuch"]), "protect: unknown protection 'nosuch'"),
    (dict(protect=["hostname"], filename="../x.cfg"), "filename: must be a plain file name without a path"),
    (dict(protect=["hostname"], filename="guard.yaml"), "filename: must end in .cfg"),
    (dict(protect=["hostname"], settings={"repo_upgrade": "often"}), "settings.repo_upgrade: must be one of"),
    (dict(protect=["hostname"], fail_on_unprotected=True, audit=False), "fail_on_unprotected: needs audit=true"),
])
def test_bad_input_fails_and_writes_nothing(root, capsys, args, message):
    before = tree_state(root)
    result = run_main(capsys, root=str(root), **args)
    assert result["failed"] is True
    assert result["msg"].startswith(message)
    assert tree_state(root) == before


def test_root_without_etc_cloud_fails(tmp_path, capsys):
    (tmp_path / "etc").mkdir()
    result = run_main(capsys, root=str(tmp_path), protect=["hostname"])
    assert result["failed"] is True and "has no /etc/cloud" in result["msg"]
    assert os.listdir(tmp_path / "etc") == []


def test_malformed_cloud_cfg_fails_with_file_and_line(root, capsys):
    (root / "etc/cloud/cloud.cfg").write_text("#cloud-config\nusers:\n- default\n  bad: [\n")
    before = tree_state(root)
    result = run_main(capsys, root=str(root), protect=["hostname"])
    assert result["failed"] is True
    assert result["msg"].startswith("/etc/cloud/cloud.cfg: line 4,")
    assert tree_state(root) == before


@pytest.mark.parametrize("check", [True, False])
def test_schema_failure_fails_and_writes_nothing(root, capsys, monkeypatch, sandbox_host, check):
    install_cloud_init(root)
    seen = []

    def fake_run(self, argv, **kwargs):
        seen.append((argv, kwargs))
        return 1, "", "Error:\nCloud config schema errors: ssh_deletekeys: 'maybe' is not of type 'boolean'\n"

    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.run_command", fake_run)
    before = tree_state(root)
    result = run_main(capsys, root=str(root), settings={"ssh_deletekeys": "maybe"}, _ansible_check_mode=check)
    assert result["failed"] is True and result["written"] is False
    assert "fails cloud-init's schema" in result["msg"] and "ssh_deletekeys" in result["msg"]
    argv, kwargs = seen[0]
    # the image's cloud-init ran in the sandbox (namespaces, no chroot as host root), fed on stdin
    assert argv[0] == "/usr/bin/unshare" and "--net" in argv and "chroot" not in argv
    assert argv[-4:] == ["/usr/bin/cloud-init", "schema", "--config-file", "/dev/stdin"]
    assert "ssh_deletekeys: maybe" in kwargs["data"]
    assert tree_state(root) == before


def test_schema_success_marks_validated_and_passes_deprecations_on(root, capsys, monkeypatch, sandbox_host):
    install_cloud_init(root, "22.4.2")
    monkeypatch.setattr("ansible.module_utils.basic.AnsibleModule.run_command", lambda self, argv, **kwargs: (
        0, "Cloud config schema deprecations: growpart.mode: DEPRECATED: Specifying a boolean ``false`` value "
           "for this key is deprecated. Use ``off`` instead.\nValid cloud-config: /dev/stdin\n", ""))
    result = run_main(capsys, root=str(root), protect=["growpart"])
    assert result["changed"] is True and result["schema_validated"] is True
    assert result["cloud_init_version"] == "22.4.2"
    assert yaml.safe_load((root / DROPIN).read_text())["resize_rootfs"] is False
    assert any(w.startswith("cloud-init 22.4.2 schema: deprecated: growpart.mode: DEPRECATED")
               for w in warnings_of(result))


@pytest.mark.parametrize("settings", [
    {"runcmd": [["id"]]}, {"users": [{"name": "ops", "sudo": "ALL=(ALL) NOPASSWD:ALL"}]},
    {"write_files": [{"path": "/etc/x", "content": "y"}]}, {"chpasswd": {"users": [{"name": "root"}]}},
])
def test_privileged_settings_need_the_flag(root, capsys, settings):
    before = tree_state(root)
    result = run_main(capsys, root=str(root), settings=settings)
    assert result["failed"] is True
    assert result["msg"].startswith("settings: refused without allow_privileged_settings=true: %s (" % next(iter(settings)))
    assert tree_state(root) == before
    result = run_main(capsys, root=str(root), settings=settings, allow_privileged_settings=True)
    assert result["changed"] is True and (root / DROPIN).is_file()


@pytest.mark.parametrize("settings, message", [
    ({"hostname": "h" * 100000}, "settings.hostname: must be at most 253 characters, got 100000"),
    ({"final_message": "bye\x07"}, "settings.final_message: must not contain control characters"),
    ({"network": {"config": "enabled"}}, "settings.network: the guard writes only {config: disabled}"),
])
def test_bounds_fail_with_a_clear_message(root, capsys, settings, message):
    before = tree_state(root)
    result = run_main(capsys, root=str(root), settings=settings)
    assert result["failed"] is True and result["msg"].startswith(message)
    assert "Traceback" not in result["msg"] and "exception" not in result
    assert tree_state(root) == before


def test_hostname_protection_warns(root, capsys):
    (root / "etc/hostname").write_text("builder\n")
    result = run_main(capsys, root=str(root), protect=["hostname"], _ansible_check_mode=True)
    assert any("all of them share one hostname" in w for w in warnings_of(result))


def test_audit_only_writes_nothing(root, capsys):
    before = tree_state(root)
    result = run_main(capsys, root=str(root), customized_paths=["/etc/hostname"])
    assert result["changed"] is False and result["written"] is False
    assert result["unprotected"][0]["path"] == "/etc/hostname"
    assert tree_state(root) == before
