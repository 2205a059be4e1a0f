# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_launch_template: the option checks, the marker, the removal plan, and runs over fake regions
(module_utils/_aws patched): made once, check mode makes no mutating call, absent restores the default."""
from __future__ import annotations

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _launch_template as lt

KNOWN = ["eu-west-1", "us-east-1"]
A, B, OLD = "ami-0000000000000000a", "ami-0000000000000000b", "ami-00000000000000000"
RUN = "20301231T000000-abcd1234"
MUTATING = ("create_launch_template_version", "modify_launch_template", "delete_launch_template_versions")


def request(**params):
    base = {"launch_template": "web", "state": "present", "source_version": "$Latest", "set_default": False}
    base.update(params)
    return lt.build_request(base, "us-east-1", KNOWN)


# ---------------------------------------------------------------------------------------------
# Options


@pytest.mark.parametrize("value", ["web", "lt-0123456789abcdef0", "lt-01234567", "a/b_c.(d)-e", "x" * 128])
def test_templates_taken(value):
    assert lt.check_template("launch_template", value) is None


@pytest.mark.parametrize("value", ["", "ab", "x" * 129, "web app", "web\n", "wéb", None, 7, "web*"])
def test_templates_refused(value):
    assert lt.check_template("launch_template", value).startswith("launch_template: ")


@pytest.mark.parametrize("params,fragment", [
    ({}, "image_id or images: one of them is required with state=present"),
    ({"launch_template": "w b", "image_id": A}, "launch_template: 'w b' is neither a launch template ID"),
    ({"image_id": "ami-1"}, "image_id: 'ami-1' is not a valid image ID"),
    ({"image_id": A, "images": {"us-east-1": A}}, "image_id: cannot be combined with images"),
    ({"images": {"us-east-1": A}, "regions": ["us-east-1"]}, "regions: cannot be combined with images"),
    ({"images": {"xx-east-9": A}}, "images: unknown region 'xx-east-9'"),
    ({"images": {}}, "images: must name at least one region"),
    ({"images": "ami"}, "images: must be a dictionary of region to image ID"),
    ({"image_id": A, "source_version": "latest"}, "source_version: 'latest' is not $Latest, $Default or a version number"),
    ({"image_id": A, "source_version": "0"}, "source_version: '0' is not"),
    ({"image_id": A, "run_id": "x*"}, "run_id: must be 6-64 characters"),
    ({"image_id": A, "description": "x" * 101}, "description: must be at most 100 characters"),
    ({"image_id": A, "description": "a\nb"}, "description: must be at most 100 characters without control characters"),
    ({"state": "absent"}, "state: absent removes the versions made for an image or by a run; give image_id, images or run_id"),
    ({"image_id": A, "regions": ["us-east-1", "us-east-1"]}, "regions: a region is named more than once"),
])
def test_bad_options_name_the_option_and_the_rule(params, fragment):
    with pytest.raises(lt.LaunchTemplateError) as caught:
        request(**params)
    assert fragment in caught.value.msg


def test_requests():
    got = request(image_id=A, regions=["us-east-1", "eu-west-1"], set_default=True, run_id=RUN)
    assert got.images == {"us-east-1": A, "eu-west-1": A} and got.regions == ["us-east-1", "eu-west-1"]
    assert got.set_default and not got.by_id and got.run_id == RUN
    assert request(launch_template="lt-0123456789abcdef0", images=[{"region": "eu-west-1", "image_id": B}]).by_id
    assert request(state="absent", run_id=RUN).images == {}


def test_marker_round_trip():
    text = lt.version_description("web 2030", A, RUN, 4)
    assert text == f"web 2030 [bakery.ami image={A} run={RUN} default-was=4]"
    assert len(lt.version_description("x" * lt.MAX_DESCRIPTION, "ami-" + "f" * 17, "r" * 64, 10 ** 17)) <= 255
    assert lt.parse_marker(text) == {"image": A, "run": RUN, "default": 4}
    assert lt.parse_marker(lt.version_description("", A, None, 1)) == {"image": A, "run": None, "default": 1}
    for other in (None, "", "hand made", f"[bakery.ami image={A} default-was=4] later", f"bakery.ami image={A}"):
        assert lt.parse_marker(other) is None


# ---------------------------------------------------------------------------------------------
# The removal plan


def version(number, image, mark=None):
    return {"VersionNumber": number, "LaunchTemplateData": {"ImageId": image},
            "VersionDescription": lt.version_description("", image, mark[0], mark[1]) if mark else "hand made"}


def test_removal_moves_the_default_back_along_the_markers():
    versions = [version(1, OLD), version(2, A, (RUN, 1)), version(3, OLD), version(4, B, (RUN, 2))]
    plan = lt.removal_plan(versions, 4, lambda mark: mark["run"] == RUN)
    # 4 was made when 2 was the default, and 2 goes too: back to 1
    assert plan == {"delete": [2, 4], "default_before": 4, "default_after": 1}
    # the default is not among them: it stays
    assert lt.removal_plan(versions, 3, lambda mark: mark["run"] == RUN)["default_after"] == 3
    # a marker naming a version gone: the newest left
    gone = [version(3, OLD), version(5, A, (RUN, 2))]
    assert lt.removal_plan(gone, 5, lambda mark: True) == {"delete": [5], "default_before": 5, "default_after": 3}


def test_removal_never_takes_other_versions_nor_every_version():
    versions = [version(1, A), version(2, A, ("other-run-1", 1))]
    assert lt.removal_plan(versions, 1, lambda mark: mark["run"] == RUN)["delete"] == []
    with pytest.raises(lt.LaunchTemplateError, match="every version of the template would be removed"):
        lt.removal_plan([version(1, A, (RUN, 1))], 1, lambda mark: True)


# ---------------------------------------------------------------------------------------------
# Runs over fake regions


class FakeEc2:
    """One region's launch templates, as the _aws wrappers see them."""

    def __init__(self, templates=None):
        self.templates = templates if templates is not None else {
            "web": {"id": "lt-0123456789abcdef0", "default": 1, "versions": {1: version(1, OLD)}}}
        self.calls: list = []

    def template(self, **params):
        for name, item in self.templates.items():
            if name in params.get("LaunchTemplateNames", []) or item["id"] in params.get("LaunchTemplateIds", []):
                return name, item
        return None, None


