# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_prune: the policy (keep_latest, keep_days with backdated images, deprecation, protections) and the Pruner.

keep_days is tested here with backdated CreationDate values: the local endpoint stamps every new
image with the current time, so the integration target cannot make old images.
"""
from __future__ import annotations

import datetime

import botocore.exceptions
import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _prune

NOW = datetime.datetime(2025, 11, 26, 12, 0, 0, tzinfo=datetime.timezone.utc)
SELF = "111111111111"


def days_ago(days):
    return (NOW - datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def image(image_id, age_days, tags=None, state="available", snapshots=None, deprecation=None, owner=SELF):
    result = {
        "ImageId": image_id,
        "Name": f"web-base {image_id}",
        "OwnerId": owner,
        "State": state,
        "CreationDate": days_ago(age_days),
        "Tags": [{"Key": k, "Value": v} for k, v in dict({"bakery:family": "web-base"}, **(tags or {})).items()],
        "BlockDeviceMappings": [
            {"DeviceName": f"/dev/xvd{chr(97 + i)}", "Ebs": {"SnapshotId": s}}
            for i, s in enumerate(snapshots if snapshots is not None else [image_id.replace("ami-", "snap-")])
        ],
    }
    if deprecation:
        result["DeprecationTime"] = deprecation
    return result


def ids(items):
    return [item["image_id"] for item in items]


def reasons(plan):
    return {item["image_id"]: item["reason"] for item in plan["kept"]}


# ---------------------------------------------------------------------------------------------
# validate()


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        ({"family": None, "tags": None}, "family or tags: one of them is required"),
        ({"keep_latest": 0}, "keep_latest: must be at least 1 (the newest image is always kept), got 0"),
        ({"keep_latest": None, "keep_days": None}, "keep_latest, keep_days or deprecate_after_days: at least one of them is required"),
        ({"keep_days": -1}, "keep_days: must be a whole number of days from 0 to 36500, got -1"),
        ({"deprecate_after_days": -5}, "deprecate_after_days: must be a whole number of days from 0 to 36500, got -5"),
        ({"regions": ["us-east-1", "Mars"]}, "regions: 'Mars' is not an AWS region name"),
        ({"regions": ["us-east-1", "us-east-1"]}, "regions: a region appears more than once"),
        ({"tags": {"bakery:family": "other"}}, "tags: the tag bakery:family is 'other' but family is 'web-base'"),
        ({"tags": {"n": 3}}, "tags: the value of tag 'n' must be a string"),
    ],
)
def test_validate_names_the_option(overrides, fragment):
    params = {"family": "web-base", "tags": None, "keep_latest": 2, "keep_days": None, "regions": None}
    params.update(overrides)
    errors = _prune.validate(params)
    assert any(fragment in error for error in errors), errors


def test_validate_accepts_good_options():
    assert _prune.validate({"family": "web-base", "keep_latest": 1, "keep_days": 0, "regions": ["eu-west-1"]}) == []


def test_selection_filters_combine_family_and_tags():
    assert _prune.selection_filters("web-base", {"bakery:stage": "service"}) == [
        {"Name": "tag:bakery:family", "Values": ["web-base"]},
        {"Name": "tag:bakery:stage", "Values": ["service"]},
    ]


# ---------------------------------------------------------------------------------------------
# plan_region(): pure policy


def test_keep_latest_keeps_the_newest_n_and_deregisters_the_rest_with_snapshots():
    images = [image("ami-1", 1), image("ami-2", 2), image("ami-3", 3), image("ami-4", 4)]
    plan = _prune.plan_region(images, {}, NOW, keep_latest=2)
    assert ids(plan["deregistered"]) == ["ami-3", "ami-4"]
    assert plan["deleted_snapshots"] == ["snap-3", "snap-4"]
    assert reasons(plan) == {"ami-1": "newest image", "ami-2": "among the 2 newest (keep_latest)"}
    assert plan["deprecated"] == []


def test_ranking_is_by_creation_date_not_by_listing_order():
    images = [image("ami-old", 10), image("ami-new", 1), image("ami-mid", 5)]
    plan = _prune.plan_region(images, {}, NOW, keep_latest=1)
    assert ids(plan["deregistered"]) == ["ami-mid", "ami-old"]
    assert reasons(plan) == {"ami-new": "newest image"}


def test_keep_days_keeps_young_superseded_images():
    images = [image("ami-1", 1), image("ami-2", 5), image("ami-3", 40), image("ami-4", 400)]
    plan = _prune.plan_region(images, {}, NOW, keep_latest=1, keep_days=30)
    assert ids(plan["deregistered"]) == ["ami-3", "ami-4"]
    assert reasons(plan)["ami-2"] == "younger than keep_days (5.0 of 30 days)"


def test_kept_images_report_an_existing_deprecation_time_without_deprecate_after_days():
    images = [image("ami-1", 1), image("ami-2", 2, deprecation="2025-12-01T00:00:00.000Z")]
    plan = _prune.plan_region(images, {}, NOW, keep_latest=1, keep_days=30)
    assert plan["deprecated"] == []
    assert reasons(plan)["ami-2"] == "younger than keep_days (2.0 of 30 days); deprecated at 2025-12-01T00:00:00Z"


def test_keep_days_alone_still_keeps_the_newest_even_when_old():
    images = [image("ami-1", 100), image("ami-2", 200)]
    plan = _prune.plan_region(images, {}, NOW, keep_days=30)
    assert ids(plan["deregistered"]) == ["ami-2"]
    assert reasons(plan) == {"ami-1": "newest image"}


def test_the_newest_image_is_kept_even_if_policy_would_remove_everything():
    plan = _prune.plan_region([image("ami-1", 999)], {}, NOW, keep_latest=1, keep_days=0)
    assert plan["deregistered"] == []
    assert reasons(plan) == {"ami-1": "newest image"}


def test_keep_tag_and_in_use_protect_images():
    images = [image("ami-1", 1), image("ami-2", 2, tags={"bakery:keep": "true"}), image("ami-3", 3), image("ami-4", 4)]
    plan = _prune.plan_region(images, {"ami-3": ["i-b", "i-a"]}, NOW, keep_latest=1, deprecate_after_days=0)
    assert ids(plan["deregistered"]) == ["ami-4"]
    assert reasons(plan)["ami-2"] == "tagged bakery:keep=true"
    assert reasons(plan)["ami-3"] == "in use by i-a, i-b"
    assert plan["deprecated"] == []


def test_protect_in_use_false_lets_in_use_images_go():
    images = [image("ami-1", 1), image("ami-2", 2)]
    plan = _prune.plan_region(images, {"ami-2": ["i-a"]}, NOW, keep_latest=1, protect_in_use=False)
    assert ids(plan["deregistered"]) == ["ami-2"]


def test_images_that_are_not_available_are_never_ranked_or_touched():
    images = [image("ami-p", 0, state="pending"), image("ami-1", 1), image("ami-f", 3, state="failed")]
    plan = _prune.plan_region(images, {}, NOW, keep_latest=1)
    assert plan["deregistered"] == []
    assert reasons(plan) == {
        "ami-p": "state is pending, not available",
        "ami-f": "state is failed, not available",
        "ami-1": "newest image",
    }


def test_deprecation_instead_of_deletion_is_creation_plus_days_or_the_next_minute():
    images = [image("ami-1", 1), image("ami-2", 5), image("ami-3", 50)]
    plan = _prune.plan_region(images, {}, NOW, keep_latest=1, deprecate_after_days=30, deregister=False)
    assert plan["deregistered"] == [] and plan["deleted_snapshots"] == []
    assert {item["image_id"]: item["deprecation_time"] for item in plan["deprecated"]} == {
        "ami-2": "2025-12-21T12:00:00Z",  # created 5 days ago + 30 days
        "ami-3": "2025-11-26T12:01:00Z",  # overdue: the next minute
    }
    assert all(item["reason"] == "deregister is false" for item in plan["deprecated"])


def test_deprecate_after_days_alone_only_deprecates():
    images = [image("ami-1", 1), image("ami-2", 5), image("ami-3", 50)]
    plan = _prune.plan_region(images, {}, NOW, deprecate_after_days=30)
    assert plan["deregistered"] == [] and plan["deleted_snapshots"] == []
    assert ids(plan["deprecated"]) == ["ami-2", "ami-3"]
    assert plan["deprecated"][0]["reason"] == "neither keep_latest nor keep_days is set; deprecation only"
    assert reasons(plan) == {"ami-1": "newest image"}


def test_deprecation_is_idempotent_and_never_postponed():
    images = [
        image("ami-1", 1),
        image("ami-2", 5, deprecation="2025-12-21T12:00:00.000Z"),
        image("ami-3", 50, deprecation="2025-11-20T00:00:00.000Z"),
        image("ami-4", 60, deprecation="2030-01-01T00:00:00.000Z"),
    ]
    plan = _prune.plan_region(images, {}, NOW, keep_latest=1, deprecate_after_days=30, deregister=False)
    assert ids(plan["deprecated"]) == ["ami-4"]
    assert reasons(plan)["ami-2"] == "deregister is false; deprecated at 2025-12-21T12:00:00Z"
    assert reasons(plan)["ami-3"] == "deregister is false; deprecated at 2025-11-20T00:00:00Z"


def test_deprecate_young_images_and_deregister_old_ones():
    images = [image("ami-1", 1), image("ami-2", 3), image("ami-3", 100)]
    plan = _prune.plan_region(images, {}, NOW, keep_latest=1, keep_days=30, deprecate_after_days=0)
    assert ids(plan["deregistered"]) == ["ami-3"]
    assert ids(plan["deprecated"]) == ["ami-2"]
    assert plan["deprecated"][0]["reason"].startswith("younger than keep_days")


def test_delete_snapshots_false_keeps_them():
    plan = _prune.plan_region([image("ami-1", 1), image("ami-2", 2)], {}, NOW, keep_latest=1, delete_snapshots=False)
    assert ids(plan["deregistered"]) == ["ami-2"]
    assert plan["deleted_snapshots"] == []


def test_a_snapshot_shared_with_another_image_is_kept():
    images = [image("ami-1", 1), image("ami-2", 2, snapshots=["snap-shared", "snap-own"])]
    other = image("ami-x", 9, snapshots=["snap-shared"])
    other["Tags"] = []
    plan = _prune.plan_region(images, {}, NOW, keep_latest=1, all_images=images + [other])
    assert plan["deleted_snapshots"] == ["snap-own"]
    assert plan["kept_snapshots"] == [{"snapshot_id": "snap-shared", "reason": "also used by ami-x"}]


# ---------------------------------------------------------------------------------------------
# Pruner over several regions


class FakeRegions:
    """The _aws functions _prune uses, over one in-memory account per region."""

    def __init__(self, regions):
        self.images = {region: {} for region in regions}
        self.instances = {region: [] for region in regions}
        self.snapshots = {region: set() for region in regions}
        self.calls = []
        self.fail = {}

    def add(self, region, img):
        self.images[region][img["ImageId"]] = img
        self.snapshots[region].update(_prune.snapshot_ids(img))

    def mutations(self):
        return [c for c in self.calls if c[0] in ("enable_image_deprecation", "deregister_image", "delete_snapshot")]

    def describe_images(self, client, **params):
        self.calls.append(("describe_images", client, params))
        assert params["Owners"] == ["self"]
        found = [i for i in self.images[client].values() if i["OwnerId"] == SELF]
        for flt in params.get("Filters") or []:
            key = flt["Name"][len("tag:"):]
            found = [i for i in found if {t["Key"]: t["Value"] for t in i["Tags"]}.get(key) in flt["Values"]]
        return found

    def describe_instances(self, client, **params):
        self.calls.append(("describe_instances", client, params))
        wanted = dict((f["Name"], f["Values"]) for f in params["Filters"])
        return [
            i for i in self.instances[client]
            if i["ImageId"] in wanted["image-id"] and i["State"]["Name"] in wanted["instance-state-name"]
        ]

    def enable_image_deprecation(self, client, image_id, deprecate_at):
        self.calls.append(("enable_image_deprecation", client, image_id))
        self.images[client][image_id]["DeprecationTime"] = deprecate_at
        return True

    def deregister_image(self, client, image_id):
        self.calls.append(("deregister_image", client, image_id))
        if client in self.fail:
            raise self.fail[client]
        del self.images[client][image_id]
        return True

    def delete_snapshot(self, client, snapshot_id):
        self.calls.append(("delete_snapshot", client, snapshot_id))
        self.snapshots[client].discard(snapshot_id)
        return True


REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


@pytest.fixture
def aws(monkeypatch):
    fake = FakeRegions(REGIONS)
    for name in ("describe_images", "describe_instances", "enable_image_deprecation", "deregister_image", "delete_snapshot"):
        monkeypatch.setattr(f"ansible_collections.bakery.ami.plugins.module_utils._aws.{name}", getattr(fake, name))
    return fake


def pruner(check_mode=False, **params):
    base = {"family": "web-base", "tags": None, "keep_latest": 1, "keep_days": None, "deprecate_after_days": None,
            "deregister": True, "delete_snapshots": True, "protect_in_use": True, "required": False}
    base.update(params)
    # The fake uses the region name as the client.
    return _prune.Pruner({region: region for region in REGIONS}, base, check_mode, now=NOW)


def seed(aws):
    for region in REGIONS:
        suffix = region.split("-")[1][:2]
        for age in (1, 2, 3):
            aws.add(region, image(f"ami-{suffix}{age}", age))
    aws.add("us-east-1", image("ami-other", 9, tags={"bakery:family": "other"}))
    aws.add("us-east-1", image("ami-foreign", 9, owner="999999999999"))
    aws.images["eu-west-1"]["ami-we3"]["Tags"].append({"Key": "bakery:keep", "Value": "true"})
    aws.instances["ap-southeast-2"].append({"InstanceId": "i-1", "ImageId": "ami-so2", "State": {"Name": "stopped"}})
    aws.instances["ap-southeast-2"].append({"InstanceId": "i-2", "ImageId": "ami-so3", "State": {"Name": "terminated"}})


def test_check_mode_reports_every_region_and_changes_nothing(aws):
    seed(aws)
    result = pruner(check_mode=True, max_deletions=4).run()
    assert result["changed"] is True and result["dry_run"] is True
    assert aws.mutations() == []
    regions = result["regions"]
    assert ids(regions["us-east-1"]["deregistered"]) == ["ami-ea2", "ami-ea3"]
    assert ids(regions["eu-west-1"]["deregistered"]) == ["ami-we2"]
    assert reasons(regions["eu-west-1"])["ami-we3"] == "tagged bakery:keep=true"
    assert ids(regions["ap-southeast-2"]["deregistered"]) == ["ami-so3"]
    assert reasons(regions["ap-southeast-2"])["ami-so2"] == "in use by i-1"
    assert regions["us-east-1"]["images"] == 3


def test_real_run_then_rerun_is_unchanged(aws):
    seed(aws)
    result = pruner(max_deletions=4).run()
    assert result["changed"] is True
    assert sorted(c[2] for c in aws.mutations() if c[0] == "deregister_image") == ["ami-ea2", "ami-ea3", "ami-so3", "ami-we2"]
    assert "ami-other" in aws.images["us-east-1"] and "ami-foreign" in aws.images["us-east-1"]
    assert aws.snapshots["us-east-1"] == {"snap-ea1", "snap-other", "snap-foreign"}
    before = len(aws.mutations())
    again = pruner(max_deletions=4).run()
    assert again["changed"] is False
    assert len(aws.mutations()) == before


def test_required_fails_before_any_change_when_nothing_matches(aws):
    seed(aws)
    expected = r"family: 'nothing' \(tag bakery:family\) matches no image of this account in ap-southeast-2, eu-west-1, us-east-1"
    with pytest.raises(_prune.PruneError, match=expected):
        pruner(family="nothing", required=True).run()
    assert aws.mutations() == []


def test_no_match_without_required_is_no_change(aws):
    result = pruner(family="nothing").run()
    assert result["changed"] is False
    assert all(plan["images"] == 0 for plan in result["regions"].values())


def test_a_failing_region_is_reported_and_the_others_are_done(aws):
    seed(aws)
    error = botocore.exceptions.ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DeregisterImage")
    aws.fail["eu-west-1"] = _aws.BakeryAWSError(message="Failed to deregister image", exception=error)
    with pytest.raises(_prune.PartialFailure) as failure:
        pruner(max_deletions=4).run()
    assert "pruning failed in eu-west-1; in eu-west-1: Failed to deregister image" in str(failure.value)
    assert "UnauthorizedOperation" in str(failure.value)
    assert failure.value.result["failed_regions"] == ["eu-west-1"]
    assert "ami-ea2" not in aws.images["us-east-1"]
