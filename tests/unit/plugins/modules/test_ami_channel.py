# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_channel's main(): bad input fails before any AWS client exists; clients, check mode, diff, failures."""
from __future__ import annotations

from unittest.mock import patch

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _channel
from ansible_collections.bakery.ami.plugins.modules import ami_channel

from tests.unit.plugins.modules.module_runner import run_module, refused_before_aws

REGIONAL = "ansible_collections.bakery.ami.plugins.module_utils._aws.regional_clients"
RUN = "ansible_collections.bakery.ami.plugins.module_utils._channel.Channel.run"
BASE = {"region": "us-east-1", "access_key": "testing", "secret_key": "testing", "family": "web-base", "channel": "stable"}
A1 = "ami-0000000000000000a"


def fake_regional(module, service, regions):
    return {region: f"{service}-{region}" for region in dict.fromkeys(regions)}


def run_main(capsys, check_mode=False, diff=False, **args):
    rc, result = run_module(ami_channel.main, capsys, dict(BASE, **args), check_mode=check_mode, diff=diff)
    result["_rc"] = rc
    return result


@pytest.mark.parametrize("args,fragment", [
    ({"channel": "Stable", "version": "1"}, "channel: 'Stable' is not a channel name: 1-64 characters, lowercase"),
    ({"channel": "../stable", "version": "1"}, "channel: '../stable' is not a channel name"),
    ({"channel": "/stable", "version": "1"}, "channel: '/stable' is not a channel name"),
    ({"family": "../x", "version": "1"}, "family: '../x' is not a family name"),
    ({"family": "/web-base", "version": "1"}, "family: '/web-base' is not a family name"),
    ({"prefix": "/bakery", "version": "1"}, "prefix: '/bakery' is not a parameter path prefix"),
    ({"prefix": "bakery/..", "version": "1"}, "prefix: 'bakery/..' is not a parameter path prefix"),
    ({"images": {"xx-north-9": A1}}, "images: unknown region 'xx-north-9'"),
    ({"images": {"us-east-1": "i-0000000000000000a"}}, "images[us-east-1]: 'i-0000000000000000a' is not a valid image ID"),
    ({"images": [{"region": "us-east-1", "image_id": A1}, {"region": "us-east-1", "image_id": A1}]},
     "images: the region 'us-east-1' is named more than once"),
    ({"version": "1", "regions": ["us-east-1", "nowhere-9"]}, "regions: 'nowhere-9' is not an AWS region name"),
    ({}, "images or version: one of them is required with state=present"),
    ({"state": "absent"}, "state: absent would leave the channel empty in every region named; set allow_empty=true"),
])
def test_bad_input_fails_before_any_client_is_made(capsys, args, fragment):
    with patch(REGIONAL) as regional:
        result = refused_before_aws(run_main, capsys, args, RUN)
    regional.assert_not_called()
    assert fragment in result["msg"]


def test_clients_per_region_and_check_mode_reach_the_core(capsys):
    seen = {}

    def fake_run(self):
        seen.update(ssm=self.ssm, ec2=self.ec2, check_mode=self.check_mode, request=self.request)
        return {"changed": True, "name": self.request.name, "channels": {},
                "diff": {"before": {"us-west-2": None}, "after": {"us-west-2": A1}}}

    with patch(REGIONAL, side_effect=fake_regional), patch.object(_channel.Channel, "run", fake_run):
        result = run_main(capsys, check_mode=True, diff=True, images={"us-west-2": A1, "eu-west-1": A1})
    assert result["_rc"] == 0 and result["changed"] is True and result["name"] == "/bakery/web-base/stable"
    assert seen["check_mode"] is True
    assert seen["ssm"] == {"us-west-2": "ssm-us-west-2", "eu-west-1": "ssm-eu-west-1"}
    assert seen["ec2"] == {"us-west-2": "ec2-us-west-2", "eu-west-1": "ec2-eu-west-1"}
    assert result["diff"] == {"before": {"us-west-2": None}, "after": {"us-west-2": A1}}


def test_no_diff_unless_asked_and_absent_makes_no_ec2_client(capsys):
    services = []

    def regional(module, service, regions):
        services.append(service)
        return fake_regional(module, service, regions)

    answer = {"changed": False, "name": "/bakery/web-base/stable", "channels": {}, "diff": {"before": {}, "after": {}}}
    with patch(REGIONAL, side_effect=regional), patch(RUN, return_value=answer):
        result = run_main(capsys, state="absent", allow_empty=True, regions=["eu-west-1"])
    assert result["_rc"] == 0 and "diff" not in result
    assert services == ["ssm"]


def test_a_core_failure_returns_its_plan(capsys):
    error = _channel.ChannelError("images: ami-0000000000000000a does not exist in us-east-1; nothing was changed",
                                  {"changed": False, "name": "/bakery/web-base/stable", "channels": {}, "diff": {}})
    with patch(REGIONAL, side_effect=fake_regional), patch(RUN, side_effect=error):
        result = run_main(capsys, images={"us-east-1": A1})
    assert result["_rc"] == 1 and result["msg"] == error.msg
    assert result["channels"] == {} and result["changed"] is False and "exception" not in result


def test_an_aws_error_is_reported(capsys):
    error = _aws.BakeryAWSError(message="Failed to get SSM parameter", exception=RuntimeError("boom"))
    with patch(REGIONAL, side_effect=fake_regional), patch(RUN, side_effect=error):
        result = run_main(capsys, images={"us-east-1": A1})
    assert result["_rc"] == 1 and "Failed to get SSM parameter" in result["msg"]
