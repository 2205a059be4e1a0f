# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole local bake under faults, interruption and -vvv logging.

- Faults: 20% of EC2 calls answered RequestLimitExceeded or InternalError, per seed: the bake
  completes and the account holds exactly the images it reports and nothing else.
- Secrets: the -vvv log of the first fault bake holds no private key and no AWS secret value.
- Interruption: ansible-playbook (its whole process group) killed during customization, while the
  image is pending and while copies are pending; sweep.yml, with sweep_now past the run's
  expires-at, leaves nothing of the run (the account was empty before it).
Each property has a planted test that shows its check fail.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import ansible_bin, ansible_env
from tests.reliability.checks import account_problems, run_leftovers, secret_leaks
from tests.reliability.conftest import REPO_ROOT, needs_root, play, run_ansible, scratch_collection
from tools.rootfs import harness

REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]
FAULT_SEEDS = [11, 29]
SWEEP_NOW = "2100-01-01T00:00:00Z"


def bake_vars(url: str, out: Path, run_id: str, family: str) -> dict:
    """examples/local.yml without packages and services (no package mirror needed, faster)."""
    return {"bake_endpoint_url": url, "bake_output_dir": str(out), "bake_run_id": run_id, "bake_family": family,
            "bake_regions": REGIONS, "bake_packages": [], "bake_services": [], "bake_keep_latest": 0}


def bake_argv(extra: dict, verbosity: str = "") -> list:
    argv = [ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", "playbooks/bake.yml",
            "-e", "@examples/local.yml", "-e", json.dumps(extra)]
    return argv + ([verbosity] if verbosity else [])


def local_root(run_id: str) -> Path:
    return harness.cache_dir() / "work" / run_id / "root"


def remove_local_root(run_id: str) -> None:
    """The local builder's root of a killed run stays mounted (sweep.yml removes it): make sure."""
    root = local_root(run_id)
    if root.exists() or root.parent.exists():
        subprocess.run([sys.executable, "-m", "tools.local_builder", "remove", "--root", str(root)],
                       cwd=str(REPO_ROOT), capture_output=True, text=True, check=False, timeout=300)


# -- faults and secrets -------------------------------------------------------------------------

