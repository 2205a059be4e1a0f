# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_prune: the policy (keep_latest, keep_days with backdated images, deprecation, protections) and the Pruner.

keep_days is tested here with backdated CreationDate values: the local endpoint stamps every new
image with the current time, so the integration target cannot make old images.
"""
from __future__ import annotations

import datetime
import random
import re

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
        ({"keep_latest": None, "keep_days": None},
         "keep_latest, keep_days, deprecate_after_days, disable_after_days, deregister_after_days, deprecate_after_count, "
         "disable_after_count or deregister_after_count: at least one of them is required"),
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


def ec2_filter_match(pattern, value):
    """EC2 filter value semantics: * any run of characters, ? one character, \\ escapes the next one."""
    if value is None:
        return False
    regex, chars = "", iter(pattern)
    for char in chars:
        if char == "\\":
            regex += re.escape(next(chars, "\\"))
        elif char == "*":
            regex += ".*"
        elif char == "?":
            regex += "."
        else:
            regex += re.escape(char)
    return re.fullmatch(regex, value, re.DOTALL) is not None


class FakeRegions:
    """The _aws functions _prune uses, over one in-memory account per region."""

    def __init__(self, regions):
        self.images = {region: {} for region in regions}
        self.instances = {region: [] for region in regions}
        self.snapshots = {region: set() for region in regions}
        self.calls = []
        self.fail = {}
        self.parameters = {region: {} for region in regions}
        self.templates = {region: {} for region in regions}  # id -> (default version number, [image per version])
        self.shares = {}  # image_id -> LaunchPermissions
        self.volume_perms = {}  # snapshot_id -> account IDs with createVolumePermission
        self.rules = {}  # rbin client -> rules
        self.protection = {}

    def add(self, region, img):
        self.images[region][img["ImageId"]] = img
        self.snapshots[region].update(_prune.snapshot_ids(img))

    def mutations(self):
        return [c for c in self.calls if c[0] in MUTATING]

    # How the fake server applies tag filters: "ec2" as EC2 does (* and ? wildcards, \ escapes),
    # "ignore" as an endpoint that ignores them (every image of the account comes back).
    filter_mode = "ec2"

    def describe_images(self, client, **params):
        self.calls.append(("describe_images", client, params))
        assert params["Owners"] == ["self"]
        found = [i for i in self.images[client].values() if i["OwnerId"] == SELF]
        if not params.get("IncludeDisabled"):
            found = [i for i in found if i["State"] != "disabled"]
        if self.filter_mode == "ignore":
            return found
        for flt in params.get("Filters") or []:
            key = flt["Name"][len("tag:"):]
            found = [
                i for i in found
                if any(ec2_filter_match(value, {t["Key"]: t["Value"] for t in i["Tags"]}.get(key)) for value in flt["Values"])
            ]
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

    # What the fake answers when asked for references, shares and templates (per region).
    references_supported = True
    delete_with_image_supported = True

    def deregister_image_with_snapshots(self, client, image_id):
        self.calls.append(("deregister_image_with_snapshots", client, image_id))
        if client in self.fail:
            raise self.fail[client]
        if not self.delete_with_image_supported:
            raise _aws.BakeryAWSError(message="Failed to deregister image with its snapshots", exception=client_error("InvalidParameter"))
        if self.protection.get(image_id, "disabled") != "disabled":
            raise _aws.BakeryAWSError(message="Failed to deregister", exception=client_error("OperationNotPermitted"))
        img = self.images[client].pop(image_id)
        results = []
        for snapshot_id in _prune.snapshot_ids(img):
            used = any(snapshot_id in _prune.snapshot_ids(other) for other in self.images[client].values())
            if used:
                results.append({"SnapshotId": snapshot_id, "ReturnCode": "skipped"})
            else:
                self.snapshots[client].discard(snapshot_id)
                results.append({"SnapshotId": snapshot_id, "ReturnCode": "success"})
        return results

    def disable_image(self, client, image_id):
        self.calls.append(("disable_image", client, image_id))
        self.images[client][image_id]["State"] = "disabled"
        self.shares.pop(image_id, None)
        return True

    def enable_image(self, client, image_id):
        self.calls.append(("enable_image", client, image_id))
        self.images[client][image_id]["State"] = "available"
        return True

    def create_tags(self, client, resource_ids, tags):
        self.calls.append(("create_tags", client, tuple(resource_ids), tuple((t["Key"], t["Value"]) for t in tags)))
        for image_id in resource_ids:
            image = self.images[client][image_id]
            have = {t["Key"]: t["Value"] for t in image["Tags"]}
            have.update({t["Key"]: t["Value"] for t in tags})
            image["Tags"] = [{"Key": k, "Value": v} for k, v in have.items()]
        return True

    def modify_image_attribute(self, client, image_id, LaunchPermission):
        self.calls.append(("modify_image_attribute", client, image_id, tuple(map(str, LaunchPermission["Add"]))))
        self.shares.setdefault(image_id, []).extend(LaunchPermission["Add"])
        return True

    def describe_snapshot_attribute(self, client, snapshot_id, attribute):
        self.calls.append(("describe_snapshot_attribute", client, snapshot_id))
        return {"CreateVolumePermissions": [{"UserId": u} for u in self.volume_perms.get(snapshot_id, [])]}

    def modify_snapshot_attribute(self, client, snapshot_id, Attribute, OperationType, UserIds):
        self.calls.append(("modify_snapshot_attribute", client, snapshot_id, tuple(UserIds)))
        self.volume_perms.setdefault(snapshot_id, []).extend(UserIds)
        return True

    def disable_image_deregistration_protection(self, client, image_id):
        self.calls.append(("disable_image_deregistration_protection", client, image_id))
        img = self.images[client][image_id]
        state = "disabled-after-2025-11-27T12:00:00Z" if img.get("DeregistrationProtection") == "enabled-with-cooldown" else "disabled"
        img["DeregistrationProtection"] = state
        self.protection[image_id] = state
        return state

    def describe_image_references(self, client, **params):
        self.calls.append(("describe_image_references", client, params))
        if not self.references_supported:
            raise _aws.BakeryAWSError(message="Failed to describe image references", exception=client_error("InvalidAction"))
        assert len(params["ImageIds"]) <= 10
        found = []
        for instance in self.instances[client]:
            if instance["ImageId"] in params["ImageIds"] and instance["State"]["Name"] != "terminated":
                found.append({"ImageId": instance["ImageId"], "ResourceType": "ec2:Instance",
                              "Arn": f"arn:aws:ec2:{client}:{SELF}:instance/{instance['InstanceId']}"})
        for name, value in self.parameters[client].items():
            if value in params["ImageIds"]:
                found.append({"ImageId": value, "ResourceType": "ssm:Parameter", "Arn": f"arn:aws:ssm:{client}:{SELF}:parameter{name}"})
        return found

    def describe_parameters(self, client, **params):
        self.calls.append(("describe_parameters", client, params))
        return [{"Name": name} for name in self.parameters[client.replace("ssm-", "")]]

    def get_parameters(self, client, names):
        self.calls.append(("get_parameters", client, names))
        region = client.replace("ssm-", "")
        return [{"Name": name, "Value": self.parameters[region][name]} for name in names if name in self.parameters[region]]

    def describe_launch_templates(self, client, **params):
        self.calls.append(("describe_launch_templates", client, params))
        return [{"LaunchTemplateId": lt_id, "LaunchTemplateName": lt_id, "DefaultVersionNumber": versions[0],
                 "LatestVersionNumber": len(versions[1])} for lt_id, versions in self.templates[client].items()]

    def describe_launch_template_versions(self, client, **params):
        self.calls.append(("describe_launch_template_versions", client, params))
        default, images = self.templates[client][params["LaunchTemplateId"]]
        numbers = sorted({default, len(images)})
        return [{"VersionNumber": n, "DefaultVersion": n == default, "LaunchTemplateData": {"ImageId": images[n - 1]}} for n in numbers]

    def describe_image_attribute(self, client, image_id, attribute):
        self.calls.append(("describe_image_attribute", client, image_id))
        assert attribute == "launchPermission"
        return {"LaunchPermissions": list(self.shares.get(image_id, []))}

    rbin_denied = False

    def list_rbin_rules(self, client, **params):
        self.calls.append(("list_rbin_rules", client, params))
        if self.rbin_denied:
            raise _aws.BakeryAWSError(message="Failed to list Recycle Bin rules", exception=client_error("AccessDeniedException"))
        return [{"Identifier": r["Identifier"]} for r in self.rules.setdefault(client, []) if r["ResourceType"] == params["ResourceType"]]

    def get_rbin_rule(self, client, identifier):
        self.calls.append(("get_rbin_rule", client, identifier))
        return next(r for r in self.rules[client] if r["Identifier"] == identifier)

    def create_rbin_rule(self, client, **params):
        self.calls.append(("create_rbin_rule", client, params))
        made = dict(params, Identifier=f"rule-{len(self.calls)}", Status="available")
        self.rules.setdefault(client, []).append(made)
        return made


def client_error(code):
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": code}}, "Operation")


FAKE_CALLS = ("describe_images", "describe_instances", "enable_image_deprecation", "deregister_image", "delete_snapshot",
              "deregister_image_with_snapshots", "disable_image", "enable_image", "disable_image_deregistration_protection",
              "describe_image_references", "describe_parameters", "get_parameters", "describe_launch_templates",
              "describe_launch_template_versions", "describe_image_attribute", "list_rbin_rules", "get_rbin_rule",
              "create_rbin_rule", "create_tags", "modify_image_attribute", "describe_snapshot_attribute",
              "modify_snapshot_attribute")
DEREGISTER_CALLS = ("deregister_image", "deregister_image_with_snapshots")
MUTATING = ("enable_image_deprecation", "deregister_image", "delete_snapshot", "deregister_image_with_snapshots",
            "disable_image", "enable_image", "disable_image_deregistration_protection", "create_rbin_rule", "create_tags",
            "modify_image_attribute", "modify_snapshot_attribute")


REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


@pytest.fixture
def aws(monkeypatch):
    fake = FakeRegions(REGIONS)
    for name in FAKE_CALLS:
        monkeypatch.setattr(f"ansible_collections.bakery.ami.plugins.module_utils._aws.{name}", getattr(fake, name))
    return fake


def pruner(check_mode=False, rbin=False, **params):
    base = {"family": "web-base", "tags": None, "keep_latest": 1, "keep_days": None, "deprecate_after_days": None,
            "deregister": True, "delete_snapshots": True, "protect_in_use": True, "required": False}
    base.update(params)
    # The fake uses the region name as the client.
    return _prune.Pruner({region: region for region in REGIONS}, _prune.build_request(base, "eu-west-1"), check_mode, now=NOW,
                         ssm_clients={region: f"ssm-{region}" for region in REGIONS},
                         rbin_clients={region: f"rbin-{region}" for region in REGIONS} if rbin else None)


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
    assert sorted(c[2] for c in aws.mutations() if c[0] in DEREGISTER_CALLS) == ["ami-ea2", "ami-ea3", "ami-so3", "ami-we2"]
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


# ---------------------------------------------------------------------------------------------
# Hostile selections are refused before any call


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        # a pattern ending in $ also matches before a trailing newline; \d takes Unicode digits
        ({"family": "web-base\n"}, "family: 'web-base\\n' is not a family name"),
        ({"family": "web-\u0666"}, "family: 'web-\u0666' is not a family name"),
        ({"family": "*"}, "family: '*' is not a family name"),
        ({"family": None, "tags": {"bakery:family": "*"}},
         "tags: the value of tag 'bakery:family' is '*'; tag values are matched literally and may not hold *"),
        ({"family": None, "tags": {"bakery:family": "web-?"}}, "may not hold ? (EC2 filters read * and ? as wildcards"),
        ({"family": None, "tags": {"bakery:stage": "ba\\se"}}, "may not hold \\"),
        ({"family": None, "tags": {"bakery:family": "web-base\n"}}, "with the control character '\\n' at position 8"),
        ({"tags": {"k" * 129: "v"}}, "tags: tag name 'kkkk"),
        ({"tags": {"aws:team": "v"}}, "tags: tag name 'aws:team' uses the reserved prefix 'aws:'"),
        ({"tags": {"AWS:team": "v"}}, "tags: tag name 'AWS:team' uses the reserved prefix 'aws:'"),
        ({"tags": {"team": "v" * 257}}, "tags: the value of tag 'team' is longer than 256 characters"),
        ({"tags": "bakery:family=web"}, "tags: must be a dictionary"),
        ({"regions": ["us-east-1\n"]}, "regions: 'us-east-1\\n' is not an AWS region name"),
        ({"keep_latest": True}, "keep_latest: must be at least 1"),
        ({"max_deletions": -1}, "max_deletions: must be a whole number of images from 0 to 100000, got -1"),
        ({"max_deletions": True}, "max_deletions: must be a whole number of images"),
    ],
)
def test_hostile_selections_are_refused(overrides, fragment):
    params = {"family": "web-base", "tags": None, "keep_latest": 2, "keep_days": None, "regions": None}
    params.update(overrides)
    errors = _prune.validate(params)
    assert any(fragment in error for error in errors), errors


def test_a_wildcard_family_is_refused_before_any_call_even_by_the_pruner_itself(aws):
    seed(aws)
    with pytest.raises(_prune.PruneError, match="tags: the value of tag 'bakery:family' is '\\*'"):
        pruner(family=None, tags={"bakery:family": "*"}, keep_latest=1, max_deletions=1000).run()
    assert aws.calls == []


# ---------------------------------------------------------------------------------------------
# Per-family keep rules and literal matching


def tagged(image_id, age_days, tags, **extra):
    """An image with exactly these tags (image() always adds bakery:family)."""
    result = image(image_id, age_days, **extra)
    result["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return result


def two_families():
    # the layout of the reported incident: five images of two families, one selection over both
    return [
        tagged("ami-a1", 1, {"bakery:family": "a", "bakery:stage": "base"}),
        tagged("ami-a2", 2, {"bakery:family": "a", "bakery:stage": "base"}),
        tagged("ami-a3", 3, {"bakery:family": "a", "bakery:stage": "base"}),
        tagged("ami-b1", 10, {"bakery:family": "b", "bakery:stage": "base"}),
        tagged("ami-b2", 20, {"bakery:family": "b", "bakery:stage": "base"}),
        tagged("ami-n1", 5, {"bakery:stage": "base"}),
        tagged("ami-n2", 6, {"bakery:stage": "base"}),
    ]


def test_keep_latest_applies_to_each_family_on_its_own():
    plan = _prune.plan_region(two_families(), {}, NOW, keep_latest=1, wanted={"bakery:stage": "base"})
    # ranked over the union, keep_latest 1 would keep only ami-a1 and take the newest of b
    assert ids(plan["deregistered"]) == ["ami-a2", "ami-a3", "ami-b2"]
    assert reasons(plan)["ami-a1"] == "newest image" and reasons(plan)["ami-b1"] == "newest image"
    assert {item["image_id"]: item["family"] for item in plan["deregistered"]} == {"ami-a2": "a", "ami-a3": "a", "ami-b2": "b"}
    assert plan["images"] == 7


def test_images_without_a_family_are_kept_unless_asked_for():
    plan = _prune.plan_region(two_families(), {}, NOW, keep_latest=1, wanted={"bakery:stage": "base"})
    assert reasons(plan)["ami-n1"] == reasons(plan)["ami-n2"] == "no bakery:family tag (prune_without_family is false)"
    plan = _prune.plan_region(two_families(), {}, NOW, keep_latest=1, wanted={"bakery:stage": "base"},
                              prune_without_family=True)
    assert ids(plan["deregistered"]) == ["ami-a2", "ami-a3", "ami-b2", "ami-n2"]
    assert reasons(plan)["ami-n1"] == "newest image"


def test_images_the_server_returns_without_the_exact_tags_are_ignored():
    images = [
        tagged("ami-1", 1, {"bakery:family": "web"}),
        tagged("ami-2", 2, {"bakery:family": "web"}),
        tagged("ami-3", 3, {"bakery:family": "Web"}),
        tagged("ami-4", 4, {"bakery:family": "web\n"}),
        tagged("ami-5", 5, {"bakery:family": "web-base"}),
        tagged("ami-6", 6, {"bakery:family": "*"}),
        tagged("ami-7", 7, {}),
    ]
    plan = _prune.plan_region(images, {}, NOW, keep_latest=1, wanted={"bakery:family": "web"})
    assert ids(plan["deregistered"]) == ["ami-2"]
    assert ids(plan["ignored"]) == ["ami-3", "ami-4", "ami-5", "ami-6", "ami-7"]
    assert plan["images"] == 2
    assert "ami-3" not in reasons(plan)


def test_an_image_of_unreadable_creation_date_is_kept_not_ranked_oldest():
    images = [image("ami-1", 1), image("ami-2", 2), image("ami-3", 3)]
    images[2]["CreationDate"] = "yesterday"
    plan = _prune.plan_region(images, {}, NOW, keep_latest=1)
    assert ids(plan["deregistered"]) == ["ami-2"]
    assert reasons(plan)["ami-3"] == "creation date 'yesterday' is unreadable"


def test_a_server_that_ignores_the_filters_cannot_make_the_pruner_touch_other_families(aws):
    seed(aws)
    aws.filter_mode = "ignore"
    result = pruner(max_deletions=4).run()
    assert sorted(c[2] for c in aws.mutations() if c[0] in DEREGISTER_CALLS) == ["ami-ea2", "ami-ea3", "ami-so3", "ami-we2"]
    assert ids(result["regions"]["us-east-1"]["ignored"]) == ["ami-other"]
    assert "ami-other" in aws.images["us-east-1"]


# ---------------------------------------------------------------------------------------------
# Deletion limits


def plans_for(*regions_families):
    """{region: plan} with, per (region, family, deregistered, kept), that many images."""
    plans = {}
    for region, family, going, staying in regions_families:
        plan = plans.setdefault(region, {"deregistered": [], "kept": [], "deprecated": []})
        for n in range(going):
            plan["deregistered"].append({"image_id": f"ami-{region[:2]}{family}{n}", "name": "x", "family": family})
        for n in range(staying):
            plan["kept"].append({"image_id": f"ami-{region[:2]}{family}k{n}", "name": "x", "family": family})
    return plans


@pytest.mark.parametrize(
    "layout,max_deletions,fragment",
    [
        ([("us-east-1", "a", 1, 1)], None, None),  # half of a family: allowed
        ([("us-east-1", "a", 2, 1)], None, "2 of the 3 images of family 'a' in us-east-1, more than 50% of them"),
        ([("us-east-1", None, 2, 1)], None, "2 of the 3 images of the images without a bakery:family tag in us-east-1"),
        ([("us-east-1", "a", 2, 1)], 2, None),
        ([("us-east-1", "a", 2, 1)], 1, "2 images, more than max_deletions (1) allows"),
        ([("us-east-1", "a", 1, 5)], 0, "1 images, more than max_deletions (0) allows"),
        ([("us-east-1", "a", 5, 5), ("eu-west-1", "a", 5, 5)], None, None),
        ([("us-east-1", "a", 5, 5), ("eu-west-1", "a", 5, 5), ("eu-west-1", "b", 1, 1)], None,
         "11 images, more than the 10 a run deregisters without max_deletions"),
        ([("us-east-1", "a", 5, 5), ("eu-west-1", "a", 5, 5), ("eu-west-1", "b", 1, 1)], 11, None),
        ([("us-east-1", "a", 0, 5)], 0, None),
    ],
)
def test_deletion_limits(layout, max_deletions, fragment):
    error = _prune.check_limits(plans_for(*layout), max_deletions)
    if fragment is None:
        assert error is None
    else:
        assert error.startswith("max_deletions: stopped before any change; this run would deregister ")
        assert fragment in error
        total = sum(going for _region, _family, going, _staying in layout)
        assert error.endswith(f"set max_deletions: {total} to allow it")


def test_a_run_over_the_limits_names_what_it_would_deregister_and_changes_nothing(aws):
    for age in range(1, 6):
        aws.add("eu-west-1", image(f"ami-w{age}", age))
    for check_mode in (True, False):
        with pytest.raises(_prune.PruneError) as caught:
            pruner(check_mode=check_mode).run()
        message = caught.value.msg
        assert "4 of the 5 images of family 'web-base' in eu-west-1" in message
        for image_id in ("ami-w2", "ami-w3", "ami-w4", "ami-w5"):
            assert f"{image_id} in eu-west-1 (family 'web-base', 'web-base {image_id}')" in message
        assert caught.value.result["would_deregister"] == 4 and caught.value.result["changed"] is False
        assert ids(caught.value.result["regions"]["eu-west-1"]["deregistered"]) == ["ami-w2", "ami-w3", "ami-w4", "ami-w5"]
        assert aws.mutations() == []
    assert pruner(max_deletions=4).run()["changed"] is True
    assert sorted(aws.images["eu-west-1"]) == ["ami-w1"]


def test_a_long_list_is_cut_in_the_message():
    error = _prune.check_limits(plans_for(("us-east-1", "a", 30, 0)), None)
    assert "and 10 more" in error and error.count(" in us-east-1 (family 'a'") == 20


# ---------------------------------------------------------------------------------------------
# Property: for random tag maps, family layouts, policies and server behaviours, ami_prune never
# touches an image outside the selection (another family above all), always keeps the newest
# image of every family, refuses without any mutating call, and check mode predicts the real run.

# Most images belong to the families asked for; the rest carry look-alike values (case, space,
# newline, wildcard characters taken literally) or none.
FAMILY_VALUES = ["web"] * 10 + ["web-base"] * 6 + ["Web", "web ", "web\n", "web*", "*", "we?", "web\\", "", None, None]
STAGE_VALUES = ["base"] * 4 + ["service", "base\n", "*", None]
VALID_REQUESTS = (
    [{"family": value} for value in ("web", "web-base", "Web")]
    + [{"family": None, "tags": {"bakery:family": value}} for value in ("web", "web-base")]
    + [{"family": None, "tags": {"bakery:stage": value}} for value in ("base", "service")]
    + [{"family": "web", "tags": {"bakery:stage": "base"}}]
)
HOSTILE_REQUESTS = (
    [{"family": value} for value in ("*", "web\n", "we?")]
    + [{"family": None, "tags": {"bakery:family": value}} for value in ("*", "we?", "web\\", "web\n")]
    + [{"family": None, "tags": {"bakery:stage": value}} for value in ("*", "base\n")]
)
REQUESTS = VALID_REQUESTS * 3 + HOSTILE_REQUESTS


def random_world(rng):
    fake = FakeRegions(REGIONS[:2])
    fake.filter_mode = rng.choice(["ec2", "ignore"])
    counter = 0
    for region in REGIONS[:2]:
        for _n in range(rng.randint(0, 24)):
            counter += 1
            tags = {}
            family = rng.choice(FAMILY_VALUES)
            if family is not None:
                tags["bakery:family"] = family
            stage = rng.choice(STAGE_VALUES)
            if stage is not None:
                tags["bakery:stage"] = stage
            if rng.random() < 0.1:
                tags["bakery:keep"] = "true"
            state = rng.choice(["available"] * 8 + ["pending", "failed", "disabled"])
            snapshots = [f"snap-{counter}"] if rng.random() < 0.8 else [f"snap-{max(1, counter - 1)}"]
            img = tagged(f"ami-{counter:03d}", rng.randint(0, 400), tags, state=state, snapshots=snapshots)
            if rng.random() < 0.1:
                img["OwnerId"] = "999999999999"
            if rng.random() < 0.2:
                img["DeregistrationProtection"] = rng.choice(["enabled-without-cooldown", "enabled-with-cooldown"])
                fake.protection[img["ImageId"]] = img["DeregistrationProtection"]
            if rng.random() < 0.1:
                img["LastLaunchedTime"] = days_ago(rng.randint(0, 60))
            if rng.random() < 0.08 and state != "disabled":
                fake.shares[img["ImageId"]] = [{"UserId": "222222222222"}]
            if rng.random() < 0.05:
                fake.parameters[region][f"/p/{counter}"] = img["ImageId"]
            if rng.random() < 0.05:
                fake.templates[region][f"lt-{counter}"] = (1, [img["ImageId"]])
            fake.add(region, img)
            if rng.random() < 0.1:
                fake.instances[region].append({"InstanceId": f"i-{counter}", "ImageId": img["ImageId"],
                                               "State": {"Name": rng.choice(["running", "stopped", "terminated"])}})
    return fake


def random_params(rng):
    params = dict(rng.choice(REQUESTS))
    params.setdefault("tags", None)
    params.update(
        keep_latest=rng.choice([None, 1, 2, 3]),
        keep_days=rng.choice([None, None, 0, 30]),
        deprecate_after_days=rng.choice([None, None, 0, 60]),
        deregister=rng.random() < 0.8,
        delete_snapshots=rng.random() < 0.8,
        protect_in_use=rng.random() < 0.8,
        prune_without_family=rng.random() < 0.3,
        max_deletions=rng.choice([None, 0, 2, 1000, 1000, 1000]),
        required=False,
        disable_after_days=rng.choice([None, None, 0, 45, 90]),
        deregister_after_days=rng.choice([None, None, 60, 120]),
        lift_protection=rng.random() < 0.5,
        keep_launched_within_days=rng.choice([None, 7, 30]),
        include_shared=rng.random() < 0.3,
        deprecate_after_count=rng.choice([None, None, None, 2]),
        disable_after_count=rng.choice([None, None, None, 2, 3]),
        deregister_after_count=rng.choice([None, None, None, 3, 5]),
    )
    if params["deregister_after_days"] is not None and params["keep_days"] is not None and rng.random() < 0.8:
        params["keep_days"] = None
    if rng.random() < 0.85:  # mostly stages in order; the rest are refused, as they must be
        ages = [params[key] for key in ("deprecate_after_days", "disable_after_days")] + [
            params["deregister_after_days"] if params["deregister_after_days"] is not None else params["keep_days"]]
        given = sorted(age for age in ages if age is not None)
        for key in ("deprecate_after_days", "disable_after_days"):
            if params[key] is not None:
                params[key] = given.pop(0)
        if params["deregister_after_days"] is not None:
            params["deregister_after_days"] = given.pop(0)
        elif params["keep_days"] is not None:
            params["keep_days"] = given.pop(0)
    if params["keep_latest"] is None and params["keep_days"] is None and params["deprecate_after_days"] is None:
        params["keep_latest"] = 1
    return params


def violations(seed_value):
    """Run one random case (check mode, real run, rerun); return what broke a property."""
    rng = random.Random(seed_value)
    fake = random_world(rng)
    _CURRENT["fake"] = fake
    params = random_params(rng)
    before = {region: {image_id: dict(img, Tags=list(img["Tags"])) for image_id, img in images.items()}
              for region, images in fake.images.items()}
    wanted = dict(params.get("tags") or {})
    if params.get("family") is not None:
        wanted["bakery:family"] = params["family"]
    problems = []

    def run(check_mode):
        return _prune.Pruner({region: region for region in REGIONS[:2]}, _prune.build_request(params, "eu-west-1"), check_mode,
                             now=NOW).run()

    try:
        predicted = run(True)
    except _prune.PruneError:
        predicted = None
    if fake.mutations():
        problems.append("check mode made a mutating call")
    try:
        result = run(False)
    except _prune.PartialFailure as failure:  # the EC2-like fake refused a call the plan should not have made
        return problems + [f"the run failed: {failure}"]
    except _prune.PruneError:
        if predicted is not None:
            problems.append("check mode did not predict the refusal")
        if fake.mutations():
            problems.append("a refused run made a mutating call")
        return problems
    if predicted is None:
        problems.append("check mode refused a run that went through")
        return problems

    touched = {c[2]: c[0] for c in fake.mutations() if c[0] != "delete_snapshot"}
    removed = {c[2] for c in fake.mutations() if c[0] in DEREGISTER_CALLS + ("disable_image",)}
    for region, images in before.items():
        used = set(fake.parameters[region].values()) | {
            image_id for _default, versions in fake.templates[region].values() for image_id in versions}
        if not params["include_shared"]:
            used |= {image_id for image_id in fake.shares if image_id in images}
        if params["keep_launched_within_days"] is not None:
            used |= {image_id for image_id, img in images.items() if img.get("LastLaunchedTime")
                     and img["LastLaunchedTime"] > days_ago(params["keep_launched_within_days"])}
        for image_id in sorted(used & removed & set(images)):
            problems.append(f"{region}: {touched[image_id]} on {image_id}, which is in use")
        for image_id in sorted(removed & set(images)):
            if touched[image_id] in DEREGISTER_CALLS and images[image_id].get("DeregistrationProtection", "disabled") != "disabled" \
                    and not params["lift_protection"]:
                problems.append(f"{region}: deregistered {image_id}, which is protected")
    for region, images in before.items():
        mine = {image_id: img for image_id, img in images.items() if img["OwnerId"] == SELF}
        selected = {image_id: img for image_id, img in mine.items()
                    if all({t["Key"]: t["Value"] for t in img["Tags"]}.get(k) == v for k, v in wanted.items())}
        for image_id in touched:
            if image_id in images and image_id not in selected:
                problems.append(f"{region}: {touched[image_id]} on {image_id}, which the selection {wanted!r} does not hold")
            if image_id in selected and "bakery:family" not in {t["Key"] for t in selected[image_id]["Tags"]} \
                    and not params["prune_without_family"]:
                problems.append(f"{region}: {touched[image_id]} on {image_id}, which has no family tag")
        families = {}
        for img in selected.values():
            family = {t["Key"]: t["Value"] for t in img["Tags"]}.get("bakery:family")
            if img["State"] == "available":
                families.setdefault(family, []).append(img)
        for family, members in families.items():
            newest = max(members, key=lambda i: (i["CreationDate"], i["ImageId"]))
            if newest["ImageId"] in touched:
                problems.append(f"{region}: the newest image {newest['ImageId']} of family {family!r} was {touched[newest['ImageId']]}")
        planned = predicted["regions"][region]
        done = result["regions"][region]
        for key in ("deregistered", "deprecated", "disabled", "protection_lifted"):
            if ids(planned[key]) != ids(done[key]):
                problems.append(f"{region}: check mode predicted {key} {ids(planned[key])}, the run did {ids(done[key])}")
        if planned["deleted_snapshots"] != done["deleted_snapshots"]:
            problems.append(f"{region}: check mode predicted other snapshot deletions")
    count = len(fake.mutations())
    again = run(False)
    if again["changed"] or len(fake.mutations()) != count:
        problems.append("a rerun changed something")
    return problems


SEEDS = range(400)
_CURRENT: dict = {}


@pytest.fixture
def random_aws(monkeypatch):
    """The _aws functions _prune uses, routed to the fake world of the case being run."""
    def dispatch(name):
        def call(client, *args, **kwargs):
            return getattr(_CURRENT["fake"], name)(client, *args, **kwargs)
        return call

    for name in FAKE_CALLS:
        monkeypatch.setattr(f"ansible_collections.bakery.ami.plugins.module_utils._aws.{name}", dispatch(name))
    yield
    _CURRENT.clear()


def all_violations():
    return {seed_value: problems for seed_value in SEEDS for problems in [violations(seed_value)] if problems}


def test_property_prune_never_touches_another_family_and_check_mode_predicts_the_run(random_aws):
    assert all_violations() == {}


def test_the_random_cases_cover_what_the_property_is_about(random_aws):
    """The seeds reach the interesting cases: refusals, deregistrations, other families in the answer."""
    refused = deregistered = ignored = disabled = lifted = in_use = protected_kept = 0
    for seed_value in SEEDS:
        rng = random.Random(seed_value)
        _CURRENT["fake"] = random_world(rng)
        params = random_params(rng)
        try:
            result = _prune.Pruner({region: region for region in REGIONS[:2]}, _prune.build_request(params, "eu-west-1"), True,
                                   now=NOW).run()
        except _prune.PruneError:
            refused += 1
            continue
        deregistered += sum(len(plan["deregistered"]) for plan in result["regions"].values())
        ignored += sum(len(plan["ignored"]) for plan in result["regions"].values())
        disabled += sum(len(plan["disabled"]) for plan in result["regions"].values())
        lifted += sum(1 for plan in result["regions"].values() for item in plan["deregistered"] if item["lift_protection"])
        lifted += sum(len(plan["protection_lifted"]) for plan in result["regions"].values())
        kept = [item["reason"] for plan in result["regions"].values() for item in plan["kept"] + plan["deprecated"]]
        in_use += sum(1 for reason in kept if "in use: " in reason)
        protected_kept += sum(1 for reason in kept if "deregistration protection is" in reason)
    counts = (refused, deregistered, ignored, disabled, lifted, in_use, protected_kept)
    assert refused >= 100 and deregistered >= 80 and ignored >= 500, counts
    assert disabled >= 40 and lifted >= 5 and in_use >= 30 and protected_kept >= 5, counts


# The property test can fail: each plant below brings back one fault the module had or could
# have, and the property catches it on some seed.


def test_the_property_catches_a_pruner_that_trusts_the_servers_filter(random_aws, monkeypatch):
    monkeypatch.setattr(_prune, "carries", lambda image, wanted: True)
    found = all_violations()
    assert any("does not hold" in problem for problems in found.values() for problem in problems), found


def test_the_property_catches_wildcards_read_as_ec2_reads_them(random_aws, monkeypatch):
    # the original fault: * and ? accepted, and tags matched as EC2's filter matches them
    monkeypatch.setattr(_prune._validate, "literal_tags", _prune._validate.tags)
    monkeypatch.setattr(_prune, "carries", lambda image, wanted: all(
        ec2_filter_match(value, {t["Key"]: t["Value"] for t in image["Tags"]}.get(key)) for key, value in wanted.items()))
    found = all_violations()
    assert any("does not hold" in problem for problems in found.values() for problem in problems), found


def test_the_property_catches_keep_rules_over_the_union_of_families(random_aws, monkeypatch):
    # every image counted as one family: keep_latest over the union, as the module once did
    real = _prune._tags
    monkeypatch.setattr(_prune, "_tags", lambda image: dict(real(image), **{"bakery:family": "one"})
                        if "bakery:family" in real(image) else real(image))
    found = all_violations()
    assert any("the newest image" in problem for problems in found.values() for problem in problems), found


# ---------------------------------------------------------------------------------------------
# Staged retirement: deprecate, disable, deregister


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        ({"deprecate_after_days": 30, "disable_after_days": 10},
         "disable_after_days: 10 days is before deprecate_after_days (30 days)"),
        ({"disable_after_days": 60, "deregister_after_days": 59}, "deregister_after_days: 59 days is before disable_after_days"),
        ({"deprecate_after_days": 90, "deregister_after_days": 30}, "deregister_after_days: 30 days is before deprecate_after_days"),
        ({"disable_after_days": 60, "keep_days": 30}, "keep_days: 30 days is before disable_after_days (60 days)"),
        ({"disable_after_days": -1}, "disable_after_days: must be a whole number of days from 0 to 36500, got -1"),
        ({"deregister_after_days": True}, "deregister_after_days: must be a whole number of days"),
        ({"keep_launched_within_days": -7}, "keep_launched_within_days: must be a whole number of days"),
        ({"keep_days": 5, "deregister_after_days": 5}, "keep_days and deregister_after_days"),
    ],
)
def test_stage_options_are_checked_and_name_the_rule(overrides, fragment):
    params = {"family": "web-base", "keep_latest": 1}
    params.update(overrides)
    assert any(fragment in error for error in _prune.validate(params)), _prune.validate(params)


def test_stages_in_order_are_accepted():
    assert _prune.validate({"family": "web-base", "deprecate_after_days": 10, "disable_after_days": 10,
                            "deregister_after_days": 40}) == []


def staged(images, **policy):
    return _prune.plan_region(images, {}, NOW, **policy)


def test_each_stage_at_its_own_age():
    images = [image("ami-new", 1), image("ami-5", 5), image("ami-20", 20), image("ami-50", 50)]
    plan = staged(images, keep_latest=1, deprecate_after_days=3, disable_after_days=15, deregister_after_days=40)
    assert ids(plan["deprecated"]) == ["ami-5"]
    assert ids(plan["disabled"]) == ["ami-20"]
    assert ids(plan["deregistered"]) == ["ami-50"]
    assert reasons(plan) == {"ami-new": "newest image"}


def test_disable_without_a_deregistration_age_is_the_last_stage():
    images = [image("ami-new", 1), image("ami-20", 20), image("ami-400", 400)]
    plan = staged(images, keep_latest=1, disable_after_days=15)
    assert ids(plan["disabled"]) == ["ami-20", "ami-400"]
    assert plan["deregistered"] == []


def test_a_disabled_image_is_deregistered_at_the_deregistration_age_and_kept_before():
    images = [image("ami-new", 1), image("ami-30", 30, state="disabled"), image("ami-90", 90, state="disabled")]
    plan = staged(images, keep_latest=1, disable_after_days=15, deregister_after_days=60)
    assert ids(plan["deregistered"]) == ["ami-90"]
    assert plan["disabled"] == []
    assert reasons(plan)["ami-30"] == "disabled; deregistered once 60 days old (30.0 now)"


def test_a_disabled_image_is_never_the_newest_nor_removed_when_newer_than_it():
    images = [image("ami-old", 10), image("ami-dis", 1, state="disabled")]
    plan = staged(images, keep_latest=1, deregister_after_days=0)
    assert reasons(plan) == {"ami-old": "newest image", "ami-dis": "disabled, and newer than the newest available image"}


def test_keep_latest_alone_leaves_disabled_images_alone():
    images = [image("ami-new", 1), image("ami-dis", 30, state="disabled")]
    plan = staged(images, keep_latest=1)
    assert plan["deregistered"] == [] and "disabled" in reasons(plan)["ami-dis"]


# ---------------------------------------------------------------------------------------------
# Deregistration protection


def protected(image_id, age, state):
    img = image(image_id, age)
    img["DeregistrationProtection"] = state
    return img


def test_a_protected_image_is_kept_unless_protection_is_lifted():
    images = [image("ami-new", 1), protected("ami-p", 50, "enabled-without-cooldown")]
    plan = staged(images, keep_latest=1)
    assert plan["deregistered"] == []
    assert reasons(plan)["ami-p"].startswith("deregistration protection is enabled-without-cooldown (lift_protection is false)")
    plan = staged(images, keep_latest=1, lift_protection=True)
    assert plan["deregistered"][0]["image_id"] == "ami-p" and plan["deregistered"][0]["lift_protection"] is True


def test_a_protected_image_past_the_disable_age_is_still_disabled():
    images = [image("ami-new", 1), protected("ami-p", 90, "enabled-without-cooldown")]
    plan = staged(images, keep_latest=1, disable_after_days=10, deregister_after_days=60)
    assert ids(plan["disabled"]) == ["ami-p"] and plan["deregistered"] == []


def test_protection_with_cooldown_is_lifted_and_reported_then_waited_for():
    images = [image("ami-new", 1), protected("ami-c", 50, "enabled-with-cooldown")]
    plan = staged(images, keep_latest=1, lift_protection=True)
    assert ids(plan["protection_lifted"]) == ["ami-c"] and plan["deregistered"] == []
    assert "cooldown" in reasons(plan)["ami-c"]
    images[1]["DeregistrationProtection"] = "disabled-after-2025-11-27T12:00:00Z"
    plan = staged(images, keep_latest=1, lift_protection=True)
    assert plan["protection_lifted"] == [] and plan["deregistered"] == []
    assert plan["protection_cooldowns"][0]["until"] == "2025-11-27T12:00:00Z"
    assert reasons(plan)["ami-c"] == "deregistration protection was lifted with a cooldown that ends at 2025-11-27T12:00:00Z"


# ---------------------------------------------------------------------------------------------
# In-use checks


def test_every_user_is_a_reason_and_the_image_is_only_deprecated():
    images = [image("ami-new", 1), image("ami-old", 50)]
    images[1]["LastLaunchedTime"] = days_ago(3)
    refs = {"ami-old": ["launch template lt-1 (web, default version)", "SSM parameter /web/current"]}
    plan = _prune.plan_region(images, {}, NOW, keep_latest=1, deprecate_after_days=10, keep_launched_within_days=7,
                              references=refs)
    assert plan["deregistered"] == []
    assert ids(plan["deprecated"]) == ["ami-old"]
    assert plan["deprecated"][0]["reason"] == (
        "in use: launch template lt-1 (web, default version); in use: SSM parameter /web/current; "
        "in use: launched at " + days_ago(3)[:19] + "Z, within keep_launched_within_days (7)")


def test_a_launch_older_than_keep_launched_within_days_does_not_keep():
    images = [image("ami-new", 1), image("ami-old", 50)]
    images[1]["LastLaunchedTime"] = days_ago(30)
    plan = staged(images, keep_latest=1, keep_launched_within_days=7)
    assert ids(plan["deregistered"]) == ["ami-old"]


def in_use_world(aws):
    """Per region: a newest image and four old ones, each used in exactly one way, and one unused."""
    for region in REGIONS:
        s = region.split("-")[1][:2]
        aws.add(region, image(f"ami-{s}new", 1))
        for kind in ("lt", "ssm", "launch", "share", "free"):
            aws.add(region, image(f"ami-{s}{kind}", 60))
        aws.templates[region]["lt-1"] = (1, [f"ami-{s}lt", f"ami-{s}new"])  # default 1 is the old image
        aws.parameters[region]["/web/current"] = f"ami-{s}ssm"
        aws.images[region][f"ami-{s}launch"]["LastLaunchedTime"] = days_ago(2)
        aws.shares[f"ami-{s}share"] = [{"UserId": "222222222222"}]


@pytest.mark.parametrize("references_supported", [True, False])
def test_in_use_images_are_kept_with_their_reason_in_every_region(aws, references_supported):
    in_use_world(aws)
    aws.references_supported = references_supported
    result = pruner(max_deletions=10, keep_launched_within_days=7).run()
    for region in REGIONS:
        s = region.split("-")[1][:2]
        plan = result["regions"][region]
        assert ids(plan["deregistered"]) == [f"ami-{s}free"]
        why = reasons(plan)
        assert why[f"ami-{s}lt"] == "in use: launch template lt-1 (lt-1, default version)"
        assert why[f"ami-{s}ssm"] == "in use: SSM parameter /web/current"
        assert why[f"ami-{s}launch"].startswith("in use: launched at ")
        assert why[f"ami-{s}share"] == "in use: shared with account 222222222222 (include_shared is false)"
        assert plan["in_use_checked_by"] == ("DescribeImageReferences" if references_supported else "direct queries")
    # only the unused images were touched
    assert sorted(c[2] for c in aws.mutations() if c[0] in DEREGISTER_CALLS) == ["ami-eafree", "ami-sofree", "ami-wefree"]


def test_include_shared_lets_a_shared_image_go(aws):
    in_use_world(aws)
    result = pruner(max_deletions=10, include_shared=True, check_mode=True).run()
    assert "ami-eashare" in ids(result["regions"]["us-east-1"]["deregistered"])
    assert not any(c[0] == "describe_image_attribute" for c in aws.calls)


def test_the_latest_launch_template_version_keeps_its_image_too(aws):
    aws.add("us-east-1", image("ami-new", 1))
    aws.add("us-east-1", image("ami-old", 60))
    aws.templates["us-east-1"]["lt-9"] = (1, ["ami-new", "ami-new", "ami-old"])
    result = pruner().run()
    assert reasons(result["regions"]["us-east-1"])["ami-old"] == "in use: launch template lt-9 (lt-9, latest version)"


def test_only_candidates_are_checked_for_users(aws):
    aws.add("us-east-1", image("ami-new", 1))
    aws.add("us-east-1", image("ami-2", 2))
    pruner(keep_latest=2).run()
    assert not any(c[0] in ("describe_image_references", "describe_launch_templates") for c in aws.calls)


# ---------------------------------------------------------------------------------------------
# DeregisterImage with DeleteAssociatedSnapshots, and the fallback


@pytest.mark.parametrize("supported", [True, False])
def test_snapshots_go_with_the_image_or_one_by_one_when_the_api_lacks_it(aws, supported):
    aws.delete_with_image_supported = supported
    aws.add("us-east-1", image("ami-new", 1))
    aws.add("us-east-1", image("ami-a", 50, snapshots=["snap-a", "snap-shared"]))
    aws.add("us-east-1", image("ami-b", 60, snapshots=["snap-b", "snap-shared"]))
    result = pruner(max_deletions=2).run()
    plan = result["regions"]["us-east-1"]
    assert sorted(plan["deleted_snapshots"]) == ["snap-a", "snap-b", "snap-shared"]
    assert aws.snapshots["us-east-1"] == {"snap-new"}
    names = [c[0] for c in aws.mutations()]
    if supported:
        assert "delete_snapshot" not in names and names.count("deregister_image_with_snapshots") == 2
    else:
        assert names.count("deregister_image") == 2 and names.count("delete_snapshot") == 3
    assert "delete_with_image" not in plan


def test_lifting_protection_comes_before_deregistration(aws):
    aws.add("us-east-1", image("ami-new", 1))
    aws.add("us-east-1", protected("ami-p", 50, "enabled-without-cooldown"))
    aws.protection["ami-p"] = "enabled-without-cooldown"
    assert pruner(check_mode=True).run()["regions"]["us-east-1"]["deregistered"] == []
    pruner(lift_protection=True).run()
    assert [c[0] for c in aws.mutations()] == ["disable_image_deregistration_protection", "deregister_image_with_snapshots"]
    assert "ami-p" not in aws.images["us-east-1"]


# ---------------------------------------------------------------------------------------------
# state=restored


def restore_world(aws):
    for region in REGIONS[:2]:
        s = region.split("-")[1][:2]
        aws.add(region, image(f"ami-{s}1", 1, tags={"bakery:version": "1"}))
        aws.add(region, image(f"ami-{s}0", 9, tags={"bakery:version": "0"}, state="disabled"))
    aws.add("ap-southeast-2", image("ami-other", 9, tags={"bakery:version": "0", "bakery:family": "other"}, state="disabled"))


def test_restore_enables_the_disabled_version_in_every_region_and_says_to_reshare(aws):
    restore_world(aws)
    predicted = pruner(check_mode=True, state="restored", version="0", keep_latest=None).run()
    assert aws.mutations() == []
    result = pruner(state="restored", version="0", keep_latest=None).run()
    assert result["changed"] is True and result["regions"] == predicted["regions"]
    assert sorted(c[2] for c in aws.mutations() if c[0] == "enable_image") == ["ami-ea0", "ami-we0"]
    assert sorted(c[2] for c in aws.mutations() if c[0] == "create_tags") == [("ami-ea0",), ("ami-we0",)]
    # no sharing record on them: the result names them and says to share them by hand
    assert "ami-ea0, ami-we0 must be re-shared" in result["launch_permissions"]
    assert aws.images["ap-southeast-2"]["ami-other"]["State"] == "disabled"
    # a rerun finds them restored (bakery:restored-at) and changes nothing
    aws.calls.clear()
    again = pruner(state="restored", version="0", keep_latest=None).run()
    assert again["changed"] is False and aws.mutations() == []
    assert all(plan["restored"] == [] for plan in again["regions"].values())


ACCOUNT = "111122223333"
ORG = "arn:aws:organizations::111122223333:organization/o-abcdefghij"


def test_restore_shares_again_from_the_record_and_a_rerun_changes_nothing(aws):
    record = {"bakery:shared-with": f"{ACCOUNT}+snapshots 111122223333:organization/o-abcdefghij"}
    for region in REGIONS:
        aws.add(region, image(f"ami-{region[:2]}0", 9, tags=dict(record, **{"bakery:version": "0"}), state="disabled"))
    aws.volume_perms["snap-us0"] = [ACCOUNT]  # DisableImage leaves the snapshots' permissions
    predicted = pruner(check_mode=True, state="restored", version="0", keep_latest=None).run()
    assert aws.mutations() == []
    done = pruner(state="restored", version="0", keep_latest=None).run()
    assert done["changed"] is True and predicted["regions"] == done["regions"]
    assert done["launch_permissions"] == "shared again as their bakery:shared-with tags record"
    for region in REGIONS:
        image_id = f"ami-{region[:2]}0"
        assert aws.shares[image_id] == [{"UserId": ACCOUNT}, {"OrganizationArn": ORG}]
        assert aws.volume_perms[image_id.replace("ami-", "snap-")] == [ACCOUNT]
        (item,) = done["regions"][region]["reshared"]
        expected_snapshots = {} if region.startswith("us") else {image_id.replace("ami-", "snap-"): [ACCOUNT]}
        assert item["snapshot_permissions"] == expected_snapshots
    aws.calls.clear()
    for check_mode in (True, False):
        again = pruner(check_mode=check_mode, state="restored", version="0", keep_latest=None).run()
        assert again["changed"] is False
        assert all(not plan["restored"] and not plan["reshared"] for plan in again["regions"].values())
    assert aws.mutations() == []


def test_restore_without_reshare_only_enables_and_says_to_share_again(aws):
    aws.add("us-east-1", image("ami-us0", 9, tags={"bakery:version": "0", "bakery:shared-with": ACCOUNT}, state="disabled"))
    done = pruner(state="restored", version="0", keep_latest=None, reshare=False, regions=["us-east-1"]).run()
    assert done["changed"] is True and "must be re-shared" in done["launch_permissions"]
    assert [c[0] for c in aws.mutations()] == ["enable_image", "create_tags"]
    assert "ami-us0" not in aws.shares


def test_restore_refuses_an_image_without_room_for_its_restored_tag_before_any_change(aws):
    tags = dict({f"t{n}": "v" for n in range(48)}, **{"bakery:version": "0"})
    aws.add("us-east-1", image("ami-us0", 9, tags=tags, state="disabled"))
    with pytest.raises(_prune.PruneError, match="ami-us0 in us-east-1 carries 50 tags and has no room for bakery:restored-at"):
        pruner(state="restored", version="0", keep_latest=None).run()
    assert aws.mutations() == []


@pytest.mark.parametrize("value", ["yes please", 1])
def test_restore_refuses_a_reshare_that_is_not_a_boolean(aws, value):
    with pytest.raises(_prune.PruneError, match=f"reshare: must be true or false, got {value!r}"):
        pruner(state="restored", version="0", keep_latest=None, reshare=value).run()
    assert aws.calls == []


@pytest.mark.parametrize("version,fragment", [
    ("1", "state=restored: only a disabled image can be restored, and ami-we1 in eu-west-1 is available without "
          "bakery:restored-at (it was never disabled and restored); only a disabled image can be restored, and ami-ea1 "
          "in us-east-1 is available"),
    ("7", "has no image of version '7'"),
])
def test_restoring_what_is_not_disabled_fails_before_any_change(aws, version, fragment):
    restore_world(aws)
    for check_mode in (True, False):
        with pytest.raises(_prune.PruneError) as caught:
            pruner(check_mode=check_mode, state="restored", version=version, keep_latest=None).run()
        assert fragment in caught.value.msg
    assert aws.mutations() == []


def test_bad_stage_options_fail_before_any_call(aws):
    seed(aws)
    with pytest.raises(_prune.PruneError, match="disable_after_days: 5 days is before deprecate_after_days"):
        pruner(deprecate_after_days=30, disable_after_days=5).run()
    assert aws.calls == []


def test_the_property_catches_a_pruner_that_ignores_users(random_aws, monkeypatch):
    # the in-use checks planted away: every image looks unused
    monkeypatch.setattr(_prune, "_blockers", lambda image, references, now, policy: [])
    found = all_violations()
    assert any("which is in use" in problem for problems in found.values() for problem in problems), found


def test_the_property_catches_a_pruner_that_ignores_protection(random_aws, monkeypatch):
    monkeypatch.setattr(_prune, "_protection_step", lambda plan, image, lift: (True, False, None))
    found = all_violations()
    # the fake refuses as EC2 does; the property reports the failed run
    assert any("OperationNotPermitted" in problem for problems in found.values() for problem in problems), found


# ---------------------------------------------------------------------------------------------
# Recycle Bin


def rule(identifier, tags=None, exclude=None, days=7, kind="EC2_IMAGE"):
    found = {"Identifier": identifier, "ResourceType": kind, "Status": "available",
             "RetentionPeriod": {"RetentionPeriodValue": days, "RetentionPeriodUnit": "DAYS"}}
    if tags:
        found["ResourceTags"] = [{"ResourceTagKey": k, "ResourceTagValue": v} for k, v in tags.items()]
    if exclude:
        found["ExcludeResourceTags"] = [{"ResourceTagKey": k, "ResourceTagValue": v} for k, v in exclude.items()]
    return found


@pytest.mark.parametrize("candidate,covers", [
    (rule("r1"), True),
    (rule("r2", tags={"bakery:family": "web-base"}), True),
    (rule("r3", tags={"bakery:family": "other"}), False),
    (rule("r4", tags={"bakery:family": ""}), True),  # a key without value matches any value
    (rule("r5", exclude={"bakery:family": "web-base"}), False),
    (rule("r6", exclude={"team": "x"}), True),
    (rule("r7", kind="EBS_SNAPSHOT"), False),
    (rule("r8", tags={"team": "x", "bakery:family": "web-base"}), True),
])
def test_which_rules_cover_a_family(candidate, covers):
    assert _prune.rule_covers(candidate, {"bakery:family": "web-base"}) is covers


def test_a_tag_level_rule_is_planned_only_where_none_covers():
    wanted = {"bakery:family": "web-base"}
    plan = _prune.recycle_bin_plan([rule("r3", tags={"bakery:family": "other"})], wanted, "web-base", 30)
    assert plan["covered"] is False and plan["create_rule"]["ResourceTags"] == [
        {"ResourceTagKey": "bakery:family", "ResourceTagValue": "web-base"}]
    assert plan["create_rule"]["RetentionPeriod"] == {"RetentionPeriodValue": 30, "RetentionPeriodUnit": "DAYS"}
    plan = _prune.recycle_bin_plan([rule("r1", days=10)], wanted, "web-base", 30)
    assert plan == {"covered": True, "create_rule": None,
                    "rules": [{"identifier": "r1", "retention_days": 10, "level": "region", "description": None}]}
    assert _prune.recycle_bin_plan([], wanted, "web-base", None)["create_rule"] is None
    assert _prune.recycle_bin_plan(None, wanted, "web-base", 30, unknown="denied")["covered"] is None


def test_the_rule_is_made_before_any_deregistration_and_once(aws):
    seed(aws)
    aws.rules["rbin-eu-west-1"] = [rule("r-eu", tags={"bakery:family": "web-base"})]
    predicted = pruner(check_mode=True, rbin=True, max_deletions=4, recycle_bin_retention_days=30).run()
    assert aws.mutations() == []
    result = pruner(rbin=True, max_deletions=4, recycle_bin_retention_days=30).run()
    for region in REGIONS:
        planned, done = predicted["regions"][region]["recycle_bin"], result["regions"][region]["recycle_bin"]
        assert planned["create_rule"] == done["create_rule"]
        assert (done["create_rule"] is None) == (region == "eu-west-1")
    made = [c for c in aws.mutations() if c[0] == "create_rbin_rule"]
    assert sorted(c[1] for c in made) == ["rbin-ap-southeast-2", "rbin-us-east-1"]
    for client in ("us-east-1", "ap-southeast-2"):
        names = [c[0] for c in aws.mutations() if c[1] in (client, f"rbin-{client}")]
        assert names[0] == "create_rbin_rule" and any(name in DEREGISTER_CALLS for name in names)
    again = pruner(rbin=True, max_deletions=4, recycle_bin_retention_days=30).run()
    assert again["changed"] is False
    assert all(again["regions"][region]["recycle_bin"]["covered"] for region in REGIONS)


def test_rules_that_cannot_be_read_are_reported_not_fatal(aws):
    seed(aws)
    aws.rbin_denied = True
    result = pruner(rbin=True, check_mode=True, max_deletions=4).run()
    assert result["regions"]["us-east-1"]["recycle_bin"] == {
        "covered": None, "rules": [], "create_rule": None,
        "reason": "the Recycle Bin rules could not be read (AccessDeniedException)"}
    with pytest.raises(_prune.PartialFailure, match="list Recycle Bin rules"):
        pruner(rbin=True, check_mode=True, max_deletions=4, recycle_bin_retention_days=3).run()


# ---------------------------------------------------------------------------------------------
# Stages by count


def test_each_stage_beyond_its_own_count():
    images = [image(f"ami-{n}", n) for n in range(1, 9)]  # ami-1 newest ... ami-8 oldest
    plan = staged(images, keep_latest=2, deprecate_after_count=3, disable_after_count=5, deregister_after_count=7)
    assert reasons(plan)["ami-3"].endswith("among the 3 newest (deprecate_after_count)")
    assert ids(plan["deprecated"]) == ["ami-4", "ami-5"]
    assert ids(plan["disabled"]) == ["ami-6", "ami-7"]
    assert ids(plan["deregistered"]) == ["ami-8"]


def test_age_and_count_of_one_stage_must_both_be_reached():
    images = [image(f"ami-{n}", n * 10) for n in range(1, 6)]  # 10, 20, ... 50 days
    plan = staged(images, keep_latest=1, disable_after_days=25, disable_after_count=4)
    # ami-3 and ami-4 are old enough but among the 4 newest; only ami-5 passes both
    assert ids(plan["disabled"]) == ["ami-5"]
    assert "among the 4 newest (disable_after_count)" in reasons(plan)["ami-3"]
    assert "among the 4 newest (disable_after_count)" in reasons(plan)["ami-4"]
    assert "younger than disable_after_days" in reasons(plan)["ami-2"]


@pytest.mark.parametrize("overrides,fragment", [
    ({"deprecate_after_count": 4, "disable_after_count": 2}, "disable_after_count: 2 images is fewer than deprecate_after_count (4)"),
    ({"deregister_after_count": 0}, "deregister_after_count: must be a whole number of images from 1 to 100000, got 0"),
    ({"deregister_after_count": 3, "deregister": False}, "deregister_after_count: deregister is false"),
])
def test_stage_counts_are_checked(overrides, fragment):
    params = dict({"family": "web-base", "keep_latest": 1}, **overrides)
    assert any(fragment in error for error in _prune.validate(params)), _prune.validate(params)
