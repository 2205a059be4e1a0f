# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Control API: counts, counts reset, configuration, full reset."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tools.local_aws.control import LocalAws, LocalAwsError


def test_counts_every_action_across_services(aws, ec2):
    ec2.describe_images(Owners=["self"])
    ec2.describe_images(Owners=["self"])
    ec2.describe_regions()
    aws.client("ssm", "eu-west-1").get_parameters_by_path(Path="/none")
    assert aws.counts() == {"DescribeImages": 2, "DescribeRegions": 1, "GetParametersByPath": 1}
    aws.reset_counts()
    assert aws.counts() == {}
    ec2.describe_images(Owners=["self"])
    assert aws.counts() == {"DescribeImages": 1}


def test_counts_route_shape(aws, ec2):
    ec2.describe_regions()
    with urllib.request.urlopen(aws.url + "/_bakery/counts") as response:
        assert json.loads(response.read()) == {"counts": {"DescribeRegions": 1}, "faults": {}}


def test_config_roundtrip_and_validation(aws):
    config = aws.configure(create_delay=20, copy_delay=30, fault_actions=["CopyImage"])
    assert (config["create_delay"], config["copy_delay"], config["fault_actions"]) == (20.0, 30.0, ["CopyImage"])
    assert aws.config() == config
    with pytest.raises(LocalAwsError, match="fault_rate: must be between 0 and 1"):
        aws.configure(fault_rate=2)
    with pytest.raises(LocalAwsError, match="bogus: unknown setting"):
        aws.configure(bogus=1)
    assert aws.config() == config


def test_reset_clears_moto_state_counts_and_config(aws, ec2):
    aws.configure(create_delay=5)
    volume_id = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    assert [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]] == [volume_id]
    aws.reset()
    assert aws.counts() == {}
    assert aws.config()["create_delay"] == 0.0
    assert ec2.describe_volumes()["Volumes"] == []


def test_connect_to_running_endpoint(aws):
    other = LocalAws.connect(aws.url + "/")
    assert other.url == aws.url
    assert other.config() == aws.config()


def test_unknown_control_route_is_404(aws):
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(aws.url + "/_bakery/nope")
    assert excinfo.value.code == 404
