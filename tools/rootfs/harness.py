# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Root-filesystem harness: cached Debian 12 (bookworm, cloud-init 22.4) and Debian 13
(trixie, cloud-init 25.1) roots made by debootstrap, and a first boot of them with real
cloud-init, without a VM.

Not shipped with the collection (tools/ is test and bench tooling).

Safety model (read this before changing anything). Every program of an image that the harness
runs (each cloud-init stage of a first boot, ``chroot_run``: apt during the build, the boot
check's prefetch) runs in the collection's image sandbox (plugins/module_utils/_sandbox.py,
whose header is the full account), the same one the modules and the local builder's connection
use:

* private mount, PID, IPC and UTS namespaces, and a network namespace with only ``lo`` unless
  the network is asked for (apt): set_hostname cannot rename the host, network configuration
  cannot touch a host interface, a daemon a module starts dies with the namespace;
* the root bound nosuid,nodev (the caller's mounts in it too, checked), a fresh read-only proc
  of its own PID namespace, and a device-less /dev (null, zero, full, random, urandom, tty, a
  private devpts): no host disk node exists or opens; cloud-init's growpart and resizefs find
  no device and stop;
* every capability but file and user management dropped (chroot, mount, ptrace, mknod, raw
  I/O, open_by_handle_at...), no_new_privs, a clean environment, no inherited descriptor.

cloud-init cannot set the kernel hostname there (no CAP_SYS_ADMIN): it writes /etc/hostname and
records a warning ("Failed to non-persistently adjust the system hostname") in status.json.

``mounted()`` adds what a booted machine shares between commands: a tmpfs /run (cloud-init's
stages pass state through /run/cloud-init), a read-only /sys, proc and a minimal /dev. A first
boot mounts them inside private namespaces of its own (``unshare``), so they vanish with it
even if this process is killed. During the image build a policy-rc.d that forbids starting
services is in place; it is removed before the image is archived.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HARNESS_VERSION = 1

# Debian suites the harness builds: the two cloud-init generations the project verifies.
SUITES = {
    "bookworm": {"release": "12", "cloud_init": "22.4"},
    "trixie": {"release": "13", "cloud_init": "25.1"},
}
DEFAULT_SUITE = "bookworm"
SUITE = DEFAULT_SUITE  # kept for callers that name the default suite
VARIANT = "minbase"
# Packages installed with apt inside the chroot after debootstrap.  cloud-init
# is installed with apt, not debootstrap --include, because debootstrap does
# not resolve some of its virtual dependencies.
PACKAGES = (
    "cloud-init",
    "openssh-server",
    "python3",
    "ifupdown",
    "netbase",
    "iproute2",
    "isc-dhcp-client",
    "sudo",
    "procps",
    "ca-certificates",
)
# Packages a suite names differently: {suite: {package: replacement}}.
_SUITE_PACKAGES: dict = {}


def check_suite(suite: str | None) -> str:
    """The suite name, or HarnessError naming the known ones."""
    suite = suite or os.environ.get("BAKERY_DEBIAN_SUITE") or DEFAULT_SUITE
    if suite not in SUITES:
        raise HarnessError("suite: must be one of %s, got %r" % (", ".join(SUITES), suite))
    return suite


def packages(suite: str | None = None) -> tuple:
    suite = check_suite(suite)
    swap = _SUITE_PACKAGES.get(suite, {})
    return tuple(swap.get(name, name) for name in PACKAGES)


DEFAULT_CACHE_DIR = "~/.cache/bakery-ami"
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STAGES = (
    ("init-local", ["/usr/bin/cloud-init", "init", "--local"]),
    ("init", ["/usr/bin/cloud-init", "init"]),
    ("modules-config", ["/usr/bin/cloud-init", "modules", "--mode", "config"]),
    ("modules-final", ["/usr/bin/cloud-init", "modules", "--mode", "final"]),
)
STAGE_TIMEOUT = 900
# first_boot's ``then`` command (a test of the booted instance, such as an image test role)
THEN_TIMEOUT = 900
SEED_DIR = "var/lib/cloud/seed/nocloud"
DSLIST_FILE = "etc/cloud/cloud.cfg.d/90_dslist.cfg"

# Character devices of the minimal /dev: name -> (major, minor, mode)
_DEV_NODES = {
    "null": (1, 3, 0o666),
    "zero": (1, 5, 0o666),
    "full": (1, 7, 0o666),
    "random": (1, 8, 0o666),
    "urandom": (1, 9, 0o666),
    "tty": (5, 0, 0o666),
}
_DEV_LINKS = {
    "ptmx": "pts/ptmx",
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}


class HarnessError(RuntimeError):
    """Raised for every harness failure with a message saying what failed."""


# --------------------------------------------------------------------------
# recipe, cache, mirror


def recipe(suite: str | None = None) -> dict:
    """What the cached image is made of; its hash keys the cache."""
    suite = check_suite(suite)
    return {
        "harness_version": HARNESS_VERSION,
        "suite": suite,
        "variant": VARIANT,
        "packages": sorted(packages(suite)),
        "arch": os.uname().machine,
    }


def recipe_hash(suite: str | None = None) -> str:
    blob = json.dumps(recipe(suite), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``path``, else $BAKERY_CACHE_DIR, else ~/.cache/bakery-ami."""
    chosen = path or os.environ.get("BAKERY_CACHE_DIR") or DEFAULT_CACHE_DIR
    return Path(os.path.expanduser(str(chosen))).resolve()


def image_dir(cache: str | os.PathLike | None = None) -> Path:
    """Where the debootstrap images are built and found: $BAKERY_IMAGE_DIR when set, else the cache
    directory. An image is named by its recipe's hash, so caches that keep their own bakes (a test
    worker's, for one) can share one directory of images and build each image once."""
    shared = os.environ.get("BAKERY_IMAGE_DIR")
    return Path(os.path.expanduser(shared)).resolve() if shared else cache_dir(cache)


def image_path(cache: str | os.PathLike | None = None, suite: str | None = None) -> Path:
    """Path of the cached image tarball for the suite's recipe (may not exist yet)."""
    suite = check_suite(suite)
    return image_dir(cache) / f"debian-{suite}-{recipe_hash(suite)}.tar"


def _suite_matches(suites, wanted=None) -> bool:
    """Whether a source line serves the wanted suite; with wanted None, any Debian release
    suite itself (not -updates, -security or -backports): the same archive serves every suite."""
    if wanted is not None:
        return wanted in suites
    return any(name in SUITES or (name.isalpha() and name.islower()) for name in suites)


def find_mirror(sources_list: str = "/etc/apt/sources.list",
                sources_dir: str = "/etc/apt/sources.list.d", suite: str | None = None) -> str:
    """The Debian mirror of this machine, read from its apt sources.

    $BAKERY_DEBIAN_MIRROR overrides.  Otherwise the first ``deb`` entry (one-line
    format in sources.list / *.list, or deb822 ``*.sources``) whose suites include
    the wanted suite itself (not -security or -updates); failing that, the first entry of any
    Debian release suite, since one archive serves them all (a bookworm machine builds trixie).
    """
    override = os.environ.get("BAKERY_DEBIAN_MIRROR")
    if override:
        return override
    suite = check_suite(suite)
    for wanted in (suite, None):
        found = _find_source(sources_list, sources_dir, wanted)
        if found:
            return found
    raise HarnessError(
        "no apt source for suite %s found in %s or %s/*.list|*.sources; "
        "set BAKERY_DEBIAN_MIRROR" % (suite, sources_list, sources_dir)
    )


def _find_source(sources_list: str, sources_dir: str, wanted: str | None) -> str | None:
    one_line = [sources_list] + sorted(glob.glob(os.path.join(sources_dir, "*.list")))
    for path in one_line:
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if not line.startswith("deb "):
                continue
            words = line.split()[1:]
            if words and words[0].startswith("["):
                # options: [arch=amd64 signed-by=...]
                while words and not words[0].endswith("]"):
                    words.pop(0)
                words = words[1:]
            if len(words) >= 2 and _suite_matches([words[1]], wanted) and "security" not in words[0]:
                return words[0]
    for path in sorted(glob.glob(os.path.join(sources_dir, "*.sources"))):
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
            if fields.get("enabled", ["yes"])[0].lower() == "no":
                continue
            if "deb" not in fields.get("types", []):
                continue
            uris = [uri for uri in fields.get("uris", []) if "security" not in uri]
            if _suite_matches(fields.get("suites", []), wanted) and uris:
                return uris[0]
    return None


def missing_prerequisites() -> list[str]:
    """Reasons this machine cannot run the harness (empty when it can)."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("the rootfs harness needs root (mount, chroot, debootstrap)")
    for tool in ("debootstrap", "chroot", "unshare", "tar", "mount", "umount"):
        if shutil.which(tool) is None:
            reasons.append("%s is not installed" % tool)
    return reasons


# --------------------------------------------------------------------------
# mounts


def _unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(root: str | os.PathLike) -> list[str]:
    """Mount points at or below ``root`` in this mount namespace, deepest first."""
    root = os.path.realpath(str(root))
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            point = _unescape_mountinfo(line.split()[4])
            if point == root or point.startswith(root.rstrip("/") + "/"):
                found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def _safe_dir(root: Path, rel: str) -> Path:
    """root/rel as a real directory inside root (refuses symlinks out of it)."""
    target = root / rel
    if target.is_symlink():
        raise HarnessError("refusing to mount on %s: it is a symlink" % target)
    target.mkdir(parents=True, exist_ok=True)
    if os.path.realpath(target) != str(target):
        raise HarnessError("refusing to mount on %s: it resolves outside the root" % target)
    return target


def _mount(fstype: str, source: str, target: Path, options: str) -> None:
    cmd = ["mount", "-t", fstype, "-o", options, source, str(target)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HarnessError("%s failed: %s" % (" ".join(cmd), proc.stderr.strip()))


def _umount(target: str) -> None:
    proc = subprocess.run(["umount", target], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        subprocess.run(["umount", "-l", target], capture_output=True, text=True, check=False)


def unmount_all(root: str | os.PathLike) -> None:
    """Unmount everything under ``root`` (deepest first, lazily as a last resort)."""
    for point in mounts_under(root):
        _umount(point)
    left = mounts_under(root)
    if left:
        raise HarnessError("still mounted under %s: %s" % (root, ", ".join(left)))


def _populate_dev(dev: Path) -> None:
    for name, (major, minor, mode) in _DEV_NODES.items():
        node = dev / name
        os.mknod(node, stat.S_IFCHR | mode, os.makedev(major, minor))
        os.chmod(node, mode)
    for name, target in _DEV_LINKS.items():
        os.symlink(target, dev / name)
    (dev / "pts").mkdir(mode=0o755)
    shm = dev / "shm"
    shm.mkdir()
    os.chmod(shm, 0o1777)


@contextlib.contextmanager
def mounted(root: str | os.PathLike, run: bool = True):
    """Mount proc, a read-only sys, a minimal /dev (and a tmpfs /run) in ``root``.

    /dev is a new tmpfs with only null, zero, full, random, urandom, tty and a
    private devpts instance at dev/pts: no block device exists in the chroot.
    Everything is unmounted in reverse order on exit, lazily if needed, and the
    exit fails if anything is still mounted under ``root``.
    """
    root = Path(os.path.realpath(str(root)))
    if not (root / "etc").is_dir():
        raise HarnessError("%s does not look like a root filesystem (no etc/)" % root)
    done: list[str] = []
    try:
        target = _safe_dir(root, "proc")
        _mount("proc", "proc", target, "nosuid,nodev,noexec")
        done.append(str(target))
        target = _safe_dir(root, "sys")
        _mount("sysfs", "sysfs", target, "ro,nosuid,nodev,noexec")
        done.append(str(target))
        target = _safe_dir(root, "dev")
        _mount("tmpfs", "bakery-dev", target, "nosuid,noexec,mode=0755,size=1m")
        done.append(str(target))
        _populate_dev(target)
        target = target / "pts"
        _mount("devpts", "devpts", target, "newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec")
        done.append(str(target))
        if run:
            target = _safe_dir(root, "run")
            _mount("tmpfs", "bakery-run", target, "nosuid,nodev,mode=0755,size=64m")
            done.append(str(target))
            lock = target / "lock"
            lock.mkdir()
            os.chmod(lock, 0o1777)
        yield root
    finally:
        for point in reversed(done):
            _umount(point)
        left = mounts_under(root)
        if left:
            for point in left:
                _umount(point)
            left = mounts_under(root)
            if left:
                raise HarnessError("still mounted under %s: %s" % (root, ", ".join(left)))


def _sandbox():
    """The collection's image sandbox (plugins/module_utils/_sandbox.py), loaded from this checkout."""
    from tools.sandbox_chroot import sandbox_module  # pylint: disable=import-outside-toplevel

    return sandbox_module()


def sandbox_argv(root: str | os.PathLike, argv: list[str], env: dict | None = None,
                 network: bool = False) -> list[str]:
    """The host command that runs ``argv`` in the image sandbox rooted at ``root`` (private
    namespaces, nosuid/nodev bind, read-only proc, device-less /dev, capabilities that leave a
    chroot dropped, no_new_privs; see _sandbox.py). A program named without a path is looked up
    on the image's PATH by the image's own /usr/bin/env."""
    argv = [str(arg) for arg in argv]
    if argv and not argv[0].startswith("/"):
        argv = ["/usr/bin/env", "--"] + argv
    sandbox = _sandbox()
    try:
        return sandbox.image_command(str(root), argv, env=env, network=network)
    except sandbox.SandboxError as exc:
        raise HarnessError(str(exc)) from None


def chroot_run(root: str | os.PathLike, argv: list[str], env: dict | None = None,
               timeout: int = STAGE_TIMEOUT, check: bool = True,
               input_text: str | None = None, network: bool = True) -> subprocess.CompletedProcess:
    """Run ``argv`` in the image sandbox rooted at ``root`` with a clean environment (no mounts
    done here: use ``mounted()`` for a shared /run and /sys). ``network`` keeps the host network
    (apt downloads); without it the program has only a loopback of its own."""
    base = {"HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
    base.update(env or {})
    cmd = sandbox_argv(root, argv, base, network)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                          input=input_text, stdin=None if input_text is not None else subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise HarnessError("%s failed (%d):\n%s\n%s" % (
            " ".join(argv), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc


# --------------------------------------------------------------------------
# build and cache

POLICY_RC_D = "#!/bin/sh\n# bakery rootfs harness: start no service during the image build\nexit 101\n"


def _build_into(root: Path, mirror: str, log, suite: str = DEFAULT_SUITE) -> None:
    cmd = ["debootstrap", "--variant=%s" % VARIANT, suite, str(root), mirror]
    log("running: %s" % " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        debootstrap_log = root / "debootstrap" / "debootstrap.log"
        tail = debootstrap_log.read_text(errors="replace")[-4000:] if debootstrap_log.exists() else ""
        raise HarnessError("debootstrap failed (%d): %s\n%s" % (proc.returncode, proc.stderr[-2000:], tail))

    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    shutil.copyfile("/etc/resolv.conf", resolv)
    try:
        with mounted(root):
            log("installing: %s" % " ".join(packages(suite)))
            chroot_run(root, ["apt-get", "update"], timeout=1800)
            chroot_run(root, ["apt-get", "install", "-y", "--no-install-recommends"] + list(packages(suite)),
                       timeout=3600)
            chroot_run(root, ["apt-get", "clean"])
    finally:
        policy.unlink()
    # What the cached image must not ship or leak.
    for key in glob.glob(str(root / "etc/ssh/ssh_host_*")):
        os.unlink(key)
    resolv.unlink()
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/hosts").write_text(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
    )
    machine_id = root / "etc/machine-id"
    if machine_id.exists():
        machine_id.write_text("")
    # /dev on disk stays empty: mounted() provides a minimal one at run time.
    for entry in (root / "dev").iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    shutil.rmtree(root / "debootstrap", ignore_errors=True)


def ensure_image(cache: str | os.PathLike | None = None, force: bool = False,
                 log=None, suite: str | None = None) -> Path:
    """The cached image tarball for the suite's recipe, built if missing.

    Concurrent callers serialize on a lock file; the build goes into a temp dir
    in the cache dir and the tarball is renamed into place at the end, so an
    interrupted build leaves no half image behind (the next builder removes the
    leftovers).
    """
    log = log or (lambda msg: print("rootfs: %s" % msg, file=sys.stderr))
    suite = check_suite(suite)
    target = image_path(cache, suite)
    if target.exists() and not force:
        return target
    reasons = missing_prerequisites()
    if reasons:
        raise HarnessError("; ".join(reasons))
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / (".%s.lock" % target.stem)
    with open(lock_path, "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and not force:
            return target
        for stale in glob.glob(str(target.parent / ("build-%s-*" % recipe_hash(suite)))):
            log("removing interrupted build %s" % stale)
            remove_root(stale)
        build = Path(tempfile.mkdtemp(prefix="build-%s-" % recipe_hash(suite), dir=target.parent))
        try:
            root = build / "root"
            root.mkdir()
            started = time.monotonic()
            mirror = find_mirror(suite=suite)
            _build_into(root, mirror, log, suite)
            partial = build / "image.tar"
            proc = subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise HarnessError("tar failed: %s" % proc.stderr.strip())
            (target.parent / (target.stem + ".json")).write_text(
                json.dumps(dict(recipe(suite), built_seconds=round(time.monotonic() - started, 1)),
                           indent=2, sort_keys=True) + "\n")
            os.replace(partial, target)
            log("built %s in %.0fs" % (target, time.monotonic() - started))
        finally:
            remove_root(build)
    return target


def remove_root(path: str | os.PathLike) -> None:
    """Remove a root tree, unmounting anything left under it first."""
    path = str(path)
    if not os.path.lexists(path):
        return
    unmount_all(path)
    shutil.rmtree(path)


def fresh_root(dest: str | os.PathLike, cache: str | os.PathLike | None = None,
               suite: str | None = None) -> Path:
    """Extract the suite's cached image into ``dest`` (created; must be empty) and return it."""
    tarball = ensure_image(cache, suite=suite)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise HarnessError("%s is not empty" % dest)
    proc = subprocess.run(["tar", "--numeric-owner", "-xpf", str(tarball), "-C", str(dest)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HarnessError("extracting %s failed: %s" % (tarball, proc.stderr.strip()))
    return dest


# --------------------------------------------------------------------------
# first boot


@dataclasses.dataclass
class StageResult:
    name: str
    argv: list
    returncode: int
    output: str
    seconds: float


@dataclasses.dataclass
class FirstBootResult:
    root: Path
    instance_id: str
    hostname: str
    stages: list
    seconds: float
    seed_dir: Path
    log_path: Path
    output_log_path: Path
    # first_boot's ``then`` command, when one was given
    then: StageResult | None = None

    @property
    def log(self) -> str:
        """Text of /var/log/cloud-init.log in the root ('' when absent)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def output_log(self) -> str:
        return self.output_log_path.read_text(errors="replace") if self.output_log_path.exists() else ""

    def stage(self, name: str) -> StageResult:
        for result in self.stages:
            if result.name == name:
                return result
        raise KeyError(name)

    def modules_run(self) -> list[str]:
        """Module names cloud-init reported running (config_<name> entries of the log)."""
        return re.findall(r"Running module (\S+) ", self.log)

    def summary(self) -> dict:
        return {
            "root": str(self.root),
            "instance_id": self.instance_id,
            "hostname": self.hostname,
            "seconds": round(self.seconds, 2),
            "stages": [{"name": s.name, "returncode": s.returncode, "seconds": round(s.seconds, 2)}
                       for s in self.stages],
        }


def _dump_yaml_scalar_map(data: dict) -> str:
    # meta-data is simple "key: value" lines; JSON strings are valid YAML scalars.
    return "".join("%s: %s\n" % (key, json.dumps(value)) for key, value in data.items())


def seed(root: str | os.PathLike, instance_id: str, hostname: str,
         user_data: str | None = None, vendor_data: str | None = None,
         network_config: str | None = None) -> Path:
    """Write the NoCloud seed and the datasource list into ``root``."""
    root = Path(root)
    seed_dir = root / SEED_DIR
    seed_dir.mkdir(parents=True, exist_ok=True)
    (seed_dir / "meta-data").write_text(
        _dump_yaml_scalar_map({"instance-id": instance_id, "local-hostname": hostname}))
    (seed_dir / "user-data").write_text(user_data if user_data is not None else "#cloud-config\n{}\n")
    vendor = seed_dir / "vendor-data"
    if vendor_data is not None:
        vendor.write_text(vendor_data)
    elif vendor.exists():
        vendor.unlink()
    network = seed_dir / "network-config"
    if network_config is not None:
        network.write_text(network_config)
    elif network.exists():
        network.unlink()
    dslist = root / DSLIST_FILE
    dslist.parent.mkdir(parents=True, exist_ok=True)
    dslist.write_text("datasource_list: [ NoCloud, None ]\n")
    return seed_dir


def unseed(root: str | os.PathLike) -> None:
    """Remove the harness's seed and datasource-list files from ``root``."""
    root = Path(root)
    shutil.rmtree(root / SEED_DIR, ignore_errors=True)
    dslist = root / DSLIST_FILE
    if dslist.exists():
        dslist.unlink()


def _stage_argv(root: Path, argv: list[str]) -> list[str]:
    return sandbox_argv(root, argv, {"HOME": "/root"}, network=False)


def _run_stages_here(root: Path, then: list[str] | None = None) -> list[dict]:
    """Mount and run the four stages, then ``then`` (a host command) while the boot's /run is
    still mounted; called inside the private namespaces."""
    results = []
    with mounted(root):
        for name, argv in STAGES:
            started = time.monotonic()
            try:
                proc = subprocess.run(_stage_argv(root, argv), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      timeout=STAGE_TIMEOUT, check=False)
                code, output = proc.returncode, proc.stdout
            except subprocess.TimeoutExpired as exc:
                code, output = -9, "timeout after %ss\n%s" % (STAGE_TIMEOUT, exc.output or "")
            results.append({"name": name, "argv": argv, "returncode": code,
                            "output": output, "seconds": time.monotonic() - started})
        if then:
            started = time.monotonic()
            try:
                proc = subprocess.run(then, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, timeout=THEN_TIMEOUT, check=False)
                code, output = proc.returncode, proc.stdout
            except subprocess.TimeoutExpired as exc:
                code, output = -9, "timeout after %ss\n%s" % (THEN_TIMEOUT, exc.output or "")
            results.append({"name": "then", "argv": then, "returncode": code,
                            "output": output, "seconds": time.monotonic() - started})
    return results


def first_boot(root: str | os.PathLike, instance_id: str, hostname: str,
               user_data: str | None = None, vendor_data: str | None = None,
               network_config: str | None = None, keep_seed: bool = True,
               then: list[str] | None = None) -> FirstBootResult:
    """Boot ``root`` the way an EC2 launch would, with real cloud-init, in a chroot.

    Seeds NoCloud with ``instance_id`` and ``hostname`` (local-hostname), the
    optional user-data, vendor-data and network-config, pins
    ``datasource_list: [ NoCloud, None ]`` in 90_dslist.cfg, then runs
    ``cloud-init init --local``, ``init``, ``modules --mode config`` and
    ``--mode final`` inside private namespaces, each stage in the image sandbox
    (_sandbox.py: nosuid/nodev root, read-only proc, no devices, no chroot or
    mount capability, no network but its own loopback).  Exit codes are recorded, not
    checked: modules that need systemd or a disk fail in a chroot.  Assert on
    files.  With ``keep_seed=False`` the seed and 90_dslist.cfg are removed after.

    ``then``: a host command (argv) run after the four stages in the same private namespaces,
    while the boot's tmpfs /run (cloud-init's status.json), /sys, proc and /dev are still mounted
    in the root: what a login to the booted instance would see (``cloud-init status``, for
    example). It runs on the host side: whatever it runs of the image should go through the
    sandbox's chroot (tools/sandbox_chroot), as tests/firstboot/test_image_test_role.py does; its
    exit code and output are in ``result.then``, not checked.
    """
    root = Path(os.path.realpath(str(root)))
    if not (root / "usr/bin/cloud-init").exists():
        raise HarnessError("%s has no usr/bin/cloud-init" % root)
    if shutil.which("unshare") is None:
        raise HarnessError("unshare is required: without private namespaces a chroot "
                           "first boot could rename the host or touch its network")
    seed_dir = seed(root, instance_id, hostname, user_data, vendor_data, network_config)
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("r", prefix="bakery-boot-", suffix=".json") as out:
        cmd = ["unshare", "--mount", "--uts", "--ipc", "--net", "--pid", "--fork",
               "--kill-child", "--propagation", "private",
               sys.executable, os.path.abspath(__file__), "--ns-boot", str(root), out.name] + (
                   ["--then", json.dumps(list(then))] if then else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              timeout=STAGE_TIMEOUT * len(STAGES) + 60 + (THEN_TIMEOUT if then else 0))
        if proc.returncode != 0:
            raise HarnessError("first boot runner failed (%d): %s" % (proc.returncode, proc.stderr[-4000:]))
        raw = json.load(out)
    left = mounts_under(root)
    if left:
        raise HarnessError("still mounted after first boot: %s" % ", ".join(left))
    if not keep_seed:
        unseed(root)
    stages = [StageResult(**item) for item in raw]
    return FirstBootResult(
        root=root, instance_id=instance_id, hostname=hostname,
        stages=[stage for stage in stages if stage.name != "then"],
        then=next((stage for stage in stages if stage.name == "then"), None),
        seconds=time.monotonic() - started, seed_dir=seed_dir,
        log_path=root / "var/log/cloud-init.log",
        output_log_path=root / "var/log/cloud-init-output.log",
    )


# --------------------------------------------------------------------------
# helpers for tests


def _hash_one(path: Path):
    if path.is_symlink():
        return "symlink:" + os.readlink(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot_files(root: str | os.PathLike, paths) -> dict:
    """{path: sha256 of the file inside root, 'symlink:<target>', or None if absent}."""
    root = Path(root)
    return {path: _hash_one(root / str(path).lstrip("/")) for path in paths}


def _ns_main(argv: list[str]) -> int:
    root, out = Path(argv[0]), argv[1]
    then = json.loads(argv[3]) if len(argv) > 3 and argv[2] == "--then" else None
    results = _run_stages_here(root, then)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(results, handle)
    return 0


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--ns-boot":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the repository root
    sys.exit(_ns_main(sys.argv[2:]))
