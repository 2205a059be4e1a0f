# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image code never runs with the host's power (root required).

On a fresh root of each Debian suite (bookworm: cloud-init 22.4, trixie: 25.1) the image's
/usr/bin/cloud-init, /usr/bin/python3 and /bin/sh are replaced by hostile programs
(tests/reliability/hostile_image.py) that try every way out of a chroot: chroot again, an
inherited directory descriptor, open_by_handle_at, /proc/<pid>/root of a host process, ptrace, a
block device node of the host's disk (in /dev and in /tmp, and a new one), a setuid binary with
every file capability, mount, a writable core_pattern or sysrq-trigger, writing through
/proc/self/fd, an abstract unix socket and a TCP listener of the host. The image code is run
the way the collection runs it:

- ``_sandbox.run_in_image`` with the argv of the real callers (``cloud-init schema
  --config-file F`` for cloudinit_guard, ``cloud-init clean --logs --seed`` for generalize),
  by a careless caller that leaks a directory descriptor of the host's / and has a secret in
  its environment;
- the local builder's chroot connection through tools/sandbox_chroot.py: a real play (module
  run, copy of a host file: put_file, fetch: fetch_file) against the root mounted as the local
  builder mounts it;
- the real modules, where they exist (cloudinit_guard with a protection that makes it validate,
  the generalize role on a root from the controller).

Properties, for each: no marker at a host path, a decoy tree outside the root byte-, inode-
and mode-identical, no host process visible, no listener of the host reached (no network but
a loopback of its own where the network is not shared), no escape capability in the bounding
set, none of the caller's environment in the image, nothing left running. The control test runs
the same hostile image in a plain chroot and requires the escapes to succeed there, so none of
these checks passes because a probe is broken.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.reliability import hostile_image
from tests.reliability.conftest import needs_root
from tests.integration.conftest import ansible_bin, ansible_env
from tools.rootfs import harness
from tools.sandbox_chroot import sandbox_module

REPO_ROOT = Path(__file__).resolve().parents[2]
WRAPPER = REPO_ROOT / "tools" / "sandbox_chroot"
sandbox = sandbox_module()

pytestmark = [needs_root(), pytest.mark.skipif(sandbox.find_unshare() is None, reason="util-linux unshare missing")]

SCHEMA_ARGV = ["/usr/bin/cloud-init", "schema", "--config-file", "/tmp/.bakery-guard-x.cfg"]
CLEAN_ARGV = ["/usr/bin/cloud-init", "clean", "--logs", "--seed"]
# With the network shared, abstract sockets of the host are out of reach only with Landlock scopes.
LANDLOCK_SCOPES = sandbox.landlock_abi() >= 6


def _host_can_read_its_disk() -> bool:
    """Whether a process of this host may open a node of the host's disk at all (some CI
    containers forbid block devices to everyone): the device probe can only escape where it may."""
    st = os.stat(Path(__file__))
    node = Path(tempfile.gettempdir()) / ("bakery-disk-probe-%d" % os.getpid())
    try:
        os.mknod(node, 0o60600, os.makedev(os.major(st.st_dev), os.minor(st.st_dev)))
        with open(node, "rb") as handle:
            return len(handle.read(512)) == 512
    except OSError:
        return False
    finally:
        if os.path.lexists(node):
            node.unlink()


def _suites() -> list:
    wanted = [s.strip() for s in os.environ.get("BAKERY_TEST_SUITES", "").split(",") if s.strip()]
    return wanted or list(harness.SUITES)


