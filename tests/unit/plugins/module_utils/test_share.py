# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_share: the one check and the one converge of image sharing, used by ami_create and ami_copy."""
from __future__ import annotations

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _copy_request
from ansible_collections.bakery.ami.plugins.module_utils import _share

from tests.unit.plugins.module_utils.test_copy import World

USER = "111122223333"
ORG = "arn:aws:organizations::111122223333:organization/o-abcdefghij"
MUTATING = {"modify_image_attribute", "modify_snapshot_attribute"}


@pytest.fixture
def ec2():
    world = World()
    client = world.client("us-east-1")
    image_id = client.add_image("web-base 1")
    return client, image_id, [client.images[image_id]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]]


def parse(**params):
    errors: list = []
    result = _share.parse(params, errors)
    return result, errors


def test_parse_maps_every_kind_and_shares_snapshots_with_the_accounts_by_default():
    (permissions, users), errors = parse(
        launch_permissions={"user_ids": [USER], "group_names": ["all"], "org_arns": [ORG]},
    )
    assert errors == []
    assert permissions == [{"UserId": USER}, {"Group": "all"}, {"OrganizationArn": ORG}]
    assert users == [USER]
    (_permissions, users), _errors = parse(launch_permissions={"user_ids": [USER]}, share_snapshots=False)
    assert users == []


@pytest.mark.parametrize(
    "params,fragment",
    [
        (dict(launch_permissions={"user_ids": ["12345"]}), "launch_permissions.user_ids: '12345'"),
        (dict(launch_permissions={"user_ids": [USER + "\n"]}), "launch_permissions.user_ids"),
        (dict(launch_permissions={"group_names": ["everyone"]}), "launch_permissions.group_names: 'everyone'"),
        (dict(launch_permissions={"org_arns": ["arn:aws:nope"]}), "launch_permissions.org_arns"),
        (dict(launch_permissions={"org_unit_arns": ["ou-1"]}), "launch_permissions.org_unit_arns"),
        (dict(share_snapshots=True), "share_snapshots: sharing snapshots needs launch_permissions.user_ids"),
    ],
)
def test_parse_names_the_option_of_every_bad_value(params, fragment):
    _request, errors = parse(**params)
    assert len(errors) == 1 and fragment in errors[0]


def test_copy_requests_are_checked_by_the_same_function(monkeypatch):
    seen = []
    real = _share.parse

    def spy(params, errors):
        seen.append(params.get("launch_permissions"))
        return real(params, errors)

    monkeypatch.setattr(_share, "parse", spy)
    params = dict(source_image_id="ami-0123456789abcdef0", source_region="us-east-1", regions=["us-west-2"],
                  launch_permissions={"user_ids": [USER]})
    request = _copy_request.build_request(params, "us-east-1", ["us-east-1", "us-west-2"])
    assert seen == [{"user_ids": [USER]}]
    assert request.share_user_ids == [USER]


def test_converge_adds_image_and_snapshot_permissions_then_a_rerun_changes_nothing(ec2):
    client, image_id, snaps = ec2
    permissions, users = [{"UserId": USER}, {"OrganizationArn": ORG}], [USER]
    added = _share.converge(client, image_id, snaps, permissions, users, act=True)
    assert added == {"launch_permissions": permissions, "snapshot_permissions": {snaps[0]: [USER]}, "sharing_record": {}}
    assert client.launch[image_id] == permissions
    assert client.volume_perms[snaps[0]] == [USER]
    client.calls.clear()
    again = _share.converge(client, image_id, snaps, permissions, users, act=True)
    assert not _share.changed(again)
    assert not [call for call, _args in client.calls if call in MUTATING]


