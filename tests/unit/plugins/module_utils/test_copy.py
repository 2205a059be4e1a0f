# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import itertools
import threading
from unittest.mock import patch

import pytest

botocore = pytest.importorskip("botocore")

from botocore.exceptions import ClientError  # noqa: E402

from ansible_collections.bakery.ami.plugins.module_utils import _copy  # noqa: E402
from ansible_collections.bakery.ami.plugins.module_utils import _copy_request  # noqa: E402

ACCOUNT = "123456789012"
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
KNOWN = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2", "eu-central-1"]
MUTATING = {
    "copy_image",
    "create_tags",
    "modify_image_attribute",
    "modify_snapshot_attribute",
    "enable_image_deprecation",
    "deregister_image",
    "delete_snapshot",
    "enable_image_deregistration_protection",
}


def _error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (fake)"}}, operation)


class World:
    """Every fake region of one account; ids are unique across regions."""

    def __init__(self):
        self.counter = itertools.count(1)
        self.lock = threading.Lock()
        self.regions: dict = {}
        self.max_in_flight = 0
        self.barrier = None  # a threading.Barrier every CopyImage waits at: proves they overlap

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter):017x}"

    def client(self, region: str) -> "FakeEC2":
        if region not in self.regions:
            self.regions[region] = FakeEC2(region, self)
        return self.regions[region]

    def in_flight(self) -> int:
        return sum(
            1
            for client in self.regions.values()
            for image in client.images.values()
            if image["State"] == "pending" and image.get("_copied")
        )

    def calls(self, name: str | None = None) -> list:
        return [
            (client.region, call, params)
            for client in self.regions.values()
            for call, params in client.calls
            if name is None or call == name
        ]


class FakeEC2:
    """Enough of an EC2 client for the copier; copies turn available after `copy_polls` describes."""

    def __init__(self, region: str, world: World):
        self.region = region
        self.world = world
        self.images: dict = {}
        self.snapshots: dict = {}
        self.launch: dict = {}
        self.volume_perms: dict = {}
        self.tokens: dict = {}
        self.calls: list = []
        self.copy_polls = 1
        self.copy_fails = False  # copies go to state failed
        self.copy_keeps_tags = True  # False: CopyImageTags and TagSpecifications are ignored
        self.dead_tokens: set = set()  # tokens that answer with a deregistered image
        self.protect_fails = False  # EnableImageDeregistrationProtection is refused

    # -- helpers for the tests
    def add_image(self, name: str, state: str = "available", tags: dict | None = None, owner: str = ACCOUNT) -> str:
        image_id = self.world.new_id("ami")
        snapshot_id = self.add_snapshot(tags=None)
        self.images[image_id] = {
            "ImageId": image_id,
            "Name": name,
            "Description": f"{name} description",
            "State": state,
            "OwnerId": owner,
            "CreationDate": "2025-01-01T00:00:00.000Z",
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}],
            "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        }
        return image_id

    def add_snapshot(self, tags: dict | None = None, description: str = "") -> str:
        snapshot_id = self.world.new_id("snap")
        self.snapshots[snapshot_id] = {
            "SnapshotId": snapshot_id,
            "OwnerId": ACCOUNT,
            "Description": description,
            "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        }
        return snapshot_id

    def tags_of(self, resource_id: str) -> dict:
        resource = self.images.get(resource_id) or self.snapshots[resource_id]
        return {tag["Key"]: tag["Value"] for tag in resource["Tags"]}

    # -- the client API
    def can_paginate(self, operation):
        return False

    def _record(self, name, params):
        with self.world.lock:
            self.calls.append((name, params))

    def _advance(self, image):
        if image["State"] == "pending" and image.get("_copied"):
            image["_polls"] -= 1
            if image["_polls"] <= 0:
                image["State"] = "failed" if self.copy_fails else "available"
                if image["State"] == "failed":
                    image["StateReason"] = {"Code": "Client.Fake", "Message": "copy failed (fake)"}

    def describe_images(self, ImageIds=None, Owners=None, Filters=None, IncludeDeprecated=None, **_):
        self._record("describe_images", dict(ImageIds=ImageIds, Owners=Owners, Filters=Filters))
        with self.world.lock:
            images = list(self.images.values())
            if ImageIds:
                missing = [i for i in ImageIds if i not in self.images]
                if missing:
                    raise _error("InvalidAMIID.NotFound", "DescribeImages")
                images = [self.images[i] for i in ImageIds]
            if Owners == ["self"]:
                images = [i for i in images if i["OwnerId"] == ACCOUNT]
            for image in images:
                self._advance(image)
            for flt in Filters or []:
                name, values = flt["Name"], flt["Values"]
                if name.startswith("tag:"):
                    key = name[4:]
                    images = [i for i in images if {t["Key"]: t["Value"] for t in i["Tags"]}.get(key) in values]
                elif name == "state":
                    images = [i for i in images if i["State"] in values]
                elif name == "image-id":
                    images = [i for i in images if i["ImageId"] in values]
                elif name == "name":
                    images = [i for i in images if i["Name"] in values]
                else:
                    raise AssertionError(f"unexpected filter {name}")
            return {"Images": [{k: v for k, v in i.items() if not k.startswith("_")} for i in images]}

    def copy_image(self, **params):
        self._record("copy_image", params)
        if self.world.barrier is not None:
            self.world.barrier.wait(timeout=5)
        with self.world.lock:
            token = params.get("ClientToken")
            if token in self.dead_tokens:
                return {"ImageId": "ami-0000000000000dead"}
            if token in self.tokens:
                known_params, image_id = self.tokens[token]
                if known_params != params:
                    raise _error("IdempotentParameterMismatch", "CopyImage")
                return {"ImageId": image_id}
            if any(i["Name"] == params["Name"] for i in self.images.values()):
                raise _error("InvalidAMIName.Duplicate", "CopyImage")
            source_client = self.world.regions[params["SourceRegion"]]
            source = source_client.images[params["SourceImageId"]]
            image_id = self.world.new_id("ami")
            snapshot_id = self.add_snapshot(description=f"Copied for DestinationAmi {image_id} from SourceAmi")
            tags: dict = {}
            snapshot_tags: dict = {}
            if self.copy_keeps_tags:
                if params.get("CopyImageTags"):
                    tags.update({t["Key"]: t["Value"] for t in source["Tags"] if not t["Key"].startswith("aws:")})
                for spec in params.get("TagSpecifications") or []:
                    target = tags if spec["ResourceType"] == "image" else snapshot_tags
                    target.update({t["Key"]: t["Value"] for t in spec["Tags"]})
            self.snapshots[snapshot_id]["Tags"] = [{"Key": k, "Value": v} for k, v in snapshot_tags.items()]
            self.images[image_id] = {
                "ImageId": image_id,
                "Name": params["Name"],
                "Description": params.get("Description"),
                "State": "pending",
                "OwnerId": ACCOUNT,
                "CreationDate": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}],
                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                "_copied": True,
                "_polls": self.copy_polls,
            }
            if token:
                self.tokens[token] = (dict(params), image_id)
            self.world.max_in_flight = max(self.world.max_in_flight, self.world.in_flight())
            return {"ImageId": image_id}

    def create_tags(self, Resources, Tags):
        self._record("create_tags", dict(Resources=Resources, Tags=Tags))
        for resource_id in Resources:
            resource = self.images.get(resource_id) or self.snapshots[resource_id]
            current = {t["Key"]: t["Value"] for t in resource["Tags"]}
            current.update({t["Key"]: t["Value"] for t in Tags})
            resource["Tags"] = [{"Key": k, "Value": v} for k, v in current.items()]

    def delete_tags(self, Resources, Tags):
        self._record("delete_tags", dict(Resources=Resources, Tags=Tags))
        keys = {t["Key"] for t in Tags}
        for resource_id in Resources:
            resource = self.images.get(resource_id) or self.snapshots[resource_id]
            resource["Tags"] = [t for t in resource["Tags"] if t["Key"] not in keys]

    def describe_snapshots(self, SnapshotIds=None, OwnerIds=None, Filters=None, **_):
        self._record("describe_snapshots", dict(SnapshotIds=SnapshotIds, OwnerIds=OwnerIds, Filters=Filters))
        snapshots = list(self.snapshots.values())
        if SnapshotIds:
            snapshots = [s for s in snapshots if s["SnapshotId"] in SnapshotIds]
        for flt in Filters or []:
            assert flt["Name"] == "description"
            needle = flt["Values"][0].strip("*")
            snapshots = [s for s in snapshots if needle in s["Description"]]
        return {"Snapshots": [dict(s) for s in snapshots]}

    def describe_image_attribute(self, ImageId, Attribute):
        self._record("describe_image_attribute", dict(ImageId=ImageId, Attribute=Attribute))
        assert Attribute == "launchPermission"
        return {"ImageId": ImageId, "LaunchPermissions": list(self.launch.get(ImageId, []))}

    def modify_image_attribute(self, ImageId, LaunchPermission):
        self._record("modify_image_attribute", dict(ImageId=ImageId, LaunchPermission=LaunchPermission))
        self.launch.setdefault(ImageId, []).extend(LaunchPermission["Add"])

    def describe_snapshot_attribute(self, SnapshotId, Attribute):
        self._record("describe_snapshot_attribute", dict(SnapshotId=SnapshotId, Attribute=Attribute))
        return {"CreateVolumePermissions": [{"UserId": u} for u in self.volume_perms.get(SnapshotId, [])]}

    def modify_snapshot_attribute(self, SnapshotId, Attribute, OperationType, UserIds):
        self._record("modify_snapshot_attribute", dict(SnapshotId=SnapshotId, UserIds=UserIds))
        assert Attribute == "createVolumePermission" and OperationType == "add"
        self.volume_perms.setdefault(SnapshotId, []).extend(UserIds)

    def enable_image_deprecation(self, ImageId, DeprecateAt):
        self._record("enable_image_deprecation", dict(ImageId=ImageId, DeprecateAt=DeprecateAt))
        self.images[ImageId]["DeprecationTime"] = DeprecateAt.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def enable_image_deregistration_protection(self, ImageId, WithCooldown):
        self._record("enable_image_deregistration_protection", dict(ImageId=ImageId, WithCooldown=WithCooldown))
        if self.protect_fails:
            raise _error("UnauthorizedOperation", "EnableImageDeregistrationProtection")
        state = "enabled-with-cooldown" if WithCooldown else "enabled-without-cooldown"
        self.images[ImageId]["DeregistrationProtection"] = state
        return {"Return": state}

    def deregister_image(self, ImageId):
        self._record("deregister_image", dict(ImageId=ImageId))
        if ImageId not in self.images:
            raise _error("InvalidAMIID.NotFound", "DeregisterImage")
        if self.images[ImageId].get("DeregistrationProtection", "disabled") != "disabled":
            raise _error("InvalidParameterValue", "DeregisterImage")
        del self.images[ImageId]

    def delete_snapshot(self, SnapshotId):
        self._record("delete_snapshot", dict(SnapshotId=SnapshotId))
        del self.snapshots[SnapshotId]


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        with self.lock:
            self.now += seconds


