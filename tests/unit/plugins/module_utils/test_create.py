# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_create: validation, requests, adoption by build-id, Duplicate after a lost answer, check mode."""
from __future__ import annotations

import datetime
import threading

import botocore.exceptions
import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _create
from ansible_collections.bakery.ami.plugins.module_utils import _waiter

MUTATING = ("create_image", "register_image", "create_tags", "delete_tags", "modify_image_attribute", "enable_image_deprecation",
            "stop_instances", "terminate_instances", "enable_image_deregistration_protection")
NEXT_YEAR = datetime.datetime.now(datetime.timezone.utc).year + 1
FUTURE = f"{NEXT_YEAR}-01-31T00:00:00Z"


def client_error(code, operation="CreateImage"):
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": f"{code} message"}}, operation)


def aws_error(code, description="create image"):
    return _aws.BakeryAWSError(message=f"Failed to {description}", exception=client_error(code))


class FakeEC2:
    """The _aws functions _create uses, over an in-memory account (owner 111111111111)."""

    def __init__(self):
        self.images = {}
        self.snapshots = {}
        self.instances = {}
        self.calls = []
        self.counter = 0
        # Hooks: exceptions to raise from the next create/register call, and images that appear
        # (served but the answer lost) just before the exception.
        self.create_errors = []
        self.served_before_error = False

    def _next(self, prefix):
        self.counter += 1
        return f"{prefix}-{self.counter:08x}"

    def add_image(self, name, tags=None, owner="111111111111", state="available", **extra):
        image_id = self._next("ami")
        snapshot_id = self.add_snapshot(tags=None)
        self.images[image_id] = dict(
            ImageId=image_id,
            Name=name,
            OwnerId=owner,
            State=state,
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}],
            **extra,
        )
        return image_id

    def add_snapshot(self, tags=None, state="completed"):
        snapshot_id = self._next("snap")
        self.snapshots[snapshot_id] = {
            "SnapshotId": snapshot_id,
            "State": state,
            "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        }
        return snapshot_id

    def add_instance(self, state="stopped"):
        instance_id = self._next("i")
        self.instances[instance_id] = {"InstanceId": instance_id, "State": {"Name": state}}
        return instance_id

    def mutations(self):
        return [call for call in self.calls if call[0] in MUTATING]

    # -- the _aws functions ---------------------------------------------------------------------

    def describe_images(self, client, **params):
        self.calls.append(("describe_images", params))
        images = list(self.images.values())
        if params.get("Owners") == ["self"]:
            images = [i for i in images if i["OwnerId"] == "111111111111"]
        for flt in params.get("Filters") or []:
            if flt["Name"] == "name":
                images = [i for i in images if i["Name"] in flt["Values"]]
            elif flt["Name"] == "image-id":
                images = [i for i in images if i["ImageId"] in flt["Values"]]
        return [dict(i) for i in images]

    def describe_snapshots(self, client, **params):
        self.calls.append(("describe_snapshots", params))
        return [dict(self.snapshots[s]) for s in params.get("SnapshotIds", []) if s in self.snapshots]

    def describe_instances(self, client, **params):
        self.calls.append(("describe_instances", params))
        ids = list(params.get("InstanceIds", []))
        for flt in params.get("Filters") or []:
            if flt["Name"] == "instance-id":
                ids += flt["Values"]
        return [dict(self.instances[i]) for i in ids if i in self.instances]

    def stop_instances(self, client, instance_ids):
        self.calls.append(("stop_instances", {"InstanceIds": list(instance_ids)}))
        states = {}
        for instance_id in instance_ids:
            if instance_id not in self.instances:
                return False
            if self.instances[instance_id]["State"]["Name"] not in ("running", "stopping", "stopped"):
                raise aws_error("IncorrectInstanceState", "stop instances")
            self.instances[instance_id]["State"] = {"Name": "stopped"}
            states[instance_id] = "stopped"
        return states

    def terminate_instances(self, client, instance_ids):
        self.calls.append(("terminate_instances", {"InstanceIds": list(instance_ids)}))
        if any(i not in self.instances for i in instance_ids):
            return False
        for instance_id in instance_ids:
            self.instances[instance_id]["State"] = {"Name": "shutting-down"}
        return True

    def _made(self, request, snapshot_ids, imds=None):
        image_tags = {}
        snapshot_tags = {}
        for spec in request.get("TagSpecifications", []):
            target = image_tags if spec["ResourceType"] == "image" else snapshot_tags
            target.update({t["Key"]: t["Value"] for t in spec["Tags"]})
        for name_taken in self.images.values():
            if name_taken["Name"] == request["Name"] and name_taken["OwnerId"] == "111111111111":
                raise aws_error("InvalidAMIName.Duplicate")
        image_id = self._next("ami")
        self.images[image_id] = dict(
            ImageId=image_id,
            Name=request["Name"],
            OwnerId="111111111111",
            State="available",
            Tags=[{"Key": k, "Value": v} for k, v in image_tags.items()],
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": s}} for s in snapshot_ids],
        )
        if imds:
            self.images[image_id]["ImdsSupport"] = imds
        for snapshot_id in snapshot_ids:
            self.snapshots[snapshot_id]["Tags"].extend({"Key": k, "Value": v} for k, v in snapshot_tags.items())
        return {"ImageId": image_id}

    def _maybe_fail(self, request, make):
        if self.create_errors:
            error = self.create_errors.pop(0)
            if self.served_before_error:
                make()
            raise error
        return make()

    def create_image(self, client, **request):
        self.calls.append(("create_image", request))

        def make():
            snapshot_id = self.add_snapshot()
            return self._made(request, [snapshot_id])

        return self._maybe_fail(request, make)

    def register_image(self, client, **request):
        self.calls.append(("register_image", request))

        def make():
            ids = [m["Ebs"]["SnapshotId"] for m in request["BlockDeviceMappings"] if m["Ebs"].get("SnapshotId")]
            return self._made(request, ids, request.get("ImdsSupport"))

        return self._maybe_fail(request, make)

    def create_tags(self, client, resource_ids, tags):
        self.calls.append(("create_tags", {"resource_ids": list(resource_ids), "tags": tags}))
        for resource_id in resource_ids:
            resource = self.images.get(resource_id) or self.snapshots[resource_id]
            have = {t["Key"]: t["Value"] for t in resource["Tags"]}
            have.update({t["Key"]: t["Value"] for t in tags})
            resource["Tags"] = [{"Key": k, "Value": v} for k, v in have.items()]
        return True

    def delete_tags(self, client, resource_ids, tags):
        self.calls.append(("delete_tags", {"resource_ids": list(resource_ids), "tags": tags}))
        keys = {t["Key"] for t in tags}
        for resource_id in resource_ids:
            resource = self.images.get(resource_id) or self.snapshots[resource_id]
            resource["Tags"] = [t for t in resource["Tags"] if t["Key"] not in keys]
        return True

    def modify_image_attribute(self, client, image_id, **params):
        self.calls.append(("modify_image_attribute", dict(params, ImageId=image_id)))
        self.images[image_id]["ImdsSupport"] = params["ImdsSupport"]["Value"]
        return True

    def enable_image_deregistration_protection(self, client, image_id, with_cooldown):
        self.calls.append(("enable_image_deregistration_protection", {"ImageId": image_id, "WithCooldown": with_cooldown}))
        state = "enabled-with-cooldown" if with_cooldown else "enabled-without-cooldown"
        self.images[image_id]["DeregistrationProtection"] = state
        return state

    def enable_image_deprecation(self, client, image_id, deprecate_at):
        self.calls.append(("enable_image_deprecation", {"ImageId": image_id, "DeprecateAt": deprecate_at}))
        self.images[image_id]["DeprecationTime"] = deprecate_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return True


@pytest.fixture
def ec2(monkeypatch):
    fake = FakeEC2()
    for name in (
        "describe_images",
        "describe_snapshots",
        "describe_instances",
        "stop_instances",
        "terminate_instances",
        "create_image",
        "register_image",
        "create_tags",
        "delete_tags",
        "modify_image_attribute",
        "enable_image_deprecation",
        "enable_image_deregistration_protection",
    ):
        monkeypatch.setattr(f"ansible_collections.bakery.ami.plugins.module_utils._aws.{name}", getattr(fake, name))
    return fake


def params(**overrides):
    base = {
        "name": "web-base 2025.11.26",
        "description": None,
        "instance_id": None,
        "reboot": True,
        "snapshot_id": None,
        "architecture": None,
        "root_device_name": None,
        "boot_mode": None,
        "ena_support": None,
        "tags": {"bakery:family": "web-base"},
        "snapshot_tags": None,
        "build_id": "build-1",
        "imds_support": "v2.0",
        "deprecate_at": None,
        "block_device_mappings": None,
        "wait": True,
        "wait_timeout": 600,
    }
    base.update(overrides)
    return base


class NoSleep:
    def __init__(self):
        self.now = 0.0

    def sleep(self, seconds):
        self.now += seconds

    def clock(self):
        return self.now


def creator(p, check_mode=False):
    timing = NoSleep()
    return _create.ImageCreator("client", "us-east-1", _create.request_of(p), check_mode, sleep=timing.sleep, clock=timing.clock)


# ---------------------------------------------------------------------------------------------
# validate()


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        ({"name": "ab"}, "name: AMI names are 3-128 characters"),
        ({"name": "x" * 129}, "name: AMI names are 3-128 characters"),
        ({"name": "web#base"}, "name: 'web#base' has characters AMI names do not allow"),
        ({"instance_id": None}, "instance_id or snapshot_id: one of them is required"),
        ({"snapshot_id": "snap-0123456789abcdef0"}, "instance_id and snapshot_id: give only one"),
        ({"instance_id": "i-xyz"}, "instance_id: 'i-xyz' is not a valid instance ID"),
        ({"architecture": "arm64"}, "architecture: applies only to images registered from a snapshot"),
        ({"deprecate_at": "next tuesday"}, "deprecate_at: 'next tuesday' is not an ISO-8601 time"),
        ({"tags": {"bakery:build-id": "other"}}, "tags: the tag bakery:build-id is 'other' but build_id is 'build-1'"),
        ({"tags": {"aws:x": "y"}}, "tags: tag name 'aws:x' uses the reserved prefix"),
        ({"snapshot_tags": {"k": 1}}, "snapshot_tags: the value of tag 'k' must be a string"),
        ({"block_device_mappings": [{"device_name": "xvda"}]}, "block_device_mappings[0].device_name: must be a device path"),
        (
            {"block_device_mappings": [{"device_name": "/dev/xvda", "volume_type": "gp2", "throughput": 300}]},
            "block_device_mappings[0].throughput: only gp3 volumes",
        ),
        (
            {"block_device_mappings": [{"device_name": "/dev/xvda", "volume_type": "io2"}]},
            "block_device_mappings[0].iops: io2 volumes need provisioned IOPS",
        ),
        (
            {"block_device_mappings": [{"device_name": "/dev/xvda", "volume_type": "gp3", "iops": 10}]},
            "block_device_mappings[0].iops: gp3 volumes take 3000-80000 IOPS, got 10",
        ),
        (
            {"block_device_mappings": [{"device_name": "/dev/xvda", "kms_key_id": "my key"}]},
            "block_device_mappings[0].kms_key_id: 'my key' is not a KMS key reference",
        ),
        (
            {"block_device_mappings": [{"device_name": "/dev/xvda"}, {"device_name": "/dev/xvda"}]},
            "block_device_mappings[1].device_name: '/dev/xvda' appears more than once",
        ),
    ],
)
def test_validate_names_the_option_and_the_rule(overrides, fragment):
    p = params(instance_id="i-0123456789abcdef0")
    p.update(overrides)
    errors = _create.validate(p)
    assert any(fragment in error for error in errors), errors


