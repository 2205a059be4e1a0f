# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_channel: the name rules, the option checks, and a channel run over fake regions (module_utils patched)."""
from __future__ import annotations

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _channel

KNOWN = ["ap-southeast-2", "eu-west-1", "us-east-1", "us-west-2"]
A1, A2, A3, B1 = "ami-0000000000000000a", "ami-0000000000000000b", "ami-0000000000000000c", "ami-0000000000000001a"


def request(**params):
    base = {"prefix": "bakery", "family": "web-base", "channel": "stable", "state": "present", "allow_empty": False}
    base.update(params)
    return _channel.build_request(base, "us-east-1", KNOWN)


# ---------------------------------------------------------------------------------------------
# Names and options


@pytest.mark.parametrize("value", ["latest", "stable", "a", "x" * 64, "canary-2", "eu_prod"])
def test_channel_names_taken(value):
    assert _channel.check_channel("channel", value) is None


@pytest.mark.parametrize("value", ["", "Stable", "x" * 65, "a/b", "..", "/stable", "stable\n", "stäble", 7, None, "a b"])
def test_channel_names_refused(value):
    assert _channel.check_channel("channel", value).startswith("channel: ")


@pytest.mark.parametrize("value", ["bakery", "teams/payments/images", "a.b", "x_y-z"])
def test_prefixes_taken(value):
    assert _channel.check_prefix("prefix", value) is None


@pytest.mark.parametrize("value,fragment", [
    ("/bakery", "without a leading or trailing '/'"),
    ("bakery/", "without a leading or trailing '/'"),
    ("a/../b", "not '.' or '..'"),
    ("..", "not '.' or '..'"),
    ("a//b", "one or more components"),
    ("aws/x", "SSM reserves"),
    ("SSM", "SSM reserves"),
    ("/".join(["p"] * 14), "SSM allows 15"),
    ("", "non-empty string"),
    ("a b", "one or more components"),
])
def test_prefixes_refused(value, fragment):
    assert fragment in _channel.check_prefix("prefix", value)


def test_parameter_name():
    assert _channel.parameter_name("bakery", "web-base", "stable") == "/bakery/web-base/stable"
    assert request(version="1").name == "/bakery/web-base/stable"


@pytest.mark.parametrize("value,name", [
    ("web-base/stable", "/bakery/web-base/stable"),
    ({"family": "web-base", "channel": "latest"}, "/bakery/web-base/latest"),
    ({"prefix": "teams/x", "family": "web-base", "channel": "latest"}, "/teams/x/web-base/latest"),
])
def test_channel_reference(value, name):
    assert _channel.channel_reference("channel", value) == (name, None)


@pytest.mark.parametrize("value,fragment", [
    ("stable", "is not 'family/channel'"),
    ("web-base/stable/x", "is not 'family/channel'"),
    ("/web-base/stable", "is not 'family/channel'"),
    ("../stable", "channel.family: '..' is not a family name"),
    ("web-base/..", "channel.channel: '..' is not a channel name"),
    ({"family": "web-base", "channel": "stable", "path": "x"}, "unknown keys path"),
    ({"family": "web-base", "channel": "stable", "prefix": "/abs"}, "channel.prefix: '/abs'"),
    ({"family": "web-base"}, "channel.channel: None"),
    (["web-base", "stable"], "must be 'family/channel' or a dictionary"),
])
def test_channel_reference_refused(value, fragment):
    name, error = _channel.channel_reference("channel", value)
    assert name is None and fragment in error


def test_request_from_images_takes_the_regions_in_order():
    got = request(images={"us-west-2": A1, "eu-west-1": A2})
    assert got.regions == ["us-west-2", "eu-west-1"] and got.images == {"us-west-2": A1, "eu-west-1": A2}
    got = request(images=[{"region": "eu-west-1", "image_id": A2}])
    assert got.regions == ["eu-west-1"]


def test_request_from_version_defaults_to_the_module_region():
    got = request(version="2026.12.01")
    assert got.regions == ["us-east-1"] and got.version == "2026.12.01" and got.images == {}


