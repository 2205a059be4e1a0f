# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Sharing of one image, the same in every region: ami_create (the build-region image) and
# ami_copy (each copy) take the same options, checked by parse() and applied by converge():
#   launch_permissions  -> the image's launchPermission (accounts, 'all', organizations, OUs)
#   share_snapshots     -> createVolumePermission on each of the image's snapshots for the accounts
# Sharing only adds: a permission already there (given by hand) is left alone.
#
# The sharing record. EC2 removes an image's launch permissions when the image is disabled, so
# what an image is shared with is also written on it, as tags, each time it is shared (and checked
# on every copy that carries one): ami_prune state=restored shares a restored image again from them.
#   bakery:shared-with   = entries separated by one space, sorted; a value holds at most 256
#   bakery:shared-with:2 ... characters, and entries that do not fit go on to the next tag
#   entry: 123456789012               launch permission of the account
#          123456789012+snapshots     and createVolumePermission on every snapshot of the image
#          all                        public (launch permission group all)
#          123456789012:organization/o-abcdefghij            the organization (its ARN after
#          123456789012:ou/o-abcdefghij/ou-ab12-cdefghij      "arn:aws:organizations::"), or the OU
#          arn:...                    an organization or OU ARN of another partition, whole
# The record is what the image is shared with once the task is done (its permissions as read,
# with what the task adds), so a record inherited from a copy's source is corrected.

from __future__ import annotations

import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _tags
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._images import tag_list

RECORD = _tags.SHARED_WITH
ORG_PREFIX = "arn:aws:organizations::"
SNAPSHOTS = "+snapshots"


class PublicShareRefused(BakeryError):
    """Image block public access refuses the public share asked for, in one or more regions."""


def suboptions() -> dict:
    """The argument spec of the sharing options (merged into ami_create's and ami_copy's)."""
    return dict(
        launch_permissions=dict(
            type="dict",
            options=dict(
                user_ids=dict(type="list", elements="str"),
                group_names=dict(type="list", elements="str"),
                org_arns=dict(type="list", elements="str"),
                org_unit_arns=dict(type="list", elements="str"),
            ),
        ),
        share_snapshots=dict(type="bool"),
    )


def parse(params: dict, errors: list) -> tuple:
    """Check launch_permissions and share_snapshots; (LaunchPermission entries, snapshot user IDs).

    Every problem is appended to errors with the option it concerns; nothing is called.
    """
    permissions: list = []
    launch = params.get("launch_permissions") or {}
    user_ids = launch.get("user_ids") or []
    for user_id in user_ids:
        error = _validate.account_id("launch_permissions.user_ids", user_id)
        if error:
            errors.append(error)
        else:
            permissions.append({"UserId": user_id})
    for group in launch.get("group_names") or []:
        if group != "all":
            errors.append(f"launch_permissions.group_names: '{group}' is not a launch permission group (only 'all')")
        else:
            permissions.append({"Group": group})
    for arn in launch.get("org_arns") or []:
        error = _validate.org_arn("launch_permissions.org_arns", arn)
        if error:
            errors.append(error)
        else:
            permissions.append({"OrganizationArn": arn})
    for arn in launch.get("org_unit_arns") or []:
        error = _validate.org_unit_arn("launch_permissions.org_unit_arns", arn)
        if error:
            errors.append(error)
        else:
            permissions.append({"OrganizationalUnitArn": arn})
    share_user_ids: list = []
    share = params.get("share_snapshots")
    if share is None:
        share = bool(user_ids)
    if share:
        if not user_ids:
            errors.append("share_snapshots: sharing snapshots needs launch_permissions.user_ids")
        share_user_ids = [entry["UserId"] for entry in permissions if "UserId" in entry]
    return permissions, share_user_ids


def is_record_key(key: str) -> bool:
    """Whether a tag key is one of the sharing record's (bakery:shared-with, bakery:shared-with:N)."""
    return key == RECORD or (key.startswith(RECORD + ":") and key[len(RECORD) + 1:].isdigit())


def _entry(permission: dict) -> str | None:
    if permission.get("Group") == "all":
        return "all"
    if permission.get("UserId"):
        return permission["UserId"]
    arn = permission.get("OrganizationArn") or permission.get("OrganizationalUnitArn")
    if arn:
        return arn[len(ORG_PREFIX):] if arn.startswith(ORG_PREFIX) else arn
    return None


def record_tags(permissions: list, snapshot_users: t.Iterable[str]) -> dict:
    """The record tags of a sharing: LaunchPermission entries and the accounts with snapshot permissions."""
    snapshot_users = set(snapshot_users)
    entries = set()
    for permission in permissions:
        entry = _entry(permission)
        if entry is not None:
            entries.add(entry + SNAPSHOTS if entry in snapshot_users else entry)
    values: list = []
    for entry in sorted(entries):
        if values and len(values[-1]) + 1 + len(entry) <= _tags.MAX_VALUE_LENGTH:
            values[-1] += " " + entry
        else:
            values.append(entry)
    return {RECORD if n == 0 else f"{RECORD}:{n + 1}": value for n, value in enumerate(values)}