def test_validate_snapshot_mode_needs_sizes_for_added_volumes_only():
    p = params(
        snapshot_id="snap-0123456789abcdef0",
        block_device_mappings=[{"device_name": "/dev/xvda", "volume_type": "gp3"}, {"device_name": "/dev/xvdb"}],
    )
    errors = _create.validate(p)
    assert errors == [
        "block_device_mappings[1].volume_size: a volume other than the root (/dev/xvda) of an image registered "
        "from a snapshot starts empty and needs a size"
    ]


def test_validate_accepts_good_options():
    p = params(
        instance_id="i-0123456789abcdef0",
        deprecate_at=FUTURE,
        snapshot_tags={"kind": "root"},
        block_device_mappings=[
            {"device_name": "/dev/xvda", "volume_type": "gp3", "iops": 4000, "throughput": 250,
             "kms_key_id": "alias/images", "delete_on_termination": True, "volume_size": 16}
        ],
    )
    assert _create.validate(p) == []


# ---------------------------------------------------------------------------------------------
# requests


def test_instance_request_reboots_by_default_and_tags_image_and_snapshots_separately(ec2):
    p = params(instance_id="i-0123456789abcdef0", snapshot_tags={"kind": "root"},
               block_device_mappings=[{"device_name": "/dev/xvda", "volume_type": "gp3", "throughput": 250,
                                       "kms_key_id": "alias/images"}])
    operation, request = creator(p).create_request()
    assert operation == "create_image"
    assert request["NoReboot"] is False
    assert request["TagSpecifications"] == [
        {"ResourceType": "image", "Tags": [{"Key": "bakery:build-id", "Value": "build-1"},
                                           {"Key": "bakery:family", "Value": "web-base"}]},
        {"ResourceType": "snapshot", "Tags": [{"Key": "bakery:build-id", "Value": "build-1"},
                                              {"Key": "kind", "Value": "root"}]},
    ]
    assert request["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeType": "gp3", "Throughput": 250, "Encrypted": True,
                                            "KmsKeyId": "alias/images"}}
    ]