@pytest.fixture
def world():
    world = World()
    for region in KNOWN:
        world.client(region)
    return world


@pytest.fixture
def source(world):
    return world.regions["us-east-1"].add_image("web-base-1.0", tags={"team": "platform", "aws:internal": "x"})


def params(source_id, **extra):
    base = dict(
        source_image_id=source_id,
        source_region="us-east-1",
        regions=["us-west-2", "eu-west-1", "ap-southeast-2"],
        copy_tags=True,
        wait=True,
        wait_timeout=600,
        rollback_on_failure=True,
    )
    base.update(extra)
    return base


def run(world, source_id, check_mode=False, **extra):
    request = _copy_request.build_request(params(source_id, **extra), "us-east-1", KNOWN, now=NOW)
    clock = FakeClock()
    clients = {region: world.regions[region] for region in KNOWN}
    copier = _copy.AmiCopier(request, clients, check_mode, sleep=clock.sleep, clock=clock)
    return copier.run()


# ---------------------------------------------------------------------------------------------
# Input


def test_build_request_normalises_everything():
    request = _copy_request.build_request(
        params(
            "ami-0123456789abcdef0",
            source_region=None,
            regions=["us-west-2", {"region": "eu-west-1", "name": "eu-name", "kms_key_id": "alias/eu"}],
            encrypted=True,
            kms_key_id="alias/all",
            tags={"a": "b"},
            launch_permissions={"user_ids": ["111122223333"], "group_names": ["all"]},
            deprecate_at="2027-01-31T00:00:00Z",
        ),
        "us-east-1",
        KNOWN,
        now=NOW,
    )
    assert request.source_region == "us-east-1"
    assert [spec.region for spec in request.regions] == ["us-west-2", "eu-west-1"]
    assert request.regions[1].name == "eu-name" and request.regions[1].kms_key_id == "alias/eu"
    assert request.launch_permissions == [{"UserId": "111122223333"}, {"Group": "all"}]
    assert request.share_user_ids == ["111122223333"]  # share_snapshots defaults to true with user_ids
    assert request.deprecate_at == datetime.datetime(2027, 1, 31, tzinfo=datetime.timezone.utc)


def test_share_snapshots_can_be_turned_off():
    request = _copy_request.build_request(
        params("ami-0123456789abcdef0", launch_permissions={"user_ids": ["111122223333"]}, share_snapshots=False),
        "us-east-1",
        KNOWN,
        now=NOW,
    )
    assert request.share_user_ids == []


@pytest.mark.parametrize(
    "extra, needle",
    [
        (dict(source_image_id="ami-xyz"), "source_image_id"),
        (dict(source_image_id=None), "source_image_id"),
        (dict(source_region="mars-1"), "source_region"),
        (dict(source_region="us-east-9"), "source_region: unknown region"),
        (dict(regions=[]), "regions: must be a non-empty list"),
        (dict(regions=["us-west-2", "us-west-2"]), "regions: region 'us-west-2' is listed more than once"),
        (dict(regions=["us-west-2", {"region": "us-west-2"}]), "listed more than once"),
        (dict(regions=["eu-nowhere-7"]), "regions[0]: unknown region 'eu-nowhere-7'"),
        (dict(regions=[{"region": "us-west-2", "colour": "red"}]), "regions[0]: unknown key(s) colour"),
        (dict(regions=[{"name": "x"}]), "regions[0]: a dictionary item needs 'region'"),
        (dict(regions=[42]), "regions[0]: must be a region name or a dictionary"),
        (dict(regions=[{"region": "us-west-2", "name": "a"}]), "regions[0] (us-west-2).name"),
        (dict(encrypted=True, kms_key_id="not a key"), "kms_key_id: 'not a key' is not a KMS key reference"),
        (dict(encrypted=True, regions=[{"region": "us-west-2", "kms_key_id": "key!"}]), "regions[0] (us-west-2).kms_key_id"),
        (dict(kms_key_id="alias/x"), "kms_key_id: a KMS key needs encrypted=true"),
        (dict(regions=[{"region": "us-west-2", "kms_key_id": "alias/x"}]), "regions[0] (us-west-2).kms_key_id: a KMS key needs"),
        (dict(launch_permissions={"user_ids": ["12345"]}), "launch_permissions.user_ids: '12345'"),
        (dict(launch_permissions={"group_names": ["everyone"]}), "launch_permissions.group_names"),
        (dict(launch_permissions={"org_arns": ["arn:aws:nope"]}), "launch_permissions.org_arns"),
        (dict(launch_permissions={"org_unit_arns": ["ou-1"]}), "launch_permissions.org_unit_arns"),
        (dict(share_snapshots=True), "share_snapshots: sharing snapshots needs launch_permissions.user_ids"),
        (dict(deprecate_at="2020-01-01T00:00:00Z"), "deprecate_at: '2020-01-01T00:00:00Z' is in the past"),
        (dict(deprecate_at="next tuesday"), "deprecate_at: 'next tuesday' is not an ISO-8601 time"),
        (dict(tags={"bakery:source-image": "x"}), "tags: 'bakery:source-image' is set by ami_copy"),
        (dict(tags={"n": 1}), "tags: the value of tag 'n' must be a string"),
        (dict(name="ab"), "name: AMI names are 3-128 characters"),
        (dict(description="d" * 256), "description: must be at most 255"),
        (dict(max_concurrency=0), "max_concurrency: must be at least 1"),
        (dict(wait_timeout=0), "wait_timeout: must be a positive"),
    ],
)
def test_bad_input_names_the_option(extra, needle):
    with pytest.raises(_copy_request.InputError) as excinfo:
        _copy_request.build_request(params("ami-0123456789abcdef0", **extra), "us-east-1", KNOWN, now=NOW)
    assert needle in str(excinfo.value)


