# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_lock_release against copies of the fixture trees of each generation.

The core (build_request + plan_request + apply_plan) is run directly for the behaviour of each generation; main()
is driven with patch_module_args for check mode, diff mode and every bad input, with a snapshot
of the whole tree (bytes, mode, owner, mtime) proving that nothing was touched.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest


from ansible_collections.bakery.ami.plugins.module_utils import _image_root
from ansible_collections.bakery.ami.plugins.module_utils import _release as r
from ansible_collections.bakery.ami.plugins.modules import ami_lock_release

from tests.unit.plugins.modules.module_runner import run_module


def plan_lock(root, release="source", ami_name=None, launch_updates=None):
    """build_request and plan_request in one, for tests holding plain values."""
    return r.plan_request(r.build_request({"root": root, "release": release, "ami_name": ami_name,
                                           "launch_updates": launch_updates}))


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "amazon_linux"
DROPIN = "etc/cloud/cloud.cfg.d/90_bakery_release_lock.cfg"
RELEASEVER = "etc/dnf/vars/releasever"
AL2023_NAME = "al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64"
AL2023_NEWER = "2023.7.20250331"


@pytest.fixture
def tree(tmp_path):
    """tree(name) -> Path of a private copy of a fixture tree, with an old mtime on every file."""

    def make(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(FIXTURES / name, root, symlinks=True)
        old = time.time() - 86400
        for path in root.rglob("*"):
            if not path.is_symlink():
                os.utime(path, (old, old))
        return root

    return make


def snapshot(root: Path) -> dict:
    state = {}
    for path in sorted(root.rglob("*")):
        info = os.lstat(path)
        content = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else None
        state[str(path.relative_to(root))] = (content, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
                                              info.st_mtime_ns)
    return state


def lock(root: Path, **kwargs) -> r.Plan:
    plan = plan_lock(str(root), **kwargs)
    r.apply_plan(plan)
    return plan


def run_main(capsys, **args) -> dict:
    return run_module(ami_lock_release.main, capsys, args)[1]


# ------------------------------------------------------------------------- Amazon Linux 2023


def test_al2023_lock_to_source_release(tree):
    root = tree("al2023")
    plan = lock(root)
    assert (plan.generation, plan.release_before, plan.release, plan.locked, plan.lockable) == (
        "al2023", None, "2023.6.20241010", True, True)
    assert (root / RELEASEVER).read_text() == "2023.6.20241010\n"
    assert stat.S_IMODE((root / RELEASEVER).stat().st_mode) == 0o644
    assert [c.relpath for c in plan.changes] == [RELEASEVER]


def test_al2023_lock_is_idempotent(tree):
    root = tree("al2023")
    lock(root, ami_name=AL2023_NAME)
    before = snapshot(root)
    plan = lock(root, ami_name=AL2023_NAME)
    assert plan.changes == [] and plan.release_before == plan.release == "2023.6.20241010"
    assert snapshot(root) == before


def test_al2023_relock_to_newer_release_keeps_mode_owner_and_extra_lines(tree):
    root = tree("al2023")
    (root / RELEASEVER).write_text("2023.6.20241010\n# a note dnf ignores\n")
    os.chmod(root / RELEASEVER, 0o600)
    os.chown(root / RELEASEVER, 1234, 5678)
    plan = lock(root, release=AL2023_NEWER)
    assert plan.release_before == "2023.6.20241010" and plan.release == AL2023_NEWER
    assert (root / RELEASEVER).read_text() == AL2023_NEWER + "\n# a note dnf ignores\n"
    info = (root / RELEASEVER).stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o600, 1234, 5678)
    assert plan.warnings == []


def test_al2023_unlock_writes_latest(tree):
    root = tree("al2023")
    lock(root)
    plan = lock(root, release="latest")
    assert (plan.release_before, plan.release, plan.locked) == ("2023.6.20241010", "latest", False)
    assert (root / RELEASEVER).read_text() == "latest\n"
    assert "unlocked" in plan.msg