def test_snapshot_tags_default_to_tags():
    p = params(instance_id="i-0123456789abcdef0")
    c = creator(p)
    assert c.snapshot_tags == {"bakery:family": "web-base", "bakery:build-id": "build-1"}
    assert c.image_tags == c.snapshot_tags


def test_register_request_maps_the_snapshot_to_the_root_and_tags_only_the_image():
    p = params(snapshot_id="snap-0123456789abcdef0", architecture="arm64", boot_mode="uefi", reboot=True,
               block_device_mappings=[{"device_name": "/dev/xvda", "volume_type": "gp3"},
                                      {"device_name": "/dev/xvdb", "volume_size": 8}])
    operation, request = creator(p).create_request()
    assert operation == "register_image"
    assert request["Architecture"] == "arm64"
    assert request["RootDeviceName"] == "/dev/xvda"
    assert request["BootMode"] == "uefi"
    assert request["EnaSupport"] is True
    assert request["ImdsSupport"] == "v2.0"
    assert request["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0123456789abcdef0", "DeleteOnTermination": True,
                                            "VolumeType": "gp3"}},
        {"DeviceName": "/dev/xvdb", "Ebs": {"VolumeSize": 8}},
    ]
    assert [spec["ResourceType"] for spec in request["TagSpecifications"]] == ["image"]


def test_imds_none_leaves_the_attribute_out():
    p = params(snapshot_id="snap-0123456789abcdef0", imds_support="none")
    assert "ImdsSupport" not in creator(p).create_request()[1]


# ---------------------------------------------------------------------------------------------
# run()


def test_create_from_instance_applies_imds_and_deprecation_after_creation(ec2):
    instance_id = ec2.add_instance("stopped")
    result = creator(params(instance_id=instance_id, deprecate_at=FUTURE, snapshot_tags={"kind": "root"})).run()
    assert result["changed"] is True and result["adopted"] is False
    image = ec2.images[result["image_id"]]
    assert image["ImdsSupport"] == "v2.0"
    assert image["DeprecationTime"].startswith(f"{NEXT_YEAR}-01-31T00:00:00")
    assert result["deprecation_time"] == FUTURE
    assert result["state"] == "available"
    assert result["tags"] == {"bakery:family": "web-base", "bakery:build-id": "build-1"}
    (snapshot_id,) = result["snapshot_ids"]
    assert {t["Key"]: t["Value"] for t in ec2.snapshots[snapshot_id]["Tags"]} == {"kind": "root", "bakery:build-id": "build-1"}
    assert sorted(result["updates"]) == ["deprecate_at", "imds_support"]


def test_rerun_with_the_same_build_adopts_without_change(ec2):
    instance_id = ec2.add_instance("running")
    first = creator(params(instance_id=instance_id, deprecate_at=FUTURE)).run()
    before = len(ec2.mutations())
    second = creator(params(instance_id=instance_id, deprecate_at=FUTURE)).run()
    assert second["changed"] is False and second["adopted"] is True
    assert second["image_id"] == first["image_id"]
    assert len(ec2.mutations()) == before


def test_name_held_by_another_build_fails_naming_the_image_before_any_change(ec2):
    holder = ec2.add_image("web-base 2025.11.26", tags={"bakery:build-id": "build-0"})
    instance_id = ec2.add_instance()
    with pytest.raises(_create.CreateError) as failure:
        creator(params(instance_id=instance_id)).run()
    assert f"name: 'web-base 2025.11.26' is already used by image {holder} in us-east-1" in str(failure.value)
    assert "bakery:build-id 'build-0'" in str(failure.value)
    assert ec2.mutations() == []


def test_name_held_by_an_untagged_image_fails_when_a_build_id_is_set(ec2):
    ec2.add_image("web-base 2025.11.26")
    with pytest.raises(_create.CreateError, match="no bakery:build-id tag"):
        creator(params(instance_id=ec2.add_instance())).run()


def test_images_of_other_accounts_with_the_name_are_ignored(ec2):
    ec2.add_image("web-base 2025.11.26", tags={"bakery:build-id": "build-1"}, owner="222222222222")
    result = creator(params(instance_id=ec2.add_instance())).run()
    assert result["adopted"] is False
    assert [c[0] for c in ec2.mutations()].count("create_image") == 1


def test_duplicate_after_a_lost_answer_adopts_the_image_of_this_build(ec2):
    # The first attempt was served, its answer lost; AWSRetry's retry is answered Duplicate.
    ec2.create_errors = [aws_error("InvalidAMIName.Duplicate")]
    ec2.served_before_error = True
    result = creator(params(instance_id=ec2.add_instance(), deprecate_at=FUTURE)).run()
    assert result["adopted"] is True and result["changed"] is True
    assert len(ec2.images) == 1
    assert result["image_id"] in ec2.images
    # The steps after creation still happen on the adopted image.
    assert ec2.images[result["image_id"]]["ImdsSupport"] == "v2.0"
    assert "DeprecationTime" in ec2.images[result["image_id"]]


def test_duplicate_from_a_concurrent_other_build_fails_naming_the_image(ec2, monkeypatch):
    instance_id = ec2.add_instance()
    original = ec2.create_image

    def race(client, **request):
        ec2.add_image(request["Name"], tags={"bakery:build-id": "someone-else"})
        return original(client, **request)

    monkeypatch.setattr("ansible_collections.bakery.ami.plugins.module_utils._aws.create_image", race)
    with pytest.raises(_create.CreateError, match="already used by image ami-.*someone-else"):
        creator(params(instance_id=instance_id)).run()


def test_other_create_errors_propagate(ec2):
    ec2.create_errors = [aws_error("InvalidParameterValue")]
    with pytest.raises(_aws.BakeryAWSError):
        creator(params(instance_id=ec2.add_instance())).run()


@pytest.mark.parametrize("state", ["pending", "stopping", "terminated", "shutting-down"])
def test_instance_must_be_stopped_or_running(ec2, state):
    instance_id = ec2.add_instance(state)
    with pytest.raises(_create.CreateError, match=f"instance_id: instance {instance_id} is '{state}'; it must be stopped or running"):
        creator(params(instance_id=instance_id)).run()
    assert ec2.mutations() == []