def test_missing_region_everywhere():
    with pytest.raises(_copy_request.InputError, match="source_region: no region given"):
        _copy_request.build_request(params("ami-0123456789abcdef0", source_region=None), None, KNOWN, now=NOW)


def test_every_problem_is_reported_at_once():
    with pytest.raises(_copy_request.InputError) as excinfo:
        _copy_request.build_request(
            params("ami-1", regions=["us-west-2", "us-west-2"], deprecate_at="never"), "us-east-1", KNOWN, now=NOW
        )
    message = str(excinfo.value)
    assert "source_image_id" in message and "more than once" in message and "deprecate_at" in message


# ---------------------------------------------------------------------------------------------
# Pure helpers


def test_client_token_is_deterministic_and_short():
    token = _copy_request.client_token("us-east-1", "ami-1", "us-west-2", "web")
    assert token == _copy_request.client_token("us-east-1", "ami-1", "us-west-2", "web")
    assert len(token) <= 64
    others = {
        _copy_request.client_token("us-east-1", "ami-1", "eu-west-1", "web"),
        _copy_request.client_token("us-east-1", "ami-1", "us-west-2", "web2"),
        _copy_request.client_token("us-east-1", "ami-2", "us-west-2", "web"),
        _copy_request.client_token("us-east-1", "ami-1", "us-west-2", "web", generation=1),
    }
    assert token not in others and len(others) == 4


def test_pick_existing_prefers_available_then_name():
    images = [
        {"ImageId": "ami-1", "State": "pending", "Name": "web"},
        {"ImageId": "ami-2", "State": "available", "Name": "other"},
        {"ImageId": "ami-3", "State": "available", "Name": "web"},
    ]
    assert _copy.pick_existing(images, "web")["ImageId"] == "ami-3"
    assert _copy.pick_existing(images[:1], "web")["ImageId"] == "ami-1"
    assert _copy.pick_existing([], "web") is None


@pytest.mark.parametrize(
    "current, differs",
    [
        (None, True),
        ("2027-01-31T00:00:00.000Z", False),
        ("2027-01-31T00:00:29.000Z", False),
        ("2027-01-31T00:05:00.000Z", True),
    ],
)
def test_deprecation_tolerates_minute_rounding(current, differs):
    desired = datetime.datetime(2027, 1, 31, tzinfo=datetime.timezone.utc)
    assert _copy.deprecation_differs(current, desired) is differs
    assert _copy.deprecation_differs(current, None) is False


# ---------------------------------------------------------------------------------------------
# The copier


def test_copies_every_region_with_tags_permissions_and_deprecation(world, source):
    result = run(
        world,
        source,
        regions=["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"],
        tags={"extra": "1"},
        launch_permissions={"user_ids": ["111122223333"], "org_arns": ["arn:aws:organizations::111122223333:organization/o-abcdefghij"]},
        deprecate_at="2027-01-31T00:00:00Z",
    )
    assert result["changed"] is True
    assert result["failed_regions"] == {}
    # the source region listed: no copy, but the source gets the same sharing
    assert result["images"]["us-east-1"] == dict(result["images"]["us-east-1"], image_id=source, changed=True)
    assert world.regions["us-east-1"].launch[source][0] == {"UserId": "111122223333"}
    copies = world.calls("copy_image")
    assert sorted(region for region, _call, _p in copies) == ["ap-southeast-2", "eu-west-1", "us-west-2"]
    expected_tags = {
        "team": "platform",
        "extra": "1",
        "bakery:source-image": f"us-east-1/{source}",
        "bakery:source-name": "web-base-1.0",
    }
    for region, _call, call in copies:
        assert call["SourceRegion"] == "us-east-1" and call["SourceImageId"] == source
        assert call["ClientToken"] == _copy_request.client_token("us-east-1", source, region, "web-base-1.0")
        assert call["CopyImageTags"] is True
        assert call["Description"] == "web-base-1.0 description"
        client = world.regions[region]
        entry = result["images"][region]
        assert entry["state"] == "available" and entry["changed"] is True
        # each copy records its own sharing (the image's tags, not its snapshots')
        record = {"bakery:shared-with": "111122223333+snapshots 111122223333:organization/o-abcdefghij"}
        assert entry["tags"] == dict(expected_tags, **record)
        assert client.tags_of(entry["image_id"]) == dict(expected_tags, **record)
        (snapshot_id,) = entry["snapshot_ids"]
        assert client.tags_of(snapshot_id) == expected_tags
        assert client.launch[entry["image_id"]] == [
            {"UserId": "111122223333"},
            {"OrganizationArn": "arn:aws:organizations::111122223333:organization/o-abcdefghij"},
        ]
        assert client.volume_perms[snapshot_id] == ["111122223333"]
        assert client.images[entry["image_id"]]["DeprecationTime"] == "2027-01-31T00:00:00.000Z"
    assert result["diff"] == {"before": {"regions": []}, "after": {"regions": ["ap-southeast-2", "eu-west-1", "us-west-2"]}}
    # aws: tags never travel
    assert "aws:internal" not in result["images"]["us-west-2"]["tags"]


def test_copies_start_concurrently_by_default(world, source):
    # Three CopyImage calls meet at a barrier: run one at a time, the first would time out there.
    world.barrier = threading.Barrier(3)
    result = run(world, source)
    assert world.barrier.broken is False
    assert {entry["state"] for entry in result["images"].values()} == {"available"}


def test_max_concurrency_bounds_copies_in_flight(world, source):
    for client in world.regions.values():
        client.copy_polls = 3
    result = run(world, source, max_concurrency=1)
    assert world.max_in_flight == 1
    assert all(entry["state"] == "available" for entry in result["images"].values())


def test_rerun_makes_no_copy_and_reports_unchanged(world, source):
    extra = dict(tags={"extra": "1"}, launch_permissions={"user_ids": ["111122223333"]}, deprecate_at="2027-01-31T00:00:00Z")
    first = run(world, source, **extra)
    for client in world.regions.values():
        client.calls.clear()
    second = run(world, source, **extra)
    assert second["changed"] is False
    assert all(entry["changed"] is False for entry in second["images"].values())
    assert {r: e["image_id"] for r, e in second["images"].items()} == {r: e["image_id"] for r, e in first["images"].items()}
    assert not [call for call in world.calls() if call[1] in MUTATING]
    assert second["diff"]["before"] == second["diff"]["after"]


def test_check_mode_starts_nothing_and_predicts_change(world, source):
    result = run(world, source, check_mode=True, launch_permissions={"user_ids": ["111122223333"]})
    assert result["changed"] is True
    assert not [call for call in world.calls() if call[1] in MUTATING]
    assert {entry["state"] for entry in result["images"].values()} == {"predicted"}
    assert result["diff"]["after"]["regions"] == ["ap-southeast-2", "eu-west-1", "us-west-2"]


