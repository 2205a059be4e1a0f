# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retirement gap fills: deregistration protection, DeleteAssociatedSnapshots, disable/enable,
LastLaunchedTime, DescribeImageReferences, image block public access, the SSM DataType filter,
Recycle Bin rules, unsupported actions and the image control route."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from endpoint_helpers import error_code, launch

from tools.local_aws.control import LocalAwsError

OTHER_ACCOUNT = "111122223333"


def _registered(ec2, name, snapshot_id=None):
    """An image of this account backed by its own snapshot (or the one given); returns (image, snapshot)."""
    if snapshot_id is None:
        volume = ec2.create_volume(AvailabilityZone=f"{ec2.meta.region_name}a", Size=1)["VolumeId"]
        snapshot_id = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    image_id = ec2.register_image(
        Name=name, RootDeviceName="/dev/xvda", VirtualizationType="hvm", Architecture="x86_64",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}],
    )["ImageId"]
    return image_id, snapshot_id


def _image(ec2, image_id, **params):
    images = ec2.describe_images(ImageIds=[image_id], **params)["Images"]
    return images[0] if images else None


def _snapshot_ids(ec2):
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


# ---------------------------------------------------------------------------------------------
# Deregistration protection


def test_protection_blocks_deregistration_until_disabled(ec2):
    image_id, _snap = _registered(ec2, "protected one")
    assert _image(ec2, image_id)["DeregistrationProtection"] == "disabled"
    assert ec2.enable_image_deregistration_protection(ImageId=image_id)["Return"] == "enabled-without-cooldown"
    assert _image(ec2, image_id)["DeregistrationProtection"] == "enabled-without-cooldown"
    attribute = ec2.describe_image_attribute(ImageId=image_id, Attribute="deregistrationProtection")
    assert attribute["DeregistrationProtection"] == {"Value": "enabled-without-cooldown"}
    with pytest.raises(ClientError) as excinfo:
        ec2.deregister_image(ImageId=image_id)
    assert error_code(excinfo) == "OperationNotPermitted"
    assert _image(ec2, image_id) is not None
    assert ec2.disable_image_deregistration_protection(ImageId=image_id)["Return"] == "disabled"
    ec2.deregister_image(ImageId=image_id)
    assert ec2.describe_images(Owners=["self"])["Images"] == []


def test_protection_with_cooldown_outlives_its_disabling(aws, ec2):
    aws.configure(protection_cooldown=1.5)
    image_id, _snap = _registered(ec2, "cooling one")
    assert ec2.enable_image_deregistration_protection(ImageId=image_id, WithCooldown=True)["Return"] == "enabled-with-cooldown"
    state = ec2.disable_image_deregistration_protection(ImageId=image_id)["Return"]
    assert state.startswith("disabled-after-")
    assert _image(ec2, image_id)["DeregistrationProtection"] == state
    with pytest.raises(ClientError) as excinfo:
        ec2.deregister_image(ImageId=image_id)
    assert error_code(excinfo) == "OperationNotPermitted" and state in str(excinfo.value)
    time.sleep(1.6)
    assert _image(ec2, image_id)["DeregistrationProtection"] == "disabled"
    ec2.deregister_image(ImageId=image_id)


def test_only_the_owner_protects_or_disables(ec2):
    foreign = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    for call in (ec2.enable_image_deregistration_protection, ec2.disable_image, ec2.enable_image):
        with pytest.raises(ClientError) as excinfo:
            call(ImageId=foreign)
        assert error_code(excinfo) == "AuthFailure"


# ---------------------------------------------------------------------------------------------
# DeregisterImage DeleteAssociatedSnapshots


def test_delete_associated_snapshots_skips_snapshots_other_images_use(ec2):
    alone, alone_snap = _registered(ec2, "alone")
    shared_a, shared_snap = _registered(ec2, "shared a")
    shared_b, _same = _registered(ec2, "shared b", snapshot_id=shared_snap)
    kept, kept_snap = _registered(ec2, "kept snapshots")

    answer = ec2.deregister_image(ImageId=alone, DeleteAssociatedSnapshots=True)
    assert answer["DeleteSnapshotResults"] == [{"SnapshotId": alone_snap, "ReturnCode": "success"}]
    answer = ec2.deregister_image(ImageId=shared_a, DeleteAssociatedSnapshots=True)
    assert answer["DeleteSnapshotResults"] == [{"SnapshotId": shared_snap, "ReturnCode": "skipped"}]
    assert "DeleteSnapshotResults" not in ec2.deregister_image(ImageId=kept)
    assert _snapshot_ids(ec2) == {shared_snap, kept_snap}
    # the last image using the shared snapshot takes it along
    answer = ec2.deregister_image(ImageId=shared_b, DeleteAssociatedSnapshots=True)
    assert answer["DeleteSnapshotResults"] == [{"SnapshotId": shared_snap, "ReturnCode": "success"}]
    assert _snapshot_ids(ec2) == {kept_snap}


