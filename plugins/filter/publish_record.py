# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: publish_record
author:
  - bakery.ami contributors (@bakery-ami)
version_added: 0.1.0
short_description: The publish role's result from what ami_create or ami_copy returned
description:
  - Folds the result of M(bakery.ami.ami_create) (a new image, with its copies) or of
    M(bakery.ami.ami_copy) (an adopted image copied to the other regions) into one record with the
    image in its own region, the image of every region, the copies without the image's own region, and
    the snapshots of every region whose snapshots are known.
  - The C(bakery.ami.publish) role sets C(publish_result) with it; the bake report reads that record.
options:
  _input:
    description: The registered result of the M(bakery.ami.ami_create) task (skipped when adopting).
    type: dict
    required: true
  adopted:
    description: The registered result of the M(bakery.ami.ami_copy) task of an adopted image (skipped when creating).
    type: dict
    default: {}
  region:
    description: The image's own region.
    type: str
    required: true
  image_id:
    description: The adopted image's ID; empty when the image was created.
    type: str
    default: ""
  pending_tags:
    description: The pending tags the modules were given (they take them off once everything is available).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Record the image and its copies
  ansible.builtin.set_fact:
    publish_result: >-
      {{ created | bakery.ami.publish_record(adopted=adopted, region='us-east-1',
                                              pending_tags={'bakery:expires-at': '2026-12-01T12:00:00Z'}) }}
"""

RETURN = r"""
_value:
  description: The record.
  type: dict
  contains:
    image_id:
      description: The image in its own region.
      type: str
    created:
      description: Whether this run made the image (not adopted from an earlier run).
      type: bool
    snapshot_ids:
      description: The snapshots of the image in its own region, when this run made or found them.
      type: list
      elements: str
    images:
      description: Region to image ID, the image's own region included.
      type: dict
    copies:
      description: The copies by region, as the modules return them, without the image's own region.
      type: dict
    snapshot_ids_by_region:
      description: Region to the snapshot IDs of its image, for the regions whose snapshots are known.
      type: dict
    pending_tags_removed:
      description: Whether the modules were given pending tags to take off (they do once all is available).
      type: bool
"""

from ansible.errors import AnsibleFilterError


def _ran(result) -> bool:
    """A registered result of a task that ran (a skipped task registers skipped: true)."""
    return isinstance(result, dict) and bool(result) and not result.get("skipped")


def publish_record(created, adopted=None, region="", image_id="", pending_tags=None) -> dict:
    if not region:
        raise AnsibleFilterError("publish_record: region is required")
    made = _ran(created)
    if made:
        image_id = created.get("image_id") or ""
        copy_result = created.get("copies") or {}
    else:
        copy_result = adopted if _ran(adopted) else {}
    if not image_id:
        raise AnsibleFilterError("publish_record: neither a created image nor the ID of an adopted one")
    copies = {name: copy for name, copy in (copy_result.get("images") or {}).items() if name != region}
    images = {region: image_id}
    images.update({name: copy.get("image_id") for name, copy in copies.items()})
    snapshots = {region: list(created["snapshot_ids"])} if made and "snapshot_ids" in created else {}
    snapshots.update({name: list(copy["snapshot_ids"]) for name, copy in copies.items() if "snapshot_ids" in copy})
    return {
        "image_id": image_id,
        "created": made and bool(created.get("changed")) and not created.get("adopted"),
        "snapshot_ids": list(created.get("snapshot_ids") or []) if made else [],
        "images": images,
        "copies": copies,
        "snapshot_ids_by_region": snapshots,
        "pending_tags_removed": bool(pending_tags),
    }


class FilterModule:
    def filters(self):
        return {"publish_record": publish_record}
