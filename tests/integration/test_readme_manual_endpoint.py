# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The README's "local endpoint by hand" block, run as written.

The block is taken from README.md (the fenced block after the comment naming this file) and run with
bash in the checkout, with two changes only a shared machine needs: a free port instead of 5000,
and the endpoint's log and the bake's outputs in the test's directory instead of the checkout. The
bake must succeed, write a manifest naming an image that exists on that endpoint, and the endpoint
must be stopped by the block's last line.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import REPO_ROOT, ansible_env

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the local builder needs root (mount, chroot)")

MARKER = "<!-- tests/integration/test_readme_manual_endpoint.py"


def readme_block() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    assert MARKER in text, "README.md lost the manual-endpoint block"
    after = text[text.index(MARKER):]
    match = re.search(r"```bash\n(.*?)```", after, re.S)
    assert match, "no ```bash block after the marker"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_block_is_what_the_readme_promises():
    block = readme_block()
    for needed in ("source tools/ci/venv.sh", "tools/local_aws/server.py", "--amis tools/local_aws/catalogs/",
                   "AWS_ACCESS_KEY_ID=testing", "bake_endpoint_url=http://127.0.0.1:5000", 'kill "$endpoint"'):
        assert needed in block, needed


def test_the_manual_endpoint_steps_bake_an_image(rootfs_image, tmp_path):
    del rootfs_image  # built (or found in the cache) before the block runs, as bake_local.sh does
    port = free_port()
    log = tmp_path / "endpoint.log"
    out = tmp_path / "bake-output"
    block = readme_block().replace("5000", str(port)).replace("endpoint.log", str(log))
    # bake_test=false: the manual steps are under test here, not the image test stage (its own tests in test_bake.py)
    block = block.replace("ansible-playbook playbooks/bake.yml", "ansible-playbook playbooks/bake.yml -e bake_test=false -e bake_output_dir=" + str(out))
    script = tmp_path / "manual.sh"
    script.write_text("set -euo pipefail\n" + block + "echo \"endpoint-pid=$endpoint\"\n")
    env = ansible_env({"PWD": str(REPO_ROOT)})
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        env.pop(name, None)  # the block sets them itself
    result = subprocess.run(["bash", str(script)], cwd=str(REPO_ROOT), env=env, capture_output=True, text=True,
                            timeout=1500, check=False)
    print(result.stdout[-6000:], result.stderr[-3000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    manifest = json.loads((out / "bake-manifest.json").read_text())
    assert manifest["builds"][-1]["artifact_id"].count("ami-") == 3, manifest
    pid = int(re.search(r"endpoint-pid=(\d+)", result.stdout).group(1))
    for _attempt in range(50):
        if not os.path.exists("/proc/%d" % pid):
            break
        time.sleep(0.2)
    assert not os.path.exists("/proc/%d" % pid), "the block left its endpoint running"
    assert "endpoint: http://127.0.0.1:%d" % port in log.read_text()


def test_two_main_job_runs_leave_one_archive_per_live_image(rootfs_image, tmp_path):
    """tools/bake_local.sh twice: each run's endpoint stops at its end, so after the second run the
    first run's image is gone and its snapshot archive with it; the second's stays (its image was
    live when the run's last hook looked). The summary reports the cache. The second run is the main
    job as a user runs it, with the image test stage (bake_test, the local first boot); the first
    skips the stage (bakes are the suite's time)."""
    del rootfs_image
    cache = Path(os.environ.get("BAKERY_CACHE_DIR") or os.path.expanduser("~/.cache/bakery-ami"))
    images = []
    for run, extra in (("first", ["-e", "bake_test=false"]), ("second", [])):
        out = tmp_path / run
        env = ansible_env({"BAKERY_OUTPUT_DIR": str(out)})
        result = subprocess.run(["bash", "tools/bake_local.sh", "-e", "bake_level=minimal"] + extra, cwd=str(REPO_ROOT),
                                env=env, capture_output=True, text=True, timeout=1500, check=False)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
        assert re.search(r"local cache: \d+ MB in .*, \d+ snapshot archive", result.stdout), result.stdout[-3000:]
        manifest = json.loads((out / "bake-manifest.json").read_text())
        assert manifest["builds"][-1]["custom_data"]["endpoint_url"].startswith("http://127.0.0.1:")
        artifacts = dict(pair.split(":") for pair in manifest["builds"][-1]["artifact_id"].split(","))
        images.append(artifacts["us-east-1"])
        tests = json.loads((out / "bake-report.json").read_text())["tests"]
        if extra:
            assert tests == "skipped", tests
        else:
            assert [(t["name"], t["ok"]) for t in tests] == [("local first boot", True)], tests
    first, second = images
    assert not (cache / "snapshots" / (first + ".tar")).exists(), "the first run's archive outlived its image"
    assert not (cache / "snapshots" / (first + ".json")).exists()
    assert (cache / "snapshots" / (second + ".tar")).is_file()