def test_missing_instance_fails_naming_the_option(ec2):
    with pytest.raises(_create.CreateError, match="instance_id: instance i-0123456789abcdef0 does not exist in us-east-1"):
        creator(params(instance_id="i-0123456789abcdef0")).run()
    assert ec2.mutations() == []


def test_missing_snapshot_fails_naming_the_option(ec2):
    with pytest.raises(_create.CreateError, match="snapshot_id: snapshot snap-0123456789abcdef0 does not exist"):
        creator(params(snapshot_id="snap-0123456789abcdef0")).run()
    assert ec2.mutations() == []


def test_pending_snapshot_fails(ec2):
    snapshot_id = ec2.add_snapshot(state="pending")
    with pytest.raises(_create.CreateError, match="is 'pending'; an image needs a completed snapshot"):
        creator(params(snapshot_id=snapshot_id)).run()


def test_past_deprecation_fails_before_creating(ec2):
    with pytest.raises(_create.CreateError, match="deprecate_at: '2001-01-01T00:00:00Z' is in the past"):
        creator(params(instance_id=ec2.add_instance(), deprecate_at="2001-01-01T00:00:00Z")).run()
    assert ec2.mutations() == []


def test_deprecation_more_than_ten_years_ahead_fails_before_creating(ec2):
    far = f"{NEXT_YEAR + 11}-01-01T00:00:00Z"
    with pytest.raises(_create.CreateError, match=f"deprecate_at: '{far}' is more than 10 years ahead"):
        creator(params(instance_id=ec2.add_instance(), deprecate_at=far)).run()
    assert ec2.mutations() == []


def test_register_from_snapshot_tags_the_snapshot_itself(ec2):
    snapshot_id = ec2.add_snapshot(tags={"bakery:run-id": "r1"})
    result = creator(params(snapshot_id=snapshot_id, snapshot_tags={"kind": "root"})).run()
    assert result["changed"] is True
    assert result["snapshot_ids"] == [snapshot_id]
    assert result["imds_support"] == "v2.0"
    tags = {t["Key"]: t["Value"] for t in ec2.snapshots[snapshot_id]["Tags"]}
    assert tags == {"bakery:run-id": "r1", "kind": "root", "bakery:build-id": "build-1"}
    image_tags = {t["Key"]: t["Value"] for t in ec2.images[result["image_id"]]["Tags"]}
    assert image_tags == {"bakery:family": "web-base", "bakery:build-id": "build-1"}
    assert ("modify_image_attribute" not in [c[0] for c in ec2.calls])
    # rerun: nothing left to do
    again = creator(params(snapshot_id=snapshot_id, snapshot_tags={"kind": "root"})).run()
    assert again["changed"] is False and again["image_id"] == result["image_id"]


def test_register_retried_after_lost_answer_still_tags_the_snapshot(ec2):
    snapshot_id = ec2.add_snapshot()
    ec2.create_errors = [aws_error("InvalidAMIName.Duplicate", "register image")]
    ec2.served_before_error = True
    result = creator(params(snapshot_id=snapshot_id)).run()
    assert result["adopted"] is True
    tags = {t["Key"]: t["Value"] for t in ec2.snapshots[snapshot_id]["Tags"]}
    assert tags["bakery:build-id"] == "build-1"


def test_check_mode_predicts_a_create_and_makes_no_change(ec2):
    result = creator(params(instance_id=ec2.add_instance(), deprecate_at=FUTURE), check_mode=True).run()
    assert result["changed"] is True
    assert result["image_id"] is None
    assert result["tags"] == {"bakery:family": "web-base", "bakery:build-id": "build-1"}
    assert ec2.mutations() == []


def test_check_mode_on_an_adopted_image_reports_what_it_lacks(ec2):
    ec2.add_image("web-base 2025.11.26", tags={"bakery:build-id": "build-1"})
    result = creator(params(instance_id=ec2.add_instance(), deprecate_at=FUTURE), check_mode=True).run()
    assert result["changed"] is True and result["adopted"] is True
    assert result["updates"] == ["deprecate_at", "image_tags", "imds_support", "snapshot_tags"]
    assert ec2.mutations() == []


def test_adopted_failed_image_is_reported_with_its_reason(ec2):
    ec2.add_image("web-base 2025.11.26", tags={"bakery:build-id": "build-1"}, state="failed",
                  StateReason={"Code": "Server.InternalError", "Message": "snapshot failed"})
    with pytest.raises(_create.CreateError, match="is 'failed': snapshot failed"):
        creator(params(instance_id=ec2.add_instance())).run()


def test_wait_fails_with_the_state_reason(ec2, monkeypatch):
    instance_id = ec2.add_instance()
    original = ec2.create_image

    def create_failing(client, **request):
        answer = original(client, **request)
        ec2.images[answer["ImageId"]].update(State="failed", StateReason={"Code": "x", "Message": "disk gone"})
        return answer

    monkeypatch.setattr("ansible_collections.bakery.ami.plugins.module_utils._aws.create_image", create_failing)
    with pytest.raises(_waiter.ImageFailed, match="disk gone"):
        creator(params(instance_id=instance_id)).run()


def test_no_wait_returns_the_pending_image(ec2, monkeypatch):
    instance_id = ec2.add_instance()
    original = ec2.create_image

    def create_pending(client, **request):
        answer = original(client, **request)
        ec2.images[answer["ImageId"]]["State"] = "pending"
        return answer

    monkeypatch.setattr("ansible_collections.bakery.ami.plugins.module_utils._aws.create_image", create_pending)
    result = creator(params(instance_id=instance_id, wait=False)).run()
    assert result["state"] == "pending"
    assert result["image_id"] in ec2.images


# ---------------------------------------------------------------------------------------------
# stop_instance


def test_stop_instance_stops_a_running_builder_before_the_image_is_made(ec2):
    instance_id = ec2.add_instance("running")
    result = creator(params(instance_id=instance_id, reboot=False, stop_instance=True)).run()
    names = [call[0] for call in ec2.calls]
    assert names.index("stop_instances") < names.index("create_image")
    assert ec2.instances[instance_id]["State"]["Name"] == "stopped"
    assert result["changed"] is True


def test_stop_instance_needs_no_describe_when_stop_instances_answers_stopped(ec2):
    stopped = ec2.add_instance("stopped")
    creator(params(instance_id=stopped, stop_instance=True)).run()
    assert ec2.instances[stopped]["State"]["Name"] == "stopped"
    assert not [call for call in ec2.calls if call[0] == "describe_instances"]


