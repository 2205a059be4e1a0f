# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local builder of the embedded default bake (bake_builder: local), and its boot check.

Not shipped with the collection (tools/ is test and demo tooling). The embedded default's roles
(tools/ansible/roles/local_builder, plugged into playbooks/bake.yml by bake_builder: local) call it
through ``python -m tools.local_builder`` with the repository root as working directory:

    prepare   --root R --cache C --source-image AMI   fresh root (from the source image's archive
                                                      when a previous bake made one, else the cached
                                                      Debian 12 image), mounted, host resolv.conf in
    release   --root R                                unmount, take resolv.conf out again
    archive   --root R --cache C --image-id AMI       release, then tar the root as the content of
                                                      the image's snapshot: C/snapshots/AMI.tar, one
                                                      writer per image (an flock on AMI.tar.lock)
    archive   --root R --cache C --run-id ID          the same, as the run's (C/snapshots/run-ID.tar),
                                                      before its image exists
    publish   --cache C --run-id ID --image-id AMI    the run's archive becomes the image's
    discard   --cache C --run-id ID                   remove the archive of a run that made no image
    archive-status --cache C --image-id AMI           whether the image's archive is in the cache
                                                      (a rerun that adopts an image reports it)
    follow-images --cache C [--check]                 remove the archives of images no longer
                                                      registered on the endpoint that made them
                                                      (deregistered by prune, rollback or sweep,
                                                      or on a local endpoint that has stopped);
                                                      report the cache's size
    remove    --root R                                unmount anything left, delete the root
    sweep     --older-than T [--ttl-minutes N] | --run-id ID [--check]
                                                      remove the roots of killed runs (cache
                                                      work/<run-id>/root): those made more than
                                                      N minutes before T (UTC), or run ID's
    boot-check --cache C --image-id AMI --user-data F --expect F --work W [--hostname H]
                                                      first-boot a copy of the archive with real
                                                      cloud-init under a new hostname (default: a
                                                      random ip-10-x-x-x) and check every
                                                      customization, the launch values (sourced by
                                                      the image's own sh in a sandbox) and the
                                                      hostname

Every command prints one JSON object on stdout; errors go to stderr with exit code 2; a boot
check that finds a problem exits 1.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import importlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path

import yaml

from tools.rootfs import harness

RESOLV_MARK = ".bakery-resolv-conf"
POLICY_MARK = ".bakery-policy-rc-d"
POLICY_RC_D = "#!/bin/sh\n# bakery local builder: start no service on the host while customizing\nexit 101\n"
LOCK_DIR = "var/lib/bakery"
# How long a writer or reader of a snapshot archive waits for another bake writing the same one.
ARCHIVE_LOCK_TIMEOUT = 1800
REPO_ROOT = Path(__file__).resolve().parents[1]


class BuilderError(RuntimeError):
    """A local builder step failed; the message says which and why."""


AMI_ID = re.compile(r"ami-[0-9a-f]{8}(?:[0-9a-f]{9})?")
RUN_ARCHIVE = re.compile(r"run-[A-Za-z0-9-]{6,64}")


def _archive_path(cache: str, image_id: str) -> Path:
    """The snapshot archive of an image (AMI ID), or of a run whose image is not made yet (run-<id>)."""
    if not (AMI_ID.fullmatch(image_id) or RUN_ARCHIVE.fullmatch(image_id)):
        raise BuilderError("image id %r is not an AMI ID (ami- and 8 or 17 hexadecimal digits)" % image_id[:100])
    return harness.cache_dir(cache) / "snapshots" / ("%s.tar" % image_id)


def publish(cache: str | None, run_id: str, image_id: str) -> dict:
    """The run's archive (made right after the builder finished, before the image existed) becomes
    the content of the image: renamed to <image-id>.tar, its metadata naming the image."""
    source = _archive_path(cache, "run-" + run_id)
    target = _archive_path(cache, image_id)
    if not source.is_file() or source.is_symlink():
        raise BuilderError("no archive of run %s at %s to publish as %s" % (run_id, source, image_id))
    meta_path = source.with_suffix(".json")
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    meta.update(image_id=image_id, archive=str(target))
    partial = target.with_suffix(".json.partial-%d" % os.getpid())
    partial.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(source, target)
    os.replace(partial, target.with_suffix(".json"))
    meta_path.unlink(missing_ok=True)
    return {"image_id": image_id, "archive": str(target), "bytes": target.stat().st_size}


def discard(cache: str | None, run_id: str) -> dict:
    """Remove the archive of a run that never became an image (a failed bake)."""
    source = _archive_path(cache, "run-" + run_id)
    removed = False
    for path in (source, source.with_suffix(".json"), source.with_suffix(".tar.lock")):
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed = removed or path == source
    return {"run_id": run_id, "removed": removed}


@contextlib.contextmanager
def archive_lock(cache: str | None, image_id: str, shared: bool = False,
                 timeout: float = ARCHIVE_LOCK_TIMEOUT):
    """Hold the lock of an image's snapshot archive: exclusive for the one writer (two identical
    local bakes that end up with the same image write one after the other, never interleaved),
    shared for readers (a service bake's source, a boot check). The lock file, AMI.tar.lock next
    to the archive, stays: removing it would let two writers lock two different files."""
    path = _archive_path(cache, image_id).with_suffix(".tar.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BuilderError("another bake has been writing the snapshot archive of %s for more than %d s "
                                       "(lock %s held); try again when it is done" % (image_id, timeout, path)) from None
                time.sleep(0.2)
        yield path
    finally:
        os.close(fd)  # releases the lock


def archive_status(cache: str | None, image_id: str) -> dict:
    """Whether the snapshot archive of image_id is in the cache (waits for a writer to finish)."""
    with archive_lock(cache, image_id, shared=True):
        target = _archive_path(cache, image_id)
        present = target.is_file() and not target.is_symlink()
        return {"image_id": image_id, "archive": str(target), "present": present,
                "bytes": target.stat().st_size if present else None}


# What DescribeImages on the endpoint that made an image says of it.
GONE_ERRORS = ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidAMIID.Malformed")
LOOPBACK = re.compile(r"https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(/.*)?\Z")


def _image_state(endpoint_url: str, region: str, image_id: str) -> str | None:
    """The image's state on the endpoint that made it: its EC2 state, "gone" when the endpoint does
    not know it (or is a local endpoint that has stopped: its images went with it), None when it
    cannot be told (an error that says nothing about the image)."""
    import boto3  # pylint: disable=import-outside-toplevel
    from botocore.config import Config  # pylint: disable=import-outside-toplevel
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError  # pylint: disable=import-outside-toplevel

    local = bool(LOOPBACK.match(endpoint_url))
    credentials = {}
    if local and not os.environ.get("AWS_ACCESS_KEY_ID"):
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # the endpoint takes any
    client = boto3.client("ec2", region_name=region, endpoint_url=endpoint_url, **credentials,
                          config=Config(connect_timeout=3, read_timeout=20, retries={"total_max_attempts": 2}))
    try:
        images = client.describe_images(ImageIds=[image_id]).get("Images", [])
    except ClientError as exc:
        return "gone" if exc.response.get("Error", {}).get("Code") in GONE_ERRORS else None
    except EndpointConnectionError:
        return "gone" if local else None
    except BotoCoreError:
        return None
    return images[0].get("State", "available") if images else "gone"


def _tree_bytes(top: Path) -> int:
    """Bytes of the regular files under top: symbolic links not followed, mounted file systems (a
    running bake's proc and sys) not entered."""
    total = 0
    for directory, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(directory, d))]
        for name in files:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(directory, name)):
                total += info.st_size
    return total


