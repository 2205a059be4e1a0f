# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image test stage of bake_builder: aws on the local endpoint: the builder role's test instance
(roles/builder/tasks/test_instance.yml), launched from the new image, tested with bake_test_roles,
terminated.

The endpoint's instances cannot be reached, so the test connection is `ansible_connection: local`
(bake_test_connection): the test roles run on this machine, where a stand-in `cloud-init` on PATH
logs each call (so the tests see `cloud-init status --wait` and the roles go through the test
host's connection). Everything about the instance itself is read back from the endpoint: the image
it was launched from, IMDSv2, the run's security group and key pair, its user data, its tags, its
termination. No root needed: the builder is an endpoint instance imaged as launched
(bake_customize: false).
"""
from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import REPO_ROOT

CATALOG = REPO_ROOT / "tools" / "local_aws" / "catalogs" / "local-default.json"
REGIONS = ("us-east-1", "us-west-2")
TEST_ROLES = REPO_ROOT / "tests" / "roles"
# the hook points besides test, each probed by tests/roles/aws_hook_probe
AWS_HOOK_POINTS = ("start", "after_builder", "after_publish", "before_report")
FAKE_CLOUD_INIT = """#!/bin/sh
# a stand-in for cloud-init on the test host (this machine): logs its arguments, says it is done
echo "$*" >> "$BAKERY_FAKE_CLOUD_INIT_LOG"
echo "status: done"
"""


@pytest.fixture(scope="module")
def local_aws():
    """The endpoint with the seed catalog (a Debian 12 source image in every region used)."""
    from tools.local_aws.control import LocalAws  # pylint: disable=import-outside-toplevel

    with LocalAws.start(port=0, amis=str(CATALOG)) as aws:
        yield aws


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_cloud_init(tmp_path):
    """(bin directory with a logging `cloud-init`, its log)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "cloud-init", FAKE_CLOUD_INIT)
    return bin_dir, tmp_path / "cloud-init.log"


@pytest.fixture
def test_python(tmp_path):
    """(the test host's Python interpreter: this one, logging each module it runs, its log). A module run
    against the test host uses it only through the test host's own variables (bake_test_connection),
    which the bake's play-level interpreter would otherwise outrank."""
    log = tmp_path / "test-host-python.log"
    wrapper = executable(tmp_path / "test-host-python", '#!/bin/sh\necho run >> "%s"\nexec "%s" "$@"\n'
                         % (log, sys.executable))
    return wrapper, log


def bake(run_playbook, aws, tmp_path, fake_cloud_init, test_roles, python=sys.executable, **overrides):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    bin_dir, log = fake_cloud_init
    extra = {
        "bake_endpoint_url": aws.url, "bake_output_dir": str(out), "bake_builder": "aws", "bake_customize": False,
        "bake_family": "ec2-test", "bake_version": "t1", "bake_regions": list(REGIONS), "bake_packages": [],
        "bake_services": [], "bake_files": [], "bake_keep_latest": 0, "bake_deprecate_days": 0,
        "bake_ssh_cidrs": ["203.0.113.0/24"],
        # the launch user-data the test instance must get: one launch value, so it is not empty
        "bake_launch_config": {"values": {"BAKERY_EC2_TEST": "yes"}, "values_path": "/etc/default/bakery-ec2-test"},
        "bake_test": True, "bake_test_roles": test_roles,
        "bake_test_connection": {"ansible_connection": "local", "ansible_become": False,
                                 "ansible_python_interpreter": str(python)},
    }
    extra.update(overrides)
    env = {"ANSIBLE_ROLES_PATH": str(TEST_ROLES), "PATH": "%s:%s" % (bin_dir, os.environ.get("PATH", "")),
           "BAKERY_FAKE_CLOUD_INIT_LOG": str(log), "BAKERY_CACHE_DIR": str(tmp_path / "cache")}
    result = run_playbook("playbooks/bake.yml", args=["-e", "@examples/local.yml", "-e", json.dumps(extra)], env=env,
                          timeout=900)
    sys.stdout.write(result.stdout[-8000:])
    sys.stderr.write(result.stderr[-3000:])
    report_path = out / "bake-report.json"
    return result, (json.loads(report_path.read_text()) if report_path.is_file() else {}), out