def test_al2023_lock_from_ami_name_warns_when_installed_release_differs(tree):
    root = tree("al2023")
    plan = lock(root, ami_name="al2023-ami-2023.5.20240805.0-kernel-6.1-x86_64")
    assert (root / RELEASEVER).read_text() == "2023.5.20240805\n"
    assert any("installed release is 2023.6.20241010" in w for w in plan.warnings)


def test_al2023_older_explicit_release_warns(tree):
    plan = plan_lock(str(tree("al2023")), release="2023.5.20240805")
    assert any("older than the installed release" in w for w in plan.warnings)


def test_al2023_launch_updates_none_is_a_noop(tree):
    root = tree("al2023")
    plan = lock(root, launch_updates="none")
    assert [c.relpath for c in plan.changes] == [RELEASEVER]
    assert not (root / DROPIN).exists()


def test_al2023_creates_missing_dnf_vars_directory(tree):
    root = tree("al2023")
    shutil.rmtree(root / "etc/dnf/vars")
    lock(root)
    assert (root / RELEASEVER).read_text() == "2023.6.20241010\n"
    assert stat.S_IMODE((root / "etc/dnf/vars").stat().st_mode) == 0o755


# ------------------------------------------------------------------------- the Amazon Linux AMI


def _line_diff(before: str, after: str) -> list:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_al1_lock_changes_one_line_of_yum_conf_and_writes_the_dropin(tree):
    root = tree("amzn-2018.03")
    yum_before = (root / "etc/yum.conf").read_text()
    os.chmod(root / "etc/yum.conf", 0o640)
    os.chown(root / "etc/yum.conf", 0, 10)
    plan = lock(root)
    assert (plan.generation, plan.release_before, plan.release, plan.locked) == ("amzn", "latest", "2018.03", True)
    assert _line_diff(yum_before, (root / "etc/yum.conf").read_text()) == [("releasever=latest", "releasever=2018.03")]
    info = (root / "etc/yum.conf").stat()
    assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o640, 10)
    dropin = (root / DROPIN).read_text()
    assert dropin.startswith("#cloud-config\n") and "repo_releasever: '2018.03'\n" in dropin
    assert "repo_upgrade" not in dropin  # launch_updates unset: leave cloud.cfg's default alone
    assert sorted(c.relpath for c in plan.changes) == [DROPIN, "etc/yum.conf"]


def test_al1_launch_updates_and_idempotency(tree):
    root = tree("amzn-2018.03")
    lock(root, ami_name="amzn-ami-hvm-2018.03.0.20231218.0-x86_64-gp2", launch_updates="bugfix")
    assert "repo_upgrade: bugfix\n" in (root / DROPIN).read_text()
    before = snapshot(root)
    assert plan_lock(str(root), launch_updates="bugfix").changes == []
    # Unset launch_updates leaves the earlier value in place.
    assert plan_lock(str(root)).changes == []
    assert snapshot(root) == before
    plan = lock(root, launch_updates="none")
    assert [c.relpath for c in plan.changes] == [DROPIN]
    assert "repo_upgrade: none\n" in (root / DROPIN).read_text()


def test_al1_unlock_then_relock(tree):
    root = tree("amzn-2018.03")
    lock(root)
    plan = lock(root, release="latest")
    assert (plan.release_before, plan.release, plan.locked) == ("2018.03", "latest", False)
    assert "releasever=latest\n" in (root / "etc/yum.conf").read_text()
    assert "repo_releasever: latest\n" in (root / DROPIN).read_text()
    plan = lock(root, release="2018.03")
    assert plan.release_before == "latest" and "releasever=2018.03\n" in (root / "etc/yum.conf").read_text()


