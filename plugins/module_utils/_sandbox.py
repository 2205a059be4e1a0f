# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Running a program of an image (its cloud-init, its shell) from the host that holds the image's
# root directory, without giving the image's code the host's power. The image may be hostile: its
# /usr/bin/cloud-init can be anything. The command runs:
#
# - in private mount, PID, network, IPC and UTS namespaces (util-linux `unshare`), so it sees no
#   host process, no host network (only a loopback that is down) and no host mount, and every
#   mount made for it vanishes with it;
# - chrooted into a bind mount of the root remounted nodev,nosuid, with a fresh proc of its own
#   PID namespace and a device-less /dev (null, zero, full, random, urandom, tty only): no device
#   node the image ships can reach a host disk;
# - without the capabilities that leave a chroot or reach the host (sys_chroot, sys_admin,
#   dac_read_search, sys_ptrace, mknod, sys_rawio, sys_module, sys_boot, net_admin, ...), with
#   no_new_privs, and with a clean environment.
#
# On the image's own system (root "/") nothing of this applies: the command simply runs there.

from __future__ import annotations

import json
import os
import shutil
import sys
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Capabilities dropped from the bounding set before the image's program runs (linux/capability.h).
DROPPED_CAPABILITIES = {
    "dac_read_search": 2,   # open_by_handle_at reaches files outside the chroot
    "linux_immutable": 9,
    "net_admin": 12,
    "net_raw": 13,
    "ipc_lock": 14,
    "sys_module": 16,
    "sys_rawio": 17,
    "sys_chroot": 18,       # chroot again, then ".." past the old root
    "sys_ptrace": 19,
    "sys_pacct": 20,
    "sys_admin": 21,        # mount, pivot_root, setns and much more
    "sys_boot": 22,
    "sys_nice": 23,
    "sys_resource": 24,
    "sys_time": 25,
    "sys_tty_config": 26,
    "mknod": 27,
    "audit_write": 29,
    "audit_control": 30,
    "mac_override": 32,
    "mac_admin": 33,
    "syslog": 34,
    "wake_alarm": 35,
    "block_suspend": 36,
    "audit_read": 37,
    "perfmon": 38,
    "bpf": 39,
    "checkpoint_restore": 40,
}


class SandboxError(BakeryError):
    """The sandbox cannot be set up on this host."""


# Runs as PID 1 of the new namespaces, as the host's Python, before the image's program. It sets
# up the mounts, enters the root and drops privileges, then execs; every failure exits 125.
_STAGE_TWO = r'''
import ctypes, json, os, stat, subprocess, sys
root, settings, argv = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
def fail(msg):
    sys.stderr.write("bakery sandbox: %s\n" % msg)
    os._exit(125)
def mount(*args):
    proc = subprocess.run(["mount"] + list(args), capture_output=True, text=True)
    if proc.returncode != 0:
        fail("mount %s: %s" % (" ".join(args), proc.stderr.strip()))
def real_dir(path):
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
mount("--make-rprivate", "/")
mount("--bind", root, root)
mount("-o", "remount,bind,nodev,nosuid", root)
if real_dir(os.path.join(root, "proc")):
    mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", os.path.join(root, "proc"))
dev = os.path.join(root, "dev")
if real_dir(dev):
    mount("-t", "tmpfs", "-o", "nosuid,noexec,mode=0755,size=1m", "bakery-sandbox-dev", dev)
    for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                               ("urandom", 1, 9), ("tty", 5, 0)):
        os.mknod(os.path.join(dev, name), stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.chmod(os.path.join(dev, name), 0o666)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, name))
for tmp in (("tmp", "run") if settings["tmp_private"] else ()):
    if real_dir(os.path.join(root, tmp)):
        mount("-t", "tmpfs", "-o", "nosuid,nodev,mode=1777,size=64m", "bakery-sandbox-" + tmp, os.path.join(root, tmp))
os.chroot(root)
os.chdir("/")
libc = ctypes.CDLL(None, use_errno=True)
for cap in settings["drop"]:
    if libc.prctl(24, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # PR_CAPBSET_DROP; EINVAL: unknown cap
        fail("cannot drop capability %d" % cap)
if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    fail("cannot set no_new_privs")
try:
    os.execve(argv[0], argv, settings["env"])
except OSError as exc:
    sys.stderr.write("bakery sandbox: cannot run %s in the image: %s\n" % (argv[0], exc.strerror))
    os._exit(127)
'''


def find_unshare() -> t.Optional[str]:
    return shutil.which("unshare") or next(
        (p for p in ("/usr/bin/unshare", "/bin/unshare") if os.path.exists(p)), None)


def is_host_root(root: str) -> bool:
    return os.path.realpath(root) == "/"


def image_command(root: str, argv: t.Sequence[str], env: t.Optional[dict] = None, network: bool = False,
                  python: t.Optional[str] = None, tmp_private: bool = False) -> list:
    """The host command that runs ``argv`` (a program of the image, absolute path inside it) in
    the sandbox described above, rooted at ``root``. With ``network`` the host network stays
    visible (package installs); otherwise only a loopback. With ``tmp_private`` the image's /tmp
    and /run are fresh tmpfs mounts (nothing the program leaves there reaches the image).

    SandboxError when this host cannot build the sandbox (no unshare, not root)."""
    if not argv or not str(argv[0]).startswith("/"):
        raise SandboxError("sandbox: the program must be an absolute path inside the image, got %r" % (argv,))
    unshare = find_unshare()
    if unshare is None:
        raise SandboxError("sandbox: util-linux unshare is not installed on this host; refusing to run the "
                           "image's %s with the host's privileges" % argv[0])
    if os.geteuid() != 0:
        raise SandboxError("sandbox: running the image's %s under %s needs root (namespaces, mounts)"
                           % (argv[0], root))
    environment = {"PATH": SAFE_PATH, "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    environment.update(env or {})
    for key, value in environment.items():
        if "\0" in key + value or "=" in key:
            raise SandboxError("sandbox: environment entries must not hold NUL or '=' in names, got %r" % key)
    settings = {"env": environment, "tmp_private": bool(tmp_private),
                "drop": sorted(DROPPED_CAPABILITIES.values())}
    namespaces = ["--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child", "--propagation", "private"]
    if not network:
        namespaces.insert(3, "--net")
    return ([unshare] + namespaces
            + [python or sys.executable, "-I", "-c", _STAGE_TWO, os.path.realpath(root), json.dumps(settings)]
            + list(argv))


def run_in_image(root: str, argv: t.Sequence[str], run: t.Callable[..., t.Tuple[int, str, str]],
                 env: t.Optional[dict] = None, network: bool = False) -> t.Tuple[int, str, str]:
    """Run a program of the image: directly on the image's own system (root "/"), in the sandbox
    otherwise. ``run(argv)`` is AnsibleModule.run_command (or an equivalent returning rc, out,
    err). SandboxError when a sandbox is needed and cannot be built."""
    if is_host_root(root):
        environment = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        environment.update(env or {})
        return run(list(argv), environ_update=environment)
    return run(image_command(root, argv, env, network))
