# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: one bakery.ami.ami_find task against amazon.aws.ec2_ami_info plus a Jinja sort.

    .venv/bin/python bench/ami_find/run.py [--count 50000] [--repeat 3] [--out bench/ami_find/RESULTS.md]

Generates a synthetic catalog (bench/ami_find/catalog.py) present in five regions, starts the
local endpoint with it (tools/local_aws/server.py), warms every region, then runs each case as
its own ansible-playbook under GNU time, the variants interleaved, `--repeat` times. Reported:
median wall time of the whole ansible-playbook run, median peak resident memory of the largest
process of the run (GNU time %M: controller, worker or module), the DescribeImages requests the
endpoint served, and the ratios ec2_ami_info / ami_find from the same run. Both variants of a
case must pick the same newest image, or the run fails. Never a timed test: figures only.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
VENV_BIN = Path(sys.executable).parent
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
ATTRS = {"architecture": "x86_64", "virtualization-type": "hvm", "root-device-type": "ebs", "state": "available"}
NARROW_NAME = "al2023-ami-2023.10.*-kernel-6.1-x86_64"
AL2023_NAME = "al2023-ami-2023.*-kernel-*-x86_64"

# case -> (description, ami_find arguments, ec2_ami_info arguments or None)
CASES = {
    "narrow": (
        f"amazon-owned, name {NARROW_NAME}",
        {"owners": ["amazon"], "name": NARROW_NAME},
        {"owners": ["amazon"], "filters": dict(ATTRS, name=NARROW_NAME)},
    ),
    "distro": (
        "distro al2023 (owner 137112412989, name al2023-ami-2023.*-kernel-*-x86_64)",
        {"distro": "al2023"},
        {"owners": ["137112412989"], "filters": dict(ATTRS, name=AL2023_NAME)},
    ),
    "broad": (
        "all amazon-owned x86_64 HVM EBS images",
        {"owners": ["amazon"]},
        {"owners": ["amazon"], "filters": dict(ATTRS)},
    ),
}
REGION_CASES = {
    "distro": {"distro": "al2023"},
    "narrow": {"owners": ["amazon"], "name": NARROW_NAME},
}


def playbook(path: Path, task: dict, register: str, pick: str) -> None:
    """A one-play playbook: the task, then the chosen image ID written to {{ out }}."""
    play = [{
        "name": "bench",
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {
            group: {"endpoint_url": "{{ url }}", "region": "us-east-1", "access_key": "testing",
                    "secret_key": "testing"}
            for group in ("group/bakery.ami.ami", "group/amazon.aws.aws")
        },
        "tasks": [
            dict(task, name="Find", register=register),
            {"name": "Pick", "ansible.builtin.set_fact": {"chosen": pick}},
            {"name": "Write", "ansible.builtin.copy": {"content": "{{ chosen }}", "dest": "{{ out }}", "mode": "0644"}},
        ],
    }]
    path.write_text(json.dumps(play, indent=1))


def write_playbooks(directory: Path) -> dict:
    books = {}
    for case, (_description, find_args, info_args) in CASES.items():
        books[(case, "ami_find")] = directory / f"{case}-ami_find.yml"
        playbook(books[(case, "ami_find")], {"bakery.ami.ami_find": find_args}, "found",
                 "{{ found.image.image_id }}")
        books[(case, "ec2_ami_info")] = directory / f"{case}-ec2_ami_info.yml"
        playbook(books[(case, "ec2_ami_info")], {"amazon.aws.ec2_ami_info": info_args}, "info",
                 "{{ (info.images | sort(attribute='creation_date', reverse=true))[0].image_id }}")
    for case, args in REGION_CASES.items():
        for label, regions in (("1 region", REGIONS[:1]), ("5 regions", REGIONS)):
            books[(f"regions-{case}", label)] = directory / f"regions-{case}-{len(regions)}.yml"
            playbook(books[(f"regions-{case}", label)], {"bakery.ami.ami_find": dict(args, regions=regions)},
                     "found", "{{ found.images_by_region | dict2items | map(attribute='value.image.image_id') | list }}")
    books[("baseline", "no-op")] = directory / "baseline.yml"
    playbook(books[("baseline", "no-op")], {"ansible.builtin.set_fact": {"found": {"image": {"image_id": "x"}}}},
             "ignored", "x")
    return books


