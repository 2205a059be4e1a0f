# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lifecycle at fleet scale under EC2's request-rate limits: prune, copy and share, promote.

    .venv/bin/python bench/lifecycle/run.py [--versions 500] [--regions 17] [--accounts 20]
        [--keep 20] [--naive-regions 2] [--output bench/lifecycle/RESULTS.md]

One local endpoint with throttling on (tools/local_aws/throttle.py: EC2's documented token
buckets, per region and action). An image family of --versions versions in each of --regions
regions (each version an image of this account with its own snapshot, one day apart) is seeded
with throttling off; then, with throttling on, each pass runs in ansible-playbook:

- prune: one bakery.ami.ami_prune task over every region (keep_latest: --keep, deregister, delete
  snapshots, in-use checks on; max_deletions: exactly what the retention removes);
- naive: the same retention written the way amazon.aws leaves it to a playbook, on a second family
  of the same shape: amazon.aws.ec2_ami_info per region, then amazon.aws.ec2_ami state=absent
  (delete_snapshot) per image beyond the newest --keep. At 17 regions this takes over an hour, so it
  runs on the first --naive-regions regions and its figures are also given scaled to all regions
  (calls and wall time grow with the number of images: the regions are done one after the other);
- copy: a new version copied from the first region to every other one with bakery.ami.ami_copy,
  its launch permission and snapshots shared with --accounts accounts;
- promote: bakery.ami.ami_channel puts the new version on the `stable` channel in every region.

For each pass: wall time (ansible-playbook start to exit), EC2 calls served, calls answered
RequestLimitExceeded, and peak memory (the largest process of the run). A pass that fails, or
leaves the account in another state than the one it promises, stops the benchmark.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))

from conftest import ansible_bin, ansible_env  # noqa: E402  pylint: disable=wrong-import-position
from tools.local_aws.control import LocalAws  # noqa: E402  pylint: disable=wrong-import-position

ALL_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1",
               "ap-southeast-2", "ap-northeast-1", "ca-central-1", "sa-east-1",
               "us-east-2", "us-west-1", "eu-west-2", "eu-west-3", "eu-north-1",
               "ap-south-1", "ap-northeast-2", "ap-southeast-1", "ap-northeast-3"]
FAMILY = "bench-fleet"
NAIVE_FAMILY = "bench-fleet-naive"

HEAD = """\
- name: Lifecycle benchmark, {name}
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/bakery.ami.ami: &aws
      endpoint_url: "{{{{ endpoint }}}}"
      region: {region}
      access_key: testing
      secret_key: testing
    group/amazon.aws.aws: *aws
  tasks:
"""

PRUNE = """\
    - name: Retire all but the newest versions in every region
      bakery.ami.ami_prune:
        family: "{{ family }}"
        regions: "{{ regions }}"
        keep_latest: "{{ keep }}"
        deregister: true
        delete_snapshots: true
        max_deletions: "{{ max_deletions }}"
"""

# What a playbook author writes with amazon.aws alone: list, sort, delete one image at a time.
NAIVE = """\
    - name: List the family's images, region by region
      amazon.aws.ec2_ami_info:
        region: "{{ item }}"
        owners: [self]
        filters:
          "tag:bakery:family": "{{ family }}"
      loop: "{{ regions }}"
      register: listed
    - name: Pick every image but the newest, region by region
      ansible.builtin.set_fact:
        doomed: >-
          {{ doomed | default([])
             + ((item.images | sort(attribute='creation_date', reverse=true))[keep | int:]
                | map('combine', {'region': item.item}) | list) }}
      loop: "{{ listed.results }}"
      loop_control:
        label: "{{ item.item }}"
    - name: Deregister them one at a time, with their snapshots
      amazon.aws.ec2_ami:
        region: "{{ item.region }}"
        image_id: "{{ item.image_id }}"
        state: absent
        delete_snapshot: true
      loop: "{{ doomed | default([]) }}"
      loop_control:
        label: "{{ item.region }} {{ item.image_id }}"
"""

COPY = """\
    - name: Copy the new version to every region and share it
      bakery.ami.ami_copy:
        source_image_id: "{{ source }}"
        source_region: "{{ regions[0] }}"
        regions: "{{ regions[1:] }}"
        launch_permissions:
          user_ids: "{{ accounts }}"
        share_snapshots: true
        wait: true
"""

