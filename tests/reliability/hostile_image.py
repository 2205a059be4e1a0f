# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A hostile image for the sandbox tests: programs that try every way out of a chroot.

``plant(root, config)`` replaces the image's /usr/bin/cloud-init, /usr/bin/python3 and /bin/sh
with scripts that first run PROBES (below) and then (python, sh) carry on as the real program,
so a play through the image still works. It also plants what the probes use: a block device
node of the host's disk in the image's /dev and /tmp, and a setuid copy of the image's Python
carrying every file capability.

Each probe tries one escape. When an escape works, the probe leaves proof where only an escaped
process can: a file in the host's ``markers`` directory and a line appended to the host's
``decoy_file`` (both outside the root, made by the test); for escapes that reach no path (a host
disk read, a writable core_pattern, a visible host process) it says ESCAPED in its report. Every
run writes a report inside the image: /var/lib/hostile/report-<pid>.json. No probe harms the
host even when it escapes (the control test runs them in a plain chroot): nothing but the
markers and the decoy is written, /proc files are opened and never written, a disk is read (512
bytes), a mount is undone at once, the one traced process is the test's own sentinel, and the
hostname is never set.

``problems(...)`` turns the evidence into a list of violations (empty: the sandbox held).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from pathlib import Path

CONFIG = "etc/hostile.json"
REPORTS = "var/lib/hostile"

