# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: time to AMIs in every region, bakery.ami against Packer and plain amazon.aws.

    .venv/bin/python bench/bake/run.py [--scenario ec2,local] [--rounds 3] [--regions 4,8,17]

Two scenarios, each on its own local endpoint (tools/local_aws) with the timeline image create
--create-delay (20 s) and copy --copy-delay (30 s), instances starting and stopping at once:

- ec2 (the default): the conditions Packer runs under. The builder is an EC2 instance launched on
  the endpoint from the source and stopped for the image (bakery: bake_builder aws,
  bake_customize false; Packer: amazon-ebs with communicator none), and the source is found by
  owner and name pattern (owners [amazon], name al2023-ami-2023.*-x86_64) in a generated catalog
  of --catalog-size images from several owners and name lines (tools/local_aws/catalog.py).
- local: the figure of earlier sittings. bakery's local builder, the Debian 12 source of the
  endpoint's seed catalog (tools/local_aws/catalogs/local-default.json).

Each round runs every tool once per scenario and region count, the tools in an order that rotates
from round to round, on an endpoint reset before each run (empty account, counts at zero, the
regions' catalogs loaded):

- bakery  playbooks/bake.yml -e @bench/bake/bakery-ec2.yml (or bakery.yml for local);
- packer  Debian's packer (installed with apt-get when missing), amazon-ebs, communicator none;
- plain   bench/bake/plain.yml (amazon.aws / community.aws modules as their docs show them).

A run must end with exactly one available image per region and no instance (other than
terminated), key pair or non-default security group left, or it is reported as failed.

Timing. The endpoint counts calls but does not timestamp them, so a side thread reads its counts
every --poll seconds (0.2) during each run; a call is placed at the middle of the two reads that
bracket it. From that come, for every tool: the pre-CreateImage overhead (run start to the
CreateImage call), how late the image was noticed (first CopyImage minus CreateImage plus the
create time), over how long the copies were issued, and the post-copy tail (the last copy
available, i.e. the last CopyImage plus the copy time, to process exit). These four add up to the
time over the physical limit (create + one copy). bakery's own phases come from its report's
phases_seconds. Never a timed test: figures only.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# pylint: disable=wrong-import-position
from tools.local_aws.catalog import make_catalog  # noqa: E402
from tools.local_aws.control import LocalAws, LocalAwsError  # noqa: E402

VENV_BIN = Path(sys.executable).parent
BUILD_REGION = "us-east-1"
# The first 8 are the regions of earlier sittings, in their order (so 4 and 8 regions stay the
# same sets); then the rest of the 17 commercial regions enabled in every account (no opt-in).
ALL_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1",
               "ap-southeast-2", "ap-northeast-1", "ca-central-1", "sa-east-1",
               "us-east-2", "us-west-1", "eu-west-2", "eu-west-3", "eu-north-1",
               "ap-south-1", "ap-northeast-2", "ap-southeast-1", "ap-northeast-3"]
# "before": this collection at an earlier commit (--before REV), run like "bakery" in the same sitting
TOOLS = ("bakery", "before", "packer", "plain")
BAKES = ("bakery", "before")
TOOL_TITLES = {"bakery": "bakery.ami bake.yml", "before": "bakery.ami bake.yml at --before",
               "packer": "Packer amazon-ebs", "plain": "plain amazon.aws"}
# The checkout each bake tool runs; "before" is set by --before (a detached worktree of that commit).
BAKE_ROOTS = {"bakery": REPO_ROOT}
DEBIAN_OWNER = "136693071363"
SCENARIOS = {
    "ec2": {
        "title": "EC2 builder, realistic catalog",
        "bakery_vars": HERE / "bakery-ec2.yml",
        "owners": ["amazon"],
        "name": "al2023-ami-2023.*-x86_64",
        "catalog": None,  # generated: --catalog-size images in the build region
    },
    "local": {
        "title": "local builder, seed catalog",
        "bakery_vars": HERE / "bakery.yml",
        "owners": [DEBIAN_OWNER],
        "name": "debian-12-amd64-*",
        "catalog": REPO_ROOT / "tools" / "local_aws" / "catalogs" / "local-default.json",
    },
}
# issue 22's acceptance
TARGETS = {"limit_ratio": 1.10, "packer_share": 0.90, "overhead": 3.0, "tail": 3.0}
# The local-builder figures of the sitting before this harness measured the EC2 path
# (2026-11-26 23:19 UTC, bench/bake/RESULTS.md then): used when the previous RESULTS.md has none.
LOCAL_BASELINE = ({4: 57.5, 8: 57.1}, "RESULTS.md of the 2026-11-26 23:19 UTC sitting")


