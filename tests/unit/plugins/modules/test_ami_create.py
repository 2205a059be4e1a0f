# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_create's main(): bad input fails before any AWS client exists; outcomes map to results and failures."""
from __future__ import annotations

from unittest.mock import MagicMock, patch

import botocore.exceptions
import pytest


from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _create
from ansible_collections.bakery.ami.plugins.module_utils import _waiter
from ansible_collections.bakery.ami.plugins.modules import ami_create

from tests.unit.plugins.modules.module_runner import patch_clients, refused_before_aws, run_module

RUN = "ansible_collections.bakery.ami.plugins.module_utils._create.ImageCreator.run"
BASE = {"region": "us-east-1", "access_key": "testing", "secret_key": "testing"}


def run_main(capsys, check_mode=False, **args):
    rc, result = run_module(ami_create.main, capsys, dict(BASE, **args), check_mode=check_mode)
    result["_rc"] = rc
    return result


@pytest.mark.parametrize(
    "args,fragment",
    [
        ({"name": "x", "instance_id": "i-0123456789abcdef0"}, "name: AMI names are 3-128 characters"),
        ({"name": "bad|name", "instance_id": "i-0123456789abcdef0"}, "name: 'bad|name' has characters AMI names do not allow"),
        ({"name": "good name"}, "one of the following is required: instance_id, snapshot_id"),
        (
            {"name": "good name", "instance_id": "i-0123456789abcdef0", "snapshot_id": "snap-0123456789abcdef0"},
            "parameters are mutually exclusive: instance_id|snapshot_id",
        ),
        ({"name": "good name", "instance_id": "i-0123456789abcdef0", "deprecate_at": "soon"}, "deprecate_at: 'soon' is not an ISO-8601 time"),
        ({"name": "good name", "snapshot_id": "vol-0123456789abcdef0"}, "snapshot_id: 'vol-0123456789abcdef0' is not a valid snapshot ID"),
        ({"name": "good name\n", "instance_id": "i-0123456789abcdef0"}, "name: 'good name\\n' has characters AMI names do not allow"),
        ({"name": "good name", "instance_id": "i-0123456789abcdef0", "build_id": "b1",
          "tags": {f"t{n}": "v" for n in range(50)}}, "tags: the image would carry 51 tags (50 from tags, 1 from build_id)"),
        ({"name": "good name", "instance_id": "i-0123456789abcdef0",
          "copy": {"regions": ["us-west-2"], "pending_tags": {"bakery:expires-at": "2001-01-01T00:00:00Z"}}},
         "copy.pending_tags: tag bakery:expires-at: '2001-01-01T00:00:00Z' is in the past"),
        ({"name": "good name", "instance_id": "i-0123456789abcdef0",
          "pending_tags": {"bakery:expires-at": "2001-01-01T00:00:00Z"}},
         "pending_tags: tag bakery:expires-at: '2001-01-01T00:00:00Z' is in the past"),
        ({"name": "good name", "instance_id": "i-0123456789abcdef0", "tags": {"k": "v"}, "pending_tags": {"k": "v"}},
         "pending_tags: 'k' is also in tags"),
        ({"name": "good name", "instance_id": "i-0123456789abcdef0", "pending_tags": {"k": "v"},
          "copy": {"regions": ["us-west-2"], "pending_tags": {"k": "w"}}}, "give the pending tags once"),
    ],
)
def test_bad_input_fails_before_any_client_is_made(capsys, args, fragment):
    assert fragment in refused_before_aws(run_main, capsys, args, RUN)["msg"]


def test_options_reach_the_creator_and_the_result_is_returned(capsys):
    seen = {}

    def fake_run(self):
        seen.update(request=self.request, region=self.region, check_mode=self.check_mode)
        return {"changed": True, "image_id": "ami-0123456789abcdef0", "name": self.request.name, "state": "available",
                "snapshot_ids": ["snap-0123456789abcdef0"], "tags": {}, "adopted": False}

    with patch_clients() as client, patch.object(_create.ImageCreator, "run", fake_run):
        result = run_main(capsys, check_mode=True, name="web-base 1", instance_id="i-0123456789abcdef0", build_id="b1",
                          tags={"bakery:family": "web-base"})
    assert result["_rc"] == 0
    assert result["image_id"] == "ami-0123456789abcdef0"
    assert seen["check_mode"] is True
    assert seen["region"] == "us-east-1"
    assert seen["request"].reboot is True and seen["request"].imds_support == "v2.0"
    assert seen["request"].wait is True and seen["request"].wait_timeout == 3600
    client.assert_called_once()
    assert client.call_args.args[1:] == ("ec2", ["us-east-1"])


