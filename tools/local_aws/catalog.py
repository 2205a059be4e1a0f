# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a synthetic image catalog for ``server.py --amis`` (benchmarks, demo bakes).

    python tools/local_aws/catalog.py --count 50000 --regions us-east-1,eu-west-1 -o /tmp/amis.json

Images are spread over publishers (Amazon Linux 2023/2, Ubuntu, Debian, RHEL and look-alike
names from other owners), architectures and dates; a share of old ones carry a past
``deprecation_time``. With ``--regions`` every entry names one region (round robin), so each
region loads only its share; without it every region loads every entry.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

_PUBLISHERS = [
    # owner id, alias, name template
    ("137112412989", "amazon", "al2023-ami-2023.{minor}.{date}.{build}-kernel-6.1-{arch}"),
    ("137112412989", "amazon", "al2023-ami-minimal-2023.{minor}.{date}.{build}-kernel-6.1-{arch}"),
    ("137112412989", "amazon", "amzn2-ami-hvm-2.0.{date}.{build}-{arch}-gp2"),
    ("099720109477", None, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{uarch}-server-{date}"),
    ("136693071363", None, "debian-12-{darch}-{date}-{build}"),
    ("309956199498", None, "RHEL-9.{minor}.0_HVM-{date}-{arch}-{build}-Hourly2-GP3"),
    ("444455556666", None, "al2023-ami-2023.{minor}.{date}.{build}-kernel-6.1-{arch}"),
]
_ARCH = {"x86_64": ("amd64", "amd64"), "arm64": ("arm64", "arm64")}


def make_catalog(count: int, regions: list[str] | None, seed: int = 1, deprecated_share: float = 0.3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    base = datetime(2022, 1, 1, tzinfo=timezone.utc)
    now = datetime.now(timezone.utc)
    span = (now - base).days
    images = []
    for index in range(count):
        owner, alias, template = _PUBLISHERS[index % len(_PUBLISHERS)]
        arch = "arm64" if rng.random() < 0.35 else "x86_64"
        created = base + timedelta(days=rng.randrange(span), seconds=rng.randrange(86400))
        uarch, darch = _ARCH[arch]
        name = template.format(
            minor=rng.randrange(0, 9), date=created.strftime("%Y%m%d"), build=index, arch=arch, uarch=uarch, darch=darch,
        )
        if "ubuntu" in name:
            name = f"{name}.{index}"
        entry: dict[str, Any] = {
            "ami_id": f"ami-{index:017x}",
            "name": name,
            "description": f"synthetic catalog image {index}",
            "owner_id": owner,
            "owner_alias": alias,
            "public": True,
            "architecture": arch,
            "virtualization_type": "hvm",
            "root_device_type": "ebs",
            "root_device_name": "/dev/xvda",
            "hypervisor": "xen",
            "image_type": "machine",
            "state": "available",
            "creation_date": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "boot_mode": "uefi-preferred",
            "ena_support": True,
            "imds_support": "v2.0" if "al2023" in name else None,
        }
        if (now - created).days > 365 and rng.random() < deprecated_share:
            entry["deprecation_time"] = (created + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:00.000Z")
        if regions:
            entry["region"] = regions[index % len(regions)]
        images.append(entry)
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--regions", default="", help="comma-separated regions to spread the entries over")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    regions = [region.strip() for region in args.regions.split(",") if region.strip()] or None
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(make_catalog(args.count, regions, args.seed), handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
