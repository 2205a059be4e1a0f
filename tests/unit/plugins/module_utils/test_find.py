# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_find's core: option checks, query building, natural sort, paging, nearest miss, regions."""
from __future__ import annotations

import datetime
import random
import threading

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _find as f

from tests.unit.plugins.module_utils.find_fakes import FakeEC2, FakeSSM, image

NOW = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
AL = "137112412989"


def spec(**params):
    return f.build_request(params, "us-east-1", ["us-east-1", "eu-west-1", "eu-central-1", "us-west-2"])


def errors_of(**params):
    with pytest.raises(f.FindError) as info:
        spec(**params)
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# natural sort


@pytest.mark.parametrize("older, newer", [
    ("al2023-ami-2023.9.20241010.0-kernel-6.1-x86_64", "al2023-ami-2023.10.20241010.0-kernel-6.1-x86_64"),
    ("base-v2", "base-v10"),
    ("amzn2-ami-hvm-2.0.20240131.0-x86_64-gp2", "amzn2-ami-hvm-2.0.20240131.1-x86_64-gp2"),
    ("ubuntu-noble-24.04-amd64-server-20240801", "ubuntu-noble-24.04-amd64-server-20240801.1"),
    ("web-1.9", "web-1.10.0"),
    ("a", "b"),
])
def test_natural_key_orders_numbers_as_numbers(older, newer):
    assert f.natural_key(older) < f.natural_key(newer)


def test_natural_key_is_total_and_plain_sort_differs():
    names = ["x-2023.10", "x-2023.9", "x-2023.09", "x-2023.1", "x-2024.0", "y", None]
    ordered = sorted(names, key=f.natural_key)
    assert ordered == [None, "x-2023.1", "x-2023.09", "x-2023.9", "x-2023.10", "x-2024.0", "y"]
    assert sorted(n for n in names if n) != [n for n in ordered if n]


def test_sort_key_by_name_and_by_date_with_ties():
    a = image("ami-0000000a", "web-1.10", created="2024-01-01T00:00:00.000Z")
    b = image("ami-0000000b", "web-1.9", created="2024-06-01T00:00:00.000Z")
    c = image("ami-0000000c", "web-1.9", created="2024-06-01T00:00:00.000Z")
    assert [i["ImageId"] for i in f.newest_first([a, b, c])] == ["ami-0000000c", "ami-0000000b", "ami-0000000a"]
    assert [i["ImageId"] for i in f.newest_first([b, a, c], "name")] == ["ami-0000000a", "ami-0000000c",
                                                                         "ami-0000000b"]


def test_topn_keeps_the_best_and_counts_all():
    images = [image(f"ami-{n:08x}", f"web-{n}", created=f"2024-01-{n % 28 + 1:02d}T00:00:00.000Z")
              for n in range(200)]
    random.Random(3).shuffle(images)
    top = f.TopN(5, "name")
    for img in images:
        top.offer(img)
    assert top.count == 200
    assert [i["Name"] for i in top.best()] == ["web-199", "web-198", "web-197", "web-196", "web-195"]


# ---------------------------------------------------------------------------------------------
# option checks (each bad input fails with a message naming the option)


