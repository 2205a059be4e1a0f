# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Small readers of EC2 descriptions (images, snapshots, tags) that the modules share, and the
# tag specifications they send.

from __future__ import annotations


def tags_of(resource: dict) -> dict:
    """An EC2 resource's tags (image, snapshot, instance, security group...) as a plain dict."""
    return {tag["Key"]: tag.get("Value", "") for tag in resource.get("Tags") or []}


def tag_list(tags: dict) -> list:
    """A dict of tags as EC2's Key/Value list, sorted by key."""
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def tag_spec(resource_type: str, tags: dict) -> dict:
    """A TagSpecifications entry: the resource gets its tags in the call that makes it."""
    return {"ResourceType": resource_type, "Tags": tag_list(tags)}


def snapshot_ids(image: dict) -> list:
    """The EBS snapshots behind an image, in block-device order, without repeats."""
    ids = []
    for mapping in image.get("BlockDeviceMappings") or []:
        snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
        if snapshot_id and snapshot_id not in ids:
            ids.append(snapshot_id)
    return ids