@pytest.mark.parametrize("params,fragment", [
    ({"channel": "Stable", "version": "1"}, "channel: 'Stable' is not a channel name"),
    ({"channel": "../stable", "version": "1"}, "channel: '../stable' is not a channel name"),
    ({"family": "/web-base", "version": "1"}, "family: '/web-base' is not a family name"),
    ({"family": "..", "version": "1"}, "family: '..' is not a family name"),
    ({"prefix": "../x", "version": "1"}, "prefix: '../x' is not a parameter path prefix"),
    ({}, "images or version: one of them is required with state=present"),
    ({"images": {"us-east-1": A1}, "version": "1"}, "images: cannot be combined with version"),
    ({"images": {"us-east-1": A1}, "regions": ["us-east-1"]}, "regions: cannot be combined with images"),
    ({"images": {"xx-north-9": A1}}, "images: unknown region 'xx-north-9'"),
    ({"images": {"mars": A1}}, "images: 'mars' is not an AWS region name"),
    ({"images": {"us-east-1": "ami-123"}}, "images[us-east-1]: 'ami-123' is not a valid image ID"),
    ({"images": {"us-east-1": "snap-0000000000000000a"}}, "is not a valid image ID"),
    ({"images": [{"region": "us-east-1", "image_id": A1}, {"region": "us-east-1", "image_id": A2}]},
     "images: the region 'us-east-1' is named more than once"),
    ({"images": [{"region": "us-east-1"}]}, "images[0]: must be a dictionary with exactly the keys region and image_id"),
    ({"images": {}}, "images: must name at least one region"),
    ({"images": "ami-0000000000000000a"}, "images: must be a dictionary of region to image ID"),
    ({"version": "1", "regions": ["us-east-1", "us-east-1"]}, "regions: a region is named more than once"),
    ({"version": "1", "regions": ["nowhere"]}, "regions: 'nowhere' is not an AWS region name"),
    ({"version": "1", "regions": []}, "regions: must name at least one region"),
    ({"version": "2026.*"}, "version: '2026.*' holds *; versions are matched literally"),
    ({"version": ""}, "version: must not be empty"),
    ({"version": "1\n"}, "with the control character"),
    ({"state": "absent"}, "state: absent would leave the channel empty"),
    ({"state": "absent", "allow_empty": True, "version": "1"}, "state: absent removes the channel; give neither"),
])
def test_bad_options_name_the_option_and_the_rule(params, fragment):
    with pytest.raises(_channel.ChannelError) as info:
        request(**params)
    assert fragment in info.value.msg


def test_every_problem_is_listed_at_once():
    with pytest.raises(_channel.ChannelError) as info:
        request(channel="A", family="/x", images={"nowhere": "ami-1"})
    for fragment in ("channel: 'A'", "family: '/x'", "images: 'nowhere'", "images[nowhere]: 'ami-1'"):
        assert fragment in info.value.msg


def test_absent_with_allow_empty_is_taken():
    got = request(state="absent", allow_empty=True, regions=["eu-west-1", "us-east-1"])
    assert got.state == "absent" and got.regions == ["eu-west-1", "us-east-1"]


# ---------------------------------------------------------------------------------------------
# A run over fake regions


class FakeAws:
    """SSM parameters and EC2 images per region, behind the _aws functions the core calls."""

    def __init__(self, monkeypatch, images=None, parameters=None):
        self.images = images or {}          # region -> [image dict]
        self.parameters = parameters or {}  # region -> {name: {"Value", "DataType"}}
        self.calls: list = []
        self.tags: dict = {}
        self.fail: dict = {}                # (operation, region) -> exception
        for name in ("get_parameter", "describe_images", "put_parameter", "add_parameter_tags", "delete_parameter"):
            monkeypatch.setattr(_aws, name, getattr(self, name))

    def _maybe_fail(self, operation, region):
        self.calls.append((operation, region))
        if (operation, region) in self.fail:
            raise self.fail[(operation, region)]

    def get_parameter(self, client, name):
        self._maybe_fail("get_parameter", client)
        found = self.parameters.get(client, {}).get(name)
        return dict(found, Name=name) if found else None

    def describe_images(self, client, **params):
        self._maybe_fail("describe_images", client)
        images = self.images.get(client, [])
        if "ImageIds" in params:
            return [image for image in images if image["ImageId"] in params["ImageIds"]]
        wanted = {f["Name"][4:]: f["Values"][0] for f in params["Filters"]}
        return [image for image in images
                if all({t["Key"]: t["Value"] for t in image.get("Tags", [])}.get(k) == v for k, v in wanted.items())]

    def put_parameter(self, client, **params):
        self._maybe_fail("put_parameter", client)
        store = self.parameters.setdefault(client, {})
        version = store.get(params["Name"], {}).get("Version", 0) + 1
        store[params["Name"]] = {"Value": params["Value"], "DataType": params["DataType"], "Version": version}
        self.calls[-1] = ("put_parameter", client, params)
        return {"Version": version}

    def add_parameter_tags(self, client, name, tags):
        self._maybe_fail("add_parameter_tags", client)
        self.tags.setdefault((client, name), {}).update(tags)
        return True

    def delete_parameter(self, client, name):
        self._maybe_fail("delete_parameter", client)
        return self.parameters.get(client, {}).pop(name, None) is not None

    def mutating(self):
        return [call for call in self.calls if call[0] in ("put_parameter", "add_parameter_tags", "delete_parameter")]


