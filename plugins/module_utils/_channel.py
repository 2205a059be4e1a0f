# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The core of bakery.ami.ami_channel: image channels as SSM parameters, the consumer interface of
# the images a bake publishes.
#
# A channel is one SSM parameter per region, named /<prefix>/<family>/<channel>, of DataType
# aws:ec2:image (EC2 checks that the value is an image of that region, and a launch template can
# name it as resolve:ssm:<name>); its value is that region's image ID. SSM keeps every version of
# the parameter (GetParameterHistory); a change also tags the parameter with bakery:previous-image,
# the image ID the change replaced, for whoever reads the channel. A revoke reads the history
# instead: the tag holds one value, which may itself be revoked or gone.
#
# A revoke (bakery.ami.ami_revoke, Revoke below) takes a version out of service: its images are
# tagged bakery:revoked and deprecated, and every channel of the family naming one of them moves
# back to the previous good image of its history; a channel with none refuses the whole revoke.
#
# Flow: build_request() checks every option and raises ChannelError naming the option and the
# rule before any client exists. Channel.run() then reads every region at once (the parameter,
# and the image it should hold: the given ID checked to exist, or the family's image of that
# version found by its tags; either must be available and not deprecated), decides per region, and only when every region was read without a
# problem and outside check mode changes the regions that need it, all at once: PutParameter with
# Overwrite (then AddTagsToResource), or DeleteParameter for state=absent. A region already
# holding the image makes no call that changes anything, so a rerun is changed=false, and check
# mode runs the same reads and returns the same plan.

from __future__ import annotations

import dataclasses
import datetime
import re
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _fanout
from ansible_collections.bakery.ami.plugins.module_utils import _tags
from ansible_collections.bakery.ami.plugins.module_utils import _time
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._images import tags_of

DATA_TYPE = "aws:ec2:image"
DEFAULT_PREFIX = "bakery"
# Channel names: what a consumer types in resolve:ssm:/bakery/web-base/stable.
_CHANNEL = re.compile(r"[a-z0-9_-]{1,64}")
# One component of the prefix: what SSM takes in a parameter path (letters, digits, . - _).
_PREFIX_PART = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# SSM: a parameter name is at most 1011 characters and 15 levels deep.
MAX_NAME = 1011
MAX_DEPTH = 15
# SSM reserves names that start with these (case-insensitive).
_RESERVED = ("aws", "ssm")


class ChannelError(BakeryError):
    """A user-level failure: the message names the option (or region) and the rule; result is the plan."""


@dataclasses.dataclass(frozen=True)
class Request:
    """A checked ami_channel request: build_request held every rule before it was made."""

    prefix: str
    family: str
    channel: str
    name: str
    state: str
    regions: list
    images: dict        # region -> image ID, when given
    version: str | None  # find the family's image of this version, when given


# ---------------------------------------------------------------------------------------------
# Names


def parameter_name(prefix: str, family: str, channel: str) -> str:
    """The channel's parameter: /<prefix>/<family>/<channel>."""
    return f"/{prefix}/{family}/{channel}"


def check_prefix(option: str, value: t.Any) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{option}: must be a non-empty string such as 'bakery', got {_validate.show(value)}"
    parts = value.split("/")
    if value.startswith("/") or value.endswith("/") or any(
            not _validate.full_match(_PREFIX_PART, part) or part in (".", "..") for part in parts):
        return (
            f"{option}: {_validate.show(value)} is not a parameter path prefix: one or more components separated "
            "by '/', each letters, digits, '.', '_' or '-' (not '.' or '..'), without a leading or trailing '/'"
        )
    if parts[0].lower().startswith(_RESERVED):
        return f"{option}: {_validate.show(value)} starts with 'aws' or 'ssm', which SSM reserves for its own parameters"
    if len(parts) + 2 > MAX_DEPTH:
        return f"{option}: {_validate.show(value)} has {len(parts)} levels; SSM allows {MAX_DEPTH} with family and channel"
    return None


def check_family(option: str, value: t.Any) -> str | None:
    """A family as the bakery:family tag takes it (so also one path component, never '.' or '..')."""
    return _validate.family(option, value)


def check_channel(option: str, value: t.Any) -> str | None:
    if _validate.full_match(_CHANNEL, value):
        return None
    return (
        f"{option}: {_validate.show(value)} is not a channel name: 1-64 characters, lowercase letters, digits, "
        "'-' or '_' (no '/', so the parameter stays under the prefix and family)"
    )


