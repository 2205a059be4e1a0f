# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lost answers: the whole bake once per mutating EC2 action it makes, with the first answer of that
action lost after EC2 served it (the endpoint's fault_timing "after", fault_limit 1: the action took
effect, the client saw InternalError or RequestLimitExceeded, its retry meets what it made).

Each run must end either succeeded with no duplicates (the account holds exactly the images the
report names, one per region with its snapshot, and nothing else) or failed with nothing left (no
resource of the run, nothing at all in the account). The builder's own calls (key pair, security
group, ingress rule, instance, their removal) must not fail at all. On the controller, the run's
key directory and local root are gone either way.

Two bake settings cover every action: "fast" (bake_builder: aws on the endpoint, bake_customize:
false: an instance launched on moto and imaged as launched, like Packer with communicator none; no
key pair) and "keyed" (the local builder, which also makes the key pair; needs root) for the actions
only it makes. test_the_matrix_covers_every_mutating_action_of_the_bake runs a bake of each without
faults and checks that the matrix lists exactly the mutating actions the endpoint counted, so an
action the bake starts to make is not left out unnoticed.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import ansible_env
from tests.reliability.checks import account_problems, mutating_calls, run_leftovers
from tests.reliability.conftest import REPO_ROOT
from tests.reliability.test_bake import (  # noqa: F401  pylint: disable=unused-import
    REGIONS, bake_argv, bake_vars, cache, key_dir, local_root,
)

# The mutating EC2 actions of each setting, as the endpoint counts them in a bake without faults.
# Nothing is run on the fast setting's builder: its security group admits no SSH (no ingress rule).
FAST_ACTIONS = (
    "CopyImage", "CreateImage", "CreateSecurityGroup", "DeleteSecurityGroup",
    "DeleteTags", "EnableImageDeprecation", "ModifyImageAttribute", "RunInstances", "StopInstances",
    "TerminateInstances",
)
KEYED_ACTIONS = FAST_ACTIONS + ("AuthorizeSecurityGroupIngress", "CreateKeyPair", "DeleteKeyPair")
SETTINGS = {
    "fast": {"bake_builder": "aws", "bake_customize": False, "bake_files": [], "bake_launch_config": {},
             "bake_ssh_cidrs": ["203.0.113.0/24"]},
    "keyed": {"bake_builder": "local", "bake_ssh_cidrs": ["203.0.113.0/24"]},
}
ACTIONS = {"fast": FAST_ACTIONS, "keyed": KEYED_ACTIONS}
# Every action once, on the fastest setting that makes it.
CASES = [(action, "fast") for action in FAST_ACTIONS] + [
    (action, "keyed") for action in KEYED_ACTIONS if action not in FAST_ACTIONS]
# ami_builder's calls: a lost answer must never fail them.
BUILDER_ACTIONS = {"CreateKeyPair", "CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "RunInstances",
                   "CreateTags", "TerminateInstances", "DeleteSecurityGroup", "DeleteKeyPair"}


def run_bake(aws, tmp_path: Path, cache_path: Path, setting: str, collections: str | None = None) -> dict:
    """One bake on the endpoint; returns its outcome (return code, report, log, run ID, counts, faults)."""
    run_id = "lost-%s-%s" % (setting, secrets.token_hex(3))
    extra = dict(bake_vars(aws.url, tmp_path / "out", run_id, "rel-lost"), **SETTINGS[setting])
    env = {"BAKERY_CACHE_DIR": str(cache_path)}
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections
    proc = subprocess.run(bake_argv(extra), env=ansible_env(env), cwd=str(REPO_ROOT), capture_output=True,
                          text=True, timeout=900, check=False)
    report_path = tmp_path / "out" / "bake-report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return {"rc": proc.returncode, "report": report, "log": proc.stdout + proc.stderr, "run_id": run_id,
            "counts": aws.counts(), "faults": aws.faults()}