@needs_root()
@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_bake_completes_under_faults_and_leaves_only_its_images(aws, tmp_path, seed):
    run_id = "faults-%d-%s" % (seed, secrets.token_hex(3))
    secret = "bakeryTestSecret" + secrets.token_urlsafe(24)
    token = "bakeryTestToken" + secrets.token_urlsafe(24)
    aws.configure(fault_rate=0.2, fault_seed=seed, fault_codes=["RequestLimitExceeded", "InternalError"])
    verbose = seed == FAULT_SEEDS[0]
    try:
        proc = subprocess.run(
            bake_argv(bake_vars(aws.url, tmp_path / "out", run_id, "rel-faults"), "-vvv" if verbose else ""),
            env=ansible_env({"AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}),
            cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=1200, check=False)
    finally:
        remove_local_root(run_id)
    faults = aws.faults()
    aws.configure(fault_rate=0.0)
    log = proc.stdout + proc.stderr
    (tmp_path / "bake.log").write_text(log)
    assert proc.returncode == 0, "bake failed under faults (seed %d, faults %s):\n%s" % (seed, faults, log[-5000:])
    assert sum(faults.values()) > 0, "the endpoint injected no fault"
    report = json.loads((tmp_path / "out" / "bake-report.json").read_text())
    images = {region: image if isinstance(image, str) else image.get("image_id")
              for region, image in report["images"].items()}
    assert sorted(images) == sorted(REGIONS), report["images"]
    assert account_problems(aws, REGIONS, images) == []
    if verbose:
        assert "<localhost> EXEC" in log or "ESTABLISH LOCAL CONNECTION" in log, "not a -vvv log"
        assert secret_leaks(log, {"AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}) == []


def test_planted_leftover_is_found(aws):
    """An account with the expected image, then an extra key pair, security group and snapshot."""
    ec2 = aws.client("ec2", "us-east-1")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    ec2.delete_volume(VolumeId=volume)
    image = ec2.register_image(Name="rel-planted", RootDeviceName="/dev/xvda", Architecture="x86_64",
                               VirtualizationType="hvm",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}])
    expected = {"us-east-1": image["ImageId"]}
    assert account_problems(aws, ["us-east-1"], expected) == []
    ec2.create_key_pair(KeyName="planted-key")
    ec2.create_security_group(GroupName="planted-sg", Description="planted")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    ec2.create_snapshot(VolumeId=volume)
    problems = account_problems(aws, ["us-east-1"], expected)
    for needle in ("key pair planted-key", "planted-sg", "extra snapshot", "volume %s" % volume):
        assert any(needle in p for p in problems), (needle, problems)
    assert any("missing" in p for p in account_problems(aws, ["us-east-1"], {"us-east-1": "ami-0123456789abcdef0"}))


def test_planted_secret_leak_is_found(aws, tmp_path):
    """A fake module that returns the AWS secret and a private key, run with -vvv."""
    collections, root = scratch_collection(tmp_path / "colls")
    (root / "plugins" / "modules" / "leaky.py").write_text(
        "#!/usr/bin/python\n# -*- coding: utf-8 -*-\nfrom __future__ import annotations\n"
        "import os\nfrom ansible.module_utils.basic import AnsibleModule\n\n\n"
        "def main():\n    module = AnsibleModule(argument_spec={})\n"
        "    key = '-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\n-----END OPENSSH PRIVATE KEY-----'\n"
        "    module.exit_json(changed=False, debug=os.environ.get('AWS_SECRET_ACCESS_KEY'), key=key)\n\n\n"
        "if __name__ == '__main__':\n    main()\n")
    secret = "bakeryTestSecret" + secrets.token_urlsafe(24)
    book = tmp_path / "leak.yml"
    book.write_text(json.dumps(play([{"name": "leak", "bakery.ami.leaky": {}}], aws.url)))
    proc = run_ansible(book, ["-vvv"], env={"AWS_SECRET_ACCESS_KEY": secret}, collections=collections)
    assert proc.returncode == 0, proc.stdout[-3000:]
    problems = secret_leaks(proc.stdout + proc.stderr, {"AWS_SECRET_ACCESS_KEY": secret})
    assert any("AWS_SECRET_ACCESS_KEY" in p for p in problems), problems
    assert any("private key" in p for p in problems), problems


# -- interruption -------------------------------------------------------------------------------

def _kill_when(proc, aws, ready, timeout: float = 900) -> str:
    """Read the bake's output until ready(output, counts) holds, then SIGKILL its process group."""
    output = []
    reader = threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ready("".join(output), aws.counts()):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            return "".join(output)
        time.sleep(0.5)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    raise AssertionError("the bake never reached the kill point:\n" + "".join(output)[-4000:])


KILL_POINTS = {
    # the builder is customizing (chroot) when a customize task has started
    "customizing": ({}, lambda out, counts: "TASK [bakery.ami.customize" in out
                    and "TASK [bakery.ami.release_lock" not in out),
    # CreateImage has been served, the image stays pending for 120 s
    "image-pending": ({"create_delay": 120}, lambda out, counts: counts.get("CreateImage", 0) >= 1),
    # every CopyImage has been served, the copies stay pending for 120 s
    "copies-pending": ({"copy_delay": 120}, lambda out, counts: counts.get("CopyImage", 0) >= len(REGIONS) - 1),
}


@needs_root()
@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_sweep_removes_everything_of_a_killed_bake(aws, tmp_path, point):
    timeline, ready = KILL_POINTS[point]
    aws.configure(**timeline)
    run_id = "killed-%s-%s" % (point, secrets.token_hex(3))
    extra = bake_vars(aws.url, tmp_path / "out", run_id, "rel-killed")
    root = local_root(run_id)
    try:
        proc = subprocess.Popen(bake_argv(extra), env=ansible_env({"PYTHONUNBUFFERED": "1"}), cwd=str(REPO_ROOT),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        _kill_when(proc, aws, ready)
        time.sleep(1)
        assert run_leftovers(aws, REGIONS, run_id), "the kill came too late: nothing of the run was left to sweep"
        # the killed run's root is still there, mounted: the sweep has something local to remove
        assert harness.mounts_under(root), "the killed run left no mounted root to sweep"
        sweep = run_ansible(REPO_ROOT / "playbooks" / "sweep.yml",
                            ["-e", "@examples/local.yml", "-e", json.dumps(dict(extra, sweep_now=SWEEP_NOW))])
        assert sweep.returncode == 0, sweep.stdout[-4000:]
        assert run_leftovers(aws, REGIONS, run_id) == []
        # the account was empty before the bake: nothing at all may remain
        assert account_problems(aws, REGIONS, {}) == []
        # nor on this machine: the root is unmounted and gone
        assert harness.mounts_under(root) == [] and not root.exists(), harness.mounts_under(root)
    finally:
        remove_local_root(run_id)


@needs_root()
def test_local_sweep_unmounts_and_removes_stale_roots_only(tmp_path):
    """The local half of sweep.yml: a killed run's root (mounted, older than the TTL) goes; a root
    of a run still going stays. The mount check used above sees the planted mount first."""
    cache = tmp_path / "cache"
    stale = cache / "work" / "stale-run-1" / "root"
    fresh = cache / "work" / "fresh-run-1" / "root"
    for root in (stale, fresh):
        (root / "proc").mkdir(parents=True)
    source = tmp_path / "bind-source"
    source.mkdir()
    subprocess.run(["mount", "--bind", str(source), str(stale / "proc")], check=True)
    try:
        os.utime(stale.parent, (1577836800, 1577836800))  # made in 2020
        assert harness.mounts_under(stale), "the planted mount is not seen"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        proc = subprocess.run([sys.executable, "-m", "tools.local_builder", "--cache", str(cache), "sweep",
                               "--older-than", now, "--ttl-minutes", "180"],
                              cwd=str(REPO_ROOT), capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["removed"] == [str(stale)]
        assert harness.mounts_under(stale) == [] and not stale.exists()
        assert fresh.is_dir()
    finally:
        if stale.exists():
            harness.unmount_all(stale)


def test_planted_run_leftover_is_found(aws):
    """Resources tagged with a run's ID (and its key pair name) are reported; others are not."""
    ec2 = aws.client("ec2", "us-west-2")
    tags = [{"Key": "bakery:run-id", "Value": "planted-run"}]
    ec2.create_security_group(GroupName="other", Description="not of the run")
    assert run_leftovers(aws, ["us-west-2"], "planted-run") == []
    ec2.create_key_pair(KeyName="bakery-planted-run")
    ec2.create_volume(AvailabilityZone="us-west-2a", Size=1,
                      TagSpecifications=[{"ResourceType": "volume", "Tags": tags}])
    problems = run_leftovers(aws, ["us-west-2"], "planted-run")
    assert any("key_pair bakery-planted-run" in p for p in problems), problems
    assert any("volume" in p for p in problems), problems
    assert not any("other" in p for p in problems), problems
