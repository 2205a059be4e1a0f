# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_copy's main(): bad input fails before any client exists; results, diff and failures reach the user."""
from __future__ import annotations

import json
from unittest.mock import patch

import botocore.exceptions
import pytest


from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _copy
from ansible_collections.bakery.ami.plugins.module_utils import _copy_request
from ansible_collections.bakery.ami.plugins.modules import ami_copy

from tests.unit.plugins.modules.module_runner import patch_clients, refused_before_aws, run_module

REGIONAL = "ansible_collections.bakery.ami.plugins.module_utils._aws.regional_clients"


def fake_regional(module, service, regions):
    return {region: f"{service}-{region}" for region in dict.fromkeys(regions)}


RUN = "ansible_collections.bakery.ami.plugins.module_utils._copy.AmiCopier.run"
BASE = {"region": "us-east-1", "access_key": "testing", "secret_key": "testing"}
SOURCE = "ami-0123456789abcdef0"
GOOD = {"source_image_id": SOURCE, "regions": ["us-west-2", "eu-west-1"]}


def run_main(capsys, check_mode=False, diff=False, **args):
    rc, result = run_module(ami_copy.main, capsys, dict(BASE, **args), check_mode=check_mode, diff=diff)
    result["_rc"] = rc
    return result


def outcome(changed=True):
    return {
        "changed": changed,
        "images": {
            "us-west-2": {"image_id": "ami-0aaaaaaaaaaaaaaaa", "name": "n", "state": "available", "changed": changed,
                          "snapshot_ids": [], "tags": {}},
        },
        "failed_regions": {},
        "diff": {"before": {"regions": []}, "after": {"regions": ["us-west-2"]}},
    }


@pytest.mark.parametrize(
    "args, fragment",
    [
        (dict(GOOD, source_image_id="image-1"), "source_image_id: 'image-1' is not a valid image ID"),
        (dict(GOOD, regions=["us-west-2", "us-west-2"]), "regions: region 'us-west-2' is listed more than once"),
        (dict(GOOD, regions=["us-nowhere-1"]), "regions[0]: unknown region 'us-nowhere-1'"),
        (dict(GOOD, regions=[{"region": "us-west-2", "kms_key_id": "bad key"}], encrypted=True), "regions[0] (us-west-2).kms_key_id"),
        (dict(GOOD, kms_key_id="arn:aws:kms:nope", encrypted=True), "kms_key_id: 'arn:aws:kms:nope' is not a KMS key reference"),
        (dict(GOOD, launch_permissions={"user_ids": ["1234"]}), "launch_permissions.user_ids: '1234' is not an AWS account ID"),
        (dict(GOOD, deprecate_at="2001-01-01T00:00:00Z"), "deprecate_at: '2001-01-01T00:00:00Z' is in the past"),
        (dict(GOOD, deprecate_at="someday"), "deprecate_at: 'someday' is not an ISO-8601 time"),
        (dict(GOOD, launch_permissions={"accounts": ["111122223333"]}), "accounts"),
        ({"source_image_id": SOURCE}, "missing required arguments: regions"),
        (dict(GOOD, name="web\n"), "name: 'web\\n' has characters AMI names do not allow"),
        (dict(GOOD, tags={f"t{n}": "v" for n in range(49)}), "tags: the copy would carry 51 tags"),
        (dict(GOOD, tags={"aws:x": "v"}), "tags: tag name 'aws:x' uses the reserved prefix 'aws:'"),
    ],
)
def test_bad_input_fails_before_any_client_is_made(capsys, args, fragment):
    assert fragment in refused_before_aws(run_main, capsys, args, RUN)["msg"]


def test_one_client_per_region_and_the_result_is_returned(capsys):
    seen = {}

    def fake_run(self):
        seen.update(request=self.request, clients=self.clients, check_mode=self.check_mode)
        return outcome()

    with patch(REGIONAL, side_effect=fake_regional) as regional, \
            patch.object(_copy.AmiCopier, "run", fake_run):
        result = run_main(capsys, check_mode=True, regions=["us-east-1", "us-west-2", {"region": "eu-west-1", "name": "eu name"}],
                          source_image_id=SOURCE)
    assert result["_rc"] == 0
    assert result["changed"] is True
    assert result["images"]["us-west-2"]["image_id"] == "ami-0aaaaaaaaaaaaaaaa"
    assert "diff" not in result  # only in diff mode
    assert seen["check_mode"] is True
    assert sorted(seen["clients"]) == ["eu-west-1", "us-east-1", "us-west-2"]
    assert seen["clients"]["eu-west-1"] == "ec2-eu-west-1"
    assert regional.call_count == 1
    request = seen["request"]
    assert request.source_region == "us-east-1" and request.regions[2].name == "eu name"
    assert request.copy_tags is True and request.rollback_on_failure is True and request.wait_timeout == 3600


