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


@pytest.mark.parametrize("value", ["amazon\n", "self ", "SELF", "137112412989\n"])
def test_owner_aliases_and_ids_are_whole_strings(value):
    assert v.owner("owners", value) is not None


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


def test_account_id():
    assert v.account_id("user_ids", "111122223333") is None
    assert v.account_id("user_ids", "1111") == "user_ids: '1111' is not an AWS account ID (12 digits)"


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


# ---------------------------------------------------------------------------------------------
# Hostile values for every rule: a trailing newline (a pattern ending in $ matches before it), a
# Unicode digit (\d matches it), surrounding text (a match that is not anchored at both ends).

ARABIC_SIX = "\u0666"  # ARABIC-INDIC DIGIT SIX: str.isdigit() and \d take it, [0-9] does not

# (rule, a good value, whether digits of any script are allowed: tag names and values take the
# letters and digits of every script, as AWS documents)
GOOD = [
    ("resource_id image", lambda value: v.resource_id("image_ids", value, "image"), "ami-0123456789abcdef0", False),
    ("resource_id snapshot", lambda value: v.resource_id("snapshot_id", value, "snapshot"), "snap-0123456789abcdef0", False),
    ("resource_id instance", lambda value: v.resource_id("instance_id", value, "instance"), "i-0123456789abcdef0", False),
    ("resource_id subnet", lambda value: v.resource_id("subnet_id", value, "subnet"), "subnet-01234567", False),
    ("account_id", lambda value: v.account_id("user_ids", value), "111122223333", False),
    ("owner id", lambda value: v.owner("owners", value), "111122223333", False),
    ("ami_name", lambda value: v.ami_name("name", value), "web-base 2025.11.26", False),
    ("family", lambda value: v.family("family", value), "web-base-1", False),
    ("run_id", lambda value: v.run_id("run_id", value), "bake-20251126-1", False),
    ("device_name", lambda value: v.device_name("root_device_name", value), "/dev/xvda1", False),
    ("region_name", lambda value: v.region_name("regions", value), "eu-west-1", False),
    ("kms_key", lambda value: v.kms_key("kms_key_id", value), "alias/bakery1", False),
    ("org_arn", lambda value: v.org_arn("org_arns", value), "arn:aws:organizations::111122223333:organization/o-abcde12345", False),
    ("org_unit_arn", lambda value: v.org_unit_arn("org_unit_arns", value),
     "arn:aws:organizations::111122223333:ou/o-abcde12345/ou-ab12-cdef5678", False),
    ("ssm_parameter", lambda value: v.ssm_parameter("ssm_parameter", value), "/aws/service/debian/12", False),
    ("parse_time", lambda value: v.parse_time("deprecate_at", value)[1], "2027-01-31T00:00:00Z", False),
    ("tag_key", lambda value: v.tag_key("tags", value), "bakery:family1", True),
    ("tag_value", lambda value: v.tag_value("tags", "k", value), "web-base-1", True),
]
HOSTILE = {
    "trailing newline": lambda good: good + "\n",
    "trailing CR LF": lambda good: good + "\r\n",
    "leading newline": lambda good: "\n" + good,
    "trailing NUL": lambda good: good + "\x00",
    "unicode digit": lambda good: good.replace("1", ARABIC_SIX, 1),
}


@pytest.mark.parametrize("name,rule,good,_any_script", GOOD, ids=[case[0] for case in GOOD])
def test_every_rule_accepts_its_good_value(name, rule, good, _any_script):
    assert "1" in good, name  # the unicode-digit variant replaces a 1
    assert rule(good) is None


@pytest.mark.parametrize(
    "rule,good,any_script,kind",
    [(rule, good, any_script, kind) for _name, rule, good, any_script in GOOD for kind in HOSTILE],
    ids=[f"{name}-{kind}" for name, _rule, _good, _any in GOOD for kind in HOSTILE],
)
def test_every_rule_refuses_hostile_variants_of_its_good_value(rule, good, any_script, kind):
    value = HOSTILE[kind](good)
    error = rule(value)
    if kind == "unicode digit" and any_script:
        assert error is None
        return
    assert error, f"{kind}: {value!r} was accepted"
    # the message shows the value with its control character escaped, never raw
    assert "\n" not in error and "\x00" not in error and "\r" not in error


@pytest.mark.parametrize("value", ["ami-12345678\n", "ami-12345678\n\n", " ami-12345678"])
def test_resource_ids_must_be_the_whole_string(value):
    assert v.resource_id("image_ids", value, "image") is not None


def test_messages_show_control_characters_and_cut_long_values():
    assert v.family("family", "web\n") .startswith("family: 'web\\n' is not a family name")
    error = v.ami_name("name", "x" * 100_000)
    assert len(error) < 300 and "100000" in error
    assert v.show("y" * 500).endswith("... (500 characters)")


# ---------------------------------------------------------------------------------------------
# Tags


@pytest.mark.parametrize(
    "value,needle",
    [
        ({"k" * 129: "v"}, "must be a string of 1-128 characters"),
        ({"aws:x": "v"}, "reserved prefix 'aws:'"),
        ({"AWS:x": "v"}, "reserved prefix 'aws:'"),
        ({"Aws:cloudformation:stack-name": "v"}, "reserved prefix 'aws:'"),
        ({"team\n": "v"}, "has the character '\\n' at position 4"),
        ({"team*": "v"}, "has the character '*' at position 4"),
        ({"team#1": "v"}, "has the character '#' at position 4"),
        ({"team": "a\nb"}, "with the control character '\\n' at position 1"),
        ({"team": "a\tb"}, "control character '\\t'"),
        ({"team": "a\u2028b"}, "control character '\\u2028'"),
        ({"team": "a\u202eb"}, "control character '\\u202e'"),
        ({"team": "x" * 257}, "longer than 256 characters (257)"),
        ({"team": 3}, "must be a string, got int"),
        ({"team": None}, "must be a string, got NoneType"),
    ],
)
def test_tag_rules_refuse(value, needle):
    error = v.tags("tags", value)
    assert error.startswith("tags: ") and needle in error


