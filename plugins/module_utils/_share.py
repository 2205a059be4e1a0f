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

from __future__ import annotations

import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError


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


def converge(client, image_id: str, snapshot_ids: t.Iterable[str], permissions: list, share_user_ids: list,
             act: bool) -> dict:
    """Add what is missing of the sharing to an image and its snapshots (only reads when act is false).

    Returns what was (or, with act false, would be) added: {"launch_permissions": [...],
    "snapshot_permissions": {snapshot_id: [user IDs]}}; both empty when nothing changes.
    """
    added: dict = {"launch_permissions": [], "snapshot_permissions": {}}
    if permissions:
        current = _aws.describe_image_attribute(client, image_id, "launchPermission").get("LaunchPermissions") or []
        to_add = [entry for entry in permissions if entry not in current]
        if to_add:
            added["launch_permissions"] = to_add
            if act:
                _aws.modify_image_attribute(client, image_id, LaunchPermission={"Add": to_add})
    if share_user_ids:
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
    return added


def changed(added: dict) -> bool:
    return bool(added["launch_permissions"] or added["snapshot_permissions"])


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