@pytest.mark.parametrize(
    "error,expected",
    [
        (_create.CreateError("name: 'x y z' is already used by image ami-1"), "name: 'x y z' is already used by image ami-1"),
        (_waiter.ImageFailed("us-east-1", "ami-1", "failed", "disk gone"), "image ami-1 in us-east-1 went to state 'failed': disk gone"),
        (_waiter.WaitTimeout("timed out after 60 s waiting for images", {"us-east-1": ["ami-1"]}), "timed out after 60 s waiting for images"),
    ],
)
def test_failures_are_clean_messages(capsys, error, expected):
    with patch_clients(), patch(RUN, side_effect=error):
        result = run_main(capsys, name="web-base 1", instance_id="i-0123456789abcdef0")
    assert result["_rc"] == 1
    assert result["msg"] == expected
    assert "exception" not in result


def test_aws_errors_carry_the_operation_and_the_code(capsys):
    cause = botocore.exceptions.ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "denied"}}, "CreateImage")
    error = _aws.BakeryAWSError(message="Failed to create image", exception=cause)
    with patch_clients(), patch(RUN, side_effect=error):
        result = run_main(capsys, name="web-base 1", instance_id="i-0123456789abcdef0")
    assert result["_rc"] == 1
    assert result["msg"].startswith("Failed to create image")
    assert "UnauthorizedOperation" in result["msg"]
    assert result["error"]["code"] == "UnauthorizedOperation"


# ---------------------------------------------------------------------------------------------
# copy: the image copied to other regions in the same task

COPY_IN = "ansible_collections.bakery.ami.plugins.module_utils._copy.copy_created_image"
CLIENTS = "ansible_collections.bakery.ami.plugins.module_utils._aws.regional_clients"
CREATED = {"changed": True, "adopted": False, "image_id": "ami-0123456789abcdef0", "name": "web-base 1", "state": "available",
           "snapshot_ids": ["snap-0123456789abcdef0"], "tags": {"team": "a", "bakery:expires-at": "2030-01-01T00:00:00Z"}}
GOOD = {"name": "web-base 1", "instance_id": "i-0123456789abcdef0"}


@pytest.mark.parametrize(
    "args,fragment",
    [
        (dict(GOOD, copy={"regions": ["moon-1"]}), "copy.regions"),
        (dict(GOOD, copy={"regions": ["us-west-2"]}, wait=False), "copy: the copies start once the image is available"),
        (dict(GOOD, copy={"regions": ["us-west-2"], "kms_key_id": "alias/x"}), "copy.kms_key_id: a KMS key needs encrypted=true"),
        (dict(GOOD, tags={"a": "1"}, copy={"regions": ["us-west-2"], "pending_tags": {"a": "2"}}), "copy.pending_tags: 'a' is also in tags"),
        (dict(GOOD, name="x", copy={"regions": ["us-west-2"], "deprecate_at": "soon"}), "name: AMI names are 3-128 characters"),
    ],
)
def test_bad_copy_input_fails_before_any_client_is_made(capsys, args, fragment):
    with patch(CLIENTS) as clients, patch(COPY_IN) as copy_in:
        result = refused_before_aws(run_main, capsys, args, RUN)
    clients.assert_not_called()
    copy_in.assert_not_called()
    assert fragment in result["msg"]


def test_copy_starts_from_the_image_the_task_made_and_the_pending_tags_leave_its_tags(capsys):
    seen = {}

    def fake_run(self):
        seen["pending"] = self.pending_tags
        self.image = {"ImageId": CREATED["image_id"], "State": "available"}
        return dict(CREATED)

    def fake_copy(request, clients, created, image, check_mode, warn, **_timing):
        seen.update(regions=[spec.region for spec in request.regions], clients=sorted(clients), image=image, check_mode=check_mode)
        warn("a warning from the copy")
        return {"changed": True, "images": {"us-west-2": {"image_id": "ami-0abcdef1234567890", "state": "available"}},
                "failed_regions": {}}

    copy = {"regions": ["us-west-2"], "pending_tags": {"bakery:expires-at": "2030-01-01T00:00:00Z"}}
    with patch(CLIENTS, return_value={"us-east-1": MagicMock(), "us-west-2": MagicMock()}) as clients, \
            patch.object(_create.ImageCreator, "run", fake_run), patch(COPY_IN, side_effect=fake_copy):
        result = run_main(capsys, **dict(GOOD, copy=copy))
    assert result["_rc"] == 0
    assert clients.call_args[0][2] == ["us-east-1", "us-west-2"]
    assert seen["pending"] == {"bakery:expires-at": "2030-01-01T00:00:00Z"}
    assert seen["regions"] == ["us-west-2"] and seen["check_mode"] is False
    assert seen["image"]["ImageId"] == CREATED["image_id"]
    assert result["copies"]["images"]["us-west-2"]["image_id"] == "ami-0abcdef1234567890"
    assert result["tags"] == {"team": "a"}
    assert "a warning from the copy" in str(result["warnings"])