PROBES = r'''
import ctypes, json, os, socket, stat, struct, subprocess, sys, time

CFG = json.load(open("/etc/hostile.json"))
MARKERS, DECOY = CFG["markers"], CFG["decoy_file"]
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
libc.ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p)
libc.ptrace.restype = ctypes.c_long


def errno_text():
    return os.strerror(ctypes.get_errno())


def leave_proof(technique, prefix="/"):
    """Proof at host paths (MARKERS, DECOY) as seen from prefix; True when it got there."""
    markers = os.path.join(prefix, MARKERS.lstrip("/"))
    if not os.path.isdir(markers):
        return False
    with open(os.path.join(markers, technique), "w") as handle:
        handle.write("escaped by %s from %s\n" % (technique, sys.argv[0]))
    with open(os.path.join(prefix, DECOY.lstrip("/")), "a") as handle:
        handle.write("ESCAPED by %s\n" % technique)
    return True


def in_child(technique, attempt):
    """Run an attempt that may leave this process outside the chroot in a child; its verdict."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            verdict = attempt()
        except BaseException as exc:  # noqa: B902 - any failure is a verdict
            verdict = "blocked: %s" % exc
        os.write(write, verdict.encode()[:4000])
        os._exit(0)
    os.close(write)
    data = b""
    while True:
        block = os.read(read, 4096)
        if not block:
            break
        data += block
    os.close(read)
    os.waitpid(pid, 0)
    return data.decode() or "blocked: no verdict"


def double_chroot():
    os.makedirs("/var/lib/hostile/jail", exist_ok=True)
    if libc.chroot(b"/var/lib/hostile/jail") != 0:
        return "blocked: chroot: " + errno_text()
    for _ in range(64):
        os.chdir("..")
    os.chroot(".")
    return "ESCAPED: chroot then .." if leave_proof("double_chroot") else "blocked: no host path after chroot"


def inherited_fd():
    for name in sorted(os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else [], key=int) or range(0, 256):
        fd = int(name)
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                continue
            os.fchdir(fd)
        except OSError:
            continue
        for _ in range(64):
            os.chdir("..")
        if leave_proof("inherited_fd", "."):
            return "ESCAPED: fchdir(%d) then .." % fd
    return "blocked: no directory descriptor leads out"


class FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int), ("f_handle", ctypes.c_ubyte * 128)]


def open_by_handle():
    own, mount_id = FileHandle(), ctypes.c_int()
    own.handle_bytes = 128
    kind = 1  # FILEID_INO32_GEN (ext2/3/4)
    if libc.name_to_handle_at(-100, b"/", ctypes.byref(own), ctypes.byref(mount_id), 0) == 0:
        kind = own.handle_type
    wanted = FileHandle()
    wanted.handle_bytes, wanted.handle_type = 8, kind
    struct.pack_into("<II", wanted.f_handle, 0, 2, 0)  # the file system's root directory: inode 2
    mount_fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    fd = libc.open_by_handle_at(mount_fd, ctypes.byref(wanted), os.O_RDONLY | os.O_DIRECTORY)
    if fd < 0:
        return "blocked: open_by_handle_at: " + errno_text()
    os.fchdir(fd)
    if leave_proof("open_by_handle", "."):
        return "ESCAPED: open_by_handle_at(inode 2)"
    return "ESCAPED: open_by_handle_at opened the file system's root (no marker path on it)"


def visible_processes():
    out = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as handle:
                    out[int(name)] = handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            except OSError:
                pass
    return out


def proc_root():
    tried = 0
    for pid, cmdline in visible_processes().items():
        if CFG["sentinel_token"] not in cmdline:
            continue
        tried += 1
        if leave_proof("proc_pid_root", "/proc/%d/root" % pid):
            return "ESCAPED: /proc/%d/root of a host process" % pid
    return "blocked: no host process to reach through /proc/<pid>/root (%d tried)" % tried


def host_process_visible():
    seen = [pid for pid, cmdline in visible_processes().items() if CFG["sentinel_token"] in cmdline]
    return "ESCAPED: host process visible as %s" % seen if seen else "blocked: no host process in /proc"


def ptrace_host():
    for pid, cmdline in visible_processes().items():
        if CFG["sentinel_token"] in cmdline:
            if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
                os.waitpid(pid, 0)
                libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
                return "ESCAPED: ptrace attached to host process %d" % pid
            return "blocked: ptrace: " + errno_text()
    return "blocked: no host process to trace"


def device_nodes():
    results = []
    for path in ("/dev/hostdisk", "/tmp/hostdisk"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            results.append("%s: %s" % (path, exc.strerror))
            continue
        try:
            data = os.read(fd, 512)
        except OSError as exc:
            results.append("%s: read %s" % (path, exc.strerror))
            continue
        finally:
            os.close(fd)
        return "ESCAPED: read %d bytes of the host disk through %s" % (len(data), path)
    try:
        os.mknod("/tmp/newdisk", stat.S_IFBLK | 0o600, os.makedev(*CFG["disk"]))
    except OSError as exc:
        results.append("mknod: %s" % exc.strerror)
    else:
        try:
            with open("/tmp/newdisk", "rb") as handle:
                handle.read(512)
            return "ESCAPED: made and read a node of the host disk"
        except OSError as exc:
            results.append("new node: %s" % exc.strerror)
        finally:
            os.unlink("/tmp/newdisk")
    return "blocked: " + "; ".join(results)


def capability_binary():
    try:
        out = subprocess.run(["/usr/local/bin/hostile-caps", "-c", "print(open('/proc/self/status').read())"],
                             capture_output=True, text=True, timeout=60).stdout
    except OSError as exc:
        return "blocked: %s" % exc
    caps = dict(line.split(":\t", 1) for line in out.splitlines() if line.startswith("Cap"))
    effective = int(caps.get("CapEff", "0"), 16)
    if effective & ((1 << 18) | (1 << 21) | (1 << 2) | (1 << 27)):
        return "ESCAPED: setuid/file-capability binary runs with CapEff %x" % effective
    return "blocked: CapEff %x" % effective


def mount_something():
    if libc.mount(b"hostile", b"/mnt", b"tmpfs", 0, None) == 0:
        libc.umount2(b"/mnt", 2)
        return "ESCAPED: mounted a tmpfs"
    return "blocked: mount: " + errno_text()


def proc_writable():
    for path in ("/proc/sys/kernel/core_pattern", "/proc/sysrq-trigger", "/proc/sys/kernel/modprobe"):
        try:
            fd = os.open(path, os.O_WRONLY)
        except OSError:
            continue
        os.close(fd)  # opened for writing, never written
        return "ESCAPED: %s is writable (a host-root escape)" % path
    return "blocked: no global /proc file writable"


def proc_self_fd():
    names = os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ["0", "1", "2"]
    for name in names:
        try:
            st = os.stat("/proc/self/fd/" + name)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) != tuple(CFG.get("own_file", (0, 0))):
            try:
                with open("/proc/self/fd/" + name, "ab") as handle:
                    handle.write(b"ESCAPED via /proc/self/fd\n")
                return "ESCAPED: wrote the file behind descriptor %s" % name
            except OSError as exc:
                return "blocked: /proc/self/fd/%s: %s" % (name, exc.strerror)
    return "blocked: no file behind a descriptor"


def abstract_socket():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        sock.connect("\0" + CFG["abstract"])
        sock.sendall(b"ESCAPED")
    except OSError as exc:
        return "blocked: %s" % exc
    finally:
        sock.close()
    return "ESCAPED: connected to the host's abstract socket"


def network():
    for host in CFG["hosts"]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(2)
        try:
            sock.connect((host, CFG["port"]))
            sock.sendall(b"ESCAPED")
            return "ESCAPED: connected to %s:%d on the host" % (host, CFG["port"])
        except OSError:
            continue
        finally:
            sock.close()
    return "blocked: no host listener reachable"


def interfaces():
    try:
        with open("/proc/net/dev") as handle:
            return sorted(line.split(":")[0].strip() for line in handle.read().splitlines()[2:])
    except OSError:
        return []


def daemon():
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            for fd in range(0, 3):  # let go of the caller's pipes (it must not wait for this one)
                os.close(fd)
            os.open("/dev/null" if os.path.exists("/dev/null") else "/", os.O_RDONLY)
            os.dup2(0, 1)
            os.dup2(0, 2)
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", CFG["daemon_token"]])
        os._exit(0)
    os.waitpid(pid, 0)
    return "started"


def main():
    report = {"argv": sys.argv, "pid": os.getpid(), "probes": {}}
    for name, attempt in (("double_chroot", double_chroot), ("inherited_fd", inherited_fd),
                          ("open_by_handle", open_by_handle), ("proc_pid_root", proc_root)):
        report["probes"][name] = in_child(name, attempt)
    for name, attempt in (("host_process_visible", host_process_visible), ("ptrace", ptrace_host),
                          ("device_nodes", device_nodes), ("capability_binary", capability_binary),
                          ("mount", mount_something), ("proc_writable", proc_writable),
                          ("proc_self_fd", proc_self_fd), ("abstract_socket", abstract_socket),
                          ("network", network)):
        try:
            report["probes"][name] = attempt()
        except Exception as exc:  # noqa: B902
            report["probes"][name] = "blocked: %s" % exc
    report["interfaces"] = interfaces()
    report["processes"] = visible_processes()
    try:
        with open("/proc/self/status") as handle:
            report["caps"] = dict(line.split(":\t", 1) for line in handle.read().splitlines() if line.startswith("Cap"))
    except OSError as exc:  # no /proc: a plain chroot of an unmounted root
        report["caps"] = {"error": str(exc)}
    report["environ"] = dict(os.environ)
    report["daemon"] = daemon()
    os.makedirs("/var/lib/hostile", exist_ok=True)
    with open("/var/lib/hostile/report-%d-%d.json" % (os.getpid(), time.monotonic_ns()), "w") as handle:
        json.dump(report, handle)


main()
'''

