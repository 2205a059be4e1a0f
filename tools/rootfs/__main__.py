# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CLI: python -m tools.rootfs build|path|fresh|firstboot|remove ..."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

from . import harness


def _read(path):
    if path is None:
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rootfs", description=__doc__)
    parser.add_argument("--cache-dir", help="cache directory (default $BAKERY_CACHE_DIR or ~/.cache/bakery-ami)")
    parser.add_argument("--suite", choices=sorted(harness.SUITES),
                        help="Debian suite (default $BAKERY_DEBIAN_SUITE or %s)" % harness.DEFAULT_SUITE)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the cached image unless present")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("path", help="print the cached image path (exit 1 if not built)")
    fresh = sub.add_parser("fresh", help="extract a fresh root into DEST")
    fresh.add_argument("dest")
    boot = sub.add_parser("firstboot", help="first-boot ROOT with cloud-init in a chroot")
    boot.add_argument("root")
    boot.add_argument("--instance-id", default=None, help="default: a new i-<random>")
    boot.add_argument("--hostname", default="bakery-firstboot")
    boot.add_argument("--user-data", metavar="FILE")
    boot.add_argument("--vendor-data", metavar="FILE")
    boot.add_argument("--network-config", metavar="FILE")
    boot.add_argument("--remove-seed", action="store_true", help="remove seed and 90_dslist.cfg afterwards")
    boot.add_argument("--verbose", action="store_true", help="print each stage's output")
    remove = sub.add_parser("remove", help="unmount anything under ROOT and delete it")
    remove.add_argument("root")
    args = parser.parse_args(argv)

    try:
        if args.command == "build":
            started = time.monotonic()
            path = harness.ensure_image(args.cache_dir, force=args.force, suite=args.suite)
            print(json.dumps({"image": str(path), "seconds": round(time.monotonic() - started, 1)}))
        elif args.command == "path":
            path = harness.image_path(args.cache_dir, args.suite)
            print(path)
            return 0 if path.exists() else 1
        elif args.command == "fresh":
            started = time.monotonic()
            root = harness.fresh_root(args.dest, args.cache_dir, args.suite)
            print(json.dumps({"root": str(root), "seconds": round(time.monotonic() - started, 2)}))
        elif args.command == "firstboot":
            result = harness.first_boot(
                args.root,
                instance_id=args.instance_id or "i-%s" % uuid.uuid4().hex[:17],
                hostname=args.hostname,
                user_data=_read(args.user_data),
                vendor_data=_read(args.vendor_data),
                network_config=_read(args.network_config),
                keep_seed=not args.remove_seed,
            )
            if args.verbose:
                for stage in result.stages:
                    print("==== %s (rc=%d)\n%s" % (stage.name, stage.returncode, stage.output), file=sys.stderr)
            print(json.dumps(result.summary(), indent=2))
        elif args.command == "remove":
            harness.remove_root(args.root)
    except harness.HarnessError as exc:
        print("rootfs: %s" % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