def instances(aws, region="us-east-1"):
    ec2 = aws.client("ec2", region)
    return [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]


def tags(resource) -> dict:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def run_resources(aws, run_id):
    """What of the run is left in each region: instances not terminated, security groups, key pairs,
    images and snapshots tagged with its run ID."""
    left = {}
    for region in REGIONS:
        ec2 = aws.client("ec2", region)
        by_run = [{"Name": "tag:bakery:run-id", "Values": [run_id]}]
        found = {
            "instances": [i["InstanceId"] for i in instances(aws, region)
                          if tags(i).get("bakery:run-id") == run_id and i["State"]["Name"] != "terminated"],
            "security_groups": [g["GroupId"] for g in ec2.describe_security_groups(Filters=by_run)["SecurityGroups"]],
            "key_pairs": [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"] if k["KeyName"] == "bakery-" + run_id],
            "images": [i["ImageId"] for i in
                       ec2.describe_images(Owners=["self"], Filters=by_run, IncludeDeprecated=True)["Images"]],
            "snapshots": [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=by_run)["Snapshots"]],
        }
        left[region] = {kind: ids for kind, ids in found.items() if ids}
    return {region: kinds for region, kinds in left.items() if kinds}


def the_test_instance(aws, run_id):
    """The run's one test instance (bakery:purpose=test) and the run's builder, from the endpoint."""
    mine = [i for i in instances(aws) if tags(i).get("bakery:run-id") == run_id]
    tested = [i for i in mine if tags(i).get("bakery:purpose") == "test"]
    builders = [i for i in mine if "bakery:purpose" not in tags(i)]
    assert len(tested) == 1 and len(builders) == 1, [(i["InstanceId"], tags(i)) for i in mine]
    return tested[0], builders[0]


def assert_launched_as_the_stage_must(aws, run_id, image_id, out, builder):
    """The test instance's launch: the new image, IMDSv2 required, the run's security group and key pair,
    the launch user-data, the run's tags; and it is terminated."""
    instance, _builder = the_test_instance(aws, run_id)
    assert instance["ImageId"] == image_id
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    groups = [g["GroupName"] for g in instance["SecurityGroups"]]
    assert groups == ["bakery-" + run_id] == [g["GroupName"] for g in builder["SecurityGroups"]]
    assert instance["KeyName"] == "bakery-" + run_id
    assert tags(instance)["Name"] == "bakery-%s-test" % run_id
    assert "bakery:expires-at" in tags(instance)
    user_data = aws.client("ec2", "us-east-1").describe_instance_attribute(
        InstanceId=instance["InstanceId"], Attribute="userData")["UserData"]["Value"]
    launch_user_data = (out / "launch-user-data.yml").read_text()
    assert base64.b64decode(user_data).decode() == launch_user_data
    assert "BAKERY_EC2_TEST" in launch_user_data
    assert instance["State"]["Name"] == "terminated", "the test instance is terminated when the stage ends"
    return instance


# ---------------------------------------------------------------------------------------------


