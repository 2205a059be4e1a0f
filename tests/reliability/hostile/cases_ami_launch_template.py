# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_launch_template: names, IDs, images, regions, versions refused before any launch template
version is made, moved or deleted; a template that does not exist (anywhere, or in one region of
several) fails naming launch_template with nothing changed.

The account holds a launch template 'rel-hostile-web' in us-east-1 only, and an image ({image}).
"""
from __future__ import annotations

from tests.reliability.hostile.corpus import NOT_YAML, Case, refuse

MODULE = "ami_launch_template"
TEMPLATE = "rel-hostile-web"


def prepare(endpoint, work) -> dict:
    ec2 = endpoint.client("ec2", "us-east-1")
    stock = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName=TEMPLATE, LaunchTemplateData={"ImageId": stock})
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    image = ec2.register_image(
        Name="rel-hostile-lt-image", RootDeviceName="/dev/xvda", Architecture="x86_64", VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}])
    return {"image": image["ImageId"]}


def version(**extra) -> dict:
    return dict({"launch_template": TEMPLATE, "image_id": "{image}", "set_default": True}, **extra)


CASES = [
    # templates that do not exist: refused before any version is made
    Case("template-missing", version(launch_template="rel-hostile-nope"), refuse("launch_template")),
    Case("template-id-missing", version(launch_template="lt-0123456789abcdef0"), refuse("launch_template")),
    Case("template-missing-in-one-region", version(regions=["us-east-1", "eu-west-1"]), refuse("launch_template")),
    Case("template-missing-absent", {"launch_template": "rel-hostile-nope", "run_id": "run-000001", "state": "absent"},
         refuse("launch_template")),
    # bad names and IDs
    Case("template-empty", version(launch_template=""), refuse("launch_template")),
    Case("template-short", version(launch_template="ab"), refuse("launch_template")),
    Case("template-space", version(launch_template="web app"), refuse("launch_template")),
    Case("template-trailing-newline", version(launch_template=TEMPLATE + "\n"), refuse("launch_template")),
    Case("template-129", version(launch_template="w" * 129), refuse("launch_template")),
    Case("template-non-ascii", version(launch_template="wéb-template"), refuse("launch_template")),
    Case("template-wildcard", version(launch_template="rel-hostile-*"), refuse("launch_template")),
    # images and regions
    Case("image-malformed", version(image_id="ami-zz"), refuse("image_id")),
    Case("image-trailing-newline", version(image_id="{image}\n"), refuse("image_id")),
    Case("image-and-images", version(images={"us-east-1": "{image}"}), refuse("image_id")),
    Case("images-not-yaml", {"launch_template": TEMPLATE, "images": NOT_YAML}, refuse("images")),
    Case("images-unknown-region", {"launch_template": TEMPLATE, "images": {"moon-1": "{image}"}}, refuse("images")),
    Case("images-entry-bad-key", {"launch_template": TEMPLATE, "images": [{"region": "us-east-1", "image": "{image}"}]},
         refuse("images")),
    Case("region-trailing-newline", version(regions=["us-east-1\n"]), refuse("regions")),
    Case("region-twice", version(regions=["us-east-1", "us-east-1"]), refuse("regions")),
    # versions, descriptions, runs
    Case("source-version-word", version(source_version="latest"), refuse("source_version")),
    Case("source-version-zero", version(source_version="0"), refuse("source_version")),
    Case("source-version-missing", version(source_version="99"), refuse("source_version")),
    Case("description-101", version(description="d" * 101), refuse("description")),
    Case("description-newline", version(description="web\nbase"), refuse("description")),
    Case("run-id-wildcard", version(run_id="run-*"), refuse("run_id")),
    Case("absent-without-selection", {"launch_template": TEMPLATE, "state": "absent"}, refuse("state")),
    Case("nothing-to-launch", {"launch_template": TEMPLATE}, refuse("image_id")),
]
