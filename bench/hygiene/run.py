# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_scan on real roots: Debian 12 and 13, clean and dirty, cold and warm page cache.

    sudo .venv/bin/python bench/hygiene/run.py [--rounds 5] [--out bench/hygiene/RESULTS.md]

For each suite of tools/rootfs (bookworm: cloud-init 22.4, trixie: 25.1) two roots are made from
the cached image: "clean" (the fresh root after image_clean, so the scan finds nothing) and "dirty"
(the fresh root with tests/fixtures/dirty_root.py's 52 leaks planted). Each is scanned with every
category (the scanner of plugins/module_utils/_hygiene.py, in-process, as the module runs it):

- cold: before each run the page cache of every file of the root is dropped (posix_fadvise
  DONTNEED after a sync; only the root's own files, so other users of the machine are not
  affected; directory entries and inodes stay cached, which a machine-wide drop_caches would
  clear);
- warm: the same scan again, the files in the page cache.

Medians of --rounds runs. Not a timed test: figures only. Needs root (the fixture sets owners and
the roots keep their numeric owners).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import stat
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.fixtures import dirty_root  # noqa: E402
from tools import image_hygiene  # noqa: E402
from tools.rootfs import harness  # noqa: E402

hygiene = image_hygiene.load()


def evict(root: Path) -> int:
    """Drop the page cache of every regular file under root (this filesystem only)."""
    os.sync()
    count = 0
    device = os.lstat(root).st_dev
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.lstat(os.path.join(dirpath, d)).st_dev == device]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


def timed_scan(root: Path, args: dict) -> tuple:
    started = time.perf_counter()
    result = hygiene.scan(str(root), **args)
    return time.perf_counter() - started, result


def measure(root: Path, args: dict, rounds: int) -> dict:
    cold, warm = [], []
    result = None
    for _round in range(rounds):
        evict(root)
        seconds, result = timed_scan(root, args)
        cold.append(seconds)
        seconds, result = timed_scan(root, args)
        warm.append(seconds)
    content = result.get("content_scan", {})
    return {"cold": statistics.median(cold), "warm": statistics.median(warm), "findings": len(result["findings"]),
            "files_read": content.get("files", 0), "bytes_read": content.get("bytes", 0),
            "cold_runs": cold, "warm_runs": warm}


def entries(root: Path) -> int:
    return sum(len(d) + len(f) for _p, d, f in os.walk(root))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")))
    parser.add_argument("--suites", default=",".join(harness.SUITES))
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/hygiene needs root (the roots keep their owners)", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.timezone.utc)
    load = os.getloadavg()[0]
    rows = []
    work = Path(tempfile.mkdtemp(prefix="bakery-bench-hygiene-", dir=harness.cache_dir() / "work"))
    try:
        for suite in args.suites.split(","):
            harness.check_suite(suite)
            clean = harness.fresh_root(work / suite / "clean", suite=suite)
            hygiene.clean(str(clean))
            dirty = harness.fresh_root(work / suite / "dirty", suite=suite)
            planted = dirty_root.plant(dirty)
            for kind, root, scan_args in (("clean", clean, {}),
                                          ("dirty", dirty, {"bake_paths": planted.bake_paths})):
                figures = measure(root, scan_args, args.rounds)
                figures.update(suite=suite, cloud_init=harness.SUITES[suite]["cloud_init"], kind=kind,
                               entries=entries(root))
                rows.append(figures)
                print("%s %s: cold %.3f s, warm %.3f s, %d findings" % (
                    suite, kind, figures["cold"], figures["warm"], figures["findings"]), file=sys.stderr)
    finally:
        for suite_dir in work.iterdir() if work.exists() else []:
            for root in suite_dir.iterdir():
                harness.remove_root(root)
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "# image_scan on real roots",
        "",
        "Written by `bench/hygiene/run.py` (%s UTC, %s, %d CPUs, load average %.1f at the start). Command: "
        "`sudo .venv/bin/python bench/hygiene/run.py --rounds %d`. Medians of %d rounds; every category; the "
        "scanner in-process as the module runs it (Python %s)."
        % (started.strftime("%Y-%m-%d %H:%M"), platform.machine(), os.cpu_count() or 0, load, args.rounds,
           args.rounds, platform.python_version()),
        "",
        "clean = the fresh root after `image_clean` (nothing found); dirty = the fresh root with the 52 leaks of "
        "tests/fixtures/dirty_root.py. Cold = the page cache of every file of the root dropped before the run "
        "(posix_fadvise, the root's own files only: directory entries and inodes stay cached); warm = the same "
        "scan again.",
        "",
        "| suite | cloud-init | root | entries | files read for secrets | MB read | findings | cold | warm |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append("| %s | %s | %s | %d | %d | %.1f | %d | %.3f s | %.3f s |" % (
            row["suite"], row["cloud_init"], row["kind"], row["entries"], row["files_read"],
            row["bytes_read"] / 1e6, row["findings"], row["cold"], row["warm"]))
    lines += ["", "Every run (seconds):", ""]
    for row in rows:
        cold = ", ".join("%.3f" % v for v in row["cold_runs"])
        warm = ", ".join("%.3f" % v for v in row["warm_runs"])
        lines.append("- %s %s: cold %s; warm %s" % (row["suite"], row["kind"], cold, warm))
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("wrote %s" % args.out, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