def test_the_image_is_tested_on_an_instance_launched_from_it_before_its_copies(
        aws, run_playbook, tmp_path, fake_cloud_init, test_python):
    # a test hook of one's own after the shipped one sees the test instance as the stage ends; at every
    # other hook point, a hook whose amazon.aws module is given no region or endpoint
    probe = str(TEST_ROLES / "test_instance_probe")
    aws_probe = str(TEST_ROLES / "aws_hook_probe")
    hooks = {point: [{"role": aws_probe, "tasks_from": point + ".yml"}] for point in AWS_HOOK_POINTS}
    result, rep, out = bake(run_playbook, aws, tmp_path, fake_cloud_init, ["passing_image_test"],
                            bake_hooks=dict(hooks, test=[probe]), python=test_python[0])
    assert result.returncode == 0, result.stdout[-3000:]
    # the hooks' amazon.aws modules reached the bake's endpoint (the test hook's too, above and below): the
    # builder is not launched yet at start, running after it, terminated with its test instance in the counts after
    found = {point: json.loads((out / ("aws-hook-%s.json" % point)).read_text()) for point in AWS_HOOK_POINTS}
    assert found == {"start": 0, "after_builder": 1, "after_publish": 2, "before_report": 2}, found
    assert rep["status"] == "succeeded" and sorted(rep["images"]) == sorted(REGIONS)
    run_id = rep["run_id"]

    # one test entry per role, with its time; the stage's time covers them
    assert [(t["name"], t["ok"]) for t in rep["tests"]] == [("passing_image_test", True)], rep["tests"]
    assert rep["tests"][0]["seconds"] > 0 and rep["tests_seconds"] >= rep["tests"][0]["seconds"]
    assert not [w for w in rep["warnings"] if w.startswith("bake_test:")], rep["warnings"]

    _instance, builder = the_test_instance(aws, run_id)
    instance = assert_launched_as_the_stage_must(aws, run_id, rep["images"]["us-east-1"], out, builder)
    assert instance["InstanceId"] != builder["InstanceId"]
    # terminated by the stage itself (and waited for), not only later by the run's cleanup
    assert json.loads((out / "test-instances-at-stage-end.json").read_text()) == ["terminated"]
    # no SSH admitted anywhere: nothing ran on the builder, and the stage reached the test instance
    # without SSH, so the run's security group never got an ingress rule (bake_ssh_cidrs unused)
    assert aws.counts().get("AuthorizeSecurityGroupIngress", 0) == 0, aws.counts()

    # through the test host's connection: the stage waited for cloud-init, then the role ran
    calls = fake_cloud_init[1].read_text().splitlines()
    assert calls[0] == "status --wait" and calls[-1] == "mark passing_image_test", calls
    # with the test host's own variables: its interpreter ran the connection wait, the cloud-init wait and the
    # role's two commands (at least)
    assert len(test_python[1].read_text().splitlines()) >= 4

    # tested before any copy: the copy's launch is after the test instance's
    text = result.stdout
    assert text.index("TASK [Copy the tested image") > text.index("TASK [bakery.ami.builder : Terminate the test instance")
    # nothing temporary of the run is left (the key pair the test instance used included), the images stay
    left = run_resources(aws, run_id)
    for region in REGIONS:
        assert left[region]["images"] == [rep["images"][region]], (region, left)
        for kind in ("instances", "security_groups", "key_pairs"):
            assert kind not in left.get(region, {}), (region, kind, left)
    assert not (tmp_path / "cache" / "keys" / run_id).exists(), "the run's key directory is removed"


def test_a_failing_test_role_fails_the_bake_rolls_the_image_back_and_leaves_nothing(
        aws, run_playbook, tmp_path, fake_cloud_init):
    result, rep, out = bake(run_playbook, aws, tmp_path, fake_cloud_init, ["passing_image_test", "failing_image_test"],
                            bake_version="t2")
    assert result.returncode != 0
    assert rep["status"] == "failed" and rep["failed_phase"] == "test", rep.get("error")
    assert "failing_image_test" in rep["error"] and "the marker is missing" in rep["error"]
    run_id = rep["run_id"]
    assert [(t["name"], t["ok"]) for t in rep["tests"]] == [("passing_image_test", True), ("failing_image_test", False)]
    assert all(t["seconds"] >= 0 for t in rep["tests"])
    assert "the marker is missing" in rep["tests"][1]["error"]

    # the test instance was launched from the image the rollback removed, as the stage must, and terminated
    assert len(rep["rollback"]["images"]) == 1
    _instance, builder = the_test_instance(aws, run_id)
    assert_launched_as_the_stage_must(aws, run_id, rep["rollback"]["images"][0], out, builder)
    assert aws.counts().get("CopyImage", 0) == 0, "nothing was copied before the test"
    # rolled back: no image, no snapshot, no instance, group or key pair of the run anywhere
    assert run_resources(aws, run_id) == {}
    assert not (tmp_path / "cache" / "keys" / run_id).exists(), "the run's key directory is removed"
