# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Idempotency: every module run twice with the same arguments reports changed: false the second
time and makes no mutating API call (the endpoint's action counts around the second run)."""
from __future__ import annotations

import shutil
import time

import pytest

from tests.reliability.checks import idempotency_problems
from tests.reliability.conftest import FIXTURES, run_tasks, scratch_collection

MODULES = ["ami_find", "ami_builder", "ami_create", "ami_copy", "ami_prune", "ami_lock_release", "cloudinit_guard", "image_scan",
           "bake_outputs"]


def twice(module: str, args: dict, url: str) -> list:
    """Run module, reset counts, run it again, read the counts."""
    return [
        {"name": "%s first run" % module, "bakery.ami.%s" % module: args, "register": "%s_1" % module},
        {"name": "reset counts", "ansible.builtin.uri": {"url": url + "/_bakery/counts/reset", "method": "POST"}},
        {"name": "%s second run" % module, "bakery.ami.%s" % module: args, "register": "%s_2" % module,
         "ignore_errors": True},
        {"name": "read counts", "ansible.builtin.uri": {"url": url + "/_bakery/counts", "return_content": True},
         "register": "%s_c" % module},
    ]


def module_args(aws, tmp) -> dict:
    """Arguments of each module, with what they act on made first (instance, fixture trees)."""
    ec2 = aws.client("ec2", "us-east-1")
    source = ec2.describe_images(Owners=["136693071363"], Filters=[{"Name": "name", "Values": ["debian-12-amd64-*"]}])
    instance = ec2.run_instances(ImageId=source["Images"][0]["ImageId"], MinCount=1, MaxCount=1,
                                 InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    roots = {}
    for name in ("ami_lock_release", "cloudinit_guard", "image_scan"):
        roots[name] = tmp / ("root-" + name)
        shutil.copytree(FIXTURES / "al2023", roots[name], symlinks=True)
    family = "rel-idem"
    return {
        "ami_find": {"distro": "debian-12"},
        "ami_builder": {"run_id": "rel-idem-builder", "image_id": source["Images"][0]["ImageId"],
                        "ssh_cidrs": ["203.0.113.0/24"], "key_file": str(tmp / "builder-key"),
                        "expires_at": "2030-01-01T00:00:00Z", "wait": True},
        "ami_create": {"instance_id": instance, "name": "rel-idem-2", "build_id": "rel-idem-2", "reboot": False,
                       "tags": {"bakery:family": family, "bakery:version": "2"}, "wait": True,
                       "copy": {"regions": ["ap-southeast-2"], "pending_tags": {"bakery:expires-at": "2030-01-01T00:00:00Z"}}},
        "ami_copy": {"source_image_id": "{{ ami_create_1.image_id }}", "regions": ["us-west-2", "eu-west-1"],
                     "wait": True},
        "ami_prune": {"family": family, "keep_latest": 1, "regions": ["us-east-1"]},
        "ami_lock_release": {"root": str(roots["ami_lock_release"]), "release": "2023.6.20241010"},
        "cloudinit_guard": {"root": str(roots["cloudinit_guard"]), "protect": ["ssh_config", "hostname"]},
        "image_scan": {"root": str(roots["image_scan"])},
        # templated values (tagged strings in ansible-core 2.19) in every file
        "bake_outputs": {
            "report_path": str(tmp / "bake-outputs" / "bake-report.json"),
            "report": {"run_id": "rel-idem", "images": {"us-east-1": "{{ ami_create_1.image_id }}"}, "error": None},
            "user_data_path": str(tmp / "bake-outputs" / "launch-user-data.yml"),
            "user_data": {"packages": ["curl"], "runcmd": [["echo", "{{ ami_create_1.image_id }}"]]},
            "manifest_path": str(tmp / "bake-outputs" / "bake-manifest.json"),
            "manifest_build": {"name": family, "builder_type": "bakery-local-chroot", "files": None,
                               "artifact_id": "us-east-1:{{ ami_create_1.image_id }}", "packer_run_uuid": "rel-idem"},
        },
        "_instance": instance,
    }


@pytest.fixture(scope="module")
def idempotency_runs(endpoint, tmp_path_factory):
    endpoint.reset()
    tmp = tmp_path_factory.mktemp("idempotency")
    args = module_args(endpoint, tmp)
    # an older image of the family, so that the first ami_prune run has something to retire
    older = {"name": "older image of the family", "bakery.ami.ami_create": {
        "instance_id": args["_instance"], "name": "rel-idem-1", "build_id": "rel-idem-1", "reboot": False,
        "tags": {"bakery:family": "rel-idem", "bakery:version": "1"}, "wait": True}, "register": "older"}
    tasks = [older, {"name": "let the creation dates differ", "ansible.builtin.pause": {"seconds": 1}}]
    for module in MODULES:
        tasks += twice(module, args[module], endpoint.url)
    return run_tasks(tmp, tasks, endpoint.url)


@pytest.mark.parametrize("module", MODULES)
def test_second_run_changes_nothing(idempotency_runs, module):
    first, second = idempotency_runs["%s_1" % module], idempotency_runs["%s_2" % module]
    assert first and not first.get("failed"), first
    if module in ("ami_builder", "ami_create", "ami_copy", "ami_prune", "ami_lock_release", "cloudinit_guard",
                  "bake_outputs"):
        assert first["changed"], "%s: the first run should have changed something: %s" % (module, first)
    counts = idempotency_runs["%s_c" % module]["json"]["counts"]
    assert idempotency_problems(module, second, counts) == []


def test_planted_violations_are_found(endpoint, tmp_path):
    """A copy of image_scan that always reports changed, and of ami_find that creates a key pair."""
    endpoint.reset()
    collections, root = scratch_collection(tmp_path / "colls")
    scan = root / "plugins" / "modules" / "image_scan.py"
    text = scan.read_text()
    assert "module.exit_json(changed=False, **result)" in text
    scan.write_text(text.replace("module.exit_json(changed=False, **result)", "module.exit_json(changed=True, **result)"))
    find = root / "plugins" / "modules" / "ami_find.py"
    text = find.read_text()
    assert "    module.exit_json(**result)\n" in text
    find.write_text(text.replace("    module.exit_json(**result)\n",
                                 "    module.client('ec2').create_key_pair(KeyName='planted-%d')\n"
                                 "    module.exit_json(**result)\n" % time.time_ns()))
    fixture = tmp_path / "root"
    shutil.copytree(FIXTURES / "al2023", fixture, symlinks=True)
    tasks = (twice("image_scan", {"root": str(fixture)}, endpoint.url)
             + twice("ami_find", {"distro": "debian-12"}, endpoint.url))
    runs = run_tasks(tmp_path, tasks, endpoint.url, collections=collections)
    scan_problems = idempotency_problems("image_scan", runs["image_scan_2"], runs["image_scan_c"]["json"]["counts"])
    find_problems = idempotency_problems("ami_find", runs["ami_find_2"], runs["ami_find_c"]["json"]["counts"])
    assert any("changed=True" in p for p in scan_problems), scan_problems
    assert any("CreateKeyPair" in p for p in find_problems), find_problems