def test_check_mode_after_a_run_predicts_no_change(world, source):
    run(world, source, tags={"extra": "1"})
    result = run(world, source, check_mode=True, tags={"extra": "1"})
    assert result["changed"] is False


def test_check_mode_predicts_a_missing_permission_on_an_existing_copy(world, source):
    run(world, source)
    for client in world.regions.values():
        client.calls.clear()
    result = run(world, source, check_mode=True, launch_permissions={"user_ids": ["111122223333"]})
    assert result["changed"] is True
    assert all(entry["changed"] for entry in result["images"].values())
    assert not [call for call in world.calls() if call[1] in MUTATING]


def test_existing_copy_is_reused_and_brought_up_to_date(world, source):
    west = world.regions["us-west-2"]
    existing = west.add_image("old-name", tags={"bakery:source-image": f"us-east-1/{source}"})
    result = run(world, source, launch_permissions={"user_ids": ["111122223333"]})
    assert result["images"]["us-west-2"]["image_id"] == existing
    assert not [call for call in west.calls if call[0] == "copy_image"]
    assert result["images"]["us-west-2"]["changed"] is True  # tags and permissions were added
    assert west.tags_of(existing)["team"] == "platform"
    assert west.launch[existing] == [{"UserId": "111122223333"}]
    assert result["diff"]["before"] == {"regions": ["us-west-2"]}


def test_copy_of_another_owner_or_failed_state_is_not_reused(world, source):
    west = world.regions["us-west-2"]
    tag = {"bakery:source-image": f"us-east-1/{source}"}
    west.add_image("foreign", tags=tag, owner="999988887777")
    west.add_image("broken", state="failed", tags=tag)
    result = run(world, source)
    assert len([call for call in west.calls if call[0] == "copy_image"]) == 1
    assert result["images"]["us-west-2"]["changed"] is True


def test_tags_missing_after_copy_are_reapplied(world, source):
    for client in world.regions.values():
        client.copy_keeps_tags = False
    result = run(world, source, tags={"extra": "1"})
    entry = result["images"]["eu-west-1"]
    client = world.regions["eu-west-1"]
    assert client.tags_of(entry["image_id"])["team"] == "platform"
    assert client.tags_of(entry["image_id"])["bakery:source-image"] == f"us-east-1/{source}"
    # the snapshots of a copy this run made are trusted to CopyImage's tag specification: not read
    assert not [call for call in client.calls if call[0] == "describe_snapshots"]
    # a rerun reuses the copy and does read its snapshots: what they lack is added
    again = run(world, source, tags={"extra": "1"})
    assert again["images"]["eu-west-1"]["image_id"] == entry["image_id"]
    assert client.tags_of(entry["snapshot_ids"][0])["extra"] == "1"


def test_copy_tags_false_keeps_the_source_tags_off(world, source):
    result = run(world, source, copy_tags=False)
    (region, _call, call), *_others = world.calls("copy_image")
    assert call["CopyImageTags"] is False
    assert "team" not in result["images"][region]["tags"]


def test_per_region_overrides_and_encryption(world, source):
    run(
        world,
        source,
        regions=["us-west-2", {"region": "eu-west-1", "name": "eu copy", "description": "EU", "kms_key_id": "alias/eu"}],
        encrypted=True,
        kms_key_id="alias/all",
        name="global name",
    )
    calls = {region: call for region, _c, call in world.calls("copy_image")}
    assert calls["us-west-2"]["Name"] == "global name" and calls["us-west-2"]["KmsKeyId"] == "alias/all"
    assert calls["eu-west-1"]["Name"] == "eu copy" and calls["eu-west-1"]["KmsKeyId"] == "alias/eu"
    assert calls["eu-west-1"]["Description"] == "EU" and calls["eu-west-1"]["Encrypted"] is True


def test_failure_in_one_region_rolls_back_the_others(world, source):
    west = world.regions["us-west-2"]
    kept = west.add_image("kept copy", tags={"bakery:source-image": f"us-east-1/{source}"})
    kept_snapshots = set(west.snapshots)
    world.regions["eu-west-1"].add_image("web-base-1.0")  # the name is taken there
    world.barrier = threading.Barrier(2)  # ap-southeast-2 and eu-west-1 start together
    with pytest.raises(_copy.CopyFailed) as excinfo:
        run(world, source)
    result = excinfo.value.result
    assert list(result["failed_regions"]) == ["eu-west-1"]
    assert "InvalidAMIName.Duplicate" in result["failed_regions"]["eu-west-1"]
    assert "eu-west-1" in str(excinfo.value)
    # the copy started in ap-southeast-2 is gone with its snapshot; the earlier us-west-2 copy stays
    ap = world.regions["ap-southeast-2"]
    assert list(result["rolled_back"]) == ["ap-southeast-2"]
    assert not [i for i in ap.images.values() if i.get("_copied")]
    assert not [s for s in ap.snapshots.values() if s["Description"].startswith("Copied")]
    assert kept in west.images and set(west.snapshots) == kept_snapshots
    assert not [call for call in west.calls if call[0] in ("deregister_image", "delete_snapshot")]
    assert result["images"]["ap-southeast-2"]["state"] == "deregistered"
    assert result["images"]["us-west-2"]["image_id"] == kept
    # a failed run leaves the kept copy as it was (no tags added) and the rolled-back copy does
    # not count: nothing lasting changed
    assert not [call for call in west.calls if call[0] == "create_tags"]
    assert result["changed"] is False
    assert result["images"]["ap-southeast-2"]["changed"] is False


def test_failed_copy_state_fails_the_region_and_rolls_back(world, source):
    world.regions["eu-west-1"].copy_fails = True
    world.regions["eu-west-1"].copy_polls = 2  # pending when it starts, failed at the first wait
    world.barrier = threading.Barrier(3)
    with pytest.raises(_copy.CopyFailed) as excinfo:
        run(world, source)
    result = excinfo.value.result
    assert "copy failed (fake)" in result["failed_regions"]["eu-west-1"]
    assert sorted(result["rolled_back"]) == ["ap-southeast-2", "eu-west-1", "us-west-2"]
    for region in ("ap-southeast-2", "eu-west-1", "us-west-2"):
        assert not [i for i in world.regions[region].images.values() if i.get("_copied")]


def test_without_rollback_the_other_regions_complete(world, source):
    world.regions["eu-west-1"].add_image("web-base-1.0")
    with pytest.raises(_copy.CopyFailed) as excinfo:
        run(world, source, rollback_on_failure=False)
    result = excinfo.value.result
    assert result["rolled_back"] == {}
    assert result["images"]["us-west-2"]["state"] == "available"
    assert result["changed"] is True
    assert not world.calls("deregister_image")


def test_dead_client_token_moves_to_the_next_generation(world, source):
    west = world.regions["us-west-2"]
    west.dead_tokens.add(_copy_request.client_token("us-east-1", source, "us-west-2", "web-base-1.0"))
    result = run(world, source)
    tokens = [call["ClientToken"] for _r, _c, call in world.calls("copy_image") if _r == "us-west-2"]
    assert tokens == [
        _copy_request.client_token("us-east-1", source, "us-west-2", "web-base-1.0"),
        _copy_request.client_token("us-east-1", source, "us-west-2", "web-base-1.0", generation=1),
    ]
    assert result["images"]["us-west-2"]["state"] == "available"