@pytest.mark.parametrize("params, expected", [
    ({"image_ids": ["ami-xyz"]}, "image_ids: 'ami-xyz' is not a valid image ID"),
    ({"image_ids": []}, "image_ids: must not be an empty list"),
    ({"owners": []}, "owners: must not be an empty list"),
    ({"owners": ["someone"]}, "owners: 'someone' is neither a 12-digit account ID"),
    ({"name": "x*"}, "owners: required unless distro, image_ids, ssm_parameter or executable_by_me is given"),
    ({"owners": ["self"], "regions": ["mars-north-1"]}, "regions: 'mars-north-1' is not an AWS region name"),
    ({"owners": ["self"], "regions": ["us-north-9"]}, "regions: unknown region 'us-north-9'"),
    ({"owners": ["self"], "regions": []}, "regions: must not be an empty list"),
    ({"ssm_parameter": "bad name!"}, "ssm_parameter: 'bad name!' is not an SSM parameter name"),
    ({"ssm_parameter": "/a", "image_ids": ["ami-12345678"]}, "image_ids: cannot be combined with ssm_parameter"),
    ({"owners": ["self"], "tags": {"version": 3}}, "tags: the value of tag 'version' must be a string, got int"),
    ({"distro": "windows-95"}, "distro: unknown distribution 'windows-95'; known ones are al2, al2023,"),
    ({"distro": "amzn", "architecture": "arm64"}, "architecture: the Amazon Linux AMI 2018.03 (distro amzn) has no"),
    ({"owners": ["self"], "limit": 0}, "limit: must be a whole number from 1 to 1000"),
    ({"owners": ["self"], "name": "a", "filters": {"name": "b"}}, "name: also given as filters.name"),
    ({"owners": ["self"], "tags": {"k": "v"}, "filters": {"tag:k": "w"}}, "tags: tag 'k' is also given"),
    ({"owners": ["self"], "filters": {"state": [{"x": 1}]}}, "filters: the values of filter 'state' must be strings"),
    ({"owners": ["self"], "architecture": "sparc"}, "architecture: must be one of"),
])
def test_bad_input_names_the_option(params, expected):
    assert expected in errors_of(**params)


# Hostile values: a trailing newline passes a pattern ending in $, a Unicode digit passes \d, a
# wildcard in a tag value makes EC2 match any value. Each is refused with the option named.
@pytest.mark.parametrize("params, expected", [
    ({"image_ids": ["ami-0123456789abcdef0\n"]}, "image_ids: 'ami-0123456789abcdef0\\n' is not a valid image ID"),
    ({"owners": ["123456789012\n"]}, "owners: '123456789012\\n' is neither a 12-digit account ID"),
    ({"owners": ["\u0661\u0662\u0663456789012"]}, "is neither a 12-digit account ID"),
    ({"owners": ["self"], "regions": ["us-east-1\n"]}, "regions: 'us-east-1\\n' is not an AWS region name"),
    ({"ssm_parameter": "/base/ami\n"}, "ssm_parameter: '/base/ami\\n' is not an SSM parameter name"),
    ({"owners": ["self"], "tags": {"bakery:family": "*"}}, "tags: the value of tag 'bakery:family' is '*'; tag values are matched literally"),
    ({"owners": ["self"], "tags": {"bakery:family": "web-?"}}, "may not hold ?"),
    ({"owners": ["self"], "tags": {"bakery:family": "web\\"}}, "may not hold \\"),
    ({"owners": ["self"], "tags": {"bakery:family": "web\n"}}, "control character '\\n'"),
    ({"owners": ["self"], "tags": {"aws:cloudformation:stack-name": "x"}}, "reserved prefix 'aws:'"),
])
def test_hostile_values_are_refused(params, expected):
    assert expected in errors_of(**params)


def test_a_glob_on_a_tag_still_goes_through_filters():
    assert spec(owners=["self"], filters={"tag:bakery:family": "web-*"}).filters == {"tag:bakery:family": ["web-*"]}


def test_natural_key_reads_only_ascii_digits_as_numbers():
    # '\u0666' is ARABIC-INDIC DIGIT SIX: \d would read it as 6 and sort 2023.\u0666 between 2023.5 and 2023.7
    assert f.natural_key("2023.\u0666") == (((1, 2023, "2023"), (0, 0, ".\u0666")), "2023.\u0666")


def test_unknown_distro_lists_every_known_one():
    message = errors_of(distro="centos-7")
    for name in ("al2023", "al2023-minimal", "al2", "amzn", "ubuntu-24.04", "ubuntu-22.04", "ubuntu-20.04",
                 "debian-12", "debian-11", "rhel-9", "rhel-8"):
        assert name in message


def test_open_ended_refusal_says_why():
    assert "untrusted images" in errors_of(architecture="x86_64")


def test_all_problems_are_reported_together():
    message = errors_of(owners=[], image_ids=["ami-xyz"], limit=0)
    assert "owners:" in message and "image_ids:" in message and "limit:" in message