def test_an_unchanged_image_with_a_new_copy_reports_changed(capsys):
    def fake_run(self):
        self.image = {"ImageId": CREATED["image_id"], "State": "available"}
        return dict(CREATED, changed=False, adopted=True)

    copies = {"changed": True, "images": {}, "failed_regions": {}}
    with patch(CLIENTS, return_value={"us-east-1": MagicMock(), "us-west-2": MagicMock()}), \
            patch.object(_create.ImageCreator, "run", fake_run), patch(COPY_IN, return_value=copies):
        result = run_main(capsys, **dict(GOOD, copy={"regions": ["us-west-2"]}))
    assert result["changed"] is True and result["adopted"] is True


def test_a_failed_copy_fails_the_task_and_names_the_image_it_leaves(capsys):
    from ansible_collections.bakery.ami.plugins.module_utils import _copy  # pylint: disable=import-outside-toplevel

    failure = _copy.CopyFailed("ami_copy failed in eu-west-1: CopyImage failed", {
        "changed": True, "images": {}, "failed_regions": {"eu-west-1": "CopyImage failed"}, "rolled_back": {"us-west-2": "ami-2"}})

    def fake_run(self):
        self.image = {"ImageId": CREATED["image_id"], "State": "available"}
        return dict(CREATED)

    with patch(CLIENTS, return_value={"us-east-1": MagicMock(), "us-west-2": MagicMock(), "eu-west-1": MagicMock()}), \
            patch.object(_create.ImageCreator, "run", fake_run), patch(COPY_IN, side_effect=failure):
        result = run_main(capsys, **dict(GOOD, copy={"regions": ["us-west-2", "eu-west-1"]}))
    assert result["_rc"] == 1
    assert result["msg"] == ("image ami-0123456789abcdef0 in us-east-1 is made, but copying it failed: "
                             "ami_copy failed in eu-west-1: CopyImage failed")
    assert result["image_id"] == CREATED["image_id"]
    assert result["copies"]["rolled_back"] == {"us-west-2": "ami-2"}
    assert "exception" not in result


def test_an_aws_error_of_the_copy_step_names_the_image_it_leaves(capsys):
    cause = botocore.exceptions.ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "denied"}}, "CopyImage")
    error = _aws.BakeryAWSError(message="Failed to copy image", exception=cause)

    def fake_run(self):
        self.image = {"ImageId": CREATED["image_id"], "State": "available"}
        return dict(CREATED)

    with patch(CLIENTS, return_value={"us-east-1": MagicMock(), "us-west-2": MagicMock()}), \
            patch.object(_create.ImageCreator, "run", fake_run), patch(COPY_IN, side_effect=error):
        result = run_main(capsys, **dict(GOOD, copy={"regions": ["us-west-2"]}))
    assert result["_rc"] == 1
    assert result["msg"].startswith("image ami-0123456789abcdef0 in us-east-1 is made, but copying it failed: Failed to copy image")
    assert "UnauthorizedOperation" in result["msg"] and result["error"]["code"] == "UnauthorizedOperation"
    assert result["image_id"] == CREATED["image_id"]