PROMOTE = """\
    - name: Put the new version on the stable channel in every region
      bakery.ami.ami_channel:
        family: "{{ family }}"
        channel: stable
        version: "{{ version }}"
        regions: "{{ regions }}"
"""


def seed_family(aws: LocalAws, family: str, regions: list, versions: int) -> None:
    """``versions`` images of ``family`` per region, one day apart, each with its own snapshot."""
    now = datetime.datetime.now(datetime.timezone.utc)
    clients = {region: aws.client("ec2", region) for region in regions}  # boto3 clients are thread-safe

    def one(region: str, version: int) -> None:
        ec2 = clients[region]
        volume = ec2.create_volume(AvailabilityZone=f"{region}a", Size=1)["VolumeId"]
        snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
        image_id = ec2.register_image(
            Name=f"{family}-{version:04d}", RootDeviceName="/dev/xvda", VirtualizationType="hvm",
            Architecture="x86_64", BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}],
            TagSpecifications=[{"ResourceType": "image", "Tags": [
                {"Key": "bakery:family", "Value": family}, {"Key": "bakery:version", "Value": str(version)}]}],
        )["ImageId"]
        created = now - datetime.timedelta(days=versions - version + 1)
        aws.set_image(region, image_id, creation_date=created.strftime("%Y-%m-%dT%H:%M:%S.000Z"))

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(one, r, v) for r in regions for v in range(1, versions + 1)]:
            future.result()


def family_state(aws: LocalAws, family: str, regions: list) -> dict:
    """{region: (images of the family, snapshots of the account)}."""
    state = {}
    for region in regions:
        ec2 = aws.client("ec2", region)
        images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:bakery:family", "Values": [family]}])["Images"]
        snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        state[region] = (len(images), len(snapshots))
    return state


def run_pass(aws: LocalAws, name: str, tasks: str, extra: dict, workdir: Path, region: str) -> dict:
    """Run one pass in ansible-playbook with throttling on; wall time, calls, throttled, peak memory."""
    playbook = workdir / f"{name}.yml"
    playbook.write_text(HEAD.format(name=name, region=region) + tasks)
    usage = workdir / f"{name}.maxrss"
    # A wrapper process per pass: RUSAGE_CHILDREN of a fresh process is this pass's largest process alone.
    wrapper = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
               "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
               "sys.exit(code)")
    command = [sys.executable, "-c", wrapper, str(usage), ansible_bin("ansible-playbook"), "-i", "localhost,",
               "-c", "local", str(playbook), "-e", json.dumps(dict(extra, endpoint=aws.url))]
    aws.configure(throttle=True)
    aws.reset_counts()
    started = time.monotonic()
    result = subprocess.run(command, env=ansible_env(), cwd=str(REPO_ROOT), capture_output=True, text=True,
                            check=False, timeout=4 * 3600)
    seconds = time.monotonic() - started
    counts, throttled = aws.counts(), aws.throttled()
    aws.configure(throttle=False)
    if result.returncode != 0:
        raise SystemExit(f"pass {name} failed (rc {result.returncode}):\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}")
    return {
        "pass": name,
        "seconds": seconds,
        "calls": sum(counts.values()),
        "throttled": sum(throttled.values()),
        "top_calls": sorted(counts.items(), key=lambda kv: -kv[1])[:4],
        "peak_mib": int(usage.read_text()) / 1024,
    }


