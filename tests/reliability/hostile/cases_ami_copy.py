# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_copy: names, regions, permissions, tags and times refused before any CopyImage.

The account holds an available image ({image}) with ten tags, which copies take along
(copy_tags), so they count towards the 50 tags of each copy.
"""
from __future__ import annotations

from tests.reliability.hostile.corpus import NOT_YAML, Case, many_tags, refuse

MODULE = "ami_copy"


def prepare(endpoint, work) -> dict:
    ec2 = endpoint.client("ec2", "us-east-1")
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    image = ec2.register_image(
        Name="rel-hostile-source", RootDeviceName="/dev/xvda", Architecture="x86_64", VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}],
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": k, "Value": v}
                                                              for k, v in many_tags(10, "source").items()]}])
    return {"image": image["ImageId"]}


def copy(**extra) -> dict:
    return dict({"source_image_id": "{image}", "regions": ["us-west-2"]}, **extra)


ORG = "arn:aws:organizations::123456789012:organization/o-abcdefghij"

CASES = [
    # careless input
    Case("source-empty", copy(source_image_id=""), refuse("source_image_id")),
    Case("source-malformed", copy(source_image_id="ami-zz"), refuse("source_image_id")),
    Case("regions-empty", copy(regions=[]), refuse("regions")),
    Case("region-unknown", copy(regions=["moon-1"]), refuse("regions")),
    Case("region-entry-bad-key", copy(regions=[{"region": "us-west-2", "bogus": 1}]), refuse("regions")),
    Case("source-region-unknown", copy(source_region="moon-1"), refuse("source_region")),
    Case("kms-key-malformed", copy(encrypted=True, kms_key_id="not a key"), refuse("kms_key_id")),
    Case("deprecate-at-not-a-time", copy(deprecate_at="yesterday"), refuse("deprecate_at")),
    Case("concurrency-zero", copy(max_concurrency=0), refuse("max_concurrency")),
    Case("wait-timeout-wrong-type", copy(wait_timeout="x"), refuse("wait_timeout")),
    Case("name-bad-chars", copy(name="bad|name*"), refuse("name")),
    Case("user-id-malformed", copy(launch_permissions={"user_ids": ["12"]}), refuse("user_ids")),
    Case("tags-not-yaml", copy(tags=NOT_YAML), refuse("tags")),
    # trailing newlines and non-ASCII digits (issue 17, items 10 and 12: CopyImage ran with "name\n")
    Case("name-trailing-newline", copy(name="rel-hostile-copy\n"), refuse("name"), item=10),
    Case("region-trailing-newline", copy(regions=["us-west-2\n"]), refuse("regions"), item=10),
    Case("region-arabic-indic-digit", copy(regions=["us-west-٢"]), refuse("regions"), item=12),
    Case("region-entry-name-newline", copy(regions=[{"region": "us-west-2", "name": "rel-hostile-entry\n"}]),
         refuse("name"), item=10),
    Case("source-id-trailing-newline", copy(source_image_id="{image}\n"), refuse("source_image_id"), item=10),
    Case("source-region-trailing-newline", copy(source_region="us-east-1\n"), refuse("source_region"), item=10),
    Case("user-id-trailing-newline", copy(launch_permissions={"user_ids": ["210987654321\n"]}), refuse("user_ids"),
         item=10),
    Case("user-id-fullwidth-digits", copy(launch_permissions={"user_ids": ["２１０９８７６５４３２１"]}), refuse("user_ids"),
         item=12),
    Case("org-arn-trailing-newline", copy(launch_permissions={"org_arns": [ORG + "\n"]}), refuse("org_arns"), item=10),
    Case("group-name-trailing-newline", copy(launch_permissions={"group_names": ["all\n"]}), refuse("group_names"),
         item=10),
    Case("kms-alias-trailing-newline", copy(encrypted=True, kms_key_id="alias/bakery\n"), refuse("kms_key_id"),
         item=10),
    # tags: 50 per copy counting every source, before any CopyImage (issue 17, item 11)
    Case("tags-51", copy(tags=many_tags(51)), refuse("tags"), item=11),
    Case("tags-39-plus-source-and-module-tags", copy(tags=many_tags(39)), refuse("tags"), item=11),
    Case("tags-plus-pending-51", copy(tags=many_tags(20), pending_tags=many_tags(19, "pending")), refuse("tags"),
         item=11),
    Case("tags-aws-prefix", copy(tags={"aws:copied-by": "me"}), refuse("tags"), item=11),
    Case("tags-module-owned", copy(tags={"bakery:source-image": "us-east-1/ami-0123456789abcdef0"}), refuse("tags")),
    Case("pending-tags-value-257", copy(pending_tags={"bakery:expires-at": "v" * 257}), refuse("pending_tags"),
         item=11),
    # times in the past (issue 17, item 13)
    Case("deprecate-at-past", copy(deprecate_at="2001-01-01T00:00:00Z"), refuse("deprecate_at"), item=13),
    Case("description-256", copy(description="d" * 256), refuse("description")),
    # deregistration protection (issue 20): the cooldown belongs to a protection, and both are booleans
    Case("protect-cooldown-without-protect", copy(protect_cooldown=True), refuse("protect_cooldown")),
    Case("protect-cooldown-with-protect-false", copy(protect=False, protect_cooldown=True), refuse("protect_cooldown")),
    Case("protect-cooldown-hours", copy(protect=True, protect_cooldown="24h"), refuse("protect_cooldown")),
    Case("protect-cooldown-number", copy(protect=True, protect_cooldown=86400), refuse("protect_cooldown")),
    Case("protect-not-a-bool", copy(protect="always"), refuse("protect")),
]
