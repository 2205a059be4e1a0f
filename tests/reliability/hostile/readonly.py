# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a command with the host's file systems read-only, except some scratch directories.

The corpus feeds hostile input to modules that are, until their fixes are merged, known to act
outside the image root (issue 17: a link to /etc edited a shadow file; "/tmp/.." removed a whole
root). Every hostile link points at a decoy in the scratch directory, so the decoy checks see
what a module did; this wrapper is the safety net in case a module reaches further than the
decoy: in a private mount namespace every mount is remounted read-only, except the directories
named on the command line (bind-mounted onto themselves first, so they stay writable) and the
kernel's pseudo file systems. The namespace, and every mount in it, ends with the command.

    unshare --mount --propagation private python readonly.py DIR... -- COMMAND ARG...

Standard library only; run as root (mount needs CAP_SYS_ADMIN).
"""
from __future__ import annotations

import os
import subprocess
import sys

# File systems left as they are: the kernel's views, devices and shared memory (multiprocessing).
KEEP_TYPES = {"proc", "sysfs", "cgroup", "cgroup2", "devpts", "devtmpfs", "mqueue", "securityfs", "debugfs",
              "tracefs", "pstore", "bpf", "configfs", "fusectl", "hugetlbfs", "binfmt_misc", "autofs"}
KEEP_POINTS = {"/dev/shm"}
# Per-mount flags a read-only remount keeps (a bind remount sets exactly the flags it is given).
KEEP_FLAGS = ("nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime")


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mounts() -> list:
    """(mount point, per-mount options, fs type) of every mount, parents first."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            fields = line.split()
            sep = fields.index("-")
            found.append((_unescape(fields[4]), fields[5].split(","), fields[sep + 1]))
    return found


def _under(path: str, dirs: list) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def main(argv: list) -> int:
    if "--" not in argv:
        print("usage: readonly.py DIR... -- COMMAND ARG...", file=sys.stderr)
        return 2
    sep = argv.index("--")
    writable = [os.path.realpath(d) for d in argv[:sep]]
    command = argv[sep + 1:]
    for directory in writable:
        subprocess.run(["mount", "--bind", directory, directory], check=True)
    for point, options, fstype in mounts():
        if fstype in KEEP_TYPES or point in KEEP_POINTS or _under(point, writable) or "ro" in options:
            continue
        flags = ",".join(["remount", "bind", "ro"] + [f for f in options if f in KEEP_FLAGS])
        proc = subprocess.run(["mount", "-o", flags, point], capture_output=True, text=True, check=False)
        if proc.returncode != 0 and os.path.exists(point):
            # a mount point that cannot be made read-only: refuse to run rather than run unguarded
            print("readonly: cannot remount %s read-only: %s" % (point, proc.stderr.strip()), file=sys.stderr)
            return 3
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