@pytest.fixture
def fake(monkeypatch):
    regions = {"us-east-1": FakeEc2(), "eu-west-1": FakeEc2()}

    def by_id(client, template_id):
        return next(item for item in client.templates.values() if item["id"] == template_id)

    def find_launch_templates(client, **params):
        client.calls.append(("find_launch_templates", params))
        name, item = client.template(**params)
        if item is None:
            return []
        return [{"LaunchTemplateId": item["id"], "LaunchTemplateName": name, "DefaultVersionNumber": item["default"]}]

    def describe_launch_template_versions(client, LaunchTemplateId, Versions=None):
        client.calls.append(("describe_launch_template_versions", Versions))
        item = by_id(client, LaunchTemplateId)
        if Versions is None:
            found = [dict(v) for v in item["versions"].values()]
        else:
            numbers = [max(item["versions"]) if v == "$Latest" else item["default"] if v == "$Default" else int(v)
                       for v in Versions]
            found = [dict(item["versions"][n]) for n in numbers if n in item["versions"]]
        for entry in found:
            entry["DefaultVersion"] = entry["VersionNumber"] == item["default"]
        return found

    def create_launch_template_version(client, LaunchTemplateId, SourceVersion, VersionDescription, LaunchTemplateData,
                                       ClientToken):
        assert ClientToken.startswith("bakery-") and len(ClientToken) <= 64
        client.calls.append(("create_launch_template_version", SourceVersion, VersionDescription))
        item = by_id(client, LaunchTemplateId)
        number = max(item["versions"]) + 1
        item["versions"][number] = {"VersionNumber": number, "LaunchTemplateData": dict(LaunchTemplateData),
                                    "VersionDescription": VersionDescription}
        return {"VersionNumber": number}

    def modify_launch_template(client, LaunchTemplateId, DefaultVersion):
        client.calls.append(("modify_launch_template", DefaultVersion))
        by_id(client, LaunchTemplateId)["default"] = int(DefaultVersion)
        return {}

    def delete_launch_template_versions(client, LaunchTemplateId, Versions):
        client.calls.append(("delete_launch_template_versions", Versions))
        item = by_id(client, LaunchTemplateId)
        done = []
        for number in map(int, Versions):
            assert number != item["default"], "the default version is never deleted"
            item["versions"].pop(number)
            done.append({"VersionNumber": number})
        return {"SuccessfullyDeletedLaunchTemplateVersions": done}

    for function in (find_launch_templates, describe_launch_template_versions, create_launch_template_version,
                     modify_launch_template, delete_launch_template_versions):
        monkeypatch.setattr(_aws, function.__name__, function)
    return regions


