# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pending timelines of images and instances, computed from timestamps."""
from __future__ import annotations

import time

from endpoint_helpers import launch


def _state(ec2, image_id):
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"]


def _instance_state(ec2, instance_id):
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]


def test_image_timelines(aws, ec2, ec2_west):
    instance_id = launch(ec2)
    aws.configure(create_delay=1.5, copy_delay=1.5, register_delay=1.5)
    created = ec2.create_image(InstanceId=instance_id, Name="timeline-create")["ImageId"]
    registered = ec2.register_image(Name="timeline-register", RootDeviceName="/dev/xvda")["ImageId"]
    assert _state(ec2, created) == "pending"
    assert _state(ec2, registered) == "pending"
    assert ec2.describe_images(Owners=["self"], Filters=[{"Name": "state", "Values": ["pending"]}])["Images"]
    time.sleep(1.7)
    assert _state(ec2, created) == "available"
    assert _state(ec2, registered) == "available"
    copied = ec2_west.copy_image(SourceImageId=created, SourceRegion="us-east-1", Name="timeline-copy")["ImageId"]
    assert _state(ec2_west, copied) == "pending"
    time.sleep(1.7)
    assert _state(ec2_west, copied) == "available"


def test_no_delay_by_default(ec2):
    created = ec2.create_image(InstanceId=launch(ec2), Name="no-delay")["ImageId"]
    assert _state(ec2, created) == "available"


def test_instance_timelines(aws, ec2):
    aws.configure(instance_start_delay=1.0, instance_stop_delay=1.0)
    instance_id = launch(ec2)
    assert _instance_state(ec2, instance_id) == {"Code": 0, "Name": "pending"}
    time.sleep(1.2)
    assert _instance_state(ec2, instance_id) == {"Code": 16, "Name": "running"}
    stopping = ec2.stop_instances(InstanceIds=[instance_id])["StoppingInstances"][0]
    assert stopping["CurrentState"]["Name"] == "stopping"
    assert _instance_state(ec2, instance_id) == {"Code": 64, "Name": "stopping"}
    time.sleep(1.2)
    assert _instance_state(ec2, instance_id) == {"Code": 80, "Name": "stopped"}
    ec2.start_instances(InstanceIds=[instance_id])
    assert _instance_state(ec2, instance_id)["Name"] == "pending"
    time.sleep(1.2)
    assert _instance_state(ec2, instance_id)["Name"] == "running"
    ec2.terminate_instances(InstanceIds=[instance_id])
    assert _instance_state(ec2, instance_id) == {"Code": 32, "Name": "shutting-down"}
    time.sleep(1.2)
    assert _instance_state(ec2, instance_id) == {"Code": 48, "Name": "terminated"}
