# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_create: names, IDs, tags and times that must be refused before CreateImage or RegisterImage.

The account holds a running instance ({instance}) and a completed snapshot ({snapshot}). Every case
has its own image name, so an input accepted by mistake does not change what the next case sees.
"""
from __future__ import annotations

from tests.reliability.hostile.corpus import HUGE, NOT_YAML, Case, many_tags, refuse

MODULE = "ami_create"
IMAGE = "ami-0f175555209074f2e"  # Debian 12 in the local catalog


def prepare(endpoint, work) -> dict:
    ec2 = endpoint.client("ec2", "us-east-1")
    instance = ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    return {"instance": instance, "snapshot": snapshot}


def create(name: str, **extra) -> dict:
    return dict({"instance_id": "{instance}", "name": "rel-hostile-%s" % name, "wait": False}, **extra)


def copying(image: str, **copy) -> dict:
    return dict({"instance_id": "{instance}", "name": "rel-hostile-%s" % image},
                copy=dict({"regions": ["us-west-2"]}, **copy))


CASES = [
    # careless input
    Case("name-empty", {"instance_id": "{instance}", "name": ""}, refuse("name")),
    Case("name-too-short", {"instance_id": "{instance}", "name": "ab"}, refuse("name")),
    Case("name-bad-chars", {"instance_id": "{instance}", "name": "bad*name|x"}, refuse("name")),
    Case("name-huge", {"instance_id": "{instance}", "name": HUGE}, refuse("name")),
    Case("instance-id-malformed", {"instance_id": "i-xyz", "name": "rel-hostile-1"}, refuse("instance_id")),
    Case("instance-id-wrong-type", {"instance_id": 12345, "name": "rel-hostile-2"}, refuse("instance_id")),
    Case("snapshot-id-traversal", {"snapshot_id": "snap-../../x", "name": "rel-hostile-3", "architecture": "x86_64"},
         refuse("snapshot_id")),
    Case("tags-not-yaml", create("tags-yaml", tags=NOT_YAML), refuse("tags")),
    Case("deprecate-at-not-a-time", create("deprecate-soonish", deprecate_at="soonish"), refuse("deprecate_at")),
    Case("wait-timeout-wrong-type", create("wait-type", wait_timeout="forever"), refuse("wait_timeout")),
    Case("wait-timeout-negative", create("wait-negative", wait_timeout=-5), refuse("wait_timeout")),
    Case("volume-size-huge", create("volume", block_device_mappings=[{"device_name": "/dev/xvda", "volume_size": 10 ** 9}]),
         refuse("volume_size")),
    Case("copy-region-unknown", copying("copy-moon", regions=["moon-1"]), refuse("copy.regions")),
    Case("copy-regions-wrong-type", copying("copy-type", regions="us-west-2 x"), refuse("regions")),
    Case("copy-pending-tags-not-yaml", copying("copy-pending", pending_tags=NOT_YAML), refuse("pending_tags")),
    # names and IDs with a trailing newline or look-alikes (issue 17, item 10: CreateImage ran with "name\n")
    Case("name-trailing-newline", create("newline\n"), refuse("name"), item=10),
    Case("name-unicode-hyphen", create("unicode\u2010hyphen"), refuse("name")),
    Case("name-arabic-indic-digit", create("digit-٣"), refuse("name"), item=12),
    Case("name-129", create("x" * 117), refuse("name")),
    Case("instance-id-trailing-newline", create("instance-newline", instance_id="{instance}\n"), refuse("instance_id"),
         item=10),
    Case("snapshot-id-trailing-newline", {"snapshot_id": "{snapshot}\n", "name": "rel-hostile-snapshot-newline",
                                          "wait": False}, refuse("snapshot_id"), item=10),
    Case("copy-name-trailing-newline", copying("copy-name", name="rel-hostile-copy\n"), refuse("name"), item=10),
    Case("copy-region-trailing-newline", copying("copy-region", regions=["us-west-2\n"]), refuse("regions"), item=10),
    Case("copy-user-id-trailing-newline", copying("copy-user", launch_permissions={"user_ids": ["210987654321\n"]}),
         refuse("user_ids"), item=10),
    Case("copy-user-id-fullwidth", copying("copy-user-fw", launch_permissions={"user_ids": ["２１０９８７６５４３２１"]}),
         refuse("user_ids"), item=12),
    # tags: 50 per resource counting every source, checked before CreateImage (issue 17, item 11)
    Case("tags-51", create("tags-51", tags=many_tags(51)), refuse("tags"), item=11),
    Case("tags-50-plus-build-id", create("tags-50", tags=many_tags(50), build_id="b-1"), refuse("tags"), item=11),
    Case("snapshot-tags-51", create("snapshot-tags", snapshot_tags=many_tags(51)), refuse("snapshot_tags"), item=11),
    Case("tags-aws-prefix", create("tags-aws", tags={"aws:createdBy": "me"}), refuse("tags"), item=11),
    Case("tags-key-129", create("tags-key", tags={"k" * 129: "v"}), refuse("tags"), item=11),
    Case("tags-value-257", create("tags-value", tags={"team": "v" * 257}), refuse("tags"), item=11),
    Case("copy-tags-plus-pending-51", copying("copy-tags", tags=many_tags(30), pending_tags=many_tags(21, "pending")),
         refuse("tags"), item=11),
    # times that lie in the past (issue 17, item 13)
    Case("deprecate-at-past", create("deprecate-past", deprecate_at="2001-01-01T00:00:00Z"), refuse("deprecate_at"),
         item=13),
    Case("copy-deprecate-at-past", copying("copy-deprecate", deprecate_at="2001-01-01T00:00:00Z"),
         refuse("deprecate_at"), item=13),
    Case("description-256", create("description", description="d" * 256), refuse("description")),
]
