# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launch template versions on the local endpoint: SourceVersion merges, versions are deleted by
number (never the default), numbers are never reused, $Latest and MinVersion follow numbers."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.endpoint.endpoint_helpers import error_code

IMAGE_A = "ami-0123456789abcdef0"
IMAGE_B = "ami-0fedcba9876543210"


@pytest.fixture
def template(ec2):
    return ec2.create_launch_template(
        LaunchTemplateName="web", VersionDescription="first",
        LaunchTemplateData={"ImageId": IMAGE_A, "InstanceType": "t3.micro", "KeyName": "ops"},
    )["LaunchTemplate"]


def versions(ec2, **extra):
    found = ec2.describe_launch_template_versions(LaunchTemplateName="web", **extra)["LaunchTemplateVersions"]
    return {item["VersionNumber"]: item for item in found}


def test_a_version_from_a_source_keeps_the_source_data_and_overrides_the_given_keys(ec2, template):
    made = ec2.create_launch_template_version(LaunchTemplateName="web", SourceVersion="1",
                                              LaunchTemplateData={"ImageId": IMAGE_B})["LaunchTemplateVersion"]
    assert made["VersionNumber"] == 2
    assert made["LaunchTemplateData"] == {"ImageId": IMAGE_B, "InstanceType": "t3.micro", "KeyName": "ops"}
    assert versions(ec2)[2]["LaunchTemplateData"]["InstanceType"] == "t3.micro"
    # without a source, only the data given
    plain = ec2.create_launch_template_version(LaunchTemplateName="web", LaunchTemplateData={"ImageId": IMAGE_A})
    assert plain["LaunchTemplateVersion"]["LaunchTemplateData"] == {"ImageId": IMAGE_A}


def test_a_missing_source_version_is_refused(ec2, template):
    with pytest.raises(ClientError) as info:
        ec2.create_launch_template_version(LaunchTemplateName="web", SourceVersion="7",
                                           LaunchTemplateData={"ImageId": IMAGE_B})
    assert error_code(info) == "InvalidLaunchTemplateId.VersionNotFound"
    assert sorted(versions(ec2)) == [1]


def test_a_long_version_description_is_refused(ec2, template):
    with pytest.raises(ClientError) as info:
        ec2.create_launch_template_version(LaunchTemplateName="web", VersionDescription="x" * 256,
                                           LaunchTemplateData={"ImageId": IMAGE_B})
    assert error_code(info) == "InvalidParameterValue"


def test_versions_are_deleted_by_number_never_the_default_and_numbers_are_not_reused(ec2, template):
    for image in (IMAGE_B, IMAGE_A, IMAGE_B):
        ec2.create_launch_template_version(LaunchTemplateName="web", LaunchTemplateData={"ImageId": image})
    answer = ec2.delete_launch_template_versions(LaunchTemplateName="web", Versions=["2", "1", "9"])
    assert [item["VersionNumber"] for item in answer["SuccessfullyDeletedLaunchTemplateVersions"]] == [2]
    failed = {item["VersionNumber"]: item["ResponseError"]["Code"]
              for item in answer["UnsuccessfullyDeletedLaunchTemplateVersions"]}
    assert failed == {1: "unexpectedError", 9: "launchTemplateVersionDoesNotExist"}
    assert sorted(versions(ec2)) == [1, 3, 4]
    # version 3 is found by its number, not by its place in the list
    assert versions(ec2, Versions=["3"])[3]["LaunchTemplateData"]["ImageId"] == IMAGE_A
    assert sorted(versions(ec2, MinVersion="3")) == [3, 4]
    ec2.delete_launch_template_versions(LaunchTemplateName="web", Versions=["4"])
    assert list(versions(ec2, Versions=["$Latest"])) == [3]
    made = ec2.create_launch_template_version(LaunchTemplateName="web", LaunchTemplateData={"ImageId": IMAGE_B})
    assert made["LaunchTemplateVersion"]["VersionNumber"] == 5
    ec2.modify_launch_template(LaunchTemplateName="web", DefaultVersion="5")
    assert list(versions(ec2, Versions=["$Default"])) == [5]
    assert ec2.describe_launch_templates(LaunchTemplateNames=["web"])["LaunchTemplates"][0]["LatestVersionNumber"] == 5
    with pytest.raises(ClientError) as info:
        ec2.describe_launch_template_versions(LaunchTemplateName="web", Versions=["2"])
    assert error_code(info) == "InvalidLaunchTemplateId.VersionNotFound"


def test_the_same_client_token_answers_the_version_it_made(ec2, template):
    first = ec2.create_launch_template_version(LaunchTemplateName="web", ClientToken="bakery-1",
                                               LaunchTemplateData={"ImageId": IMAGE_B})["LaunchTemplateVersion"]
    again = ec2.create_launch_template_version(LaunchTemplateName="web", ClientToken="bakery-1",
                                               LaunchTemplateData={"ImageId": IMAGE_B})["LaunchTemplateVersion"]
    assert first["VersionNumber"] == again["VersionNumber"] == 2
    assert sorted(versions(ec2)) == [1, 2]
    other = ec2.create_launch_template_version(LaunchTemplateName="web", ClientToken="bakery-2",
                                               LaunchTemplateData={"ImageId": IMAGE_B})["LaunchTemplateVersion"]
    assert other["VersionNumber"] == 3