def follow_images(cache: str | None, check: bool = False) -> dict:
    """Remove the snapshot archives whose image is gone from the endpoint that made it.

    Each image archive's metadata names the endpoint and region of its bake (archive.yml). An
    archive is removed when that endpoint answers that the image does not exist or is
    deregistered, or when the endpoint is a local one (loopback) that no longer answers: a stopped
    local endpoint's images are gone with it. Archives without an endpoint (a local builder on
    AWS itself), with an endpoint that cannot tell, and the archives of runs still going
    (run-<id>.tar) are kept."""
    snapshots = harness.cache_dir(cache) / "snapshots"
    removed, kept, unknown = [], [], []
    for meta_path in sorted(snapshots.glob("ami-*.json")) if snapshots.is_dir() else []:
        image_id = meta_path.name[:-len(".json")]
        archive_file = meta_path.with_suffix(".tar")
        if not AMI_ID.fullmatch(image_id) or meta_path.is_symlink():
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        endpoint, region = meta.get("endpoint_url") or "", meta.get("region") or ""
        if not endpoint or not region:
            unknown.append(image_id)
            continue
        state = _image_state(endpoint, region, image_id)
        if state not in ("gone", "deregistered"):
            (kept if state else unknown).append(image_id)
            continue
        removed.append({"image_id": image_id, "archive": str(archive_file), "endpoint_url": endpoint,
                        "region": region, "state": state})
        if not check:
            with archive_lock(cache, image_id):
                for path in (archive_file, meta_path):
                    if path.is_file() or path.is_symlink():
                        path.unlink()
            archive_file.with_suffix(".tar.lock").unlink(missing_ok=True)
    top = harness.cache_dir(cache)
    return {"cache_dir": str(top), "check": check, "removed": removed, "kept": kept, "unknown": unknown,
            "archives": len(list(snapshots.glob("*.tar"))) if snapshots.is_dir() else 0,
            "cache_bytes": _tree_bytes(top) if top.is_dir() else 0}


