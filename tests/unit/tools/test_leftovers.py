# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/ci/leftovers.sh: the test command's check that a run leaves no temporary entry and no mount.

Each test plants what a careless test would leave (a file in the system temporary directory, a mount)
between leftovers_begin and leftovers_check, in a private "system" temporary directory, and checks it
is reported; what a run writes to its own TMPDIR is removed at the end, and removal never reaches
through a mount into what lies outside the run's directory.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "tools" / "ci" / "leftovers.sh"


def run(system_tmp: Path, plant: str, ignore: str = "") -> tuple:
    """Source the script with system_tmp as the system temporary directory, run `plant` between
    begin and check; the check's exit code, its output, and the run directory's path."""
    script = f"""
set -u
source {SCRIPT}
leftovers_begin || exit 9
echo "run=$TMPDIR"
{plant}
leftovers_check
echo "rc=$?"
leftovers_end
"""
    env = dict(os.environ, TMPDIR=str(system_tmp), BAKERY_TMP_IGNORE=ignore)
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    run_dir = Path(next(line for line in lines if line.startswith("run="))[4:])
    rc = int(next(line for line in lines if line.startswith("rc="))[3:])
    return rc, result.stdout, run_dir


def test_a_clean_run_passes_and_its_own_directory_is_removed(tmp_path):
    rc, out, run_dir = run(tmp_path, 'mkdir -p "$TMPDIR/pytest-of-root/x" && echo key > "$TMPDIR/pytest-of-root/x/id"')
    assert rc == 0, out
    assert "nothing left" in out
    assert run_dir.parent == tmp_path and not run_dir.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("plant,name", [
    ('echo secret > "$leftovers_system_tmp/bakery-key"', "bakery-key"),
    ('mkdir "$leftovers_system_tmp/.hidden-dir"', ".hidden-dir"),
    ('ln -s /nowhere "$leftovers_system_tmp/dangling"', "dangling"),
])
def test_an_entry_left_in_the_system_temporary_directory_fails_the_check(tmp_path, plant, name):
    (tmp_path / "there-before").write_text("kept")
    rc, out, _run_dir = run(tmp_path, plant)
    assert rc == 1, out
    assert f"left in {tmp_path}: {name}" in out
    assert "there-before" not in out


def test_ignored_patterns_are_not_reported(tmp_path):
    rc, out, _run_dir = run(tmp_path, 'touch "$leftovers_system_tmp/tool_job.1" "$leftovers_system_tmp/ours"',
                            ignore="tool_job.*")
    assert rc == 1 and "ours" in out and "tool_job" not in out, out


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_mount_left_behind_fails_the_check_and_removal_does_not_reach_through_it(tmp_path):
    outside = tmp_path.parent / (tmp_path.name + "-outside")
    outside.mkdir()
    (outside / "precious").write_text("must survive")
    try:
        rc, out, run_dir = run(tmp_path, f'mkdir "$TMPDIR/root" && mount --bind {outside} "$TMPDIR/root"')
        assert rc == 1, out
        assert f"mount left behind: {run_dir}/root" in out
        assert (outside / "precious").read_text() == "must survive"
        assert not run_dir.exists()
        mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True, check=True)
        assert str(run_dir) not in mounts.stdout
    finally:
        mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True, check=False)
        for target in sorted(line for line in mounts.stdout.splitlines() if line.startswith(str(tmp_path) + "/")):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        (outside / "precious").unlink(missing_ok=True)
        outside.rmdir()
