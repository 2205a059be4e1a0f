# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole local bake under faults, interruption and -vvv logging.

- Faults: 20% of EC2 calls answered RequestLimitExceeded or InternalError, per seed: the bake
  completes and the account holds exactly the images it reports and nothing else.
- Secrets: the -vvv log of the first fault bake holds no private key and no AWS secret value.
- Interruption: ansible-playbook (its whole process group) killed during customization, while the
  image is pending and while copies are pending; sweep.yml, with sweep_now past the run's
  expires-at, leaves nothing of the run (the account was empty before it), and nothing of it on
  the controller: no mounted root, and no key file (the run's key directory is gone).
- Key directories: the sweep removes those of expired runs and of sweep_run_id only, never one of a
  run still going (a sweep "now" leaves a run killed minutes ago alone), never through a link.
- SSH open to the whole internet by halves (0.0.0.0/1 + 128.0.0.0/1, ...) is refused by the bake's
  validation and by the builder role, before any call that changes the account.
- The run's key never ships: with the kept user's authorized_keys holding it (as cloud-init puts it
  there on an EC2 builder), the image keeps the user's own key and loses the run's.
Each property has a planted test that shows its check fail.

Every bake here uses a private cache (BAKERY_CACHE_DIR: keys, local roots, snapshot archives) that
links to the shared Debian images, so a sweep with a far sweep_now never touches another bake's
files on this machine.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import ansible_bin, ansible_env
from tests.reliability.checks import account_problems, mutating_calls, run_leftovers, secret_leaks, tree_digest
from tests.reliability.conftest import REPO_ROOT, needs_root, play, run_ansible, scratch_collection
from tools.rootfs import harness

REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]
FAULT_SEEDS = [11, 29]
SWEEP_NOW = "2100-01-01T00:00:00Z"


def bake_vars(url: str, out: Path, run_id: str, family: str) -> dict:
    """examples/local.yml without packages and services (no package mirror needed, faster) and without
    the image test stage (its first boot is tested in tests/integration/test_bake.py)."""
    return {"bake_endpoint_url": url, "bake_output_dir": str(out), "bake_run_id": run_id, "bake_family": family,
            "bake_regions": REGIONS, "bake_packages": [], "bake_services": [], "bake_keep_latest": 0, "bake_test": False}


def bake_argv(extra: dict, verbosity: str = "", playbook: str = "playbooks/bake.yml") -> list:
    argv = [ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", playbook,
            "-e", "@examples/local.yml", "-e", json.dumps(extra)]
    return argv + ([verbosity] if verbosity else [])


def private_cache(path: Path) -> Path:
    """A cache of its own (BAKERY_CACHE_DIR) whose Debian images link to the shared ones."""
    path.mkdir(parents=True)
    shared = harness.cache_dir()
    for image in sorted(shared.glob("debian-*.tar")) + sorted(shared.glob("debian-*.json")):
        (path / image.name).symlink_to(image)
    return path


def release_cache(cache: Path) -> None:
    """Unmount and remove every local root a bake (or a kill) left in a private cache."""
    work = cache / "work"
    for run_dir in sorted(work.iterdir()) if work.is_dir() else []:
        subprocess.run([sys.executable, "-m", "tools.local_builder", "remove", "--root", str(run_dir / "root")],
                       cwd=str(REPO_ROOT), capture_output=True, text=True, check=False, timeout=300)
    if harness.mounts_under(cache):
        harness.unmount_all(cache)
    assert harness.mounts_under(cache) == []


@pytest.fixture
def cache(tmp_path):
    """A private bake cache for one test, unmounted and emptied afterwards."""
    path = private_cache(tmp_path / "cache")
    try:
        yield path
    finally:
        release_cache(path)
        shutil.rmtree(path, ignore_errors=True)


def cache_env(cache_path: Path, extra: dict | None = None) -> dict:
    return ansible_env(dict(extra or {}, BAKERY_CACHE_DIR=str(cache_path)))


def local_root(cache_path: Path, run_id: str) -> Path:
    return cache_path / "work" / run_id / "root"


def run_archive(cache_path: Path, run_id: str) -> Path:
    """The archive the local builder makes of a run's root before its image exists (tools/local_builder.py)."""
    return cache_path / "snapshots" / ("run-%s.tar" % run_id)


def local_work(cache_path: Path, run_id: str) -> list:
    """What a killed local bake leaves on this machine for the sweep: its root still mounted (killed
    while customizing) or the archive of its root not yet published (killed once the image was asked for)."""
    root = local_root(cache_path, run_id)
    return [str(point) for point in harness.mounts_under(root)] + [
        str(path) for path in (run_archive(cache_path, run_id),) if path.exists()]