def _mark(root: Path, kind: str = RESOLV_MARK) -> Path:
    return root.parent / (root.name + kind)


def _mount(root: Path) -> None:
    """Mount proc, sys, a minimal /dev and /run in root and leave them mounted.

    harness.mounted() is a context manager; a builder must stay mounted across several Ansible
    plays, so this process enters it and exits without leaving it (os._exit skips the cleanup).
    ``release``/``remove`` unmount with harness.unmount_all.
    """
    pid = os.fork()
    if pid == 0:  # child: mount, then exit without running the context manager's cleanup
        code = 0
        try:
            context = harness.mounted(root)
            context.__enter__()  # pylint: disable=unnecessary-dunder-call
        except harness.HarnessError as exc:
            print("local builder: mounting %s failed: %s" % (root, exc), file=sys.stderr)
            code = 3
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # pylint: disable=protected-access
    status = os.waitpid(pid, 0)[1]
    if os.waitstatus_to_exitcode(status) != 0:
        harness.unmount_all(root)
        raise BuilderError("could not mount proc, sys and dev in %s" % root)


def _release(root: Path) -> None:
    harness.unmount_all(root)
    mark = _mark(root)
    if mark.exists():
        resolv = root / "etc/resolv.conf"
        if resolv.is_file() and not resolv.is_symlink():
            resolv.unlink()
        mark.unlink()
    mark = _mark(root, POLICY_MARK)
    if mark.exists():
        policy = root / "usr/sbin/policy-rc.d"
        if policy.is_file() and not policy.is_symlink():
            policy.unlink()
        mark.unlink()