def check_version(option: str, value: t.Any) -> str | None:
    """A version as the bakery:version tag holds it, matched literally."""
    if isinstance(value, str) and not value:
        return f"{option}: must not be empty"
    error = _validate.tag_value(option, _tags.VERSION, value)
    if error:
        return error
    special = [char for char in _validate.FILTER_SPECIAL if char in value]
    if special:
        return (
            f"{option}: {_validate.show(value)} holds {' '.join(special)}; versions are matched literally "
            "(EC2 filters read * and ? as wildcards and \\ as an escape)"
        )
    return None


def channel_reference(option: str, value: t.Any) -> tuple:
    """A channel named by a consumer: 'family/channel' or {prefix, family, channel}.

    Returns (parameter name, None) or (None, the message naming the option and the rule).
    """
    prefix: t.Any
    family: t.Any
    channel: t.Any
    if isinstance(value, str):
        parts = value.split("/")
        if len(parts) != 2:
            return None, (
                f"{option}: {_validate.show(value)} is not 'family/channel' (exactly one '/'); for another prefix "
                "give a dictionary with prefix, family and channel"
            )
        prefix, family, channel = DEFAULT_PREFIX, parts[0], parts[1]
    elif isinstance(value, dict):
        unknown = sorted(str(key) for key in value if key not in ("prefix", "family", "channel"))
        if unknown:
            return None, f"{option}: unknown keys {', '.join(unknown)}; the keys are prefix, family and channel"
        prefix = value.get("prefix", DEFAULT_PREFIX)
        family, channel = value.get("family"), value.get("channel")
    else:
        return None, f"{option}: must be 'family/channel' or a dictionary with family, channel and optionally prefix"
    errors = [check_prefix(f"{option}.prefix", prefix), check_family(f"{option}.family", family),
              check_channel(f"{option}.channel", channel)]
    error = next((message for message in errors if message), None)
    if error:
        return None, error
    name = parameter_name(prefix, family, channel)
    if len(name) > MAX_NAME:
        return None, f"{option}: the parameter name is {len(name)} characters long; SSM allows {MAX_NAME}"
    return name, None


# ---------------------------------------------------------------------------------------------
# Options


def build_request(params: dict, default_region: str | None, known: t.Iterable[str] | None = None) -> Request:
    """Every option checked at once; ChannelError lists every problem (no AWS call made)."""
    known_list = sorted(known) if known is not None else None
    errors: list = []
    prefix: t.Any = params.get("prefix", DEFAULT_PREFIX)
    family: t.Any = params.get("family")
    channel: t.Any = params.get("channel")
    state = params.get("state") or "present"
    errors.append(check_prefix("prefix", prefix))
    errors.append(check_family("family", family))
    errors.append(check_channel("channel", channel))
    if state not in ("present", "absent"):
        errors.append(f"state: must be present or absent, got {_validate.show(state)}")

    given_images = params.get("images")
    version = params.get("version")
    regions = params.get("regions")
    images: dict = {}
    if given_images is not None and version is not None:
        errors.append("images: cannot be combined with version; give the image IDs or the version to find")
    if given_images is not None and regions is not None:
        errors.append("regions: cannot be combined with images; the regions are those images names")
    if state == "present" and given_images is None and version is None:
        errors.append("images or version: one of them is required with state=present")
    if state == "absent":
        if given_images is not None or version is not None:
            errors.append("state: absent removes the channel; give neither images nor version")
        if not params.get("allow_empty"):
            errors.append(
                "state: absent would leave the channel empty in every region named; set allow_empty=true to remove it"
            )
    if given_images is not None:
        images = _validate.images_by_region(given_images, known_list, errors)
        regions = list(images)
    else:
        regions = _validate.regions_or_default(regions, default_region, known_list, errors)
    if version is not None:
        errors.append(check_version("version", version))

    errors = [error for error in errors if error]
    if not errors:
        name = parameter_name(prefix, family, channel)
        if len(name) > MAX_NAME:
            errors.append(f"prefix: the parameter name {name[:60]}... is {len(name)} characters; SSM allows {MAX_NAME}")
    if errors:
        raise ChannelError("; ".join(dict.fromkeys(errors)))
    return Request(prefix=prefix, family=family, channel=channel, name=parameter_name(prefix, family, channel),
                   state=state, regions=list(regions), images=images, version=version)


# ---------------------------------------------------------------------------------------------
# The run


class _ReadThenChange(_fanout.ReadThenChange):
    """The channel runs: SSM and EC2 clients of every region, ChannelError."""

    error_class = ChannelError

    def __init__(self, request: t.Any, ssm_clients: dict, ec2_clients: dict, check_mode: bool = False):
        self.request = request
        self.ssm = ssm_clients
        self.ec2 = ec2_clients
        self.check_mode = check_mode


