# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_create's main(): bad input fails before any AWS client exists; outcomes map to results and failures."""
from __future__ import annotations

from unittest.mock import MagicMock, patch

import botocore.exceptions
import pytest


from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _create
from ansible_collections.bakery.ami.plugins.module_utils import _waiter
from ansible_collections.bakery.ami.plugins.modules import ami_create

from tests.unit.plugins.modules.module_runner import run_module, refused_before_aws

CLIENT = "ansible_collections.amazon.aws.plugins.module_utils.modules.AnsibleAWSModule.client"
RUN = "ansible_collections.bakery.ami.plugins.module_utils._create.ImageCreator.run"
BASE = {"region": "us-east-1", "access_key": "testing", "secret_key": "testing"}


def run_main(capsys, check_mode=False, **args):
    rc, result = run_module(ami_create.main, capsys, dict(BASE, **args), check_mode=check_mode)
    result["_rc"] = rc
    return result


@pytest.mark.parametrize(
    "args,fragment",
    [
        ({"name": "x", "instance_id": "i-0123456789abcdef0"}, "name: AMI names are 3-128 characters"),
        ({"name": "bad|name", "instance_id": "i-0123456789abcdef0"}, "name: 'bad|name' has characters AMI names do not allow"),
        ({"name": "good name"}, "one of the following is required: instance_id, snapshot_id"),
        (
            {"name": "good name", "instance_id": "i-0123456789abcdef0", "snapshot_id": "snap-0123456789abcdef0"},
            "parameters are mutually exclusive: instance_id|snapshot_id",
        ),
        ({"name": "good name", "instance_id": "i-0123456789abcdef0", "deprecate_at": "soon"}, "deprecate_at: 'soon' is not an ISO-8601 time"),
        ({"name": "good name", "snapshot_id": "vol-0123456789abcdef0"}, "snapshot_id: 'vol-0123456789abcdef0' is not a valid snapshot ID"),
    ],
)
def test_bad_input_fails_before_any_client_is_made(capsys, args, fragment):
    assert fragment in refused_before_aws(run_main, capsys, args, RUN)["msg"]


def test_options_reach_the_creator_and_the_result_is_returned(capsys):
    seen = {}

    def fake_run(self):
        seen.update(params=self.params, region=self.region, check_mode=self.check_mode)
        return {"changed": True, "image_id": "ami-0123456789abcdef0", "name": self.params["name"], "state": "available",
                "snapshot_ids": ["snap-0123456789abcdef0"], "tags": {}, "adopted": False}

    with patch(CLIENT, return_value=MagicMock()) as client, patch.object(_create.ImageCreator, "run", fake_run):
        result = run_main(capsys, check_mode=True, name="web-base 1", instance_id="i-0123456789abcdef0", build_id="b1",
                          tags={"bakery:family": "web-base"})
    assert result["_rc"] == 0
    assert result["image_id"] == "ami-0123456789abcdef0"
    assert seen["check_mode"] is True
    assert seen["region"] == "us-east-1"
    assert seen["params"]["reboot"] is True and seen["params"]["imds_support"] == "v2.0"
    assert seen["params"]["wait"] is True and seen["params"]["wait_timeout"] == 3600
    client.assert_called_once_with("ec2")


@pytest.mark.parametrize(
    "error,expected",
    [
        (_create.CreateError("name: 'x y z' is already used by image ami-1"), "name: 'x y z' is already used by image ami-1"),
        (_waiter.ImageFailed("us-east-1", "ami-1", "failed", "disk gone"), "image ami-1 in us-east-1 went to state 'failed': disk gone"),
        (_waiter.WaitTimeout("timed out after 60 s waiting for images", {"us-east-1": ["ami-1"]}), "timed out after 60 s waiting for images"),
    ],
)
def test_failures_are_clean_messages(capsys, error, expected):
    with patch(CLIENT, return_value=MagicMock()), patch(RUN, side_effect=error):
        result = run_main(capsys, name="web-base 1", instance_id="i-0123456789abcdef0")
    assert result["_rc"] == 1
    assert result["msg"] == expected
    assert "exception" not in result


def test_aws_errors_carry_the_operation_and_the_code(capsys):
    cause = botocore.exceptions.ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "denied"}}, "CreateImage")
    error = _aws.BakeryAWSError(message="Failed to create image", exception=cause)
    with patch(CLIENT, return_value=MagicMock()), patch(RUN, side_effect=error):
        result = run_main(capsys, name="web-base 1", instance_id="i-0123456789abcdef0")
    assert result["_rc"] == 1
    assert result["msg"].startswith("Failed to create image")
    assert "UnauthorizedOperation" in result["msg"]
    assert result["error"]["code"] == "UnauthorizedOperation"
