# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_channel's revoke: the options, the choice of a channel's previous good image, and a revoke run
over fake regions (module_utils patched): refusal before any change, idempotence, check mode."""
from __future__ import annotations

import datetime

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _channel
from ansible_collections.bakery.ami.plugins.module_utils import _time

KNOWN = ["ap-southeast-2", "eu-west-1", "us-east-1", "us-west-2"]
REGIONS = ["us-east-1", "eu-west-1"]
NOW = datetime.datetime(2026, 12, 6, 10, 0, 40, tzinfo=datetime.timezone.utc)
# version 1, 2, 3 of web-base in each region; X is of another family
V1 = {"us-east-1": "ami-00000000000000001", "eu-west-1": "ami-00000000000000011"}
V2 = {"us-east-1": "ami-00000000000000002", "eu-west-1": "ami-00000000000000012"}
V3 = {"us-east-1": "ami-00000000000000003", "eu-west-1": "ami-00000000000000013"}
STABLE, LATEST, OTHER = "/bakery/web-base/stable", "/bakery/web-base/latest", "/bakery/db-base/stable"
MUTATING = ("put_parameter", "add_parameter_tags", "create_tags", "enable_image_deprecation")


def request(**params):
    base = {"prefix": "bakery", "family": "web-base", "version": "2", "regions": REGIONS}
    base.update(params)
    return _channel.build_revoke_request(base, "us-east-1", KNOWN)


def image(image_id, version, family="web-base", state="available", deprecation=None, revoked=False):
    tags = [{"Key": "bakery:family", "Value": family}, {"Key": "bakery:version", "Value": version}]
    if revoked:
        tags.append({"Key": "bakery:revoked", "Value": "true"})
    found = {"ImageId": image_id, "State": state, "Tags": tags}
    if deprecation:
        found["DeprecationTime"] = deprecation
    return found


# ---------------------------------------------------------------------------------------------
# Options


def test_request_takes_the_path_and_defaults_to_the_module_region():
    got = _channel.build_revoke_request({"prefix": "teams/x", "family": "web-base", "version": "2"}, "eu-west-1", KNOWN)
    assert got == _channel.RevokeRequest(prefix="teams/x", family="web-base", version="2", regions=["eu-west-1"],
                                         path="/teams/x/web-base")


@pytest.mark.parametrize("params,fragment", [
    ({"version": None}, "version: required"),
    ({"version": ""}, "version: must not be empty"),
    ({"version": "2*"}, "version: '2*' holds *; versions are matched literally"),
    ({"family": "../x"}, "family: '../x' is not a family name"),
    ({"prefix": "/bakery"}, "prefix: '/bakery' is not a parameter path prefix"),
    ({"prefix": "aws/x"}, "SSM reserves"),
    ({"regions": []}, "regions: must name at least one region"),
    ({"regions": ["us-east-1", "us-east-1"]}, "regions: a region is named more than once"),
    ({"regions": ["xx-north-9"]}, "regions: unknown region 'xx-north-9'"),
])
def test_bad_options_name_the_option_and_the_rule(params, fragment):
    with pytest.raises(_channel.ChannelError) as info:
        request(**params)
    assert fragment in info.value.msg


def test_no_region_at_all_is_refused():
    with pytest.raises(_channel.ChannelError) as info:
        _channel.build_revoke_request({"family": "web-base", "version": "2"}, None, KNOWN)
    assert "regions: no region given" in info.value.msg


# ---------------------------------------------------------------------------------------------
# The previous good image


def test_earlier_values_are_newest_first_without_the_current_one():
    history = [{"Version": 1, "Value": "ami-00000000000000001"}, {"Version": 2, "Value": "ami-00000000000000003"},
               {"Version": 3, "Value": "ami-00000000000000001"}, {"Version": 4, "Value": "not-an-image"},
               {"Version": 5, "Value": "ami-00000000000000002"}]
    assert _channel.earlier_values(history) == ["ami-00000000000000001", "ami-00000000000000003"]
    assert _channel.earlier_values(list(reversed(history))) == ["ami-00000000000000001", "ami-00000000000000003"]
    assert _channel.earlier_values([{"Version": 1, "Value": "ami-00000000000000002"}]) == []
    assert _channel.earlier_values([]) == []


def test_the_choice_skips_revoked_missing_deprecated_and_the_revoked_version():
    a, b, c, d, e, f, g = (f"ami-0000000000000010{n}" for n in range(7))
    images = {
        b: image(b, "5", revoked=True),                                    # revoked before
        c: image(c, "4", deprecation="2026-12-06T09:00:00.000Z", revoked=True),  # deprecated by an earlier revoke
        d: image(d, "3", deprecation="2026-01-01T00:00:00.000Z"),          # retired
        e: image(e, "3", state="pending"),
        f: image(f, "3", family="db-base"),
        g: image(g, "1", deprecation="2027-06-01T00:00:00.000Z"),         # deprecated only later: still good
    }
    chosen, skipped = _channel.choose_previous([a, "ami-00000000000000099", b, c, d, e, f, g], images, "web-base", [a], NOW)
    assert chosen == g
    assert skipped == [
        (a, "an image of the version revoked"),
        ("ami-00000000000000099", "does not exist"),
        (b, "tagged bakery:revoked=true"),
        (c, "tagged bakery:revoked=true"),
        (d, "deprecated since 2026-01-01T00:00:00.000Z"),
        (e, "is pending"),
        (f, "of family db-base"),
    ]


def test_the_choice_takes_the_newest_good_one_and_an_untagged_image():
    a, b = "ami-00000000000000201", "ami-00000000000000202"
    untagged = {"ImageId": b, "State": "available"}
    assert _channel.choose_previous([b, a], {a: image(a, "1"), b: untagged}, "web-base", [], NOW) == (b, [])
    assert _channel.choose_previous([a, b], {a: image(a, "1"), b: untagged}, "web-base", [], NOW) == (a, [])


def test_nothing_good_left_is_none():
    a = "ami-00000000000000301"
    assert _channel.choose_previous([], {}, "web-base", [], NOW) == (None, [])
    assert _channel.choose_previous([a], {a: image(a, "1", revoked=True)}, "web-base", [], NOW) == (
        None, [(a, "tagged bakery:revoked=true")])


def test_the_deprecation_time_is_the_first_minute_ec2_takes():
    assert _channel.revoke_deprecation_time(NOW) == datetime.datetime(2026, 12, 6, 10, 2, tzinfo=datetime.timezone.utc)
    early = NOW.replace(second=10)
    assert _channel.revoke_deprecation_time(early) == datetime.datetime(2026, 12, 6, 10, 1, tzinfo=datetime.timezone.utc)


# ---------------------------------------------------------------------------------------------
# A revoke over fake regions


class FakeAws:
    """Images, channel parameters with their history, and tags per region, behind the _aws functions."""

    def __init__(self, monkeypatch):
        self.images: dict = {region: {} for region in REGIONS}    # region -> {image ID: image}
        self.history: dict = {region: {} for region in REGIONS}   # region -> {name: [values, oldest first]}
        self.parameter_tags: dict = {}
        self.calls: list = []
        self.fail: dict = {}
        for name in ("describe_images", "get_parameters_by_path", "get_parameter_history", "put_parameter",
                     "add_parameter_tags", "create_tags", "enable_image_deprecation"):
            monkeypatch.setattr(_aws, name, getattr(self, name))
        monkeypatch.setattr(_time, "now", lambda: NOW)

    def add(self, region, found):
        self.images[region][found["ImageId"]] = found

    def promote(self, region, name, image_id):
        self.history[region].setdefault(name, []).append(image_id)

    def value(self, region, name):
        return self.history[region][name][-1]

    def _call(self, operation, region, *detail):
        self.calls.append((operation, region) + detail)
        if (operation, region) in self.fail:
            raise self.fail[(operation, region)]

    def describe_images(self, client, **params):
        self._call("describe_images", client)
        images = list(self.images[client].values())
        wanted = {f["Name"]: f["Values"] for f in params["Filters"]}
        if "image-id" in wanted:
            return [found for found in images if found["ImageId"] in wanted["image-id"]]
        return [found for found in images
                if all({t["Key"]: t["Value"] for t in found["Tags"]}.get(k[4:]) in v for k, v in wanted.items())]

    def get_parameters_by_path(self, client, path):
        self._call("get_parameters_by_path", client)
        return [{"Name": name, "Value": values[-1], "DataType": "aws:ec2:image", "Version": len(values)}
                for name, values in self.history[client].items() if name.rsplit("/", 1)[0] == path]

    def get_parameter_history(self, client, name):
        self._call("get_parameter_history", client)
        return [{"Name": name, "Value": value, "Version": index + 1}
                for index, value in enumerate(self.history[client].get(name, []))]

    def put_parameter(self, client, **params):
        self._call("put_parameter", client, params["Name"], params["Value"])
        assert params["DataType"] == "aws:ec2:image" and params["Overwrite"] is True
        self.promote(client, params["Name"], params["Value"])
        return {"Version": len(self.history[client][params["Name"]])}

    def add_parameter_tags(self, client, name, tags):
        self._call("add_parameter_tags", client, name)
        self.parameter_tags.setdefault((client, name), {}).update(tags)
        return True

    def create_tags(self, client, resource_ids, tags):
        self._call("create_tags", client, tuple(resource_ids))
        for image_id in resource_ids:
            self.images[client][image_id]["Tags"] += tags
        return True

    def enable_image_deprecation(self, client, image_id, deprecate_at):
        self._call("enable_image_deprecation", client, image_id)
        self.images[client][image_id]["DeprecationTime"] = _time.iso(deprecate_at)
        return True

    def mutating(self):
        return [call for call in self.calls if call[0] in MUTATING]


@pytest.fixture
def fake(monkeypatch):
    """v1 then v2 promoted to stable in both regions; latest on v2 in us-east-1 only; db-base on its own."""
    aws = FakeAws(monkeypatch)
    for region in REGIONS:
        for version, ids in (("1", V1), ("2", V2), ("3", V3)):
            aws.add(region, image(ids[region], version))
        aws.promote(region, STABLE, V1[region])
        aws.promote(region, STABLE, V2[region])
    aws.promote("us-east-1", LATEST, V3["us-east-1"])
    aws.promote("us-east-1", LATEST, V2["us-east-1"])
    aws.promote("us-east-1", OTHER, V2["us-east-1"])  # another family's channel is not looked at
    return aws


def run(req, check_mode=False):
    clients = {region: region for region in req.regions}
    return _channel.Revoke(req, clients, clients, check_mode=check_mode).run()


def test_revoke_moves_every_channel_back_tags_and_deprecates(fake):
    predicted = run(request(), check_mode=True)
    assert fake.mutating() == []
    result = run(request())
    assert result["changed"] is True
    assert fake.value("us-east-1", STABLE) == V1["us-east-1"] and fake.value("eu-west-1", STABLE) == V1["eu-west-1"]
    assert fake.value("us-east-1", LATEST) == V3["us-east-1"]
    assert fake.value("us-east-1", OTHER) == V2["us-east-1"]
    us = result["regions"]["us-east-1"]
    assert us["channels"] == {
        LATEST: {"before": V2["us-east-1"], "after": V3["us-east-1"], "changed": True, "version": 3},
        STABLE: {"before": V2["us-east-1"], "after": V1["us-east-1"], "changed": True, "version": 3},
    }
    assert us["images"] == [{"image_id": V2["us-east-1"], "tag": True, "deprecate": True,
                             "deprecation_time": "2026-12-06T10:02:00Z"}]
    for region in REGIONS:
        revoked = fake.images[region][V2[region]]
        assert {"Key": "bakery:revoked", "Value": "true"} in revoked["Tags"]
        assert revoked["DeprecationTime"] == "2026-12-06T10:02:00Z"
        assert fake.parameter_tags[(region, STABLE)] == {"bakery:previous-image": V2[region]}
    # check mode predicted exactly this (the parameter versions only exist after a real write)
    for region in REGIONS:
        for channel in result["regions"][region]["channels"].values():
            channel.pop("version")
    assert predicted == result
    assert result["diff"] == {
        "before": {"us-east-1": {LATEST: V2["us-east-1"], STABLE: V2["us-east-1"]}, "eu-west-1": {STABLE: V2["eu-west-1"]}},
        "after": {"us-east-1": {LATEST: V3["us-east-1"], STABLE: V1["us-east-1"]}, "eu-west-1": {STABLE: V1["eu-west-1"]}},
    }


def test_a_rerun_changes_nothing(fake):
    run(request())
    fake.calls.clear()
    again = run(request())
    assert again["changed"] is False and fake.mutating() == []
    for region in REGIONS:
        assert again["regions"][region] == {
            "images": [{"image_id": V2[region], "tag": False, "deprecate": False,
                        "deprecation_time": "2026-12-06T10:02:00Z"}],
            "channels": {}, "changed": False}
    assert again["diff"] == {"before": {region: {} for region in REGIONS}, "after": {region: {} for region in REGIONS}}


def test_an_image_deprecated_later_by_its_lifecycle_is_deprecated_now(fake):
    fake.images["eu-west-1"][V2["eu-west-1"]]["DeprecationTime"] = "2027-12-01T00:00:00.000Z"
    fake.images["us-east-1"][V2["us-east-1"]]["DeprecationTime"] = "2026-12-01T00:00:00.000Z"
    fake.images["us-east-1"][V2["us-east-1"]]["Tags"].append({"Key": "bakery:revoked", "Value": "true"})
    result = run(request())
    assert result["regions"]["eu-west-1"]["images"][0]["deprecate"] is True
    assert result["regions"]["us-east-1"]["images"][0] == {
        "image_id": V2["us-east-1"], "tag": False, "deprecate": False, "deprecation_time": "2026-12-01T00:00:00Z"}
    assert ("enable_image_deprecation", "us-east-1", V2["us-east-1"]) not in fake.calls
    assert ("create_tags", "us-east-1", (V2["us-east-1"],)) not in fake.calls


def test_a_channel_with_nothing_good_left_refuses_before_any_change(fake):
    # eu-west-1's stable went 1 -> 2 -> 1 -> 2 and version 1 was revoked there in the meantime
    fake.promote("eu-west-1", STABLE, V1["eu-west-1"])
    fake.promote("eu-west-1", STABLE, V2["eu-west-1"])
    fake.images["eu-west-1"][V1["eu-west-1"]]["Tags"].append({"Key": "bakery:revoked", "Value": "true"})
    for check_mode in (True, False):
        fake.calls.clear()
        with pytest.raises(_channel.ChannelError) as info:
            run(request(), check_mode=check_mode)
        assert fake.mutating() == []
        assert info.value.msg == (
            f"eu-west-1: the channel {STABLE} names {V2['eu-west-1']} and its history holds no earlier good image to "
            f"move back to ({V1['eu-west-1']} (tagged bakery:revoked=true), {V2['eu-west-1']} (an image of the version "
            "revoked)); revoking would leave it empty or on the "
            "revoked image; nothing was changed"
        )
        assert info.value.result["changed"] is False and list(info.value.result["regions"]) == ["us-east-1"]
    assert fake.value("us-east-1", STABLE) == V2["us-east-1"]
    assert all({"Key": "bakery:revoked", "Value": "true"} not in fake.images[r][V2[r]]["Tags"] for r in REGIONS)


def test_a_channel_created_on_the_revoked_version_is_refused(fake):
    fake.promote("eu-west-1", "/bakery/web-base/canary", V2["eu-west-1"])
    with pytest.raises(_channel.ChannelError) as info:
        run(request())
    assert f"eu-west-1: the channel /bakery/web-base/canary names {V2['eu-west-1']}" in info.value.msg
    assert "(no earlier value)" in info.value.msg
    assert fake.mutating() == []


def test_revoking_the_last_good_version_after_a_revoke_is_refused(fake):
    run(request())
    fake.calls.clear()
    with pytest.raises(_channel.ChannelError) as info:
        run(request(version="1"))
    assert f"the channel {STABLE} names {V1['us-east-1']}" in info.value.msg
    assert f"{V2['us-east-1']} (tagged bakery:revoked=true)" in info.value.msg
    assert fake.mutating() == []


def test_a_version_missing_in_a_region_changes_nothing(fake):
    del fake.images["eu-west-1"][V2["eu-west-1"]]
    with pytest.raises(_channel.ChannelError) as info:
        run(request())
    assert info.value.msg == ("version: no image of this account in eu-west-1 carries bakery:family=web-base and "
                              "bakery:version=2; nothing was changed")
    assert fake.mutating() == []


def test_a_failed_read_changes_nothing_and_a_failed_write_says_rerun(fake):
    fake.fail[("get_parameter_history", "eu-west-1")] = _aws.BakeryAWSError(
        message="Failed to get SSM parameter history", exception=RuntimeError("Throttled"))
    with pytest.raises(_channel.ChannelError) as info:
        run(request())
    assert info.value.msg == "eu-west-1: Failed to get SSM parameter history: Throttled; nothing was changed"
    assert fake.mutating() == []
    fake.fail = {("enable_image_deprecation", "eu-west-1"): _aws.BakeryAWSError(
        message="Failed to enable image deprecation", exception=RuntimeError("AccessDenied"))}
    with pytest.raises(_channel.ChannelError) as info:
        run(request())
    assert info.value.msg == ("eu-west-1: Failed to enable image deprecation: AccessDenied; rerun to finish "
                              "(what is done is not done again)")
    assert info.value.result["changed"] is True
    fake.fail = {}
    fake.calls.clear()
    again = run(request())
    assert [call[:2] for call in fake.mutating()] == [("enable_image_deprecation", "eu-west-1")]
    assert again["regions"]["us-east-1"]["changed"] is False