class Channel(_ReadThenChange):
    """Reads every region, then (outside check mode) changes the ones that need it."""

    request: Request

    # Reads ----------------------------------------------------------------------------------

    def wanted_image(self, region: str) -> str:
        """The image ID the channel should hold in the region; ChannelError when there is none."""
        request = self.request
        if request.version is None:
            image_id = request.images[region]
            found = _aws.describe_images(self.ec2[region], ImageIds=[image_id])
            if not found:
                raise ChannelError(f"images: {image_id} does not exist in {region}")
            image = found[0]
            family = tags_of(image).get(_tags.FAMILY)
            if family is not None and family != request.family:
                raise ChannelError(
                    f"images: {image_id} in {region} is of family {_validate.show(family)} (tag {_tags.FAMILY}), "
                    f"not {_validate.show(request.family)}"
                )
        else:
            filters = [{"Name": f"tag:{_tags.FAMILY}", "Values": [request.family]},
                       {"Name": f"tag:{_tags.VERSION}", "Values": [request.version]}]
            found = [image for image in _aws.describe_images(self.ec2[region], Owners=["self"], Filters=filters)
                     if tags_of(image).get(_tags.FAMILY) == request.family
                     and tags_of(image).get(_tags.VERSION) == request.version]
            if not found:
                raise ChannelError(
                    f"version: no image of this account in {region} carries {_tags.FAMILY}={request.family} and "
                    f"{_tags.VERSION}={request.version}"
                )
            if len(found) > 1:
                ids = ", ".join(sorted(image["ImageId"] for image in found))
                raise ChannelError(f"version: {len(found)} images in {region} carry family {request.family} and "
                                   f"version {request.version} ({ids}); a channel names exactly one")
            image = found[0]
            image_id = image["ImageId"]
        option = "version" if request.version is not None else "images"
        if image.get("State") != "available":
            raise ChannelError(f"{option}: {image_id} in {region} is {image.get('State')}, not available; a channel "
                               "names only available images")
        deprecated = _time.parse(image.get("DeprecationTime"))
        if deprecated is not None and deprecated <= _time.now():
            raise ChannelError(f"{option}: {image_id} in {region} is deprecated since {image.get('DeprecationTime')} "
                               "(retired or revoked); a channel names only images in service")
        return image_id

    def read_region(self, region: str) -> dict:
        current = _aws.get_parameter(self.ssm[region], self.request.name)
        before = current.get("Value") if current else None
        if self.request.state == "absent":
            return {"name": self.request.name, "before": before, "after": None, "changed": before is not None}
        after = self.wanted_image(region)
        data_type = current.get("DataType") if current else None
        changed = before != after or data_type != DATA_TYPE
        return {"name": self.request.name, "before": before, "after": after, "changed": changed}

    # Changes --------------------------------------------------------------------------------

    def change_region(self, region: str, plan: dict) -> dict:
        client = self.ssm[region]
        if self.request.state == "absent":
            _aws.delete_parameter(client, plan["name"])
            return {}
        answer = _aws.put_parameter(
            client, Name=plan["name"], Value=plan["after"], Type="String", DataType=DATA_TYPE, Overwrite=True,
            Description=f"bakery.ami image channel {self.request.family}/{self.request.channel}",
        )
        if plan["before"] is not None and plan["before"] != plan["after"]:
            _aws.add_parameter_tags(client, plan["name"], {_tags.PREVIOUS_IMAGE: plan["before"]})
        return {"version": answer.get("Version")}

    def failed_change(self, done: dict, plans: dict) -> tuple:
        for plan in plans.values():
            if "error" in plan:
                plan["changed"] = False
        changed_regions = sorted(done)
        return (f"; changed: {', '.join(changed_regions)}" if changed_regions else "; nothing was changed"), None

    def _result(self, plans: dict, changed: bool | None = None) -> dict:
        if changed is None:
            changed = any(plan["changed"] for plan in plans.values())
        return {
            "changed": changed,
            "name": self.request.name,
            "channels": plans,
            "diff": {
                "before": {region: plan["before"] for region, plan in plans.items()},
                "after": {region: plan["after"] if plan["changed"] else plan["before"] for region, plan in plans.items()},
            },
        }


