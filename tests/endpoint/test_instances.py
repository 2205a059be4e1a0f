# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RunInstances with a ClientToken is idempotent, so a retry after a lost answer launches nothing new."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from endpoint_helpers import error_code
from tools.local_aws.control import LocalAwsError


def _image(ec2):
    return ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]


def _launch_with_interface(ec2):
    """An instance whose network interface goes with it (as ami_builder launches with associate_public_ip)."""
    return ec2.run_instances(ImageId=_image(ec2), MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "AssociatePublicIpAddress": True, "DeleteOnTermination": True}])["Instances"][0]["InstanceId"]


def _live(ec2):
    return sorted(i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                  if i["State"]["Name"] != "terminated")


def test_same_token_same_parameters_answers_the_first_launch(ec2):
    params = dict(ImageId=_image(ec2), MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="bakery-token-1",
                  TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "k", "Value": "v"}]}])
    first = ec2.run_instances(**params)
    again = ec2.run_instances(**params)
    assert [i["InstanceId"] for i in again["Instances"]] == [i["InstanceId"] for i in first["Instances"]]
    assert again["ReservationId"] == first["ReservationId"]
    assert _live(ec2) == [first["Instances"][0]["InstanceId"]]
    # a terminated instance is still the token's answer, as in EC2
    ec2.terminate_instances(InstanceIds=[first["Instances"][0]["InstanceId"]])
    assert ec2.run_instances(**params)["Instances"][0]["InstanceId"] == first["Instances"][0]["InstanceId"]


def test_same_token_other_parameters_is_a_mismatch_and_launches_nothing(ec2):
    image = _image(ec2)
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", ClientToken="bakery-token-2")
    with pytest.raises(ClientError) as excinfo:
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.large", ClientToken="bakery-token-2")
    assert error_code(excinfo) == "IdempotentParameterMismatch"
    assert len(_live(ec2)) == 1


def test_without_or_with_other_tokens_each_call_launches(ec2, ec2_west):
    image = _image(ec2)
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken="bakery-token-3")
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken="bakery-token-4")
    assert len(_live(ec2)) == 4
    # tokens are per region
    west_image = _image(ec2_west)
    ec2_west.run_instances(ImageId=west_image, MinCount=1, MaxCount=1, ClientToken="bakery-token-3")
    assert len(_live(ec2_west)) == 1


def test_a_lost_answer_then_the_retry_makes_one_instance(aws, ec2):
    params = dict(ImageId=_image(ec2), MinCount=1, MaxCount=1, ClientToken="bakery-token-5")
    aws.configure(fault_rate=1.0, fault_actions=["RunInstances"], fault_timing="after", fault_limit=1)
    with pytest.raises(ClientError):
        ec2.run_instances(**params)
    retry = ec2.run_instances(**params)
    assert _live(ec2) == [retry["Instances"][0]["InstanceId"]]
    assert aws.faults() == {"RunInstances": 1} and aws.counts()["RunInstances"] == 2


@pytest.mark.parametrize("stop_delay", [0, 30])
def test_terminating_again_is_answered_and_changes_nothing(aws, ec2, stop_delay):
    aws.configure(instance_stop_delay=stop_delay)
    instance = _launch_with_interface(ec2)
    ec2.terminate_instances(InstanceIds=[instance])
    again = ec2.terminate_instances(InstanceIds=[instance])["TerminatingInstances"][0]
    assert again["InstanceId"] == instance
    state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == ("terminated" if stop_delay == 0 else "shutting-down")


def test_a_lost_terminate_answer_then_the_retry_succeeds(aws, ec2):
    instance = _launch_with_interface(ec2)
    aws.configure(fault_rate=1.0, fault_actions=["TerminateInstances"], fault_timing="after", fault_limit=1)
    with pytest.raises(ClientError):
        ec2.terminate_instances(InstanceIds=[instance])
    ec2.terminate_instances(InstanceIds=[instance])
    assert _live(ec2) == []


# ---------------------------------------------------------------------------------------------
# instance_type_refusals: RunInstances refused for given instance types (capacity, offerings, quotas)


@pytest.mark.parametrize("code,status", [("InsufficientInstanceCapacity", 500), ("Unsupported", 400),
                                         ("InstanceLimitExceeded", 400), ("VcpuLimitExceeded", 400)])
def test_a_refused_instance_type_is_answered_with_its_code_and_launches_nothing(aws, ec2, code, status):
    aws.configure(instance_type_refusals={"m7i.large": code})
    aws.reset_counts()
    params = dict(ImageId=_image(ec2), MinCount=1, MaxCount=1, ClientToken="bakery-refused-1")
    with pytest.raises(ClientError) as excinfo:
        ec2.run_instances(InstanceType="m7i.large", **params)
    assert error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert "m7i.large" in excinfo.value.response["Error"]["Message"]
    assert _live(ec2) == []
    assert aws.counts()["RunInstances"] == 1
    # another type launches, and a refused request's token holds nothing: the same token with another type
    # is a new launch, not IdempotentParameterMismatch
    launched = ec2.run_instances(InstanceType="m6i.large", **params)["Instances"][0]
    assert launched["InstanceType"] == "m6i.large" and _live(ec2) == [launched["InstanceId"]]


def test_refusals_are_settings_checked_and_cleared_by_reset(aws, ec2):
    with pytest.raises(LocalAwsError, match="instance_type_refusals: m7i.large: the error code must be one of"):
        aws.configure(instance_type_refusals={"m7i.large": "InternalError"})
    with pytest.raises(LocalAwsError, match="instance_type_refusals: must be an object"):
        aws.configure(instance_type_refusals=["m7i.large"])
    assert aws.configure(instance_type_refusals={"t3.micro": "Unsupported"})["instance_type_refusals"] == {
        "t3.micro": "Unsupported"}
    with pytest.raises(ClientError):
        ec2.run_instances(ImageId=_image(ec2), MinCount=1, MaxCount=1, InstanceType="t3.micro")
    # without InstanceType EC2 launches its default type, m1.small, which is not refused here
    assert ec2.run_instances(ImageId=_image(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceType"] == "m1.small"
    aws.reset()
    assert aws.config()["instance_type_refusals"] == {}
    assert ec2.run_instances(ImageId=_image(ec2), MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"]