@pytest.mark.parametrize("params", [
    {"distro": "al2023"}, {"image_ids": ["ami-0123456789abcdef0"]}, {"ssm_parameter": "/aws/service/x"},
    {"executable_by_me": True}, {"owners": ["amazon"]},
])
def test_owners_not_needed_with_a_trusted_source(params):
    assert spec(**params).regions == ("us-east-1",)


def test_ssm_prefix_is_stripped_and_versions_allowed():
    assert spec(ssm_parameter="resolve:ssm:/aws/service/a/b").ssm_parameter == "/aws/service/a/b"
    assert spec(ssm_parameter="/base/ami:3").ssm_parameter == "/base/ami:3"


def test_regions_are_deduplicated_in_order():
    assert spec(owners=["self"], regions=["eu-west-1", "us-east-1", "eu-west-1"]).regions == ("eu-west-1",
                                                                                              "us-east-1")


def test_no_region_at_all_fails():
    with pytest.raises(f.FindError, match="region: no region given"):
        f.build_request({"owners": ["self"]}, None)


# ---------------------------------------------------------------------------------------------
# query building


def test_distro_query_has_owner_name_and_64_bit_ebs_hvm_defaults():
    query = f.build_query(spec(distro="al2023"))
    assert query == {
        "owners": [],
        "executable_users": [],
        "filters": {
            "owner-id": [AL],
            "name": ["al2023-ami-2023.*-kernel-*-x86_64"],
            "architecture": ["x86_64"],
            "virtualization-type": ["hvm"],
            "root-device-type": ["ebs"],
            "state": ["available"],
        },
        "include_deprecated": False,
        "include_disabled": False,
    }


def test_distro_any_architecture_sends_every_name_pattern():
    filters = f.build_query(spec(distro="debian-12", architecture="any"))["filters"]
    assert filters["name"] == ["debian-12-amd64-*", "debian-12-arm64-*"]
    assert "architecture" not in filters


def test_distro_name_and_owners_can_be_overridden():
    filters = f.build_query(spec(distro="al2023", owners=["111122223333"], name="al2023-ami-2023.*-kernel-6.1-*"))[
        "filters"]
    assert filters["owner-id"] == ["111122223333"] and filters["name"] == ["al2023-ami-2023.*-kernel-6.1-*"]


@pytest.mark.parametrize("owners, param, filters", [
    (["111122223333", "444455556666"], [], {"owner-id": ["111122223333", "444455556666"]}),
    (["amazon", "aws-marketplace"], [], {"owner-alias": ["amazon", "aws-marketplace"]}),
    (["self"], ["self"], {}),
    (["amazon", "111122223333"], ["amazon", "111122223333"], {}),
])
def test_owners_go_as_filters_unless_mixed_or_self(owners, param, filters):
    query = f.build_query(spec(owners=owners))
    assert query["owners"] == param
    assert {k: v for k, v in query["filters"].items() if k.startswith("owner")} == filters


def test_any_drops_the_attribute_filters_and_flags_pass_through():
    query = f.build_query(spec(owners=["self"], architecture="any", virtualization_type="any",
                               root_device_type="any", include_deprecated=True, include_disabled=True,
                               tags={"bakery:family": "web", "bakery:stage": "base"}))
    assert query["filters"] == {"state": ["available", "disabled"], "tag:bakery:family": ["web"],
                                "tag:bakery:stage": ["base"]}
    assert query["include_deprecated"] and query["include_disabled"]
    params = f.request_params(query)
    assert params["Owners"] == ["self"] and params["IncludeDeprecated"] and params["IncludeDisabled"]


def test_raw_filters_merge_and_win_and_values_become_string_lists():
    query = f.build_query(spec(owners=["self"], filters={"architecture": ["arm64", "x86_64"], "ena-support": True,
                                                         "tag:n": 1}))
    assert query["filters"]["architecture"] == ["arm64", "x86_64"]
    assert query["filters"]["ena-support"] == ["true"] and query["filters"]["tag:n"] == ["1"]


