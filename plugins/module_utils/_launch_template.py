# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The core of bakery.ami.ami_launch_template: a new launch template version per region that uses
# a bake's image, and its removal (the rollback of a failed bake, through ami_cleanup too).
#
# Launch template versions carry no tags, so the versions this collection makes are known by a
# marker at the end of their VersionDescription:
#
#     <description> [bakery.ami image=ami-0123456789abcdef0 run=20301231-abcd1234 default-was=4]
#
# image: the image the version launches; run: the bake run that made it (when given); default-was:
# the template's default version when the version was made, so that removing a version that had
# become the default puts the earlier default back. A removal selects only versions with a marker
# (by image, by run, or both) and never touches a version someone else made.
#
# Flow: build_request() checks every option and raises LaunchTemplateError naming the option and
# the rule before any client exists. LaunchTemplates.run() reads every region at once (the
# template, by name or ID: a template that does not exist fails naming launch_template; its latest
# and default versions; with state=absent every version) and decides per region; only when every
# region was read without a problem, and outside check mode, it changes the regions that need it,
# at once. Present: when the latest version (with set_default, the default version) already
# launches the image nothing is made (changed=false); with set_default and the latest version on
# the image, only the default moves; otherwise CreateLaunchTemplateVersion from source_version
# with the new ImageId and the marker, then (set_default) ModifyLaunchTemplate. Absent: the
# default is moved first when it is one of the versions removed (to the version its marker names,
# or the newest version left), then DeleteLaunchTemplateVersions; a version already gone counts
# as removed. Check mode makes the same reads and returns the same plan.

from __future__ import annotations

import dataclasses
import re
import typing as t
import uuid

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _fanout
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

# EC2: a launch template name is 3-128 of these characters; an ID is lt- and 17 (or 8) hex digits.
_NAME = re.compile(r"[A-Za-z0-9().\-/_]{3,128}")
_ID = re.compile(r"lt-([0-9a-f]{8}|[0-9a-f]{17})")
_SOURCE = re.compile(r"\$Latest|\$Default|[1-9][0-9]{0,17}")
MARKER = re.compile(
    r"\[bakery\.ami image=(?P<image>" + _validate.IMAGE_ID + r")(?: run=(?P<run>[A-Za-z0-9-]{6,64}))?"
    r" default-was=(?P<default>[0-9]{1,18})\]\Z"
)
# EC2 takes a VersionDescription of up to 255 characters; the marker takes at most 130 of them.
MAX_DESCRIPTION = 100
DELETE_BATCH = 200
_GONE = "launchTemplateVersionDoesNotExist"


class LaunchTemplateError(BakeryError):
    """A user-level failure: the message names the option (or region) and the rule; result is the plan."""


@dataclasses.dataclass(frozen=True)
class Request:
    """A checked ami_launch_template request: build_request held every rule before it was made."""

    template: str
    by_id: bool
    state: str
    regions: list
    images: dict          # region -> image ID (may be empty with state=absent and run_id)
    set_default: bool
    source_version: str
    description: str
    run_id: str | None


# ---------------------------------------------------------------------------------------------
# Options


def check_template(option: str, value: t.Any) -> str | None:
    if _validate.full_match(_ID, value) or _validate.full_match(_NAME, value):
        return None
    return (
        f"{option}: {_validate.show(value)} is neither a launch template ID (lt- and 17 hex digits) nor a launch "
        "template name (3-128 letters, digits and ( ) . - / _)"
    )


def by_id(value: t.Any) -> bool:
    """Whether a valid launch_template value is an ID (lt-...) rather than a name."""
    return _validate.full_match(_ID, value)


def marker(image_id: str, run_id: str | None, default_was: int) -> str:
    run = f" run={run_id}" if run_id else ""
    return f"[bakery.ami image={image_id}{run} default-was={default_was}]"


def version_description(description: str, image_id: str, run_id: str | None, default_was: int) -> str:
    tail = marker(image_id, run_id, default_was)
    return f"{description} {tail}" if description else tail


