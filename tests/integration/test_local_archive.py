# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local snapshot archives (tools/local_builder.py): one writer per image, readers never see a
partial archive, and the cache says whether an image's archive is there.

Small fixture roots stand in for baked roots (the archive step is tar either way); each test has
its own cache directory.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tools import local_builder

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE = "ami-0123456789abcdef0"


def small_root(path: Path, name: str) -> Path:
    (path / "etc").mkdir(parents=True)
    (path / "etc" / "written-by").write_text(name + "\n")
    for index in range(200):  # enough for tar to take a moment
        (path / "etc" / ("file-%03d" % index)).write_bytes(name.encode() * 2000)
    return path


def start_archive(cache: Path, root: Path, run_id: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tools.local_builder", "--cache", str(cache), "archive",
                             "--root", str(root), "--image-id", IMAGE, "--meta", json.dumps({"run_id": run_id})],
                            cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def archive_files(cache: Path) -> list:
    snapshots = cache / "snapshots"
    return sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else []


def written_by(cache: Path) -> tuple:
    """(the root named inside the archive, the run named in its metadata)."""
    tar = cache / "snapshots" / (IMAGE + ".tar")
    with tarfile.open(tar) as handle:
        inside = handle.extractfile("./etc/written-by").read().decode().strip()
    meta = json.loads((cache / "snapshots" / (IMAGE + ".json")).read_text())
    return inside, meta["run_id"]


def test_a_second_writer_waits_for_the_first(tmp_path):
    """While one bake holds the image's archive lock, another writes nothing at all; once the lock
    is released it writes the whole archive and its metadata."""
    cache = tmp_path / "cache"
    root = small_root(tmp_path / "root-b", "b")
    with local_builder.archive_lock(str(cache), IMAGE):
        writer = start_archive(cache, root, "run-b")
        time.sleep(2)
        assert writer.poll() is None, "the second writer did not wait: %s" % (writer.communicate(),)
        assert archive_files(cache) == [IMAGE + ".tar.lock"]
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert json.loads(out)["archive"] == str(cache / "snapshots" / (IMAGE + ".tar"))
    assert archive_files(cache) == [IMAGE + ".json", IMAGE + ".tar", IMAGE + ".tar.lock"]
    assert written_by(cache) == ("b", "run-b")


def test_two_concurrent_writers_leave_one_whole_archive(tmp_path):
    """Two identical bakes archiving the same image at once: both succeed, one after the other, and
    the archive and its metadata come from the same writer (never one's tar with the other's
    metadata, never a partial file)."""
    cache = tmp_path / "cache"
    for attempt in range(3):
        roots = [small_root(tmp_path / ("root-%d-%s" % (attempt, name)), name) for name in ("a", "b")]
        writers = [start_archive(cache, root, "run-" + root.name[-1]) for root in roots]
        for writer in writers:
            _out, err = writer.communicate(timeout=120)
            assert writer.returncode == 0, err
        inside, run = written_by(cache)
        assert run == "run-" + inside
        assert archive_files(cache) == [IMAGE + ".json", IMAGE + ".tar", IMAGE + ".tar.lock"]


def test_archive_status_and_a_reader_waits_for_the_writer(tmp_path):
    cache = tmp_path / "cache"
    status = local_builder.archive_status(str(cache), IMAGE)
    assert status["present"] is False and status["archive"] == str(cache / "snapshots" / (IMAGE + ".tar"))
    with local_builder.archive_lock(str(cache), IMAGE):
        with pytest.raises(local_builder.BuilderError, match="another bake has been writing the snapshot archive"):
            with local_builder.archive_lock(str(cache), IMAGE, shared=True, timeout=0.5):
                pass
    writer = start_archive(cache, small_root(tmp_path / "root", "a"), "run-a")
    assert writer.wait(timeout=120) == 0
    proc = subprocess.run([sys.executable, "-m", "tools.local_builder", "--cache", str(cache), "archive-status",
                           "--image-id", IMAGE], cwd=str(REPO_ROOT), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["present"] is True


@pytest.mark.parametrize("image_id", ["ami-../../etc", "ami-..", "ami-x/y", "snap-0123456789abcdef0",
                                      "ami-0123456789ABCDEF0", "ami-0123456789abcdef0\n", "ami-\u0661" * 4, ""])
def test_archive_status_refuses_what_is_not_an_image_id(tmp_path, image_id):
    proc = subprocess.run([sys.executable, "-m", "tools.local_builder", "--cache", str(tmp_path / "cache"),
                           "archive-status", "--image-id", image_id], cwd=str(REPO_ROOT), capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 2 and "is not an AMI ID" in proc.stderr
    assert not (tmp_path / "cache").exists()
