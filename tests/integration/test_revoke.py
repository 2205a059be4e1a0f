# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revoking a version on the local endpoint, through ansible-playbook: playbooks/revoke.yml across
three regions after promoting v1 then v2 to stable (check mode first, then for real, then a rerun
unchanged, then the refused revoke of the last good version), and bakery.ami.ami_revoke's check
mode against its real run."""
from __future__ import annotations

import datetime
import json

import pytest

from tests.integration.test_promote import FAMILY, NAME, REGIONS, bake_images, channel_values, promote, recap_changed

REVOKE_PLAYBOOK = "playbooks/revoke.yml"
MUTATING = ("PutParameter", "AddTagsToResource", "CreateTags", "EnableImageDeprecation", "DeleteParameter")


def revoke(run_playbook, aws, version: str, *args):
    extra = {"revoke_family": FAMILY, "revoke_version": version, "revoke_regions": REGIONS,
             "revoke_endpoint_url": aws.url}
    return run_playbook(REVOKE_PLAYBOOK, extra, list(args))


def mutations(aws) -> dict:
    return {operation: count for operation, count in aws.counts().items() if operation in MUTATING}


def image_state(aws, images: dict) -> dict:
    """region -> (bakery:revoked tag or None, DeprecationTime or None) of the image given there."""
    state = {}
    for region, image_id in images.items():
        found = aws.client("ec2", region).describe_images(ImageIds=[image_id], IncludeDeprecated=True)["Images"][0]
        tags = {tag["Key"]: tag["Value"] for tag in found.get("Tags", [])}
        state[region] = (tags.get("bakery:revoked"), found.get("DeprecationTime"))
    return state


def promoted_twice(run_playbook, aws) -> tuple:
    first, second = bake_images(aws, "1"), bake_images(aws, "2")
    for version in ("1", "2"):
        result = promote(run_playbook, aws, version)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert channel_values(aws) == second
    aws.reset_counts()
    return first, second


def test_revoke_moves_stable_back_everywhere_rerun_unchanged_last_good_refused(aws, run_playbook):
    first, second = promoted_twice(run_playbook, aws)

    checked = revoke(run_playbook, aws, "2", "--check", "--diff")
    assert recap_changed(checked) == 1
    assert "3 channel(s) moved back, 3 image(s) newly tagged bakery:revoked, 3 newly deprecated" in checked.stdout
    assert mutations(aws) == {}
    assert channel_values(aws) == second
    assert image_state(aws, second) == {region: (None, None) for region in REGIONS}

    started = datetime.datetime.now(datetime.timezone.utc)
    done = revoke(run_playbook, aws, "2")
    assert recap_changed(done) == 1
    assert channel_values(aws) == first
    assert mutations(aws) == {"PutParameter": 3, "AddTagsToResource": 3, "CreateTags": 3, "EnableImageDeprecation": 3}
    for region, (tag, deprecation) in image_state(aws, second).items():
        assert tag == "true", region
        moment = datetime.datetime.fromisoformat(deprecation.replace("Z", "+00:00"))
        assert started <= moment <= started + datetime.timedelta(minutes=3), (region, deprecation)
        ssm = aws.client("ssm", region)
        history = ssm.get_parameter_history(Name=NAME)["Parameters"]
        assert [item["Value"] for item in history] == [first[region], second[region], first[region]]
        tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=NAME)["TagList"]
        assert tags == [{"Key": "bakery:previous-image", "Value": second[region]}]
    assert image_state(aws, first) == {region: (None, None) for region in REGIONS}

    aws.reset_counts()
    rerun = revoke(run_playbook, aws, "2")
    assert recap_changed(rerun) == 0
    assert "0 channel(s) moved back, 0 image(s) newly tagged bakery:revoked, 0 newly deprecated" in rerun.stdout
    assert mutations(aws) == {}

    # v1 is now the only good version stable has ever named: revoking it would leave stable empty
    refused = revoke(run_playbook, aws, "1")
    assert refused.returncode != 0
    for region in REGIONS:
        assert f"{region}: the channel {NAME} names {first[region]} and its history holds no earlier good" in refused.stdout
    assert "nothing was changed" in refused.stdout
    assert mutations(aws) == {}
    assert channel_values(aws) == first
    assert image_state(aws, first) == {region: (None, None) for region in REGIONS}


CHECK_PLAYBOOK = """\
---
- name: ami_revoke check mode against the real run
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
      bakery.ami.ami_revoke:
        family: web-base
        version: "2"
        regions: "{{ regions }}"
      check_mode: true
      diff: true
      register: predicted
    - name: Do
      bakery.ami.ami_revoke:
        family: web-base
        version: "2"
        regions: "{{ regions }}"
      diff: true
      register: done
    - name: Predict the last good version's revoke
      bakery.ami.ami_revoke:
        family: web-base
        version: "1"
        regions: "{{ regions }}"
      check_mode: true
      register: refused_predicted
      ignore_errors: true
    - name: Write the results
      ansible.builtin.copy:
        dest: "{{ out }}"
        content: "{{ {'predicted': predicted, 'done': done, 'refused': refused_predicted} | to_json }}"
        mode: "0600"
"""


def test_check_mode_predicts_the_real_run(aws, run_playbook, tmp_path):
    first, second = promoted_twice(run_playbook, aws)
    out = tmp_path / "results.json"
    playbook = tmp_path / "check.yml"
    playbook.write_text(CHECK_PLAYBOOK)
    result = run_playbook(playbook, {"endpoint": aws.url, "regions": REGIONS, "out": str(out)})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    got = json.loads(out.read_text())

    predicted, done = got["predicted"], got["done"]
    assert predicted["changed"] is True and done["changed"] is True
    for region in REGIONS:
        plan, real = predicted["regions"][region], done["regions"][region]
        assert plan["channels"] == {NAME: {"before": second[region], "after": first[region], "changed": True}}
        assert {name: {k: v for k, v in channel.items() if k != "version"} for name, channel in real["channels"].items()} \
            == plan["channels"]
        assert real["channels"][NAME]["version"] == 3
        # the deprecation time is taken from the clock of each run; everything else is the same
        assert [dict(item, deprecation_time=None) for item in plan["images"]] \
            == [dict(item, deprecation_time=None) for item in real["images"]] \
            == [{"image_id": second[region], "tag": True, "deprecate": True, "deprecation_time": None}]
    assert predicted["diff"] == done["diff"] == done["diff_channels"]
    assert done["diff"]["after"] == {region: {NAME: first[region]} for region in REGIONS}

    refused = got["refused"]
    assert refused["failed"] is True and f"the channel {NAME} names {first['us-east-1']}" in refused["msg"]
    assert channel_values(aws) == first


@pytest.fixture(autouse=True)
def _counts_start_clean(aws):
    aws.reset_counts()
