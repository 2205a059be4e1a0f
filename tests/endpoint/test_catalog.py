# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An --amis catalog: owner aliases, per-region entries, deprecated public images, filters."""
from __future__ import annotations

import json

import pytest

from endpoint_helpers import tags_of
from tools.local_aws.control import LocalAws

CATALOG = [
    {"ami_id": "ami-0a0000000000000a1", "name": "al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64",
     "owner_id": "137112412989", "owner_alias": "amazon", "architecture": "x86_64", "public": True,
     "root_device_type": "ebs", "virtualization_type": "hvm", "creation_date": "2024-10-10T00:00:00.000Z"},
    {"ami_id": "ami-0a0000000000000a2", "name": "al2023-ami-2023.5.20240701.0-kernel-6.1-x86_64",
     "owner_id": "137112412989", "owner_alias": "amazon", "architecture": "x86_64", "public": True,
     "root_device_type": "ebs", "virtualization_type": "hvm", "deprecation_time": "2025-01-01T00:00:00.000Z"},
    {"ami_id": "ami-0a0000000000000a3", "name": "al2023-ami-2023.6.20241010.0-kernel-6.1-arm64",
     "owner_id": "137112412989", "owner_alias": "amazon", "architecture": "arm64", "public": True,
     "root_device_type": "ebs", "virtualization_type": "hvm"},
    {"ami_id": "ami-0c0000000000000c1", "name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240801",
     "owner_id": "099720109477", "architecture": "x86_64", "public": True, "root_device_type": "ebs",
     "virtualization_type": "hvm", "region": "eu-west-1"},
    {"ami_id": "ami-0d0000000000000d1", "name": "impostor al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64",
     "owner_id": "444455556666", "architecture": "x86_64", "public": True, "root_device_type": "ebs",
     "virtualization_type": "hvm", "tags": {"team": "x"}},
]


@pytest.fixture(scope="module")
def catalog_aws(tmp_path_factory):
    path = tmp_path_factory.mktemp("catalog") / "amis.json"
    path.write_text(json.dumps(CATALOG))
    with LocalAws.start(port=0, amis=path) as aws:
        yield aws


def _ids(response):
    return sorted(image["ImageId"] for image in response["Images"])


def test_owner_alias_and_regions(catalog_aws):
    east = catalog_aws.client("ec2", "us-east-1")
    west = catalog_aws.client("ec2", "eu-west-1")
    assert _ids(east.describe_images(Owners=["amazon"])) == ["ami-0a0000000000000a1", "ami-0a0000000000000a3"]
    assert _ids(east.describe_images(Owners=["099720109477"])) == []
    assert _ids(west.describe_images(Owners=["099720109477"])) == ["ami-0c0000000000000c1"]
    assert west.describe_images(ImageIds=["ami-0c0000000000000c1"])["Images"][0].get("ImageOwnerAlias") is None


def test_deprecated_public_images_hidden_unless_asked(catalog_aws):
    east = catalog_aws.client("ec2", "us-east-1")
    deprecated = "ami-0a0000000000000a2"
    assert deprecated not in _ids(east.describe_images(Owners=["137112412989"]))
    assert deprecated in _ids(east.describe_images(Owners=["137112412989"], IncludeDeprecated=True))
    by_id = east.describe_images(ImageIds=[deprecated])["Images"][0]
    assert by_id["DeprecationTime"] == "2025-01-01T00:00:00.000Z"


def test_server_side_filters(catalog_aws):
    east = catalog_aws.client("ec2", "us-east-1")
    filters = [
        {"Name": "name", "Values": ["al2023-ami-2023.*-kernel-6.1-*"]},
        {"Name": "architecture", "Values": ["x86_64"]},
        {"Name": "virtualization-type", "Values": ["hvm"]},
        {"Name": "root-device-type", "Values": ["ebs"]},
        {"Name": "state", "Values": ["available"]},
    ]
    assert _ids(east.describe_images(Filters=filters)) == ["ami-0a0000000000000a1"]
    assert _ids(east.describe_images(Filters=filters, IncludeDeprecated=True)) == [
        "ami-0a0000000000000a1", "ami-0a0000000000000a2"]
    by_alias = [{"Name": "owner-alias", "Values": ["amazon"]}, {"Name": "architecture", "Values": ["arm64"]}]
    assert _ids(east.describe_images(Filters=by_alias)) == ["ami-0a0000000000000a3"]
    tagged = east.describe_images(Filters=[{"Name": "tag:team", "Values": ["x"]}])
    assert _ids(tagged) == ["ami-0d0000000000000d1"]
    assert tags_of(tagged["Images"][0]) == {"team": "x"}