def parse_marker(description: t.Any) -> dict | None:
    """{image, run, default} of a version this collection made; None for any other version."""
    if not isinstance(description, str):
        return None
    found = MARKER.search(description)
    if found is None:
        return None
    return {"image": found["image"], "run": found["run"], "default": int(found["default"])}


def build_request(params: dict, default_region: str | None, known: t.Iterable[str] | None = None) -> Request:
    """Every option checked at once; LaunchTemplateError lists every problem (no AWS call made)."""
    known_list = sorted(known) if known is not None else None
    errors: list = []
    template: t.Any = params.get("launch_template")
    state = params.get("state") or "present"
    errors.append(check_template("launch_template", template))
    if state not in ("present", "absent"):
        errors.append(f"state: must be present or absent, got {_validate.show(state)}")
    image_id = params.get("image_id")
    given_images = params.get("images")
    regions = params.get("regions")
    run_id = params.get("run_id")
    source = params.get("source_version")
    source = "$Latest" if source is None else source
    description = params.get("description") or ""
    if run_id is not None:
        errors.append(_validate.run_id("run_id", run_id))
    if not _validate.full_match(_SOURCE, source):
        errors.append(f"source_version: {_validate.show(source)} is not $Latest, $Default or a version number")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION or any(
            ord(char) < 32 or ord(char) == 127 for char in description):
        errors.append(f"description: must be at most {MAX_DESCRIPTION} characters without control characters "
                      f"(the version description also holds the bakery.ami marker), got {_validate.show(description)}")
    if image_id is not None and given_images is not None:
        errors.append("image_id: cannot be combined with images; give one image ID, or one per region")
    if given_images is not None and regions is not None:
        errors.append("regions: cannot be combined with images; the regions are those images names")
    if state == "present" and image_id is None and given_images is None:
        errors.append("image_id or images: one of them is required with state=present")
    if state == "absent" and image_id is None and given_images is None and run_id is None:
        errors.append("state: absent removes the versions made for an image or by a run; give image_id, images or run_id")
    images: dict = {}
    if given_images is not None:
        images = _validate.images_by_region(given_images, known_list, errors)
        regions = list(images)
    else:
        regions = _validate.regions_or_default(regions, default_region, known_list, errors)
        if image_id is not None:
            error = _validate.resource_id("image_id", image_id, "image")
            errors.append(error)
            if error is None:
                images = {region: image_id for region in regions}
    errors = [error for error in errors if error]
    if errors:
        raise LaunchTemplateError("; ".join(dict.fromkeys(errors)))
    return Request(template=template, by_id=_validate.full_match(_ID, template), state=state, regions=list(regions),
                   images=images, set_default=bool(params.get("set_default")), source_version=source,
                   description=description, run_id=run_id)


# ---------------------------------------------------------------------------------------------
# Reads shared with ami_cleanup


def find_template(client, request_template: str, by_id: bool) -> dict | None:
    """The launch template by ID or name, or None when it does not exist in the client's region."""
    key = "LaunchTemplateIds" if by_id else "LaunchTemplateNames"
    found = _aws.find_launch_templates(client, **{key: [request_template]})
    return found[0] if found else None


def _image_of(version: dict) -> str | None:
    return (version.get("LaunchTemplateData") or {}).get("ImageId")


def removal_plan(versions: list, default_number: int, selected: t.Callable[[dict], bool]) -> dict:
    """Which versions go and where the default moves: {delete: [numbers], default_before, default_after}.

    Raises LaunchTemplateError when every version would go (a template keeps its default version).
    """
    markers = {version["VersionNumber"]: parse_marker(version.get("VersionDescription")) for version in versions}
    delete = sorted(number for number, mark in markers.items() if mark is not None and selected(mark))
    after = default_number
    if default_number in delete:
        left = sorted(set(markers) - set(delete))
        if not left:
            raise LaunchTemplateError(
                "launch_template: every version of the template would be removed; a launch template keeps at "
                "least its default version (delete the template itself instead)"
            )
        target: t.Any = default_number
        seen: set = set()
        # follow default-was back past versions that go too
        while target in delete and target not in seen:
            seen.add(target)
            mark = markers.get(target)
            target = mark["default"] if mark else None
        after = target if target in left else left[-1]
    return {"delete": delete, "default_before": default_number, "default_after": after}


