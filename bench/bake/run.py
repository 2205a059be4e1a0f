# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: time to AMIs in every region, bakery.ami against Packer and plain amazon.aws.

    .venv/bin/python bench/bake/run.py [--rounds 3] [--regions 4,8] [--out bench/bake/RESULTS.md]

One local endpoint (tools/local_aws, seed catalog) with its timeline at an image create time of
--create-delay (20 s) and a copy time of --copy-delay (30 s). Each round runs every tool once
per region count, the tools alternating, on an endpoint reset before each run (empty account,
counts at zero, same timeline):

- bakery  playbooks/bake.yml -e @bench/bake/bakery.yml (no customization);
- packer  Debian's packer, amazon-ebs builder, communicator none, custom_endpoint_ec2;
- plain   bench/bake/plain.yml (amazon.aws / community.aws modules as their docs show them).

Each run must end with exactly one available image per region and no instance (other than
terminated), key pair or non-default security group left, or it is reported as failed.
Reported per tool and region count: median wall time, EC2 API calls (actions of the EC2 API
only; STS and the like are listed apart), and the time over the physical limit of the timeline
(create + one copy). Never a timed test: figures only.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tools.local_aws.control import LocalAws  # noqa: E402  pylint: disable=wrong-import-position

VENV_BIN = Path(sys.executable).parent
CATALOG = REPO_ROOT / "tools" / "local_aws" / "catalogs" / "local-default.json"
BUILD_REGION = "us-east-1"
ALL_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1",
               "ap-southeast-2", "ap-northeast-1", "ca-central-1", "sa-east-1"]
DEBIAN_OWNER = "136693071363"
TOOLS = ("bakery", "packer", "plain")
TARGETS = {"limit_ratio": 1.15, "plain_ratio": 2.7, "growth_8_over_4": 1.10}


def ec2_actions() -> set:
    """Operation names of the EC2 API (botocore's service model)."""
    import botocore.session  # pylint: disable=import-outside-toplevel
    model = botocore.session.get_session().get_service_model("ec2")
    return set(model.operation_names)


def collections_path(scratch: Path) -> str:
    link = scratch / "colls" / "ansible_collections" / "bakery" / "ami"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO_ROOT)
    return str(scratch / "colls")


def tool_env(scratch: Path) -> dict:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=collections_path(scratch),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
        PROFILE_TASKS_SORT_ORDER="descending",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=BUILD_REGION,
        PACKER_CACHE_DIR=str(scratch / "packer_cache"),
        CHECKPOINT_DISABLE="1",
        PATH=str(VENV_BIN) + os.pathsep + env.get("PATH", ""),
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "ANSIBLE_STDOUT_CALLBACK"):
        env.pop(name, None)
    return env


def packer_template(url: str, regions: list, name: str) -> dict:
    return {"builders": [{
        "type": "amazon-ebs",
        "access_key": "testing",
        "secret_key": "testing",
        "region": BUILD_REGION,
        "custom_endpoint_ec2": url,
        "skip_region_validation": True,
        "skip_metadata_api_check": True,
        "source_ami_filter": {
            "filters": {"name": "debian-12-amd64-*", "architecture": "x86_64",
                        "virtualization-type": "hvm", "root-device-type": "ebs"},
            "owners": [DEBIAN_OWNER],
            "most_recent": True,
        },
        "instance_type": "t3.micro",
        "communicator": "none",
        "ami_name": name,
        "ami_regions": [r for r in regions if r != BUILD_REGION],
        "tags": {"Name": name},
    }]}