def test_token_answering_with_an_old_failed_copy_moves_on(world, source):
    west = world.regions["us-west-2"]
    old = west.add_image("web-base-1.0 failed", state="failed")
    token = _copy_request.client_token("us-east-1", source, "us-west-2", "web-base-1.0")
    request = _copy_request.build_request(params(source), "us-east-1", KNOWN, now=NOW)
    clock = FakeClock()
    copier = _copy.AmiCopier(request, {r: world.regions[r] for r in KNOWN}, sleep=clock.sleep, clock=clock)
    copier.load_source()
    plan = [p for p in copier.plan() if p.region == "us-west-2"][0]
    west.tokens[token] = (dict(copier.copy_params(plan), ClientToken=token), old)
    result = copier.run()
    entry = result["images"]["us-west-2"]
    assert entry["image_id"] != old and entry["state"] == "available"
    assert copier.started["us-west-2"] == entry["image_id"]
    tokens = [call["ClientToken"] for _r, _c, call in world.calls("copy_image") if _r == "us-west-2"]
    assert tokens == [token, _copy_request.client_token("us-east-1", source, "us-west-2", "web-base-1.0", generation=1)]


@pytest.mark.parametrize("hidden_until", [5.0, 8.0])
def test_copy_not_visible_at_first_is_kept(world, source, hidden_until):
    """EC2 may not show a new copy at once: within the grace it is simply waited for; after it,
    the next token meets the copy's name and the module goes back to the same copy."""
    west = world.regions["us-west-2"]
    request = _copy_request.build_request(params(source), "us-east-1", KNOWN, now=NOW)
    clock = FakeClock()
    copier = _copy.AmiCopier(request, {r: world.regions[r] for r in KNOWN}, sleep=clock.sleep, clock=clock)
    copier.load_source()
    plan = [p for p in copier.plan() if p.region == "us-west-2"][0]
    late = west.add_image("web-base-1.0", state="available")
    token = _copy_request.client_token("us-east-1", source, "us-west-2", "web-base-1.0")
    west.tokens[token] = (dict(copier.copy_params(plan), ClientToken=token), late)
    original = west.describe_images

    def hide(**kwargs):
        result = original(**kwargs)
        if clock.now < hidden_until:
            result["Images"] = [i for i in result["Images"] if i["ImageId"] != late]
        return result

    west.describe_images = hide
    result = copier.run()
    assert result["images"]["us-west-2"]["image_id"] == late
    assert result["images"]["us-west-2"]["state"] == "available"
    copies = [call for _r, _c, call in world.calls("copy_image") if _r == "us-west-2"]
    assert len(copies) == (1 if hidden_until < 6 else 2)


def test_token_used_with_other_parameters_moves_on(world, source):
    west = world.regions["us-west-2"]
    token = _copy_request.client_token("us-east-1", source, "us-west-2", "web-base-1.0")
    west.tokens[token] = ({"other": True}, "ami-00000000000000001")
    result = run(world, source)
    assert result["images"]["us-west-2"]["state"] == "available"
    assert len([c for c in west.calls if c[0] == "copy_image"]) == 2


def test_source_region_listed_is_reported_not_copied(world, source):
    result = run(world, source, regions=["us-east-1"])
    assert result["changed"] is False
    assert result["images"]["us-east-1"]["image_id"] == source
    assert not world.calls("copy_image")


def test_missing_source_fails_before_any_copy(world):
    with pytest.raises(_copy_request.InputError, match="source_image_id: image ami-00000000000000999 does not exist"):
        run(world, "ami-00000000000000999")
    assert not world.calls("copy_image")


def test_pending_source_without_wait_fails(world):
    source = world.regions["us-east-1"].add_image("pending-src", state="pending")
    with pytest.raises(_copy_request.InputError, match="source_image_id: .* is still pending"):
        run(world, source, wait=False)
    assert not world.calls("copy_image")


def test_pending_source_that_never_arrives_fails_cleanly(world):
    source = world.regions["us-east-1"].add_image("stuck-src", state="pending")
    with pytest.raises(_copy_request.InputError, match="source_image_id: .* did not become available: timed out"):
        run(world, source, wait_timeout=20)
    assert not world.calls("copy_image")


def test_pending_source_is_waited_for(world):
    east = world.regions["us-east-1"]
    source = east.add_image("pending-src", state="pending")
    east.images[source]["_copied"] = True
    east.images[source]["_polls"] = 2
    result = run(world, source, regions=["us-west-2"])
    assert result["images"]["us-west-2"]["state"] == "available"


def test_no_wait_returns_pending_copies_and_defers_permissions(world, source):
    for client in world.regions.values():
        client.copy_polls = 5
    request = _copy_request.build_request(
        params(source, wait=False, launch_permissions={"user_ids": ["111122223333"]}), "us-east-1", KNOWN, now=NOW
    )
    copier = _copy.AmiCopier(request, {r: world.regions[r] for r in KNOWN})
    result = copier.run()
    assert {entry["state"] for entry in result["images"].values()} == {"pending"}
    assert result["changed"] is True
    assert not world.calls("modify_image_attribute")
    assert len(copier.warnings) == 3 and "launch permissions" in copier.warnings[0]


def test_wait_timeout_fails_the_region(world, source):
    world.regions["eu-west-1"].copy_polls = 10**6
    with pytest.raises(_copy.CopyFailed) as excinfo:
        run(world, source, wait_timeout=30)
    assert "timed out" in excinfo.value.result["failed_regions"]["eu-west-1"]
    assert "eu-west-1" in excinfo.value.result["rolled_back"]


def test_unexpected_error_still_rolls_back_what_this_run_started(world, source):
    def broken(**_kwargs):
        raise RuntimeError("bug")

    world.regions["eu-west-1"].describe_image_attribute = broken
    world.barrier = threading.Barrier(3)
    with pytest.raises(RuntimeError, match="bug"):
        run(world, source, launch_permissions={"user_ids": ["111122223333"]})
    for region in ("ap-southeast-2", "eu-west-1", "us-west-2"):
        assert not [i for i in world.regions[region].images.values() if i.get("_copied")], region


# ---------------------------------------------------------------------------------------------
# Waiting together, pending tags


def test_copies_are_waited_for_together_without_a_poll_at_time_zero(world, source):
    seen = []
    real = _copy._waiter.wait_for_images

    def recording(targets, timeout, **options):
        seen.append((sorted(targets), options.get("spread"), options.get("first_delay")))
        return real(targets, timeout, **options)

    for client in world.regions.values():
        client.copy_polls = 3
    with patch.object(_copy._waiter, "wait_for_images", side_effect=recording):
        result = run(world, source)
    assert seen == [(["ap-southeast-2", "eu-west-1", "us-west-2"], True, _copy._waiter.MIN_DELAY)]
    assert all(entry["state"] == "available" for entry in result["images"].values())


def test_pending_tags_mark_the_copies_until_all_are_available_then_go_everywhere(world, source):
    east = world.regions["us-east-1"]
    source_snapshot = east.images[source]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    east.create_tags([source, source_snapshot], [{"Key": "bakery:expires-at", "Value": "2026-12-01T00:00:00Z"}])
    pending = {"bakery:expires-at": "2026-12-01T00:00:00Z"}
    result = run(world, source, tags={"bakery:run-id": "r1"}, pending_tags=pending)
    assert result["changed"] is True
    for region in ("us-west-2", "eu-west-1", "ap-southeast-2"):
        client = world.regions[region]
        (_name, copy_call), = [c for c in client.calls if c[0] == "copy_image"]
        specs = {spec["ResourceType"]: {t["Key"]: t["Value"] for t in spec["Tags"]} for spec in copy_call["TagSpecifications"]}
        assert specs["snapshot"]["bakery:expires-at"] == pending["bakery:expires-at"]
        entry = result["images"][region]
        # gone from the copy and its snapshot, in one call per region; other tags stay
        deletes = [c for c in client.calls if c[0] == "delete_tags"]
        assert len(deletes) == 1
        assert set(deletes[0][1]["Resources"]) == {entry["image_id"], *entry["snapshot_ids"]}
        assert "bakery:expires-at" not in client.tags_of(entry["image_id"])
        assert "bakery:expires-at" not in client.tags_of(entry["snapshot_ids"][0])
        assert client.tags_of(entry["image_id"])["bakery:run-id"] == "r1"
        assert "bakery:expires-at" not in entry["tags"]
    assert "bakery:expires-at" not in east.tags_of(source)
    assert "bakery:expires-at" not in east.tags_of(source_snapshot)
    # a rerun finds nothing to remove and puts nothing back
    before = {region: len(client.calls) for region, client in world.regions.items()}
    again = run(world, source, tags={"bakery:run-id": "r1"}, pending_tags=pending)
    assert again["changed"] is False
    mutating = [
        (region, call[0]) for region, client in world.regions.items() for call in client.calls[before[region]:]
        if call[0] in ("delete_tags", "create_tags", "copy_image")
    ]
    assert mutating == []