def mutations(regions):
    return [call for client in regions.values() for call in client.calls if call[0] in MUTATING]


def run(fake, check_mode=False, **params):
    req = request(**params)
    return lt.LaunchTemplates(req, {region: fake[region] for region in req.regions}, check_mode=check_mode).run()


def test_a_version_is_made_once_per_region_and_check_mode_predicts_it(fake):
    images = {"us-east-1": A, "eu-west-1": B}
    predicted = run(fake, check_mode=True, images=images, set_default=True, run_id=RUN)
    assert predicted["changed"] and mutations(fake) == []
    assert {region: plan["action"] for region, plan in predicted["regions"].items()} == {r: "create" for r in images}
    done = run(fake, images=images, set_default=True, run_id=RUN)
    assert done["changed"]
    for region, image in images.items():
        item = fake[region].templates["web"]
        assert item["default"] == 2 and item["versions"][2]["LaunchTemplateData"] == {"ImageId": image}
        assert item["versions"][2]["VersionDescription"] == f"[bakery.ami image={image} run={RUN} default-was=1]"
        assert [c for c in fake[region].calls if c[0] in MUTATING] == [
            ("create_launch_template_version", "1", f"[bakery.ami image={image} run={RUN} default-was=1]"),
            ("modify_launch_template", "2")]
        assert done["diff"]["after"][region] == {"latest_version": 2, "default_version": 2, "image_id": image}
    before = len(mutations(fake))
    again = run(fake, images=images, set_default=True, run_id=RUN)
    assert again["changed"] is False and len(mutations(fake)) == before


def test_without_set_default_the_latest_version_is_watched(fake):
    assert run(fake, image_id=A, regions=["us-east-1"])["regions"]["us-east-1"]["version"] == 2
    assert fake["us-east-1"].templates["web"]["default"] == 1
    assert run(fake, image_id=A, regions=["us-east-1"])["changed"] is False
    moved = run(fake, image_id=A, regions=["us-east-1"], set_default=True)
    assert moved["regions"]["us-east-1"]["action"] == "set_default"
    assert [c for c in fake["us-east-1"].calls if c[0] in MUTATING][-1] == ("modify_launch_template", "2")


def test_a_missing_template_fails_before_any_change(fake):
    del fake["eu-west-1"].templates["web"]
    with pytest.raises(lt.LaunchTemplateError) as caught:
        run(fake, images={"us-east-1": A, "eu-west-1": B})
    assert "launch_template: no launch template with the name 'web' in eu-west-1" in caught.value.msg
    assert caught.value.msg.endswith("nothing was changed")
    assert mutations(fake) == []


