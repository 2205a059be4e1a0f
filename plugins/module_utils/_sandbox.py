# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Running a program of an image (its cloud-init, its shell, its Python) from the host that holds
# the image's root directory, without giving the image's code the host's power. The image may be
# hostile: its /usr/bin/cloud-init can be anything, and it runs as uid 0 of the host.
#
# How (util-linux `unshare` and the host's Python; everything else is system calls):
#
# - private mount, PID, IPC and UTS namespaces, and a private network namespace (only a loopback
#   that is down) unless the caller needs the network (the local builder downloads packages);
#   `--kill-child`: when the caller goes, everything started in the sandbox goes;
# - the root is bind-mounted onto itself recursively (so the caller's own mounts in it, such as
#   the local builder's tmpfs /run and read-only /sys, stay) and EVERY mount of that tree is
#   remounted nosuid,nodev (its other flags kept); a device node the image ships, anywhere, opens
#   nothing; the result is checked against the mount table before anything of the image runs;
# - the copies of whatever was mounted on the root's /proc and /dev are detached and replaced by
#   a fresh proc of the sandbox's own PID namespace, mounted READ-ONLY (a writable proc lets uid 0
#   write /proc/sys/kernel/core_pattern or /proc/sysrq-trigger: a host-root escape), and a tmpfs
#   /dev holding only null, zero, full, random, urandom, tty, a private devpts and shm;
# - each of these mounts is made through a descriptor opened component by component with
#   O_NOFOLLOW inside the root: a /proc or /dev that is a symbolic link is refused, and a link
#   swapped in during the setup cannot redirect a mount to a host path;
# - every descriptor except 0, 1 and 2 is closed, and those three must be pipes, sockets or
#   /dev/null: a directory outside the root would be an fchdir() escape, and a regular file or
#   terminal could be reopened through /proc/self/fd for writing (callers hand over pipes; the
#   chroot wrapper in tools/ copies through pipes);
# - chroot into the bind, new session (no controlling terminal: no TIOCSTI into the caller's);
# - capabilities: the bounding, permitted and effective sets keep only KEPT_CAPABILITIES (file
#   ownership and modes, setuid/setgid, kill) and the inheritable and ambient sets are emptied;
#   everything else is gone, including caps a newer kernel adds (the list is an allow-list read
#   against /proc/sys/kernel/cap_last_cap). Notably: sys_chroot (chroot again, then '..' past the
#   old root), dac_read_search (open_by_handle_at: any inode of the root's file system by
#   number), sys_admin (mount, setns, sethostname and much more), sys_ptrace, mknod, sys_rawio,
#   sys_module, net_admin/net_raw (the host network when it is shared), sys_boot, syslog;
# - no_new_privs: setuid and file-capability binaries gain nothing;
# - Landlock scoping where the kernel has it (ABI 6, Linux 6.12+): no connection to an abstract
#   unix socket and no signal to a process outside the sandbox. With a private network namespace
#   the host's abstract sockets are out of reach anyway; with the host network shared (local
#   builder) older kernels leave them reachable (see RESIDUAL below);
# - a clean environment (the caller's, which may hold AWS credentials, never reaches the image).
#
# chroot, not pivot_root: pivot_root would also take the host's mounts out of the namespace, but
# with sys_chroot gone, no descriptor leading outside, cwd inside, and a PID namespace in which
# the image's program is PID 1 (no process with another root for /proc/<pid>/root), no path leads
# out of the chroot; the channels that would remain after pivot_root (a descriptor passed over a
# socket, a file handle on the same file system) are closed by the rules above, not by
# pivot_root. /proc/self/mountinfo inside a chroot lists only mounts under it. pivot_root needs
# the root to be a mount point that is not on the host's rootfs (fails in some containers); it
# would add a second code path without closing a channel that is open.
#
# RESIDUAL (what this does not do): the image's code is uid 0 of the host's user namespace, so
# kernel keyrings of uid 0 stay reachable (the project keeps nothing there); with the network
# shared it reaches every host and loopback service the host reaches (a controller on EC2: its
# instance metadata); no resource limits (disk, memory, processes); the host's core-dump handler
# runs for a crashing image process.
#
# On the image's own system (root "/") nothing of this applies: the command simply runs there.

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sys
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Capabilities the image's program keeps (linux/capability.h): what package scripts and
# cloud-init need to manage files and users of the image. Every other capability is dropped.
KEPT_CAPABILITIES = {
    "chown": 0,
    "dac_override": 1,
    "fowner": 3,
    "fsetid": 4,
    "kill": 5,
    "setgid": 6,
    "setuid": 7,
    "setpcap": 8,      # only lowers sets further; needed to drop the bounding set itself
    "setfcap": 31,     # packages set file capabilities on their binaries (ping); nosuid + no_new_privs
}