CLOUD_INIT = '''#!{python}
import sys
sys.path.insert(0, "/usr/local/lib/hostile")
import probes  # noqa: F401  (runs them)
print("Valid schema" if "schema" in sys.argv else "cleaned")
'''

# A trojaned interpreter and shell: probes, then the real program, so the play still works.
WRAPPER = '''#!{python}
import os, sys
sys.path.insert(0, "/usr/local/lib/hostile")
import probes  # noqa: F401  (runs them)
os.execv("{real}", ["{argv0}"] + sys.argv[1:])
'''


def _real_python(root: Path) -> str:
    """/usr/bin/python3.N of the image (what /usr/bin/python3 points to)."""
    link = root / "usr/bin/python3"
    target = os.readlink(link) if link.is_symlink() else "python3"
    return "/usr/bin/" + os.path.basename(target)


def plant(root: Path, config: dict) -> dict:
    """Make ``root`` hostile; returns what was planted (paths inside the image)."""
    python = _real_python(root)
    (root / CONFIG).write_text(json.dumps(config))
    lib = root / "usr/local/lib/hostile"
    lib.mkdir(parents=True, exist_ok=True)
    (lib / "probes.py").write_text(PROBES)
    (root / REPORTS).mkdir(parents=True, exist_ok=True)

    def script(rel: str, text: str) -> None:
        target = root / rel
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_text(text)
        target.chmod(0o755)

    script("usr/bin/cloud-init", CLOUD_INIT.format(python=python))
    script("usr/bin/python3", WRAPPER.format(python=python, real=python, argv0="/usr/bin/python3"))
    script("usr/bin/sh", WRAPPER.format(python=python, real="/usr/bin/dash", argv0="sh"))
    # the host's disk as a block device node, where the image ships /dev, and in /tmp
    major, minor = config["disk"]
    for rel in ("dev/hostdisk", "tmp/hostdisk"):
        node = root / rel
        if not node.exists():
            os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(major, minor))
    # a setuid-root copy of the image's Python carrying every file capability (effective)
    caps = root / "usr/local/bin/hostile-caps"
    caps.write_bytes((root / python.lstrip("/")).read_bytes())
    os.chown(caps, 0, 0)
    caps.chmod(0o4755)
    os.setxattr(caps, "security.capability", struct.pack("<IIIII", 0x02000001, 0xFFFFFFFF, 0, 0xFFFFFFFF, 0))
    return {"python": python}