def test_stop_instance_waits_for_a_pending_builder_and_names_a_missing_one(ec2, monkeypatch):
    pending = ec2.add_instance("pending")
    ec2.instances[pending]["State"] = {"Name": "pending"}
    original = ec2.describe_instances

    def boot(client, **params):
        answer = original(client, **params)
        ec2.instances[pending]["State"] = {"Name": "running"}  # running by the next look
        return answer

    monkeypatch.setattr(_create._aws, "describe_instances", boot)
    result = creator(params(instance_id=pending, stop_instance=True)).run()
    assert result["changed"] is True and ec2.instances[pending]["State"]["Name"] == "stopped"
    with pytest.raises(_create.CreateError, match="instance_id: instance i-0000ffff does not exist"):
        creator(params(name="another", instance_id="i-0000ffff", stop_instance=True)).run()


def test_stop_instance_stops_nothing_in_check_mode(ec2):
    running = ec2.add_instance("running")
    predicted = creator(params(name="other name", instance_id=running, stop_instance=True), check_mode=True).run()
    assert predicted["changed"] is True
    assert not [call for call in ec2.calls if call[0] == "stop_instances"]
    assert ec2.instances[running]["State"]["Name"] == "running"


def test_stop_instance_does_not_stop_anything_when_the_image_is_adopted(ec2):
    instance_id = ec2.add_instance("running")
    ec2.add_image("web-base 2025.11.26", tags={"bakery:build-id": "build-1"})
    result = creator(params(instance_id=instance_id, stop_instance=True)).run()
    assert result["adopted"] is True
    assert ec2.instances[instance_id]["State"]["Name"] == "running"


# ---------------------------------------------------------------------------------------------
# terminate_instance


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_terminate_instance_ends_the_builder_only_once_its_image_is_available(ec2, state):
    instance_id = ec2.add_instance(state)
    result = creator(params(instance_id=instance_id, reboot=False, stop_instance=True, terminate_instance=True)).run()
    names = [call[0] for call in ec2.calls]
    image_id = result["image_id"]
    assert result["instance_terminated"] is True and result["changed"] is True
    assert ec2.images[image_id]["State"] == "available"
    assert names.index("create_image") < names.index("terminate_instances")
    assert names.count("terminate_instances") == 1
    # nothing waits for the termination: it runs while the copies are made
    assert names[-1] == "terminate_instances" or "describe_instances" not in names[names.index("terminate_instances"):]
    assert ec2.instances[instance_id]["State"]["Name"] == "shutting-down"


def test_with_copies_the_builder_is_terminated_beside_them_not_before_the_first_one(ec2):
    """terminate_later leaves the instance to beside_termination, which runs the copies while the
    termination is under way: the termination (held until the copies have started, up to 5 s)
    never delays them, and its outcome is in the copies' result and in their failure."""
    instance_id = ec2.add_instance("running")
    maker = _create.ImageCreator("client", "us-east-1", _create.request_of(
        params(instance_id=instance_id, reboot=False, stop_instance=True, terminate_instance=True)),
        terminate_later=True, sleep=NoSleep().sleep, clock=NoSleep().clock)
    created = maker.run()
    assert "instance_terminated" not in created
    assert "terminate_instances" not in [call[0] for call in ec2.calls]
    assert ec2.instances[instance_id]["State"]["Name"] == "stopped"

    copies_started = threading.Event()
    real_terminated = maker.terminated

    def terminated_once_copies_started(result):
        assert copies_started.wait(5), "the copies waited for the termination"
        return real_terminated(result)

    maker.terminated = terminated_once_copies_started

    def copies(result):
        copies_started.set()
        return dict(result, copies={"changed": True})

    done = _create.beside_termination(maker, created, copies)
    assert done["instance_terminated"] is True and done["changed"] is True and done["copies"] == {"changed": True}
    assert ec2.instances[instance_id]["State"]["Name"] == "shutting-down"

    def failing_copies(result):
        raise _create.BakeryError("copying it failed", dict(result, copies={"failed_regions": ["eu-west-1"]}))

    other = ec2.add_instance("stopped")
    maker = _create.ImageCreator("client", "us-east-1", _create.request_of(
        params(name="web-base 2025.11.27", instance_id=other, reboot=False, stop_instance=True, terminate_instance=True)),
        terminate_later=True, sleep=NoSleep().sleep, clock=NoSleep().clock)
    with pytest.raises(_create.BakeryError) as caught:
        _create.beside_termination(maker, maker.run(), failing_copies)
    assert caught.value.result["instance_terminated"] is True and caught.value.result["copies"]
    assert ec2.instances[other]["State"]["Name"] == "shutting-down"


class RecordingSleep(NoSleep):
    def __init__(self):
        super().__init__()
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        super().sleep(seconds)


def test_work_while_creating_runs_once_in_the_first_pause_after_create_image(ec2):
    """while_creating (ami_create: the copy regions' clients) costs no time before CreateImage: it
    runs after the call, in the pause before the first poll, and that pause is shortened by it."""
    timing = RecordingSleep()
    seen = []

    def work():
        seen.append(([call[0] for call in ec2.calls], len(timing.sleeps)))
        timing.now += 0.5

    maker = _create.ImageCreator("client", "us-east-1", _create.request_of(
        params(instance_id=ec2.add_instance("stopped"), reboot=False)),
        while_creating=work, sleep=timing.sleep, clock=timing.clock)
    result = maker.run()
    assert result["changed"] is True and result["state"] == "available"
    assert len(seen) == 1
    calls_before, sleeps_before = seen[0]
    assert calls_before[-1] == "create_image"
    assert sleeps_before == 0  # at the start of the first pause, not after it
    assert timing.sleeps[0] == pytest.approx(_waiter.IMAGE_MIN_DELAY - 0.5)
    polls = [index for index, call in enumerate(ec2.calls) if call[0] == "describe_images"]
    assert polls[-1] >= len(calls_before)  # the image was polled after the work, not before


def test_the_new_image_is_waited_for_with_the_finer_rhythm_and_no_poll_at_time_zero(ec2, monkeypatch):
    """ami_create waits for the image it has just started every IMAGE_MIN_DELAY seconds: every copy
    waits on it (_waiter.py); the copies' own waits keep MIN_DELAY (test_copy)."""
    seen = []
    real = _waiter.wait_for_images

    def spy(targets, timeout, **options):
        seen.append({key: options.get(key) for key in ("min_delay", "first_delay")})
        return real(targets, timeout, **options)

    monkeypatch.setattr(_waiter, "wait_for_images", spy)
    made = _create.ImageCreator("client", "us-east-1", _create.request_of(
        params(instance_id=ec2.add_instance("stopped"), reboot=False)),
        sleep=NoSleep().sleep, clock=NoSleep().clock).run()
    assert made["changed"] is True and made["state"] == "available"
    assert seen == [{"min_delay": _waiter.IMAGE_MIN_DELAY, "first_delay": _waiter.IMAGE_MIN_DELAY}]


