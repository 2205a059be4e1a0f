# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_cleanup's main(): bad input fails before any AWS client exists; the request reaches the core;
outcomes map to results and failures (every error listed, what was removed returned)."""
from __future__ import annotations

from unittest.mock import MagicMock, patch

import botocore.exceptions
import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _cleanup
from ansible_collections.bakery.ami.plugins.modules import ami_cleanup

from tests.unit.plugins.modules.module_runner import run_module, refused_before_aws

CLIENTS = "ansible_collections.bakery.ami.plugins.module_utils._aws.regional_clients"
RUN = "ansible_collections.bakery.ami.plugins.module_utils._cleanup.Cleanup.run"
BASE = {"region": "us-east-1", "access_key": "testing", "secret_key": "testing"}


def run_main(capsys, check_mode=False, **args):
    rc, result = run_module(ami_cleanup.main, capsys, dict(BASE, **args), check_mode=check_mode)
    result["_rc"] = rc
    return result


@pytest.mark.parametrize(
    "args,fragment",
    [
        ({}, "run_id or expired_before: give exactly one of them"),
        ({"run_id": "run-abc123", "expired_before": "2030-01-01T00:00:00Z"}, "give only one of them"),
        ({"run_id": "run-*"}, "run_id: must be 6-64 characters"),
        ({"run_id": "run-abc123\n"}, "run_id: must be 6-64 characters"),
        ({"run_id": "run-abc?23"}, "not wildcards here"),
        ({"expired_before": "yesterday"}, "expired_before: 'yesterday' is not an ISO-8601 time"),
        ({"run_id": "run-abc123", "regions": ["us-east-1", "nowhere-1"]}, "regions[1]:"),
        ({"run_id": "run-abc123", "images": "every"}, "value of images must be one of"),
        ({"run_id": "run-abc123", "key_dir": "/cache/keys/someone-else"}, "key_dir: '/cache/keys/someone-else' is not named after the run"),
        ({"expired_before": "2030-01-01T00:00:00Z", "key_root": "/"}, "key_root: must not be '/'"),
        ({"run_id": "run-abc123", "wait_timeout": 0}, "wait_timeout: must be 1-86400 seconds"),
    ],
)
def test_bad_input_fails_before_any_client_is_made(capsys, args, fragment):
    with patch(CLIENTS) as clients:
        result = refused_before_aws(run_main, capsys, args, RUN)
    clients.assert_not_called()
    assert fragment in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"]


def test_the_request_reaches_the_core_and_the_result_is_returned(capsys):
    seen = {}

    def fake_run(self):
        seen.update(request=self.request, check_mode=self.check_mode, clients=self.clients)
        self.selection.warn("x", "a warning from the core")
        return {"changed": True, "selection": "bakery:run-id=run-abc123", "removed": {}, "kept": {}, "key_dirs": []}

    with patch(CLIENTS, return_value={"us-east-1": "c1", "eu-west-1": "c2"}) as clients, patch(RUN, fake_run):
        result = run_main(capsys, check_mode=True, run_id="run-abc123", regions=["us-east-1", "eu-west-1", "us-east-1"],
                          images="all", key_dir="/cache/keys/run-abc123", wait_timeout=90)
    assert result["_rc"] == 0 and result["changed"] is True
    assert "a warning from the core" in str(result["warnings"])
    assert clients.call_args[0][1:] == ("ec2", ["us-east-1", "eu-west-1"])
    request = seen["request"]
    assert (request.run_id, request.regions, request.images, request.key_dir, request.wait_timeout) == (
        "run-abc123", ["us-east-1", "eu-west-1"], "all", "/cache/keys/run-abc123", 90)
    assert seen["check_mode"] is True


def test_regions_default_to_the_modules_region(capsys):
    with patch(CLIENTS, return_value={"eu-west-1": "c"}) as clients, patch(RUN, return_value={"changed": False}):
        result = run_main(capsys, run_id="run-abc123", region="eu-west-1")
    assert result["_rc"] == 0
    assert clients.call_args[0][2] == ["eu-west-1"]


def test_a_partial_failure_lists_every_error_and_what_was_removed(capsys):
    removed = {"us-east-1": {"instances": ["i-1"], "key_pairs": []}}
    error = _cleanup.CleanupError(["us-east-1: delete key pair k: denied", "eu-west-1: find images: throttled"],
                                  {"changed": True, "removed": removed, "key_dirs": []})
    with patch(CLIENTS, return_value={}), patch(RUN, side_effect=error):
        result = run_main(capsys, run_id="run-abc123")
    assert result["_rc"] == 1
    assert result["errors"] == ["us-east-1: delete key pair k: denied", "eu-west-1: find images: throttled"]
    assert result["removed"] == removed and result["changed"] is True
    assert "2 errors" in result["msg"]


def test_an_aws_error_carries_the_operation_and_the_code(capsys):
    cause = botocore.exceptions.ClientError({"Error": {"Code": "AuthFailure", "Message": "denied"}}, "DescribeInstances")
    error = _aws.BakeryAWSError(message="Failed to describe instances", exception=cause)
    with patch(CLIENTS, side_effect=error), patch(RUN) as run:
        result = run_main(capsys, run_id="run-abc123")
    assert result["_rc"] == 1
    assert "describe instances" in result["msg"]
    run.assert_not_called()


def test_a_real_run_through_main_with_a_client_per_region(capsys):
    """main() wires the regional clients to the engine (the engine's calls are the core's tests)."""
    client = MagicMock()
    client.can_paginate.return_value = False
    for name in ("describe_instances",):
        getattr(client, name).return_value = {"Reservations": []}
    client.describe_security_groups.return_value = {"SecurityGroups": []}
    client.describe_key_pairs.return_value = {"KeyPairs": []}
    client.describe_volumes.return_value = {"Volumes": []}
    with patch(CLIENTS, return_value={"us-east-1": client}):
        result = run_main(capsys, run_id="run-abc123")
    assert result["_rc"] == 0 and result["changed"] is False
    assert result["removed"] == {"us-east-1": {kind: [] for kind in _cleanup.KINDS}}
    filters = client.describe_instances.call_args[1]["Filters"]
    assert {"Name": "tag:bakery:run-id", "Values": ["run-abc123"]} in filters
    for name in ("terminate_instances", "delete_security_group", "delete_key_pair", "delete_volume"):
        getattr(client, name).assert_not_called()
