# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The harness itself: image hygiene of the cache, mount safety, a first boot."""

from __future__ import annotations

import os
import socket
import stat

from tools.rootfs import harness


def test_cached_image_ships_no_host_keys_and_no_policy(fresh_root):
    assert not list((fresh_root / "etc/ssh").glob("ssh_host_*"))
    assert not (fresh_root / "usr/sbin/policy-rc.d").exists()
    assert (fresh_root / "usr/bin/cloud-init").exists()
    assert (fresh_root / "usr/sbin/sshd").exists()
    assert os.listdir(fresh_root / "dev") == []


def test_mounted_has_minimal_dev_and_leaves_nothing(fresh_root):
    with harness.mounted(fresh_root) as root:
        dev = root / "dev"
        names = set(os.listdir(dev))
        assert {"null", "zero", "full", "random", "urandom", "tty", "pts"} <= names
        for entry in dev.iterdir():
            mode = os.lstat(entry).st_mode
            assert not stat.S_ISBLK(mode), "block device %s in minimal /dev" % entry
        assert harness.mounts_under(root)
        proc = harness.chroot_run(root, ["cat", "/proc/self/status"])
        assert "Name:" in proc.stdout
    assert harness.mounts_under(fresh_root) == []


def test_mounted_unmounts_on_error(fresh_root):
    try:
        with harness.mounted(fresh_root):
            raise ValueError("boom")
    except ValueError:
        pass
    assert harness.mounts_under(fresh_root) == []


def test_first_boot_generates_host_keys_and_leaves_host_alone(fresh_root):
    host_name = socket.gethostname()
    before = harness.snapshot_files(fresh_root, ["/etc/hostname", "/etc/ssh/ssh_host_ed25519_key"])
    assert before["/etc/ssh/ssh_host_ed25519_key"] is None
    result = harness.first_boot(fresh_root, "i-0harness0001", "harness-boot", keep_seed=False)
    after = harness.snapshot_files(fresh_root, ["/etc/hostname", "/etc/ssh/ssh_host_ed25519_key"])
    assert [s.name for s in result.stages] == ["init-local", "init", "modules-config", "modules-final"]
    assert after["/etc/ssh/ssh_host_ed25519_key"] is not None
    assert (fresh_root / "etc/hostname").read_text().strip() == "harness-boot"
    assert socket.gethostname() == host_name
    assert "i-0harness0001" in result.log
    assert "ssh" in result.modules_run()
    assert not (fresh_root / harness.SEED_DIR).exists()
    assert not (fresh_root / harness.DSLIST_FILE).exists()
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