def ec2_actions() -> set:
    """Operation names of the EC2 API (botocore's service model)."""
    import botocore.session  # pylint: disable=import-outside-toplevel
    model = botocore.session.get_session().get_service_model("ec2")
    return set(model.operation_names)


def unknown_regions(regions: list) -> list:
    """Regions of the list that botocore does not know as commercial (aws partition) EC2 regions."""
    import botocore.session  # pylint: disable=import-outside-toplevel
    known = set(botocore.session.get_session().get_available_regions("ec2", partition_name="aws"))
    return [r for r in regions if r not in known]


def collections_path(scratch: Path, tool: str = "bakery") -> str:
    """A collections directory in which bakery.ami is the checkout of the tool (the current one by default)."""
    colls = scratch / ("colls" if tool == "bakery" else "colls-" + tool)
    link = colls / "ansible_collections" / "bakery" / "ami"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(BAKE_ROOTS.get(tool, REPO_ROOT))
    return str(colls)


def tool_env(scratch: Path, tool: str = "bakery") -> dict:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=collections_path(scratch, tool),
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
    # Python as on a user's machine: it keeps the bytecode of what it compiles (a container image may say otherwise)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "ANSIBLE_STDOUT_CALLBACK", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


def source_filters(scenario: dict) -> dict:
    """The source query of Packer and the plain playbook: the owner and name of the scenario with
    the filters bakery's ami_find adds by default (64-bit x86, HVM, EBS)."""
    return {"name": scenario["name"], "architecture": "x86_64",
            "virtualization-type": "hvm", "root-device-type": "ebs"}


def packer_template(url: str, regions: list, name: str, scenario: dict) -> dict:
    return {"builders": [{
        "type": "amazon-ebs",
        "access_key": "testing",
        "secret_key": "testing",
        "region": BUILD_REGION,
        "custom_endpoint_ec2": url,
        "skip_region_validation": True,
        "skip_metadata_api_check": True,
        "source_ami_filter": {
            "filters": source_filters(scenario),
            "owners": scenario["owners"],
            "most_recent": True,
        },
        "instance_type": "t3.micro",
        "communicator": "none",
        "ami_name": name,
        "ami_regions": [r for r in regions if r != BUILD_REGION],
        "tags": {"Name": name},
    }]}


def command(tool: str, scenario: dict, url: str, regions: list, name: str, work: Path) -> list:
    if tool in BAKES:
        return [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                str(BAKE_ROOTS[tool] / "playbooks" / "bake.yml"), "-e", "@" + str(scenario["bakery_vars"]),
                "-e", json.dumps({"bake_endpoint_url": url, "bake_regions": regions, "bake_family": name,
                                  "bake_output_dir": str(work / "out")})]
    if tool == "plain":
        return [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(HERE / "plain.yml"),
                "-e", json.dumps({"plain_endpoint_url": url, "plain_region": BUILD_REGION,
                                  "plain_regions": [r for r in regions if r != BUILD_REGION], "plain_name": name,
                                  "plain_source_owners": scenario["owners"],
                                  "plain_source_name": scenario["name"]})]
    template = work / "packer.json"
    template.write_text(json.dumps(packer_template(url, regions, name, scenario), indent=1))
    return ["packer", "build", "-color=false", str(template)]


def ensure_packer() -> str:
    """Install Debian's packer package with apt-get when no packer is on PATH; return its version."""
    if not shutil.which("packer"):
        if os.geteuid() != 0:
            raise SystemExit("packer is not installed and installing it needs root (Debian: apt-get install packer)")
        print("== installing Debian's packer package with apt-get", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "packer"]
        if subprocess.run(install, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    out = subprocess.run(["packer", "version"], capture_output=True, text=True, check=False).stdout
    return (out.splitlines() or ["packer (version unknown)"])[0]


class CallClock:
    """Reads the endpoint's counts every `interval` seconds in a side thread while a tool runs.

    samples: (read started, read answered, counts), monotonic seconds; the first is the run start
    with the counts at zero (they were reset just before), the last is read after the tool exited.
    """

    def __init__(self, aws, interval: float) -> None:
        self.aws = aws
        self.interval = interval
        self.samples: list = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self, t0: float) -> None:
        self.samples.append((t0, t0, {}))
        self._thread.start()

    def _read(self) -> None:
        before = time.monotonic()
        try:
            counts = self.aws.counts()
        except LocalAwsError:
            self.errors += 1
            return
        self.samples.append((before, time.monotonic(), counts))

    def _poll(self) -> None:
        tick = self.samples[0][0]
        while True:
            tick += self.interval
            if self._stop.wait(max(0.0, tick - time.monotonic())):
                return
            self._read()
            tick = max(tick, time.monotonic() - self.interval)  # after a slow read, no burst

    def stop(self) -> dict:
        """Stop polling, take the final reading and return the final counts."""
        self._stop.set()
        self._thread.join()
        self._read()
        return self.samples[-1][2]

    def when(self, action: str, count: int = 1):
        """(estimate, half-width) in seconds from the start of the moment `action` reached `count`
        calls, or None when it never did."""
        return self._bracket(lambda counts: counts.get(action, 0) >= count)

    def first_call(self):
        """The same for the first call of any action."""
        return self._bracket(lambda counts: any(counts.values()))

    def _bracket(self, reached):
        # the moment lies after the previous read started and before this read answered
        for index, (_before, after, counts) in enumerate(self.samples):
            if reached(counts):
                low = self.samples[index - 1][0] if index else self.samples[0][0]
                return ((low + after) / 2 - self.samples[0][0], (after - low) / 2)
        return None