def test_check_mode_reports_what_would_be_added_and_calls_nothing_that_changes(ec2):
    client, image_id, snaps = ec2
    client.launch[image_id] = [{"UserId": USER}]  # already there: not reported
    added = _share.converge(client, image_id, snaps, [{"UserId": USER}, {"Group": "all"}], [USER], act=False)
    assert added == {"launch_permissions": [{"Group": "all"}], "snapshot_permissions": {snaps[0]: [USER]},
                     "sharing_record": {}}
    assert not [call for call, _args in client.calls if call in MUTATING]
    assert client.launch[image_id] == [{"UserId": USER}] and snaps[0] not in client.volume_perms


def test_nothing_asked_nothing_called(ec2):
    client, image_id, snaps = ec2
    assert not _share.changed(_share.converge(client, image_id, snaps, [], [], act=True))
    assert client.calls == []


# --- the sharing record (bakery:shared-with) ---------------------------------------------------

OU = "arn:aws:organizations::111122223333:ou/o-abcdefghij/ou-ab12-cdefghij"
GOV_ORG = "arn:aws-us-gov:organizations::111122223333:organization/o-abcdefghij"


def test_the_record_is_compact_sorted_and_reads_back_to_the_same_sharing():
    permissions = [{"UserId": USER}, {"UserId": "444455556666"}, {"Group": "all"}, {"OrganizationArn": ORG},
                   {"OrganizationalUnitArn": OU}, {"OrganizationArn": GOV_ORG}]
    tags = _share.record_tags(permissions, [USER])
    assert tags == {"bakery:shared-with": " ".join(sorted([
        "111122223333+snapshots", "444455556666", "all", "111122223333:organization/o-abcdefghij",
        "111122223333:ou/o-abcdefghij/ou-ab12-cdefghij", GOV_ORG]))}
    back, users = _share.recorded(dict(tags, other="x"))
    assert sorted(map(str, back)) == sorted(map(str, permissions)) and users == [USER]


def test_a_record_longer_than_one_tag_value_goes_on_in_numbered_tags_without_splitting_an_entry():
    accounts = [f"{n:012d}" for n in range(100000000000, 100000000040)]
    tags = _share.record_tags([{"UserId": account} for account in accounts], accounts[:5])
    assert list(tags) == ["bakery:shared-with", "bakery:shared-with:2", "bakery:shared-with:3"]
    assert all(len(value) <= 256 for value in tags.values())
    back, users = _share.recorded(tags)
    assert [entry["UserId"] for entry in back] == accounts and users == accounts[:5]
    assert _share.is_record_key("bakery:shared-with:2") and not _share.is_record_key("bakery:shared-with:x")


def test_converge_records_the_sharing_and_a_rerun_with_the_record_changes_nothing(ec2):
    client, image_id, snaps = ec2
    added = _share.converge(client, image_id, snaps, [{"UserId": USER}], [USER], act=True, tags={})
    assert added["sharing_record"] == {"bakery:shared-with": USER + "+snapshots"}
    assert client.tags_of(image_id) == {"bakery:shared-with": USER + "+snapshots"}
    client.calls.clear()
    again = _share.converge(client, image_id, snaps, [{"UserId": USER}], [USER], act=True, tags=client.tags_of(image_id))
    assert not _share.changed(again)
    assert not [call for call, _args in client.calls if call in MUTATING | {"create_tags", "delete_tags"}]


def test_a_record_inherited_from_elsewhere_is_corrected_to_what_the_image_is_shared_with(ec2):
    client, image_id, snaps = ec2
    inherited = {"bakery:shared-with": "999988887777+snapshots", "bakery:shared-with:2": "all"}
    client.create_tags([image_id], [{"Key": k, "Value": v} for k, v in inherited.items()])
    predicted = _share.converge(client, image_id, snaps, [], [], act=False, tags=inherited)
    assert predicted["sharing_record"] == {"bakery:shared-with": "", "bakery:shared-with:2": ""}
    assert client.tags_of(image_id) == inherited  # check mode: read only
    _share.converge(client, image_id, snaps, [], [], act=True, tags=inherited)
    assert client.tags_of(image_id) == {}