def test_pending_tags_stay_when_a_region_fails(world, source):
    world.regions["eu-west-1"].add_image("web-base-1.0")  # the name is taken there
    with pytest.raises(_copy.CopyFailed):
        run(world, source, rollback_on_failure=False, pending_tags={"bakery:expires-at": "2026-12-01T00:00:00Z"})
    west = world.regions["us-west-2"]
    (copy_id,) = [i for i, image in west.images.items() if image.get("_copied")]
    assert west.tags_of(copy_id)["bakery:expires-at"] == "2026-12-01T00:00:00Z"
    assert not world.calls("delete_tags")


def test_pending_tags_stay_in_check_mode_and_without_wait(world, source):
    pending = {"bakery:expires-at": "2026-12-01T00:00:00Z"}
    east = world.regions["us-east-1"]
    east.create_tags([source], [{"Key": "bakery:expires-at", "Value": "x"}])
    assert run(world, source, check_mode=True, pending_tags=pending)["changed"] is True
    assert not world.calls("delete_tags") and not world.calls("copy_image")
    for client in world.regions.values():
        client.copy_polls = 5
    run(world, source, wait=False, pending_tags=pending)
    assert not world.calls("delete_tags")
    assert east.tags_of(source)["bakery:expires-at"] == "x"


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"pending_tags": {"a": "1"}, "tags": {"a": "2"}}, "pending_tags: 'a' is also in tags"),
        ({"pending_tags": {"bakery:source-image": "x"}}, "pending_tags: 'bakery:source-image' is set by ami_copy"),
        ({"pending_tags": {"": "x"}}, "pending_tags"),
    ],
)
def test_pending_tags_are_validated(extra, message):
    with pytest.raises(_copy_request.InputError, match=message):
        _copy_request.build_request(params("ami-0123456789abcdef0", **extra), "us-east-1", KNOWN, now=NOW)


def test_a_copy_of_this_run_that_fails_before_it_is_seen_fails_the_region_and_is_not_retried(world, source):
    eu = world.regions["eu-west-1"]
    eu.copy_fails = True  # fails at its first look (a KMS key it may not use, say): never seen pending
    with pytest.raises(_copy.CopyFailed) as excinfo:
        run(world, source)
    result = excinfo.value.result
    assert list(result["failed_regions"]) == ["eu-west-1"] and "copy failed (fake)" in result["failed_regions"]["eu-west-1"]
    assert len([c for c in eu.calls if c[0] == "copy_image"]) == 1
    # the failed copy was this run's: rolled back with the others, nothing left in any region
    assert "eu-west-1" in result["rolled_back"]
    assert not [i for client in world.regions.values() for i in client.images.values() if i.get("_copied")]


# ---------------------------------------------------------------------------------------------
# ami_create's copy option


def create_params(**copy):
    return {"name": "web-base-1.0", "tags": {"team": "platform"}, "wait": True, "wait_timeout": 600,
            "copy": dict({"regions": ["us-west-2", "eu-west-1"]}, **copy)}


def test_copy_option_messages_name_the_suboptions():
    with pytest.raises(_copy_request.InputError) as caught:
        _copy_request.request_for_new_image(create_params(regions=["moon-1"], deprecate_at="soon"), "us-east-1", KNOWN, now=NOW)
    message = str(caught.value)
    assert message.startswith("copy.regions")
    assert "copy.deprecate_at: 'soon'" in message


