# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS modules run in the task's worker (plugin_utils/_in_process.py) exactly as a module process.

One playbook on the local endpoint runs the same tasks twice, in-process (the default here: local
connection, the controller's Python) and with bakery_ami_in_process: false, and the two sets of
results must agree: a lookup, a write module in check mode, for real and rerun (changed honestly,
idempotent), state absent, a refusal of bad input and an AWS error. -vvv says which way each ran,
and a no_log option's value never shows in either.
"""
from __future__ import annotations

import json
import re

import pytest

SECRET = "s3cr3t-Only-In-The-Arguments"

PLAYBOOK = """\
- name: The same tasks in the task's worker and as a module process
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/bakery.ami.ami:
      endpoint_url: "{{ url }}"
      region: us-east-1
      access_key: testing
      secret_key: "{{ secret }}"
  tasks:
    - name: Run the tasks both ways
      ansible.builtin.include_tasks: tasks.yml
      loop: [true, false]
      loop_control:
        loop_var: in_process

    - name: Write the results
      ansible.builtin.copy:
        content: "{{ outcomes | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""

TASKS = """\
- name: The tasks of one way
  vars:
    bakery_ami_in_process: "{{ in_process }}"
    run_id: "{{ 'inproc-yes' if in_process else 'inproc-no' }}"
  block:
    - name: Find a stock image
      bakery.ami.ami_find:
        owners: [amazon]
        architecture: x86_64
      register: found

    - name: Launch a builder in check mode
      bakery.ami.ami_builder: &builder
        run_id: "{{ run_id }}"
        image_id: "{{ found.image.image_id }}"
        instance_types: [t3.micro]
        expires_at: "2030-01-01T00:00:00Z"
        wait: false
      check_mode: true
      register: checked

    - name: Launch a builder
      bakery.ami.ami_builder: *builder
      register: launched

    - name: Launch it again
      bakery.ami.ami_builder: *builder
      register: relaunched

    - name: Remove it
      bakery.ami.ami_cleanup:
        run_id: "{{ run_id }}"
      register: removed

    - name: Refuse bad input
      bakery.ami.ami_builder:
        run_id: "not a run id!"
        image_id: "{{ found.image.image_id }}"
        expires_at: "2030-01-01T00:00:00Z"
      register: refused
      ignore_errors: true

    - name: Fail on an AWS error
      bakery.ami.ami_find:
        image_ids: [ami-00000000000000000]
        required: true
      register: aws_error
      ignore_errors: true

    - name: Keep the outcomes
      ansible.builtin.set_fact:
        outcomes: "{{ outcomes | default({}) | combine({run_id: {
          'found': found, 'checked': checked, 'launched': launched, 'relaunched': relaunched,
          'removed': removed, 'refused': refused, 'aws_error': aws_error}}) }}"
"""

# what else legitimately differs: the addresses and launch time of each way's instance, and the
# source image's last launch (the first way launched it)
VOLATILE = ("last_launched_time", "private_ip", "public_ip", "launch_time")


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory, local_aws):
    from tests.integration.conftest import run_playbook_cmd  # pylint: disable=import-outside-toplevel

    local_aws.reset()
    scratch = tmp_path_factory.mktemp("in_process")
    (scratch / "playbook.yml").write_text(PLAYBOOK)
    (scratch / "tasks.yml").write_text(TASKS)
    out = scratch / "out.json"
    result = run_playbook_cmd(scratch / "playbook.yml", {"url": local_aws.url, "out": str(out), "secret": SECRET},
                              args=["-vvv"])
    assert result.returncode == 0, result.stdout[-15000:] + result.stderr[-3000:]
    outcomes = json.loads(out.read_text())
    return outcomes["inproc-yes"], outcomes["inproc-no"], result.stdout + result.stderr


def _comparable(value):
    """The result without what legitimately differs: each way's run ID written RUN, the IDs of the
    instance and group each way made written i-ID and sg-ID."""
    text = json.dumps(value).replace("inproc-yes", "RUN").replace("inproc-no", "RUN")
    return _without_volatile(json.loads(re.sub(r"\b(i|sg)-[0-9a-f]{8,17}\b", r"\1-ID", text)))


def _without_volatile(value):
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


def test_each_way_ran_as_asked(both_ways):
    _yes, _no, log = both_ways
    # 5 module tasks each way, plus the refusal and the AWS error
    assert log.count("bakery.ami.ami_builder: run in the task's worker process") == 4
    assert log.count("bakery.ami.ami_builder: run as a module process (bakery_ami_in_process is false)") == 4
    assert log.count("bakery.ami.ami_find: run in the task's worker process") == 2
    assert "AnsiballZ_ami_builder.py" in log and "AnsiballZ_ami_find.py" in log


@pytest.mark.parametrize("task", ["found", "checked", "launched", "relaunched", "removed", "refused", "aws_error"])
def test_results_agree(both_ways, task):
    yes, no, _log = both_ways
    assert _comparable(yes[task]) == _comparable(no[task])


def test_changed_is_honest_and_a_rerun_changes_nothing(both_ways):
    for outcome in both_ways[:2]:
        assert outcome["checked"]["changed"] is True and not outcome["checked"].get("instance_id")
        assert outcome["launched"]["changed"] is True and outcome["launched"]["instance_id"].startswith("i-")
        assert outcome["relaunched"]["changed"] is False
        assert outcome["relaunched"]["instance_id"] == outcome["launched"]["instance_id"]
        assert outcome["removed"]["changed"] is True


def test_failures_are_clean(both_ways):
    for outcome in both_ways[:2]:
        assert outcome["refused"]["failed"] is True and "run_id" in outcome["refused"]["msg"]
        assert outcome["aws_error"]["failed"] is True and outcome["aws_error"]["msg"]
        for failure in (outcome["refused"], outcome["aws_error"]):
            assert "Traceback" not in json.dumps(failure)


def test_no_log_values_never_show(both_ways):
    yes, no, log = both_ways
    assert SECRET not in log
    assert SECRET not in json.dumps(yes) and SECRET not in json.dumps(no)


def test_nothing_left_on_the_endpoint(both_ways, local_aws):
    ec2 = local_aws.client("ec2")
    for run_id in ("inproc-yes", "inproc-no"):
        reservations = ec2.describe_instances(Filters=[{"Name": "tag:bakery:run-id", "Values": [run_id]},
                                                       {"Name": "instance-state-name", "Values": ["pending", "running"]}])
        assert not [i for r in reservations["Reservations"] for i in r["Instances"]]