def apply_removal(client, template_id: str, plan: dict) -> list:
    """Move the default (when it goes), then delete; returns the numbers deleted (or already gone)."""
    if plan["default_after"] != plan["default_before"]:
        _aws.modify_launch_template(client, LaunchTemplateId=template_id, DefaultVersion=str(plan["default_after"]))
    deleted: list = []
    problems: list = []
    numbers = [str(number) for number in plan["delete"]]
    for start in range(0, len(numbers), DELETE_BATCH):
        answer = _aws.delete_launch_template_versions(client, LaunchTemplateId=template_id,
                                                      Versions=numbers[start:start + DELETE_BATCH])
        deleted.extend(item["VersionNumber"] for item in answer.get("SuccessfullyDeletedLaunchTemplateVersions") or [])
        for item in answer.get("UnsuccessfullyDeletedLaunchTemplateVersions") or []:
            error = item.get("ResponseError") or {}
            if error.get("Code") == _GONE:
                deleted.append(item.get("VersionNumber"))
            else:
                problems.append(f"version {item.get('VersionNumber')}: {error.get('Code')}: {error.get('Message')}")
    if problems:
        error = _aws.BakeryAWSError(
            message=f"Failed to delete launch template versions of {template_id}: " + "; ".join(problems))
        raise error
    return sorted(deleted)


def all_versions(client, template_id: str) -> list:
    return _aws.describe_launch_template_versions(client, LaunchTemplateId=template_id)


def remove_run_versions(client, template: str, run_id: str, check_mode: bool = False) -> dict | None:
    """ami_cleanup: the versions run_id made of one template in one region, removed (the default
    restored first). None when the template does not exist there; else {template_id, deleted,
    default_before, default_after}."""
    found = find_template(client, template, _validate.full_match(_ID, template))
    if found is None:
        return None
    template_id = found["LaunchTemplateId"]
    plan = removal_plan(all_versions(client, template_id), found["DefaultVersionNumber"],
                        lambda mark: mark["run"] == run_id)
    result = dict(plan, template_id=template_id, deleted=list(plan["delete"]))
    if plan["delete"] and not check_mode:
        result["deleted"] = apply_removal(client, template_id, plan)
    return result


# ---------------------------------------------------------------------------------------------
# The run


