# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shipped test role, bakery.ami.image_test, run for real on a booted instance.

The image test stage runs bake_test_roles (by default bakery.ami.image_test) on an instance of
the new image once cloud-init is done. Here the instance is a Debian root first-booted with real
cloud-init by the rootfs harness; while the boot's /run is still mounted (harness.first_boot's
``then``), ansible-playbook runs the role in the root through community.general.chroot with the
image sandbox as its chroot program, as the local builder reaches its root. So `cloud-init status
--wait` reads the status.json of that very boot.

Properties: the role passes on an instance whose first boot finished cleanly and kept every
protected file, with the release lock in effect; it fails, naming what is wrong, when cloud-init
recorded an error (a failing runcmd), when a protected file is missing, or when the pinned release
differs. Each failing case is the passing case with one fault planted.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tools.rootfs import harness

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PROTECTED = ["/etc/bakery-test/app.conf", "/etc/ssh/sshd_config.d/60-bake.conf"]
RELEASE = "2023.6.20241010"
# Debian 12's cloud-init 22.4 cannot run locale-gen in the sandbox (no /dev beyond the basics): the
# locale module is switched off so that a clean boot reports no error on both suites.
CLEAN_USER_DATA = "#cloud-config\nlocale: false\n"
# a launch script that fails: cloud-init's scripts_user records the error in status.json
FAILING_USER_DATA = CLEAN_USER_DATA + "runcmd:\n  - [sh, -c, 'echo launch step failed >&2; exit 3']\n"
GOOD_VARS = {"image_test_protected_paths": PROTECTED, "image_test_release": RELEASE,
             "image_test_services": [], "image_test_cloudinit_timeout": 120}

# Run inside the boot's namespaces by harness.first_boot(then=...): one ansible-playbook per case,
# each case's JSON callback output written to <out>/<case>.json.
DRIVER = """
import json, os, subprocess, sys
spec = json.loads(sys.argv[1])
for case, extra in spec["cases"].items():
    proc = subprocess.run([spec["playbook_bin"], "-i", spec["inventory"], spec["playbook"], "-e", json.dumps(extra)],
                          env=spec["env"], capture_output=True, text=True, timeout=300)
    with open(os.path.join(spec["out"], case + ".json"), "w") as handle:
        json.dump({"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}, handle)
"""


def bake_like(root: Path) -> None:
    """What a bake leaves: protected customizations and (as on Amazon Linux) the release lock file."""
    for path in PROTECTED:
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("# baked\nsetting = yes\n")
    lock = root / "etc/dnf/vars/releasever"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(RELEASE + "\n")


def boot_and_test(root: Path, collections: Path, work: Path, user_data: str, cases: dict) -> dict:
    """First-boot root with user_data, then run the role once per case (extra vars); {case: result}."""
    work.mkdir(parents=True, exist_ok=True)
    playbook = work / "image-test.yml"
    playbook.write_text(json.dumps([{"name": "Test the booted instance", "hosts": "instance", "gather_facts": False,
                                     "roles": [{"role": "bakery.ami.image_test"}]}]))
    inventory = work / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"instance": {
        "ansible_connection": "community.general.chroot", "ansible_host": str(root),
        "ansible_chroot_exe": str(REPO_ROOT / "tools/sandbox_chroot"),
        "ansible_python_interpreter": "/usr/bin/python3", "ansible_pipelining": True}}}}))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_HOME=str(work / "ansible-home"))
    spec = {"cases": cases, "playbook_bin": str(VENV_BIN / "ansible-playbook"), "inventory": str(inventory),
            "playbook": str(playbook), "env": env, "out": str(work)}
    boot = harness.first_boot(root, instance_id="i-imagetest%d" % len(list(work.parent.iterdir())),
                              hostname="tested-host", user_data=user_data,
                              then=[sys.executable, "-c", DRIVER, json.dumps(spec)])
    assert boot.then is not None and boot.then.returncode == 0, boot.then and boot.then.output[-3000:]
    results = {}
    for case in cases:
        raw = json.loads((work / (case + ".json")).read_text())
        try:
            plays = json.loads(raw["stdout"])["plays"]
        except (json.JSONDecodeError, KeyError):
            pytest.fail("%s: ansible output is not JSON (rc %d): %s %s"
                        % (case, raw["rc"], raw["stdout"][-2000:], raw["stderr"][-2000:]))
        # "bakery.ami.image_test : Check ..." -> "Check ..."
        tasks = {task["task"]["name"].split(" : ", 1)[-1]: task["hosts"].get("instance", {}) for task in plays[0]["tasks"]}
        results[case] = {"rc": raw["rc"], "tasks": tasks,
                         "failed": {name: result.get("msg", "") for name, result in tasks.items() if result.get("failed")}}
    return results


def test_image_test_passes_on_a_clean_first_boot_and_names_each_planted_fault(fresh_root, collections, tmp_path, suite):
    bake_like(fresh_root)
    missing = "/etc/bakery-test/never-baked.conf"
    results = boot_and_test(fresh_root, collections, tmp_path / "clean", CLEAN_USER_DATA, {
        "good": GOOD_VARS,
        "missing": dict(GOOD_VARS, image_test_protected_paths=PROTECTED + [missing]),
        "release": dict(GOOD_VARS, image_test_release="2023.5.20240805"),
    })

    good = results["good"]
    assert good["rc"] == 0 and not good["failed"], (suite, good)
    # every check ran (none skipped): a role that skipped its checks would pass anything
    for check in ("Check that cloud-init finished without errors", "Check that the protected customizations are intact",
                  "Check that the release lock is in effect"):
        assert check in good["tasks"] and not good["tasks"][check].get("skipped"), (suite, check, good["tasks"].get(check))

    assert results["missing"]["rc"] != 0
    assert list(results["missing"]["failed"]) == ["Check that the protected customizations are intact"], results["missing"]
    assert missing in results["missing"]["failed"]["Check that the protected customizations are intact"]
    assert not any(path in results["missing"]["failed"]["Check that the protected customizations are intact"] for path in PROTECTED)

    assert results["release"]["rc"] != 0
    assert list(results["release"]["failed"]) == ["Check that the release lock is in effect"], results["release"]
    assert RELEASE in results["release"]["failed"]["Check that the release lock is in effect"]


def test_image_test_fails_when_cloud_init_recorded_an_error(fresh_root, collections, tmp_path, suite):
    bake_like(fresh_root)
    results = boot_and_test(fresh_root, collections, tmp_path / "failing", FAILING_USER_DATA, {"good": GOOD_VARS})
    failing = results["good"]
    assert failing["rc"] != 0
    assert list(failing["failed"]) == ["Check that cloud-init finished without errors"], (suite, failing)
    message = failing["failed"]["Check that cloud-init finished without errors"]
    assert "cloud-init did not finish cleanly" in message and ("scripts_user" in message or "scripts-user" in message), message
