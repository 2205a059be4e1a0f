# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_find main(): wiring, check mode, failures before any AWS call, and the result shape.

_aws.regional_clients (where every client comes from) is patched to hand out in-memory EC2/SSM
stand-ins, so every call the module makes is recorded; AnsibleAWSModule.client fails if used.
"""
from __future__ import annotations

import json

import pytest


from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.bakery.ami.plugins.modules import ami_find

from tests.unit.plugins.modules.module_runner import run_module

from tests.unit.plugins.module_utils.find_fakes import FakeEC2, FakeSSM, image

BASE = {"region": "us-east-1", "access_key": "testing", "secret_key": "testing"}
IMAGES = [
    image("ami-00000001", "al2023-ami-2023.5.20240624.0-kernel-6.1-x86_64", created="2024-06-24T00:00:00.000Z"),
    image("ami-00000002", "al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64", created="2024-10-10T00:00:00.000Z"),
    image("ami-00000003", "al2023-ami-2023.6.20241010.0-kernel-6.1-arm64", arch="arm64",
          created="2024-10-10T00:00:00.000Z"),
]


@pytest.fixture
def aws(monkeypatch):
    """Per-region fakes; records which clients the module asked for."""
    state = {"ec2": {}, "ssm": {}, "made": [], "images": IMAGES, "parameters": {}}

    def client(module, service, region):
        state["made"].append((service, region))
        if service == "ec2":
            return state["ec2"].setdefault(region, FakeEC2(state["images"]))
        return state["ssm"].setdefault(region, FakeSSM(state["parameters"]))

    def module_client(self, service, **_extra):
        raise AssertionError(f"a {service} client made with AnsibleAWSModule.client, not _aws.regional_clients")

    monkeypatch.setattr(AnsibleAWSModule, "client", module_client)

    def regional_clients(module, service, regions):
        return {region: client(module, service, region=region) for region in regions}

    monkeypatch.setattr(ami_find._aws, "regional_clients", regional_clients)
    return state


def run_main(capsys, **args):
    return run_module(ami_find.main, capsys, dict(BASE, **args))


def calls(aws):
    return sum(len(c.calls) for c in aws["ec2"].values()) + sum(len(c.calls) for c in aws["ssm"].values())


def test_distro_finds_the_newest_x86_64(aws, capsys):
    code, result = run_main(capsys, distro="al2023")
    assert code == 0 and result["changed"] is False
    assert result["image"]["image_id"] == "ami-00000002"
    assert result["image"]["release"] == "2023.6.20241010" and result["image"]["distro"] == "al2023"
    assert [i["image_id"] for i in result["images"]] == ["ami-00000002", "ami-00000001"]
    assert result["query"]["filters"]["owner-id"] == ["137112412989"]
    assert list(result["images_by_region"]) == ["us-east-1"]
    assert "warnings" not in result


def test_check_mode_gives_the_same_answer(aws, capsys):
    _rc, normal = run_main(capsys, distro="al2023")
    _rc, checked = run_main(capsys, distro="al2023", _ansible_check_mode=True)
    assert checked["image"] == normal["image"] and checked["changed"] is False


@pytest.mark.parametrize("args, message", [
    ({"image_ids": ["ami-xyz"]}, "image_ids: 'ami-xyz' is not a valid image ID"),
    ({"owners": ["self"], "regions": ["us-east-1", "xx-nowhere-7"]}, "regions: unknown region 'xx-nowhere-7'"),
    ({"owners": []}, "owners: must not be an empty list"),
    ({"name": "al2023-*"}, "owners: required unless distro"),
    ({"owners": ["self"], "tags": {"n": 5}}, "tags: the value of tag 'n' must be a string, got int"),
    ({"distro": "gentoo"}, "distro: unknown distribution 'gentoo'; known ones are"),
    ({"ssm_parameter": "not a name"}, "ssm_parameter: 'not a name' is not an SSM parameter name"),
])
def test_bad_input_fails_before_any_client_is_made(aws, capsys, args, message):
    code, result = run_main(capsys, **args)
    assert code == 1 and result["failed"]
    assert message in result["msg"]
    assert aws["made"] == []


@pytest.mark.parametrize("parameters, message", [
    ({}, "ssm_parameter: parameter /aws/service/x does not exist in us-east-1"),
    ({"/aws/service/x": "ubuntu"}, "ssm_parameter: the value of /aws/service/x in us-east-1 is 'ubuntu',"
                                   " which is not an AMI ID"),
])
def test_bad_ssm_parameter_fails_before_describe(aws, capsys, parameters, message):
    aws["parameters"] = parameters
    code, result = run_main(capsys, ssm_parameter="resolve:ssm:/aws/service/x")
    assert code == 1 and result["msg"] == message
    assert all(not c.calls for c in aws["ec2"].values())


def test_ssm_parameter_is_described_and_checked(aws, capsys):
    aws["parameters"] = {"/aws/service/x": "ami-00000001"}
    code, result = run_main(capsys, ssm_parameter="resolve:ssm:/aws/service/x")
    assert code == 0 and result["image"]["image_id"] == "ami-00000001"
    assert result["query"]["filters"]["image-id"] == ["ami-00000001"]
    assert aws["ssm"]["us-east-1"].calls == ["/aws/service/x"]


def test_regions_get_one_client_each_and_answers(aws, capsys):
    code, result = run_main(capsys, distro="al2023", regions=["eu-west-1", "us-east-1"])
    assert code == 0
    assert sorted(aws["made"]) == [("ec2", "eu-west-1"), ("ec2", "us-east-1")]
    assert set(result["images_by_region"]) == {"eu-west-1", "us-east-1"}
    east, west = aws["ec2"]["us-east-1"].calls, aws["ec2"]["eu-west-1"].calls
    assert east == west and east  # the same query in each region


def test_no_match_fails_with_query_and_nearest_miss(aws, capsys):
    code, result = run_main(capsys, distro="al2023", name="al2023-ami-*-arm64", architecture="x86_64")
    assert code == 1
    assert result["msg"].startswith("no image found in us-east-1 for filters {'name': ['al2023-ami-*-arm64'],"
                                    " 'owner-id': ['137112412989']")
    assert "1 image matches the owners and the name but none is x86_64 (found: arm64)" in result["msg"]
    assert result["images"] == [] and "image" not in result


def test_not_required_is_not_a_failure(aws, capsys):
    code, result = run_main(capsys, distro="al2023", name="nothing-*", required=False)
    assert code == 0 and result["images"] == [] and "image" not in result
    # the newest-first windows and the plain pass; no diagnosis query (it drops the architecture filter)
    made = aws["ec2"]["us-east-1"].calls
    assert calls(aws) == len(made) == 3
    assert all("architecture" in {x["Name"] for x in call["Filters"]} for call in made)


def test_warning_for_a_non_default_match(aws, capsys):
    aws["images"] = [image("ami-0000000f", "legacy", virt="paravirtual")]
    code, result = run_main(capsys, owners=["137112412989"], virtualization_type="any")
    assert code == 0 and result["image"]["image_id"] == "ami-0000000f"
    # ansible-core carries module warnings as structured events until the controller renders them.
    assert "virtualization-type paravirtual: it matched only because virtualization_type is any" \
        in json.dumps(result["warnings"])
    assert "deprecations" not in result


def test_unique_fails_with_the_candidates(aws, capsys):
    code, result = run_main(capsys, owners=["137112412989"], architecture="any", most_recent=False, unique=True)
    assert code == 1 and result["msg"].startswith("unique: 3 images matched in us-east-1")
    assert len(result["images"]) == 3 and "image" not in result


def test_limit_caps_images(aws, capsys):
    code, result = run_main(capsys, owners=["137112412989"], architecture="any", limit=1)
    assert code == 0 and len(result["images"]) == 1
    assert result["images_by_region"]["us-east-1"]["matched"] == 3