# ---------------------------------------------------------------------------------------------
# Revoke: a version taken out of service, and every channel on it moved back
#
# build_revoke_request() checks the options before any client exists. Revoke.run() reads every
# region at once: the version's images (found by their bakery:family and bakery:version tags),
# every channel parameter directly under /<prefix>/<family>/, and for each channel naming one of
# those images its history, newest first, to find the previous good image: the latest earlier value
# that still exists, is available, is not deprecated, carries no bakery:revoked tag, belongs to the
# family and is not an image of the version revoked. A channel without one refuses the whole run
# before any change anywhere (a channel is never left empty or on the revoked image). Only then,
# outside check mode, every region that needs it is changed at once: each channel is overwritten
# with its previous good image (and tagged bakery:previous-image with the revoked one), then the
# version's images are tagged bakery:revoked=true and deprecated as soon as EC2 takes it.
# What is already done (tag, deprecation, channel moved) is not done again: a rerun is
# changed=false, and check mode returns the plan of the real run.

REVOKED_VALUE = "true"


@dataclasses.dataclass(frozen=True)
class RevokeRequest:
    """A checked ami_revoke request: build_revoke_request held every rule before it was made."""

    prefix: str
    family: str
    version: str
    regions: list
    path: str           # /<prefix>/<family>: the channels of the family are directly under it


def build_revoke_request(params: dict, default_region: str | None, known: t.Iterable[str] | None = None) -> RevokeRequest:
    """Every option checked at once; ChannelError lists every problem (no AWS call made)."""
    known_list = sorted(known) if known is not None else None
    errors: list = []
    prefix: t.Any = params.get("prefix", DEFAULT_PREFIX)
    family: t.Any = params.get("family")
    version: t.Any = params.get("version")
    errors.append(check_prefix("prefix", prefix))
    errors.append(check_family("family", family))
    if version is None:
        errors.append("version: required; the bakery:version of the images to revoke")
    else:
        errors.append(check_version("version", version))
    regions = _validate.regions_or_default(params.get("regions"), default_region, known_list, errors)
    errors = [error for error in errors if error]
    if errors:
        raise ChannelError("; ".join(dict.fromkeys(errors)))
    return RevokeRequest(prefix=prefix, family=family, version=version, regions=regions, path=f"/{prefix}/{family}")


def revoke_deprecation_time(now: datetime.datetime) -> datetime.datetime:
    """The earliest deprecation time EC2 takes now: the start of a minute at least 30 s ahead.

    EC2 rounds DeprecateAt to the nearest minute and refuses a time in the past (as ami_prune does).
    """
    return _time.next_minute(now + datetime.timedelta(seconds=30))


def why_not_good(image: dict | None, image_id: str, family: str, revoked_ids: t.Collection, now) -> str | None:
    """Why image_id cannot be a channel's previous good image; None when it can."""
    if image_id in revoked_ids:
        return "an image of the version revoked"
    if image is None:
        return "does not exist"
    tags = tags_of(image)
    if tags.get(_tags.REVOKED) == REVOKED_VALUE:
        return f"tagged {_tags.REVOKED}={REVOKED_VALUE}"
    if image.get("State") != "available":
        return f"is {image.get('State')}"
    deprecated = _time.parse(image.get("DeprecationTime"))
    if deprecated is not None and deprecated <= now:
        return f"deprecated since {image.get('DeprecationTime')}"
    if tags.get(_tags.FAMILY, family) != family:
        return f"of family {tags.get(_tags.FAMILY)}"
    return None


def earlier_values(history: list) -> list:
    """A parameter's earlier image IDs, newest first, each once; history as GetParameterHistory
    returns it (oldest first). The newest entry is the parameter's current value and is left out."""
    ordered = sorted(history, key=lambda item: item.get("Version", 0))[:-1]
    values: list = []
    for item in reversed(ordered):
        value = item.get("Value")
        if _validate.resource_id("", value, "image") is None and value not in values:
            values.append(value)
    return values


def choose_previous(candidates: list, images: dict, family: str, revoked_ids: t.Collection, now) -> tuple:
    """The first good image of candidates (newest first): (image ID or None, [(image ID, why skipped)])."""
    skipped: list = []
    for image_id in candidates:
        why = why_not_good(images.get(image_id), image_id, family, revoked_ids, now)
        if why is None:
            return image_id, skipped
        skipped.append((image_id, why))
    return None, skipped