class Host:
    """What the hostile image aims at outside the root: markers dir, decoy tree, a sentinel
    process, an abstract unix socket and a TCP listener, a secret in the caller's environment."""

    def __init__(self, base: Path):
        self.base = base
        self.token = "bakery-sentinel-" + uuid.uuid4().hex
        self.daemon_token = "bakery-daemon-" + uuid.uuid4().hex
        self.secret = "controller-secret-" + uuid.uuid4().hex
        self.markers = base / "markers"
        self.markers.mkdir()
        self.decoy = base / "decoy"
        (self.decoy / "etc").mkdir(parents=True)
        (self.decoy / "etc" / "shadow").write_text("root:$6$host$secret:19000:0:99999:7:::\n")
        (self.decoy / "etc" / "shadow").chmod(0o640)
        (self.decoy / "copy-source.txt").write_text("a file of the controller that a play copies\n")
        (self.decoy / "keys").mkdir(mode=0o700)
        (self.decoy / "keys" / "id_ed25519").write_text("not a real key\n")
        self.abstract = "bakery-sandbox-" + uuid.uuid4().hex
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind("\0" + self.abstract)
        self.unix.listen(16)
        self.unix.setblocking(False)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("0.0.0.0", 0))
        self.tcp.listen(16)
        self.tcp.setblocking(False)
        self.sentinel = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-c", "import time; time.sleep(3600)", self.token])

    def config(self, root: Path) -> dict:
        st = os.stat(root)
        hosts = ["127.0.0.1"]
        try:
            hosts += sorted({info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
                            - {"127.0.0.1"})
        except OSError:
            pass
        return {"markers": str(self.markers), "decoy_file": str(self.decoy / "etc" / "shadow"),
                "sentinel_token": self.token, "daemon_token": self.daemon_token, "abstract": self.abstract,
                "port": self.tcp.getsockname()[1], "hosts": hosts,
                "disk": [os.major(st.st_dev), os.minor(st.st_dev)]}

    def accepted(self) -> list:
        got = []
        for name, listener in (("abstract unix socket", self.unix), ("tcp", self.tcp)):
            while True:
                try:
                    conn = listener.accept()[0]
                except (BlockingIOError, OSError):
                    break
                got.append(name)
                conn.close()
        return got

    def close(self) -> None:
        self.sentinel.kill()
        self.sentinel.wait()
        self.unix.close()
        self.tcp.close()
        kill_leftovers(self.daemon_token)


def kill_leftovers(token: str) -> list:
    found = hostile_image.host_processes_with(token)
    for pid in found:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    return found


class Image:
    def __init__(self, suite: str, root: Path, host: Host):
        self.suite, self.root, self.host = suite, root, host
        self.decoy_before = hostile_image.tree_state(host.decoy)

    def check(self, isolated_network: bool, min_reports: int = 1, left_running: list = ()) -> list:
        found = hostile_image.problems(
            hostile_image.reports(self.root), self.host.markers, self.host.decoy, self.decoy_before,
            self.host.secret, isolated_network, isolated_network or LANDLOCK_SCOPES, self.host.accepted(),
            min_reports)
        if left_running:
            found.append("processes of the image still running on the host: %s" % list(left_running))
        return found

    def reset(self) -> None:
        hostile_image.clear_reports(self.root)


def _still_running(token: str) -> list:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        found = hostile_image.host_processes_with(token)
        if not found:
            return []
        time.sleep(0.1)
    return kill_leftovers(token)


@pytest.fixture(scope="module", params=_suites())
def image(request, tmp_path_factory):
    reasons = harness.missing_prerequisites()
    if reasons:
        pytest.skip("rootfs harness unavailable: " + "; ".join(reasons))
    suite = request.param
    base = tmp_path_factory.mktemp("sandbox-" + suite)
    root = base / "root"
    harness.fresh_root(root, suite=suite)
    host = Host(base)
    try:
        hostile_image.plant(root, host.config(root))
        yield Image(suite, root, host)
    finally:
        host.close()
        harness.remove_root(root)


@pytest.fixture
def fresh(image):
    """The module's hostile image with no report and no marker yet (a failed or xfailed test before
    may have left some) and the decoy state taken now."""
    image.reset()
    for path in image.host.markers.iterdir():
        path.unlink()
    kill_leftovers(image.host.daemon_token)
    image.decoy_before = hostile_image.tree_state(image.host.decoy)
    yield image
    image.reset()


def careless_run(image: Image, stdin=subprocess.DEVNULL):
    """A caller of run_in_image that leaks a directory descriptor of the host's / and has a secret
    in its environment (AnsibleModule.run_command's shape: run(argv, **kw) -> rc, out, err)."""
    def run(argv, environ_update=None):
        leak = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
        try:
            proc = subprocess.run(argv, stdin=stdin, capture_output=True, text=True, timeout=300, pass_fds=(leak,),
                                  env=dict(os.environ, BAKERY_CONTROLLER_SECRET=image.host.secret,
                                           **(environ_update or {})), check=False)
        finally:
            os.close(leak)
        return proc.returncode, proc.stdout, proc.stderr
    return run


@pytest.mark.parametrize("argv", [SCHEMA_ARGV, CLEAN_ARGV], ids=["cloudinit_guard-schema", "generalize-clean"])
def test_cloud_init_of_the_image_runs_sandboxed(fresh, argv):
    rc, out, err = sandbox.run_in_image(str(fresh.root), argv, careless_run(fresh))
    assert rc == 0, (out, err)
    found = fresh.check(isolated_network=True, left_running=_still_running(fresh.host.daemon_token))
    assert found == [], found
    report = hostile_image.reports(fresh.root)[0]
    assert report["argv"] == argv
    assert report["interfaces"] in ([], ["lo"])
    assert {int(pid) for pid in report["processes"]} <= set(range(1, 9)), report["processes"]
    # the disk node the image ships in /dev is under the sandbox's own /dev; the one in /tmp is on
    # a nodev mount (EACCES, whatever this host allows); no new node can be made
    devices = report["probes"]["device_nodes"]
    assert "/dev/hostdisk: No such file" in devices and "/tmp/hostdisk: Permission denied" in devices, devices
    assert "mknod: Operation not permitted" in devices, devices


def test_sandbox_refuses_streams_the_image_could_reopen(fresh):
    """A regular file or a host directory as a standard stream: refused before any image code."""
    target = fresh.host.decoy / "copy-source.txt"
    with open(target, "rb") as regular:
        rc, _out, err = sandbox.run_in_image(str(fresh.root), SCHEMA_ARGV, careless_run(fresh, stdin=regular))
    assert rc == sandbox.EXIT_SANDBOX and "stdin must be a pipe" in err and "regular file" in err
    directory = os.open(str(fresh.host.decoy), os.O_RDONLY | os.O_DIRECTORY)
    try:
        rc, _out, err = sandbox.run_in_image(str(fresh.root), SCHEMA_ARGV, careless_run(fresh, stdin=directory))
    finally:
        os.close(directory)
    # the host's Python already refuses a directory as stdin before the sandbox's own check
    assert rc != 0 and "a directory" in err.replace("is a directory", "a directory"), err
    assert hostile_image.reports(fresh.root) == []  # nothing of the image ran
    assert fresh.check(isolated_network=True, min_reports=0) == []


@pytest.mark.parametrize("name", ["proc", "dev"])
@pytest.mark.parametrize("target", ["decoy", "/"])
def test_symlinked_proc_or_dev_is_refused(fresh, name, target):
    """<root>/proc or <root>/dev as a link to a host path: no mount follows it, nothing runs."""
    path = fresh.root / name
    moved = fresh.root / (name + ".real")
    path.rename(moved)
    try:
        path.symlink_to(str(fresh.host.decoy) if target == "decoy" else target)
        rc, _out, err = sandbox.run_in_image(str(fresh.root), SCHEMA_ARGV, careless_run(fresh))
    finally:
        path.unlink()
        moved.rename(path)
    assert rc == sandbox.EXIT_SANDBOX, err
    assert "/%s is a symbolic link" % name in err
    assert hostile_image.reports(fresh.root) == []
    assert fresh.check(isolated_network=True, min_reports=0) == []
    assert harness.mounts_under(fresh.host.decoy) == []


def _chroot_play(image: Image, chroot_exe: str, tmp: Path) -> subprocess.CompletedProcess:
    """A play through community.general.chroot, as the local builder's bake runs it (pipelining: modules
    travel on stdin; copy still hands the controller's file to put_file)."""
    fetched = tmp / "fetched"
    play = [{
        "name": "through the local builder's connection", "hosts": "builder", "gather_facts": False,
        "tasks": [
            {"name": "a module", "ansible.builtin.ping": {}},
            {"name": "put_file of a controller file", "ansible.builtin.copy": {
                "src": str(image.host.decoy / "copy-source.txt"), "dest": "/root/copied.txt", "mode": "0644"}},
            {"name": "fetch_file", "ansible.builtin.fetch": {"src": "/etc/debian_version", "dest": str(fetched) + "/",
                                                             "flat": True}},
            {"name": "a command", "ansible.builtin.command": {"argv": ["/bin/true"]}, "changed_when": False},
        ]}]
    book = tmp / "play.yml"
    book.write_text(json.dumps(play))
    inventory = tmp / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"builder": {
        "ansible_connection": "community.general.chroot", "ansible_host": str(image.root),
        "ansible_chroot_exe": chroot_exe, "ansible_python_interpreter": "/usr/bin/python3"}}}}))
    env = ansible_env({"BAKERY_CONTROLLER_SECRET": image.host.secret, "ANSIBLE_PIPELINING": "1"})
    with harness.mounted(image.root):  # proc, sys, minimal dev, run: as tools/local_builder.py prepares it
        return subprocess.run([ansible_bin("ansible-playbook"), "-i", str(inventory), str(book)], env=env,
                              cwd=str(tmp), capture_output=True, text=True, timeout=600, check=False)


