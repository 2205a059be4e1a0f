# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SSM parameters of DataType aws:ec2:image on the local endpoint: the format checked at once, the
image's existence checked as AWS does it (the write answered and dropped), history and tags."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.endpoint.conftest import NO_RETRY
from tests.endpoint.endpoint_helpers import error_code, launch

NAME = "/bakery/web-base/stable"


@pytest.fixture
def ssm(aws):
    return aws.client("ssm", "us-east-1", config=NO_RETRY)


@pytest.fixture
def ssm_west(aws):
    return aws.client("ssm", "eu-west-1", config=NO_RETRY)


def own_image(ec2, name):
    """A new image that exists only in the client's region."""
    return ec2.create_image(InstanceId=launch(ec2), Name=name)["ImageId"]


def put(client, value, **extra):
    return client.put_parameter(Name=NAME, Value=value, Type="String", DataType="aws:ec2:image", Overwrite=True, **extra)


def test_an_existing_image_is_stored_with_its_data_type(ssm, ec2):
    image_id = own_image(ec2, "web-base-1")
    assert put(ssm, image_id)["Version"] == 1
    parameter = ssm.get_parameter(Name=NAME)["Parameter"]
    assert parameter["Value"] == image_id and parameter["DataType"] == "aws:ec2:image" and parameter["Version"] == 1


@pytest.mark.parametrize("value", ["ami-123", "not-an-image", "ami-0123456789ABCDEF0", "snap-0123456789abcdef0",
                                   "ami-0123456789abcdef0 "])
def test_a_value_that_is_not_an_ami_id_is_refused_at_once(ssm, value):
    with pytest.raises(ClientError) as info:
        put(ssm, value)
    assert error_code(info) == "ValidationException"
    assert "is not an AMI ID" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        ssm.get_parameter(Name=NAME)
    assert error_code(info) == "ParameterNotFound"


def test_the_image_data_type_needs_a_string_parameter(ssm, ec2):
    image_id = own_image(ec2, "web-base-1")
    with pytest.raises(ClientError) as info:
        ssm.put_parameter(Name=NAME, Value=image_id, Type="StringList", DataType="aws:ec2:image")
    assert error_code(info) == "ValidationException"


def test_an_image_missing_in_the_region_is_answered_but_never_stored(aws, ssm, ssm_west, ec2):
    east_only = own_image(ec2, "web-base-1")
    aws.reset_counts()
    # a new parameter: answered with version 1, then dropped
    assert put(ssm_west, east_only)["Version"] == 1
    with pytest.raises(ClientError) as info:
        ssm_west.get_parameter(Name=NAME)
    assert error_code(info) == "ParameterNotFound"
    # an existing one keeps its value and history
    assert put(ssm, east_only)["Version"] == 1
    assert put(ssm, "ami-0000000000000000f")["Version"] == 2
    parameter = ssm.get_parameter(Name=NAME)["Parameter"]
    assert parameter["Value"] == east_only and parameter["Version"] == 1
    assert [item["Value"] for item in ssm.get_parameter_history(Name=NAME)["Parameters"]] == [east_only]
    assert aws.counts()["ssm_image_rejected"] == 2


def test_without_overwrite_an_existing_parameter_is_still_refused_at_once(ssm, ec2):
    image_id = own_image(ec2, "web-base-1")
    put(ssm, image_id)
    with pytest.raises(ClientError) as info:
        ssm.put_parameter(Name=NAME, Value="ami-0000000000000000f", Type="String", DataType="aws:ec2:image")
    assert error_code(info) == "ParameterAlreadyExists"


def test_text_parameters_are_not_checked(ssm):
    ssm.put_parameter(Name="/bakery/notes", Value="ami-0000000000000000f", Type="String")
    assert ssm.get_parameter(Name="/bakery/notes")["Parameter"]["DataType"] == "text"


def test_history_keeps_every_value_in_order(ssm, ec2):
    images = [own_image(ec2, f"web-base-{n}") for n in range(3)]
    for image_id in images:
        put(ssm, image_id)
    put(ssm, images[2])  # the same value again is a new version too
    history = ssm.get_parameter_history(Name=NAME)["Parameters"]
    assert [(item["Version"], item["Value"]) for item in history] == [
        (1, images[0]), (2, images[1]), (3, images[2]), (4, images[2])]
    assert {item["DataType"] for item in history} == {"aws:ec2:image"}
    assert ssm.get_parameter(Name=f"{NAME}:2")["Parameter"]["Value"] == images[1]


def test_parameter_tags_survive_an_overwrite(ssm, ec2):
    first, second = own_image(ec2, "web-base-1"), own_image(ec2, "web-base-2")
    put(ssm, first)
    put(ssm, second)
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=NAME,
                             Tags=[{"Key": "bakery:previous-image", "Value": first}])
    put(ssm, first)
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=NAME,
                             Tags=[{"Key": "bakery:previous-image", "Value": second}])
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=NAME)["TagList"]
    assert tags == [{"Key": "bakery:previous-image", "Value": second}]
    with pytest.raises(ClientError) as info:
        ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId="/bakery/none",
                                 Tags=[{"Key": "k", "Value": "v"}])
    assert error_code(info) == "InvalidResourceId"