def endpoint_peak_mib(aws: LocalAws) -> float | None:
    process = getattr(aws, "_process", None) or getattr(aws, "process", None)
    try:
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (AttributeError, OSError):
        return None
    return None


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=500, help="versions of the family per region (default 500)")
    parser.add_argument("--regions", type=int, default=17, help=f"regions, 2-{len(ALL_REGIONS)} (default 17)")
    parser.add_argument("--accounts", type=int, default=20, help="accounts the new version is shared with (default 20)")
    parser.add_argument("--keep", type=int, default=20, help="versions the prune keeps per region (default 20)")
    parser.add_argument("--naive-regions", type=int, default=2,
                        help="regions the naive loop runs on (default 2; its figures are also scaled to --regions)")
    parser.add_argument("--copy-delay", type=float, default=10.0, help="seconds each copy stays pending (default 10)")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    args = parser.parse_args(argv)
    if not 2 <= args.regions <= len(ALL_REGIONS):
        parser.error(f"--regions: between 2 and {len(ALL_REGIONS)}, got {args.regions}")
    if not 1 <= args.naive_regions <= args.regions:
        parser.error(f"--naive-regions: between 1 and --regions ({args.regions}), got {args.naive_regions}")
    if not 0 < args.keep < args.versions:
        parser.error(f"--keep: between 1 and --versions - 1, got {args.keep}")
    regions = ALL_REGIONS[: args.regions]
    naive_regions = regions[: args.naive_regions]
    accounts = [f"{100000000000 + n * 1111:012d}" for n in range(1, args.accounts + 1)]
    started = datetime.datetime.now(datetime.timezone.utc)
    rows = []
    with LocalAws.start(port=0, copy_delay=args.copy_delay) as aws, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        t0 = time.monotonic()
        seed_family(aws, FAMILY, regions, args.versions)
        seed_family(aws, NAIVE_FAMILY, naive_regions, args.versions)
        seeded = time.monotonic() - t0
        print(f"seeded {args.versions} versions x {len(regions)} regions (+ {len(naive_regions)} naive) in {seeded:.0f} s", flush=True)

        prune_vars = {"family": FAMILY, "regions": regions, "keep": args.keep,
                      "max_deletions": (args.versions - args.keep) * len(regions)}
        rows.append(run_pass(aws, "prune", PRUNE, prune_vars, workdir, regions[0]))
        left = family_state(aws, FAMILY, regions)
        wrong = {region: count for region, (count, _images) in left.items() if count != args.keep}
        if wrong:
            raise SystemExit(f"prune left other than {args.keep} images: {wrong}")
        print(f"prune: {rows[-1]}", flush=True)

        rows.append(run_pass(aws, "naive", NAIVE, {"family": NAIVE_FAMILY, "regions": naive_regions, "keep": args.keep},
                             workdir, regions[0]))
        left = family_state(aws, NAIVE_FAMILY, naive_regions)
        wrong = {region: count for region, (count, _images) in left.items() if count != args.keep}
        if wrong:
            raise SystemExit(f"naive loop left other than {args.keep} images: {wrong}")
        print(f"naive: {rows[-1]}", flush=True)

        version = str(args.versions + 1)
        ec2 = aws.client("ec2", regions[0])
        volume = ec2.create_volume(AvailabilityZone=f"{regions[0]}a", Size=1)["VolumeId"]
        snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
        source = ec2.register_image(
            Name=f"{FAMILY}-{int(version):04d}", RootDeviceName="/dev/xvda", VirtualizationType="hvm",
            Architecture="x86_64", BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}],
            TagSpecifications=[{"ResourceType": "image", "Tags": [
                {"Key": "bakery:family", "Value": FAMILY}, {"Key": "bakery:version", "Value": version}]}],
        )["ImageId"]
        ec2.modify_image_attribute(ImageId=source, LaunchPermission={"Add": [{"UserId": a} for a in accounts]})
        rows.append(run_pass(aws, "copy", COPY, {"source": source, "regions": regions, "accounts": accounts}, workdir, regions[0]))
        for region in regions[1:]:
            client = aws.client("ec2", region)
            copies = client.describe_images(Owners=["self"], Filters=[
                {"Name": "tag:bakery:version", "Values": [version]}, {"Name": "tag:bakery:family", "Values": [FAMILY]}])["Images"]
            if len(copies) != 1 or copies[0]["State"] != "available":
                raise SystemExit(f"copy: {region} has {[(c['ImageId'], c['State']) for c in copies]}, not one available copy")
            shared = client.describe_image_attribute(ImageId=copies[0]["ImageId"], Attribute="launchPermission")
            if {p.get("UserId") for p in shared["LaunchPermissions"]} != set(accounts):
                raise SystemExit(f"copy: {copies[0]['ImageId']} in {region} is not shared with exactly the {len(accounts)} accounts")
        print(f"copy: {rows[-1]}", flush=True)

        rows.append(run_pass(aws, "promote", PROMOTE, {"family": FAMILY, "version": version, "regions": regions},
                             workdir, regions[0]))
        print(f"promote: {rows[-1]}", flush=True)
        endpoint_mib = endpoint_peak_mib(aws)
    write_results(args, regions, naive_regions, rows, seeded, endpoint_mib, started)
    print(f"wrote {args.output}")
    return 0


