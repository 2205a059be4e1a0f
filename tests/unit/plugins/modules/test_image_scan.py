# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_scan's main(): options reach the scanner, results and failures are reported as documented."""
from __future__ import annotations

import json
import os

import pytest


from ansible_collections.bakery.ami.plugins.module_utils import _hygiene
from ansible_collections.bakery.ami.plugins.modules import image_scan

from tests.unit.plugins.modules.module_runner import run_module

BAKE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBakeBakeBakeBakeBakeBakeBakeBakeBakeBake0001 bakery-temp"


def write(root, path, content="x\n", mode=None):
    target = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(content)
    if mode is not None:
        os.chmod(target, mode)


@pytest.fixture
def image(tmp_path):
    root = tmp_path / "image"
    write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\n")
    write(root, "/etc/machine-id", "", 0o444)
    os.makedirs(root / "home/admin/.ssh")
    os.makedirs(root / "root")
    return root


def run_main(capsys, check_mode=False, **args):
    rc, result = run_module(image_scan.main, capsys, args, check_mode=check_mode)
    result["_rc"] = rc
    return result


def test_clean_root(capsys, image):
    result = run_main(capsys, root=str(image))
    assert result["_rc"] == 0
    assert result["changed"] is False
    assert result["clean"] is True
    assert result["findings"] == []
    assert result["categories"] == list(_hygiene.CATEGORY_NAMES)
    assert result["root"] == str(image)


def test_dirty_root_reports_path_category_reason(capsys, image):
    write(image, "/etc/ssh/ssh_host_ed25519_key", "KEY", 0o600)
    write(image, "/home/admin/.bash_history", "export TOKEN=x\n")
    result = run_main(capsys, root=str(image))
    assert result["_rc"] == 0
    assert result["clean"] is False
    assert {(f["path"], f["category"]) for f in result["findings"]} == {
        ("/etc/ssh/ssh_host_ed25519_key", "ssh_host_keys"),
        ("/home/admin/.bash_history", "shell_history"),
    }
    assert result["counts"]["ssh_host_keys"] == 1 and result["counts"]["shell_history"] == 1
    assert result["counts"]["logs"] == 0
    finding = result["findings"][0]
    assert set(finding) == {"path", "category", "reason", "action", "root_path"}
    assert finding["root_path"] == str(image / "etc/ssh/ssh_host_ed25519_key")


def test_options_reach_the_scanner(capsys, image):
    write(image, "/home/admin/.ssh/authorized_keys", BAKE_KEY + "\n")
    write(image, "/root/.ssh/authorized_keys", BAKE_KEY.replace("0001", "0002") + "\n")
    write(image, "/opt/bake/key", "PRIVATE")
    write(image, "/tmp/x", "x")
    result = run_main(
        capsys,
        root=str(image),
        categories=["authorized_keys", "bake_traces", "temp_files"],
        keep_authorized_keys=["root"],
        exclude=["/tmp/*"],
        bake_authorized_key=BAKE_KEY,
        bake_paths=["/opt/bake/key"],
    )
    assert result["categories"] == ["authorized_keys", "temp_files", "bake_traces"]
    assert {(f["path"], f["category"], f["action"]) for f in result["findings"]} == {
        ("/home/admin/.ssh/authorized_keys", "bake_traces", "remove"),
        ("/opt/bake/key", "bake_traces", "remove"),
    }


def test_fail_on_findings_fails_with_counts(capsys, image):
    write(image, "/etc/ssh/ssh_host_rsa_key", "KEY")
    write(image, "/etc/ssh/ssh_host_rsa_key.pub", "PUB")
    write(image, "/var/tmp/download", "x")
    result = run_main(capsys, root=str(image), fail_on_findings=True)
    assert result["_rc"] == 1
    assert result["failed"] is True
    assert result["msg"].startswith("image_scan: the image is not clean: 3 findings under ")
    assert "ssh_host_keys (2)" in result["msg"] and "temp_files (1)" in result["msg"]
    assert len(result["findings"]) == 3


def test_fail_on_findings_passes_when_clean(capsys, image):
    result = run_main(capsys, root=str(image), fail_on_findings=True)
    assert result["_rc"] == 0 and result["clean"] is True


def test_check_mode_scans_the_same(capsys, image):
    write(image, "/var/log/syslog", "log\n")
    normal = run_main(capsys, root=str(image))
    checked = run_main(capsys, check_mode=True, root=str(image))
    assert checked["findings"] == normal["findings"] != []
    assert checked["changed"] is False
    assert (image / "var/log/syslog").read_text() == "log\n"