def command(tool: str, url: str, regions: list, name: str, work: Path) -> list:
    if tool == "bakery":
        return [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                str(REPO_ROOT / "playbooks" / "bake.yml"), "-e", "@" + str(HERE / "bakery.yml"),
                "-e", json.dumps({"bake_endpoint_url": url, "bake_regions": regions, "bake_family": name,
                                  "bake_output_dir": str(work / "out")})]
    if tool == "plain":
        return [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(HERE / "plain.yml"),
                "-e", json.dumps({"plain_endpoint_url": url, "plain_region": BUILD_REGION,
                                  "plain_regions": [r for r in regions if r != BUILD_REGION], "plain_name": name})]
    template = work / "packer.json"
    template.write_text(json.dumps(packer_template(url, regions, name), indent=1))
    return ["packer", "build", "-color=false", str(template)]


def leftovers(aws, regions: list) -> dict:
    """Images per region and anything temporary still in the account."""
    found = {"images": {}, "left": []}
    for region in regions:
        ec2 = aws.client("ec2", region)
        images = ec2.describe_images(Owners=["self"])["Images"]
        found["images"][region] = sorted((i["ImageId"], i["State"]) for i in images)
        for res in ec2.describe_instances()["Reservations"]:
            for inst in res["Instances"]:
                if inst["State"]["Name"] != "terminated":
                    found["left"].append("%s instance %s (%s)" % (region, inst["InstanceId"], inst["State"]["Name"]))
        found["left"] += ["%s key pair %s" % (region, k["KeyName"]) for k in ec2.describe_key_pairs()["KeyPairs"]]
        found["left"] += ["%s security group %s" % (region, g["GroupName"])
                          for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"]
    return found


def slowest_tasks(output: str, count: int = 8) -> list:
    """The profile_tasks summary lines (task name, seconds), slowest first."""
    tasks = []
    for line in output.splitlines():
        match = re.match(r"^(.*?) -+ (\d+\.\d+)s$", line.strip())
        if match and not match.group(1).startswith("="):
            tasks.append((match.group(1).strip(), float(match.group(2))))
    return sorted(tasks, key=lambda t: -t[1])[:count]


def run_one(aws, tool: str, regions: list, args, scratch: Path, ec2_ops: set, seq: int) -> dict:
    aws.reset()
    aws.configure(create_delay=args.create_delay, copy_delay=args.copy_delay)
    aws.reset_counts()
    work = scratch / ("%s-%d-%02d" % (tool, len(regions), seq))
    work.mkdir(parents=True)
    name = "bench-%s-%d-%02d" % (tool, len(regions), seq)
    argv = command(tool, aws.url, regions, name, work)
    started = time.monotonic()
    proc = subprocess.run(argv, env=tool_env(scratch), cwd=str(work), capture_output=True, text=True,
                          timeout=args.timeout, check=False)
    wall = time.monotonic() - started
    (work / "output.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    counts = aws.counts()
    state = leftovers(aws, regions)
    ok_images = all(len(v) == 1 and v[0][1] == "available" for v in state["images"].values())
    result = {
        "tool": tool, "regions": len(regions), "seq": seq, "rc": proc.returncode, "wall": round(wall, 1),
        "ec2_calls": sum(n for action, n in counts.items() if action in ec2_ops),
        "other_calls": {a: n for a, n in counts.items() if a not in ec2_ops},
        "counts": counts,
        "ok": proc.returncode == 0 and ok_images and not state["left"],
        "left": state["left"],
        "images_per_region": {r: len(v) for r, v in state["images"].items()},
        "log": str(work / "output.log"),
    }
    if tool == "bakery":
        report = work / "out" / "bake-report.json"
        if report.exists():
            result["phases"] = json.loads(report.read_text()).get("phases_seconds", {})
    if tool in ("bakery", "plain"):
        result["slowest"] = slowest_tasks(proc.stdout)
    print("%-6s %d regions run %d: %s %.1f s, %d EC2 calls%s" % (
        tool, len(regions), seq, "ok" if result["ok"] else "FAILED", wall, result["ec2_calls"],
        "" if result["ok"] else " (rc %d, left %s, images %s; log %s)" % (
            proc.returncode, state["left"], result["images_per_region"], result["log"])), flush=True)
    return result


def summarize(results: list, args) -> dict:
    limit = args.create_delay + args.copy_delay
    summary = {}
    for tool in TOOLS:
        for count in args.regions:
            runs = [r for r in results if r["tool"] == tool and r["regions"] == count]
            good = [r for r in runs if r["ok"]]
            if not runs:
                continue
            walls = [r["wall"] for r in good] or [float("nan")]
            median = statistics.median(walls)
            summary[(tool, count)] = {
                "runs": len(runs), "ok": len(good), "median": median, "min": min(walls), "max": max(walls),
                "ec2_calls": statistics.median([r["ec2_calls"] for r in good]) if good else float("nan"),
                "over_limit": median - limit, "ratio": median / limit,
            }
    return summary


def targets(summary: dict, args) -> list:
    rows = []
    for count in args.regions:
        bake, packer, plain = (summary.get((t, count)) for t in TOOLS)
        if not bake:
            continue
        rows.append(("%d regions: bakery within %.2fx the limit" % (count, TARGETS["limit_ratio"]),
                     "%.2fx" % bake["ratio"], bake["ratio"] <= TARGETS["limit_ratio"]))
        if packer:
            rows.append(("%d regions: bakery faster than Packer" % count,
                         "%.1f s vs %.1f s" % (bake["median"], packer["median"]), bake["median"] < packer["median"]))
            rows.append(("%d regions: bakery no more EC2 calls than Packer" % count,
                         "%d vs %d" % (bake["ec2_calls"], packer["ec2_calls"]), bake["ec2_calls"] <= packer["ec2_calls"]))
        if plain:
            speedup = plain["median"] / bake["median"]
            rows.append(("%d regions: bakery >= %.1fx faster than the plain playbook" % (count, TARGETS["plain_ratio"]),
                         "%.2fx" % speedup, speedup >= TARGETS["plain_ratio"]))
    if (("bakery", 4) in summary) and (("bakery", 8) in summary):
        growth = summary[("bakery", 8)]["median"] / summary[("bakery", 4)]["median"]
        rows.append(("bakery at 8 regions no more than 10% slower than at 4", "%+.1f%%" % ((growth - 1) * 100),
                     growth <= TARGETS["growth_8_over_4"]))
    return rows


def write_results(results: list, args, path: Path, started: str, packer_version: str) -> None:
    limit = args.create_delay + args.copy_delay
    summary = summarize(results, args)
    lines = [
        "# Time to AMIs in every region: bakery.ami, Packer, plain amazon.aws",
        "",
        "Written by `bench/bake/run.py` (%s UTC, %s, %d CPUs, Python %s, %s, load average at start %s)." % (
            started, platform.machine(), os.cpu_count() or 0, platform.python_version(), packer_version,
            args.load_at_start),
        "Command: `%s`" % args.command_line,
        "",
        "Local endpoint timeline: image create %g s, copy %g s, instances start/stop at once. Physical "
        "limit = create + one copy = **%g s**. %d rounds, tools alternating within each round; the "
        "endpoint is reset (empty account, counts zero) before every run. Figures are medians of the "
        "successful runs; EC2 calls are actions of the EC2 API only (GetCallerIdentity and other "
        "services listed per run below)." % (args.create_delay, args.copy_delay, limit, args.rounds),
        "",
        "| tool | regions | runs ok | wall median (min-max) | over the limit | x limit | EC2 calls |",
        "|---|---|---|---|---|---|---|",
    ]
    for (tool, count), s in sorted(summary.items(), key=lambda kv: (kv[0][1], TOOLS.index(kv[0][0]))):
        lines.append("| %s | %d | %d/%d | %.1f s (%.1f-%.1f) | %+.1f s | %.2f | %d |" % (
            tool, count, s["ok"], s["runs"], s["median"], s["min"], s["max"], s["over_limit"], s["ratio"],
            s["ec2_calls"]))
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += ["| %s | %s | %s |" % (what, value, "yes" if met else "**no**") for what, value, met in targets(summary, args)]
    for count in args.regions:
        runs = [r for r in results if r["tool"] == "bakery" and r["regions"] == count and r.get("phases")]
        if runs:
            phases = sorted(runs[0]["phases"])
            lines += ["", "## bakery phases at %d regions (bake-report.json `phases_seconds`, median)" % count, "",
                      "| " + " | ".join(phases) + " |", "|" + "---|" * len(phases),
                      "| " + " | ".join("%.1f" % statistics.median([r["phases"].get(p, 0) for r in runs])
                                        for p in phases) + " |"]
    lines += ["", "## EC2 calls by action (first successful run of each)", ""]
    for count in args.regions:
        for tool in TOOLS:
            run = next((r for r in results if r["tool"] == tool and r["regions"] == count and r["ok"]), None)
            if run:
                lines.append("- %s, %d regions: %s" % (tool, count, ", ".join(
                    "%s %d" % kv for kv in sorted(run["counts"].items(), key=lambda kv: (-kv[1], kv[0])))))
    lines += ["", "## Slowest tasks (profile_tasks, first successful run)", ""]
    for count in args.regions:
        for tool in ("bakery", "plain"):
            run = next((r for r in results if r["tool"] == tool and r["regions"] == count and r["ok"]), None)
            if run and run.get("slowest"):
                lines.append("- %s, %d regions: %s" % (tool, count, "; ".join(
                    "%s %.1f s" % t for t in run["slowest"])))
    lines += ["", "## Every run", "", "| round | tool | regions | ok | wall | EC2 calls | other calls | left behind |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append("| %d | %s | %d | %s | %.1f s | %d | %s | %s |" % (
            r["seq"], r["tool"], r["regions"], "yes" if r["ok"] else "**no** (rc %d)" % r["rc"], r["wall"],
            r["ec2_calls"], ", ".join("%s %d" % kv for kv in sorted(r["other_calls"].items())) or "-",
            "; ".join(r["left"]) or "-"))
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--regions", default="4,8", help="region counts, comma separated (at most 8)")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--create-delay", type=float, default=20.0)
    parser.add_argument("--copy-delay", type=float, default=30.0)
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per run before it is killed")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--json", default="", help="also write every run's figures here")
    parser.add_argument("--keep", default="", help="keep every run's work directory (logs, bake report) here")
    args = parser.parse_args()
    args.regions = [int(n) for n in args.regions.split(",")]
    tools = [t for t in args.tools.split(",") if t]
    if any(t not in TOOLS for t in tools) or any(not 2 <= n <= len(ALL_REGIONS) for n in args.regions):
        parser.error("--tools from %s; --regions between 2 and %d" % (",".join(TOOLS), len(ALL_REGIONS)))
    if "packer" in tools and not shutil.which("packer"):
        parser.error("packer is not installed (Debian: apt-get install packer)")
    if "bakery" in tools and os.geteuid() != 0:
        parser.error("the bake's local builder needs root")
    args.command_line = " ".join(["python bench/bake/run.py"] + sys.argv[1:])
    args.load_at_start = "%.1f" % os.getloadavg()[0]
    packer_version = subprocess.run(["packer", "version"], capture_output=True, text=True, check=False
                                    ).stdout.splitlines()[0] if shutil.which("packer") else "no packer"
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    ec2_ops = ec2_actions()
    results = []
    with tempfile.TemporaryDirectory(prefix="bakery-bench-bake-") as tmp, \
            LocalAws.start(port=0, amis=str(CATALOG)) as aws:
        scratch = Path(args.keep or tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        for seq in range(1, args.rounds + 1):
            for count in args.regions:
                # alternate the order of the tools from round to round
                order = tools[(seq - 1) % len(tools):] + tools[:(seq - 1) % len(tools)]
                for tool in order:
                    results.append(run_one(aws, tool, ALL_REGIONS[:count], args, scratch, ec2_ops, seq))
            write_results(results, args, Path(args.out), started, packer_version)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))
    print("results: %s" % args.out)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