class Revoke(_ReadThenChange):
    """Reads every region, refuses if a channel would be left without a good image, then changes."""

    request: RevokeRequest

    def __init__(self, request: RevokeRequest, ssm_clients: dict, ec2_clients: dict, check_mode: bool = False):
        super().__init__(request, ssm_clients, ec2_clients, check_mode)
        self.now = _time.now()
        self.deprecate_at = revoke_deprecation_time(self.now)

    # Reads ----------------------------------------------------------------------------------

    def version_images(self, region: str) -> list:
        request = self.request
        filters = [{"Name": f"tag:{_tags.FAMILY}", "Values": [request.family]},
                   {"Name": f"tag:{_tags.VERSION}", "Values": [request.version]}]
        found = [image for image in _aws.describe_images(self.ec2[region], Owners=["self"], Filters=filters,
                                                         IncludeDeprecated=True)
                 if tags_of(image).get(_tags.FAMILY) == request.family
                 and tags_of(image).get(_tags.VERSION) == request.version]
        if not found:
            raise ChannelError(
                f"version: no image of this account in {region} carries {_tags.FAMILY}={request.family} and "
                f"{_tags.VERSION}={request.version}"
            )
        return sorted(found, key=lambda image: image["ImageId"])

    def previous_good(self, region: str, name: str, revoked_ids: t.Collection) -> tuple:
        candidates = earlier_values(_aws.get_parameter_history(self.ssm[region], name))
        images: dict = {}
        if candidates:
            found = _aws.describe_images(self.ec2[region], Filters=[{"Name": "image-id", "Values": candidates}],
                                         IncludeDeprecated=True)
            images = {image["ImageId"]: image for image in found}
        return choose_previous(candidates, images, self.request.family, revoked_ids, self.now)

    def read_region(self, region: str) -> dict:
        images = self.version_images(region)
        revoked_ids = [image["ImageId"] for image in images]
        image_plans = []
        for image in images:
            current = _time.parse(image.get("DeprecationTime"))
            deprecate = current is None or current > self.deprecate_at
            image_plans.append({
                "image_id": image["ImageId"],
                "tag": tags_of(image).get(_tags.REVOKED) != REVOKED_VALUE,
                "deprecate": deprecate,
                "deprecation_time": _time.iso(self.deprecate_at if deprecate else current),
            })
        channels: dict = {}
        refused: list = []
        parameters = _aws.get_parameters_by_path(self.ssm[region], self.request.path)
        for parameter in sorted(parameters, key=lambda item: item["Name"]):
            if parameter.get("Value") not in revoked_ids:
                continue
            name = parameter["Name"]
            previous, skipped = self.previous_good(region, name, revoked_ids)
            if previous is None:
                seen = ", ".join(f"{image_id} ({why})" for image_id, why in skipped) or "no earlier value"
                refused.append(
                    f"{region}: the channel {name} names {parameter['Value']} and its history holds no earlier good "
                    f"image to move back to ({seen}); revoking would leave it empty or on the revoked image"
                )
                continue
            channels[name] = {"before": parameter["Value"], "after": previous, "changed": True}
        if refused:
            raise ChannelError("; ".join(refused))
        changed = bool(channels) or any(plan["tag"] or plan["deprecate"] for plan in image_plans)
        return {"images": image_plans, "channels": channels, "changed": changed}

    # Changes --------------------------------------------------------------------------------

    def change_region(self, region: str, plan: dict) -> dict:
        ssm, ec2 = self.ssm[region], self.ec2[region]
        for name, channel in plan["channels"].items():
            answer = _aws.put_parameter(
                ssm, Name=name, Value=channel["after"], Type="String", DataType=DATA_TYPE, Overwrite=True,
                Description=f"bakery.ami image channel {self.request.family}/{name.rsplit('/', 1)[-1]}",
            )
            _aws.add_parameter_tags(ssm, name, {_tags.PREVIOUS_IMAGE: channel["before"]})
            channel["version"] = answer.get("Version")
        to_tag = [image["image_id"] for image in plan["images"] if image["tag"]]
        if to_tag:
            _aws.create_tags(ec2, to_tag, [{"Key": _tags.REVOKED, "Value": REVOKED_VALUE}])
        for image in plan["images"]:
            if image["deprecate"]:
                _aws.enable_image_deprecation(ec2, image["image_id"], self.deprecate_at)
        return plan

    def failed_change(self, done: dict, plans: dict) -> tuple:
        return "; rerun to finish (what is done is not done again)", bool(done)

    def _result(self, plans: dict, changed: bool | None = None) -> dict:
        if changed is None:
            changed = any(plan["changed"] for plan in plans.values())
        return {
            "changed": changed,
            "family": self.request.family,
            "version": self.request.version,
            "regions": plans,
            "diff": {
                "before": {region: {name: channel["before"] for name, channel in plan["channels"].items()}
                           for region, plan in plans.items()},
                "after": {region: {name: channel["after"] for name, channel in plan["channels"].items()}
                          for region, plan in plans.items()},
            },
        }