@pytest.mark.parametrize(
    "args,message",
    [
        ({"root": "/nonexistent/bakery-root"}, "root: '/nonexistent/bakery-root' does not exist or is not a directory"),
        ({"categories": ["logs", "secret"]}, "categories: unknown category 'secret'; known: all, ssh_host_keys"),
        ({"bake_authorized_key": "hello"}, "bake_authorized_key: must be a public key line"),
        ({"exclude": ["relative"]}, "exclude: must be an absolute path inside the image (starting with '/'; '~' is "
                                    "not expanded), got 'relative'"),
        ({"exclude": ["~"]}, "exclude: must be an absolute path inside the image"),
        ({"exclude": ["~/.bash_history"]}, "exclude: must be an absolute path inside the image"),
        ({"exclude": ["/"]}, "exclude: '/' resolves to '/', which would cover the whole image"),
        ({"exclude": ["/tmp/.."]}, "exclude: '/tmp/..' resolves to '/', which would cover the whole image"),
        ({"exclude": ["/*"]}, "exclude: '/*' matches every top-level directory"),
        ({"exclude": ["/**"]}, "exclude: '/**' matches every top-level directory"),
        ({"exclude": ["*"]}, "exclude: must be an absolute path inside the image"),
        ({"keep_secret_files": ["/?*"]}, "keep_secret_files: '/?*' matches every top-level directory"),
        ({"remove_secret_files": ["/[a-z]*"]}, "remove_secret_files: '/[a-z]*' matches every top-level directory"),
        ({"keep_secret_files": ["/opt/a"], "remove_secret_files": ["/opt/a"]},
         "keep_secret_files and remove_secret_files: '/opt/a' is in both"),
        ({"bake_paths": ["/tmp/.."]}, "bake_paths: '/tmp/..' resolves to '/', the whole image"),
        ({"bake_paths": ["/."]}, "bake_paths: '/.' resolves to '/', the whole image"),
        ({"bake_paths": ["/tmp/key\n"]}, "bake_paths: must not contain control characters"),
        ({"content_max_files": 0}, "content_max_files: must be an integer from 1 to 1000000, got 0"),
        ({"content_max_file_size": 10}, "content_max_file_size: must be an integer from 1024 to 67108864, got 10"),
    ],
)
def test_bad_inputs_fail_without_traceback(capsys, image, args, message):
    write(image, "/root/.bash_history", "ls\n")  # a dirty image: an exclusion must not hide it
    args.setdefault("root", str(image))
    result = run_main(capsys, **args)
    assert result["_rc"] == 1
    assert result["msg"].startswith(message), result["msg"]
    assert "Traceback" not in json.dumps(result)
    assert "clean" not in result and "findings" not in result


def test_tilde_is_not_expanded_to_the_hosts_home(capsys, image, monkeypatch):
    # '~' as a path type would become the home of whoever runs the module, and hide the image's
    # /root/.bash_history when that home is /root
    monkeypatch.setenv("HOME", "/root")
    write(image, "/root/.bash_history", "ls\n")
    result = run_main(capsys, root=str(image), exclude=["~"])
    assert result["_rc"] == 1 and result["msg"].startswith("exclude: must be an absolute path inside the image")


def test_secret_file_options_reach_the_scanner(capsys, image):
    write(image, "/opt/app/.env", "API_TOKEN=0123456789abcdef\n")
    write(image, "/etc/default/app", "DB_PASSWORD=correct-horse-battery\n")
    result = run_main(capsys, root=str(image), categories=["secrets"])
    wanted = {("/opt/app/.env", "review"), ("/etc/default/app", "review")}
    assert {(f["path"], f["action"]) for f in result["findings"]} == wanted
    assert [f["path"] for f in result["review"]] == [f["path"] for f in result["findings"]]
    assert all("0123456789abcdef" not in f["reason"] and "horse" not in f["reason"] for f in result["findings"])
    result = run_main(capsys, root=str(image), categories=["secrets"], keep_secret_files=["/opt/app/.env"],
                      remove_secret_files=["/etc/default/*"])
    assert [(f["path"], f["action"]) for f in result["findings"]] == [("/etc/default/app", "remove")]
    assert [k["path"] for k in result["kept_secret_files"]] == ["/opt/app/.env"]


def test_incomplete_content_scan_warns(capsys, image):
    for index in range(5):
        write(image, "/srv/data/file%d.txt" % index, "x\n")
    write(image, "/srv/big.txt", "y" * 4096)
    result = run_main(capsys, root=str(image), categories=["secrets"], content_max_files=2,
                      content_max_file_size=1024)
    assert result["content_scan"]["complete"] is False
    assert result["content_scan"]["skipped_large"] == 1
    warned = json.dumps(result["warnings"])  # strings, or event records in ansible-core 2.19
    assert "the content scan stopped after content_max_files=2 files" in warned
    assert "1 file(s) larger than content_max_file_size=1024 bytes were not searched" in warned


def test_root_that_is_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    result = run_main(capsys, root=str(tmp_path / "file"))
    assert result["_rc"] == 1
    assert "does not exist or is not a directory" in result["msg"]


def test_aws_options_are_not_options_of_a_file_module(capsys, image):
    """Only the AWS modules are in the action group, so no module_defaults hands this one AWS options."""
    result = run_main(capsys, root=str(image), region="us-east-1")
    assert result["_rc"] == 1 and "Unsupported parameters" in result["msg"] and "region" in result["msg"]


def test_own_payload_dir_is_not_a_finding(capsys, image, monkeypatch):
    payload = image / "tmp" / "ansible_bakery.ami.image_scan_payload_x1"
    fake_file = payload / "ansible_bakery.ami.image_scan_payload.zip" / "image_scan.py"
    os.makedirs(payload)
    write(image, "/tmp/ansible_bakery.ami.image_scan_payload_x1/ansible_bakery.ami.image_scan_payload.zip", "ZIP")
    write(image, "/tmp/ansible_other_payload_y2/x.zip", "ZIP")  # another module's leftovers are still found
    monkeypatch.setattr(image_scan, "__file__", str(fake_file))
    assert image_scan.own_payload_dir(str(image)) == "/tmp/ansible_bakery.ami.image_scan_payload_x1"
    assert image_scan.own_payload_dir(str(image / "etc")) is None
    result = run_main(capsys, root=str(image), categories=["temp_files"])
    assert [f["path"] for f in result["findings"]] == ["/tmp/ansible_other_payload_y2"]