def test_work_while_creating_that_fails_does_not_fail_the_image_and_an_adopted_image_skips_it(ec2):
    def failing():
        raise _aws.BakeryAWSError(message="Couldn't connect to AWS")

    maker = _create.ImageCreator("client", "us-east-1", _create.request_of(
        params(instance_id=ec2.add_instance("stopped"), reboot=False)),
        while_creating=failing, sleep=NoSleep().sleep, clock=NoSleep().clock)
    made = maker.run()
    assert made["changed"] is True and made["state"] == "available"

    ran = []
    again = _create.ImageCreator("client", "us-east-1", _create.request_of(
        params(instance_id=ec2.add_instance("stopped"), reboot=False)),
        while_creating=lambda: ran.append(True), sleep=NoSleep().sleep, clock=NoSleep().clock)
    assert again.run()["adopted"] is True and ran == []


def test_terminate_instance_on_a_rerun_terminates_a_builder_still_there_and_then_nothing(ec2):
    instance_id = ec2.add_instance("stopped")
    ec2.add_image("web-base 2025.11.26", tags={"bakery:build-id": "build-1"})
    first = creator(params(instance_id=instance_id, terminate_instance=True)).run()
    assert first["adopted"] is True and first["instance_terminated"] is True and first["changed"] is True
    ec2.calls.clear()
    again = creator(params(instance_id=instance_id, terminate_instance=True)).run()
    assert again["instance_terminated"] is False and again["changed"] is False
    assert not ec2.mutations()


def test_terminate_instance_in_check_mode_predicts_without_terminating(ec2):
    running = ec2.add_instance("running")
    predicted = creator(params(instance_id=running, terminate_instance=True), check_mode=True).run()
    assert predicted["instance_terminated"] is True and predicted["changed"] is True
    assert not ec2.mutations()
    assert ec2.instances[running]["State"]["Name"] == "running"


def test_terminate_instance_never_ends_the_builder_of_an_image_that_is_not_available(ec2):
    instance_id = ec2.add_instance("stopped")
    ec2.add_image("web-base 2025.11.26", tags={"bakery:build-id": "build-1"}, state="pending")
    result = creator(params(instance_id=instance_id, terminate_instance=True, wait=False)).run()
    assert result["state"] == "pending" and result["instance_terminated"] is False
    assert ec2.instances[instance_id]["State"]["Name"] == "stopped"


@pytest.mark.parametrize("extra, message", [
    ({"snapshot_id": "snap-0123456789abcdef0", "instance_id": None},
     "terminate_instance: applies only to images created from an instance (instance_id)"),
    ({"wait": False}, "terminate_instance: needs wait=true"),
])
def test_terminate_instance_rules(extra, message):
    errors = [e for e in _create.validate(params(**dict({"instance_id": "i-0123456789abcdef0", "terminate_instance": True},
                                                        **extra))) if e]
    assert any(e.startswith(message) for e in errors), errors


def test_stop_instance_applies_to_instances_only():
    errors = _create.validate(params(snapshot_id="snap-0123456789abcdef0", stop_instance=True))
    assert "stop_instance: applies only to images created from an instance (instance_id)" in errors


def test_a_fresh_image_does_not_read_its_snapshots_but_an_adopted_one_does(ec2):
    instance_id = ec2.add_instance("stopped")
    creator(params(instance_id=instance_id)).run()
    assert not [call for call in ec2.calls if call[0] == "describe_snapshots"]
    creator(params(instance_id=instance_id)).run()
    assert [call for call in ec2.calls if call[0] == "describe_snapshots"]


# ---------------------------------------------------------------------------------------------
# pending tags (ami_create's copy.pending_tags)

PENDING = {"bakery:expires-at": "2030-01-01T00:00:00Z"}


def pending_creator(p):
    timing = NoSleep()
    return _create.ImageCreator("client", "us-east-1", _create.request_of(p), False, pending_tags=PENDING, sleep=timing.sleep, clock=timing.clock)


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_a_new_image_and_its_snapshots_are_born_with_the_pending_tags_and_an_adopted_one_never_gets_them_back(ec2):
    instance_id = ec2.add_instance("stopped")
    creator_ = pending_creator(params(instance_id=instance_id))
    first = creator_.run()
    image = ec2.images[first["image_id"]]
    assert tags_of(image)["bakery:expires-at"] == PENDING["bakery:expires-at"]
    (snapshot_id,) = first["snapshot_ids"]
    assert tags_of(ec2.snapshots[snapshot_id])["bakery:expires-at"] == PENDING["bakery:expires-at"]
    assert first["tags"]["bakery:expires-at"] == PENDING["bakery:expires-at"]
    assert creator_.image["ImageId"] == first["image_id"]
    # the copy step takes them off; a rerun adopts the image and leaves them off
    for resource in (image, ec2.snapshots[snapshot_id]):
        resource["Tags"] = [t for t in resource["Tags"] if t["Key"] not in PENDING]
    before = len(ec2.mutations())
    again = pending_creator(params(instance_id=instance_id)).run()
    assert again["adopted"] is True and again["changed"] is False
    assert len(ec2.mutations()) == before
    assert "bakery:expires-at" not in tags_of(ec2.images[first["image_id"]])


def test_an_image_registered_from_a_snapshot_gets_the_pending_tags_on_the_snapshot_too(ec2):
    snapshot_id = ec2.add_snapshot(tags={"bakery:run-id": "r1"})
    result = pending_creator(params(snapshot_id=snapshot_id)).run()
    assert tags_of(ec2.images[result["image_id"]])["bakery:expires-at"] == PENDING["bakery:expires-at"]
    assert tags_of(ec2.snapshots[snapshot_id])["bakery:expires-at"] == PENDING["bakery:expires-at"]


# ---------------------------------------------------------------------------------------------
# Hostile input and the 50-tag limit: refused before any mutating call