def test_al1_commented_releasever_gets_a_new_line(tree):
    root = tree("amzn-2018.03")
    text = (root / "etc/yum.conf").read_text().replace("releasever=latest", "#releasever=latest")
    (root / "etc/yum.conf").write_text(text)
    plan = lock(root)
    assert plan.release_before is None
    after = (root / "etc/yum.conf").read_text()
    assert "#releasever=latest\n" in after and "retries=7\nreleasever=2018.03\n" in after


def test_al1_later_dropin_overriding_ours_is_warned(tree):
    root = tree("amzn-2018.03")
    (root / "etc/cloud/cloud.cfg.d/95_vendor.cfg").write_text("repo_releasever: latest\n")
    plan = plan_lock(str(root))
    assert any("95_vendor.cfg" in w for w in plan.warnings)


# ------------------------------------------------------------------------- Amazon Linux 2


def test_al2_is_not_lockable_and_changes_nothing_by_default(tree):
    root = tree("al2")
    before = snapshot(root)
    plan = lock(root, ami_name="amzn2-ami-hvm-2.0.20240131.0-x86_64-gp2")
    assert (plan.generation, plan.lockable, plan.locked, plan.release, plan.changes) == ("al2", False, False, None, [])
    assert "not versioned by release" in plan.msg and "nothing was locked" in plan.msg
    assert snapshot(root) == before


def test_al2_launch_updates_through_dropin_only(tree):
    root = tree("al2")
    yum = (root / "etc/yum.conf").read_bytes()
    plan = lock(root, launch_updates="none")
    assert [c.relpath for c in plan.changes] == [DROPIN]
    dropin = (root / DROPIN).read_text()
    assert "repo_upgrade: none\n" in dropin and "repo_releasever" not in dropin
    assert (root / "etc/yum.conf").read_bytes() == yum
    assert plan.locked is False and plan.lockable is False
    assert plan_lock(str(root), launch_updates="none").changes == []


# ------------------------------------------------------------------------- other distributions


def test_other_distribution_is_skipped(tree):
    root = tree("debian-12")
    before = snapshot(root)
    plan = lock(root, release="latest", launch_updates="security")
    assert plan.skipped and plan.changes == [] and "Debian GNU/Linux 12" in plan.msg
    assert snapshot(root) == before


# ------------------------------------------------------------------------- main(): check and diff mode


@pytest.mark.parametrize("name", ["al2023", "amzn-2018.03", "al2"])
def test_check_mode_writes_nothing_and_reports_the_same(tree, capsys, name):
    root = tree(name)
    args = {"root": str(root)}
    if name != "al2023":
        args["launch_updates"] = "security"
    before = snapshot(root)
    checked = run_main(capsys, _ansible_check_mode=True, _ansible_diff=True, **args)
    assert snapshot(root) == before
    assert checked["changed"] is True and checked["files"] and len(checked["diff"]) == len(checked["files"])
    applied = run_main(capsys, **args)
    assert applied["changed"] is True and applied["files"] == checked["files"]
    assert "diff" not in applied
    assert snapshot(root) != before
    again = run_main(capsys, _ansible_check_mode=True, **args)
    assert again["changed"] is False and again["files"] == []


def test_diff_shows_before_and_after(tree, capsys):
    root = tree("amzn-2018.03")
    result = run_main(capsys, root=str(root), _ansible_diff=True)
    diffs = {d["after_header"]: d for d in result["diff"]}
    assert "releasever=latest" in diffs["/etc/yum.conf"]["before"]
    assert "releasever=2018.03" in diffs["/etc/yum.conf"]["after"]
    assert diffs["/" + DROPIN]["before_header"] == "/dev/null" and diffs["/" + DROPIN]["before"] == ""
    assert result["generation"] == "amzn" and result["locked"] is True


def test_main_skips_other_distributions(tree, capsys):
    result = run_main(capsys, root=str(tree("debian-12")))
    assert result["skipped"] is True and result["changed"] is False and result["generation"] is None


