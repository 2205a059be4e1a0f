# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import datetime

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _validate as v


@pytest.mark.parametrize("value", ["ami-12345678", "ami-0123456789abcdef0"])
def test_valid_image_ids(value):
    assert v.resource_id("image_ids", value, "image") is None


@pytest.mark.parametrize("value", ["ami-xyz", "ami-1234567", "AMI-12345678", "snap-12345678", "", None, 5])
def test_malformed_image_ids_name_the_option(value):
    error = v.resource_id("image_ids", value, "image")
    assert error.startswith("image_ids: ") and "image ID" in error


@pytest.mark.parametrize("value", ["self", "amazon", "aws-marketplace", "137112412989"])
def test_owner_accepts_ids_and_aliases(value):
    assert v.owner("owners", value) is None


@pytest.mark.parametrize("value", ["", "me", "13711241298", "1371124129890"])
def test_owner_rejects_others(value):
    assert v.owner("owners", value).startswith("owners: ")


@pytest.mark.parametrize("value", ["web-base-1.0-x86_64", "abc", "a (b) [c] ./-'@_ z", "x" * 128])
def test_ami_names_allowed(value):
    assert v.ami_name("name", value) is None


@pytest.mark.parametrize(
    "value,needle", [("ab", "3-128"), ("x" * 129, "3-128"), ("web:base", "':'"), ("a*b?c", "'*'")]
)
def test_ami_names_refused_say_why(value, needle):
    error = v.ami_name("name", value)
    assert error.startswith("name: ") and needle in error


def test_sanitize_ami_name_replaces_forbidden_characters():
    assert v.sanitize_ami_name("web:base+1") == "web-base-1"
    assert v.ami_name("name", v.sanitize_ami_name("a:b" * 100)) is None


def test_region_names():
    assert v.region_name("regions", "us-east-1") is None
    assert v.region_name("regions", "us-gov-west-1") is None
    assert "not an AWS region" in v.region_name("regions", "mars-1")
    assert "unknown region 'us-nowhere-9'" in v.region_name("regions", "us-nowhere-9", ["us-east-1", "eu-west-1"])


def test_known_regions_come_from_botocore():
    regions = v.known_regions()
    assert "us-east-1" in regions and "eu-central-1" in regions and "cn-north-1" in regions
    assert "us-gov-west-1" in regions
    assert not [name for name in regions if name.endswith("-global")]


def test_known_regions_hold_every_region_of_botocore_endpoint_data():
    import boto3

    session = boto3.session.Session()
    endpoint_regions = set()
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        endpoint_regions.update(session.get_available_regions("ec2", partition_name=partition))
    assert endpoint_regions <= set(v.known_regions())


def test_known_regions_fall_back_to_the_endpoint_data_without_partition_data(monkeypatch):
    import botocore.loaders
    from botocore.exceptions import DataNotFoundError

    def missing(self, name):
        raise DataNotFoundError(data_path=name)

    monkeypatch.setattr(botocore.loaders.Loader, "load_data", missing)
    monkeypatch.setattr(botocore.loaders, "create_loader", lambda *a, **k: botocore.loaders.Loader())
    import boto3

    monkeypatch.setattr(boto3.session.Session, "get_available_regions",
                        lambda self, service, partition_name="aws": ["us-east-1"] if partition_name == "aws" else [])
    assert v.known_regions() == ["us-east-1"]


@pytest.mark.parametrize(
    "value",
    [
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "alias/bakery",
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:us-east-1:111122223333:alias/bakery",
    ],
)
def test_kms_key_references(value):
    assert v.kms_key("kms_key_id", value) is None


@pytest.mark.parametrize("value", ["bakery", "alias/", "arn:aws:kms:us-east-1:1:key/x", "key/123"])
def test_malformed_kms_key_references(value):
    assert v.kms_key("kms_key_id", value).startswith("kms_key_id: ")


def test_org_and_ou_arns():
    assert v.org_arn("org_arns", "arn:aws:organizations::111122223333:organization/o-abcde12345") is None
    assert v.org_arn("org_arns", "o-abcde12345")
    ou = "arn:aws:organizations::111122223333:ou/o-abcde12345/ou-ab12-cdef5678"
    assert v.org_unit_arn("org_unit_arns", ou) is None
    assert v.org_unit_arn("org_unit_arns", "ou-ab12-cdef5678")


def test_parse_time_accepts_iso8601_with_zone_or_z():
    parsed, error = v.parse_time("deprecate_at", "2027-01-31T00:00:00Z")
    assert error is None and parsed == datetime.datetime(2027, 1, 31, tzinfo=datetime.timezone.utc)
    parsed, error = v.parse_time("deprecate_at", "2027-01-31T02:00:00+02:00")
    assert parsed == datetime.datetime(2027, 1, 31, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("value", ["tomorrow", "31/01/2027", "", None, 5])
def test_parse_time_rejects_other_forms(value):
    parsed, error = v.parse_time("deprecate_at", value)
    assert parsed is None and error.startswith("deprecate_at: ")


def test_future_time_rejects_the_past():
    now = datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc)
    assert v.future_time("deprecate_at", "2027-01-01T00:00:00Z", now)[1] is None
    assert "in the past" in v.future_time("deprecate_at", "2020-01-01T00:00:00Z", now)[1]


@pytest.mark.parametrize(
    "value,needle",
    [
        ([], "dictionary"),
        ({"a": 1}, "must be a string"),
        ({"a": True}, "must be a string"),
        ({"": "x"}, "1-128"),
        ({"aws:x": "y"}, "reserved"),
        ({"a": "x" * 257}, "256"),
    ],
)
def test_tags_rules(value, needle):
    error = v.tags("tags", value)
    assert error.startswith("tags: ") and needle in error


def test_tags_accept_strings_and_none():
    assert v.tags("tags", {"bakery:family": "web", "Name": ""}) is None
    assert v.tags("tags", None) is None


def test_account_id_and_first_error():
    assert v.account_id("user_ids", "111122223333") is None
    assert v.account_id("user_ids", "1111") == "user_ids: '1111' is not an AWS account ID (12 digits)"
    assert v.first_error(None, "", "b", "c") == "b"


@pytest.mark.parametrize("value", ["web-base", "a", "svc.v2_x", "x" * 64])
def test_family_names_allowed(value):
    assert v.family("family", value) is None


@pytest.mark.parametrize("value", ["", "bad family!", "-lead", "x" * 65, "web/base", None, 5])
def test_family_names_refused(value):
    assert v.family("family", value).startswith("family: ")


@pytest.mark.parametrize("value,ok", [(0, True), (30, True), (36500, True), (36501, False), (-1, False),
                                      (10 ** 15, False), (True, False), ("3", False)])
def test_days_are_bounded(value, ok):
    assert (v.days("keep_days", value) is None) is ok