def check_clock(aws, interval: float, calls: int = 30) -> dict:
    """Place calls made at known moments with CallClock: the largest error against the moment the
    harness itself made each call (the middle of its request and answer)."""
    import random  # pylint: disable=import-outside-toplevel
    ec2 = aws.client("ec2", BUILD_REGION)
    ec2.describe_key_pairs()
    aws.reset_counts()
    pace = random.Random(1)
    clock = CallClock(aws, interval)
    start = time.monotonic()
    clock.start(start)
    made = []
    for _call in range(calls):
        time.sleep(pace.uniform(0.25, 0.7))
        sent = time.monotonic()
        ec2.describe_key_pairs()
        made.append((sent + time.monotonic()) / 2 - start)
    clock.stop()
    errors = [clock.when("DescribeKeyPairs", n + 1)[0] - moment for n, moment in enumerate(made)]
    return {"clock_calls": calls, "clock_max_error": round(max(abs(e) for e in errors), 3),
            "clock_mean_error": round(statistics.mean(errors), 3)}


def timeline(clock: CallClock, counts: dict, wall: float, args) -> dict:
    """Moments of the run (seconds from its start) and the parts of the time over the limit."""
    events = {
        "first call": clock.first_call(),
        "RunInstances": clock.when("RunInstances"),
        "CreateImage": clock.when("CreateImage"),
        "first CopyImage": clock.when("CopyImage"),
        "last CopyImage": clock.when("CopyImage", counts.get("CopyImage", 0)) if counts.get("CopyImage") else None,
    }
    found = {k: v[0] for k, v in events.items() if v is not None}
    widths = [v[1] for v in events.values() if v is not None]
    out = {"events": {k: round(v, 2) for k, v in found.items()}, "resolution": round(max(widths or [0.0]), 2)}
    out["events"]["exit"] = round(wall, 2)
    if "CreateImage" in found:
        out["pre_create"] = round(found["CreateImage"], 2)
    if "CreateImage" in found and "first CopyImage" in found:
        out["create_late"] = round(found["first CopyImage"] - found["CreateImage"] - args.create_delay, 2)
    if "first CopyImage" in found and "last CopyImage" in found:
        out["copy_spread"] = round(found["last CopyImage"] - found["first CopyImage"], 2)
        out["events"]["last copy available"] = round(found["last CopyImage"] + args.copy_delay, 2)
        out["tail"] = round(wall - found["last CopyImage"] - args.copy_delay, 2)
    return out


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


def prepare(aws, regions: list, args) -> None:
    """Reset the endpoint, set the timeline, load every region's catalog (moto loads a region on
    its first request: an endpoint cost EC2 does not have), then zero the counts."""
    aws.reset()
    aws.configure(create_delay=args.create_delay, copy_delay=args.copy_delay, instance_stop_delay=args.stop_delay)
    for region in regions:
        aws.client("ec2", region).describe_key_pairs()
    aws.reset_counts()


