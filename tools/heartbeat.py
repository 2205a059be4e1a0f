# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress for the main job's quiet steps: a line when a step has said nothing for a while.

A user watching ``tools/bake_local.sh`` must be able to tell working from hung: debootstrap runs
for a minute without a word, and an Ansible task waiting for images prints nothing until it ends.
``run`` forwards a command's output line by line and adds ``== WHAT: still working (N s)`` after
every ``every`` seconds of silence; ``quiet_step`` does the same around Python code.
"""
from __future__ import annotations

import contextlib
import os
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