def prepare(root: Path, cache: str, source_image: str) -> dict:
    started = time.monotonic()
    if os.geteuid() != 0:
        raise BuilderError("the local builder needs root (mount, chroot); run the bake as root")
    if root.exists() and any(root.iterdir()):
        raise BuilderError("%s exists and is not empty" % root)
    archive = _archive_path(cache, source_image)
    with archive_lock(cache, source_image, shared=True):  # not while a bake writes it
        extracted = archive.is_file()
        if extracted:
            root.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(["tar", "--numeric-owner", "-xpf", str(archive), "-C", str(root)],
                                  capture_output=True, text=True, check=False)
    if extracted:
        if proc.returncode != 0:
            raise BuilderError("extracting %s failed: %s" % (archive, proc.stderr.strip()))
        origin = str(archive)
    else:
        harness.fresh_root(root, cache)
        origin = str(harness.image_path(cache))
    _mount(root)
    resolv = root / "etc/resolv.conf"
    if not resolv.exists() and not resolv.is_symlink() and Path("/etc/resolv.conf").is_file():
        shutil.copyfile("/etc/resolv.conf", resolv)
        _mark(root).write_text("placed by the local builder\n", encoding="utf-8")
    # Package scripts would start daemons on the host (a chroot shares its processes): forbid it
    # while customizing, as debootstrap-based builders do, and take the file out before capture.
    policy = root / "usr/sbin/policy-rc.d"
    if not policy.exists() and not policy.is_symlink():
        policy.write_text(POLICY_RC_D, encoding="utf-8")
        policy.chmod(0o755)
        _mark(root, POLICY_MARK).write_text("placed by the local builder\n", encoding="utf-8")
    return {"root": str(root), "origin": origin, "seconds": round(time.monotonic() - started, 2)}