def run_one(aws, scenario_name: str, tool: str, regions: list, args, scratch: Path, ec2_ops: set, seq: int) -> dict:
    scenario = SCENARIOS[scenario_name]
    prepare(aws, regions, args)
    work = scratch / ("%s-%s-%d-%02d" % (scenario_name, tool, len(regions), seq))
    work.mkdir(parents=True)
    name = "bench-%s-%d-%02d" % (tool, len(regions), seq)
    argv = command(tool, scenario, aws.url, regions, name, work)
    env = tool_env(scratch, tool)
    clock = CallClock(aws, args.poll)
    started = time.monotonic()
    clock.start(started)
    try:
        proc = subprocess.run(argv, env=env, cwd=str(work), capture_output=True, text=True,
                              timeout=args.timeout, check=False)
        returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as error:
        returncode = -1
        stdout = error.stdout.decode(errors="replace") if isinstance(error.stdout, bytes) else (error.stdout or "")
        stderr = "killed after %d s" % args.timeout
    wall = time.monotonic() - started
    counts = clock.stop()
    (work / "output.log").write_text(stdout + "\n--- stderr ---\n" + stderr)
    state = leftovers(aws, regions)
    ok_images = all(len(v) == 1 and v[0][1] == "available" for v in state["images"].values())
    result = {
        "scenario": scenario_name, "tool": tool, "regions": len(regions), "seq": seq, "rc": returncode,
        "wall": round(wall, 2),
        "ec2_calls": sum(n for action, n in counts.items() if action in ec2_ops),
        "other_calls": {a: n for a, n in counts.items() if a not in ec2_ops},
        "counts": counts,
        "ok": returncode == 0 and ok_images and not state["left"],
        "left": state["left"],
        "images_per_region": {r: len(v) for r, v in state["images"].items()},
        "log": str(work / "output.log"),
        "poll_errors": clock.errors,
        "samples": len(clock.samples),
        "load": round(os.getloadavg()[0], 1),
    }
    result.update(timeline(clock, counts, wall, args))
    if tool in BAKES:
        report = work / "out" / "bake-report.json"
        if report.exists():
            result["phases"] = json.loads(report.read_text()).get("phases_seconds", {})
    if tool in BAKES + ("plain",):
        result["slowest"] = slowest_tasks(stdout)
    print("%-5s %-6s %2d regions run %d: %s %.1f s, %d EC2 calls, pre-CreateImage %s, image late %s, copies over %s, "
          "tail %s (load %.1f)%s%s" % (
              scenario_name, tool, len(regions), seq, "ok" if result["ok"] else "FAILED", wall, result["ec2_calls"],
              seconds(result.get("pre_create")), seconds(result.get("create_late")), seconds(result.get("copy_spread")),
              seconds(result.get("tail")), result["load"],
              ("; phases " + ", ".join("%s %.1f" % kv for kv in result["phases"].items())) if result.get("phases") else "",
              "" if result["ok"] else " (rc %d, left %s, images %s; log %s)" % (
                  returncode, state["left"], result["images_per_region"], result["log"])), flush=True)
    return result


def seconds(value) -> str:
    return "-" if value is None else "%.1f s" % value


