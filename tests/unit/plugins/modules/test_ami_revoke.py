# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_revoke's main(): bad input fails before any AWS client exists; clients, check mode, diff, failures."""
from __future__ import annotations

from unittest.mock import patch

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _channel
from ansible_collections.bakery.ami.plugins.modules import ami_revoke

from tests.unit.plugins.modules.module_runner import run_module, refused_before_aws

REGIONAL = "ansible_collections.bakery.ami.plugins.module_utils._aws.regional_clients"
RUN = "ansible_collections.bakery.ami.plugins.module_utils._channel.Revoke.run"
BASE = {"region": "us-east-1", "access_key": "testing", "secret_key": "testing", "family": "web-base", "version": "2"}
A1 = "ami-0000000000000000a"
A2 = "ami-0000000000000000b"
DIFF = {"before": {"us-east-1": {"/bakery/web-base/stable": A2}}, "after": {"us-east-1": {"/bakery/web-base/stable": A1}}}


def fake_regional(module, service, regions):
    return {region: f"{service}-{region}" for region in dict.fromkeys(regions)}


def run_main(capsys, check_mode=False, diff=False, **args):
    rc, result = run_module(ami_revoke.main, capsys, dict(BASE, **args), check_mode=check_mode, diff=diff)
    result["_rc"] = rc
    return result


@pytest.mark.parametrize("args,fragment", [
    ({"version": ""}, "version: must not be empty"),
    ({"version": "2026.*"}, "version: '2026.*' holds *; versions are matched literally"),
    ({"version": "2\n"}, "with the control character"),
    ({"family": "../x"}, "family: '../x' is not a family name"),
    ({"family": "/web-base"}, "family: '/web-base' is not a family name"),
    ({"prefix": "/bakery"}, "prefix: '/bakery' is not a parameter path prefix"),
    ({"prefix": "bakery/.."}, "prefix: 'bakery/..' is not a parameter path prefix"),
    ({"prefix": "ssm/x"}, "which SSM reserves"),
    ({"regions": ["us-east-1", "nowhere-9"]}, "regions: 'nowhere-9' is not an AWS region name"),
    ({"regions": ["us-east-1", "us-east-1"]}, "regions: a region is named more than once"),
    ({"regions": []}, "regions: must name at least one region"),
])
def test_bad_input_fails_before_any_client_is_made(capsys, args, fragment):
    with patch(REGIONAL) as regional:
        result = refused_before_aws(run_main, capsys, args, RUN)
    regional.assert_not_called()
    assert fragment in result["msg"]


def test_a_missing_version_is_refused_by_the_argument_spec(capsys):
    args = dict(BASE)
    del args["version"]
    with patch(REGIONAL) as regional:
        rc, result = run_module(ami_revoke.main, capsys, args)
    regional.assert_not_called()
    assert rc == 1 and "missing required arguments: version" in result["msg"]


def test_clients_per_region_and_check_mode_reach_the_core(capsys):
    seen = {}

    def fake_run(self):
        seen.update(ssm=self.ssm, ec2=self.ec2, check_mode=self.check_mode, request=self.request)
        return {"changed": True, "family": "web-base", "version": "2", "regions": {}, "diff": DIFF}

    with patch(REGIONAL, side_effect=fake_regional), patch.object(_channel.Revoke, "run", fake_run):
        result = run_main(capsys, check_mode=True, diff=True, regions=["us-west-2", "eu-west-1"])
    assert result["_rc"] == 0 and result["changed"] is True
    assert seen["check_mode"] is True
    assert seen["request"].path == "/bakery/web-base" and seen["request"].regions == ["us-west-2", "eu-west-1"]
    assert seen["ssm"] == {"us-west-2": "ssm-us-west-2", "eu-west-1": "ssm-eu-west-1"}
    assert seen["ec2"] == {"us-west-2": "ec2-us-west-2", "eu-west-1": "ec2-eu-west-1"}
    assert result["diff"] == DIFF and result["diff_channels"] == DIFF


def test_no_diff_unless_asked_but_the_channels_moved_are_returned(capsys):
    answer = {"changed": False, "family": "web-base", "version": "2", "regions": {}, "diff": DIFF}
    with patch(REGIONAL, side_effect=fake_regional), patch(RUN, return_value=answer):
        result = run_main(capsys)
    assert result["_rc"] == 0 and "diff" not in result and result["diff_channels"] == DIFF


def test_a_refusal_returns_its_plan(capsys):
    error = _channel.ChannelError(
        "eu-west-1: the channel /bakery/web-base/stable names ami-0000000000000000b and its history holds no earlier "
        "good image to move back to (no earlier value); revoking would leave it empty or on the revoked image; "
        "nothing was changed",
        {"changed": False, "family": "web-base", "version": "2", "regions": {}, "diff": DIFF})
    with patch(REGIONAL, side_effect=fake_regional), patch(RUN, side_effect=error):
        result = run_main(capsys)
    assert result["_rc"] == 1 and result["msg"] == error.msg
    assert result["regions"] == {} and result["changed"] is False and "exception" not in result


def test_an_aws_error_is_reported(capsys):
    error = _aws.BakeryAWSError(message="Failed to get SSM parameters by path", exception=RuntimeError("boom"))
    with patch(REGIONAL, side_effect=fake_regional), patch(RUN, side_effect=error):
        result = run_main(capsys)
    assert result["_rc"] == 1 and "Failed to get SSM parameters by path" in result["msg"]
