# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_clean's main(): check mode, diff mode, honest changed, a rerun unchanged, clear failures."""
from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.bakery.ami.plugins.modules import image_clean

from tests.unit.plugins.modules.module_runner import run_module


def write(root, path, content="x\n", mode=None):
    target = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(content)
    if mode is not None:
        os.chmod(target, mode)


def snapshot(top):
    state = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            content = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    content = handle.read()
            state[path] = (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, content)
    return state


@pytest.fixture
def image(tmp_path):
    root = tmp_path / "image"
    write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\n")
    write(root, "/etc/shadow", "root:$6$salt$hash:19700:0:99999:7:::\n", 0o640)
    write(root, "/etc/hostname", "builder\n")
    write(root, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n", 0o444)
    write(root, "/etc/ssh/ssh_host_ed25519_key", "KEY", 0o600)
    write(root, "/home/admin/.bash_history", "export TOKEN=x\n")
    write(root, "/var/log/syslog", "line\n", 0o640)
    return root


def run_main(capsys, check_mode=False, diff=False, **args):
    rc, result = run_module(image_clean.main, capsys, args, check_mode=check_mode, diff=diff)
    result["_rc"] = rc
    return result


def test_check_mode_changes_nothing_and_reports_the_actions(capsys, image):
    before = snapshot(image)
    result = run_main(capsys, check_mode=True, diff=True, root=str(image))
    assert result["_rc"] == 0 and result["changed"] is True and result["check_mode"] is True
    assert snapshot(image) == before
    assert {(a["path"], a["action"]) for a in result["actions"]} == {
        ("/etc/ssh/ssh_host_ed25519_key", "remove"), ("/home/admin/.bash_history", "remove"),
        ("/etc/hostname", "reset_hostname"), ("/etc/machine-id", "truncate"), ("/var/log/syslog", "truncate"),
        ("/etc/shadow", "lock_password")}
    headers = [d["before_header"] for d in result["diff"]]
    assert "/etc/shadow" in headers and "/etc/hostname" in headers
    assert "$6$salt$hash" not in json.dumps(result["diff"])


def test_clean_then_rerun(capsys, image):
    result = run_main(capsys, diff=True, root=str(image))
    assert result["_rc"] == 0 and result["changed"] is True and result["remaining"] == []
    assert not (image / "etc/ssh/ssh_host_ed25519_key").exists()
    assert (image / "etc/hostname").read_text() == "localhost\n"
    assert (image / "etc/shadow").read_text().startswith("root:!$6$salt$hash:")
    assert stat.S_IMODE(os.stat(image / "etc/shadow").st_mode) == 0o640
    assert (image / "etc/machine-id").read_text() == ""
    assert result["diff"][0]["before"].count("\n") == 4  # the removed and emptied paths
    again = run_main(capsys, diff=True, root=str(image))
    assert again["_rc"] == 0 and again["changed"] is False and again["actions"] == [] and "diff" not in again


def test_secrets_stop_the_module_before_any_change(capsys, image):
    write(image, "/opt/app/.env", "API_TOKEN=0123456789abcdef\n")
    before = snapshot(image)
    result = run_main(capsys, root=str(image))
    assert result["_rc"] == 1 and result["changed"] is False
    assert result["msg"].startswith("secrets: 1 file(s) hold secrets")
    assert [f["path"] for f in result["review"]] == ["/opt/app/.env"]
    assert "0123456789abcdef" not in json.dumps(result)
    assert snapshot(image) == before
    result = run_main(capsys, root=str(image), remove_secret_files=["/opt/app/.env"])
    assert result["_rc"] == 0 and not (image / "opt/app/.env").exists()


@pytest.mark.parametrize("args,message", [
    ({"bake_paths": ["/tmp/.."]}, "bake_paths: '/tmp/..' resolves to '/', the whole image"),
    ({"exclude": ["/*"]}, "exclude: '/*' matches every top-level directory"),
    ({"exclude": ["~"]}, "exclude: must be an absolute path inside the image"),
    ({"defer": ["nonsense"]}, "categories: unknown category 'nonsense'"),
    ({"root": "/nonexistent/bakery-root"}, "root: '/nonexistent/bakery-root' does not exist or is not a directory"),
])
def test_bad_input_fails_before_anything_changes(capsys, image, args, message):
    before = snapshot(image)
    args.setdefault("root", str(image))
    result = run_main(capsys, **args)
    assert result["_rc"] == 1 and result["msg"].startswith(message), result["msg"]
    assert "Traceback" not in json.dumps(result)
    assert snapshot(image) == before


def test_aws_options_are_not_options_of_a_file_module(capsys, image):
    """Only the AWS modules are in the action group, so no module_defaults hands this one AWS options."""
    result = run_main(capsys, root=str(image), region="us-east-1")
    assert result["_rc"] == 1 and "Unsupported parameters" in result["msg"] and "region" in result["msg"]
