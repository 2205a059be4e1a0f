# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image gap fills: snapshot tags, CopyImage tags/token/snapshots, duplicate names, deprecation, paging."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from endpoint_helpers import error_code, launch, tags_of


def _image(ec2, image_id):
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]


def _snapshot_ids(image):
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


def test_create_image_tags_image_and_snapshots(ec2):
    instance_id = launch(ec2)
    image_id = ec2.create_image(
        InstanceId=instance_id,
        Name="web-base-1",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "bakery:family", "Value": "web-base"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "bakery:build-id", "Value": "b-1"}]},
        ],
    )["ImageId"]
    image = _image(ec2, image_id)
    assert tags_of(image) == {"bakery:family": "web-base"}
    snapshot_ids = _snapshot_ids(image)
    assert len(snapshot_ids) == 1
    snapshot = ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"][0]
    assert tags_of(snapshot) == {"bakery:build-id": "b-1"}


def test_create_image_rejects_other_tag_resource_types(ec2):
    instance_id = launch(ec2)
    with pytest.raises(ClientError) as excinfo:
        ec2.create_image(
            InstanceId=instance_id,
            Name="web-base-1",
            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "b"}]}],
        )
    assert error_code(excinfo) == "InvalidParameterValue"
    assert ec2.describe_images(Owners=["self"])["Images"] == []


def _own_image(ec2, name="src-image", tags=None):
    instance_id = launch(ec2)
    specs = [{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    return ec2.create_image(InstanceId=instance_id, Name=name, TagSpecifications=specs)["ImageId"]


def test_copy_image_copy_image_tags(ec2, ec2_west):
    source = _own_image(ec2, tags={"bakery:family": "web", "bakery:version": "3"})
    with_tags = ec2_west.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="copy-a", CopyImageTags=True)
    without = ec2_west.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="copy-b")
    assert tags_of(_image(ec2_west, with_tags["ImageId"])) == {"bakery:family": "web", "bakery:version": "3"}
    assert tags_of(_image(ec2_west, without["ImageId"])) == {}


def test_copy_image_tag_specifications(ec2, ec2_west):
    source = _own_image(ec2, tags={"a": "1"})
    copy_id = ec2_west.copy_image(
        SourceImageId=source, SourceRegion="us-east-1", Name="copy-a", CopyImageTags=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "bakery:source-image", "Value": f"us-east-1/{source}"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "bakery:build-id", "Value": "b-9"}]},
        ],
    )["ImageId"]
    copy = _image(ec2_west, copy_id)
    assert tags_of(copy) == {"a": "1", "bakery:source-image": f"us-east-1/{source}"}
    snapshot = ec2_west.describe_snapshots(SnapshotIds=_snapshot_ids(copy))["Snapshots"][0]
    assert tags_of(snapshot) == {"bakery:build-id": "b-9"}


def test_copy_image_client_token_is_idempotent(ec2, ec2_west):
    source = _own_image(ec2)
    params = dict(SourceImageId=source, SourceRegion="us-east-1", Name="copy-a", ClientToken="token-1")
    first = ec2_west.copy_image(**params)["ImageId"]
    second = ec2_west.copy_image(**params)["ImageId"]
    assert first == second
    assert [i["ImageId"] for i in ec2_west.describe_images(Owners=["self"])["Images"]] == [first]
    with pytest.raises(ClientError) as excinfo:
        ec2_west.copy_image(**dict(params, Name="copy-b"))
    assert error_code(excinfo) == "IdempotentParameterMismatch"
    assert len(ec2_west.describe_images(Owners=["self"])["Images"]) == 1


def test_copy_image_makes_new_snapshots_in_destination(ec2, ec2_west):
    source = _own_image(ec2)
    source_snapshots = _snapshot_ids(_image(ec2, source))
    copy_id = ec2_west.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="copy-a")["ImageId"]
    copy_snapshots = _snapshot_ids(_image(ec2_west, copy_id))
    assert len(copy_snapshots) == 1
    assert set(copy_snapshots).isdisjoint(source_snapshots)
    west = ec2_west.describe_snapshots(SnapshotIds=copy_snapshots)["Snapshots"]
    assert [s["SnapshotId"] for s in west] == copy_snapshots
    with pytest.raises(ClientError) as excinfo:
        ec2_west.describe_snapshots(SnapshotIds=source_snapshots)
    assert error_code(excinfo) == "InvalidSnapshot.NotFound"
    # deleting per region: deregister the copy, then its snapshot goes; the source's stays
    ec2_west.deregister_image(ImageId=copy_id)
    ec2_west.delete_snapshot(SnapshotId=copy_snapshots[0])
    assert ec2_west.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=source_snapshots)["Snapshots"]] == source_snapshots


def test_duplicate_name_create_register_copy(ec2, ec2_west):
    source = _own_image(ec2, name="web-base-7")
    instance_id = launch(ec2)
    with pytest.raises(ClientError) as excinfo:
        ec2.create_image(InstanceId=instance_id, Name="web-base-7")
    assert error_code(excinfo) == "InvalidAMIName.Duplicate"
    assert source in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        ec2.register_image(Name="web-base-7", RootDeviceName="/dev/xvda")
    assert error_code(excinfo) == "InvalidAMIName.Duplicate"
    with pytest.raises(ClientError) as excinfo:
        ec2.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="web-base-7")
    assert error_code(excinfo) == "InvalidAMIName.Duplicate"
    # same name in another region is fine, and a deregistered image frees its name
    ec2_west.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="web-base-7")
    ec2.deregister_image(ImageId=source)
    again = ec2.create_image(InstanceId=instance_id, Name="web-base-7")["ImageId"]
    assert _image(ec2, again)["Name"] == "web-base-7"
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 1