class LaunchTemplates(_fanout.ReadThenChange):
    """Reads every region, then (outside check mode) changes the ones that need it."""

    error_class = LaunchTemplateError

    def __init__(self, request: Request, clients: dict, check_mode: bool = False) -> None:
        self.request = request
        self.clients = clients
        self.check_mode = check_mode

    # Reads ----------------------------------------------------------------------------------

    def template(self, region: str) -> dict:
        found = find_template(self.clients[region], self.request.template, self.request.by_id)
        if found is None:
            kind = "ID" if self.request.by_id else "name"
            raise LaunchTemplateError(
                f"launch_template: no launch template with the {kind} {_validate.show(self.request.template)} in "
                f"{region}; this module adds versions to a template that exists, it does not create one"
            )
        return found

    def version(self, region: str, template_id: str, number: str, option: str) -> dict:
        try:
            found = _aws.describe_launch_template_versions(self.clients[region], LaunchTemplateId=template_id,
                                                           Versions=[number])
        except _aws.BakeryAWSError as e:
            if e.code and "VersionNotFound" in e.code:
                found = []
            else:
                raise
        if not found:
            raise LaunchTemplateError(
                f"{option}: version {number} of launch template {self.request.template} does not exist in {region}")
        return found[0]

    def read_region(self, region: str) -> dict:
        request = self.request
        found = self.template(region)
        template_id = found["LaunchTemplateId"]
        plan: dict = {"launch_template_id": template_id, "launch_template_name": found.get("LaunchTemplateName")}
        if request.state == "absent":
            image = request.images.get(region)

            def selected(mark: dict) -> bool:
                return ((image is None or mark["image"] == image)
                        and (request.run_id is None or mark["run"] == request.run_id))

            try:
                removal = removal_plan(all_versions(self.clients[region], template_id),
                                       found["DefaultVersionNumber"], selected)
            except LaunchTemplateError as e:
                raise LaunchTemplateError(f"{e.msg} ({region})") from None
            plan.update(removal, changed=bool(removal["delete"]))
            return plan
        latest = self.version(region, template_id, "$Latest", "launch_template")
        default = self.version(region, template_id, "$Default", "launch_template")
        source = request.source_version
        if source == "$Latest":
            source_number = latest["VersionNumber"]
        elif source == "$Default":
            source_number = default["VersionNumber"]
        else:
            source_number = self.version(region, template_id, source, "source_version")["VersionNumber"]
        image = request.images[region]
        watched = default if request.set_default else latest
        plan.update({
            "image_id": image,
            "before": {"latest_version": latest["VersionNumber"], "default_version": default["VersionNumber"],
                       "image_id": _image_of(watched)},
            "source_version": source_number,
        })
        if _image_of(watched) == image:
            action, version = "none", watched["VersionNumber"]
        elif request.set_default and _image_of(latest) == image:
            action, version = "set_default", latest["VersionNumber"]
        else:
            action, version = "create", None
        plan.update({
            "action": action,
            "version": version,
            "set_default": request.set_default,
            "version_description": version_description(request.description, image, request.run_id,
                                                       default["VersionNumber"]),
            "changed": action != "none",
        })
        return plan

    # Changes --------------------------------------------------------------------------------

    def change_region(self, region: str, plan: dict) -> dict:
        client = self.clients[region]
        template_id = plan["launch_template_id"]
        if self.request.state == "absent":
            return {"deleted": apply_removal(client, template_id, plan)}
        done: dict = {}
        version = plan["version"]
        if plan["action"] == "create":
            # one token per change: a retry after a lost answer gets the version made, not a second one
            made = _aws.create_launch_template_version(
                client, LaunchTemplateId=template_id, SourceVersion=str(plan["source_version"]),
                ClientToken=f"bakery-{uuid.uuid4()}",
                VersionDescription=plan["version_description"], LaunchTemplateData={"ImageId": plan["image_id"]},
            )
            version = made["VersionNumber"]
            done.update(version=version, created=True)
        if self.request.set_default:
            _aws.modify_launch_template(client, LaunchTemplateId=template_id, DefaultVersion=str(version))
            done["default_set"] = True
        return done

    # The whole run --------------------------------------------------------------------------

    def failed_change(self, done: dict, plans: dict) -> tuple:
        for plan in plans.values():
            if "error" in plan:
                plan["changed"] = False
        changed_regions = sorted(done)
        return (f"; changed: {', '.join(changed_regions)}" if changed_regions else "; nothing was changed"), bool(done)

    def _result(self, plans: dict, changed: bool | None = None) -> dict:
        if changed is None:
            changed = any(plan["changed"] for plan in plans.values())
        before: dict
        after: dict
        if self.request.state == "absent":
            before = {region: {"default_version": plan.get("default_before"), "removed": []}
                      for region, plan in plans.items()}
            after = {region: {"default_version": plan.get("default_after"), "removed": plan.get("delete", [])}
                     for region, plan in plans.items()}
        else:
            before = {region: plan.get("before") for region, plan in plans.items()}
            after = {region: _after(plan) for region, plan in plans.items()}
        return {
            "changed": changed,
            "launch_template": self.request.template,
            "regions": plans,
            "diff": {"before": before, "after": after},
        }


def _after(plan: dict) -> dict | None:
    before = plan.get("before")
    if before is None:
        return None
    after = dict(before)
    if plan.get("changed"):
        version = plan.get("version") or "(new)"
        after["image_id"] = plan["image_id"]
        if plan["action"] == "create":
            after["latest_version"] = version
        if plan.get("set_default"):
            after["default_version"] = version
    return after