# Dropped ones named for tests and messages; the sandbox drops every capability up to the
# kernel's last one that is not kept.
ESCAPE_CAPABILITIES = {
    "dac_read_search": 2,   # open_by_handle_at reaches any inode of the file system
    "net_bind_service": 10,
    "net_admin": 12,
    "net_raw": 13,
    "sys_module": 16,
    "sys_rawio": 17,
    "sys_chroot": 18,       # chroot again, then ".." past the old root
    "sys_ptrace": 19,
    "sys_admin": 21,        # mount, pivot_root, setns, sethostname and much more
    "sys_boot": 22,
    "mknod": 27,
    "syslog": 34,
    "bpf": 39,
}

EXIT_SANDBOX = 125   # the sandbox could not be set up; nothing of the image ran
EXIT_NOT_FOUND = 127  # the program does not exist or cannot run in the image


class SandboxError(BakeryError):
    """The sandbox cannot be set up on this host, or the request is not one it serves."""


# Runs as PID 1 of the new namespaces, as the host's Python (-I -S: no site, no PYTHON* variables), before the image's program. It
# sets up the mounts, enters the root and drops privileges, then execs; every failure exits 125.
# Python 3.7 syntax (it runs on whatever Python runs the module).
_STAGE_TWO = r'''
import ctypes, json, os, stat, sys
root, settings, argv = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
def fail(msg):
    sys.stderr.write("bakery sandbox: %s\n" % msg)
    sys.stderr.flush()
    os._exit(125)
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
libc.syscall.restype = ctypes.c_long
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 21
ST_TO_MS = ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC), (1024, MS_NOATIME),
            (2048, MS_NODIRATIME), (4096, MS_RELATIME))
DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

def enc(value):
    return None if value is None else os.fsencode(value)
def mount_here(fd, source, fstype, flags, data, what):
    os.fchdir(fd)
    if libc.mount(enc(source), b".", enc(fstype), flags, enc(data)) != 0:
        fail("cannot mount %s: %s" % (what, os.strerror(ctypes.get_errno())))
def walk(rel):
    """O_PATH descriptor of the directory root/rel, walked without following any link; None when
    that path does not lead to a directory."""
    fd = os.open(root, DIR)
    for part in [p for p in rel.split("/") if p]:
        try:
            if part in (".", ".."):
                raise OSError(22, "'.' or '..'")
            nxt = os.open(part, DIR, dir_fd=fd)
        except OSError:
            os.close(fd)
            return None
        os.close(fd)
        fd = nxt
    return fd
def open_in_root(rel):
    fd = walk(rel)
    if fd is None:
        fail("/%s in the image is not a plain directory" % rel)
    return fd
def mount_id(fd):
    with open("/proc/self/fdinfo/%d" % fd) as handle:
        for line in handle:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    fail("the kernel does not report mount ids (/proc/self/fdinfo)")
def mounts():
    """(mount id, mount point, per-mount options) of this namespace."""
    out = []
    with open("/proc/self/mountinfo", "rb") as handle:
        for line in handle.read().decode("utf-8", "surrogateescape").splitlines():
            fields = line.split(" ")
            point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
            out.append((int(fields[0]), point, set(fields[5].split(","))))
    return out
def points_under_root():
    return sorted(set(p for _, p, _ in mounts() if under(p, root)), key=lambda p: (p.count("/"), p))
def rel_of(point):
    return "" if point == root else os.path.relpath(point, root)
def under(point, prefix):
    return point == prefix or point.startswith(prefix.rstrip("/") + "/")
def kind(path, dir_fd):
    try:
        return stat.S_IFMT(os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return None

# standard streams: pipes, sockets or /dev/null only
for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
    try:
        st = os.fstat(fd)
    except OSError:
        continue
    mode = st.st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and st.st_rdev == os.makedev(1, 3)):
        continue
    fail("%s must be a pipe, a socket or /dev/null, not %s: the image could reach it through "
         "/proc/self/fd" % (name, "a directory" if stat.S_ISDIR(mode) else "a terminal" if os.isatty(fd)
                            else "a regular file" if stat.S_ISREG(mode) else "a device or other file"))
try:
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last_cap = int(handle.read())
except (OSError, ValueError):
    last_cap = 63

if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
    fail("cannot make the mounts private: %s" % os.strerror(ctypes.get_errno()))
if libc.mount(enc(root), enc(root), None, MS_BIND | MS_REC, None) != 0:
    fail("cannot bind %s: %s" % (root, os.strerror(ctypes.get_errno())))
top = open_in_root("")
# nosuid,nodev on every mount of the bound tree that a path reaches (other per-mount flags kept);
# a mount no path reaches (under another one) is out of the image's reach as well
for point in points_under_root():
    fd = walk(rel_of(point))
    if fd is None:
        continue
    flags = os.fstatvfs(fd).f_flag
    keep = 0
    for st_flag, ms_flag in ST_TO_MS:
        if flags & st_flag:
            keep |= ms_flag
    mount_here(fd, None, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | keep, None, "%s nosuid,nodev" % point)
    os.close(fd)
# the copies of whatever the caller mounted on /proc and /dev go; fresh ones come
ours = set()
for name in ("proc", "dev", "tmp", "run") if settings["tmp_private"] else ("proc", "dev"):
    what = kind(name, top)
    if what is None:
        continue
    if what != stat.S_IFDIR:
        fail("the image's /%s is %s, not a directory: refusing to mount on it"
             % (name, "a symbolic link" if what == stat.S_IFLNK else "a file"))
    if name in ("proc", "dev"):
        for _ in range(64):
            os.fchdir(top)
            if libc.umount2(enc(name), 2 | 8) != 0:  # MNT_DETACH | UMOUNT_NOFOLLOW
                break
    fd = open_in_root(name)
    if name == "proc":
        mount_here(fd, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, None, "a read-only proc")
    elif name == "dev":
        mount_here(fd, "bakery-sandbox-dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m", "the /dev tmpfs")
        os.close(fd)
        fd = open_in_root("dev")
        for node, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                                   ("urandom", 1, 9), ("tty", 5, 0)):
            os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(major, minor), dir_fd=fd)
            os.chmod(node, 0o666, dir_fd=fd)
        for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")):
            os.symlink(target, link, dir_fd=fd)
        for sub, mode in (("pts", 0o755), ("shm", 0o1777)):
            os.mkdir(sub, mode, dir_fd=fd)
            os.chmod(sub, mode, dir_fd=fd)
        pts = open_in_root("dev/pts")
        mount_here(pts, "devpts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5",
                   "a private devpts")
        os.close(pts)
        for sub in ("dev", "dev/pts"):
            made = open_in_root(sub)
            ours.add(mount_id(made))
            os.close(made)
    else:
        mount_here(fd, "bakery-sandbox-" + name, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m",
                   "a private /" + name)
    os.close(fd)
# checked, not assumed: every mount a path in the root reaches is nosuid and nodev, except the
# /dev and devpts made above (nosuid, noexec, holding only the nodes made above)
options_of = dict((ident, options) for ident, _, options in mounts())
for point in points_under_root():
    fd = walk(rel_of(point))
    if fd is None:
        continue
    ident = mount_id(fd)
    os.close(fd)
    need = {"nosuid", "noexec"} if ident in ours else {"nosuid", "nodev"}
    if not need <= options_of.get(ident, set()):
        fail("%s is mounted %s in the sandbox; refusing to run the image's program"
             % (point, ",".join(sorted(options_of.get(ident, ())))))
# no descriptor but 0, 1, 2 crosses into the image
for name in os.listdir("/proc/self/fd"):
    if int(name) > 2 and int(name) != top:
        try:
            os.close(int(name))
        except OSError:
            pass
os.fchdir(top)
os.chroot(".")
os.chdir("/")
os.close(top)
try:
    os.setsid()
except OSError:
    pass
# capabilities: bounding set first (needs setpcap), then permitted/effective/inheritable, ambient
kept = set(settings["keep"])
for cap in range(last_cap + 1):
    if cap not in kept and libc.prctl(24, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # PR_CAPBSET_DROP
        fail("cannot drop capability %d" % cap)
class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
mask = sum(1 << cap for cap in kept)
header = CapHeader(0x20080522, 0)
data = (CapData * 2)(CapData(mask & 0xFFFFFFFF, mask & 0xFFFFFFFF, 0), CapData(mask >> 32, mask >> 32, 0))
if libc.capset(ctypes.byref(header), data) != 0:
    fail("cannot lower the capability sets: %s" % os.strerror(ctypes.get_errno()))
if libc.prctl(47, 4, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # PR_CAP_AMBIENT, CLEAR_ALL
    fail("cannot clear the ambient capabilities")
if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    fail("cannot set no_new_privs")
# Landlock scopes (ABI 6+): no abstract unix socket or signal outside the sandbox
abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # landlock_create_ruleset: version
if abi >= 6:
    attr = (ctypes.c_uint64 * 3)(0, 0, 1 | 2)  # handled fs, handled net, scoped: ABSTRACT_UNIX_SOCKET|SIGNAL
    ruleset = libc.syscall(444, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
    if ruleset < 0 or libc.syscall(446, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        fail("cannot apply the Landlock scopes: %s" % os.strerror(ctypes.get_errno()))
    os.close(ruleset)
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


def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel (0 when it has none or it is disabled)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return max(int(abi), 0)


def sandbox_environment(env: t.Optional[dict] = None) -> dict:
    """The whole environment of the image's program: a safe PATH, HOME, a C.UTF-8 locale, plus
    ``env``. SandboxError for a name or value that an environment cannot hold."""
    environment = {"PATH": SAFE_PATH, "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    for key, value in (env or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SandboxError("sandbox: environment names and values must be strings, got %r=%r" % (key, value))
        if not key or "\0" in key + value or "=" in key:
            raise SandboxError("sandbox: environment names must be non-empty without '=' or NUL, and values "
                               "without NUL, got %r" % key)
        environment[key] = value
    return environment


def image_command(root: str, argv: t.Sequence[str], env: t.Optional[dict] = None, network: bool = False,
                  python: t.Optional[str] = None, tmp_private: bool = False) -> list:
    """The host command that runs ``argv`` (a program of the image, absolute path inside it) in
    the sandbox described above, rooted at ``root``. With ``network`` the host network stays
    shared (package downloads); otherwise the program has only a loopback of its own. With
    ``tmp_private`` the image's /tmp and /run are fresh tmpfs mounts (nothing the program leaves
    there reaches the image). The command's standard streams must be pipes, sockets or
    /dev/null; it exits 125 when the sandbox cannot be set up, 127 when the program cannot run.

    SandboxError when this host cannot build the sandbox (no unshare, not root) or the request
    is not one it serves (the host's own root, a relative program)."""
    if not argv or not isinstance(argv[0], str) or not argv[0].startswith("/"):
        raise SandboxError("sandbox: the program must be an absolute path inside the image, got %r" % (list(argv),))
    if any(not isinstance(arg, str) or "\0" in arg for arg in argv):
        raise SandboxError("sandbox: arguments must be strings without NUL, got %r" % (list(argv),))
    real = os.path.realpath(root)
    if real == "/":
        raise SandboxError("sandbox: the root is the host's own root (%s); run the program directly there" % root)
    if not os.path.isdir(real):
        raise SandboxError("sandbox: the root %s is not a directory" % root)
    unshare = find_unshare()
    if unshare is None:
        raise SandboxError("sandbox: util-linux unshare is not installed on this host; refusing to run the "
                           "image's %s with the host's privileges" % argv[0])
    if os.geteuid() != 0:
        raise SandboxError("sandbox: running the image's %s under %s needs root (namespaces, mounts)"
                           % (argv[0], root))
    settings = {"env": sandbox_environment(env), "tmp_private": bool(tmp_private),
                "keep": sorted(KEPT_CAPABILITIES.values())}
    namespaces = ["--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child", "--propagation", "private"]
    if not network:
        namespaces.insert(3, "--net")
    return ([unshare] + namespaces
            + [python or sys.executable, "-I", "-S", "-c", _STAGE_TWO, real, json.dumps(settings)]
            + list(argv))


def run_in_image(root: str, argv: t.Sequence[str], run: t.Callable[..., t.Tuple[int, str, str]],
                 env: t.Optional[dict] = None, network: bool = False) -> t.Tuple[int, str, str]:
    """Run a program of the image: directly on the image's own system (root "/"), in the sandbox
    otherwise. ``run(argv, **kwargs)`` is AnsibleModule.run_command (or an equivalent returning
    rc, out, err; it must give the program pipes, not a terminal or a file). SandboxError when a
    sandbox is needed and cannot be built."""
    if is_host_root(root):
        environment = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        environment.update(env or {})
        return run(list(argv), environ_update=environment)
    return run(image_command(root, argv, env, network))
