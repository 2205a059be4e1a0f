# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The harness itself, on each Debian suite: image hygiene of the cache, the generation of
cloud-init and OpenSSH it really holds, mount safety, a first boot, and a first boot whose
user code has none of the host's power."""

from __future__ import annotations

import ast
import os
import re
import socket
import stat

from tools.rootfs import harness

# What each suite's image really is (the README's table of verified distributions cites this).
SUITE_FACTS = {
    "bookworm": {"debian": "12", "cloud_init": "22.4.", "openssh": "1:9.", "dsa_host_key": True},
    "trixie": {"debian": "13", "cloud_init": "25.1.", "openssh": "1:10.", "dsa_host_key": False},
}


def package_version(root, package: str) -> str | None:
    status = (root / "var/lib/dpkg/status").read_text(errors="replace")
    for stanza in status.split("\n\n"):
        if re.search(r"^Package: %s$" % re.escape(package), stanza, re.M) and "Status: install ok installed" in stanza:
            return re.search(r"^Version: (\S+)$", stanza, re.M).group(1)
    return None


def test_image_is_the_suites_generation(shared_root, suite):
    facts = SUITE_FACTS[suite]
    assert (shared_root / "etc/debian_version").read_text().split(".")[0].strip() == facts["debian"]
    assert package_version(shared_root, "cloud-init").startswith(facts["cloud_init"])
    assert package_version(shared_root, "openssh-server").startswith(facts["openssh"])


def test_cached_image_ships_no_host_keys_and_no_policy(shared_root):
    assert not list((shared_root / "etc/ssh").glob("ssh_host_*"))
    assert not (shared_root / "usr/sbin/policy-rc.d").exists()
    assert (shared_root / "usr/bin/cloud-init").exists()
    assert (shared_root / "usr/sbin/sshd").exists()
    assert os.listdir(shared_root / "dev") == []
    assert (shared_root / "etc/hostname").read_text() == "localhost\n"
    machine_id = shared_root / "etc/machine-id"
    assert not machine_id.exists() or machine_id.read_text() == ""


def test_mounted_has_minimal_dev_and_leaves_nothing(shared_root):
    with harness.mounted(shared_root) as root:
        dev = root / "dev"
        names = set(os.listdir(dev))
        assert {"null", "zero", "full", "random", "urandom", "tty", "pts"} <= names
        for entry in dev.iterdir():
            mode = os.lstat(entry).st_mode
            assert not stat.S_ISBLK(mode), "block device %s in minimal /dev" % entry
        assert harness.mounts_under(root)
        proc = harness.chroot_run(root, ["cat", "/proc/self/status"], network=False)
        assert "Name:" in proc.stdout
    assert harness.mounts_under(shared_root) == []


def test_mounted_unmounts_on_error(shared_root):
    try:
        with harness.mounted(shared_root):
            raise ValueError("boom")
    except ValueError:
        pass
    assert harness.mounts_under(shared_root) == []


def test_chroot_run_is_sandboxed(shared_root):
    """What the harness runs in an image (apt during the build, the boot check's prefetch) has
    its own PID namespace, a read-only proc, no escape capability, a clean environment."""
    os.environ["BAKERY_HARNESS_TEST_SECRET"] = "host-only-value"
    try:
        proc = harness.chroot_run(shared_root, ["sh", "-c", "ls /proc; grep CapBnd /proc/self/status; env; "
                                                "grep ' /proc ' /proc/self/mountinfo"], network=False)
    finally:
        del os.environ["BAKERY_HARNESS_TEST_SECRET"]
    pids = [name for name in proc.stdout.split() if name.isdigit()]
    assert len(pids) <= 4, pids
    bounding = int(re.search(r"CapBnd:\s+([0-9a-f]+)", proc.stdout).group(1), 16)
    for cap in (2, 16, 17, 18, 19, 21, 27):  # dac_read_search, module, rawio, chroot, ptrace, admin, mknod
        assert not bounding & (1 << cap), "capability %d kept" % cap
    assert "host-only-value" not in proc.stdout
    assert re.search(r" /proc ro,", proc.stdout)