def start_endpoint(catalog: Path) -> tuple:
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, str(HERE.parents[1] / "tools" / "local_aws" / "server.py"), "--host", "127.0.0.1", "--port", "0", "--amis", str(catalog)],
        stdout=subprocess.PIPE, text=True, cwd=str(REPO_ROOT))
    line = process.stdout.readline()
    if "http://" not in line:
        process.terminate()
        raise SystemExit(f"endpoint did not start: {line!r}")
    return process, line.strip().rsplit(" ", 1)[-1]


def control(url: str, path: str, method: str = "GET") -> dict:
    request = urllib.request.Request(url + path, method=method, data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read().decode())


def warm(url: str, first_id: str) -> dict:
    import boto3

    seconds = {}
    for region in REGIONS:
        client = boto3.client("ec2", endpoint_url=url, region_name=region, aws_access_key_id="testing",
                              aws_secret_access_key="testing")
        start = time.monotonic()
        client.describe_images(ImageIds=[first_id])  # loads the region's catalog
        seconds[region] = time.monotonic() - start
    return seconds


def run_once(book: Path, url: str, out: Path) -> tuple:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_root()), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing")
    timing = out.with_suffix(".time")
    control(url, "/_bakery/counts/reset", "POST")
    command = ["/usr/bin/time", "-f", "%e %M", "-o", str(timing), str(VENV_BIN / "ansible-playbook"),
               "-i", "localhost,", "-c", "local", str(book), "-e", json.dumps({"url": url, "out": str(out)})]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=str(REPO_ROOT))
    if result.returncode:
        raise SystemExit(f"{book.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    wall, peak_kb = timing.read_text().split()[-2:]
    counts = control(url, "/_bakery/counts").get("counts", {})
    return float(wall), int(peak_kb) / 1024.0, counts.get("DescribeImages", 0), out.read_text()


_COLLECTIONS: list = []


def collections_root() -> Path:
    if not _COLLECTIONS:
        base = Path(tempfile.mkdtemp(prefix="bench-ami-find-collections-"))
        link = base / "ansible_collections" / "bakery" / "ami"
        link.parent.mkdir(parents=True)
        link.symlink_to(REPO_ROOT)
        _COLLECTIONS.append(base)
    return _COLLECTIONS[0]


def matches(catalog: list) -> dict:
    """How many catalog images each case's query matches in one region (for the report)."""
    from ansible_collections.bakery.ami.plugins.module_utils._find import glob_match

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def base(image):
        return (image["architecture"] == "x86_64" and image["virtualization_type"] == "hvm"
                and image["root_device_type"] == "ebs" and image["state"] == "available"
                and not (image.get("deprecation_time") and image["deprecation_time"] <= now))

    return {
        "narrow": sum(1 for i in catalog if base(i) and i.get("owner_alias") == "amazon"
                      and glob_match(NARROW_NAME, i["name"])),
        "distro": sum(1 for i in catalog if base(i) and i["owner_id"] == "137112412989"
                      and glob_match(AL2023_NAME, i["name"])),
        "broad": sum(1 for i in catalog if base(i) and i.get("owner_alias") == "amazon"),
    }


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--count", type=int, default=50000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(collections_root()))
    import catalog as catalog_module  # noqa: E402  pylint: disable=import-outside-toplevel

    scratch = Path(tempfile.mkdtemp(prefix="bench-ami-find-"))
    images = catalog_module.generate(args.count, REGIONS)
    catalog_path = scratch / "amis.json"
    catalog_path.write_text(json.dumps(images))
    matched = matches(images)
    books = write_playbooks(scratch)
    process, url = start_endpoint(catalog_path)
    samples: dict = {key: [] for key in books}
    chosen: dict = {}
    try:
        started = time.monotonic()
        load = warm(url, images[0]["ami_id"])
        print(f"endpoint {url}: catalog of {len(images)} images loaded in {len(REGIONS)} regions "
              f"({', '.join(f'{r} {s:.1f}s' for r, s in load.items())})", flush=True)
        for round_number in range(args.repeat):
            keys = list(books)
            if round_number % 2:
                keys.reverse()  # interleave: neither variant always runs first
            for key in keys:
                out = scratch / f"{key[0]}-{key[1].replace(' ', '_')}-{round_number}.out"
                wall, peak, requests, answer = run_once(books[key], url, out)
                samples[key].append((wall, peak, requests))
                chosen.setdefault(key, answer)
                print(f"round {round_number + 1}: {key[0]:16} {key[1]:12} {wall:7.2f}s {peak:7.1f} MiB"
                      f" {requests:3d} DescribeImages", flush=True)
        elapsed = time.monotonic() - started
    finally:
        process.terminate()
        process.wait(timeout=30)
    for case in CASES:
        if chosen[(case, "ami_find")] != chosen[(case, "ec2_ami_info")]:
            raise SystemExit(f"{case}: ami_find chose {chosen[(case, 'ami_find')]},"
                             f" ec2_ami_info + sort chose {chosen[(case, 'ec2_ami_info')]}")
    report = render(args, samples, matched, chosen, elapsed)
    args.out.write_text(report)
    print(report)
    if not args.keep:
        for path in sorted(scratch.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        scratch.rmdir()
    return 0


def _median(values: list) -> float:
    return statistics.median(values)


def render(args, samples: dict, matched: dict, chosen: dict, elapsed: float) -> str:
    def stats(key):
        runs = samples[key]
        return _median([r[0] for r in runs]), _median([r[1] for r in runs]), _median([r[2] for r in runs])

    import moto  # pylint: disable=import-outside-toplevel

    base_wall, base_peak = stats(("baseline", "no-op"))[:2]
    lines = [
        "# ami_find benchmark",
        "",
        f"Generated by `bench/ami_find/run.py --count {args.count} --repeat {args.repeat}` on"
        f" {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
        f" ({os.cpu_count()} CPUs, Python {platform.python_version()}, ansible-core {ansible_version()},"
        f" moto {moto.__version__}; {elapsed:.0f} s in all).",
        "",
        f"Catalog: {args.count} synthetic images (bench/ami_find/catalog.py), each present in"
        f" {len(REGIONS)} regions, served by the local endpoint (tools/local_aws/server.py).",
        "Times are whole `ansible-playbook` runs (start-up included; a no-op playbook takes"
        f" {base_wall:.2f} s and {base_peak:.0f} MiB), medians of {args.repeat} interleaved runs."
        " Peak memory is the largest process of the run (GNU time %M).",
        "",
        "## ami_find against ec2_ami_info + Jinja sort",
        "",
        "| query | matching images | ec2_ami_info + sort | ami_find | time ratio | memory ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for case, (description, _find, _info) in CASES.items():
        i_wall, i_peak, i_req = stats((case, "ec2_ami_info"))
        f_wall, f_peak, f_req = stats((case, "ami_find"))
        lines.append(
            f"| {case}: {description} | {matched[case]} | {i_wall:.2f} s, {i_peak:.0f} MiB, {i_req:.0f} req |"
            f" {f_wall:.2f} s, {f_peak:.0f} MiB, {f_req:.0f} req | {i_wall / f_wall:.2f}x faster |"
            f" {i_peak / f_peak:.2f}x less |"
        )
    lines += [
        "",
        "Both variants picked the same newest image in every case"
        f" ({', '.join(case + ' ' + chosen[(case, 'ami_find')] for case in CASES)}).",
        "",
        "## ami_find: 5 regions against 1 region",
        "",
        "| query | 1 region | 5 regions | ratio |",
        "|---|---:|---:|---:|",
    ]
    for case in REGION_CASES:
        one_wall, one_peak = stats((f"regions-{case}", "1 region"))[:2]
        five_wall, five_peak = stats((f"regions-{case}", "5 regions"))[:2]
        lines.append(f"| {case} | {one_wall:.2f} s, {one_peak:.0f} MiB | {five_wall:.2f} s, {five_peak:.0f} MiB |"
                     f" {five_wall / one_wall:.2f}x |")
    lines += ["", "Targets: at least 3x faster on the broad query, not slower on the narrow one, 5 regions"
              " within 1.5x of 1 region.", ""]
    return "\n".join(lines)


def ansible_version() -> str:
    from ansible.release import __version__  # pylint: disable=import-outside-toplevel

    return __version__


if __name__ == "__main__":
    sys.exit(main())