def test_executable_by_me_and_image_ids():
    query = f.build_query(spec(executable_by_me=True))
    assert query["executable_users"] == ["self"] and query["filters"]["is-public"] == ["false"]
    query = f.build_query(spec(image_ids=["ami-12345678", "ami-12345678", "ami-0123456789abcdef0"]))
    assert query["filters"]["image-id"] == ["ami-12345678", "ami-0123456789abcdef0"]
    assert f.build_query(spec(ssm_parameter="/p"), ["ami-87654321"])["filters"]["image-id"] == ["ami-87654321"]


@pytest.mark.parametrize("pattern, value, expected", [
    ("al2023-*-x86_64", "al2023-ami-2023.6-x86_64", True),
    ("al2023-*-x86_64", "al2023-ami-2023.6-arm64", False),
    ("web-?", "web-1", True),
    ("web-?", "web-10", False),
    ("a[1]", "a[1]", True),
    ("a.b", "axb", False),
    ("x", None, False),
])
def test_glob_match_is_ec2_filter_semantics(pattern, value, expected):
    assert f.glob_match(pattern, value) is expected


# ---------------------------------------------------------------------------------------------
# search: server-side filters, paging, nothing twice


def catalog(n=2500):
    images = []
    for i in range(n):
        arch = ("x86_64", "arm64", "i386")[i % 3]
        created = datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=i)
        images.append(image(f"ami-{i:08x}", f"al2023-ami-2023.{i % 12}.2024{i % 12 + 1:02d}01.0-kernel-6.1-{arch}",
                            arch=arch, created=created.strftime("%Y-%m-%dT%H:%M:%S.000Z")))
    random.Random(7).shuffle(images)
    return images


def test_search_pages_through_every_result_once_with_filters_on_the_server():
    client = FakeEC2(catalog())
    # a creation-date filter of one's own: one pass, not newest first
    s = spec(owners=[AL], name="al2023-ami-*", architecture="any", limit=3, filters={"creation-date": "*"})
    (result, miss), = f.search({"us-east-1": client}, s, now=NOW)
    assert miss is None
    assert result.matched == 2500 and result.complete
    assert len(client.calls) == 3  # 1000 + 1000 + 500, no second pass
    assert all(call["MaxResults"] == f.PAGE_SIZE for call in client.calls)
    assert {x["Name"]: x["Values"] for x in client.calls[0]["Filters"]}["owner-id"] == [AL]
    assert [i["ImageId"] for i in result.images] == [f"ami-{i:08x}" for i in (2499, 2498, 2497)]


def test_client_side_checks_catch_what_an_endpoint_ignores():
    class Sloppy(FakeEC2):
        def describe_images(self, **params):
            params = dict(params, Filters=[x for x in params["Filters"] if x["Name"] != "architecture"])
            return super().describe_images(**params)

    client = Sloppy(catalog(30))
    (result, _images), = f.search({"us-east-1": client}, spec(owners=[AL]), now=NOW)
    assert result.matched == 10 and all(i["Architecture"] == "x86_64" for i in result.images)


def test_deprecated_images_are_dropped_even_for_their_owner():
    own = [image("ami-00000001", "base-1", owner="123456789012", created="2024-02-01T00:00:00.000Z",
                 deprecation="2024-06-01T00:00:00.000Z"),
           image("ami-00000002", "base-2", owner="123456789012", created="2024-01-01T00:00:00.000Z")]
    client = FakeEC2(own, now=NOW)
    (result, _images), = f.search({"us-east-1": client}, spec(owners=["self"]), now=NOW)
    assert [i["ImageId"] for i in result.images] == ["ami-00000002"]
    (result, _images), = f.search({"us-east-1": client}, spec(owners=["self"], include_deprecated=True), now=NOW)
    assert [i["ImageId"] for i in result.images] == ["ami-00000001", "ami-00000002"]


def test_regions_run_concurrently_and_keep_their_order():
    barrier = threading.Barrier(3, timeout=5)

    class Waiting(FakeEC2):
        def describe_images(self, **params):
            barrier.wait()  # only passes when all three regions are in flight at once
            return super().describe_images(**params)

    regions = ["eu-west-1", "us-east-1", "eu-central-1"]
    clients = {r: Waiting([image(f"ami-0000000{n}", f"base-{r}")]) for n, r in enumerate(regions)}
    outcomes = f.search(clients, spec(owners=[AL], regions=regions), now=NOW)
    assert [result.region for result, _images in outcomes] == regions
    assert [result.images[0]["Name"] for result, _images in outcomes] == [f"base-{r}" for r in regions]