def test_register_image_uses_given_snapshot(ec2):
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)
    snapshot_id = ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
    image_id = ec2.register_image(
        Name="rootfs-image", Architecture="arm64", RootDeviceName="/dev/xvda", VirtualizationType="hvm",
        EnaSupport=True, BootMode="uefi", ImdsSupport="v2.0",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id, "VolumeType": "gp3"}}],
    )["ImageId"]
    image = _image(ec2, image_id)
    assert (image["Architecture"], image["RootDeviceType"], image["RootDeviceName"]) == ("arm64", "ebs", "/dev/xvda")
    assert (image["ImdsSupport"], image["BootMode"], image["EnaSupport"]) == ("v2.0", "uefi", True)
    assert image["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"SnapshotId": snapshot_id, "VolumeType": "gp3", "VolumeSize": 8,
                    "DeleteOnTermination": True, "Encrypted": False},
        }
    ]
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert error_code(excinfo) == "InvalidSnapshot.InUse"


def test_image_deprecation_enable_disable(ec2):
    image_id = _own_image(ec2)
    assert "DeprecationTime" not in _image(ec2, image_id)
    at = (datetime.now(timezone.utc) + timedelta(days=30)).replace(second=31, microsecond=0)
    assert ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=at)["Return"] is True
    expected = (at.replace(second=0) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert _image(ec2, image_id)["DeprecationTime"] == expected
    assert ec2.disable_image_deprecation(ImageId=image_id)["Return"] is True
    assert "DeprecationTime" not in _image(ec2, image_id)


def test_image_deprecation_rejects_past_and_foreign_images(ec2):
    image_id = _own_image(ec2)
    with pytest.raises(ClientError) as excinfo:
        ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert error_code(excinfo) == "InvalidParameterValue"
    foreign = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    with pytest.raises(ClientError) as excinfo:
        ec2.enable_image_deprecation(ImageId=foreign, DeprecateAt=datetime.now(timezone.utc) + timedelta(days=1))
    assert error_code(excinfo) == "AuthFailure"
    with pytest.raises(ClientError) as excinfo:
        ec2.disable_image_deprecation(ImageId="ami-0000000000000dead")
    assert error_code(excinfo) == "InvalidAMIID.NotFound"


def test_owner_still_sees_own_deprecated_images(aws, ec2):
    aws.configure(allow_past_deprecation=True)
    image_id = _own_image(ec2)
    ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=datetime(2020, 1, 1, tzinfo=timezone.utc))
    listed = ec2.describe_images(Owners=["self"])["Images"]
    assert [(i["ImageId"], i["DeprecationTime"]) for i in listed] == [(image_id, "2020-01-01T00:00:00.000Z")]


def test_describe_images_pagination(ec2):
    everything = ec2.describe_images(Owners=["amazon"])["Images"]
    assert len(everything) > 250
    pages = list(ec2.get_paginator("describe_images").paginate(Owners=["amazon"], PaginationConfig={"PageSize": 100}))
    sizes = [len(page["Images"]) for page in pages]
    assert sizes[:-1] == [100] * (len(pages) - 1)
    assert sum(sizes) == len(everything)
    paged_ids = [i["ImageId"] for page in pages for i in page["Images"]]
    assert sorted(paged_ids) == sorted(i["ImageId"] for i in everything)
    assert len(set(paged_ids)) == len(paged_ids)
    assert "NextToken" not in pages[-1]
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_images(ImageIds=[everything[0]["ImageId"]], MaxResults=5)
    assert error_code(excinfo) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_images(Owners=["amazon"], MaxResults=5, NextToken="garbage")
    assert error_code(excinfo) == "InvalidPaginationToken"


def test_modify_image_attribute_imds_support_requires_imdsv2(ec2):
    image_id = ec2.create_image(InstanceId=launch(ec2), Name="imds-later")["ImageId"]
    assert "ImdsSupport" not in ec2.describe_images(ImageIds=[image_id])["Images"][0]
    ec2.modify_image_attribute(ImageId=image_id, ImdsSupport={"Value": "v2.0"})
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["ImdsSupport"] == "v2.0"
    with pytest.raises(ClientError) as excinfo:
        ec2.modify_image_attribute(ImageId=image_id, ImdsSupport={"Value": "v1.0"})
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_creation_date_filter_matches_as_a_glob(ec2):
    image_id = ec2.create_image(InstanceId=launch(ec2), Name="dated")["ImageId"]
    created = ec2.describe_images(ImageIds=[image_id])["Images"][0]["CreationDate"]
    month = created[:7]

    def matching(pattern):
        images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "creation-date", "Values": [pattern]}])
        return [image["ImageId"] for image in images["Images"]]

    assert matching(f"{month}-*") == [image_id]
    assert matching("1999-01-*") == []


def test_volumes_always_carry_a_snapshot_id(ec2):
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)
    described = ec2.describe_volumes(VolumeIds=[volume["VolumeId"]])["Volumes"][0]
    assert described["SnapshotId"] == ""
