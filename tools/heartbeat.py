# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress for the main job's quiet steps: a line when a step has said nothing for a while.

A user watching ``tools/bake_local.sh`` must be able to tell working from hung: debootstrap runs
for a minute without a word, and an Ansible task waiting for images prints nothing until it ends.
``run`` forwards a command's output line by line and adds ``== WHAT: still working (N s)`` after
every ``every`` seconds of silence; ``quiet_step`` does the same around Python code. As a command,
it forwards its standard input the same way, byte by byte (pytest's progress dots have no newline):

    some-step 2>&1 | python -m tools.heartbeat --what integration --every 30
"""
from __future__ import annotations

import argparse
import contextlib
import os
import select
import subprocess
import sys
import threading
import time
import typing as t

DEFAULT_EVERY = float(os.environ.get("BAKERY_HEARTBEAT_SECONDS") or 20)


class _Silence:
    """Prints a heartbeat line whenever nothing was said for `every` seconds."""

    def __init__(self, what: str, every: float, out: t.TextIO) -> None:
        self.what, self.every, self.out = what, every, out
        self.started = self.last = time.monotonic()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def said(self, line: str) -> None:
        with self.lock:
            self.out.write(line)
            self.out.flush()
            self.last = time.monotonic()

    def _watch(self) -> None:
        while not self.done.wait(min(1.0, self.every / 4)):
            now = time.monotonic()
            if now - self.last >= self.every:
                self.said("== %s: still working (%.0f s)\n" % (self.what, now - self.started))

    def __enter__(self) -> "_Silence":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()


@contextlib.contextmanager
def quiet_step(what: str, every: float = DEFAULT_EVERY, out: t.TextIO | None = None):
    """Heartbeat lines while the body runs (it prints nothing itself)."""
    with _Silence(what, every, out or sys.stdout):
        yield


def run(cmd: list, what: str, every: float = DEFAULT_EVERY, out: t.TextIO | None = None, **popen) -> int:
    """Run cmd with its stdout and stderr forwarded line by line to out, a heartbeat line after
    every `every` seconds of silence; the command's exit code."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, **popen)
    with _Silence(what, every, out or sys.stdout) as silence:
        assert proc.stdout is not None
        for line in proc.stdout:
            silence.said(line)
        return proc.wait()


def forward(source: int, out: t.BinaryIO, what: str, every: float = DEFAULT_EVERY) -> None:
    """Copy what arrives on file descriptor `source` to out as it comes; after every `every`
    seconds without a byte, a heartbeat line (on a line of its own)."""
    started = last = time.monotonic()
    while True:
        ready, _w, _x = select.select([source], [], [], min(1.0, every / 4))
        if ready:
            chunk = os.read(source, 65536)
            if not chunk:
                return
            out.write(chunk)
            out.flush()
            last = time.monotonic()
        elif time.monotonic() - last >= every:
            out.write(b"\n== %s: still working (%.0f s)\n" % (what.encode(), time.monotonic() - started))
            out.flush()
            last = time.monotonic()


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.heartbeat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--what", required=True, help="the step's name, in the heartbeat line")
    parser.add_argument("--every", type=float, default=DEFAULT_EVERY, help="seconds of silence before a line")
    args = parser.parse_args(argv)
    forward(sys.stdin.fileno(), sys.stdout.buffer, args.what, args.every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