def test_first_boot_generates_host_keys_and_leaves_host_alone(fresh_root, suite):
    host_name = socket.gethostname()
    keys = ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_dsa_key"]
    before = harness.snapshot_files(fresh_root, ["/etc/hostname"] + keys)
    assert before["/etc/ssh/ssh_host_ed25519_key"] is None
    result = harness.first_boot(fresh_root, "i-0harness0001", "harness-boot", keep_seed=False)
    after = harness.snapshot_files(fresh_root, ["/etc/hostname"] + keys)
    assert [s.name for s in result.stages] == ["init-local", "init", "modules-config", "modules-final"]
    assert after["/etc/ssh/ssh_host_ed25519_key"] is not None
    # OpenSSH 10 (Debian 13) has no DSA: cloud-init 25 makes no DSA host key there
    assert (after["/etc/ssh/ssh_host_dsa_key"] is not None) is SUITE_FACTS[suite]["dsa_host_key"]
    assert (fresh_root / "etc/hostname").read_text().strip() == "harness-boot"
    assert socket.gethostname() == host_name
    assert "i-0harness0001" in result.log
    assert "ssh" in result.modules_run()
    assert not (fresh_root / harness.SEED_DIR).exists()
    assert not (fresh_root / harness.DSLIST_FILE).exists()
    assert harness.mounts_under(fresh_root) == []


# A first boot runs whatever the image and its user-data hold; this user-data looks for the
# host's power without using it: files are opened, never written; nothing is mounted for good.
PROBE_USER_DATA = """#cloud-config
runcmd:
  - - /usr/bin/python3
    - -c
    - |
      import ctypes, os
      libc = ctypes.CDLL(None, use_errno=True)
      out = []
      for path in ("/proc/sys/kernel/core_pattern", "/proc/sysrq-trigger"):
          try:
              os.close(os.open(path, os.O_WRONLY))
              out.append("WRITABLE " + path)
          except OSError as exc:
              out.append("closed %s %s" % (path, exc.errno))
      os.makedirs("/tmp/jail", exist_ok=True)
      child = os.fork()
      if child == 0:
          os._exit(0 if libc.chroot(b"/tmp/jail") == 0 else 1)
      out.append("chroot %d" % (0 if os.waitpid(child, 0)[1] == 0 else -1))
      mounted = libc.mount(b"x", b"/mnt", b"tmpfs", 0, None)
      out.append("mount %d" % mounted)
      if mounted == 0:
          libc.umount2(b"/mnt", 2)
      out.append("pids %s" % sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
      out.append(open("/proc/self/status").read())
      open("/root/probe.txt", "w").write("\\n".join(out))
"""


def test_first_boot_user_code_has_none_of_the_hosts_power(fresh_root):
    """The boot check first-boots what a bake made: its cloud-init and user-data run sandboxed."""
    harness.first_boot(fresh_root, "i-0harness0002", "probe", user_data=PROBE_USER_DATA)
    text = (fresh_root / "root/probe.txt").read_text()
    assert "WRITABLE" not in text, text
    assert "closed /proc/sys/kernel/core_pattern 30" in text  # EROFS: proc is read-only
    assert "chroot -1" in text and "mount -1" in text
    pids = ast.literal_eval(re.search(r"pids (\[.*\])", text).group(1))
    assert max(pids) < 100, pids  # a PID namespace of its own: cloud-init and its few children
    bounding = int(re.search(r"CapBnd:\s+([0-9a-f]+)", text).group(1), 16)
    assert not bounding & ((1 << 18) | (1 << 21) | (1 << 2) | (1 << 27))
    assert harness.mounts_under(fresh_root) == []


def test_find_mirror_reads_deb822_and_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("BAKERY_DEBIAN_MIRROR", raising=False)
    one = tmp_path / "sources.list"
    one.write_text("# comment\ndeb [arch=amd64] http://mirror.invalid/one bookworm main\n")
    assert harness.find_mirror(str(one), str(tmp_path / "none")) == "http://mirror.invalid/one"
    one.write_text("deb http://mirror.invalid/sec bookworm-security main\n")
    d = tmp_path / "d"
    d.mkdir()
    (d / "x.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/sec\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.invalid/two\nSuites: bookworm bookworm-updates\n"
        "Components: main\n")
    assert harness.find_mirror(str(one), str(d)) == "http://mirror.invalid/two"
