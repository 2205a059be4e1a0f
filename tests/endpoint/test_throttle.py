# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Request-rate throttling: EC2's token buckets per region and action, RequestLimitExceeded when empty."""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tools.local_aws import throttle
from tools.local_aws.control import LocalAwsError


def _served(call, times):
    """How many of `times` calls were served before the first RequestLimitExceeded (None: all)."""
    for attempt in range(times):
        try:
            call()
        except ClientError as error:
            assert error.response["Error"]["Code"] == "RequestLimitExceeded"
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            return attempt
    return None


def test_off_by_default(aws, ec2):
    assert aws.config()["throttle"] is False
    assert _served(ec2.describe_regions, 150) is None
    assert aws.throttled() == {}


def test_documented_bucket_sizes():
    assert throttle.bucket_of("DescribeImages", {"Owner.1": ["self"]})[1] == (100.0, 20.0)
    assert throttle.bucket_of("DescribeInstances", {}) == ("DescribeInstances (unfiltered)", (50.0, 10.0))
    assert throttle.bucket_of("DescribeInstances", {"Filter.1.Name": ["image-id"]})[1] == (100.0, 20.0)
    assert throttle.bucket_of("DescribeSnapshots", {"MaxResults": ["5"]})[1] == (100.0, 20.0)
    assert throttle.bucket_of("EnableImage", {})[1] == (50.0, 5.0)
    assert throttle.bucket_of("CreateKeyPair", {})[1] == (50.0, 5.0)
    assert throttle.bucket_of("CopyImage", {})[1] == (100.0, 1.0)
    assert throttle.bucket_of("DeregisterImage", {})[1] == (100.0, 5.0)
    assert throttle.bucket_of("EnableImageBlockPublicAccess", {})[1] == (1.0, 0.1)


def _image(ec2):
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    return ec2.register_image(Name="throttled", RootDeviceName="/dev/xvda", VirtualizationType="hvm",
                              BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}])["ImageId"]


def _within(call, times, capacity, refill):
    """Calls until refused; asserts the count is the capacity plus at most what refilled meanwhile."""
    started = time.monotonic()
    served = _served(call, times)
    elapsed = time.monotonic() - started
    assert served is not None and capacity <= served <= capacity + int(refill * elapsed) + 1, (served, elapsed)
    return served


def test_the_documented_buckets_serve_their_capacity_then_refuse(aws, ec2):
    image_id = _image(ec2)
    aws.configure(throttle=True)
    _within(lambda: ec2.enable_image(ImageId=image_id), 120, 50, 5)  # a mutating action: 50, 5 per second
    _within(ec2.describe_volumes, 120, 50, 10)  # unfiltered DescribeVolumes: the smaller bucket
    # with a filter, DescribeVolumes takes from the standard bucket, still full
    ec2.describe_volumes(Filters=[{"Name": "status", "Values": ["available"]}])
    assert aws.throttled() == {"EnableImage": 1, "DescribeVolumes": 1}


def test_buckets_per_action_and_region_refill_at_their_rate(aws, ec2, ec2_west):
    aws.configure(throttle=True, throttle_rates={"DescribeRegions": [2, 0], "DescribeAvailabilityZones": [1, 1]})
    assert _served(ec2.describe_regions, 5) == 2
    assert _served(ec2_west.describe_regions, 5) == 2  # another region has its own bucket
    ec2.describe_availability_zones()  # another action is not affected
    assert _served(ec2.describe_availability_zones, 2) == 0  # one token, one per second
    time.sleep(1.05)
    assert _served(ec2.describe_availability_zones, 2) == 1
    assert aws.throttled() == {"DescribeRegions": 2, "DescribeAvailabilityZones": 2}
    # throttled requests are not served, nor counted as served
    assert aws.counts()["DescribeRegions"] == 4 and aws.counts()["DescribeAvailabilityZones"] == 2


def test_configuration_refills_and_validates(aws, ec2):
    aws.configure(throttle=True, throttle_rates={"DescribeRegions": [1, 0]})
    assert _served(ec2.describe_regions, 3) == 1
    aws.configure(throttle=True)  # any configuration change refills every bucket
    assert _served(ec2.describe_regions, 3) == 1
    aws.reset()  # so does a reset, which also turns throttling off
    assert _served(ec2.describe_regions, 3) is None
    for bad, message in (({"DescribeRegions": [0, 1]}, "capacity: must be at least 1"),
                         ({"DescribeRegions": [1]}, "must be \\[capacity, refill per second\\]"),
                         ([1, 2], "must be an object")):
        with pytest.raises(LocalAwsError, match=message):
            aws.configure(throttle_rates=bad)
    with pytest.raises(LocalAwsError, match="throttle: must be true or false"):
        aws.configure(throttle="yes")


def test_bucket_with_a_fake_clock():
    now = [0.0]
    bucket = throttle.Throttle(clock=lambda: now[0])
    from tools.local_aws.state import STATE

    STATE.configure({"throttle": True, "throttle_rates": {"DescribeImages": [2, 1]}})
    try:
        assert [bucket.take("DescribeImages", "r", {}) for _take in range(3)] == [True, True, False]
        now[0] = 0.5
        assert bucket.take("DescribeImages", "r", {}) is False  # half a token
        now[0] = 1.0
        assert bucket.take("DescribeImages", "r", {}) is True
        now[0] = 100.0  # never more than the capacity
        assert [bucket.take("DescribeImages", "r", {}) for _take in range(3)] == [True, True, False]
        assert bucket.throttled() == {"DescribeImages": 3}
    finally:
        STATE.reset()
