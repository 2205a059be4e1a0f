# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A synthetic, deterministic image catalog in moto's amis.json format, for the ami_find benchmark.

    python bench/ami_find/catalog.py --count 50000 --out /tmp/amis.json [--regions us-east-1,eu-west-1]

The mix resembles what DescribeImages sees in a commercial region: Amazon Linux 2023 / 2 /
2018.03 images (owner 137112412989, alias amazon) in all their variants (x86_64, arm64, i386,
paravirtual, instance-store, minimal, several kernels), other Amazon images (Windows, ECS/EKS
optimized), Canonical, Debian and Red Hat releases, Marketplace images and look-alikes from other
accounts. Some images are deprecated and some disabled. Creation dates spread over the seven
years before --end (default now: a live catalog has this month's images). The same seed and
end give the same catalog.
Every image is listed in each of --regions (the endpoint loads an entry only into its regions).
"""
from __future__ import annotations

import argparse
import datetime
import json
import random
from pathlib import Path

AMAZON = "137112412989"
WINDOWS = "801119661308"
CANONICAL = "099720109477"
DEBIAN = "136693071363"
RED_HAT = "309956199498"

YEARS = 7


def _date(rng: random.Random, end: datetime.datetime) -> datetime.datetime:
    span = datetime.timedelta(days=365 * YEARS).total_seconds()
    return end - datetime.timedelta(seconds=int(rng.random() * span))


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _amazon_linux(rng: random.Random, moment: datetime.datetime) -> tuple:
    day = moment.strftime("%Y%m%d")
    build = rng.choice(["0", "0", "0", "1"])
    kind = rng.random()
    if kind < 0.40:
        arch = rng.choice(["x86_64", "x86_64", "arm64"])
        minimal = "minimal-" if rng.random() < 0.3 else ""
        kernel = rng.choice(["6.1", "6.1", "default", "6.12"])
        minor = max(0, (moment.year - 2023) * 4 + (moment.month - 1) // 3)
        return f"al2023-ami-{minimal}2023.{minor}.{day}.{build}-kernel-{kernel}-{arch}", arch, "hvm", "ebs"
    if kind < 0.80:
        arch = rng.choice(["x86_64", "x86_64", "arm64"])
        kernel = rng.choice(["", "", "kernel-5.10-", "kernel-4.14-"])
        variant = rng.choice(["", "", "minimal-"])
        volume = "ebs" if variant else rng.choice(["gp2", "gp2", "ebs"])
        return f"amzn2-ami-{kernel}{variant}hvm-2.0.{day}.{build}-{arch}-{volume}", arch, "hvm", "ebs"
    # The Amazon Linux AMI 2018.03: HVM, paravirtual, instance-store and 32-bit variants.
    virt = rng.choice(["hvm", "hvm", "paravirtual"])
    root = rng.choice(["ebs", "ebs", "ebs", "instance-store"])
    arch = "i386" if virt == "paravirtual" and rng.random() < 0.5 else "x86_64"
    suffix = "s3" if root == "instance-store" else rng.choice(["gp2", "ebs"])
    kind_name = "hvm-" if virt == "hvm" else "pv-" if rng.random() < 0.5 else ""
    return f"amzn-ami-{kind_name}2018.03.0.{day}.{build}-{arch}-{suffix}", arch, virt, root


def _amazon_other(rng: random.Random, moment: datetime.datetime) -> tuple:
    day = moment.strftime("%Y%m%d")
    arch = rng.choice(["x86_64", "x86_64", "arm64"])
    kind = rng.choice(["ecs", "eks", "deep-learning", "nat"])
    if kind == "ecs":
        return f"amzn2-ami-ecs-hvm-2.0.{day}-{arch}-ebs", arch, "hvm", "ebs"
    if kind == "eks":
        return f"amazon-eks-node-1.{rng.randint(24, 31)}-v{day}", arch, "hvm", "ebs"
    if kind == "nat":
        return f"amzn-ami-vpc-nat-2018.03.0.{day}.0-x86_64-ebs", "x86_64", "hvm", "ebs"
    return f"Deep Learning AMI GPU PyTorch 2.{rng.randint(0, 5)} (Amazon Linux 2) {day}", arch, "hvm", "ebs"


def _ubuntu(rng: random.Random, moment: datetime.datetime) -> tuple:
    version, code = rng.choice([("20.04", "focal"), ("22.04", "jammy"), ("24.04", "noble"), ("18.04", "bionic")])
    arch = rng.choice(["amd64", "amd64", "arm64"])
    store = rng.choice(["hvm-ssd", "hvm-ssd", "hvm-ssd-gp3", "hvm-instance"])
    root = "instance-store" if store == "hvm-instance" else "ebs"
    serial = moment.strftime("%Y%m%d") + rng.choice(["", "", ".1"])
    prefix = rng.choice(["ubuntu", "ubuntu", "ubuntu-minimal", "ubuntu-pro-server"])
    flavour = "minimal" if prefix == "ubuntu-minimal" else "pro-server" if prefix == "ubuntu-pro-server" else "server"
    name = f"{prefix}/images/{store}/ubuntu-{code}-{version}-{arch}-{flavour}-{serial}"
    return name, "arm64" if arch == "arm64" else "x86_64", "hvm", root


def _debian(rng: random.Random, moment: datetime.datetime) -> tuple:
    version = rng.choice(["10", "11", "12", "12"])
    arch = rng.choice(["amd64", "arm64"])
    stamp = moment.strftime("%Y%m%d-%H%M")
    return f"debian-{version}-{arch}-{stamp}", "arm64" if arch == "arm64" else "x86_64", "hvm", "ebs"


def _rhel(rng: random.Random, moment: datetime.datetime) -> tuple:
    major = rng.choice(["8", "9"])
    minor = rng.randint(0, 10)
    arch = rng.choice(["x86_64", "x86_64", "arm64"])
    kind = rng.choice(["Hourly2-GP2", "Hourly2-GP3", "Access2-GP2"])
    return f"RHEL-{major}.{minor}.0_HVM-{moment.strftime('%Y%m%d')}-{arch}-{rng.randint(0, 90)}-{kind}", arch, "hvm", "ebs"


def _impostor(rng: random.Random, moment: datetime.datetime) -> tuple:
    name, arch, virt, root = rng.choice([_amazon_linux, _ubuntu, _debian])(rng, moment)
    return name + rng.choice(["", "-hardened", "-cis"]), arch, virt, root


# (share of the catalog, owner ID, owner alias, name maker)
_MIX = [
    (0.36, AMAZON, "amazon", _amazon_linux),
    (0.14, AMAZON, "amazon", _amazon_other),
    (0.06, WINDOWS, "amazon", None),
    (0.20, CANONICAL, None, _ubuntu),
    (0.07, DEBIAN, None, _debian),
    (0.06, RED_HAT, None, _rhel),
    (0.06, None, "aws-marketplace", _impostor),
    (0.05, None, None, _impostor),
]


def _windows(rng: random.Random, moment: datetime.datetime) -> tuple:
    year = rng.choice(["2016", "2019", "2022", "2025"])
    edition = rng.choice(["Full-Base", "Core-Base", "Full-SQL_2019_Standard", "Full-ECS_Optimized"])
    return f"Windows_Server-{year}-English-{edition}-{moment.strftime('%Y.%m.%d')}", "x86_64", "hvm", "ebs"


def generate(count: int, regions: list, seed: int = 20250101, end: datetime.datetime | None = None) -> list:
    """count images created over the YEARS before `end` (default: now, as in a live catalog)."""
    end = end or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    rng = random.Random(seed)
    images = []
    seen = set()
    for index in range(count):
        pick = rng.random()
        for share, owner, alias, maker in _MIX:  # noqa: B007 (the pick after break is used below)
            if pick < share:
                break
            pick -= share
        moment = _date(rng, end)
        name, arch, virt, root = (maker or _windows)(rng, moment)
        owner = owner or f"{rng.randint(10**11, 10**12 - 1)}"
        if (owner, name) in seen:  # names are unique per account and region
            name = f"{name}-{index}"
        seen.add((owner, name))
        entry = {
            "ami_id": f"ami-{index:017x}",
            "name": name,
            "description": f"{name} (synthetic)",
            "owner_id": owner,
            "owner_alias": alias,
            "public": True,
            "state": "disabled" if rng.random() < 0.01 else "available",
            "architecture": arch,
            "virtualization_type": virt,
            "root_device_type": root,
            "root_device_name": "/dev/xvda",
            "image_type": "machine",
            "hypervisor": "xen",
            "sriov": "simple",
            "platform": "windows" if owner == WINDOWS else None,
            "image_location": f"{alias or owner}/{name}",
            "creation_date": _stamp(moment),
            "regions": list(regions),
        }
        if entry["platform"] is None:
            del entry["platform"]
        # Images older than two years are deprecated, as AWS does by default for public images.
        if moment < end - datetime.timedelta(days=730) and rng.random() < 0.5:
            entry["deprecation_time"] = _stamp(moment + datetime.timedelta(days=730))
        images.append(entry)
    return images


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--count", type=int, default=50000)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--regions", default="us-east-1")
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--end", default=None, help="newest creation date, YYYY-MM-DD (default: now)")
    args = parser.parse_args(argv)
    end = None
    if args.end:
        end = datetime.datetime.strptime(args.end, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
    images = generate(args.count, [r for r in args.regions.split(",") if r], args.seed, end)
    args.out.write_text(json.dumps(images))
    print(f"{len(images)} images -> {args.out}")


if __name__ == "__main__":
    main()