@pytest.mark.parametrize(
    "value",
    [
        {"k" * 128: "v" * 256},
        {"Name": "web-base 2025.11.26 (x86_64) [débian] 'q' #1 *?"},
        {"kubernetes.io/cluster/web": "owned"},
        {"équipe": "plateforme"},
        {"team": ""},
        {"a b+c=d.e_f:g/h@i-j": "v"},
    ],
)
def test_tag_rules_accept(value):
    assert v.tags("tags", value) is None


@pytest.mark.parametrize("value", ["*", "web-*", "web?", "w\\*", "?"])
def test_literal_tags_refuse_filter_wildcards_and_escapes(value):
    error = v.literal_tags("tags", {"bakery:family": value})
    assert "tag values are matched literally" in error
    assert v.tags("tags", {"bakery:family": value}) is None  # as tags to set, they are fine


@pytest.mark.parametrize(
    "sources,expected",
    [
        ([("tags", {f"t{n}": "v" for n in range(50)})], None),
        ([("tags", {f"t{n}": "v" for n in range(49)}), ("build_id", {"bakery:build-id": "b"})], None),
        ([("tags", {f"t{n}": "v" for n in range(50)}), ("build_id", {"bakery:build-id": "b"})],
         "tags: the image would carry 51 tags (50 from tags, 1 from build_id); EC2 allows at most 50 tags per resource"),
        # a key in two sources is one tag
        ([("tags", {f"t{n}": "v" for n in range(50)}), ("pending_tags", {"t0": "other"})], None),
        ([("tags", {f"t{n}": "v" for n in range(48)}), ("pending_tags", {"p": "1"}),
          ("bakery tags", {"bakery:source-image": "x", "bakery:source-name": "y"})],
         "tags: the image would carry 51 tags (48 from tags, 1 from pending_tags, 2 from bakery tags); "
         "EC2 allows at most 50 tags per resource"),
        ([("tags", None), ("pending_tags", {})], None),
    ],
)
def test_tag_total_counts_every_source(sources, expected):
    assert v.tag_total("tags", "image", sources) == expected


# ---------------------------------------------------------------------------------------------
# Times


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2027-01-31", datetime.datetime(2027, 1, 31, tzinfo=datetime.timezone.utc)),
        ("2027-01-31T10:20", datetime.datetime(2027, 1, 31, 10, 20, tzinfo=datetime.timezone.utc)),
        ("2027-01-31T10:20:30.123Z", datetime.datetime(2027, 1, 31, 10, 20, 30, 123000, tzinfo=datetime.timezone.utc)),
        ("2027-01-31T10:20:30.123456789Z", datetime.datetime(2027, 1, 31, 10, 20, 30, 123456, tzinfo=datetime.timezone.utc)),
        ("2027-01-31 10:20:30-0130", datetime.datetime(2027, 1, 31, 11, 50, 30, tzinfo=datetime.timezone.utc)),
        ("2027-01-31T10:20:30+05", datetime.datetime(2027, 1, 31, 5, 20, 30, tzinfo=datetime.timezone.utc)),
        (datetime.datetime(2027, 1, 31), datetime.datetime(2027, 1, 31, tzinfo=datetime.timezone.utc)),
    ],
)
def test_parse_time_forms(value, expected):
    assert v.parse_time("deprecate_at", value) == (expected, None)


@pytest.mark.parametrize(
    "value",
    ["2027-01-31T00:00:00Z\n", " 2027-01-31T00:00:00Z", "2027-02-30T00:00:00Z", "2027-01-31T24:00:00Z",
     "2027-01-31T00:00:00+24:00", "\u0662\u0660\u0662\u0667-01-31T00:00:00Z", "2027-01-31T00:00:00Zjunk", "2027"],
)
def test_parse_time_refuses(value):
    parsed, error = v.parse_time("deprecate_at", value)
    assert parsed is None and error.startswith("deprecate_at: ") and "ISO-8601" in error


def test_expiry_times_lie_in_the_future():
    now = datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc)
    assert v.expires_at("expires_at", "2026-11-26T03:00:00Z", now) is None
    error = v.expires_at("expires_at", "2026-11-25T23:00:00Z", now)
    assert error == ("expires_at: '2026-11-25T23:00:00Z' is in the past; an expiry time (the sweep removes an "
                     "expired resource at once) must lie in the future")
    assert v.expires_at("expires_at", now, now) is not None  # now is not in the future
    assert "not an ISO-8601 time" in v.expires_at("expires_at", "soon", now)


def test_expires_tag_checks_the_bakery_expiry_tag_only():
    now = datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc)
    assert v.expires_tag("tags", {"team": "2001-01-01"}, now) is None
    assert v.expires_tag("tags", None, now) is None
    assert v.expires_tag("pending_tags", {"bakery:expires-at": "2001-01-01T00:00:00Z"}, now).startswith(
        "pending_tags: tag bakery:expires-at: '2001-01-01T00:00:00Z' is in the past")


def test_future_time_names_what_must_lie_in_the_future():
    now = datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc)
    assert v.future_time("deprecate_at", "2020-01-01T00:00:00Z", now)[1] == (
        "deprecate_at: '2020-01-01T00:00:00Z' is in the past; a deprecation time must lie in the future")
