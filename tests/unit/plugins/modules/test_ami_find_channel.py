# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_find's channel option: the channel is its SSM parameter, read in every region; bad names fail first."""
from __future__ import annotations

import pytest

from tests.unit.plugins.modules.test_ami_find import aws, run_main  # noqa: F401  pylint: disable=unused-import


def test_a_channel_resolves_through_its_parameter(aws, capsys):  # noqa: F811
    aws["parameters"] = {"/bakery/al/stable": "ami-00000001"}
    code, result = run_main(capsys, channel="al/stable", regions=["us-east-1", "eu-west-1"])
    assert code == 0, result
    assert result["channel"] == "/bakery/al/stable"
    assert result["image"]["image_id"] == "ami-00000001"
    assert result["images_by_region"]["eu-west-1"]["ssm_parameter_value"] == "ami-00000001"
    assert aws["ssm"]["us-east-1"].calls == ["/bakery/al/stable"] == aws["ssm"]["eu-west-1"].calls


def test_a_channel_under_another_prefix(aws, capsys):  # noqa: F811
    aws["parameters"] = {"/teams/x/al/latest": "ami-00000002"}
    code, result = run_main(capsys, channel={"prefix": "teams/x", "family": "al", "channel": "latest"})
    assert code == 0 and result["image"]["image_id"] == "ami-00000002"


def test_a_missing_channel_names_the_option(aws, capsys):  # noqa: F811
    code, result = run_main(capsys, channel="al/stable")
    assert code == 1
    assert result["msg"] == "channel: parameter /bakery/al/stable does not exist in us-east-1"
    assert all(not c.calls for c in aws["ec2"].values())


@pytest.mark.parametrize("channel,message", [
    ("../stable", "channel.family: '..' is not a family name"),
    ("al/Stable", "channel.channel: 'Stable' is not a channel name"),
    ("/al/stable", "channel: '/al/stable' is not 'family/channel'"),
    ({"prefix": "/x", "family": "al", "channel": "stable"}, "channel.prefix: '/x' is not a parameter path prefix"),
    ({"family": "al", "channel": "stable", "name": "x"}, "channel: unknown keys name"),
])
def test_bad_channels_fail_before_any_client(aws, capsys, channel, message):  # noqa: F811
    code, result = run_main(capsys, channel=channel)
    assert code == 1 and message in result["msg"]
    assert aws["made"] == []


def test_channel_and_ssm_parameter_exclude_each_other(aws, capsys):  # noqa: F811
    code, result = run_main(capsys, channel="al/stable", ssm_parameter="/x")
    assert code == 1 and "mutually exclusive" in result["msg"] and aws["made"] == []