def recorded(tags: dict) -> tuple:
    """The sharing an image's record tags say it had: (LaunchPermission entries, snapshot user IDs)."""
    entries: list = []
    for key in sorted((key for key in tags if is_record_key(key)), key=lambda k: int(k.rsplit(":", 1)[-1]) if k != RECORD else 1):
        entries.extend(tags[key].split())
    permissions: list = []
    snapshot_users: list = []
    for entry in entries:
        if entry.endswith(SNAPSHOTS):
            entry = entry[:-len(SNAPSHOTS)]
            snapshot_users.append(entry)
        if entry == "all":
            permissions.append({"Group": "all"})
        elif ":ou/" in entry:
            permissions.append({"OrganizationalUnitArn": entry if entry.startswith("arn:") else ORG_PREFIX + entry})
        elif ":organization/" in entry:
            permissions.append({"OrganizationArn": entry if entry.startswith("arn:") else ORG_PREFIX + entry})
        else:
            permissions.append({"UserId": entry})
    return permissions, snapshot_users


def converge(client, image_id: str, snapshot_ids: t.Iterable[str], permissions: list, share_user_ids: list,
             act: bool, tags: dict | None = None) -> dict:
    """Add what is missing of the sharing to an image and its snapshots, and record it (only reads when act is false).

    tags: the image's tags as last read, for its sharing record (None: the record is left alone).
    Returns what was (or, with act false, would be) added: {"launch_permissions": [...],
    "snapshot_permissions": {snapshot_id: [user IDs]}, "sharing_record": {tag: value}}; all empty when
    nothing changes.
    """
    added: dict = {"launch_permissions": [], "snapshot_permissions": {}, "sharing_record": {}}
    recording = tags is not None
    tags = tags or {}
    has_record = any(is_record_key(key) for key in tags)
    if not permissions and not share_user_ids and not has_record:
        return added
    current = _aws.describe_image_attribute(client, image_id, "launchPermission").get("LaunchPermissions") or []
    to_add = [entry for entry in permissions if entry not in current]
    if to_add:
        added["launch_permissions"] = to_add
        if act:
            _aws.modify_image_attribute(client, image_id, LaunchPermission={"Add": to_add})
    snapshot_ids = list(snapshot_ids)
    accounts = {entry["UserId"] for entry in current + to_add if entry.get("UserId")}
    # the accounts that may make volumes of every snapshot of the image (read only to record them)
    shared_snapshots = set(accounts) if snapshot_ids else set()
    if share_user_ids or (recording and accounts):
        for snapshot_id in snapshot_ids:
            attribute = _aws.describe_snapshot_attribute(client, snapshot_id, "createVolumePermission")
            current_users = {entry.get("UserId") for entry in attribute.get("CreateVolumePermissions") or []}
            users = [user for user in share_user_ids if user not in current_users]
            if users:
                added["snapshot_permissions"][snapshot_id] = users
                if act:
                    _aws.modify_snapshot_attribute(
                        client, snapshot_id, Attribute="createVolumePermission", OperationType="add", UserIds=users,
                    )
            shared_snapshots &= current_users | set(users)
    if recording:
        added["sharing_record"] = _record(client, image_id, tags, record_tags(current + to_add, shared_snapshots), act)
    return added


def _record(client, image_id: str, tags: dict, wanted: dict, act: bool) -> dict:
    """Bring the image's record tags to wanted; the tags set (a removed one with the value "")."""
    have = {key: value for key, value in tags.items() if is_record_key(key)}
    setting = {key: value for key, value in wanted.items() if have.get(key) != value}
    removing = sorted(key for key in have if key not in wanted)
    if act and setting:
        _aws.create_tags(client, [image_id], tag_list(setting))
    if act and removing:
        _aws.delete_tags(client, [image_id], [{"Key": key} for key in removing])
    return dict(setting, **dict.fromkeys(removing, ""))


def changed(added: dict) -> bool:
    return bool(added["launch_permissions"] or added["snapshot_permissions"] or added.get("sharing_record"))


# Image block public access: while a region's setting is block-new-sharing, EC2 refuses to make an
# image public there (images already public stay so).
BPA_BLOCKING = "block-new-sharing"


def is_public(permissions: list) -> bool:
    """Whether the LaunchPermission entries share with everyone (the group all)."""
    return any(entry.get("Group") == "all" for entry in permissions or [])


def check_public_share(clients: dict, regions: t.Iterable[str], option: str = "launch_permissions.group_names") -> None:
    """Raise PublicShareRefused (``errors``: one message per region) if any region refuses a public share."""
    refusals = public_share_refusals(clients, regions, option)
    if refusals:
        raise PublicShareRefused("; ".join(refusals), {"errors": refusals})


def public_share_refusals(clients: dict, regions: t.Iterable[str], option: str = "launch_permissions.group_names") -> list:
    """One message for each region whose image block public access refuses a public share (reads only).

    A region whose API has no GetImageBlockPublicAccessState has no such setting, and passes.
    """
    errors = []
    for region in dict.fromkeys(regions):
        try:
            state = _aws.get_image_block_public_access_state(clients[region])
        except _aws.BakeryAWSError as exc:
            if _aws.unsupported(exc):
                continue
            raise
        if state == BPA_BLOCKING:
            errors.append(
                f"{option}: 'all' would make the image public in {region}, but image block public access "
                f"(ImageBlockPublicAccessState) is {BPA_BLOCKING} there; EC2 refuses new public shares until it is "
                f"turned off (DisableImageBlockPublicAccess in {region}); nothing was changed"
            )
    return errors