def archive(root: Path, cache: str, image_id: str, meta: dict | None) -> dict:
    started = time.monotonic()
    _release(root)
    # The root as it ships is scanned like the builder was (meta "hygiene": the generalize role's
    # categories, exclusions, kept keys and kept secret files): nothing is archived that the
    # project's own scan would flag.
    from tools import image_hygiene  # pylint: disable=import-outside-toplevel

    hygiene = image_hygiene.load()
    options = {k: v for k, v in ((meta or {}).get("hygiene") or {}).items()
               if k in ("categories", "exclude", "keep_authorized_keys", "keep_secret_files")}
    try:
        scan = hygiene.scan(str(root), **options)
    except hygiene.BakeryError as exc:
        raise BuilderError("scanning %s before archiving it failed: %s" % (root, exc.msg)) from exc
    if not scan["clean"]:
        raise BuilderError("not archiving %s: the image is not clean: %s (%s)" % (
            root, hygiene.summary(scan), ", ".join(f["path"] for f in scan["findings"][:10])))
    target = _archive_path(cache, image_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tar.partial-%d" % os.getpid())
    proc = subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BuilderError("archiving %s failed: %s" % (root, proc.stderr.strip()))
    os.replace(partial, target)
    info = dict(meta or {}, image_id=image_id, archive=str(target), bytes=target.stat().st_size,
                scan={"clean": scan["clean"], "categories": scan["categories"], "counts": scan["counts"]})
    target.with_suffix(".json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    info["seconds"] = round(time.monotonic() - started, 2)
    return info


def remove(root: Path) -> dict:
    existed = root.exists()
    if existed:
        _release(root)
        harness.remove_root(root)
    _mark(root).unlink(missing_ok=True)
    _mark(root, POLICY_MARK).unlink(missing_ok=True)
    try:  # the per-run directory that held the root, when nothing else is in it
        root.parent.rmdir()
    except OSError:
        pass
    return {"root": str(root), "removed": existed}


# A run's root lives in <cache>/work/<run id>/root; boot checks use work/boot-check-*.
RUN_ID = re.compile(r"[A-Za-z0-9-]{6,64}\Z")


def sweep(cache: str | None, older_than: float | None, run_id: str | None, check: bool) -> dict:
    """Remove (unmount, delete) the roots that killed local bakes left in the cache.

    A root goes when its run directory was made before `older_than` (epoch seconds; sweep.yml
    passes its sweep time minus bake_ttl_minutes, the same expiry as the run's AWS resources),
    or when it belongs to `run_id`. A run still going has a newer directory and is left alone.
    """
    work = harness.cache_dir(cache) / "work"
    found = []
    for run_dir in sorted(work.iterdir()) if work.is_dir() else []:
        root = run_dir / "root"
        if run_dir.name.startswith("boot-check-") or not RUN_ID.match(run_dir.name) or not root.is_dir():
            continue
        if run_id is not None and run_dir.name != run_id:
            continue
        if run_id is None and (older_than is None or run_dir.stat().st_mtime >= older_than):
            continue
        found.append(root)
    # the archive a killed run made of its root before its image existed (run-<id>.tar)
    archives = []
    snapshots = harness.cache_dir(cache) / "snapshots"
    for path in sorted(snapshots.glob("run-*.tar")) if snapshots.is_dir() else []:
        name = path.name[len("run-"):-len(".tar")]
        if path.is_symlink() or not RUN_ID.match(name):
            continue
        if run_id is not None and name != run_id:
            continue
        if run_id is None and (older_than is None or path.stat().st_mtime >= older_than):
            continue
        archives.append((name, path))
    for root in found:
        if not check:
            remove(root)
    for name, _path in archives:
        if not check:
            discard(cache, name)
    return {"removed": [str(root) for root in found] + [str(path) for _name, path in archives], "check": check}


def _epoch(value: str) -> float:
    try:
        moment = datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise ValueError("--older-than: %r is not a UTC time like 2030-01-01T00:00:00Z" % value) from None
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


# ---------------------------------------------------------------------------------------------
# boot check


def collection_module(name: str) -> types.ModuleType:
    """A module of this checkout's collection (``plugins.module_utils._sandbox``), imported as
    ansible_collections.bakery.ami.<name> even when the checkout is not on a collections path:
    tools/ run from the checkout and use its own root-confined file layer and sandbox."""
    if "ansible_collections.bakery.ami" not in sys.modules:
        try:
            import ansible_collections  # pylint: disable=import-outside-toplevel
        except ImportError:
            ansible_collections = types.ModuleType("ansible_collections")
            ansible_collections.__path__ = []
            sys.modules["ansible_collections"] = ansible_collections
        for package, path in (("ansible_collections.bakery", []), ("ansible_collections.bakery.ami", [str(REPO_ROOT)])):
            if package not in sys.modules:
                module = types.ModuleType(package)
                module.__path__ = path
                sys.modules[package] = module
    return importlib.import_module("ansible_collections.bakery.ami." + name)


def _image_sha256(image, path: str) -> str | None:
    """sha256 of the regular file at path in the image (no link followed), None when it is not one."""
    data = image.read_bytes(path)
    return None if data is None else hashlib.sha256(data).hexdigest()


def launch_value_text(value) -> str:
    """How a launch value is written (roles/customize/tasks/plan.yml): a string as it is, a
    boolean as true or false, nothing (null) as the empty string, a number as it prints."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def source_in_image(root: Path, path: str) -> tuple[dict | None, str]:
    """The variables that the image's own /bin/sh has after sourcing path (``set -a; . path``),
    run in the sandbox of plugins/module_utils/_sandbox.py (private namespaces, no devices, no
    capabilities that leave the root); (None, why) when the shell fails."""
    sandbox = collection_module("plugins.module_utils._sandbox")
    try:
        argv = sandbox.image_command(str(root), ["/bin/sh", "-c", 'set -a; . "$0" || exit 97; exec env -0', path],
                                     tmp_private=True)
        proc = subprocess.run(argv, capture_output=True, timeout=120, check=False)
    except sandbox.SandboxError as exc:
        return None, exc.msg
    except subprocess.TimeoutExpired:
        return None, "sh did not finish sourcing %s within 120 s" % path
    if proc.returncode != 0:
        return None, "sh could not source %s (exit %d): %s" % (
            path, proc.returncode, proc.stderr.decode("utf-8", "replace").strip()[-500:])
    found = {}
    for entry in proc.stdout.split(b"\0"):
        name, sep, value = entry.decode("utf-8", "surrogateescape").partition("=")
        if sep:
            found[name] = value
    return found, ""


HOSTNAME_RULE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


def new_hostname() -> str:
    """A hostname no builder had, as EC2 names instances (ip-10-x-y-z)."""
    rng = random.SystemRandom()
    return "ip-10-%d-%d-%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))


def _installed_packages(root: Path) -> set:
    installed = set()
    status = root / "var/lib/dpkg/status"
    if not status.exists():
        return installed
    for stanza in status.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields.get("Status") == "install ok installed":
            installed.add(fields.get("Package"))
    return installed


def _service_enabled(root: Path, service: str) -> bool:
    unit = service if "." in service else service + ".service"
    name = service[:-len(".service")] if service.endswith(".service") else service
    for link in root.glob("etc/rc[2345].d/S*"):
        if re.fullmatch(r"S[0-9]{2}" + re.escape(name), link.name):
            return True
    for base in ("etc/systemd/system", "lib/systemd/system", "usr/lib/systemd/system"):
        for wants in (root / base).glob("*.wants/%s" % unit):
            if wants.is_symlink() or wants.exists():
                return True
    return False


def _prefetch(root: Path, packages: list) -> dict:
    """Download (not install) launch-time packages into the booted copy's apt cache.

    A first boot in the harness has no network (private namespace); an EC2 instance has one.
    Fetching the .debs beforehand stands in for that network so cloud-init's package step at
    launch can run for real. Only the booted copy gets them, never the archived image.
    """
    started = time.monotonic()
    resolv = root / "etc/resolv.conf"
    placed = False
    if not resolv.exists() and not resolv.is_symlink():
        shutil.copyfile("/etc/resolv.conf", resolv)
        placed = True
    try:
        with harness.mounted(root):
            harness.chroot_run(root, ["apt-get", "update", "-q"], timeout=600)
            # as cloud-init will install them: with the recommended packages
            harness.chroot_run(root, ["apt-get", "install", "-y", "-q", "--download-only"] + list(packages),
                               timeout=900)
    finally:
        if placed:
            resolv.unlink()
    return {"packages": list(packages), "seconds": round(time.monotonic() - started, 2)}


def _check(results: list, name: str, ok: bool, detail: str) -> None:
    results.append({"check": name, "ok": bool(ok), "detail": detail})


def boot_check(cache: str, image_id: str, user_data_path: str, expect_path: str, work: str,
               hostname: str, keep: bool) -> tuple[dict, bool]:
    started = time.monotonic()
    if not HOSTNAME_RULE.fullmatch(hostname) or len(hostname) > 253:
        raise BuilderError("--hostname: %r is not a host name (letters, digits and '-', dot-separated labels of at "
                           "most 63 characters, 253 in all)" % hostname[:300])
    archive_file = _archive_path(cache, image_id)
    user_data = Path(user_data_path).read_text(encoding="utf-8")
    launch = yaml.safe_load(user_data) or {}
    if not isinstance(launch, dict):
        raise BuilderError("%s is not a cloud-config mapping" % user_data_path)
    expect = json.loads(Path(expect_path).read_text(encoding="utf-8"))
    baked = expect.get("baked", {})
    at_launch = expect.get("launch", {})
    protected = expect.get("protected_paths", [])
    launch_values = expect.get("launch_values") or {}

    work_dir = Path(tempfile.mkdtemp(prefix="boot-check-", dir=work))
    root = work_dir / "root"
    results: list = []
    report = {"image_id": image_id, "root": str(root), "hostname": hostname, "checks": results}
    try:
        root.mkdir()
        with archive_lock(cache, image_id, shared=True):
            if not archive_file.is_file():
                # without it there is nothing of the image to boot (a fresh Debian root would pass
                # for it): say why instead
                raise BuilderError(
                    "no snapshot archive for %s at %s: its content is not in this cache, so it cannot be booted. "
                    "Either it was not baked here with bake_builder: local, or a rerun adopted it after its "
                    "archive was removed (the bake report says local_archive: missing); bake a new version"
                    % (image_id, archive_file))
            proc = subprocess.run(["tar", "--numeric-owner", "-xpf", str(archive_file), "-C", str(root)],
                                  capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BuilderError("extracting %s failed: %s" % (archive_file, proc.stderr.strip()))
        image = collection_module("plugins.module_utils._image_root").ImageRoot(str(root))

        # The image as captured: hygiene and baked customizations, before anything runs.
        _check(results, "image: no SSH host keys", not list((root / "etc/ssh").glob("ssh_host_*")),
               "host keys must be generated per instance")
        machine_id = root / "etc/machine-id"
        _check(results, "image: empty machine-id",
               not machine_id.exists() or machine_id.read_text().strip() in ("", "uninitialized"),
               "machine-id is reset so every instance gets its own")
        before = harness.snapshot_files(root, protected)

        launch_packages = [p for p in launch.get("packages", []) if isinstance(p, str)]
        if launch_packages:
            report["prefetch"] = _prefetch(root, launch_packages)
        instance_id = "i-%s" % uuid.uuid4().hex[:17]
        boot = harness.first_boot(root, instance_id=instance_id, hostname=hostname, user_data=user_data)
        report["first_boot"] = boot.summary()

        # cloud-init ran as on a new instance
        instance_link = root / "var/lib/cloud/instance"
        _check(results, "first boot: cloud-init ran for the new instance",
               instance_link.is_symlink() and os.readlink(instance_link).endswith(instance_id),
               "var/lib/cloud/instance -> %s" % (os.readlink(instance_link) if instance_link.is_symlink() else None))
        _check(results, "first boot: new SSH host keys",
               bool(list((root / "etc/ssh").glob("ssh_host_*_key"))), "cloud-init generated host keys")

        installed = _installed_packages(root)
        for package in baked.get("packages", []):
            _check(results, "baked package %s installed" % package, package in installed, "dpkg status")
        for item in baked.get("files", []):
            digest = _image_sha256(image, item["path"])
            _check(results, "baked file %s intact" % item["path"], digest == item.get("sha256"),
                   "sha256 %s, expected %s" % (digest, item.get("sha256")))
        for service in baked.get("services", []):
            _check(results, "baked service %s enabled" % service, _service_enabled(root, service), "wants link")

        for package in launch_packages:
            _check(results, "launch package %s installed" % package, package in installed, "dpkg status")
        for item in launch.get("write_files", []) or []:
            content = item.get("content", "")
            if item.get("encoding") in ("b64", "base64"):
                import base64  # pylint: disable=import-outside-toplevel
                data = base64.b64decode(content)
            else:
                data = content.encode("utf-8")
            want = hashlib.sha256(data).hexdigest()
            digest = _image_sha256(image, item["path"])
            _check(results, "launch file %s written" % item["path"], digest == want,
                   "sha256 %s, expected %s" % (digest, want))
        for service in at_launch.get("services", []):
            _check(results, "launch service %s enabled" % service, _service_enabled(root, service), "wants link")

        # The launch values as a program of the instance sees them: sourced by the image's own sh,
        # compared with the bake's variables themselves (not with text from the same template).
        if launch_values.get("values"):
            values_path = launch_values.get("path") or "/etc/default/bakery-launch"
            sourced, why = source_in_image(root, values_path)
            wrong = []
            for key, value in launch_values["values"].items():
                want = launch_value_text(value)
                got = None if sourced is None else sourced.get(str(key))
                if got != want:  # lengths only: a launch value may be a secret
                    wrong.append("%s: %s, expected %d characters" % (
                        key, "unset" if got is None else "%d characters" % len(got), len(want)))
            _check(results, "launch values in %s equal bake_launch_config.values when sourced by sh" % values_path,
                   sourced is not None and not wrong,
                   why or ("; ".join(wrong) if wrong else "%d values" % len(launch_values["values"])))

        # A new instance gets its own name, unless the bake protected the baked one.
        baked_name = (image.read_text("/etc/hostname", limit=4096) or "").strip()
        if "/etc/hostname" in protected:
            _check(results, "hostname protected: kept as baked (every instance shares it)", True,
                   "/etc/hostname is %r" % baked_name[:80])
        else:
            _check(results, "first boot: the instance has its new hostname %s" % hostname, baked_name == hostname,
                   "/etc/hostname is %r" % baked_name[:80])

        after = harness.snapshot_files(root, protected)
        for path in protected:
            _check(results, "protected %s unchanged by first boot" % path, before[path] == after[path],
                   "before %s, after %s" % (before[path], after[path]))
    finally:
        if not keep:
            harness.remove_root(work_dir)
    report["ok"] = all(item["ok"] for item in results)
    report["failed"] = [item["check"] for item in results if not item["ok"]]
    report["seconds"] = round(time.monotonic() - started, 2)
    return report, report["ok"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local_builder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=None, help="cache dir (default $BAKERY_CACHE_DIR or ~/.cache/bakery-ami)")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("prepare")
    cmd.add_argument("--root", required=True)
    cmd.add_argument("--source-image", required=True)
    cmd = sub.add_parser("release")
    cmd.add_argument("--root", required=True)
    cmd = sub.add_parser("archive")
    cmd.add_argument("--root", required=True)
    which = cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--image-id")
    which.add_argument("--run-id", help="archive as the run's, until publish names its image")
    cmd.add_argument("--meta", default=None, help="JSON object stored beside the archive")
    cmd = sub.add_parser("publish")
    cmd.add_argument("--run-id", required=True)
    cmd.add_argument("--image-id", required=True)
    cmd = sub.add_parser("discard")
    cmd.add_argument("--run-id", required=True)
    cmd = sub.add_parser("archive-status")
    cmd.add_argument("--image-id", required=True)
    cmd = sub.add_parser("follow-images")
    cmd.add_argument("--check", action="store_true", help="only list what would be removed")
    cmd = sub.add_parser("remove")
    cmd.add_argument("--root", required=True)
    cmd = sub.add_parser("sweep")
    cmd.add_argument("--older-than", default=None, help="remove roots made before this time (2030-01-01T00:00:00Z)")
    cmd.add_argument("--ttl-minutes", type=int, default=0, help="... less this many minutes (the bake's TTL)")
    cmd.add_argument("--run-id", default=None, help="remove the root of this run, whatever its age")
    cmd.add_argument("--check", action="store_true", help="only list what would be removed")
    cmd = sub.add_parser("boot-check")
    cmd.add_argument("--image-id", required=True)
    cmd.add_argument("--user-data", required=True)
    cmd.add_argument("--expect", required=True)
    cmd.add_argument("--work", default=None)
    cmd.add_argument("--hostname", default=None, help="the new instance's name (default: a random ip-10-x-y-z)")
    cmd.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    code = 0
    try:
        if args.command == "prepare":
            result = prepare(Path(args.root).resolve(), args.cache, args.source_image)
        elif args.command == "release":
            root = Path(args.root).resolve()
            _release(root)
            result = {"root": str(root)}
        elif args.command == "archive":
            meta = json.loads(args.meta) if args.meta else None
            # one writer per image: a second bake that made (or adopted) the same image waits, then
            # replaces the archive whole (archive() writes a temporary file and renames it)
            key = args.image_id or "run-" + args.run_id
            with archive_lock(args.cache, key):
                result = archive(Path(args.root).resolve(), args.cache, key, meta)
        elif args.command == "publish":
            with archive_lock(args.cache, args.image_id):
                result = publish(args.cache, args.run_id, args.image_id)
        elif args.command == "discard":
            result = discard(args.cache, args.run_id)
        elif args.command == "archive-status":
            result = archive_status(args.cache, args.image_id)
        elif args.command == "follow-images":
            result = follow_images(args.cache, args.check)
        elif args.command == "remove":
            result = remove(Path(args.root).resolve())
        elif args.command == "sweep":
            if (args.older_than is None) == (args.run_id is None):
                raise ValueError("sweep: give exactly one of --older-than and --run-id")
            older = _epoch(args.older_than) - 60 * args.ttl_minutes if args.older_than is not None else None
            result = sweep(args.cache, older, args.run_id, args.check)
        else:
            if os.geteuid() != 0:
                raise BuilderError("the boot check needs root (mount, chroot, unshare)")
            work = args.work or str(harness.cache_dir(args.cache) / "work")
            Path(work).mkdir(parents=True, exist_ok=True)
            result, ok = boot_check(args.cache, args.image_id, args.user_data, args.expect, work,
                                    args.hostname or new_hostname(), args.keep)
            code = 0 if ok else 1
    except (BuilderError, harness.HarnessError, OSError, ValueError, yaml.YAMLError) as exc:
        print("local builder: %s" % exc, file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