@pytest.mark.parametrize(
    "params,needle",
    [
        (dict(create_params(), wait=False), "copy: the copies start once the image is available; it needs wait=true"),
        (create_params(pending_tags={"team": "x"}), "copy.pending_tags: 'team' is also in tags"),
        (create_params(regions=[]), "copy.regions"),
    ],
)
def test_copy_option_rules(params, needle):
    with pytest.raises(_copy_request.InputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        _copy_request.request_for_new_image(params, "us-east-1", KNOWN, now=NOW)


def test_copy_option_request_copies_from_the_task_region():
    request = _copy_request.request_for_new_image(create_params(pending_tags={"bakery:expires-at": "2026-12-01T00:00:00Z"}), "us-east-1", KNOWN, now=NOW)
    assert request.source_region == "us-east-1"
    assert [spec.region for spec in request.regions] == ["us-west-2", "eu-west-1"]
    assert request.wait is True and request.wait_timeout == 600
    assert request.pending_tags == {"bakery:expires-at": "2026-12-01T00:00:00Z"}


def test_copy_of_a_created_image_uses_the_image_as_given_and_skips_the_source_lookup(world, source):
    east = world.regions["us-east-1"]
    request = _copy_request.request_for_new_image(create_params(pending_tags={"bakery:expires-at": "2026-12-01T00:00:00Z"}), "us-east-1", KNOWN, now=NOW)
    image = dict(east.images[source])
    east.create_tags([source], [{"Key": "bakery:expires-at", "Value": "x"}])
    created = {"image_id": source, "name": "web-base-1.0", "tags": {"team": "platform", "bakery:expires-at": "x"}}
    clock = FakeClock()
    warnings = []
    result = _copy.copy_created_image(request, world.regions, created, image, False, warnings.append,
                                      sleep=clock.sleep, clock=clock)
    assert [call for call in east.calls if call[0] == "describe_images"] == []
    assert sorted(result["images"]) == ["eu-west-1", "us-west-2"]
    assert all(entry["state"] == "available" and entry["changed"] for entry in result["images"].values())
    assert "diff" not in result and result["failed_regions"] == {}
    # the pending tag came off the image too (its tags as the caller gave them), and off the copies
    assert "bakery:expires-at" not in east.tags_of(source)
    for region in ("us-west-2", "eu-west-1"):
        assert "bakery:expires-at" not in world.regions[region].tags_of(result["images"][region]["image_id"])
    assert warnings == []


@pytest.mark.parametrize("adopted", [False, True])
def test_copies_of_an_image_made_in_this_task_are_not_looked_for(world, source, adopted):
    """An image ami_create has just made cannot have copies yet: no look-up for them (one call per
    region saved). An adopted image (an earlier run's) is looked for, and its earlier copy reused."""
    # (an earlier copy can only exist for an adopted image)
    earlier = world.regions["us-west-2"].add_image("web-base-1.0", tags={"bakery:source-image": f"us-east-1/{source}"}) \
        if adopted else None
    request = _copy_request.request_for_new_image(create_params(), "us-east-1", KNOWN, now=NOW)
    created = {"image_id": source, "name": "web-base-1.0", "tags": {"team": "platform"}, "adopted": adopted}
    clock = FakeClock()
    result = _copy.copy_created_image(request, world.regions, created, dict(world.regions["us-east-1"].images[source]),
                                      False, lambda _m: None, sleep=clock.sleep, clock=clock)
    for region in ("us-west-2", "eu-west-1"):
        calls = [call[0] for call in world.regions[region].calls]
        before_copy = calls[:calls.index("copy_image")] if "copy_image" in calls else calls
        assert ("describe_images" in before_copy) is adopted, (region, calls)
    assert (result["images"]["us-west-2"]["image_id"] == earlier) is adopted


def test_check_mode_copy_of_an_image_not_made_yet_predicts_every_region(world):
    request = _copy_request.request_for_new_image(create_params(tags={"bakery:run-id": "r1"}), "us-east-1", KNOWN, now=NOW)
    created = {"image_id": None, "name": "web-base-1.0", "tags": {"team": "platform", "aws:x": "y"}}
    result = _copy.copy_created_image(request, world.regions, created, None, True, lambda _m: None)
    assert result["changed"] is True
    assert {region: entry["state"] for region, entry in result["images"].items()} == {
        "us-west-2": "predicted", "eu-west-1": "predicted"}
    tags = result["images"]["us-west-2"]["tags"]
    assert tags == {"team": "platform", "bakery:run-id": "r1", "bakery:source-name": "web-base-1.0"}
    assert world.calls() == []


def test_failed_copy_of_a_created_image_raises_without_diff_and_passes_the_warnings_on(world, source):
    world.regions["eu-west-1"].add_image("web-base-1.0")  # the name is taken there
    request = _copy_request.request_for_new_image(create_params(), "us-east-1", KNOWN, now=NOW)
    created = {"image_id": source, "name": "web-base-1.0", "tags": {"team": "platform"}}
    clock = FakeClock()
    with pytest.raises(_copy.CopyFailed) as caught:
        _copy.copy_created_image(request, world.regions, created, dict(world.regions["us-east-1"].images[source]),
                                 False, lambda _m: None, sleep=clock.sleep, clock=clock)
    assert "eu-west-1" in caught.value.result["failed_regions"]
    assert "diff" not in caught.value.result
    assert "us-west-2" in caught.value.result["rolled_back"]


# ---------------------------------------------------------------------------------------------
# Hostile input and the 50-tag limit: refused before any mutating call


def many(count, prefix="t"):
    return {f"{prefix}{n:02d}": "v" for n in range(count)}


@pytest.mark.parametrize(
    "extra,needle",
    [
        (dict(source_image_id="ami-0123456789abcdef0\n"), "source_image_id: 'ami-0123456789abcdef0\\n' is not a valid image ID"),
        (dict(regions=["us-west-2\n"]), "regions[0]: 'us-west-2\\n' is not an AWS region name"),
        (dict(name="web-base\n"), "name: 'web-base\\n' has characters AMI names do not allow ('\\n')"),
        (dict(regions=[{"region": "us-west-2", "name": "web\n"}]), "regions[0] (us-west-2).name: 'web\\n'"),
        (dict(launch_permissions={"user_ids": ["111122223333\n"]}), "launch_permissions.user_ids: '111122223333\\n'"),
        (dict(launch_permissions={"user_ids": ["\u0661\u0661\u0661\u0661\u0662\u0662\u0662\u0662\u0663\u0663\u0663\u0663"]}),
         "is not an AWS account ID"),
        (dict(deprecate_at="2027-01-01T00:00:00Z\n"), "deprecate_at: '2027-01-01T00:00:00Z\\n' is not an ISO-8601 time"),
        (dict(deprecate_at="\u0662027-01-01T00:00:00Z"), "is not an ISO-8601 time"),
        (dict(tags={"k" * 129: "v"}), "tags: tag name"),
        (dict(tags={"AWS:x": "v"}), "tags: tag name 'AWS:x' uses the reserved prefix 'aws:'"),
        (dict(tags={"team": "a\nb"}), "tags: the value of tag 'team' is 'a\\nb', with the control character '\\n'"),
        (dict(tags={"team": "x" * 257}), "longer than 256 characters"),
        (dict(pending_tags={"bakery:expires-at": "2020-01-01T00:00:00Z"}),
         "pending_tags: tag bakery:expires-at: '2020-01-01T00:00:00Z' is in the past; an expiry time"),
        (dict(tags={"bakery:expires-at": "soon"}), "tags: tag bakery:expires-at: 'soon' is not an ISO-8601 time"),
        (dict(tags=many(48), pending_tags={"p": "1"}),
         "tags: the copy would carry 51 tags (48 from tags, 1 from pending_tags, 2 from ami_copy's own tags); "
         "EC2 allows at most 50 tags per resource"),
    ],
)
def test_hostile_input_is_refused_before_any_call(world, extra, needle):
    with pytest.raises(_copy_request.InputError) as excinfo:
        _copy_request.build_request(params("ami-0123456789abcdef0", **extra), "us-east-1", KNOWN, now=NOW)
    assert needle in str(excinfo.value)
    assert world.calls() == []


def test_fifty_tags_counting_the_copys_own_are_accepted():
    request = _copy_request.build_request(params("ami-0123456789abcdef0", tags=many(47), pending_tags={"p": "1"}),
                                          "us-east-1", KNOWN, now=NOW)
    assert len(request.tags) == 47


@pytest.mark.parametrize("copy_tags,refused", [(True, True), (False, False)])
def test_the_source_images_tags_count_once_it_is_read_and_before_any_copy_starts(world, copy_tags, refused):
    # 40 tags on the source (and one aws: tag, which a copy never inherits), 9 from tags, 2 of ours: 51
    source_tags = dict(many(40, "s"), **{"aws:internal": "x"})
    source_id = world.regions["us-east-1"].add_image("web-base-1.0", tags=source_tags)
    if refused:
        with pytest.raises(_copy_request.InputError) as excinfo:
            run(world, source_id, tags=many(9), copy_tags=copy_tags)
        assert ("tags: the copy would carry 51 tags (40 from the source image (copy_tags), 9 from tags, "
                "2 from ami_copy's own tags)") in str(excinfo.value)
        assert [call[1] for call in world.calls()] == ["describe_images"]
    else:
        assert run(world, source_id, tags=many(9), copy_tags=copy_tags)["failed_regions"] == {}


def test_an_earlier_copy_with_its_own_tags_is_counted_with_what_the_task_adds(world, source):
    west = world.regions["us-west-2"]
    existing = west.add_image("web-base-1.0", tags=dict(many(48, "old"), **{
        "bakery:source-image": f"us-east-1/{source}", "bakery:source-name": "web-base-1.0"}))
    with pytest.raises(_copy_request.InputError, match=f"tags: the copy {existing} in us-west-2 would carry 52 tags"):
        run(world, source, tags={"extra": "1"})
    assert not [call for call in world.calls() if call[1] in MUTATING]


def test_the_copy_option_counts_the_new_images_tags_before_the_image_is_made():
    # 45 tags + bakery:build-id + 1 pending on the image; copies add 2 tags and ami_copy's 2: 51
    params_ = create_params(tags={"extra": "1", "more": "2"}, pending_tags={"p": "1"})
    params_["tags"] = many(45)
    params_["build_id"] = "build-1"
    with pytest.raises(_copy_request.InputError) as excinfo:
        _copy_request.request_for_new_image(params_, "us-east-1", KNOWN, now=NOW)
    assert ("copy.tags: the copy would carry 51 tags (47 from the source image (copy_tags), 2 from tags, "
            "2 from ami_copy's own tags)") in str(excinfo.value)
    params_["copy"]["copy_tags"] = False
    assert _copy_request.request_for_new_image(params_, "us-east-1", KNOWN, now=NOW).copy_tags is False


def test_the_source_region_listed_gets_the_same_sharing_as_the_copies(world, source):
    share = dict(regions=["us-east-1", "us-west-2"], launch_permissions={"user_ids": ["111122223333"]})
    result = run(world, source, **share)
    for region, entry in result["images"].items():
        client = world.regions[region]
        assert client.launch[entry["image_id"]] == [{"UserId": "111122223333"}], region
        assert [client.volume_perms.get(snap) for snap in entry["snapshot_ids"]] == [["111122223333"]], region
    assert result["images"]["us-east-1"]["changed"] is True
    world.regions["us-east-1"].calls.clear()
    again = run(world, source, **share)
    assert again["images"]["us-east-1"]["changed"] is False
    assert not [call for call, _args in world.regions["us-east-1"].calls if call.startswith("modify_")]


# ---------------------------------------------------------------------------------------------
# Deregistration protection (protect, protect_cooldown)


def protection_calls(world) -> list:
    return sorted((region, params["ImageId"], params["WithCooldown"])
                  for region, _call, params in world.calls("enable_image_deregistration_protection"))


@pytest.mark.parametrize("cooldown,state", [(False, "enabled-without-cooldown"), (True, "enabled-with-cooldown")])
def test_protect_turns_protection_on_every_copy_once_and_reports_it(world, source, cooldown, state):
    extra = dict(protect=True, protect_cooldown=cooldown)
    predicted = run(world, source, check_mode=True, **extra)
    assert {entry["deregistration_protection"] for entry in predicted["images"].values()} == {state}
    assert not [call for call in world.calls() if call[1] in MUTATING]
    result = run(world, source, **extra)
    assert result["changed"] is True
    for region, entry in result["images"].items():
        assert entry["deregistration_protection"] == state, region
        assert world.regions[region].images[entry["image_id"]]["DeregistrationProtection"] == state
    assert protection_calls(world) == sorted((region, entry["image_id"], cooldown)
                                             for region, entry in result["images"].items())
    for client in world.regions.values():
        client.calls.clear()
    # already protected: no call, unchanged, in check mode and for real
    for check_mode in (True, False):
        again = run(world, source, check_mode=check_mode, **extra)
        assert again["changed"] is False and not any(entry["changed"] for entry in again["images"].values())
        assert {entry["deregistration_protection"] for entry in again["images"].values()} == {state}
    assert not [call for call in world.calls() if call[1] in MUTATING]


def test_protect_brings_an_earlier_unprotected_copy_up_and_check_mode_predicts_it(world, source):
    first = run(world, source)
    assert {entry["deregistration_protection"] for entry in first["images"].values()} == {"disabled"}
    for client in world.regions.values():
        client.calls.clear()
    predicted = run(world, source, check_mode=True, protect=True)
    assert predicted["changed"] is True and all(entry["changed"] for entry in predicted["images"].values())
    assert {entry["deregistration_protection"] for entry in predicted["images"].values()} == {"enabled-without-cooldown"}
    assert not [call for call in world.calls() if call[1] in MUTATING]
    done = run(world, source, protect=True)
    assert not world.calls("copy_image")
    assert {region: entry["changed"] for region, entry in done["images"].items()} == \
        {region: entry["changed"] for region, entry in predicted["images"].items()}
    assert len(protection_calls(world)) == 3


def test_without_protect_an_existing_protection_is_left_alone(world, source):
    run(world, source, protect=True)
    for client in world.regions.values():
        client.calls.clear()
    result = run(world, source)
    assert result["changed"] is False
    assert {entry["deregistration_protection"] for entry in result["images"].values()} == {"enabled-without-cooldown"}
    assert not [call for call in world.calls() if call[1] in MUTATING]


def test_protect_applies_to_the_listed_source_region_too(world, source):
    result = run(world, source, regions=["us-east-1", "us-west-2"], protect=True)
    assert result["images"]["us-east-1"]["deregistration_protection"] == "enabled-without-cooldown"
    assert world.regions["us-east-1"].images[source]["DeregistrationProtection"] == "enabled-without-cooldown"


def test_a_failed_run_protects_nothing_so_its_rollback_can_remove_its_copies(world, source):
    world.regions["eu-west-1"].add_image("web-base-1.0")  # the name is taken there
    with pytest.raises(_copy.CopyFailed) as excinfo:
        run(world, source, protect=True)
    assert excinfo.value.result["failed_regions"].keys() == {"eu-west-1"}
    assert protection_calls(world) == []
    assert not excinfo.value.result.get("rollback_errors")


def test_a_refused_protection_fails_the_task_and_keeps_the_copies(world, source):
    world.regions["eu-west-1"].protect_fails = True
    with pytest.raises(_copy.CopyFailed) as excinfo:
        run(world, source, protect=True)
    result = excinfo.value.result
    assert list(result["failed_regions"]) == ["protect"]
    assert "eu-west-1" in result["failed_regions"]["protect"] and "UnauthorizedOperation" in result["failed_regions"]["protect"]
    assert not world.calls("deregister_image")
    assert result["images"]["us-west-2"]["deregistration_protection"] == "enabled-without-cooldown"
    assert result["images"]["eu-west-1"]["deregistration_protection"] == "disabled"


def test_protect_without_wait_protects_only_available_copies_and_says_so(world, source):
    request = _copy_request.build_request(params(source, protect=True, wait=False), "us-east-1", KNOWN, now=NOW)
    copier = _copy.AmiCopier(request, world.regions, sleep=FakeClock().sleep, clock=FakeClock())
    result = copier.run()
    assert protection_calls(world) == []
    assert {entry["deregistration_protection"] for entry in result["images"].values()} == {"disabled"}
    assert any(warning.startswith("protect: ") for warning in copier.warnings)


@pytest.mark.parametrize("extra,needle", [
    (dict(protect_cooldown=True), "protect_cooldown: applies only with protect: true"),
    (dict(protect=False, protect_cooldown=True), "protect_cooldown: applies only with protect: true"),
    (dict(protect=True, protect_cooldown="24h"), "protect_cooldown: must be true or false, got '24h'"),
    (dict(protect="yes please"), "protect: must be true or false, got 'yes please'"),
])
def test_bad_protection_is_refused_before_any_call(world, source, extra, needle):
    for client in world.regions.values():
        client.calls.clear()
    with pytest.raises(_copy_request.InputError, match=needle):
        run(world, source, **extra)
    assert world.calls() == []


def test_the_copy_option_protects_the_copies_as_the_image_unless_told_otherwise():
    def request(image: dict, **copy):
        return _copy_request.request_for_new_image(dict(create_params(**copy), **image), "us-east-1", KNOWN, now=NOW)

    assert request({}).protection is None
    assert request({"protect": True}).protection == "enabled-without-cooldown"
    assert request({"protect": True, "protect_cooldown": True}).protection == "enabled-with-cooldown"
    assert request({"protect": True}, protect=False).protection is None
    assert request({}, protect=True, protect_cooldown=True).protection == "enabled-with-cooldown"
    with pytest.raises(_copy_request.InputError, match="copy.protect_cooldown: applies only with"):
        request({}, protect=False, protect_cooldown=True)


def test_check_mode_copy_of_an_image_not_made_yet_predicts_the_protection(world):
    request = _copy_request.request_for_new_image(dict(create_params(), protect=True, protect_cooldown=True),
                                                  "us-east-1", KNOWN, now=NOW)
    created = {"image_id": None, "name": "web-base-1.0", "tags": {}}
    result = _copy.copy_created_image(request, world.regions, created, None, True, lambda _m: None)
    assert {entry["deregistration_protection"] for entry in result["images"].values()} == {"enabled-with-cooldown"}


@pytest.mark.parametrize("extra, expected", [({}, None), ({"max_concurrency": 2}, 2)])
def test_the_waits_ask_as_many_regions_at_once_as_copies_run(world, source, monkeypatch, extra, expected):
    """By default every copy runs at once, and every region of a poll is asked at once too (not the
    waiter's default of 8: at 17 regions that is a second round of calls after the copies are done)."""
    seen = []
    real = _copy._waiter.wait_for_images

    def spy(targets, timeout, **options):
        seen.append(options.get("max_workers", "not given"))
        return real(targets, timeout, **options)

    monkeypatch.setattr(_copy._waiter, "wait_for_images", spy)
    result = run(world, source, **extra)
    assert {entry["state"] for entry in result["images"].values()} == {"available"}
    assert seen and set(seen) == {expected}
