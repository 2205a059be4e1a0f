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
import os
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


# --- archives follow their images ------------------------------------------------------------------

def register(ec2, name: str) -> str:
    """An image on the endpoint (a volume's snapshot as its root), as a bake's would be."""
    volume = ec2.create_volume(AvailabilityZone=ec2.meta.region_name + "a", Size=8)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    return ec2.register_image(Name=name, RootDeviceName="/dev/xvda", VirtualizationType="hvm", Architecture="x86_64",
                              BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}])["ImageId"]


def plant(cache: Path, image_id: str, endpoint_url: str, region: str, size: int = 4096) -> None:
    snapshots = cache / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    (snapshots / (image_id + ".tar")).write_bytes(b"\0" * size)
    (snapshots / (image_id + ".tar.lock")).write_bytes(b"")
    (snapshots / (image_id + ".json")).write_text(json.dumps(
        {"image_id": image_id, "endpoint_url": endpoint_url, "region": region, "run_id": "r-" + image_id[-8:]}))


def follow(cache: Path, *extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # as a playbook without credentials
    proc = subprocess.run([sys.executable, "-m", "tools.local_builder", "--cache", str(cache), "follow-images", *extra],
                          cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_archives_follow_their_images_and_nothing_else_is_touched(tmp_path):
    """An archive goes when the endpoint that made its image says the image is gone (deregistered,
    never there) or is a local endpoint that has stopped; an archive of an image that is still
    registered (on this endpoint or another), of a bake on AWS itself (no endpoint recorded) and of a
    run still going (run-<id>.tar) stays. Check mode removes nothing. The cache size is reported."""
    from tools.local_aws.control import LocalAws  # pylint: disable=import-outside-toplevel

    cache = tmp_path / "cache"
    with LocalAws.start(port=0) as stopped:
        dead_url = stopped.url
        dead_id = register(stopped.client("ec2", "us-west-2"), "on a stopped endpoint")
    with LocalAws.start(port=0) as live, LocalAws.start(port=0) as other:
        ec2 = live.client("ec2", "us-east-1")
        kept_id, gone_id = register(ec2, "still registered"), register(ec2, "pruned")
        ec2.deregister_image(ImageId=gone_id)
        other_id = register(other.client("ec2", "eu-west-1"), "another live endpoint's")
        planted = {
            kept_id: (live.url, "us-east-1"), gone_id: (live.url, "us-east-1"),
            "ami-0badc0de0badc0de0": (live.url, "us-east-1"),  # never registered there
            other_id: (other.url, "eu-west-1"), dead_id: (dead_url, "us-west-2"),
            "ami-0aaaaaaaaaaaaaaaa": ("", "us-east-1"),  # a local builder baking on AWS itself
        }
        for image_id, (url, region) in planted.items():
            plant(cache, image_id, url, region)
        (cache / "snapshots" / "run-r-inflight1.tar").write_bytes(b"\0" * 100)
        before = sorted(p.name for p in (cache / "snapshots").iterdir())

        predicted = follow(cache, "--check")
        assert sorted(p.name for p in (cache / "snapshots").iterdir()) == before
        result = follow(cache)

    expected_gone = sorted([gone_id, "ami-0badc0de0badc0de0", dead_id])
    assert sorted(r["image_id"] for r in predicted["removed"]) == expected_gone
    assert sorted(r["image_id"] for r in result["removed"]) == expected_gone
    assert sorted(result["kept"]) == sorted([kept_id, other_id])
    assert result["unknown"] == ["ami-0aaaaaaaaaaaaaaaa"]
    left = sorted(p.name for p in (cache / "snapshots").iterdir())
    for image_id in planted:
        names = [image_id + ".tar", image_id + ".json"]
        if image_id in expected_gone:
            assert not set(names + [image_id + ".tar.lock"]) & set(left), image_id
        else:
            assert set(names) <= set(left), image_id
    assert "run-r-inflight1.tar" in left
    assert result["archives"] == 4
    assert result["cache_bytes"] == sum(p.stat().st_size for p in (cache / "snapshots").iterdir())
