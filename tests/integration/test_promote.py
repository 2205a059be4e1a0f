# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image channels on the local endpoint, through ansible-playbook: playbooks/promote.yml across three
regions (check mode first, then for real, then a rerun unchanged, then the next version), and
bakery.ami.ami_channel's check mode against its real run, with ami_find resolving the channel."""
from __future__ import annotations

import json
import re

import pytest

REPO_ROOT_PLAYBOOK = "playbooks/promote.yml"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
FAMILY = "web-base"
NAME = f"/bakery/{FAMILY}/stable"


def bake_images(aws, version: str) -> dict:
    """One available image of the family and version in each region (region -> image ID)."""
    images = {}
    for region in REGIONS:
        ec2 = aws.client("ec2", region)
        stock = ec2.describe_images(Owners=["amazon"], MaxResults=5, Filters=[
            {"Name": "architecture", "Values": ["x86_64"]}, {"Name": "root-device-type", "Values": ["ebs"]}])["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=stock, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
        images[region] = ec2.create_image(
            InstanceId=instance["InstanceId"], Name=f"{FAMILY}-{version}",
            TagSpecifications=[{"ResourceType": "image", "Tags": [
                {"Key": "bakery:family", "Value": FAMILY}, {"Key": "bakery:version", "Value": version}]}],
        )["ImageId"]
    return images


def channel_values(aws) -> dict:
    values = {}
    for region in REGIONS:
        ssm = aws.client("ssm", region)
        try:
            values[region] = ssm.get_parameter(Name=NAME)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            values[region] = None
    return values


def recap_changed(result) -> int:
    match = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", result.stdout)
    assert match, result.stdout[-4000:] + result.stderr[-2000:]
    return int(match.group(1))


def promote(run_playbook, aws, version: str, *args):
    extra = {"promote_family": FAMILY, "promote_version": version, "promote_channel": "stable",
             "promote_regions": REGIONS, "promote_endpoint_url": aws.url}
    return run_playbook(REPO_ROOT_PLAYBOOK, extra, list(args))


def test_promote_across_three_regions_idempotent_with_history(aws, run_playbook):
    first = bake_images(aws, "1")
    second = bake_images(aws, "2")

    checked = promote(run_playbook, aws, "1", "--check", "--diff")
    assert recap_changed(checked) == 1
    assert channel_values(aws) == {region: None for region in REGIONS}
    assert all(f"{region} -> {first[region]}" in checked.stdout for region in REGIONS)
    assert f"({len(REGIONS)} region(s) changed)" in checked.stdout

    aws.reset_counts()
    assert recap_changed(promote(run_playbook, aws, "1")) == 1
    assert channel_values(aws) == first
    assert aws.counts().get("PutParameter") == 3

    aws.reset_counts()
    rerun = promote(run_playbook, aws, "1")
    assert recap_changed(rerun) == 0
    assert "PutParameter" not in aws.counts() and "AddTagsToResource" not in aws.counts()

    assert recap_changed(promote(run_playbook, aws, "2")) == 1
    assert channel_values(aws) == second
    for region in REGIONS:
        ssm = aws.client("ssm", region)
        history = ssm.get_parameter_history(Name=NAME)["Parameters"]
        assert [item["Value"] for item in history] == [first[region], second[region]]
        assert {item["DataType"] for item in history} == {"aws:ec2:image"}
        tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=NAME)["TagList"]
        assert tags == [{"Key": "bakery:previous-image", "Value": first[region]}]


def test_promote_of_a_version_missing_in_one_region_changes_nothing(aws, run_playbook):
    bake_images(aws, "1")
    aws.client("ec2", "eu-west-1").deregister_image(
        ImageId=aws.client("ec2", "eu-west-1").describe_images(Owners=["self"])["Images"][0]["ImageId"])
    aws.reset_counts()
    result = promote(run_playbook, aws, "1")
    assert result.returncode != 0
    assert "version: no image of this account in eu-west-1 carries bakery:family=web-base" in result.stdout
    assert "PutParameter" not in aws.counts()
    assert channel_values(aws) == {region: None for region in REGIONS}


CHECK_PLAYBOOK = """\
---
- name: ami_channel check mode against the real run, and ami_find resolving the channel
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/bakery.ami.ami:
      endpoint_url: "{{ endpoint }}"
      region: us-east-1
      access_key: testing
      secret_key: testing
  tasks:
    - name: Predict
      bakery.ami.ami_channel:
        family: web-base
        channel: stable
        images: "{{ images }}"
      check_mode: true
      diff: true
      register: predicted
    - name: Do
      bakery.ami.ami_channel:
        family: web-base
        channel: stable
        images: "{{ images }}"
      diff: true
      register: done
    - name: Again
      bakery.ami.ami_channel:
        family: web-base
        channel: stable
        images: "{{ images }}"
      register: again
    - name: Resolve the channel
      bakery.ami.ami_find:
        channel: web-base/stable
        owners: [self]
        regions: "{{ images | list }}"
      register: found
    - name: A channel name outside the rules
      bakery.ami.ami_channel:
        family: web-base
        channel: ../stable
        images: "{{ images }}"
      register: refused
      ignore_errors: true
    - name: Write the results
      ansible.builtin.copy:
        dest: "{{ out }}"
        content: "{{ {'predicted': predicted, 'done': done, 'again': again, 'found': found, 'refused': refused} | to_json }}"
        mode: "0600"
"""


def test_check_mode_predicts_the_real_run_and_ami_find_resolves(aws, run_playbook, tmp_path):
    images = bake_images(aws, "1")
    out = tmp_path / "results.json"
    playbook = tmp_path / "check.yml"
    playbook.write_text(CHECK_PLAYBOOK)
    result = run_playbook(playbook, {"endpoint": aws.url, "images": images, "out": str(out)})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    got = json.loads(out.read_text())

    predicted, done, again = got["predicted"], got["done"], got["again"]
    assert predicted["changed"] is True and done["changed"] is True and again["changed"] is False
    for region, image_id in images.items():
        assert predicted["channels"][region] == {"name": NAME, "before": None, "after": image_id, "changed": True}
        assert {k: v for k, v in done["channels"][region].items() if k != "version"} == predicted["channels"][region]
        assert again["channels"][region] == {"name": NAME, "before": image_id, "after": image_id, "changed": False}
    assert predicted["diff"] == done["diff"]
    assert done["diff"]["after"] == images

    found = got["found"]
    assert found["channel"] == NAME
    assert {region: entry["image"]["image_id"] for region, entry in found["images_by_region"].items()} == images

    refused = got["refused"]
    assert refused["failed"] is True and "channel: '../stable' is not a channel name" in refused["msg"]


@pytest.fixture(autouse=True)
def _counts_start_clean(aws):
    aws.reset_counts()
