# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A sandboxed ``chroot`` for the local builder: sandbox_chroot.py ROOT PROGRAM [ARG...]

Not shipped with the collection (tools/ is test and demo tooling). The local builder reaches its
root through community.general.chroot, which runs every command of the bake (modules, package
scripts, put_file and fetch_file through ``dd``) as ``<chroot_exe> ROOT /bin/sh -c CMD``. With
plain chroot all of that is host root: one ``chroot`` call, a device node, a writable /proc or
an inherited descriptor away from the host. roles/builder/tasks/connect_local.yml points the
connection's ``chroot_exe`` (``ansible_chroot_exe``) here instead, and each command runs in the
collection's image sandbox (plugins/module_utils/_sandbox.py, whose header says what it does):
private mount, PID, IPC and UTS namespaces, the root bind-mounted nosuid,nodev, a fresh
read-only proc, a device-less /dev, the capabilities that leave a chroot dropped, no_new_privs,
a clean environment. The network stays shared (packages are downloaded during the bake).

Standard streams that are not pipes or sockets (``put_file`` hands ``dd`` the controller's own
source file as stdin; a terminal when run by hand) are copied through pipes, so that the image
cannot reopen the controller's file through /proc/self/fd and write to it.

Exit status: the program's; 125 when the sandbox cannot be set up (message on stderr), 127 when
the program cannot run in the image.
"""
from __future__ import annotations

import os
import stat
import sys
import types

COLLECTION = "ansible_collections.bakery.ami.plugins.module_utils."
MODULE_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "plugins", "module_utils")
BUFSIZE = 1 << 16


def sandbox_module():
    """The collection's _sandbox module, loaded from this checkout (no Ansible needed)."""
    name = COLLECTION + "_sandbox"
    if name in sys.modules:
        return sys.modules[name]
    for leaf in ("_errors", "_sandbox"):
        full = COLLECTION + leaf
        if full in sys.modules:
            continue
        path = os.path.join(MODULE_UTILS, leaf + ".py")
        module = types.ModuleType(full)
        module.__file__ = path
        sys.modules[full] = module
        with open(path, encoding="utf-8") as handle:
            code = compile(handle.read(), path, "exec")
        exec(code, module.__dict__)  # pylint: disable=exec-used
    return sys.modules[name]


def _passes_through(fd: int) -> bool:
    """Whether a standard stream can go to the sandbox as it is (pipe, socket, /dev/null, closed)."""
    try:
        st = os.fstat(fd)
    except OSError:
        return True
    return (stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode)
            or (stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)))


def _copy(source: int, sink: int, close_sink: bool) -> None:
    try:
        while True:
            try:
                block = os.read(source, BUFSIZE)
            except OSError:
                break
            if not block:
                break
            view = memoryview(block)
            while view:
                try:
                    written = os.write(sink, view)
                except OSError:
                    return
                view = view[written:]
    finally:
        if close_sink:
            try:
                os.close(sink)
            except OSError:
                pass


def _die_with_parent() -> None:
    import ctypes  # pylint: disable=import-outside-toplevel
    import signal  # pylint: disable=import-outside-toplevel

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def run(command: list) -> int:
    """Run the sandbox command with pipes for every standard stream that needs one."""
    pumped = [fd for fd in (0, 1, 2) if not _passes_through(fd)]
    if not pumped:  # the usual case (the connection gives pipes): become the sandbox
        os.execv(command[0], command)
    import subprocess  # pylint: disable=import-outside-toplevel
    import threading  # pylint: disable=import-outside-toplevel

    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        command, preexec_fn=_die_with_parent,
        stdin=subprocess.PIPE if 0 in pumped else None,
        stdout=subprocess.PIPE if 1 in pumped else None,
        stderr=subprocess.PIPE if 2 in pumped else None)
    threads = []
    if 0 in pumped:
        threads.append(threading.Thread(target=_copy, args=(0, proc.stdin.fileno(), True), daemon=True))
    for fd, pipe in ((1, proc.stdout), (2, proc.stderr)):
        if fd in pumped:
            threads.append(threading.Thread(target=_copy, args=(pipe.fileno(), fd, False)))
    for thread in threads:
        thread.start()
    code = proc.wait()
    for thread in threads[1 if 0 in pumped else 0:]:
        thread.join()
    return code if code >= 0 else 128 - code


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] in ("-h", "--help"):
        print("usage: sandbox_chroot.py ROOT PROGRAM [ARG...]  (PROGRAM: absolute path inside ROOT)",
              file=sys.stderr)
        return 125 if args[:1] not in (["-h"], ["--help"]) else 0
    sandbox = sandbox_module()
    root, program = args[0], args[1:]
    try:
        command = sandbox.image_command(root, program, network=True)
    except sandbox.SandboxError as exc:
        print("sandbox_chroot: %s" % exc, file=sys.stderr)
        return sandbox.EXIT_SANDBOX
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