def median_of(runs: list, key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarize(results: list, args) -> dict:
    limit = args.stop_delay + args.create_delay + args.copy_delay  # the builder stops before its image
    summary = {}
    for scenario in args.scenarios:
        for count in args.regions:
            for tool in TOOLS:
                runs = [r for r in results if (r["scenario"], r["tool"], r["regions"]) == (scenario, tool, count)]
                if not runs:
                    continue
                good = [r for r in runs if r["ok"]]
                walls = [r["wall"] for r in good]
                median = statistics.median(walls) if walls else None
                summary[(scenario, tool, count)] = {
                    "runs": len(runs), "ok": len(good), "median": median,
                    "min": min(walls) if walls else None, "max": max(walls) if walls else None,
                    "ratio": median / limit if walls else None,
                    "ec2_calls": median_of(good, "ec2_calls"),
                    "pre_create": median_of(good, "pre_create"), "create_late": median_of(good, "create_late"),
                    "copy_spread": median_of(good, "copy_spread"), "tail": median_of(good, "tail"),
                }
    return summary


def previous_local(path: Path) -> tuple:
    """The local-builder bakery medians of an earlier RESULTS.md ({regions: seconds}, source).

    A file without a scenario heading (written before the ec2 scenario existed) measured the local
    builder only. A provisional file, or one without the local scenario, carries forward the
    figures it was compared against (its "Local-builder baseline" line).
    """
    if not path.is_file():
        return LOCAL_BASELINE
    text = path.read_text()
    figures = {}
    if "**Provisional**" not in text:
        scenario = "local" if "\n## Scenario " not in text else None
        for line in text.splitlines():
            if line.startswith("## "):
                heading = re.match(r"## Scenario ([a-z0-9]+)", line)
                scenario = heading.group(1) if heading else None
            row = re.match(r"\| bakery \| ([0-9]+) \| [0-9]+/[0-9]+ \| ([0-9.]+) s", line)
            if row and scenario == "local":
                figures.setdefault(int(row.group(1)), float(row.group(2)))
    if figures:
        written = re.search(r"^Written by `bench/bake/run.py` \(([0-9-]+ [0-9:]+) UTC", text, re.MULTILINE)
        return figures, "RESULTS.md of the %s UTC sitting" % (written.group(1) if written else "previous")
    carried = re.search(r"^Local-builder baseline: (.*?) \((.*)\)\.$", text, re.MULTILINE)
    if carried:
        figures = {int(n): float(s) for n, s in re.findall(r"([0-9]+) regions ([0-9.]+) s", carried.group(1))}
        if figures:
            return figures, carried.group(2)
    return LOCAL_BASELINE


def targets(summary: dict, args) -> list:
    rows = []
    for count in args.regions:
        bake, packer = summary.get(("ec2", "bakery", count)), summary.get(("ec2", "packer", count))
        if not bake or bake["median"] is None:
            continue
        rows.append(("ec2, %d regions: bakery <= %.2fx the limit" % (count, TARGETS["limit_ratio"]),
                     "%.2fx (%.1f s)" % (bake["ratio"], bake["median"]), bake["ratio"] <= TARGETS["limit_ratio"]))
        if packer and packer["median"] is not None:
            change = (bake["median"] / packer["median"] - 1) * 100
            rows.append(("ec2, %d regions: bakery at least 10%% faster than Packer" % count,
                         "%.1f s vs %.1f s (%+.1f%%)" % (bake["median"], packer["median"], change),
                         bake["median"] <= TARGETS["packer_share"] * packer["median"]))
            rows.append(("ec2, %d regions: bakery no more EC2 calls than Packer" % count,
                         "%d vs %d" % (bake["ec2_calls"], packer["ec2_calls"]), bake["ec2_calls"] <= packer["ec2_calls"]))
        for key, what in (("pre_create", "pre-CreateImage overhead"), ("tail", "post-copy tail")):
            if bake[key] is not None:
                rows.append(("ec2, %d regions: bakery %s < %g s" % (count, what, TARGETS[key if key == "tail" else "overhead"]),
                             "%.1f s" % bake[key], bake[key] < TARGETS[key if key == "tail" else "overhead"]))
    for scenario in args.scenarios:
        for count in args.regions:
            bake, before = summary.get((scenario, "bakery", count)), summary.get((scenario, "before", count))
            if bake and before and bake["median"] is not None and before["median"] is not None:
                # a median within 2 % of the earlier one counts as not slower (run-to-run spread)
                rows.append(("%s, %d regions: bakery not slower than at %s (same sitting)" % (scenario, count, args.before),
                             "%.1f s vs %.1f s (%+.1f%%)" % (bake["median"], before["median"],
                                                             (bake["median"] / before["median"] - 1) * 100),
                             bake["median"] <= before["median"] * 1.02))
    figures, source = args.previous_local
    for count in args.regions:
        bake = summary.get(("local", "bakery", count))
        if not bake or bake["median"] is None:
            continue
        if count in figures:
            rows.append(("local, %d regions: bakery not slower than before" % count,
                         "%.1f s vs %.1f s (%s)" % (bake["median"], figures[count], source),
                         bake["median"] <= figures[count]))
        else:
            rows.append(("local, %d regions: bakery not slower than before" % count,
                         "%.1f s (no earlier figure)" % bake["median"], None))
    return rows


def fmt(value, pattern: str = "%.1f s") -> str:
    return "-" if value is None else pattern % value


def write_results(results: list, args, path: Path, info: dict) -> None:
    limit = args.stop_delay + args.create_delay + args.copy_delay  # the builder stops before its image
    summary = summarize(results, args)
    done_rounds = max([r["seq"] for r in results] or [0])
    provisional = args.rounds < 3 or done_rounds < args.rounds
    lines = ["# Time to AMIs in every region: bakery.ami, Packer, plain amazon.aws", ""]
    if provisional:
        lines += ["**Provisional**: %d of %d round(s) (%s), on a machine shared with other work. Issue 22's "
                  "acceptance needs medians of 3 rounds in one sitting on a quiet machine." % (
                      done_rounds, args.rounds, "regions " + ",".join(map(str, args.regions))), ""]
    resolutions = [r["resolution"] for r in results if r.get("resolution") is not None]
    lines += [
        "Written by `bench/bake/run.py` (%s UTC, %s, %d CPUs, Python %s, %s, load average %s at the start, %s at "
        "the end)." % (info["started"], platform.machine(), os.cpu_count() or 0, platform.python_version(),
                       info["packer"], info["load_start"], "%.1f" % os.getloadavg()[0]),
        "Command: `%s`" % args.command_line,
        "",
    ]
    if args.before:
        lines += ["`before` is this collection at `%s` (%s), run from a detached worktree exactly like `bakery` "
                  "(the same variables file of the current checkout), alternating with the other tools." % (
                      args.before, info.get("before_commit", "?")), ""]
    lines += [
        "Local endpoint timeline: image create %g s, copy %g s, instances start at once and stop or terminate "
        "in %g s. Physical "
        "limit = stop + create + one copy = **%g s**. Tools alternate within each round (the order rotates from "
        "round to round); before every run the endpoint is reset (empty account), the regions' catalogs "
        "are loaded (moto loads a region on its first request, a cost EC2 does not have) and the counts "
        "are zeroed. The tools run with Python's default of keeping the bytecode it compiles "
        "(PYTHONDONTWRITEBYTECODE unset, as on a user's machine; a tool's first run writes it). "
        "Figures are medians of the successful runs; EC2 calls are actions of the EC2 API "
        "only (GetCallerIdentity and other services are listed per run below)." % (
            args.create_delay, args.copy_delay, args.stop_delay, limit),
        "",
        "How the phases are timed: the endpoint counts calls without timestamps, so the harness reads "
        "its counts every %g s in a side thread while a tool runs and places each call at the middle of "
        "the two reads that bracket it (widest bracket in this file: +/-%.2f s; before the runs, %s calls the "
        "harness made at known moments were placed within %s s of them). **pre-CreateImage** = "
        "run start to the CreateImage call; **image late** = first CopyImage - (CreateImage + %g s): "
        "how late the tool noticed the image; **copies over** = first to last CopyImage; **tail** = "
        "last copy available (last CopyImage + %g s) to process exit. wall - limit = pre-CreateImage + "
        "image late + copies over + tail." % (
            args.poll, max(resolutions or [0.0]), info.get("clock_calls", "?"),
            info.get("clock_max_error", "?"), args.create_delay, args.copy_delay),
        "",
    ]
    if args.previous_local[0]:
        lines += ["Local-builder baseline: %s (%s)." % (
            ", ".join("%d regions %.1f s" % kv for kv in sorted(args.previous_local[0].items())),
            args.previous_local[1]), ""]
    for scenario in args.scenarios:
        spec = SCENARIOS[scenario]
        lines += ["## Scenario %s: %s" % (scenario, spec["title"]), ""]
        if scenario == "ec2":
            lines += [
                "Source: owners %s, name `%s`, x86_64/hvm/ebs, newest, in a catalog from "
                "`tools/local_aws/catalog.py` (%s images in %s, %s owners; %s match the query; the other "
                "regions hold only what the run makes). bakery: `playbooks/bake.yml -e @bench/bake/bakery-ec2.yml` "
                "(`bake_builder: aws`, `bake_customize: false`, `bake_source` owners and name); Packer: "
                "amazon-ebs, `source_ami_filter` with the same owners, name and filters, `most_recent`, "
                "`communicator: none`; plain: `bench/bake/plain.yml`, `ec2_ami_info` with the same "
                "owners and filters." % (
                    spec["owners"], spec["name"], info.get("catalog_size", "?"), BUILD_REGION,
                    info.get("catalog_owners", "?"), info.get("catalog_matches", "?")),
                ""]
        else:
            lines += [
                "Source: the Debian 12 image of the seed catalog (`%s`, name `%s`). bakery: "
                "`playbooks/bake.yml -e @bench/bake/bakery.yml` (`bake_builder: local`, `bake_customize: "
                "false`); Packer and plain as in the ec2 scenario, with this owner and name." % (
                    spec["owners"][0], spec["name"]),
                ""]
        lines += ["| tool | regions | runs ok | wall median (min-max) | x limit | EC2 calls | pre-CreateImage "
                  "| image late | copies over | tail |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for count in args.regions:
            for tool in TOOLS:
                s = summary.get((scenario, tool, count))
                if not s:
                    continue
                lines.append("| %s | %d | %d/%d | %s | %s | %s | %s | %s | %s | %s |" % (
                    tool, count, s["ok"], s["runs"],
                    "-" if s["median"] is None else "%.1f s (%.1f-%.1f)" % (s["median"], s["min"], s["max"]),
                    fmt(s["ratio"], "%.2f"), fmt(s["ec2_calls"], "%d"), fmt(s["pre_create"]),
                    fmt(s["create_late"]), fmt(s["copy_spread"]), fmt(s["tail"])))
        lines += ["", "Moments of each run (seconds from its start, median): first AWS call, RunInstances, "
                  "CreateImage, first and last CopyImage, last copy available, exit.", "",
                  "| tool | regions | first call | RunInstances | CreateImage | first CopyImage | last CopyImage "
                  "| last copy available | exit |", "|---|---|---|---|---|---|---|---|---|"]
        events = ("first call", "RunInstances", "CreateImage", "first CopyImage", "last CopyImage",
                  "last copy available", "exit")
        for count in args.regions:
            for tool in TOOLS:
                good = [r for r in results if (r["scenario"], r["tool"], r["regions"]) == (scenario, tool, count)
                        and r["ok"]]
                if good:
                    lines.append("| %s | %d | %s |" % (tool, count, " | ".join(
                        fmt(statistics.median([r["events"][e] for r in good if e in r["events"]])
                            if any(e in r["events"] for r in good) else None, "%.1f") for e in events)))
        for count in args.regions:
            for tool in BAKES:
                runs = [r for r in results if (r["scenario"], r["tool"], r["regions"]) == (scenario, tool, count)
                        and r["ok"] and r.get("phases")]
                if runs:
                    rows = [dict(r["phases"], **{"outside the report": r["wall"] - r["phases"].get("total", 0.0)})
                            for r in runs]
                    phases = list(rows[0])
                    lines += ["", "%s's phases at %d regions (bake-report.json `phases_seconds`, median; outside the "
                              "report = wall - total: ansible-playbook's start, the report's last steps, its exit):"
                              % (tool, count),
                              "", "| " + " | ".join(phases) + " |", "|" + "---|" * len(phases),
                              "| " + " | ".join("%.1f" % statistics.median([r.get(p, 0) for r in rows])
                                                for p in phases) + " |"]
        lines.append("")
    lines += ["## Targets (issue 22; with --before, issue 18's before and after)", "", "| target | measured | met |", "|---|---|---|"]
    lines += ["| %s | %s | %s |" % (what, value, {True: "yes", False: "**no**", None: "-"}[met])
              for what, value, met in targets(summary, args)]
    lines += ["", "## EC2 calls by action (first successful run of each)", ""]
    for scenario in args.scenarios:
        for count in args.regions:
            for tool in TOOLS:
                run = next((r for r in results if (r["scenario"], r["tool"], r["regions"]) == (scenario, tool, count)
                            and r["ok"]), None)
                if run:
                    lines.append("- %s, %s, %d regions: %s" % (scenario, tool, count, ", ".join(
                        "%s %d" % kv for kv in sorted(run["counts"].items(), key=lambda kv: (-kv[1], kv[0])))))
    lines += ["", "## Slowest tasks (profile_tasks, first successful run)", ""]
    for scenario in args.scenarios:
        for count in args.regions:
            for tool in BAKES + ("plain",):
                run = next((r for r in results if (r["scenario"], r["tool"], r["regions"]) == (scenario, tool, count)
                            and r["ok"]), None)
                if run and run.get("slowest"):
                    lines.append("- %s, %s, %d regions: %s" % (scenario, tool, count, "; ".join(
                        "%s %.1f s" % tuple(t) for t in run["slowest"])))
    lines += ["", "## Every run", "",
              "| round | scenario | tool | regions | ok | wall | EC2 calls | pre-CreateImage | tail | load after "
              "| other calls | left behind |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append("| %d | %s | %s | %d | %s | %.1f s | %d | %s | %s | %s | %s | %s |" % (
            r["seq"], r["scenario"], r["tool"], r["regions"], "yes" if r["ok"] else "**no** (rc %d)" % r["rc"],
            r["wall"], r["ec2_calls"], fmt(r.get("pre_create")), fmt(r.get("tail")), fmt(r.get("load"), "%.1f"),
            ", ".join("%s %d" % kv for kv in sorted(r["other_calls"].items())) or "-",
            "; ".join(r["left"]) or "-"))
    path.write_text("\n".join(lines) + "\n")


def checkout_at(rev: str, where: Path) -> Path:
    """A detached worktree of this repository at rev (made again when one is left from a kept run)."""
    git = ["git", "-C", str(REPO_ROOT)]
    if where.exists():
        subprocess.run(git + ["worktree", "remove", "--force", str(where)], check=False)
    made = subprocess.run(git + ["worktree", "add", "--detach", str(where), rev], capture_output=True, text=True,
                          check=False)
    if made.returncode != 0:
        raise SystemExit("--before %s: git worktree add failed: %s" % (rev, made.stderr.strip()))
    return where


def remove_checkout(where: Path) -> None:
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(where)],
                   capture_output=True, check=False)