def many(count, prefix="t"):
    return {f"{prefix}{n:02d}": "v" for n in range(count)}


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        # a pattern ending in $ also matches before a trailing newline
        ({"name": "web-base 2025\n"}, "name: 'web-base 2025\\n' has characters AMI names do not allow ('\\n')"),
        ({"instance_id": "i-0123456789abcdef0\n"}, "instance_id: 'i-0123456789abcdef0\\n' is not a valid instance ID"),
        ({"instance_id": None, "snapshot_id": "snap-0123456789abcdef0\n"}, "snapshot_id: 'snap-0123456789abcdef0\\n'"),
        ({"instance_id": None, "snapshot_id": "snap-0123456789abcdef0", "root_device_name": "/dev/xvda\n"},
         "root_device_name: must be a device path such as /dev/xvda"),
        ({"block_device_mappings": [{"device_name": "/dev/xvda\n"}]}, "block_device_mappings[0].device_name: must be a device path"),
        ({"block_device_mappings": [{"device_name": "/dev/../xvda"}]}, "block_device_mappings[0].device_name: must be a device path"),
        ({"deprecate_at": "2030-01-01T00:00:00Z\n"}, "deprecate_at: '2030-01-01T00:00:00Z\\n' is not an ISO-8601 time"),
        # \d would take these Arabic-Indic digits
        ({"deprecate_at": "\u0662\u0660\u0663\u0660-01-01T00:00:00Z"}, "is not an ISO-8601 time"),
        ({"build_id": "build-1\n", "tags": {}}, "build_id: the value of tag 'bakery:build-id' is 'build-1\\n', with the control character"),
        ({"build_id": "b" * 257, "tags": {}}, "build_id: the value of tag 'bakery:build-id' is longer than 256 characters"),
        ({"tags": {"k" * 129: "v"}}, "tags: tag name"),
        ({"tags": {"Aws:team": "v"}}, "tags: tag name 'Aws:team' uses the reserved prefix 'aws:'"),
        ({"tags": {"team\n": "v"}}, "tags: tag name 'team\\n' has the character '\\n' at position 4"),
        ({"tags": {"team": "x" * 257}}, "tags: the value of tag 'team' is longer than 256 characters"),
        ({"tags": {"bakery:expires-at": "2020-01-01T00:00:00Z"}},
         "tags: tag bakery:expires-at: '2020-01-01T00:00:00Z' is in the past; an expiry time"),
        ({"snapshot_tags": {"bakery:expires-at": "tomorrow"}}, "snapshot_tags: tag bakery:expires-at: 'tomorrow' is not an ISO-8601 time"),
        ({"tags": many(50)}, "tags: the image would carry 51 tags (50 from tags, 1 from build_id); EC2 allows at most 50"),
        ({"tags": many(49), "copy": {"pending_tags": {"p": "1"}}},
         "tags: the image would carry 51 tags (49 from tags, 1 from build_id, 1 from copy.pending_tags)"),
        ({"tags": {}, "snapshot_tags": many(50)}, "snapshot_tags: the image's snapshots would carry 51 tags (50 from snapshot_tags, 1 from build_id)"),
    ],
)
def test_hostile_values_are_refused_by_validate(overrides, fragment):
    p = params(instance_id="i-0123456789abcdef0")
    p.update(overrides)
    errors = _create.validate(p)
    assert any(fragment in error for error in errors), errors


@pytest.mark.parametrize("user_tags,pending,ok", [(49, 0, True), (48, 1, True), (50, 0, False), (49, 1, False)])
def test_fifty_tags_counting_build_id_and_pending_tags(user_tags, pending, ok):
    p = params(instance_id="i-0123456789abcdef0", tags=many(user_tags), copy={"pending_tags": many(pending, "p")})
    assert (_create.validate(p) == []) is ok


def test_an_adopted_image_counts_the_tags_it_has_before_tagging(ec2):
    # the image holds 45 tags of its own plus the build ID: the task's 5 new ones make 51
    ec2.add_image("web-base 2025.11.26", tags=dict(many(45, "own"), **{"bakery:build-id": "build-1"}))
    with pytest.raises(_create.CreateError, match=r"tags: the image ami-\S+ would carry 51 tags \(46 from its current tags, 5 from this task\)"):
        creator(params(instance_id=ec2.add_instance(), tags=many(5))).run()
    assert ec2.mutations() == []


def test_a_snapshot_with_tags_of_its_own_is_counted_before_the_image_is_registered(ec2):
    snapshot_id = ec2.add_snapshot(tags=many(48, "own"))
    with pytest.raises(_create.CreateError, match=f"tags: the snapshot {snapshot_id} would carry 51 tags"):
        creator(params(snapshot_id=snapshot_id, snapshot_tags={"kind": "root", "more": "x"})).run()
    assert ec2.mutations() == []


# ---------------------------------------------------------------------------------------------
# pending_tags without copies: the task takes them off itself once the image is available


def releasing_creator(p, check_mode=False, warnings=None):
    timing = NoSleep()
    return _create.ImageCreator("client", "us-east-1", _create.request_of(p), check_mode, pending_tags=PENDING, release_pending=True,
                                warn=(warnings.append if warnings is not None else None),
                                sleep=timing.sleep, clock=timing.clock)


def test_a_new_image_is_born_with_the_pending_tags_and_ends_without_them(ec2):
    instance_id = ec2.add_instance("stopped")
    result = releasing_creator(params(instance_id=instance_id)).run()
    image = ec2.images[result["image_id"]]
    (snapshot_id,) = result["snapshot_ids"]
    # born with them: CreateImage tags the image and its snapshots in the same call
    (create,) = [call for call in ec2.calls if call[0] == "create_image"]
    for spec in create[1]["TagSpecifications"]:
        assert {"Key": "bakery:expires-at", "Value": PENDING["bakery:expires-at"]} in spec["Tags"]
    # and off both in one DeleteTags once the image is available
    (delete,) = [call for call in ec2.calls if call[0] == "delete_tags"]
    assert delete[1] == {"resource_ids": [result["image_id"], snapshot_id], "tags": [{"Key": "bakery:expires-at"}]}
    assert "bakery:expires-at" not in tags_of(image) and "bakery:expires-at" not in tags_of(ec2.snapshots[snapshot_id])
    assert tags_of(image)["bakery:family"] == "web-base"
    assert "pending_tags" in result["updates"] and "bakery:expires-at" not in result["tags"]
    # a rerun adopts the image without a change
    before = len(ec2.mutations())
    again = releasing_creator(params(instance_id=instance_id)).run()
    assert again["adopted"] is True and again["changed"] is False and again["updates"] == []
    assert len(ec2.mutations()) == before


def test_check_mode_predicts_a_new_image_without_the_pending_tags(ec2):
    instance_id = ec2.add_instance("stopped")
    result = releasing_creator(params(instance_id=instance_id), check_mode=True).run()
    assert result["changed"] is True and "bakery:expires-at" not in result["tags"]
    assert ec2.mutations() == []