def image(image_id, family="web-base", version="1", state="available"):
    return {"ImageId": image_id, "State": state,
            "Tags": [{"Key": "bakery:family", "Value": family}, {"Key": "bakery:version", "Value": version}]}


REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
NAME = "/bakery/web-base/stable"


def run(req, check_mode=False):
    clients = {region: region for region in req.regions}
    return _channel.Channel(req, clients, clients, check_mode=check_mode).run()


@pytest.fixture
def fake(monkeypatch):
    return FakeAws(monkeypatch, images={
        "us-east-1": [image(A1, version="1"), image(B1, version="2")],
        "eu-west-1": [image(A2, version="1")],
        "ap-southeast-2": [image(A3, version="1")],
    })


def test_promote_creates_then_rerun_is_unchanged(fake):
    req = request(version="1", regions=REGIONS)
    predicted = run(req, check_mode=True)
    assert fake.mutating() == []
    first = run(req)
    assert first["changed"] is True and predicted == first | {"channels": predicted["channels"]}
    for region, image_id in zip(REGIONS, (A1, A2, A3), strict=True):
        assert first["channels"][region] == {"name": NAME, "before": None, "after": image_id, "changed": True, "version": 1}
        assert predicted["channels"][region] == {"name": NAME, "before": None, "after": image_id, "changed": True}
    puts = [call for call in fake.mutating() if call[0] == "put_parameter"]
    assert len(puts) == 3
    assert puts[0][2] == {"Name": NAME, "Value": A1, "Type": "String", "DataType": "aws:ec2:image", "Overwrite": True,
                          "Description": "bakery.ami image channel web-base/stable"}
    assert fake.tags == {}  # nothing was replaced
    fake.calls.clear()
    again = run(req)
    assert again["changed"] is False and fake.mutating() == []
    assert all(not entry["changed"] and entry["before"] == entry["after"] for entry in again["channels"].values())


def test_a_change_overwrites_and_tags_the_previous_image(fake):
    fake.parameters = {"us-east-1": {NAME: {"Value": A1, "DataType": "aws:ec2:image", "Version": 1}},
                       "eu-west-1": {NAME: {"Value": A2, "DataType": "aws:ec2:image", "Version": 3}}}
    req = request(images={"us-east-1": B1, "eu-west-1": A2})
    result = run(req, check_mode=True)
    assert fake.mutating() == []
    assert result["channels"]["us-east-1"] == {"name": NAME, "before": A1, "after": B1, "changed": True}
    assert result["channels"]["eu-west-1"] == {"name": NAME, "before": A2, "after": A2, "changed": False}
    assert result["diff"] == {"before": {"us-east-1": A1, "eu-west-1": A2}, "after": {"us-east-1": B1, "eu-west-1": A2}}
    result = run(req)
    assert result["changed"] is True and result["channels"]["us-east-1"]["version"] == 2
    assert "version" not in result["channels"]["eu-west-1"]
    assert fake.tags == {("us-east-1", NAME): {"bakery:previous-image": A1}}
    assert [call[:2] for call in fake.mutating()] == [("put_parameter", "us-east-1"), ("add_parameter_tags", "us-east-1")]


def test_a_text_parameter_holding_the_image_is_rewritten_as_an_image_parameter(fake):
    fake.parameters = {"us-east-1": {NAME: {"Value": A1, "DataType": "text", "Version": 1}}}
    result = run(request(images={"us-east-1": A1}))
    assert result["channels"]["us-east-1"]["changed"] is True
    assert fake.parameters["us-east-1"][NAME]["DataType"] == "aws:ec2:image"
    assert fake.tags == {}  # the value did not change


@pytest.mark.parametrize("images,fragment", [
    ({"us-east-1": "ami-000000000000000ff"}, "images: ami-000000000000000ff does not exist in us-east-1"),
    ({"us-east-1": A2}, f"images: {A2} does not exist in us-east-1"),
])
def test_an_image_missing_in_its_region_changes_nothing_anywhere(fake, images, fragment):
    images = dict(images, **{"eu-west-1": A2})
    with pytest.raises(_channel.ChannelError) as info:
        run(request(images=images))
    assert fragment in info.value.msg and info.value.msg.endswith("nothing was changed")
    assert fake.mutating() == []
    assert info.value.result["changed"] is False and list(info.value.result["channels"]) == ["eu-west-1"]