def reports(root: Path) -> list:
    """Every report the probes wrote in the image, oldest first."""
    folder = root / REPORTS
    found = sorted(folder.glob("report-*.json"), key=lambda p: p.stat().st_mtime_ns) if folder.is_dir() else []
    return [json.loads(path.read_text()) for path in found]


def clear_reports(root: Path) -> None:
    for path in (root / REPORTS).glob("report-*.json"):
        path.unlink()


def tree_state(tree: Path) -> dict:
    """path -> (kind, mode, inode, content hash or link target) of everything under tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(tree)):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                what = "link:" + os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as handle:
                    what = hashlib.sha256(handle.read()).hexdigest()
            else:
                what = "dir"
            out[os.path.relpath(full, str(tree))] = (what, stat.S_IMODE(st.st_mode), st.st_ino)
    return out


def host_processes_with(token: str) -> list:
    """Host PIDs whose command line holds token."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as handle:
                    if token.encode() in handle.read():
                        found.append(int(name))
            except OSError:
                pass
    return found


def problems(found_reports: list, markers: Path, decoy: Path, decoy_before: dict, secret: str,
             isolated_network: bool, abstract_blocked_expected: bool, accepted: list,
             min_reports: int = 1) -> list:
    """The violations the evidence shows (empty when the sandbox held)."""
    out = []
    if len(found_reports) < min_reports:
        out.append("the hostile program ran %d times, expected at least %d (did it run at all?)"
                   % (len(found_reports), min_reports))
    left = sorted(os.listdir(markers)) if markers.is_dir() else ["<markers directory gone>"]
    if left:
        out.append("markers outside the root: %s" % left)
    if tree_state(decoy) != decoy_before:
        out.append("the decoy tree outside the root changed")
    # with the host network shared, its TCP listener is reachable by design (package downloads)
    reached = [name for name in accepted if (name != "tcp" or isolated_network)
               and (name != "abstract unix socket" or abstract_blocked_expected)]
    if reached:
        out.append("host listeners accepted connections: %s" % reached)
    for report in found_reports:
        who = " ".join(report["argv"])[:80]
        for probe, verdict in sorted(report["probes"].items()):
            if probe == "network" and not isolated_network:
                continue
            if probe == "abstract_socket" and not abstract_blocked_expected:
                continue
            if verdict.startswith("ESCAPED"):
                out.append("%s: %s: %s" % (who, probe, verdict))
        if isolated_network and report["interfaces"] not in ([], ["lo"]):
            out.append("%s: network interfaces %s (only lo expected)" % (who, report["interfaces"]))
        if len(report["processes"]) > 12:
            out.append("%s: %d processes visible" % (who, len(report["processes"])))
        bounding = int(report["caps"].get("CapBnd", "ffffffffff"), 16)
        for cap in (2, 12, 13, 16, 17, 18, 19, 21, 22, 27):
            if bounding & (1 << cap):
                out.append("%s: capability %d in the bounding set" % (who, cap))
        if any(secret in "%s=%s" % item for item in report["environ"].items()):
            out.append("%s: the controller's environment reached the image" % who)
    return out
