# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small helpers shared by the endpoint tests."""
from __future__ import annotations


def launch(ec2_client):
    """Start one instance from a moto stock image; return its id."""
    image_id = ec2_client.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    reservation = ec2_client.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    return reservation["Instances"][0]["InstanceId"]


def tags_of(resource):
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]