def test_an_image_of_another_family_or_not_available_is_refused(fake):
    fake.images["us-east-1"].append(image("ami-0000000000000000d", family="db-base"))
    fake.images["us-east-1"].append(image("ami-0000000000000000e", state="pending"))
    with pytest.raises(_channel.ChannelError) as info:
        run(request(images={"us-east-1": "ami-0000000000000000d"}))
    assert "is of family 'db-base' (tag bakery:family), not 'web-base'" in info.value.msg
    with pytest.raises(_channel.ChannelError) as info:
        run(request(images={"us-east-1": "ami-0000000000000000e"}))
    assert "ami-0000000000000000e in us-east-1 is pending, not available" in info.value.msg
    assert fake.mutating() == []


def test_a_deprecated_image_is_refused(fake):
    retired = dict(image("ami-0000000000000000d", version="3"), DeprecationTime="2020-01-01T00:00:00.000Z")
    later = dict(image("ami-0000000000000000e", version="4"), DeprecationTime="2999-01-01T00:00:00.000Z")
    fake.images["us-east-1"] += [retired, later]
    with pytest.raises(_channel.ChannelError) as info:
        run(request(version="3"))
    assert info.value.msg == ("version: ami-0000000000000000d in us-east-1 is deprecated since 2020-01-01T00:00:00.000Z "
                              "(retired or revoked); a channel names only images in service; nothing was changed")
    assert run(request(version="4"))["channels"]["us-east-1"]["after"] == "ami-0000000000000000e"


def test_version_missing_or_ambiguous(fake):
    with pytest.raises(_channel.ChannelError) as info:
        run(request(version="2", regions=["us-east-1", "eu-west-1"]))
    assert info.value.msg == ("version: no image of this account in eu-west-1 carries bakery:family=web-base and "
                              "bakery:version=2; nothing was changed")
    fake.images["eu-west-1"].append(image("ami-0000000000000000f", version="1"))
    with pytest.raises(_channel.ChannelError) as info:
        run(request(version="1", regions=["eu-west-1"]))
    assert "version: 2 images in eu-west-1 carry family web-base and version 1" in info.value.msg
    assert fake.mutating() == []


def test_absent_deletes_where_the_parameter_exists(fake):
    fake.parameters = {"us-east-1": {NAME: {"Value": A1, "DataType": "aws:ec2:image", "Version": 1}}}
    req = request(state="absent", allow_empty=True, regions=["us-east-1", "eu-west-1"])
    predicted = run(req, check_mode=True)
    assert fake.mutating() == []
    result = run(req)
    assert result == predicted
    assert result["channels"]["us-east-1"] == {"name": NAME, "before": A1, "after": None, "changed": True}
    assert result["channels"]["eu-west-1"] == {"name": NAME, "before": None, "after": None, "changed": False}
    assert fake.parameters["us-east-1"] == {}
    assert [call[:2] for call in fake.mutating()] == [("delete_parameter", "us-east-1")]
    assert all(call[0] != "describe_images" for call in fake.calls)
    assert run(req)["changed"] is False


def test_a_failed_write_reports_what_changed(fake):
    error = _aws.BakeryAWSError(message="Failed to put SSM parameter", exception=RuntimeError("AccessDenied"))
    fake.fail[("put_parameter", "eu-west-1")] = error
    with pytest.raises(_channel.ChannelError) as info:
        run(request(version="1", regions=["us-east-1", "eu-west-1"]))
    assert info.value.msg == "eu-west-1: Failed to put SSM parameter: AccessDenied; changed: us-east-1"
    channels = info.value.result["channels"]
    assert channels["us-east-1"]["changed"] is True and channels["us-east-1"]["version"] == 1
    assert channels["eu-west-1"]["changed"] is False and "AccessDenied" in channels["eu-west-1"]["error"]
    assert info.value.result["changed"] is True


def test_a_failed_read_changes_nothing(fake):
    error = _aws.BakeryAWSError(message="Failed to get SSM parameter", exception=RuntimeError("Throttled"))
    fake.fail[("get_parameter", "ap-southeast-2")] = error
    with pytest.raises(_channel.ChannelError) as info:
        run(request(version="1", regions=REGIONS))
    assert info.value.msg == "ap-southeast-2: Failed to get SSM parameter: Throttled; nothing was changed"
    assert fake.mutating() == []