# ---------------------------------------------------------------------------------------------
# DisableImage / EnableImage


def test_disable_makes_the_image_private_hidden_and_unlaunchable(ec2):
    image_id, _snap = _registered(ec2, "to disable")
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}, {"Group": "all"}]})
    assert _image(ec2, image_id)["Public"] is True
    ec2.disable_image(ImageId=image_id)
    ec2.disable_image(ImageId=image_id)  # again: no change, no error
    # hidden from every DescribeImages unless IncludeDisabled, even when asked for by ID
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert _image(ec2, image_id) is None
    shown = _image(ec2, image_id, IncludeDisabled=True)
    assert shown["State"] == "disabled" and shown["Public"] is False
    listed = ec2.describe_images(Owners=["self"], IncludeDisabled=True, Filters=[{"Name": "state", "Values": ["disabled"]}])
    assert [i["ImageId"] for i in listed["Images"]] == [image_id]
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"] == []
    with pytest.raises(ClientError) as excinfo:
        ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)
    assert error_code(excinfo) == "InvalidAMIID.Unavailable"
    with pytest.raises(ClientError) as excinfo:
        ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    assert error_code(excinfo) == "OperationNotPermitted"


def test_enable_brings_the_image_back_without_its_permissions(ec2):
    image_id, _snap = _registered(ec2, "to restore")
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    ec2.disable_image(ImageId=image_id)
    ec2.enable_image(ImageId=image_id)
    assert _image(ec2, image_id)["State"] == "available"
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"] == []
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)


def test_a_disabled_image_can_be_deregistered(ec2):
    image_id, snap = _registered(ec2, "disabled then gone")
    ec2.disable_image(ImageId=image_id)
    ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"] == []
    assert snap not in _snapshot_ids(ec2)


# ---------------------------------------------------------------------------------------------
# LastLaunchedTime and the image control route


def test_last_launched_time_follows_launches_after_the_reporting_delay(aws, ec2):
    image_id, _snap = _registered(ec2, "launched")
    assert "LastLaunchedTime" not in _image(ec2, image_id)
    aws.configure(last_launched_delay=1.0)
    ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)
    assert "LastLaunchedTime" not in _image(ec2, image_id)  # not reported yet
    time.sleep(1.1)
    shown = _image(ec2, image_id)["LastLaunchedTime"]
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="lastLaunchedTime")["LastLaunchedTime"] == {"Value": shown}


def test_control_route_backdates_and_plants_a_launch(aws, ec2):
    image_id, _snap = _registered(ec2, "backdated")
    answer = aws.set_image("us-east-1", image_id, creation_date="2024-01-02T03:04:05Z", last_launched_time="2024-02-01T00:00:00Z")
    assert answer["creation_date"] == "2024-01-02T03:04:05.000Z"
    image = _image(ec2, image_id)
    assert image["CreationDate"] == "2024-01-02T03:04:05.000Z"
    assert image["LastLaunchedTime"] == "2024-02-01T00:00:00.000Z"
    aws.set_image("us-east-1", image_id, last_launched_time=None)
    assert "LastLaunchedTime" not in _image(ec2, image_id)
    with pytest.raises(LocalAwsError, match="no image ami-00000000 in us-east-1"):
        aws.set_image("us-east-1", "ami-00000000", creation_date="2024-01-01T00:00:00Z")
    with pytest.raises(LocalAwsError, match="unknown key"):
        aws.set_image("us-east-1", image_id, owner="x")


# ---------------------------------------------------------------------------------------------
# DescribeImageReferences