def test_local_builder_connection_runs_sandboxed(fresh, tmp_path):
    proc = _chroot_play(fresh, str(WRAPPER), tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    copied = fresh.root / "root" / "copied.txt"
    assert copied.read_bytes() == (fresh.host.decoy / "copy-source.txt").read_bytes()
    assert (tmp_path / "fetched" / "debian_version").read_bytes() == (fresh.root / "etc" / "debian_version").read_bytes()
    # the hostile sh and python ran for every command of the play (module transfer, copy, fetch...)
    found = fresh.check(isolated_network=False, min_reports=6, left_running=_still_running(fresh.host.daemon_token))
    assert found == [], found
    assert harness.mounts_under(fresh.root) == []


def test_control_plain_chroot_is_escaped(fresh, tmp_path):
    """The same hostile image in a plain chroot (what the sandbox replaces) gets out: every check
    above can fail."""
    leak = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with harness.mounted(fresh.root):
            proc = subprocess.run(["chroot", str(fresh.root)] + SCHEMA_ARGV, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=300, pass_fds=(leak,), check=False,
                                  env=dict(os.environ, BAKERY_CONTROLLER_SECRET=fresh.host.secret))
    finally:
        os.close(leak)
    assert proc.returncode == 0, proc.stderr
    found = fresh.check(isolated_network=True, left_running=_still_running(fresh.host.daemon_token))
    text = "\n".join(found)
    expected = ["double_chroot: ESCAPED", "inherited_fd: ESCAPED", "open_by_handle: ESCAPED",
                "proc_pid_root: ESCAPED", "host_process_visible: ESCAPED", "ptrace: ESCAPED", "mount: ESCAPED",
                "proc_writable: ESCAPED", "abstract_socket: ESCAPED", "network: ESCAPED",
                "markers outside the root", "decoy tree outside the root changed", "capability 18 in the bounding set",
                "network interfaces", "environment reached the image", "still running on the host"]
    if _host_can_read_its_disk():
        expected.append("device_nodes: ESCAPED")
    for item in expected:
        assert item in text, "plain chroot: %r not caught:\n%s" % (item, text)
    # put the decoy back for the tests that follow
    (fresh.host.decoy / "etc" / "shadow").write_text("root:$6$host$secret:19000:0:99999:7:::\n")


def test_real_cloudinit_guard_runs_the_schema_check_sandboxed(fresh, tmp_path):
    """bakery.ami.cloudinit_guard on the root from the controller, a protection that writes a
    drop-in (so the image's cloud-init validates it), in check mode as a dry run would."""
    args = {"root": str(fresh.root), "protect": ["ssh_config", "hostname"]}
    env = ansible_env({"BAKERY_CONTROLLER_SECRET": fresh.host.secret, "ANSIBLE_STDOUT_CALLBACK": "json",
                       "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})
    proc = subprocess.run([ansible_bin("ansible"), "localhost", "-c", "local", "-m", "bakery.ami.cloudinit_guard",
                           "-a", json.dumps(args), "--check"], env=env, capture_output=True, text=True,
                          timeout=300, check=False, stdin=subprocess.DEVNULL)
    found = fresh.check(isolated_network=True, left_running=_still_running(fresh.host.daemon_token))
    assert found == [], found
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_real_generalize_role_runs_cloud_init_clean_sandboxed(fresh, tmp_path):
    """The generalize role on the root from the controller (generalize_root), as for a mounted
    volume: its `cloud-init clean` is the image's program."""
    # cloud-init state of a builder, so that the role has something for `cloud-init clean` to do
    state = fresh.root / "var/lib/cloud/instances/i-0hostile0000001"
    state.mkdir(parents=True, exist_ok=True)
    (state / "obj.pkl").write_bytes(b"builder state")
    (fresh.root / "var/lib/cloud/data").mkdir(parents=True, exist_ok=True)
    (fresh.root / "var/lib/cloud/data/instance-id").write_text("i-0hostile0000001\n")
    book = tmp_path / "generalize.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                 "roles": [{"role": "bakery.ami.generalize", "generalize_root": str(fresh.root),
                                            "generalize_live_system": False}]}]))
    subprocess.run([ansible_bin("ansible-playbook"), "-i", "localhost,", str(book)], capture_output=True,
                   text=True, timeout=600, check=False, stdin=subprocess.DEVNULL,
                   env=ansible_env({"BAKERY_CONTROLLER_SECRET": fresh.host.secret}))
    # generalize may stop on what it finds in this image; what matters is how clean ran
    found = fresh.check(isolated_network=True, left_running=_still_running(fresh.host.daemon_token))
    assert found == [], found