def lost_answer_problems(aws, cache_path: Path, outcome: dict, action: str | None) -> list:
    """Succeeded without duplicates, or failed with nothing left; the builder's calls never fail."""
    problems = []
    run_id, report = outcome["run_id"], outcome["report"]
    if action is not None and outcome["faults"] != {action: 1}:
        problems.append("the endpoint lost %r, not exactly the first answer of %s" % (outcome["faults"], action))
    if report.get("run_id") != run_id:
        problems.append("no report of run %s (return code %d): %s" % (run_id, outcome["rc"], outcome["log"][-3000:]))
        return problems
    succeeded = outcome["rc"] == 0 and report.get("status") == "succeeded"
    if outcome["rc"] == 0 and not succeeded:
        problems.append("the bake exited 0 but its report says %s" % report.get("status"))
    if succeeded:
        images = {region: image if isinstance(image, str) else image.get("image_id")
                  for region, image in report.get("images", {}).items()}
        if sorted(images) != sorted(REGIONS):
            problems.append("succeeded with images in %s, not in %s" % (sorted(images), sorted(REGIONS)))
        problems += account_problems(aws, REGIONS, images)
    else:
        if action in BUILDER_ACTIONS or action is None:
            problems.append("the bake failed (phase %s): %s" % (report.get("failed_phase"), report.get("error")))
        problems += run_leftovers(aws, REGIONS, run_id)
        problems += account_problems(aws, REGIONS, {})
    if key_dir(cache_path, run_id).exists():
        problems.append("the run's key directory %s is still there" % key_dir(cache_path, run_id))
    if local_root(cache_path, run_id).exists():
        problems.append("the run's local root %s is still there" % local_root(cache_path, run_id))
    return problems


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_the_matrix_covers_every_mutating_action_of_the_bake(aws, tmp_path, cache, setting):  # noqa: F811
    if setting == "keyed" and os.geteuid() != 0:
        pytest.skip("the local builder needs root (chroot, mounts)")
    outcome = run_bake(aws, tmp_path, cache, setting)
    assert lost_answer_problems(aws, cache, outcome, None) == []
    assert sorted(mutating_calls(outcome["counts"])) == sorted(ACTIONS[setting]), outcome["counts"]


@pytest.mark.parametrize("action,setting", CASES, ids=["%s-%s" % case for case in CASES])
def test_a_lost_answer_ends_in_success_without_duplicates_or_failure_without_leftovers(
        aws, tmp_path, cache, action, setting):  # noqa: F811
    if setting == "keyed" and os.geteuid() != 0:
        pytest.skip("the local builder needs root (chroot, mounts)")
    aws.configure(fault_rate=1.0, fault_actions=[action], fault_timing="after", fault_limit=1)
    outcome = run_bake(aws, tmp_path, cache, setting)
    aws.configure(fault_rate=0.0)
    assert lost_answer_problems(aws, cache, outcome, action) == []
    # the action's first request was served and answered with a fault: a retry followed, or the run stopped
    assert outcome["counts"].get(action, 0) >= 1


def planted_collection(dest: Path, replace: tuple) -> str:
    """A copy of the collection (plugins, roles, metadata) with one piece of code replaced."""
    root = dest / "ansible_collections" / "bakery" / "ami"
    root.mkdir(parents=True)
    for name in ("galaxy.yml", "meta", "plugins", "roles"):
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "molecule"))
        else:
            shutil.copy2(source, root / name)
    path, old, new = replace
    text = (root / path).read_text()
    assert text.count(old) == 1, "the planted code is not where it was"
    (root / path).write_text(text.replace(old, new))
    return str(dest)


@pytest.mark.skipif(os.geteuid() != 0, reason="the local builder needs root (chroot, mounts)")
def test_planted_bake_without_the_key_pair_recovery_is_caught(aws, tmp_path, cache):  # noqa: F811
    """ami_builder as it was (a duplicate key pair without its private key fails the task): the
    CreateKeyPair case reports the failed bake."""
    collections = planted_collection(tmp_path / "colls", (
        "plugins/module_utils/_builder.py",
        "                self._replaceable(pair)\n",
        "                raise self._key_file_missing_error(f\"the key pair {self.name} already exists\")\n",
    ))
    aws.configure(fault_rate=1.0, fault_actions=["CreateKeyPair"], fault_timing="after", fault_limit=1)
    outcome = run_bake(aws, tmp_path, cache, "keyed", collections=collections)
    problems = lost_answer_problems(aws, cache, outcome, "CreateKeyPair")
    assert any("the bake failed (phase builder)" in p and "EC2 hands out a private key only once" in p
               for p in problems), problems