def test_main_reports_warnings(tree, capsys):
    result = run_main(capsys, root=str(tree("al2023")), release="2023.5.20240805")
    assert "older than the installed release 2023.6.20241010" in json.dumps(result.get("warnings"))


# ------------------------------------------------------------------------- main(): bad input


def _break_yum_unreadable(root):
    (root / "etc/yum.conf").unlink()
    (root / "etc/yum.conf").mkdir()


def _break_yum_malformed(root):
    (root / "etc/yum.conf").write_text("releasever=latest\n[main]\n")


def _break_yum_binary(root):
    (root / "etc/yum.conf").write_bytes(b"[main]\nreleasever=\xff\n")


def _break_yum_missing(root):
    (root / "etc/yum.conf").unlink()


def _break_no_os_release(root):
    (root / "etc/os-release").unlink()
    (root / "usr/lib/os-release").unlink()


@pytest.mark.parametrize(
    "name,args,breaker,needle",
    [
        ("al2023", {"release": "2023.6"}, None, "release: '2023.6' is not valid on Amazon Linux 2023"),
        ("al2023", {"release": "2023.6.20241010.0"}, None, "drop the trailing image build number"),
        ("al2023", {"release": "2018.03"}, None, "release: '2018.03' is not valid on Amazon Linux 2023"),
        ("al2023", {"release": ""}, None, "release: must be"),
        ("al2023", {"release": " latest"}, None, "release: must not have leading or trailing spaces"),
        ("al2023", {"launch_updates": "security"}, None, "launch_updates: security is not supported on Amazon Linux 2023"),
        ("al2023", {"launch_updates": "sometimes"}, None, "launch_updates"),
        ("al2023", {"ami_name": "amzn2-ami-hvm-2.0.20240131.0-x86_64-gp2"}, None, "ami_name: 'amzn2-ami-hvm"),
        ("al2023", {"ami_name": "web-base-1.0-x86_64"}, None, "ami_name: no release can be read from 'web-base-1.0"),
        ("al2023", {"ami_name": AL2023_NAME, "release": "latest"}, None, "ami_name: only used with release=source"),
        ("amzn-2018.03", {"release": "2018.3"}, None, "release: '2018.3' is not valid on Amazon Linux AMI"),
        ("amzn-2018.03", {"release": "2023.6.20241010"}, None, "is not valid on Amazon Linux AMI"),
        ("amzn-2018.03", {}, _break_yum_unreadable, "yum.conf is not a regular file"),
        ("amzn-2018.03", {}, _break_yum_malformed, "yum.conf: malformed: line 1"),
        ("amzn-2018.03", {"launch_updates": "all"}, _break_yum_binary, "yum.conf is not UTF-8 text"),
        ("amzn-2018.03", {}, _break_yum_missing, "yum.conf does not exist"),
        ("amzn-2018.03", {"ami_name": AL2023_NAME}, None, "names a al2023 image but"),
        ("al2", {"release": "latest"}, None, "release: latest is not possible on Amazon Linux 2"),
        ("al2023", {"release": "2023.\u0666.20241010"}, None, "release: must be ASCII (digits 0-9 and dots)"),
        ("al2023", {"release": "2023.6.20241010\n"}, None, "release: must not have leading or trailing spaces or control"),
        ("al2023", {"release": "2023.6.2024\x001010"}, None, "release: must not have leading or trailing spaces or control"),
        ("al2023", {"ami_name": AL2023_NAME + "\n"}, None, "ami_name: no release can be read"),
        ("amzn-2018.03", {"release": "2018.0\u0663"}, None, "release: must be ASCII"),
        ("al2", {"release": "2.0.20240131", "launch_updates": "none"}, None, "not possible on Amazon Linux 2"),
        ("al2", {"ami_name": "al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64", "launch_updates": "none"}, None,
         "holds Amazon Linux 2"),
        ("al2023", {}, _break_no_os_release, "has no etc/os-release nor usr/lib/os-release"),
        ("debian-12", {"ami_name": "not-an-image"}, None, "ami_name: no release can be read"),
    ],
)
def test_bad_input_fails_naming_the_option_and_touches_nothing(tree, capsys, name, args, breaker, needle):
    root = tree(name)
    if breaker:
        breaker(root)
    before = snapshot(root)
    result = run_main(capsys, root=str(root), **args)
    assert result["failed"] is True
    assert needle in result["msg"]
    assert "Traceback" not in result["msg"]
    assert snapshot(root) == before