@pytest.mark.parametrize("with_copy", [False, True])
def test_pending_tags_go_to_the_creator_alone_or_to_the_copy_step_with_copies(capsys, with_copy):
    """Without copies the creator takes them off; with copies they go with the copies (and the copy step
    takes them off everything)."""
    seen = {}
    pending = {"bakery:expires-at": "2030-01-01T00:00:00Z"}

    def fake_run(self):
        seen.update(pending=self.pending_tags, release=self.release_pending)
        self.image = {"ImageId": CREATED["image_id"], "State": "available"}
        return dict(CREATED)

    def fake_copy(request, clients, created, image, check_mode, warn, **_timing):
        seen.update(copy_pending=request.pending_tags)
        return {"changed": True, "images": {}, "failed_regions": {}}

    args = dict(GOOD, pending_tags=pending)
    if with_copy:
        args["copy"] = {"regions": ["us-west-2"]}
    with patch(CLIENTS, return_value={"us-east-1": MagicMock(), "us-west-2": MagicMock()}), \
            patch_clients(), \
            patch.object(_create.ImageCreator, "run", fake_run), patch(COPY_IN, side_effect=fake_copy):
        result = run_main(capsys, **args)
    assert result["_rc"] == 0
    assert seen["pending"] == pending
    assert seen["release"] is (not with_copy)
    assert seen.get("copy_pending") == (pending if with_copy else None)


# ---------------------------------------------------------------------------------------------
# launch_permissions / share_snapshots: the image in its own region, with the copies' code (_share)

SHARE_USER = "111122223333"


def _fake_ec2():
    from tests.unit.plugins.module_utils.test_copy import World  # pylint: disable=import-outside-toplevel

    client = World().client("us-east-1")
    image_id = client.add_image("web-base 1")
    snapshot_id = client.images[image_id]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    return client, image_id, snapshot_id


def _run_shared(capsys, client, image_id, snapshot_id, check_mode=False, changed=True, **extra):
    def fake_run(self):
        self.image = client.images[image_id]
        # the image's tags as they are (its sharing record among them)
        return dict(CREATED, image_id=image_id, snapshot_ids=[snapshot_id], state="available", changed=changed,
                    updates=[], tags=dict(CREATED["tags"], **client.tags_of(image_id)))

    with patch_clients(client), patch.object(_create.ImageCreator, "run", fake_run):
        return run_main(capsys, check_mode=check_mode, **dict(GOOD, launch_permissions={"user_ids": [SHARE_USER]}, **extra))


@pytest.mark.parametrize(
    "share,fragment",
    [
        (dict(launch_permissions={"user_ids": ["12345"]}), "launch_permissions.user_ids: '12345'"),
        (dict(launch_permissions={"group_names": ["everyone"]}), "launch_permissions.group_names: 'everyone'"),
        (dict(share_snapshots=True), "share_snapshots: sharing snapshots needs launch_permissions.user_ids"),
        (dict(launch_permissions={"org_arns": ["arn:aws:nope"]}, copy={"regions": ["us-west-2"]}), "launch_permissions.org_arns"),
    ],
)
def test_bad_sharing_input_fails_before_any_client_is_made(capsys, share, fragment):
    with patch(CLIENTS) as clients:
        result = refused_before_aws(run_main, capsys, dict(GOOD, **share), RUN)
    clients.assert_not_called()
    assert fragment in result["msg"]


def test_sharing_is_added_to_the_image_and_its_snapshots_and_a_rerun_changes_nothing(capsys):
    client, image_id, snapshot_id = _fake_ec2()
    result = _run_shared(capsys, client, image_id, snapshot_id, changed=False)
    assert result["_rc"] == 0 and result["changed"] is True
    assert result["sharing"] == {"launch_permissions": [{"UserId": SHARE_USER}],
                                 "snapshot_permissions": {snapshot_id: [SHARE_USER]},
                                 "sharing_record": {"bakery:shared-with": SHARE_USER + "+snapshots"}}
    assert {"launch_permissions", "snapshot_permissions", "sharing_record"} <= set(result["updates"])
    assert result["tags"]["bakery:shared-with"] == SHARE_USER + "+snapshots"
    assert client.launch[image_id] == [{"UserId": SHARE_USER}]
    assert client.volume_perms[snapshot_id] == [SHARE_USER]
    client.calls.clear()
    again = _run_shared(capsys, client, image_id, snapshot_id, changed=False)
    assert again["changed"] is False
    assert again["sharing"] == {"launch_permissions": [], "snapshot_permissions": {}, "sharing_record": {}}
    assert not [call for call, _args in client.calls if call.startswith("modify_")]


def test_check_mode_reports_the_sharing_it_would_add_and_changes_nothing(capsys):
    client, image_id, snapshot_id = _fake_ec2()
    result = _run_shared(capsys, client, image_id, snapshot_id, check_mode=True, changed=False)
    assert result["changed"] is True
    assert result["sharing"]["snapshot_permissions"] == {snapshot_id: [SHARE_USER]}
    assert not [call for call, _args in client.calls if call.startswith("modify_")]
    assert client.launch == {} and client.volume_perms == {}