def test_diff_mode_shows_regions_before_and_after(capsys):
    with patch_clients(), patch(RUN, return_value=outcome()):
        result = run_main(capsys, diff=True, **GOOD)
    assert result["diff"] == {"before": {"regions": []}, "after": {"regions": ["us-west-2"]}}


def test_failed_regions_fail_the_task_with_the_details(capsys):
    failure = dict(outcome(), failed_regions={"eu-west-1": "CopyImage failed: duplicate"}, rolled_back={"us-west-2": "ami-0aaaaaaaaaaaaaaaa"})
    with patch_clients(), patch(RUN, side_effect=_copy.CopyFailed("ami_copy failed in eu-west-1", failure)):
        result = run_main(capsys, **GOOD)
    assert result["_rc"] == 1
    assert result["msg"] == "ami_copy failed in eu-west-1"
    assert result["failed_regions"] == {"eu-west-1": "CopyImage failed: duplicate"}
    assert result["rolled_back"] == {"us-west-2": "ami-0aaaaaaaaaaaaaaaa"}


def test_missing_source_is_a_clean_failure(capsys):
    error = _copy_request.InputError(f"source_image_id: image {SOURCE} does not exist in us-east-1")
    with patch_clients(), patch(RUN, side_effect=error):
        result = run_main(capsys, **GOOD)
    assert result["_rc"] == 1
    assert result["msg"].startswith("source_image_id: image")


def test_aws_errors_are_reported_with_the_operation(capsys):
    client_error = botocore.exceptions.ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DescribeImages")
    error = _aws.BakeryAWSError(message="Failed to describe images", exception=client_error)
    with patch_clients(), patch(RUN, side_effect=error):
        result = run_main(capsys, **GOOD)
    assert result["_rc"] == 1
    assert "Failed to describe images" in result["msg"]


def test_warnings_reach_the_user(capsys):
    def fake_run(self):
        self.warnings.append("us-west-2: ami-1 is still pending")
        return outcome()

    with patch_clients(), patch.object(_copy.AmiCopier, "run", fake_run):
        result = run_main(capsys, wait=False, **GOOD)
    assert "us-west-2: ami-1 is still pending" in json.dumps(result["warnings"])


BPA = "ansible_collections.bakery.ami.plugins.module_utils._aws.get_image_block_public_access_state"


@pytest.mark.parametrize("blocked_in", ["us-east-1", "eu-west-1"])
def test_a_public_share_under_block_public_access_fails_before_any_copy(capsys, blocked_in):
    def state(client):
        return "block-new-sharing" if client == f"ec2-{blocked_in}" else "unblocked"

    with patch(REGIONAL, side_effect=fake_regional), patch(BPA, side_effect=state) as asked, patch(RUN) as run:
        result = run_main(capsys, **GOOD, launch_permissions={"group_names": ["all"]})
    assert result["_rc"] == 1 and run.call_count == 0
    assert result["msg"] == (
        f"launch_permissions.group_names: 'all' would make the image public in {blocked_in}, but image block public "
        f"access (ImageBlockPublicAccessState) is block-new-sharing there; EC2 refuses new public shares until it is "
        f"turned off (DisableImageBlockPublicAccess in {blocked_in}); nothing was changed")
    assert sorted(call.args[0] for call in asked.call_args_list) == ["ec2-eu-west-1", "ec2-us-east-1", "ec2-us-west-2"]


def test_a_share_that_is_not_public_does_not_ask_for_block_public_access(capsys):
    with patch(REGIONAL, side_effect=fake_regional), patch(BPA) as asked, patch(RUN, return_value=outcome()):
        result = run_main(capsys, **GOOD, launch_permissions={"user_ids": ["123456789012"]})
    assert result["_rc"] == 0 and asked.call_count == 0
