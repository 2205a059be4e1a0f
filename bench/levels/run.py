# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: time from first boot to ready, per bake level, with the package mirror reachable
and unreachable at launch.

    sudo .venv/bin/python bench/levels/run.py [--levels full,standard,minimal] [--out bench/levels/RESULTS.md]

For each level: the local bake (examples/local.yml with bake_level set) on the local endpoint,
then two first boots of the image's snapshot archive with real cloud-init (tools.local_builder's
boot check, the same one tools/ansible/boot_check.yml runs) and the bake's launch-user-data.yml:

- mirror reachable: the boot check fetches the launch packages from the mirror first (the
  harness boots in a network namespace holding only lo, so this download stands for the one an
  instance makes at launch) and the time to ready is download + first boot;
- mirror unreachable: no download, and the user-data gets an apt proxy on a closed 127.0.0.1 port
  (an instance whose mirror is down); the time to ready is the first boot, and "ready" is whether
  every check passed.
Needs root (chroot, mounts) and the package mirror for the bakes. Figures only, never a test.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tools import local_builder  # noqa: E402  pylint: disable=wrong-import-position
from tools.local_aws.control import LocalAws  # noqa: E402  pylint: disable=wrong-import-position

CATALOG = REPO_ROOT / "tools" / "local_aws" / "catalogs" / "local-default.json"
CLOSED_PROXY = "http://127.0.0.1:9"


def env(scratch: Path) -> dict:
    link = scratch / "colls" / "ansible_collections" / "bakery" / "ami"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO_ROOT)
    result = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(scratch / "colls"), ANSIBLE_PYTHON_INTERPRETER=sys.executable,
                  ANSIBLE_NOCOLOR="1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_DEFAULT_REGION="us-east-1", ANSIBLE_LOCALHOST_WARNING="0",
                  ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    result.pop("AWS_PROFILE", None)
    return result


def bake(aws, level: str, out: Path, scratch: Path) -> dict:
    started = time.monotonic()
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
         "playbooks/bake.yml", "-e", "@examples/local.yml",
         "-e", json.dumps({"bake_endpoint_url": aws.url, "bake_level": level, "bake_output_dir": str(out),
                           "bake_family": "levels-" + level, "bake_keep_latest": 0})],
        cwd=str(REPO_ROOT), env=env(scratch), capture_output=True, text=True, check=False, timeout=3600)
    (out / "bake.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError("bake at level %s failed; log: %s" % (level, out / "bake.log"))
    report = json.loads((out / "bake-report.json").read_text())
    report["bake_seconds"] = round(time.monotonic() - started, 1)
    return report


def boot(report: dict, mirror: bool, work: Path) -> dict:
    user_data_path = Path(report["outputs"]["launch_user_data"])
    expect = work / "expect.json"
    expect.write_text(json.dumps(report["customizations"]))
    if not mirror:
        cloud_config = yaml.safe_load(user_data_path.read_text()) or {}
        cloud_config.setdefault("apt", {})["proxy"] = CLOSED_PROXY
        changed = work / "user-data-no-mirror.yml"
        changed.write_text("#cloud-config\n" + yaml.safe_dump(cloud_config, sort_keys=False))
        user_data_path = changed
    real_prefetch = local_builder._prefetch  # pylint: disable=protected-access
    if not mirror:
        local_builder._prefetch = lambda root, packages: {"skipped": "mirror unreachable"}  # pylint: disable=protected-access
    try:
        result, ok = local_builder.boot_check("", report["images"]["us-east-1"], str(user_data_path), str(expect),
                                              str(work), "bakery-levels", False)
    finally:
        local_builder._prefetch = real_prefetch  # pylint: disable=protected-access
    prefetch_seconds = (result.get("prefetch") or {}).get("seconds", 0) if isinstance(result.get("prefetch"), dict) else 0
    return {"ok": ok, "first_boot": result.get("first_boot", {}).get("seconds"), "check_seconds": result["seconds"],
            "prefetch": result.get("prefetch"), "prefetch_seconds": prefetch_seconds, "failed": result["failed"],
            "launch_packages": (yaml.safe_load(user_data_path.read_text()) or {}).get("packages", [])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--levels", default="full,standard,minimal")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (the local builder and the boot harness use chroot and mounts)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bakery-bench-levels-") as tmp, \
            LocalAws.start(port=0, amis=str(CATALOG)) as aws:
        scratch = Path(tmp)
        for level in args.levels.split(","):
            aws.reset()
            out = scratch / level
            out.mkdir()
            report = bake(aws, level, out, scratch)
            for mirror in (True, False):
                work = scratch / ("%s-%s" % (level, "mirror" if mirror else "no-mirror"))
                work.mkdir()
                result = boot(report, mirror, work)
                rows.append(dict(result, level=level, mirror=mirror, bake_seconds=report["bake_seconds"]))
                print("%-8s mirror %-11s ready %s first boot %.1f s, check %.1f s, failed %s" % (
                    level, "reachable" if mirror else "unreachable", result["ok"], result["first_boot"] or 0,
                    result["check_seconds"], result["failed"]), flush=True)
    lines = [
        "# Time to ready by bake level",
        "",
        "Written by `bench/levels/run.py` (%s UTC, %d CPUs, load average %.1f). Command: `sudo .venv/bin/python "
        "bench/levels/run.py`. Each level is baked from `examples/local.yml` (package `cron`, service `cron`, three "
        "files, launch values) and first-booted with real cloud-init in a chroot with its launch user-data." % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), os.cpu_count() or 0,
            os.getloadavg()[0]),
        "",
        "| level | mirror at launch | packages at launch | download | first boot | boot to ready | ready | failed checks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| %s | %s | %s | %.1f s | %.1f s | %.1f s | %s | %s |" % (
            r["level"], "reachable" if r["mirror"] else "unreachable", ", ".join(r["launch_packages"]) or "-",
            r["prefetch_seconds"], r["first_boot"] or 0, (r["first_boot"] or 0) + r["prefetch_seconds"],
            "yes" if r["ok"] else "**no**", "; ".join(r["failed"]) or "-"))
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("results: %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