def test_image_references_name_instances_templates_and_parameters(aws, ec2):
    image_id, _snap = _registered(ec2, "referenced")
    other, _other_snap = _registered(ec2, "unreferenced")
    running = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    gone = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[gone])
    template = ec2.create_launch_template(LaunchTemplateName="it-refs", LaunchTemplateData={"ImageId": image_id})
    template_id = template["LaunchTemplate"]["LaunchTemplateId"]
    ssm = aws.client("ssm", "us-east-1")
    ssm.put_parameter(Name="/bakery/it/latest", Value=image_id, Type="String", DataType="aws:ec2:image")
    ssm.put_parameter(Name="/unrelated", Value="ami-00000000", Type="String")

    every = ec2.describe_image_references(ImageIds=[image_id, other], IncludeAllResourceTypes=True)["ImageReferences"]
    arns = {(r["ResourceType"], r["Arn"].rsplit(":", 1)[-1]) for r in every}
    assert {r["ImageId"] for r in every} == {image_id}
    assert arns == {
        ("ec2:Instance", f"instance/{running}"), ("ec2:Instance", f"instance/{gone}"),
        ("ec2:LaunchTemplate", f"launch-template/{template_id}"), ("ssm:Parameter", "parameter/bakery/it/latest"),
    }
    live = ec2.describe_image_references(ImageIds=[image_id], ResourceTypes=[{
        "ResourceType": "ec2:Instance",
        "ResourceTypeOptions": [{"OptionName": "state-name", "OptionValues": ["pending", "running", "stopping", "stopped"]}],
    }])["ImageReferences"]
    assert [r["Arn"].rsplit("/", 1)[-1] for r in live] == [running]


def test_image_references_version_depth_counts_back_from_the_latest(ec2):
    image_id, _snap = _registered(ec2, "old version")
    ec2.create_launch_template(LaunchTemplateName="it-depth", LaunchTemplateData={"ImageId": image_id})
    for _version in range(2):
        ec2.create_launch_template_version(LaunchTemplateName="it-depth", LaunchTemplateData={"ImageId": "ami-00000000"})

    def found(depth):
        return ec2.describe_image_references(ImageIds=[image_id], ResourceTypes=[{
            "ResourceType": "ec2:LaunchTemplate",
            "ResourceTypeOptions": [{"OptionName": "version-depth", "OptionValues": [str(depth)]}],
        }])["ImageReferences"]

    assert found(2) == [] and len(found(3)) == 1


def test_image_references_validates_and_pages(ec2):
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_image_references(ImageIds=["ami-00000000"], IncludeAllResourceTypes=True)
    assert error_code(excinfo) == "InvalidAMIID.NotFound"
    image_id, _snap = _registered(ec2, "paged")
    for _launch in range(7):
        launch_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        assert launch_id
    pages = ec2.get_paginator("describe_image_references").paginate(
        ImageIds=[image_id], ResourceTypes=[{"ResourceType": "ec2:Instance"}], PaginationConfig={"PageSize": 5})
    sizes = [len(page["ImageReferences"]) for page in pages]
    assert sizes == [5, 2]


def test_unsupported_actions_answer_invalid_action(aws, ec2):
    image_id, _snap = _registered(ec2, "no references here")
    aws.configure(unsupported_actions=["DescribeImageReferences"])
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_image_references(ImageIds=[image_id], IncludeAllResourceTypes=True)
    assert error_code(excinfo) == "InvalidAction"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    ec2.describe_images(ImageIds=[image_id])  # everything else is served


# ---------------------------------------------------------------------------------------------
# Image block public access


def test_block_public_access_refuses_new_public_shares_only(ec2, ec2_west):
    already, _snap = _registered(ec2, "already public")
    ec2.modify_image_attribute(ImageId=already, LaunchPermission={"Add": [{"Group": "all"}]})
    image_id, _snap2 = _registered(ec2, "not yet public")
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    assert ec2.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")[
        "ImageBlockPublicAccessState"] == "block-new-sharing"
    assert ec2.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "block-new-sharing"
    assert ec2_west.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"  # per region
    for call in (
        lambda: ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]}),
        lambda: ec2.modify_image_attribute(ImageId=image_id, Attribute="launchPermission", OperationType="add",
                                           UserGroups=["all"]),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "OperationNotPermitted" and "block-new-sharing" in str(excinfo.value)
    assert _image(ec2, image_id)["Public"] is False
    assert _image(ec2, already)["Public"] is True  # existing public images stay public
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    assert ec2.disable_image_block_public_access()["ImageBlockPublicAccessState"] == "unblocked"
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"Group": "all"}]})
    assert _image(ec2, image_id)["Public"] is True


# ---------------------------------------------------------------------------------------------
# SSM DescribeParameters DataType