def test_missing_root_fails(capsys, tmp_path):
    result = run_main(capsys, root=str(tmp_path / "nowhere"))
    assert result["failed"] is True and result["msg"].startswith("root: ") and "does not exist" in result["msg"]


def test_arabic_digit_release_is_never_written(tree, capsys):
    """issue 17 item 12: release "2023.\u0666.20241010" went to /etc/dnf/vars/releasever (\\d matched it)."""
    root = tree("al2023")
    before = snapshot(root)
    for release in ("2023.\u0666.20241010", "\u0662\u0660\u0662\u0663.6.20241010", "2023.6.20241010\n"):
        result = run_main(capsys, root=str(root), release=release)
        assert result["failed"] is True and result["msg"].startswith("release: ")
    assert snapshot(root) == before


@pytest.mark.parametrize("how", ["absolute", "dotdot", "proc"])
def test_links_out_of_the_root_never_reach_outside(tree, tmp_path, capsys, how):
    """/etc/dnf (or the releasever file itself) a link to a directory outside the root: the lock is
    written inside the root; the outside tree keeps its bytes, inodes and modes."""
    root = tree("al2023")
    outside = tmp_path / "outside"
    (outside / "vars").mkdir(parents=True)
    (outside / "vars/releasever").write_text("outside\n")
    shutil.rmtree(root / "etc/dnf")
    target = {"absolute": str(outside),
              "dotdot": "../" * 12 + str(outside).lstrip("/"),
              "proc": "/proc/self/root" + str(outside)}[how]
    (root / "etc/dnf").symlink_to(target)
    # where the link leads when resolved inside the root (as in a chroot): the lock goes there
    inside = root / (str(outside).lstrip("/") if how != "proc" else "proc/self/root" + str(outside))
    (inside / "vars").mkdir(parents=True)

    def decoy():
        return {str(p): (p.read_bytes() if p.is_file() else None, os.lstat(p).st_ino, os.lstat(p).st_mode)
                for p in [outside] + sorted(outside.rglob("*"))}

    before = decoy()
    result = run_main(capsys, root=str(root), release="2023.6.20241010")
    assert decoy() == before
    assert result["changed"] is True and not result.get("failed"), result
    assert (inside / "vars/releasever").read_text() == "2023.6.20241010\n"
    assert result["files"] == [str(inside / "vars/releasever")]


def test_a_link_at_the_lock_file_is_replaced_not_followed(tree, tmp_path, capsys):
    root = tree("al2023")
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (root / RELEASEVER).parent.mkdir(parents=True, exist_ok=True)
    (root / RELEASEVER).symlink_to(victim)
    result = run_main(capsys, root=str(root), release="2023.6.20241010")
    assert victim.read_text() == "keep me\n"
    if not result.get("failed"):
        assert not (root / RELEASEVER).is_symlink() and (root / RELEASEVER).read_text() == "2023.6.20241010\n"


def test_write_failure_is_reported_without_traceback(tree, capsys, monkeypatch):
    root = tree("al2023")

    def refuse(self, path, text, **kwargs):
        raise PermissionError(13, "Permission denied", str(root / RELEASEVER))

    # the write fails below apply_plan, which reports it as a ReleaseLockError
    monkeypatch.setattr(_image_root.ImageRoot, "write_text", refuse)
    result = run_main(capsys, root=str(root))
    assert result["failed"] is True and "Permission denied" in result["msg"] and RELEASEVER in result["msg"]