def write_results(args, regions, naive_regions, rows, seeded, endpoint_mib, started) -> None:
    by_pass = {row["pass"]: row for row in rows}
    scale = len(regions) / len(naive_regions)
    try:
        load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        load = "n/a"
    versions = subprocess.run(
        [sys.executable, "-c", "import ansible, boto3, moto; print(ansible.__version__, boto3.__version__, moto.__version__)"],
        capture_output=True, text=True, check=False,
    ).stdout.split() + ["?", "?", "?"]
    lines = [
        "# Lifecycle at fleet scale, under EC2's request-rate limits",
        "",
        "Produced by `bench/lifecycle/run.py` (`--versions {v} --regions {r} --accounts {a} --keep {k} --naive-regions {n} "
        "--copy-delay {c:g}`); rerun it to reproduce.".format(v=args.versions, r=len(regions), a=args.accounts, k=args.keep,
                                                              n=len(naive_regions), c=args.copy_delay),
        "",
        f"- Local endpoint with throttling on (tools/local_aws/throttle.py); {args.versions} versions of the family in each of "
        f"{len(regions)} regions ({args.versions * len(regions)} images, each with its own snapshot), seeded in {seeded:.0f} s "
        "with throttling off.",
        f"- prune: one `bakery.ami.ami_prune` task, keep_latest {args.keep}, deregister and delete snapshots, in-use checks on.",
        f"- naive: `amazon.aws.ec2_ami_info` + `amazon.aws.ec2_ami state=absent delete_snapshot=true` per image, on "
        f"{len(naive_regions)} region(s) ({', '.join(naive_regions)}) of a second family of the same shape; the row "
        f"'naive, scaled' multiplies its calls and time by {scale:g} (the loop does the regions one after the other).",
        f"- copy: `bakery.ami.ami_copy` from {regions[0]} to {len(regions) - 1} regions, shared with {args.accounts} accounts "
        f"(launch permission and snapshots), every copy pending {args.copy_delay:g} s.",
        "- promote: `bakery.ami.ami_channel`, channel `stable`, every region.",
        "- Wall time from ansible-playbook start to exit; calls are EC2/SSM requests served; throttled are requests answered "
        "RequestLimitExceeded (retried by the client); peak memory is the largest process of the run.",
        f"- Measured {started:%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} CPUs (load average at the end "
        f"{load}); ansible-core {versions[0]}, boto3 {versions[1]}, moto {versions[2]}; endpoint peak memory "
        f"{endpoint_mib:.0f} MiB." if endpoint_mib else "",
        "",
        "| pass | wall (s) | calls | throttled | peak memory (MiB) | most called |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        top = ", ".join(f"{name} {count}" for name, count in row["top_calls"])
        lines.append(f"| {row['pass']} | {row['seconds']:.1f} | {row['calls']} | {row['throttled']} | {row['peak_mib']:.0f} | {top} |")
        if row["pass"] == "naive" and scale != 1:
            lines.append(f"| naive, scaled to {len(regions)} regions | {row['seconds'] * scale:.0f} | {row['calls'] * scale:.0f} | "
                         f"{row['throttled'] * scale:.0f} | | (estimate) |")
    if "prune" in by_pass and "naive" in by_pass:
        naive_seconds = by_pass["naive"]["seconds"] * scale
        lines += ["", f"prune against the naive loop at {len(regions)} regions: {by_pass['prune']['seconds'] / naive_seconds:.3f} "
                  f"of its wall time, {by_pass['prune']['calls'] / (by_pass['naive']['calls'] * scale):.2f} of its calls."]
    args.output.write_text("\n".join(line for line in lines if line is not None) + "\n")


if __name__ == "__main__":
    sys.exit(main())