def key_dir(cache_path: Path, run_id: str) -> Path:
    """Where the builder role keeps a run's private key (roles/builder/vars/main.yml)."""
    return cache_path / "keys" / run_id


# -- faults and secrets -------------------------------------------------------------------------

@needs_root()
@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_bake_completes_under_faults_and_leaves_only_its_images(aws, tmp_path, cache, seed):
    run_id = "faults-%d-%s" % (seed, secrets.token_hex(3))
    secret = "bakeryTestSecret" + secrets.token_urlsafe(24)
    token = "bakeryTestToken" + secrets.token_urlsafe(24)
    aws.configure(fault_rate=0.2, fault_seed=seed, fault_codes=["RequestLimitExceeded", "InternalError"])
    verbose = seed == FAULT_SEEDS[0]
    try:
        proc = subprocess.run(
            bake_argv(bake_vars(aws.url, tmp_path / "out", run_id, "rel-faults"), "-vvv" if verbose else ""),
            env=cache_env(cache, {"AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}),
            cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=1200, check=False)
    finally:
        release_cache(cache)
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
    assert not key_dir(cache, run_id).exists(), "the finished run's key directory is still there"
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

def _descendants(pid: int) -> set:
    """Every process below pid (by parent ID), whatever its session."""
    children: dict = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _kill_tree(proc) -> None:
    """SIGKILL the bake and everything it started, as a machine that dies would: ansible-core's
    workers start sessions of their own (setsid), so killing the process group alone would leave
    the running module working on after the "kill". The tree is stopped first (nothing forks
    unseen), then killed."""
    def signal_all(pids: set, signum: int) -> None:
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    tree: set = {proc.pid}
    while True:
        signal_all(tree, signal.SIGSTOP)
        grown = tree | _descendants(proc.pid) | {d for pid in tree for d in _descendants(pid)}
        if grown == tree:
            break
        tree = grown
    signal_all(tree, signal.SIGKILL)


def _kill_when(proc, aws, ready, timeout: float = 900) -> str:
    """Read the bake's output until ready(output, counts) holds, then SIGKILL it and every process it started."""
    output = []
    reader = threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ready("".join(output), aws.counts()):
            _kill_tree(proc)
            proc.wait(timeout=60)
            return "".join(output)
        time.sleep(0.5)
    if proc.poll() is None:
        _kill_tree(proc)
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


def killed_run_problems(aws, cache_path: Path, run_id: str) -> list:
    """What a killed run left after the sweep, in the account and on this machine (empty: nothing)."""
    problems = run_leftovers(aws, REGIONS, run_id)
    # the account was empty before the bake: nothing at all may remain
    problems += account_problems(aws, REGIONS, {})
    root = local_root(cache_path, run_id)
    problems += ["%s still mounted" % point for point in harness.mounts_under(root)]
    if root.exists():
        problems.append("local root %s left" % root)
    if run_archive(cache_path, run_id).exists():
        problems.append("run archive %s left" % run_archive(cache_path, run_id))
    keys_of_run = key_dir(cache_path, run_id)
    if keys_of_run.exists():
        problems.append("key directory %s left: %s" % (keys_of_run, sorted(p.name for p in keys_of_run.iterdir())))
    keys = cache_path / "keys"
    problems += ["%s left in the cache's key directory" % p for p in sorted(keys.iterdir())] if keys.is_dir() else []
    return problems


@needs_root()
@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_sweep_removes_everything_of_a_killed_bake(aws, tmp_path, cache, point):
    timeline, ready = KILL_POINTS[point]
    aws.configure(**timeline)
    run_id = "killed-%s-%s" % (point, secrets.token_hex(3))
    extra = bake_vars(aws.url, tmp_path / "out", run_id, "rel-killed")
    proc = subprocess.Popen(bake_argv(extra), env=cache_env(cache, {"PYTHONUNBUFFERED": "1"}), cwd=str(REPO_ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    _kill_when(proc, aws, ready)
    time.sleep(1)
    assert run_leftovers(aws, REGIONS, run_id), "the kill came too late: nothing of the run was left to sweep"
    # the killed run's root is still there, mounted, or its archive, and its private key (the local
    # builder makes the run's key pair as an EC2 builder has it): the sweep has local work
    left = local_work(cache, run_id)
    assert left, "the killed run left no mounted root or run archive to sweep"
    assert (key_dir(cache, run_id) / "id_ed25519").is_file(), "the killed run left no key file to sweep"
    # a sweep "now" leaves a run killed a moment ago alone (it expires bake_ttl_minutes after its start)
    early = run_ansible(REPO_ROOT / "playbooks" / "sweep.yml", ["-e", "@examples/local.yml", "-e", json.dumps(extra)],
                        env={"BAKERY_CACHE_DIR": str(cache)})
    assert early.returncode == 0, early.stdout[-4000:]
    assert local_work(cache, run_id) == left and (key_dir(cache, run_id) / "id_ed25519").is_file()
    sweep = run_ansible(REPO_ROOT / "playbooks" / "sweep.yml",
                        ["-e", "@examples/local.yml", "-e", json.dumps(dict(extra, sweep_now=SWEEP_NOW))],
                        env={"BAKERY_CACHE_DIR": str(cache)})
    assert sweep.returncode == 0, sweep.stdout[-4000:]
    assert killed_run_problems(aws, cache, run_id) == []


def test_planted_key_leftover_is_found(aws, tmp_path):
    """A key file (and anything else) left in the cache's key directory is reported."""
    cache_path = tmp_path / "cache"
    assert killed_run_problems(aws, cache_path, "planted-run") == []
    (cache_path / "keys" / "planted-run").mkdir(parents=True)
    (cache_path / "keys" / "planted-run" / "id_ed25519").write_text("planted")
    (cache_path / "keys" / "other-run-1").mkdir()
    problems = killed_run_problems(aws, cache_path, "planted-run")
    assert any("key directory" in p and "id_ed25519" in p for p in problems), problems
    assert any("other-run-1 left in the cache's key directory" in p for p in problems), problems


# -- key directories ----------------------------------------------------------------------------

def _plant_key_dirs(cache_path: Path, outside: Path) -> dict:
    """Key directories as runs leave them: made in 2020 (expired), just now, one to sweep by run ID,
    and things the sweep must never touch: a link named like a run to a directory outside, an
    expired directory whose name is not a run ID, an expired plain file."""
    keys = cache_path / "keys"
    planted = {}
    for name in ("expired-run-1", "fresh-run-1", "named-run-1", "x"):
        directory = keys / name
        directory.mkdir(parents=True)
        (directory / "id_ed25519").write_text("private key of %s\n" % name)
        planted[name] = directory
    outside.mkdir()
    (outside / "id_ed25519").write_text("the user's own key\n")
    (keys / "linked-run-1").symlink_to(outside, target_is_directory=True)
    (keys / "a-file-run-1").write_text("not a directory\n")
    old = 1577836800  # 2020-01-01
    for name in ("expired-run-1", "x", "a-file-run-1"):
        os.utime(keys / name, (old, old))
    os.utime(keys / "linked-run-1", (old, old), follow_symlinks=False)
    return planted


def _sweep_keys(aws, cache_path: Path, extra: dict, playbook: Path = REPO_ROOT / "playbooks" / "sweep.yml",
                args: tuple = (), collections: str | None = None) -> subprocess.CompletedProcess:
    settings = {"bake_builder": "aws", "bake_endpoint_url": aws.url, "bake_regions": ["us-east-1"]}
    return run_ansible(playbook, ["-e", json.dumps(dict(settings, **extra))] + list(args),
                       env={"BAKERY_CACHE_DIR": str(cache_path)}, collections=collections)


def key_sweep_problems(cache_path: Path, outside: Path, outside_digest: str, gone: set) -> list:
    """The sweep removed exactly the key directories in `gone`, and nothing outside the cache changed."""
    keys = cache_path / "keys"
    problems = []
    for name in ("expired-run-1", "fresh-run-1", "named-run-1", "x", "linked-run-1", "a-file-run-1"):
        there = os.path.lexists(keys / name)
        if name in gone and there:
            problems.append("%s was not removed" % name)
        if name not in gone and not there:
            problems.append("%s was removed" % name)
    if tree_digest(outside) != outside_digest or not (outside / "id_ed25519").is_file():
        problems.append("the directory outside the cache changed")
    return problems


def test_sweep_removes_key_directories_of_expired_runs_and_of_sweep_run_id_only(aws, tmp_path):
    cache_path, outside = tmp_path / "cache", tmp_path / "outside"
    _plant_key_dirs(cache_path, outside)
    digest = tree_digest(outside)
    # check mode, even far in the future: lists, removes nothing
    check = _sweep_keys(aws, cache_path, {"sweep_now": SWEEP_NOW}, args=("--check",))
    assert check.returncode == 0, check.stdout[-3000:]
    assert key_sweep_problems(cache_path, outside, digest, set()) == []
    # now: only the run expired long ago (a run killed minutes ago is not expired yet)
    now = _sweep_keys(aws, cache_path, {})
    assert now.returncode == 0, now.stdout[-3000:]
    assert "key directory %s" % (cache_path / "keys" / "expired-run-1") in now.stdout
    assert key_sweep_problems(cache_path, outside, digest, {"expired-run-1"}) == []
    # one run at once, whatever its age
    named = _sweep_keys(aws, cache_path, {"sweep_run_id": "named-run-1"})
    assert named.returncode == 0, named.stdout[-3000:]
    assert key_sweep_problems(cache_path, outside, digest, {"expired-run-1", "named-run-1"}) == []
    # far in the future: every run's directory, still never the link nor what is not a run's directory
    later = _sweep_keys(aws, cache_path, {"sweep_now": SWEEP_NOW})
    assert later.returncode == 0, later.stdout[-3000:]
    assert key_sweep_problems(cache_path, outside, digest, {"expired-run-1", "named-run-1", "fresh-run-1"}) == []


@pytest.mark.parametrize("run_id", ["../../outside", "named-run-1\n", "..", "run id", "r" * 65])
def test_sweep_run_id_that_is_not_a_run_id_is_refused_before_anything(aws, tmp_path, run_id):
    cache_path, outside = tmp_path / "cache", tmp_path / "outside"
    _plant_key_dirs(cache_path, outside)
    digest, keys_digest = tree_digest(outside), tree_digest(cache_path)
    aws.reset_counts()
    proc = _sweep_keys(aws, cache_path, {"sweep_run_id": run_id})
    assert proc.returncode != 0 and "sweep_run_id: empty or a run ID" in proc.stdout, proc.stdout[-2000:]
    assert tree_digest(outside) == digest and tree_digest(cache_path) == keys_digest
    assert aws.counts() == {}


def test_planted_key_sweep_without_the_age_rule_is_caught(aws, tmp_path):
    """A sweep that forgets the expiry of key directories (ami_cleanup's key_root rule) removes a run
    still going: the check reports it."""
    collections, root = scratch_collection(tmp_path / "colls")
    engine = root / "plugins" / "module_utils" / "_cleanup.py"
    text = engine.read_text()
    rule = "entry.stat.st_mtime >= cutoff"
    assert text.count(rule) == 1
    engine.write_text(text.replace(rule, "False"))
    cache_path, outside = tmp_path / "cache", tmp_path / "outside"
    _plant_key_dirs(cache_path, outside)
    digest = tree_digest(outside)
    proc = _sweep_keys(aws, cache_path, {}, collections=collections)
    assert proc.returncode == 0, proc.stdout[-3000:]
    problems = key_sweep_problems(cache_path, outside, digest, {"expired-run-1"})
    assert any("fresh-run-1 was removed" in p for p in problems), problems


# -- SSH open to the whole internet, by halves --------------------------------------------------

OPEN_BY_HALVES = [["0.0.0.0/1", "128.0.0.0/1"], ["::/1", "8000::/1"], ["203.0.113.0/24", "0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"]]


@pytest.mark.parametrize("cidrs", OPEN_BY_HALVES, ids=["ipv4-halves", "ipv6-halves", "ipv4-quarters"])
def test_the_bake_and_the_builder_role_refuse_ranges_covering_the_internet(aws, tmp_path, cidrs):
    """validate.yml and the builder role apply ami_builder's rule: refused before any call that changes the account."""
    extra = dict(bake_vars(aws.url, tmp_path / "out", "open-ssh-run", "rel-open"), bake_builder="aws", bake_ssh_cidrs=cidrs)
    private = {"BAKERY_CACHE_DIR": str(tmp_path / "cache")}  # a role that got past its check would make a key directory
    proc = subprocess.run(bake_argv(extra), env=ansible_env(private), cwd=str(REPO_ROOT), capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode != 0 and "bake_ssh_cidrs: SSH from anywhere" in proc.stdout, proc.stdout[-3000:]
    assert mutating_calls(aws.counts()) == {}
    book = tmp_path / "role.yml"
    book.write_text(json.dumps(play([{"name": "builder", "ansible.builtin.include_role": {"name": "bakery.ami.builder"},
                                      "vars": {"builder_run_id": "open-ssh-run", "builder_expires_at": "2100-01-01T00:00:00Z",
                                               "builder_source_image": {"image_id": "ami-0123456789abcdef0"},
                                               "builder_ssh_cidrs": cidrs}}], aws.url)))
    proc = run_ansible(book, env=private)
    assert proc.returncode != 0 and "do not open SSH to the whole internet" in proc.stdout, proc.stdout[-3000:]
    assert mutating_calls(aws.counts()) == {}
    assert not (tmp_path / "cache").exists(), "the role made something before its check"


# -- the run's key never ships ------------------------------------------------------------------

PLANT_ROLE = """---
- name: Make root's .ssh
  ansible.builtin.file:
    path: /root/.ssh
    state: directory
    mode: "0700"
- name: Put the run's key into root's authorized_keys beside root's own, as cloud-init does on an EC2 builder
  ansible.builtin.copy:
    dest: /root/.ssh/authorized_keys
    content: "{{ users_key }}\\n{{ hostvars['localhost'].builder_result.public_key }}\\n"
    mode: "0600"
- name: Keep the run's public key for the test
  ansible.builtin.copy:
    dest: "{{ run_key_copy }}"
    content: "{{ hostvars['localhost'].builder_result.public_key }}\\n"
    mode: "0600"
  delegate_to: localhost
"""
USERS_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK6QfbYv0b1g7u8Jr0z3oY8gqv1cSxJ8a3P6m8m1bQ2x deploy@example"


def shipped_key_problems(report: dict, run_key: str) -> list:
    """The image (its snapshot archive) must keep root's own key and hold no trace of the run's."""
    archive = report.get("snapshot_archive")
    if not archive or not Path(archive).is_file():
        return ["no snapshot archive in the report: %r" % archive]
    with tarfile.open(archive) as tar:
        try:
            member = tar.extractfile("./root/.ssh/authorized_keys")
        except KeyError:
            return ["root's authorized_keys is gone: its own key did not survive"]
        kept = member.read().decode()
    problems = []
    if USERS_KEY not in kept:
        problems.append("root's own key was removed")
    blob = run_key.split()[1]
    if blob in kept:
        problems.append("the run's key ships in root's authorized_keys")
    return problems


def _bake_with_planted_key(aws, tmp_path, cache_path, playbook="playbooks/bake.yml"):
    roles = tmp_path / "roles" / "plant_run_key" / "tasks"
    roles.mkdir(parents=True)
    (roles / "main.yml").write_text(PLANT_ROLE)
    run_id = "keyship-%s" % secrets.token_hex(3)
    run_key_copy = tmp_path / "run-key.pub"
    extra = dict(bake_vars(aws.url, tmp_path / "out", run_id, "rel-keyship"), bake_regions=["us-east-1"],
                 bake_roles=["plant_run_key"], users_key=USERS_KEY, run_key_copy=str(run_key_copy),
                 generalize_keep_authorized_keys=["root"], bake_local_tools_dir=str(REPO_ROOT))
    proc = subprocess.run(bake_argv(extra, playbook=playbook),
                          env=cache_env(cache_path, {"ANSIBLE_ROLES_PATH": str(tmp_path / "roles")}),
                          cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    report = json.loads((tmp_path / "out" / "bake-report.json").read_text())
    return report, run_key_copy.read_text().strip()


@needs_root()
def test_the_runs_key_never_ships_even_in_a_kept_users_authorized_keys(aws, tmp_path, cache):
    report, run_key = _bake_with_planted_key(aws, tmp_path, cache)
    assert run_key.startswith("ssh-ed25519 ") and run_key.endswith(" bakery-" + report["run_id"]), run_key
    assert shipped_key_problems(report, run_key) == []


@needs_root()
def test_planted_bake_without_the_run_key_is_caught(aws, tmp_path, cache):
    """The bake as it was: the key read from a .pub file nothing wrote, errors ignored, so the generalize
    role got an empty key. With that empty key, the run's key ships and the check says so."""
    books = tmp_path / "playbooks"
    shutil.copytree(REPO_ROOT / "playbooks", books)
    text = (books / "bake.yml").read_text()
    fixed = "generalize_bake_authorized_key: \"{{ (__bake_launch.builder | default({})).public_key | default('', true) }}\""
    assert fixed in text
    (books / "bake.yml").write_text(text.replace(fixed, "generalize_bake_authorized_key: \"\""))
    report, run_key = _bake_with_planted_key(aws, tmp_path, cache, playbook=str(books / "bake.yml"))
    assert "the run's key ships in root's authorized_keys" in shipped_key_problems(report, run_key)


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
