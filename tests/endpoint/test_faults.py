# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seeded fault mode: failing calls do not take effect, and the sequence repeats for a seed."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from endpoint_helpers import launch

STATUS = {"RequestLimitExceeded": 503, "InternalError": 500}


def test_fault_rate_one_fails_every_listed_call(aws, ec2, ec2_west):
    source = ec2.create_image(InstanceId=launch(ec2), Name="fault-src")["ImageId"]
    aws.configure(fault_rate=1.0, fault_seed=3, fault_actions=["CopyImage"])
    seen = set()
    for attempt in range(6):
        with pytest.raises(ClientError) as excinfo:
            ec2_west.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name=f"fault-copy-{attempt}")
        code = excinfo.value.response["Error"]["Code"]
        assert code in STATUS
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == STATUS[code]
        seen.add(code)
    assert seen == set(STATUS)  # both kinds occur over six draws with this seed
    # nothing was copied, other actions are served, and the books say so
    assert ec2_west.describe_images(Owners=["self"])["Images"] == []
    assert aws.faults() == {"CopyImage": 6}
    assert "CopyImage" not in aws.counts()
    assert aws.counts()["DescribeImages"] >= 1


def test_fault_codes_restrict_the_error(aws, ec2):
    aws.configure(fault_rate=1.0, fault_codes=["RequestLimitExceeded"], fault_actions=["DescribeImages"])
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_images(Owners=["self"])
    assert excinfo.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def _outcomes(aws, ec2):
    aws.configure(fault_rate=0.3, fault_seed=42, fault_actions=[])
    results = []
    for _attempt in range(30):
        try:
            ec2.describe_images(Owners=["self"])
            results.append("ok")
        except ClientError as error:
            results.append(error.response["Error"]["Code"])
    return results


def test_fault_sequence_is_deterministic(aws, ec2):
    first = _outcomes(aws, ec2)
    second = _outcomes(aws, ec2)
    assert first == second
    failures = [r for r in first if r != "ok"]
    assert 3 <= len(failures) <= 18
    assert aws.faults()["DescribeImages"] == 2 * len(failures)
    assert aws.counts()["DescribeImages"] == 2 * (30 - len(failures))


def test_non_ec2_and_control_are_not_faulted(aws):
    aws.configure(fault_rate=1.0)
    ssm = aws.client("ssm", "us-east-1")
    ssm.put_parameter(Name="/bakery/test", Value="x", Type="String")
    assert ssm.get_parameter(Name="/bakery/test")["Parameter"]["Value"] == "x"
    assert aws.config()["fault_rate"] == 1.0
    assert aws.counts() == {"PutParameter": 1, "GetParameter": 1}
    assert aws.faults() == {}


def test_fault_after_serving_loses_the_answer_but_the_action_took_effect(aws, ec2):
    instance = launch(ec2)
    aws.configure(fault_rate=1.0, fault_seed=5, fault_actions=["CreateImage"], fault_timing="after")
    with pytest.raises(ClientError) as excinfo:
        ec2.create_image(InstanceId=instance, Name="served-then-lost")
    assert excinfo.value.response["Error"]["Code"] in STATUS
    aws.configure(fault_rate=0.0, fault_timing="before")
    # The image exists although the caller saw an error: a retry now meets a duplicate name.
    names = [image["Name"] for image in ec2.describe_images(Owners=["self"])["Images"]]
    assert names == ["served-then-lost"]
    with pytest.raises(ClientError) as excinfo:
        ec2.create_image(InstanceId=instance, Name="served-then-lost")
    assert excinfo.value.response["Error"]["Code"] == "InvalidAMIName.Duplicate"
    assert aws.counts()["CreateImage"] == 2 and aws.faults() == {"CreateImage": 1}


def test_fault_timing_rejects_unknown_values(aws):
    with pytest.raises(Exception, match="fault_timing"):
        aws.configure(fault_timing="during")


def test_fault_limit_loses_exactly_the_first_answer_and_serves_the_retries(aws, ec2):
    aws.configure(fault_rate=1.0, fault_actions=["CreateSecurityGroup"], fault_timing="after", fault_limit=1)
    with pytest.raises(ClientError) as excinfo:
        ec2.create_security_group(GroupName="lost-once", Description="first answer lost")
    assert excinfo.value.response["Error"]["Code"] in STATUS
    # the first request was served: the retry meets what it made, and is answered
    with pytest.raises(ClientError) as excinfo:
        ec2.create_security_group(GroupName="lost-once", Description="first answer lost")
    assert excinfo.value.response["Error"]["Code"] == "InvalidGroup.Duplicate"
    ec2.create_security_group(GroupName="served", Description="later requests are served")
    names = sorted(g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default")
    assert names == ["lost-once", "served"]
    assert aws.faults() == {"CreateSecurityGroup": 1}
    assert aws.counts()["CreateSecurityGroup"] == 3


def test_fault_limit_restarts_with_each_configuration_and_zero_injects_none(aws, ec2):
    aws.configure(fault_rate=1.0, fault_actions=["DescribeImages"], fault_limit=2)
    outcomes = []
    for _attempt in range(4):
        try:
            ec2.describe_images(Owners=["self"])
            outcomes.append("ok")
        except ClientError:
            outcomes.append("fault")
    assert outcomes == ["fault", "fault", "ok", "ok"]
    aws.configure(fault_limit=1)  # a new configuration: one more fault
    with pytest.raises(ClientError):
        ec2.describe_images(Owners=["self"])
    ec2.describe_images(Owners=["self"])
    aws.configure(fault_limit=0)
    ec2.describe_images(Owners=["self"])
    assert aws.faults() == {"DescribeImages": 3}
    aws.configure(fault_limit=None)  # no limit again
    with pytest.raises(ClientError):
        ec2.describe_images(Owners=["self"])


@pytest.mark.parametrize("value", [-1, 1.5, "2", True])
def test_fault_limit_rejects_what_is_not_a_count(aws, value):
    with pytest.raises(Exception, match="fault_limit"):
        aws.configure(fault_limit=value)