def test_ssm_describe_parameters_filters_by_data_type(aws):
    ssm = aws.client("ssm", "us-east-1")
    # an image the region has: SSM drops an aws:ec2:image value naming one it does not (ssm.py)
    image_id = aws.client("ec2", "us-east-1").describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    ssm.put_parameter(Name="/it/image", Value=image_id, Type="String", DataType="aws:ec2:image")
    ssm.put_parameter(Name="/it/text", Value="hello", Type="String")
    images = ssm.describe_parameters(ParameterFilters=[{"Key": "DataType", "Values": ["aws:ec2:image"]}])["Parameters"]
    assert [p["Name"] for p in images] == ["/it/image"]
    text = ssm.describe_parameters(ParameterFilters=[{"Key": "DataType", "Values": ["text"]},
                                                     {"Key": "Name", "Values": ["/it/text"]}])["Parameters"]
    assert [p["Name"] for p in text] == ["/it/text"]


# ---------------------------------------------------------------------------------------------
# Recycle Bin rules


def test_recycle_bin_rules_per_region(aws):
    rbin = aws.client("rbin", "us-east-1")
    rbin_west = aws.client("rbin", "eu-west-1")
    period = {"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"}
    tagged = rbin.create_rule(ResourceType="EC2_IMAGE", RetentionPeriod=period, Description="family web",
                              ResourceTags=[{"ResourceTagKey": "bakery:family", "ResourceTagValue": "web"}])
    region_wide = rbin.create_rule(ResourceType="EC2_IMAGE", RetentionPeriod=period,
                                   ExcludeResourceTags=[{"ResourceTagKey": "scratch", "ResourceTagValue": "true"}])
    rbin.create_rule(ResourceType="EBS_SNAPSHOT", RetentionPeriod=period)
    assert tagged["Status"] == "available" and tagged["RuleArn"].startswith("arn:aws:rbin:us-east-1:")
    listed = {rule["Identifier"] for rule in rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"]}
    assert listed == {tagged["Identifier"], region_wide["Identifier"]}
    matching = rbin.list_rules(ResourceType="EC2_IMAGE",
                               ResourceTags=[{"ResourceTagKey": "bakery:family", "ResourceTagValue": "web"}])["Rules"]
    assert [rule["Identifier"] for rule in matching] == [tagged["Identifier"]]
    rule = rbin.get_rule(Identifier=tagged["Identifier"])
    assert rule["ResourceTags"] == [{"ResourceTagKey": "bakery:family", "ResourceTagValue": "web"}]
    assert rule["RetentionPeriod"] == period
    assert rbin.get_rule(Identifier=region_wide["Identifier"])["ExcludeResourceTags"][0]["ResourceTagKey"] == "scratch"
    assert rbin_west.list_rules(ResourceType="EC2_IMAGE")["Rules"] == []
    rbin.delete_rule(Identifier=tagged["Identifier"])
    with pytest.raises(ClientError) as excinfo:
        rbin.get_rule(Identifier=tagged["Identifier"])
    assert error_code(excinfo) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        rbin.create_rule(ResourceType="EC2_IMAGE", RetentionPeriod=period,
                         ResourceTags=[{"ResourceTagKey": "a", "ResourceTagValue": "b"}],
                         ExcludeResourceTags=[{"ResourceTagKey": "c", "ResourceTagValue": "d"}])
    assert error_code(excinfo) == "ValidationException"
    aws.reset()
    assert rbin.list_rules(ResourceType="EC2_IMAGE")["Rules"] == []


def test_image_control_route_rejects_bad_bodies(aws):
    request = urllib.request.Request(aws.url + "/_bakery/images", data=b"[1]", method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request)
    assert excinfo.value.code == 400


def test_a_launch_from_a_template_counts_for_its_image(ec2):
    image_id, _snap = _registered(ec2, "template launch")
    ec2.create_launch_template(LaunchTemplateName="it-launch", LaunchTemplateData={"ImageId": image_id})
    ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "it-launch"}, MinCount=1, MaxCount=1)
    assert "LastLaunchedTime" in _image(ec2, image_id)


def test_stock_launch_helper_still_works(ec2):
    assert launch(ec2).startswith("i-")


def test_recycle_bin_requests_are_counted_by_operation(aws):
    """A read of the rules is ListRules, not a bare POST a call counter would take for a change."""
    rbin = aws.client("rbin", "us-east-1")
    aws.reset_counts()
    rbin.list_rules(ResourceType="EC2_IMAGE")
    rbin.create_rule(ResourceType="EC2_IMAGE",
                     RetentionPeriod={"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"})
    counts = aws.counts()
    assert counts.get("ListRules") == 1 and counts.get("CreateRule") == 1
    assert not [action for action in counts if action.startswith("rbin:")]
