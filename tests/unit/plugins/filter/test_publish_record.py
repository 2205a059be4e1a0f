"""bakery.ami.publish_record: the publish role's result from ami_create's or ami_copy's."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.bakery.ami.plugins.filter.publish_record import publish_record

SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
COPIES = {
    "us-west-2": {"image_id": "ami-west", "state": "available", "snapshot_ids": ["snap-west"]},
    "eu-west-1": {"image_id": "ami-eu", "state": "predicted"},  # check mode: no snapshots yet
}


def test_a_created_image_with_copies():
    created = {"changed": True, "image_id": "ami-east", "snapshot_ids": ["snap-east"], "copies": {"images": COPIES}}

    record = publish_record(created, SKIPPED, "us-east-1", "", {"bakery:expires-at": "2026-12-06T12:00:00Z"})

    assert record == {
        "image_id": "ami-east",
        "created": True,
        "snapshot_ids": ["snap-east"],
        "images": {"us-east-1": "ami-east", "us-west-2": "ami-west", "eu-west-1": "ami-eu"},
        "copies": COPIES,
        "snapshot_ids_by_region": {"us-east-1": ["snap-east"], "us-west-2": ["snap-west"]},
        "pending_tags_removed": True,
    }


def test_an_image_found_again_is_not_reported_created():
    created = {"changed": True, "adopted": True, "image_id": "ami-east", "snapshot_ids": ["snap-east"]}

    record = publish_record(created, SKIPPED, "us-east-1")

    assert record["created"] is False and record["images"] == {"us-east-1": "ami-east"}
    assert record["copies"] == {} and record["pending_tags_removed"] is False


def test_an_adopted_image_takes_its_copies_from_ami_copy_without_its_own_region():
    adopted = {"changed": True, "images": dict(COPIES, **{"us-east-1": {"image_id": "ami-old", "snapshot_ids": ["snap-old"]}})}

    record = publish_record(SKIPPED, adopted, "us-east-1", "ami-old")

    assert record["image_id"] == "ami-old" and record["created"] is False and record["snapshot_ids"] == []
    assert record["copies"] == COPIES
    assert record["images"] == {"us-east-1": "ami-old", "us-west-2": "ami-west", "eu-west-1": "ami-eu"}
    # the adopted image's own snapshots are not claimed known: ami_copy reported them for its region
    # listed as a destination, which the record leaves out like every other field of that region
    assert record["snapshot_ids_by_region"] == {"us-west-2": ["snap-west"]}


def test_an_adopted_image_alone():
    assert publish_record(SKIPPED, SKIPPED, "us-east-1", "ami-old")["images"] == {"us-east-1": "ami-old"}


@pytest.mark.parametrize("created, image_id, region", [(SKIPPED, "", "us-east-1"), ({"image_id": "ami-1"}, "", "")])
def test_without_an_image_or_a_region_it_says_so(created, image_id, region):
    with pytest.raises(AnsibleFilterError, match="publish_record: "):
        publish_record(created, SKIPPED, region, image_id)