def test_a_missing_source_version_fails_naming_source_version(fake):
    with pytest.raises(lt.LaunchTemplateError) as caught:
        run(fake, image_id=A, source_version="7")
    assert "source_version: version 7 of launch template web does not exist in us-east-1" in caught.value.msg
    assert mutations(fake) == []


def test_absent_removes_the_runs_versions_and_restores_the_default(fake):
    run(fake, image_id=A, regions=["us-east-1"], set_default=True, run_id=RUN)
    run(fake, image_id=B, regions=["us-east-1"], set_default=True, run_id="other-run-1")
    predicted = run(fake, check_mode=True, state="absent", run_id=RUN, regions=["us-east-1"])
    # the run's version 2 is not the default (3 is): only 2 goes
    assert predicted["regions"]["us-east-1"]["delete"] == [2] and mutations(fake)[-1][0] != "delete_launch_template_versions"
    removed = run(fake, state="absent", image_id=B, regions=["us-east-1"])
    assert removed["regions"]["us-east-1"]["default_after"] == 2
    assert fake["us-east-1"].templates["web"]["default"] == 2
    gone = run(fake, state="absent", run_id=RUN, regions=["us-east-1"])
    assert (gone["regions"]["us-east-1"]["deleted"], gone["regions"]["us-east-1"]["default_after"]) == ([2], 1)
    assert sorted(fake["us-east-1"].templates["web"]["versions"]) == [1]
    assert run(fake, state="absent", run_id=RUN, regions=["us-east-1"])["changed"] is False


def test_a_version_already_gone_counts_as_removed(fake, monkeypatch):
    run(fake, image_id=A, regions=["us-east-1"], run_id=RUN)

    def lost(client, LaunchTemplateId, Versions):
        return {"UnsuccessfullyDeletedLaunchTemplateVersions": [
            {"VersionNumber": int(Versions[0]), "ResponseError": {"Code": "launchTemplateVersionDoesNotExist"}}]}

    monkeypatch.setattr(_aws, "delete_launch_template_versions", lost)
    assert run(fake, state="absent", run_id=RUN, regions=["us-east-1"])["regions"]["us-east-1"]["deleted"] == [2]


def test_cleanup_helper_skips_a_missing_template(fake):
    assert lt.remove_run_versions(fake["us-east-1"], "api", RUN) is None
    run(fake, image_id=A, regions=["us-east-1"], set_default=True, run_id=RUN)
    checked = lt.remove_run_versions(fake["us-east-1"], "web", RUN, check_mode=True)
    assert checked["deleted"] == [2] and fake["us-east-1"].templates["web"]["default"] == 2
    done = lt.remove_run_versions(fake["us-east-1"], "web", RUN)
    assert (done["deleted"], done["default_after"]) == ([2], 1)


def test_a_retried_create_carries_the_same_client_token(monkeypatch):
    """A throttled (or lost) CreateLaunchTemplateVersion is retried by _aws with the same ClientToken,
    so EC2 answers the version the first attempt made instead of making a second one."""
    import botocore.exceptions

    monkeypatch.setattr("time.sleep", lambda seconds: None)
    tokens = []

    class Client:
        def create_launch_template_version(self, **params):
            tokens.append(params["ClientToken"])
            if len(tokens) == 1:
                raise botocore.exceptions.ClientError(
                    {"Error": {"Code": "RequestLimitExceeded", "Message": "lost"}}, "CreateLaunchTemplateVersion")
            return {"LaunchTemplateVersion": {"VersionNumber": 2}}

    req = request(image_id=A, regions=["us-east-1"])
    runner = lt.LaunchTemplates(req, {"us-east-1": Client()})
    plan = {"launch_template_id": "lt-0123456789abcdef0", "action": "create", "version": None, "source_version": 1,
            "version_description": "d", "image_id": A}
    assert runner.change_region("us-east-1", plan) == {"version": 2, "created": True}
    assert len(tokens) == 2 and tokens[0] == tokens[1] and tokens[0].startswith("bakery-")