# ---------------------------------------------------------------------------------------------
# newest first in creation-date windows (broad and distro queries)


def test_creation_windows_partition_all_time_newest_first():
    windows = f.creation_windows(datetime.datetime(2025, 2, 10, tzinfo=datetime.timezone.utc))
    assert windows[0] == ["2025-02-*", "2025-01-*"]
    # then everything older in one window: the rest of 2024 by month, then whole years
    assert len(windows) == 2
    assert windows[1][:2] == ["2024-12-*", "2024-11-*"] and windows[1][12:14] == ["2023-*", "2022-*"]
    assert windows[1][-1] == "2000-*"
    # Every month from 2000-01 to now falls in exactly one window.
    covered = []
    for year in range(2000, 2026):
        for month in range(1, 13):
            if (year, month) > (2025, 2):
                continue
            stamp = f"{year}-{month:02d}-15T00:00:00.000Z"
            covered.append(sum(any(f.glob_match(v, stamp) for v in w) for w in windows))
    assert set(covered) == {1}


def dated(n, now=NOW, step_hours=13, **kwargs):
    return [image(f"ami-{i:08x}", f"img-{i}", created=(now - datetime.timedelta(hours=step_hours * i)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"), **kwargs) for i in range(n)]


def test_broad_query_stops_once_limit_candidates_are_found():
    now = datetime.datetime(2025, 1, 20, tzinfo=datetime.timezone.utc)
    client = FakeEC2(dated(5000, now=now))  # one image every 13 hours, going back about 7 years
    (result, _images), = f.search({"us-east-1": client}, spec(owners=[AL], limit=10), now=now)
    assert [i["ImageId"] for i in result.images] == [f"ami-{i:08x}" for i in range(10)]
    assert len(client.calls) == 1 and not result.complete
    assert {x["Name"]: x["Values"] for x in client.calls[0]["Filters"]}["creation-date"] == ["2025-01-*", "2024-12-*"]
    assert result.query["creation_date_windows"] == [["2025-01-*", "2024-12-*"]]
    assert "creation-date" not in result.query["filters"]


@pytest.mark.parametrize("seed", range(6))
def test_newest_first_answers_like_a_full_pass(seed):
    rng = random.Random(seed)
    images = [image(f"ami-{i:08x}", f"img-{i}", arch=rng.choice(["x86_64", "arm64"]),
                    created=(NOW - datetime.timedelta(days=rng.randint(0, 3000))).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
              for i in range(rng.randint(0, 400))]
    limit = rng.choice([1, 5, 20])
    (windowed, _images), = f.search({"us-east-1": FakeEC2(images)}, spec(owners=[AL], limit=limit, required=False), now=NOW)
    client = FakeEC2(images)
    one_pass = spec(owners=[AL], filters={"creation-date": "*"}, limit=limit, required=False)
    (full, _images), = f.search({"us-east-1": client}, one_pass, now=NOW)
    assert [i["ImageId"] for i in windowed.images] == [i["ImageId"] for i in full.images]
    assert len(client.calls) == 1


def test_no_image_is_described_twice_in_the_windows():
    client = FakeEC2(dated(3000))
    seen = []
    original = client.describe_images

    def recording(**params):
        answer = original(**params)
        seen.extend(i["ImageId"] for i in answer["Images"])
        return answer

    client.describe_images = recording
    f.search({"us-east-1": client}, spec(owners=[AL], limit=1000), now=NOW)
    assert len(seen) == len(set(seen)) >= 1000


def test_distro_and_publisher_queries_read_newest_first_but_own_name_globs_do_not():
    query = f.build_query(spec(distro="al2023"))
    assert f.newest_first_applies(spec(distro="al2023"), query)
    for params in ({"owners": ["amazon"]}, {"distro": "al2023", "name": "al2023-ami-2023.6*"},
                   {"owners": ["amazon"], "name": "al2023-ami-2023.*-x86_64"},
                   {"owners": ["099720109477", "amazon"], "name": "ubuntu/images/*"},
                   {"owners": ["136693071363"], "name": "debian-12-amd64-2024????-*"}):
        assert f.newest_first_applies(spec(**params), f.build_query(spec(**params))), params
    for params in ({"owners": ["self"], "name": "web-*"}, {"owners": ["self", "amazon"], "name": "al2023-*"},
                   {"owners": ["amazon"], "name": "al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64"},
                   {"executable_by_me": True, "owners": ["amazon"], "name": "web-*"},
                   {"owners": ["self"], "tags": {"bakery:family": "web"}}, {"image_ids": ["ami-12345678"]},
                   {"owners": ["amazon"], "sort_by": "name"}):
        assert not f.newest_first_applies(spec(**params), f.build_query(spec(**params))), params


def test_endpoint_without_creation_date_wildcards_falls_back_to_one_plain_pass():
    class ExactDates(FakeEC2):
        def describe_images(self, **params):
            filters = [dict(x, Values=[v.replace("*", "\\0") for v in x["Values"]]) if x["Name"] == "creation-date"
                       else x for x in params["Filters"]]
            return super().describe_images(**dict(params, Filters=filters))

    client = ExactDates(dated(50))
    (result, _images), = f.search({"us-east-1": client}, spec(owners=[AL], limit=3), now=NOW)
    assert [i["ImageId"] for i in result.images] == ["ami-00000000", "ami-00000001", "ami-00000002"]
    assert len(client.calls) == 3 and result.query["creation_date_fallback"] is True
    assert "creation-date" not in {x["Name"] for x in client.calls[-1]["Filters"]}


def test_endpoint_ignoring_the_creation_date_filter_still_gives_the_right_answer():
    class Ignoring(FakeEC2):
        def describe_images(self, **params):
            filters = [x for x in params["Filters"] if x["Name"] != "creation-date"]
            return super().describe_images(**dict(params, Filters=filters))

    images = dated(40, step_hours=24 * 20)  # one image every 20 days
    (result, _images), = f.search({"us-east-1": Ignoring(images)}, spec(owners=[AL], limit=5), now=NOW)
    assert [i["ImageId"] for i in result.images] == [f"ami-{i:08x}" for i in range(5)]
    assert result.matched == len({i["ImageId"] for i in result.images}) or result.matched >= 5


# ---------------------------------------------------------------------------------------------
# nearest miss


def miss_of(images, **params):
    client = FakeEC2(images, now=NOW)
    (result, miss), = f.search({"us-east-1": client}, spec(**params), now=NOW)
    assert result.matched == 0
    answer, error = f.assemble(spec(**params), [(result, miss)], now=NOW)
    assert "image" not in answer and answer["images"] == []
    return error


def test_miss_names_the_architecture():
    images = [image(f"ami-0000000{n}", f"al2023-ami-2023.6.2024101{n}.0-kernel-6.1-arm64", arch="arm64")
              for n in range(3)]
    error = miss_of(images, owners=[AL], name="al2023-ami-*")
    assert error.startswith("no image found in us-east-1 for filters {'name': ['al2023-ami-*'],"
                            " 'owner-id': ['137112412989'], 'architecture': ['x86_64']")
    assert "3 images matched the owners and the name but none is x86_64 (found: arm64)" in error
    assert "nearest miss: ami-00000002" in error


def test_miss_names_the_tag_and_deprecation_and_state():
    images = [image("ami-00000001", "web-1", tags={"bakery:family": "api"})]
    assert "none carries tag bakery:family=web (found: bakery:family=api)" in miss_of(
        images, owners=[AL], tags={"bakery:family": "web"})
    images = [image("ami-00000001", "web-1", deprecation="2024-06-01T00:00:00.000Z")]
    assert "none is current (they are deprecated); nearest miss: ami-00000001 (web-1); set include_deprecated" \
        in miss_of(images, owners=[AL])
    images = [image("ami-00000001", "web-1", state="disabled")]
    assert "none is in state available (found: disabled)" in miss_of(images, owners=[AL])


def test_miss_without_any_candidate():
    assert "no image matched the owners and the name at all" in miss_of(
        [image("ami-00000001", "web-1")], owners=[AL], name="api-*")


def test_image_ids_miss_explains_each_criterion():
    images = [image("ami-00000001", "legacy", virt="paravirtual", root="instance-store")]
    error = miss_of(images, image_ids=["ami-00000001"])
    assert "1 image matches the image IDs but none is hvm (found: paravirtual) and has root device type ebs" \
        " (found: instance-store)" in error
    assert "none of the image IDs exists" in miss_of(images, image_ids=["ami-00000009"])


def test_no_diagnosis_when_not_required():
    client = FakeEC2([image("ami-00000001", "web-1", arch="arm64")])
    (result, miss), = f.search({"us-east-1": client}, spec(owners=[AL], name="web-*", required=False), now=NOW)
    # the two newest-first windows and the plain pass; no diagnosis (it drops the architecture filter)
    assert miss is None and len(client.calls) == 3
    assert all("architecture" in {x["Name"] for x in call["Filters"]} for call in client.calls)
    answer, error = f.assemble(spec(owners=[AL], name="web-*", required=False), [(result, miss)], now=NOW)
    assert error is None and answer["images"] == [] and answer["images_by_region"]["us-east-1"]["matched"] == 0


# ---------------------------------------------------------------------------------------------
# the SSM parameter


def test_ssm_is_resolved_per_region_then_checked():
    s = spec(ssm_parameter="resolve:ssm:/aws/service/x", regions=["us-east-1", "eu-west-1"])
    ssm = {"us-east-1": FakeSSM({"/aws/service/x": "ami-00000001"}),
           "eu-west-1": FakeSSM({"/aws/service/x": "ami-00000002"})}
    values = f.resolve_ssm(ssm, s)
    assert values == {"us-east-1": "ami-00000001", "eu-west-1": "ami-00000002"}
    ec2 = {"us-east-1": FakeEC2([image("ami-00000001", "a"), image("ami-00000003", "c")]),
           "eu-west-1": FakeEC2([image("ami-00000002", "b", arch="arm64")])}
    outcomes = f.search(ec2, s, values, now=NOW)
    answer, error = f.assemble(s, outcomes, now=NOW)
    assert answer["image"]["image_id"] == "ami-00000001"
    assert answer["images_by_region"]["us-east-1"]["ssm_parameter_value"] == "ami-00000001"
    assert error.startswith("no image found in eu-west-1")
    assert "the image ami-00000002 named by SSM parameter /aws/service/x but none is x86_64" in error


@pytest.mark.parametrize("parameters, expected", [
    ({}, "ssm_parameter: parameter /p does not exist in us-east-1"),
    ({"/p": "hello"}, "ssm_parameter: the value of /p in us-east-1 is 'hello', which is not an AMI ID"),
])
def test_ssm_bad_parameter(parameters, expected):
    with pytest.raises(f.FindError) as info:
        f.resolve_ssm({"us-east-1": FakeSSM(parameters)}, spec(ssm_parameter="/p"))
    assert str(info.value) == expected


# ---------------------------------------------------------------------------------------------
# assembling the answer


def outcome(images, **params):
    s = spec(**params)
    return s, f.search({r: FakeEC2(images) for r in s.regions}, s, now=NOW)


def test_answer_has_snake_case_tags_dict_release_and_distro():
    images = [image("ami-00000001", "al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64",
                    tags={"bakery:family": "web"}, created="2024-10-10T00:00:00.000Z"),
              image("ami-00000002", "al2023-ami-2023.5.20240624.0-kernel-6.1-x86_64", created="2024-06-24T00:00:00.000Z"),
              image("ami-00000003", "my-own-image", created="2023-01-01T00:00:00.000Z")]
    s, outcomes = outcome(images, distro="al2023", limit=2)
    answer, error = f.assemble(s, outcomes, now=NOW)
    assert error is None
    assert answer["changed"] is False
    assert answer["image"]["image_id"] == "ami-00000001"
    assert answer["image"]["tags"] == {"bakery:family": "web"}
    assert answer["image"]["release"] == "2023.6.20241010" and answer["image"]["distro"] == "al2023"
    assert answer["image"]["owner_id"] == AL and answer["image"]["root_device_type"] == "ebs"
    assert [i["image_id"] for i in answer["images"]] == ["ami-00000001", "ami-00000002"]
    assert answer["images_by_region"]["us-east-1"]["matched"] == 2
    assert answer["query"]["filters"]["name"] == ["al2023-ami-2023.*-kernel-*-x86_64"]
    assert answer["warnings"] == []


def test_unknown_names_have_no_release():
    s, outcomes = outcome([image("ami-00000003", "my-own-image")], owners=[AL])
    answer, _warnings = f.assemble(s, outcomes, now=NOW)
    assert answer["image"]["release"] is None and answer["image"]["distro"] is None


def test_most_recent_false_and_unique():
    images = [image("ami-00000001", "a"), image("ami-00000002", "b")]
    s, outcomes = outcome(images, owners=[AL], most_recent=False)
    answer, error = f.assemble(s, outcomes, now=NOW)
    assert error is None and "image" not in answer and len(answer["images"]) == 2
    s, outcomes = outcome(images, owners=[AL], most_recent=False, unique=True)
    answer, error = f.assemble(s, outcomes, now=NOW)
    assert error.startswith("unique: 2 images matched in us-east-1 (ami-00000002 (b), ami-00000001 (a))")
    s, outcomes = outcome(images[:1], owners=[AL], most_recent=False, unique=True)
    answer, error = f.assemble(s, outcomes, now=NOW)
    assert error is None and answer["image"]["image_id"] == "ami-00000001"


def test_warnings_when_a_non_default_value_was_what_matched():
    images = [image("ami-00000001", "legacy-pv", arch="i386", virt="paravirtual", root="instance-store")]
    s, outcomes = outcome(images, owners=[AL], architecture="any", virtualization_type="any", root_device_type="any")
    answer, _warnings = f.assemble(s, outcomes, now=NOW)
    text = "\n".join(answer["warnings"])
    assert len(answer["warnings"]) == 3
    assert "is architecture i386: it matched only because architecture is any" in text
    assert "is virtualization-type paravirtual: it matched only because virtualization_type is any" in text
    assert "is root-device-type instance-store: it matched only because root_device_type is any" in text
    s, outcomes = outcome([image("ami-00000002", "arm", arch="arm64")], owners=[AL], architecture="any")
    assert f.assemble(s, outcomes, now=NOW)[0]["warnings"] == []


def test_warnings_for_deprecated_and_disabled_choices():
    images = [image("ami-00000001", "old", deprecation="2024-06-01T00:00:00.000Z", state="disabled")]
    s, outcomes = outcome(images, owners=[AL], include_deprecated=True, include_disabled=True)
    warnings = f.assemble(s, outcomes, now=NOW)[0]["warnings"]
    assert any("is deprecated since 2024-06-01" in w for w in warnings)
    assert any("is disabled: it matched only because include_disabled is true" in w for w in warnings)


def test_images_by_region_and_first_region_on_top():
    s = spec(owners=[AL], regions=["eu-west-1", "us-east-1"])
    clients = {"eu-west-1": FakeEC2([image("ami-0000000e", "eu")]), "us-east-1": FakeEC2([image("ami-0000000a", "us")])}
    answer, error = f.assemble(s, f.search(clients, s, now=NOW), now=NOW)
    assert error is None
    assert answer["image"]["name"] == "eu"
    assert answer["images_by_region"]["us-east-1"]["image"]["name"] == "us"
    assert list(answer["images_by_region"]) == ["eu-west-1", "us-east-1"]


def test_a_miss_in_one_region_fails_naming_it():
    s = spec(owners=[AL], regions=["eu-west-1", "us-east-1"])
    clients = {"eu-west-1": FakeEC2([image("ami-0000000e", "eu")]), "us-east-1": FakeEC2([])}
    answer, error = f.assemble(s, f.search(clients, s, now=NOW), now=NOW)
    assert error.startswith("no image found in us-east-1") and "eu-west-1" not in error
    assert answer["image"]["name"] == "eu"
