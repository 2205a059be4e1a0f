# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image sandbox's command line and refusals (no root needed). What the sandbox does to a
hostile image is proven by tests/reliability/test_image_code_sandbox.py (root)."""
from __future__ import annotations

import ast
import json
import os

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _sandbox
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._sandbox import SandboxError

UNSHARE = "/usr/bin/unshare"


@pytest.fixture
def as_root(monkeypatch):
    """A host where the sandbox can be built: root, unshare installed."""
    monkeypatch.setattr(_sandbox.os, "geteuid", lambda: 0)
    monkeypatch.setattr(_sandbox, "find_unshare", lambda: UNSHARE)


def split(command):
    """(unshare options, python, stage-two code, root, settings, program argv)."""
    code_at = command.index("-c") + 1
    return (command[1:code_at - 4], command[code_at - 4], command[code_at], command[code_at + 1],
            json.loads(command[code_at + 2]), command[code_at + 3:])


def test_command_runs_the_program_in_private_namespaces(as_root, tmp_path):
    command = _sandbox.image_command(str(tmp_path), ["/usr/bin/cloud-init", "schema", "--config-file", "/tmp/x.cfg"],
                                     python="/opt/py/bin/python3")
    options, python, code, root, settings, argv = split(command)
    assert command[0] == UNSHARE
    assert set(options) >= {"--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child", "--net"}
    assert options[options.index("--propagation") + 1] == "private"
    assert python == "/opt/py/bin/python3" and command[command.index(python) + 1:command.index("-c")] == ["-I", "-S"]
    assert code == _sandbox._STAGE_TWO  # pylint: disable=protected-access
    assert root == str(tmp_path.resolve())
    assert argv == ["/usr/bin/cloud-init", "schema", "--config-file", "/tmp/x.cfg"]
    assert settings["tmp_private"] is False


def test_network_keeps_the_host_network_only_when_asked(as_root, tmp_path):
    assert "--net" in _sandbox.image_command(str(tmp_path), ["/bin/true"])
    assert "--net" in _sandbox.image_command(str(tmp_path), ["/bin/true"], network=False)
    shared = _sandbox.image_command(str(tmp_path), ["/bin/true"], network=True)
    assert "--net" not in shared
    assert {"--mount", "--pid", "--ipc", "--uts"} <= set(shared)


def test_root_is_passed_resolved(as_root, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    root = split(_sandbox.image_command(str(tmp_path / "link"), ["/bin/true"]))[3]
    assert root == str(real.resolve())


def test_only_file_and_user_capabilities_are_kept(as_root, tmp_path):
    settings = split(_sandbox.image_command(str(tmp_path), ["/bin/true"]))[4]
    kept = set(settings["keep"])
    assert kept == set(_sandbox.KEPT_CAPABILITIES.values())
    assert not kept & set(_sandbox.ESCAPE_CAPABILITIES.values())
    # the ones the brief names as escapes, by number (linux/capability.h)
    for cap in (2, 12, 13, 16, 17, 18, 19, 21, 22, 27):
        assert cap not in kept


def test_environment_is_clean_and_explicit(as_root, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "controller-secret-0123")
    monkeypatch.setenv("LD_PRELOAD", "/tmp/evil.so")
    command = _sandbox.image_command(str(tmp_path), ["/bin/true"], env={"DEBIAN_FRONTEND": "noninteractive"})
    settings = split(command)[4]
    assert settings["env"] == {"PATH": _sandbox.SAFE_PATH, "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                               "DEBIAN_FRONTEND": "noninteractive"}
    assert not any("controller-secret-0123" in part or "evil.so" in part for part in command)


def test_tmp_private_is_passed(as_root, tmp_path):
    assert split(_sandbox.image_command(str(tmp_path), ["/bin/true"], tmp_private=True))[4]["tmp_private"] is True


@pytest.mark.parametrize("argv", [[], ["cloud-init"], ["./cloud-init"], ["usr/bin/cloud-init"], [""],
                                  [b"/usr/bin/cloud-init"], ["/usr/bin/cloud-init", "a\0b"]])
def test_program_must_be_an_absolute_path_inside_the_image(as_root, tmp_path, argv):
    with pytest.raises(SandboxError, match="absolute path inside the image|without NUL"):
        _sandbox.image_command(str(tmp_path), argv)


def test_refuses_without_unshare(monkeypatch, tmp_path):
    monkeypatch.setattr(_sandbox.os, "geteuid", lambda: 0)
    monkeypatch.setattr(_sandbox, "find_unshare", lambda: None)
    with pytest.raises(SandboxError, match="unshare is not installed.*refusing"):
        _sandbox.image_command(str(tmp_path), ["/usr/bin/cloud-init"])


def test_refuses_when_not_root(monkeypatch, tmp_path):
    monkeypatch.setattr(_sandbox.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(_sandbox, "find_unshare", lambda: UNSHARE)
    with pytest.raises(SandboxError, match="needs root"):
        _sandbox.image_command(str(tmp_path), ["/usr/bin/cloud-init"])


@pytest.mark.parametrize("root", ["/", "/tmp/..", "//", "/./"])
def test_refuses_the_hosts_own_root(as_root, root):
    with pytest.raises(SandboxError, match="host's own root"):
        _sandbox.image_command(root, ["/bin/true"])


def test_refuses_a_link_to_the_hosts_root(as_root, tmp_path):
    (tmp_path / "up").symlink_to("/")
    with pytest.raises(SandboxError, match="host's own root"):
        _sandbox.image_command(str(tmp_path / "up"), ["/bin/true"])


def test_refuses_a_root_that_is_not_a_directory(as_root, tmp_path):
    (tmp_path / "file").write_text("x")
    for root in (tmp_path / "file", tmp_path / "missing"):
        with pytest.raises(SandboxError, match="not a directory"):
            _sandbox.image_command(str(root), ["/bin/true"])


@pytest.mark.parametrize("env", [{"A=B": "x"}, {"": "x"}, {"A": "x\0y"}, {"A\0": "x"}, {"A": 1}])
def test_refuses_environment_entries_an_environment_cannot_hold(as_root, tmp_path, env):
    with pytest.raises(SandboxError, match="environment"):
        _sandbox.image_command(str(tmp_path), ["/bin/true"], env=env)


def test_sandbox_error_is_the_collection_error():
    assert issubclass(SandboxError, BakeryError)


def test_run_in_image_on_the_images_own_system_runs_directly(monkeypatch):
    monkeypatch.setattr(_sandbox, "find_unshare", lambda: None)  # never needed on the image's own system
    calls = []

    def run(argv, **kwargs):
        calls.append((argv, kwargs))
        return 0, "ok", ""

    for root in ("/", "/tmp/.."):
        assert _sandbox.run_in_image(root, ["/usr/bin/cloud-init", "clean", "--logs"], run, env={"X": "1"}) == (0, "ok", "")
    assert [call[0] for call in calls] == [["/usr/bin/cloud-init", "clean", "--logs"]] * 2
    assert calls[0][1]["environ_update"]["X"] == "1"
    assert calls[0][1]["environ_update"]["PATH"] == _sandbox.SAFE_PATH


def test_run_in_image_elsewhere_runs_the_sandbox_command(as_root, tmp_path):
    calls = []

    def run(argv, **kwargs):
        calls.append((argv, kwargs))
        return 3, "", "boom"

    assert _sandbox.run_in_image(str(tmp_path), ["/usr/bin/cloud-init", "clean"], run, network=True) == (3, "", "boom")
    argv, kwargs = calls[0]
    assert argv == _sandbox.image_command(str(tmp_path), ["/usr/bin/cloud-init", "clean"], network=True)
    assert kwargs == {}


def test_run_in_image_refuses_before_running_anything(monkeypatch, tmp_path):
    monkeypatch.setattr(_sandbox.os, "geteuid", lambda: 1000)
    calls = []
    with pytest.raises(SandboxError):
        _sandbox.run_in_image(str(tmp_path), ["/usr/bin/cloud-init"], lambda argv, **kw: calls.append(argv))
    assert calls == []


def test_stage_two_is_python_3_7():
    # the stage runs on whatever Python runs the module (targets: 3.7+)
    ast.parse(_sandbox._STAGE_TWO, feature_version=(3, 7))  # pylint: disable=protected-access


def test_landlock_abi_is_a_number():
    assert isinstance(_sandbox.landlock_abi(), int) and _sandbox.landlock_abi() >= 0


def test_find_unshare_finds_an_absolute_path():
    found = _sandbox.find_unshare()
    assert found is None or os.path.isabs(found)