def test_the_copies_are_shared_as_the_image_unless_copy_says_otherwise(capsys):
    seen = []

    def fake_run(self):
        self.image = {"ImageId": CREATED["image_id"], "State": "available"}
        return dict(CREATED, updates=[])

    def fake_copy(request, *_args, **_kwargs):
        seen.append((request.launch_permissions, request.share_user_ids))
        return {"changed": False, "images": {}, "failed_regions": {}}

    share = {"user_ids": [SHARE_USER]}
    with patch(CLIENTS, return_value={"us-east-1": MagicMock(), "us-west-2": MagicMock()}), \
            patch.object(_create.ImageCreator, "run", fake_run), patch(COPY_IN, side_effect=fake_copy), \
            patch.object(_create, "share_image", lambda client, result, *a: result):
        run_main(capsys, **dict(GOOD, launch_permissions=share, copy={"regions": ["us-west-2"]}))
        run_main(capsys, **dict(GOOD, launch_permissions=share,
                                copy={"regions": ["us-west-2"], "launch_permissions": {"group_names": ["all"]}}))
    assert seen[0] == ([{"UserId": SHARE_USER}], [SHARE_USER])
    assert seen[1] == ([{"Group": "all"}], [])


BPA = "ansible_collections.bakery.ami.plugins.module_utils._aws.get_image_block_public_access_state"


def test_a_public_share_under_block_public_access_fails_before_the_image_is_made(capsys):
    with patch_clients("ec2-us-east-1"), patch(BPA, return_value="block-new-sharing"), patch(RUN) as run:
        result = run_main(capsys, instance_id="i-0123456789abcdef0", name="web-base 1",
                          launch_permissions={"group_names": ["all"]})
    assert result["_rc"] == 1 and run.call_count == 0
    assert result["msg"].startswith("launch_permissions.group_names: 'all' would make the image public in us-east-1, "
                                    "but image block public access (ImageBlockPublicAccessState) is block-new-sharing")


def test_block_public_access_unknown_to_the_api_lets_the_public_share_through(capsys):
    unknown = _aws.BakeryAWSError(message="Failed to get image block public access state", exception=botocore.exceptions.ClientError(
        {"Error": {"Code": "InvalidAction", "Message": "no"}}, "GetImageBlockPublicAccessState"))
    done = {"changed": True, "adopted": False, "image_id": None, "name": "web-base 1", "state": None, "snapshot_ids": [],
            "tags": {}, "snapshot_tags": {}, "deprecation_time": None, "imds_support": "v2.0",
            "deregistration_protection": "disabled", "updates": []}
    with patch_clients("ec2-us-east-1"), patch(BPA, side_effect=unknown), patch(RUN, return_value=done) as run:
        result = run_main(capsys, check_mode=True, instance_id="i-0123456789abcdef0", name="web-base 1",
                          launch_permissions={"group_names": ["all"]})
    assert result["_rc"] == 0 and run.call_count == 1


def test_the_copy_regions_clients_are_made_after_create_image_not_before_it(capsys):
    """Only the image's region has a client when the creation starts; the copy regions' clients
    are made by the work the creator runs in its first pause (while_creating)."""
    made = []
    seen = {}

    def regional_clients(module, service, regions, on_first_use=False):
        seen["on_first_use"] = on_first_use
        return _aws.RegionalClients(lambda region: made.append(region) or MagicMock(), regions)

    def fake_run(self):
        seen["made_at_create"] = list(made)
        self._while_creating()  # pylint: disable=protected-access
        seen["made_after_pause"] = list(made)
        self.image = {"ImageId": CREATED["image_id"], "State": "available"}
        return dict(CREATED)

    def fake_copy(request, clients, created, image, check_mode, warn, **_timing):
        return {"changed": True, "images": {}, "failed_regions": {}}

    copy = {"regions": ["us-west-2", "eu-west-1", "ap-southeast-2"]}
    with patch(CLIENTS, side_effect=regional_clients), \
            patch.object(_create.ImageCreator, "run", fake_run), patch(COPY_IN, side_effect=fake_copy):
        result = run_main(capsys, **dict(GOOD, copy=copy))
    assert result["_rc"] == 0, result
    assert seen["on_first_use"] is True
    assert seen["made_at_create"] == ["us-east-1"]
    assert seen["made_after_pause"] == ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"]