def catalog_stats(aws, scenario: dict) -> dict:
    """Size, owners and matching images of the catalog in the build region (read before the runs)."""
    ec2 = aws.client("ec2", BUILD_REGION)
    filters = [{"Name": k, "Values": [v]} for k, v in source_filters(scenario).items()]
    matches = ec2.describe_images(Owners=scenario["owners"], Filters=filters)["Images"]
    return {"catalog_matches": len(matches)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--scenario", default="ec2", help="ec2, local or both (comma separated); default ec2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--regions", default="4,8,17", help="region counts, comma separated (2 to %d)" % len(ALL_REGIONS))
    parser.add_argument("--tools", default="bakery,packer,plain",
                        help="from %s; \"before\" needs --before" % ",".join(TOOLS))
    parser.add_argument("--before", default="",
                        help="a commit of this repository to run as the tool \"before\" (added to --tools), in a "
                             "detached worktree, beside the current checkout in the same sitting")
    parser.add_argument("--create-delay", type=float, default=20.0)
    parser.add_argument("--copy-delay", type=float, default=30.0)
    parser.add_argument("--stop-delay", type=float, default=0.0,
                        help="seconds an instance stays stopping or shutting-down (0: at once, as in earlier sittings)")
    parser.add_argument("--catalog-size", type=int, default=5400,
                        help="images in the ec2 scenario's generated catalog (5400: about 380 match the query)")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between two reads of the endpoint's counts")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per run before it is killed")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--previous", default=str(HERE / "RESULTS.md"),
                        help="earlier results holding the local-builder figure to compare with")
    parser.add_argument("--json", default="", help="also write every run's figures here")
    parser.add_argument("--keep", default="", help="keep every run's work directory (logs, bake report) here")
    args = parser.parse_args()
    # a terminated harness still stops its endpoints and removes its worktree and temporary directory
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        args.regions = [int(n) for n in args.regions.split(",")]
    except ValueError:
        parser.error("--regions: comma-separated numbers, got %r" % args.regions)
    args.scenarios = [s for s in args.scenario.split(",") if s]
    tools = [t for t in args.tools.split(",") if t]
    if not args.scenarios or any(s not in SCENARIOS for s in args.scenarios):
        parser.error("--scenario: from %s, got %r" % (",".join(SCENARIOS), args.scenario))
    if not tools or any(t not in TOOLS for t in tools):
        parser.error("--tools: from %s, got %r" % (",".join(TOOLS), args.tools))
    if any(not 2 <= n <= len(ALL_REGIONS) for n in args.regions):
        parser.error("--regions: each count between 2 and %d, got %r" % (len(ALL_REGIONS), args.regions))
    if args.rounds < 1 or args.poll <= 0 or args.catalog_size < 1:
        parser.error("--rounds, --poll and --catalog-size must be positive")
    unknown = unknown_regions(ALL_REGIONS)
    if unknown:
        parser.error("botocore does not know these regions: %s" % ", ".join(unknown))
    if args.before and "before" not in tools:
        tools.append("before")
    if "before" in tools and not args.before:
        parser.error("--tools: \"before\" needs --before REV")
    if any(t in BAKES for t in tools) and "local" in args.scenarios and os.geteuid() != 0:
        parser.error("the bake's local builder (--scenario local) needs root")
    args.command_line = " ".join(["python bench/bake/run.py"] + sys.argv[1:])
    args.previous_local = previous_local(Path(args.previous))
    info = {"load_start": "%.1f" % os.getloadavg()[0], "packer": ensure_packer() if "packer" in tools else "no packer",
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")}
    ec2_ops = ec2_actions()
    results = []
    with tempfile.TemporaryDirectory(prefix="bakery-bench-bake-") as tmp:
        scratch = Path(args.keep or tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        if args.before:
            BAKE_ROOTS["before"] = checkout_at(args.before, scratch / "before-checkout")
            info["before_commit"] = subprocess.run(
                ["git", "-C", str(BAKE_ROOTS["before"]), "log", "-1", "--format=%h %s"],
                capture_output=True, text=True, check=False).stdout.strip()
        catalog = scratch / "ec2-catalog.json"
        images = make_catalog(args.catalog_size, [BUILD_REGION], seed=1)
        catalog.write_text(json.dumps(images))
        info.update(catalog_size=len(images), catalog_owners=len({i["owner_id"] for i in images}))
        with contextlib.ExitStack() as stack:
            if args.before:
                stack.callback(remove_checkout, BAKE_ROOTS["before"])
            endpoints = {}
            for scenario in args.scenarios:
                endpoints[scenario] = stack.enter_context(
                    LocalAws.start(port=0, amis=str(SCENARIOS[scenario]["catalog"] or catalog)))
                if scenario == "ec2":
                    info.update(catalog_stats(endpoints[scenario], SCENARIOS[scenario]))
            info.update(check_clock(endpoints[args.scenarios[0]], args.poll))
            print("clock check: %(clock_calls)d calls made at known moments placed within %(clock_max_error).2f s "
                  "(mean error %(clock_mean_error)+.3f s)" % info, flush=True)
            for seq in range(1, args.rounds + 1):
                for scenario in args.scenarios:
                    for count in args.regions:
                        # rotate the order of the tools from round to round
                        order = tools[(seq - 1) % len(tools):] + tools[:(seq - 1) % len(tools)]
                        for tool in order:
                            results.append(run_one(endpoints[scenario], scenario, tool, ALL_REGIONS[:count], args,
                                                   scratch, ec2_ops, seq))
                write_results(results, args, Path(args.out), info)
                if args.json:
                    Path(args.json).write_text(json.dumps(results, indent=1))
    print("results: %s" % args.out)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