def test_an_adopted_image_that_still_carries_them_loses_them_check_mode_first(ec2):
    """The run that made the image was killed before the end: the rerun that adopts it finishes it."""
    image_tags = dict({"bakery:build-id": "build-1", "bakery:family": "web-base"}, **PENDING)
    image_id = ec2.add_image("web-base 2025.11.26", tags=image_tags, ImdsSupport="v2.0")
    snapshot_id = ec2.images[image_id]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.snapshots[snapshot_id]["Tags"] = [{"Key": "bakery:build-id", "Value": "build-1"},
                                          {"Key": "bakery:family", "Value": "web-base"},
                                          {"Key": "bakery:expires-at", "Value": PENDING["bakery:expires-at"]}]
    instance_id = ec2.add_instance("stopped")
    check = releasing_creator(params(instance_id=instance_id), check_mode=True).run()
    assert check["adopted"] is True and check["changed"] is True and check["updates"] == ["pending_tags"]
    assert "bakery:expires-at" not in check["tags"]
    assert ec2.mutations() == []
    real = releasing_creator(params(instance_id=instance_id)).run()
    assert real["changed"] is True and real["updates"] == ["pending_tags"]
    assert [call[0] for call in ec2.mutations()] == ["delete_tags"]
    assert "bakery:expires-at" not in tags_of(ec2.images[image_id])
    assert "bakery:expires-at" not in tags_of(ec2.snapshots[snapshot_id])
    again = releasing_creator(params(instance_id=instance_id)).run()
    assert again["changed"] is False and [call[0] for call in ec2.mutations()] == ["delete_tags"]


def test_an_image_registered_from_a_snapshot_ends_without_them_on_the_snapshot_too(ec2):
    snapshot_id = ec2.add_snapshot(tags={"bakery:run-id": "r1"})
    result = releasing_creator(params(snapshot_id=snapshot_id)).run()
    assert "bakery:expires-at" not in tags_of(ec2.images[result["image_id"]])
    assert tags_of(ec2.snapshots[snapshot_id]) == {"bakery:run-id": "r1", "bakery:family": "web-base",
                                                   "bakery:build-id": "build-1"}
    (delete,) = [call for call in ec2.calls if call[0] == "delete_tags"]
    assert snapshot_id in delete[1]["resource_ids"]


def test_without_wait_the_pending_tags_stay_with_a_warning(ec2, monkeypatch):
    instance_id = ec2.add_instance("stopped")
    real_create = ec2.create_image

    def create_pending(client, **request):
        answer = real_create(client, **request)
        ec2.images[answer["ImageId"]]["State"] = "pending"
        return answer

    monkeypatch.setattr("ansible_collections.bakery.ami.plugins.module_utils._aws.create_image", create_pending)
    warnings = []
    result = releasing_creator(params(instance_id=instance_id, wait=False), warnings=warnings).run()
    assert tags_of(ec2.images[result["image_id"]])["bakery:expires-at"] == PENDING["bakery:expires-at"]
    assert "delete_tags" not in [call[0] for call in ec2.calls]
    assert warnings and "run the task again with wait=true" in warnings[0]


def test_planted_creator_that_never_releases_is_caught(ec2):
    """Without release_pending (the copy step's job) the image keeps the tag: the check above would see it."""
    instance_id = ec2.add_instance("stopped")
    result = pending_creator(params(instance_id=instance_id)).run()
    assert "bakery:expires-at" in tags_of(ec2.images[result["image_id"]])


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        ({"pending_tags": {"bakery:family": "x"}}, "pending_tags: 'bakery:family' is also in tags"),
        ({"pending_tags": {"k": "v"}, "snapshot_tags": {"k": "w"}}, "pending_tags: 'k' is also in snapshot_tags"),
        ({"pending_tags": {"bakery:build-id": "build-1"}}, "pending_tags: 'bakery:build-id' comes from build_id"),
        ({"pending_tags": {"bakery:expires-at": "2001-01-01T00:00:00Z"}}, "pending_tags: tag bakery:expires-at: '2001-01-01T00:00:00Z' is in the past"),
        ({"pending_tags": {"aws:x": "y"}}, "pending_tags: tag name 'aws:x' uses the reserved prefix"),
        ({"pending_tags": {"k": "v\n"}}, "pending_tags: the value of tag 'k'"),
        ({"pending_tags": {"k": "v"}, "copy": {"regions": ["us-west-2"], "pending_tags": {"k": "w"}}},
         "pending_tags and copy.pending_tags: give the pending tags once"),
        ({"tags": {f"t{n:02d}": "v" for n in range(49)}, "pending_tags": {"k": "v"}}, "tags: the image would carry 51 tags"),
    ],
)
def test_bad_pending_tags_are_refused(overrides, fragment):
    errors = _create.validate(params(instance_id="i-0123456789abcdef0", **overrides))
    assert any(fragment in error for error in errors), errors


def test_pending_tags_equal_in_both_places_are_accepted():
    pending = {"bakery:expires-at": FUTURE}
    assert _create.validate(params(instance_id="i-0123456789abcdef0", pending_tags=pending,
                                   copy={"regions": ["us-west-2"], "pending_tags": dict(pending)})) == []
    assert _create.pending_tags({"pending_tags": None, "copy": {"pending_tags": pending}}) == pending


# ---------------------------------------------------------------------------------------------
# Deregistration protection


@pytest.mark.parametrize("cooldown,expected", [(False, "enabled-without-cooldown"), (True, "enabled-with-cooldown")])
def test_protect_turns_protection_on_once_and_a_rerun_changes_nothing(ec2, cooldown, expected):
    instance_id = ec2.add_instance("stopped")
    predicted = creator(params(instance_id=instance_id, protect=True, protect_cooldown=cooldown), check_mode=True).run()
    assert predicted["deregistration_protection"] == expected and ec2.mutations() == []
    result = creator(params(instance_id=instance_id, protect=True, protect_cooldown=cooldown)).run()
    assert result["deregistration_protection"] == expected and "protection" in result["updates"]
    assert ec2.images[result["image_id"]]["DeregistrationProtection"] == expected
    calls = [c for c in ec2.mutations() if c[0] == "enable_image_deregistration_protection"]
    assert calls == [("enable_image_deregistration_protection", {"ImageId": result["image_id"], "WithCooldown": cooldown})]
    before = len(ec2.mutations())
    again = creator(params(instance_id=instance_id, protect=True, protect_cooldown=cooldown)).run()
    assert again["changed"] is False and len(ec2.mutations()) == before


def test_an_adopted_image_gets_the_protection_it_lacks_and_protect_false_never_lifts_it(ec2):
    instance_id = ec2.add_instance("stopped")
    made = creator(params(instance_id=instance_id)).run()
    assert made["deregistration_protection"] in (None, "disabled")
    adopted = creator(params(instance_id=instance_id, protect=True)).run()
    assert adopted["changed"] is True and adopted["updates"] == ["protection"]
    left = creator(params(instance_id=instance_id)).run()
    assert left["changed"] is False and left["deregistration_protection"] == "enabled-without-cooldown"


def test_protect_cooldown_without_protect_is_refused():
    errors = _create.validate(params(instance_id="i-0123456789abcdef0", protect_cooldown=True))
    assert "protect_cooldown: applies only with protect: true (it is the cooldown of the protection)" in errors
