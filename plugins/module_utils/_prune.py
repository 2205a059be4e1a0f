# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The core of bakery.ami.ami_prune: the keep-N / age / deprecation lifecycle of image families.
#
# Selection. The images of this account that carry the selected tags (family is the tag
# bakery:family) are read with one DescribeImages per region, filtered server-side by the exact
# values; tag values holding * ? or \ are refused up front (an EC2 filter reads them as
# wildcards and escapes, and {bakery:family: "*"} would select every family). Every image the
# server returns is compared again with the selected tags before anything is decided: one that
# does not carry them exactly is `ignored` and never touched.
#
# Keep rules apply per family: the selected images of a region are grouped by their
# bakery:family value and each group is ranked on its own. An image without the tag is kept
# unless prune_without_family is true (then those images form one group of their own).
#
# Per group, images are ranked newest first (CreationDate, then ImageId). An image is kept, with
# the reason, when it is
#   the newest available image | tagged bakery:keep=true | in use by a pending, running,
#   stopping or stopped instance | among the keep_latest newest | not available (pending,
#   failed) | of unreadable creation date;
# every other image is superseded. A superseded image older than keep_days (or any, without
# keep_days) is deregistered when deregister is true and keep_latest or keep_days is set (with
# deprecate_after_days alone nothing is deregistered), and its snapshots deleted when
# delete_snapshots is true and no other image of the account uses them. A superseded image that
# stays gets a DeprecationTime of CreationDate + deprecate_after_days (never earlier than the
# next minute) when that option is set and it has no earlier one.
#
# Deletion limits. Before any change (and in check mode, which predicts the real run) the plan
# of every region is checked: without max_deletions a run deregisters at most
# DEFAULT_MAX_DELETIONS images in all, and at most half of any family's images in a region;
# with max_deletions, at most that many images in all. A plan over the limit fails, listing what
# it would deregister.
#
# plan_region() and check_limits() are pure (images, instances, clock in; decisions out) so the
# policy is unit tested without AWS; Pruner does the calls, all reads first, then the changes,
# one thread per region.

from __future__ import annotations

import dataclasses
import datetime

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _fanout
from ansible_collections.bakery.ami.plugins.module_utils import _protect
from ansible_collections.bakery.ami.plugins.module_utils import _share
from ansible_collections.bakery.ami.plugins.module_utils import _tags as _tag_names
from ansible_collections.bakery.ami.plugins.module_utils import _time
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._images import snapshot_ids
from ansible_collections.bakery.ami.plugins.module_utils._images import tags_of as _tags

FAMILY_TAG = "bakery:family"
KEEP_TAG = "bakery:keep"
VERSION_TAG = "bakery:version"
RESTORED_TAG = _tag_names.RESTORED_AT
# Every state but terminated: an instance that can still be started (or is going) holds its image.
IN_USE_STATES = ("pending", "running", "shutting-down", "stopping", "stopped")
PROTECTION_OFF = _protect.OFF
PROTECTION_COOLDOWN = _protect.COOLDOWN
COOLING_PREFIX = "disabled-after-"
# DescribeImageReferences takes at most 10 image IDs a call; GetParameters 10 names.
REFERENCE_CHUNK = 10
PARAMETER_CHUNK = 10
RBIN_TYPE = "EC2_IMAGE"
RBIN_MAX_DAYS = 365
# What a listing of Recycle Bin rules answers without the permission (reported, not fatal).
RBIN_DENIED = ("AccessDeniedException", "UnauthorizedOperation", "AccessDenied")
# DescribeInstances takes at most 200 values per filter.
FILTER_CHUNK = 200
# Without max_deletions: at most this many images deregistered in one run (all regions and
# families together), and at most this share of one family's images in one region.
DEFAULT_MAX_DELETIONS = 10
MAX_FAMILY_SHARE = 0.5
# How many images a limit message lists before it abbreviates.
LISTED = 20


class PruneError(BakeryError):
    """A user-level failure: the message names the option and the rule; result is what was planned."""


@dataclasses.dataclass(frozen=True)
class PruneRequest:
    """A checked ami_prune request: build_request held every rule before it was made."""

    family: str | None = None
    tags: dict | None = None
    regions: tuple[str, ...] = ()
    state: str = "present"
    version: str | None = None
    keep_latest: int | None = None
    keep_days: int | None = None
    deprecate_after_days: int | None = None
    disable_after_days: int | None = None
    deregister_after_days: int | None = None
    deprecate_after_count: int | None = None
    disable_after_count: int | None = None
    deregister_after_count: int | None = None
    deregister: bool = True
    delete_snapshots: bool = True
    protect_in_use: bool = True
    lift_protection: bool = False
    keep_launched_within_days: int | None = None
    include_shared: bool = False
    required: bool = False
    max_deletions: int | None = None
    prune_without_family: bool = False
    recycle_bin_check: bool = True
    recycle_bin_retention_days: int | None = None
    reshare: bool = True

    @property
    def restoring(self) -> bool:
        return self.state == "restored"


def build_request(params: dict, default_region: str | None = None) -> PruneRequest:
    """Check every option of ami_prune and return the request; raises PruneError listing every problem
    (``errors`` in its result), before any API call. regions defaults to [default_region]."""
    errors = validate(params)
    regions = params.get("regions") or [default_region]
    if not errors and (not regions or not regions[0]):
        errors.append("regions: give the regions to prune in, or set the module's region")
    if errors:
        raise PruneError("; ".join(errors), {"errors": errors})
    given = {field.name: params[field.name] for field in dataclasses.fields(PruneRequest)
             if params.get(field.name) is not None and field.name not in ("regions", "tags")}
    return PruneRequest(regions=tuple(regions), tags=dict(params["tags"]) if params.get("tags") else None, **given)


def validate(params: dict) -> list:
    """Every problem with the options, found without any API call."""
    errors = []
    family = params.get("family")
    tags = params.get("tags")
    if family is None and not tags:
        errors.append("family or tags: one of them is required to select the images")
    if family is not None:
        errors.append(_validate.family("family", family))
    errors.append(_validate.literal_tags("tags", tags))
    if isinstance(tags, dict) and family is not None and FAMILY_TAG in tags and tags[FAMILY_TAG] != family:
        errors.append(
            f"tags: the tag {FAMILY_TAG} is {_validate.show(tags[FAMILY_TAG])} but family is "
            f"{_validate.show(family)}; set only family"
        )
    keep_latest = params.get("keep_latest")
    keep_days = params.get("keep_days")
    restoring = (params.get("state") or "present") == "restored"
    if restoring:
        errors.extend(_restore_errors(params))
    elif all(params.get(key) is None for key in POLICY_OPTIONS):
        errors.append(f"{', '.join(POLICY_OPTIONS[:-1])} or {POLICY_OPTIONS[-1]}: at least one of them is required")
    if keep_latest is not None and (isinstance(keep_latest, bool) or not isinstance(keep_latest, int) or keep_latest < 1):
        errors.append(f"keep_latest: must be at least 1 (the newest image is always kept), got {keep_latest!r}")
    if keep_days is not None:
        errors.append(_validate.days("keep_days", keep_days))
    deprecate_after_days = params.get("deprecate_after_days")
    if deprecate_after_days is not None:
        errors.append(_validate.days("deprecate_after_days", deprecate_after_days))
    errors.extend(_stage_errors(params))
    errors.extend(_recycle_bin_errors(params))
    max_deletions = params.get("max_deletions")
    if max_deletions is not None and (
        isinstance(max_deletions, bool) or not isinstance(max_deletions, int) or not 0 <= max_deletions <= 100000
    ):
        errors.append(f"max_deletions: must be a whole number of images from 0 to 100000, got {max_deletions!r}")
    regions = params.get("regions") or []
    for region in regions:
        errors.append(_validate.region_name("regions", region))
    if len(set(regions)) != len(regions):
        errors.append("regions: a region appears more than once")
    return [error for error in errors if error]


POLICY_OPTIONS = ("keep_latest", "keep_days", "deprecate_after_days", "disable_after_days", "deregister_after_days",
                  "deprecate_after_count", "disable_after_count", "deregister_after_count")
COUNTS = ("deprecate_after_count", "disable_after_count", "deregister_after_count")
MAX_COUNT = 100000
# The stages in the order an image goes through them; each age must be at least the one before.
STAGES = ("deprecate_after_days", "disable_after_days", "deregister_after_days")


def _stage_errors(params: dict) -> list:
    """The staged retirement options: each a count of days, in the order deprecate, disable, deregister."""
    errors = []
    for key in ("disable_after_days", "deregister_after_days", "keep_launched_within_days"):
        if params.get(key) is not None:
            errors.append(_validate.days(key, params[key]))
    if params.get("keep_days") is not None and params.get("deregister_after_days") is not None:
        errors.append(
            "keep_days and deregister_after_days: both are the age at which a superseded image is deregistered; "
            "set only deregister_after_days"
        )
    for key in ("deregister_after_days", "deregister_after_count"):
        if params.get(key) is not None and params.get("deregister") is False:
            errors.append(f"{key}: deregister is false, so no image would ever be deregistered; drop one of them")
    counts = []
    for key in COUNTS:
        value = params.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
            errors.append(f"{key}: must be a whole number of images from 1 to {MAX_COUNT}, got {value!r}")
        else:
            counts.append((key, value))
    for (earlier, first), (later, second) in zip(counts, counts[1:]):
        if second < first:
            errors.append(
                f"{later}: {second} images is fewer than {earlier} ({first}); an image is deprecated, then disabled, "
                f"then deregistered, so each count must be at least the one before"
            )
    ages = {key: params.get(key) for key in STAGES}
    if ages["deregister_after_days"] is None:
        ages["deregister_after_days"] = params.get("keep_days")
    given = [(key, value) for key, value in ages.items()
             if isinstance(value, int) and not isinstance(value, bool) and value >= 0]
    for (earlier, first), (later, second) in zip(given, given[1:]):
        if second < first:
            shown = later if later != "deregister_after_days" or params.get("deregister_after_days") is not None else "keep_days"
            errors.append(
                f"{shown}: {second} days is before {earlier} ({first} days); an image is deprecated, then disabled, "
                f"then deregistered, so each age must be at least the one before"
            )
    return errors


def _recycle_bin_errors(params: dict) -> list:
    days = params.get("recycle_bin_retention_days")
    if days is None:
        return []
    errors = []
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= RBIN_MAX_DAYS:
        errors.append(f"recycle_bin_retention_days: must be a whole number of days from 1 to {RBIN_MAX_DAYS} "
                      f"(the Recycle Bin's limits), got {days!r}")
    if params.get("family") is None:
        errors.append(f"recycle_bin_retention_days: needs family (the rule it creates retains images by their "
                      f"{FAMILY_TAG} tag)")
    if params.get("recycle_bin_check") is False:
        errors.append("recycle_bin_retention_days: needs recycle_bin_check (a rule is created only where none covers "
                      "the family)")
    return errors


# ---------------------------------------------------------------------------------------------
# Recycle Bin


def rule_covers(rule: dict, tags: dict) -> bool:
    """Whether an EC2_IMAGE retention rule (GetRule shape) retains a deregistered image with these tags.

    A tag-level rule retains an image with at least one of its tag pairs; a region-level rule every
    image but one with any of its exclusion tags.
    """
    if rule.get("ResourceType", RBIN_TYPE) != RBIN_TYPE or rule.get("Status", "available") != "available":
        return False

    def pairs(entries):
        return [(entry.get("ResourceTagKey"), entry.get("ResourceTagValue") or "") for entry in entries or []]

    def carried(key, value):
        return key in tags and (value == "" or tags[key] == value)

    included = pairs(rule.get("ResourceTags"))
    if included:
        return any(carried(key, value) for key, value in included)
    return not any(carried(key, value) for key, value in pairs(rule.get("ExcludeResourceTags")))


def recycle_bin_plan(rules: list | None, wanted: dict, family: str | None, retention_days: int | None,
                     unknown: str | None = None) -> dict:
    """What the Recycle Bin holds for the selection in one region, and the rule to create (if any)."""
    if unknown is not None:
        return {"covered": None, "rules": [], "create_rule": None, "reason": unknown}
    covering = [
        {"identifier": rule.get("Identifier"), "retention_days": (rule.get("RetentionPeriod") or {}).get("RetentionPeriodValue"),
         "level": "tag" if rule.get("ResourceTags") else "region", "description": rule.get("Description")}
        for rule in rules or [] if rule_covers(rule, wanted)
    ]
    plan = {"covered": bool(covering), "rules": covering, "create_rule": None}
    if not covering and retention_days is not None and family is not None:
        plan["create_rule"] = {
            "ResourceType": RBIN_TYPE,
            "Description": f"bakery.ami: images of family {family}",
            "RetentionPeriod": {"RetentionPeriodValue": retention_days, "RetentionPeriodUnit": "DAYS"},
            "ResourceTags": [{"ResourceTagKey": FAMILY_TAG, "ResourceTagValue": family}],
        }
    return plan


def _restore_errors(params: dict) -> list:
    errors = []
    version = params.get("version")
    if not isinstance(version, str) or not version:
        errors.append("version: state=restored needs the bakery:version of the images to enable again")
    else:
        errors.append(_validate.literal_tags("version", {VERSION_TAG: version}))
    for key in POLICY_OPTIONS + ("max_deletions",):
        if params.get(key) is not None:
            errors.append(f"{key}: state=restored only enables a disabled version; it takes no retirement options")
    reshare = params.get("reshare")
    if reshare is not None and not isinstance(reshare, bool):
        errors.append(f"reshare: must be true or false, got {reshare!r}")
    return errors


def wanted_tags(family: str | None, tags: dict | None) -> dict:
    """The tags (name: exact value) every selected image carries."""
    wanted = dict(tags or {})
    if family is not None:
        wanted[FAMILY_TAG] = family
    return wanted


def selection_filters(family: str | None, tags: dict | None) -> list:
    return [{"Name": f"tag:{key}", "Values": [value]} for key, value in sorted(wanted_tags(family, tags).items())]


def carries(image: dict, wanted: dict) -> bool:
    """Whether the image carries every wanted tag with exactly that value (no wildcards, same case)."""
    have = _tags(image)
    return all(key in have and have[key] == value for key, value in wanted.items())


def _summary(image: dict, **extra) -> dict:
    item = {
        "image_id": image["ImageId"],
        "name": image.get("Name"),
        "creation_date": image.get("CreationDate"),
        "family": _tags(image).get(FAMILY_TAG),
    }
    item.update(extra)
    return item


def _kept(image: dict, reasons: list, **extra) -> dict:
    """A kept image: every reason in `reasons`, and the first joined into `reason` with the rest."""
    return _summary(image, reason="; ".join(reasons), reasons=list(reasons), **extra)


def _newest_first(image: dict) -> tuple:
    return (_time.parse(image.get("CreationDate")), image["ImageId"])


protection_of = _protect.of


def launched_reason(image: dict, now: datetime.datetime, keep_launched_within_days: int | None) -> str | None:
    """Why the image's LastLaunchedTime keeps it, or None."""
    if keep_launched_within_days is None:
        return None
    launched = _time.parse(image.get("LastLaunchedTime"))
    if launched is None:
        return None
    if (now - launched).total_seconds() < keep_launched_within_days * 86400:
        return f"launched at {_time.iso(launched)}, within keep_launched_within_days ({keep_launched_within_days})"
    return None


def _blockers(image: dict, references: dict, now: datetime.datetime, policy: dict) -> list:
    """Why the image may not be disabled or deregistered now: its users (launch templates, SSM
    parameters, instances, shares found by the reads) and a recent launch."""
    found = list(references.get(image["ImageId"]) or [])
    launched = launched_reason(image, now, policy.get("keep_launched_within_days"))
    if launched:
        found.append(launched)
    return found


def _protection_step(plan: dict, image: dict, lift: bool) -> tuple:
    """(may deregister now, lift first, reason it stays): what deregistration protection allows."""
    state = protection_of(image)
    if state == PROTECTION_OFF:
        return True, False, None
    if state.startswith(COOLING_PREFIX):
        until = state[len(COOLING_PREFIX):]
        plan["protection_cooldowns"].append(_summary(image, protection=state, until=until))
        return False, False, f"deregistration protection was lifted with a cooldown that ends at {until}"
    if not lift:
        return False, False, f"deregistration protection is {state} (lift_protection is false)"
    if state == PROTECTION_COOLDOWN:
        plan["protection_lifted"].append(_summary(image, protection=state, cooldown=True))
        return False, False, ("deregistration protection has a cooldown: lifted now, the image can be "
                              "deregistered by a run after the cooldown (24 hours on EC2) ends")
    return True, True, None


def _plan_family(plan: dict, images: list, in_use: dict, references: dict, now: datetime.datetime, policy: dict) -> None:
    """Rank the images of one family (in one region) and add each to the plan."""
    keep_latest = policy.get("keep_latest")
    keep_days = policy.get("keep_days")
    deprecate_after_days = policy.get("deprecate_after_days")
    disable_after_days = policy.get("disable_after_days")
    deregister = policy.get("deregister", True)
    # the age at which a superseded image is deregistered (None: any superseded image)
    deregister_age = policy.get("deregister_after_days")
    if deregister_age is None:
        deregister_age = keep_days
    # Deregistering needs a keep policy: deprecate_after_days alone only deprecates, and with
    # disable_after_days but no deregistration age, disabling is the last stage.
    # the counts: a stage applies only beyond that many of the newest images
    deprecate_count = policy.get("deprecate_after_count")
    disable_count = policy.get("disable_after_count")
    deregister_count = policy.get("deregister_after_count")
    deregister_policy = deregister_age is not None or deregister_count is not None
    disable_stage = disable_after_days is not None or disable_count is not None
    if deprecate_after_days is None and deprecate_count is not None:
        deprecate_after_days = 0
    may_deregister = deregister and (keep_latest is not None or deregister_policy) and not (
        disable_stage and not deregister_policy)
    keep_latest = max(1, keep_latest or 1)
    retired = ("available", "disabled")
    rankable = [i for i in images if i.get("State") in retired and _time.parse(i.get("CreationDate")) is not None]
    ranked = sorted(rankable, key=_newest_first, reverse=True)
    newest = next((image for image in ranked if image.get("State") == "available"), None)
    for image in images:
        if image.get("State") not in retired:
            plan["kept"].append(_kept(image, [f"state is {image.get('State')}, not available"]))
        elif _time.parse(image.get("CreationDate")) is None:
            plan["kept"].append(_kept(image, [f"creation date {image.get('CreationDate')!r} is unreadable"]))

    for rank, image in enumerate(ranked):
        tags = _tags(image)
        users = sorted(in_use.get(image["ImageId"]) or [])
        created = _time.parse(image.get("CreationDate"))
        age_days = (now - created).total_seconds() / 86400.0
        disabled = image.get("State") == "disabled"
        if newest is not None and image["ImageId"] == newest["ImageId"]:
            plan["kept"].append(_kept(image, ["newest image"]))
            continue
        if newest is None or _newest_first(image) > _newest_first(newest):
            plan["kept"].append(_kept(image, ["disabled, and newer than the newest available image"]))
            continue
        if tags.get(KEEP_TAG, "").lower() == "true":
            plan["kept"].append(_kept(image, [f"tagged {KEEP_TAG}=true"]))
            continue
        if policy.get("protect_in_use", True) and users:
            plan["kept"].append(_kept(image, [f"in use by {', '.join(users)}"]))
            continue
        if rank < keep_latest:
            plan["kept"].append(_kept(image, [f"among the {keep_latest} newest (keep_latest)"]))
            continue
        young = deregister_age is not None and age_days < deregister_age
        few = deregister_count is not None and rank < deregister_count
        deregister_due = may_deregister and not young and not few and not (disabled and not deregister_policy)
        disable_young = disable_after_days is not None and age_days < disable_after_days
        disable_few = disable_count is not None and rank < disable_count
        disable_due = not disabled and disable_stage and not disable_young and not disable_few
        reasons: list = []
        if deregister_due or disable_due:
            blockers = _blockers(image, references, now, policy)
            if blockers:
                reasons.extend(f"in use: {blocker}" for blocker in blockers)
                deregister_due = disable_due = False
        if deregister_due:
            allowed, lift, why = _protection_step(plan, image, bool(policy.get("lift_protection")))
            if allowed:
                plan["deregistered"].append(_summary(image, snapshot_ids=snapshot_ids(image), lift_protection=lift))
                continue
            reasons.append(why)
        if disable_due:
            why = [f"older than disable_after_days ({age_days:.1f} of {disable_after_days} days)"
                   if disable_after_days is not None else None,
                   f"beyond the {disable_count} newest (disable_after_count)" if disable_count is not None else None]
            plan["disabled"].append(_summary(image, reason="; ".join(w for w in why if w)))
            continue
        if disabled:
            plan["kept"].append(_kept(image, reasons + [_disabled_reason(deregister_age, age_days, may_deregister)]))
            continue
        if not reasons:
            if young:
                reasons.append(f"younger than {_age_option(policy)} ({age_days:.1f} of {deregister_age} days)")
            elif few:
                reasons.append(f"among the {deregister_count} newest (deregister_after_count)")
            elif disable_young:
                reasons.append(f"younger than disable_after_days ({age_days:.1f} of {disable_after_days} days)")
            elif disable_few:
                reasons.append(f"among the {disable_count} newest (disable_after_count)")
            elif deregister:
                reasons.append("neither keep_latest nor keep_days is set; deprecation only")
            else:
                reasons.append("deregister is false")
        current = _time.parse(image.get("DeprecationTime"))
        if deprecate_count is not None and rank < deprecate_count:
            reasons.append(f"among the {deprecate_count} newest (deprecate_after_count)")
        elif deprecate_after_days is not None:
            target = max(
                _time.round_to_minute(created + datetime.timedelta(days=deprecate_after_days)),
                _time.next_minute(now + datetime.timedelta(seconds=30)),
            )
            if current is None or current > target:
                plan["deprecated"].append(_summary(image, deprecation_time=_time.iso(target), reason="; ".join(reasons)))
                continue
        if current is not None:
            reasons.append(f"deprecated at {_time.iso(current)}")
        plan["kept"].append(_kept(image, reasons))


def _age_option(policy: dict) -> str:
    return "deregister_after_days" if policy.get("deregister_after_days") is not None else "keep_days"


def _disabled_reason(deregister_age: int | None, age_days: float, may_deregister: bool) -> str:
    if may_deregister and deregister_age is not None:
        return f"disabled; deregistered once {deregister_age} days old ({age_days:.1f} now)"
    if may_deregister:
        return "disabled; deregistered once beyond deregister_after_count"
    return "disabled (no deregistration age or count is set)"


def empty_plan() -> dict:
    return {
        "images": 0, "deprecated": [], "disabled": [], "deregistered": [], "deleted_snapshots": [], "kept": [],
        "kept_snapshots": [], "ignored": [], "protection_lifted": [], "protection_cooldowns": [],
    }


def plan_region(
    images: list,
    in_use: dict,
    now: datetime.datetime,
    *,
    keep_latest: int | None = None,
    keep_days: int | None = None,
    deprecate_after_days: int | None = None,
    disable_after_days: int | None = None,
    deregister_after_days: int | None = None,
    deprecate_after_count: int | None = None,
    disable_after_count: int | None = None,
    deregister_after_count: int | None = None,
    deregister: bool = True,
    delete_snapshots: bool = True,
    protect_in_use: bool = True,
    lift_protection: bool = False,
    keep_launched_within_days: int | None = None,
    include_shared: bool = False,
    references: dict | None = None,
    all_images: list | None = None,
    wanted: dict | None = None,
    prune_without_family: bool = False,
) -> dict:
    """Decide, without any call, what happens to each image of one region.

    images: what the selection returned (DescribeImages shape, disabled images included);
    in_use: {image_id: [instance_id, ...]}; references: {image_id: [why it is in use, ...]} (launch
    templates, SSM parameters, instances, shares: checked before an image is disabled or
    deregistered); all_images: every image of the account in the region (for snapshots shared with
    other images; defaults to `images`); wanted: the selected tags, checked again on every image (an
    image without them is ignored).
    """
    del include_shared  # the reads apply it: a share is a reference they found
    policy = dict(
        keep_latest=keep_latest, keep_days=keep_days, deprecate_after_days=deprecate_after_days,
        disable_after_days=disable_after_days, deregister_after_days=deregister_after_days, deregister=deregister,
        deprecate_after_count=deprecate_after_count, disable_after_count=disable_after_count,
        deregister_after_count=deregister_after_count,
        protect_in_use=protect_in_use, lift_protection=lift_protection,
        keep_launched_within_days=keep_launched_within_days,
    )
    plan = empty_plan()
    families: dict = {}
    for image in sorted(images, key=lambda i: i["ImageId"]):
        if wanted is not None and not carries(image, wanted):
            plan["ignored"].append(_summary(image, reason="does not carry the selected tags with exactly these values"))
            continue
        plan["images"] += 1
        family = _tags(image).get(FAMILY_TAG)
        if family is None and not prune_without_family:
            plan["kept"].append(_kept(image, [f"no {FAMILY_TAG} tag (prune_without_family is false)"]))
            continue
        families.setdefault(family, []).append(image)
    # the images without a family tag (prune_without_family) rank as one group of their own
    for family in sorted(families, key=lambda name: (name is None, name or "")):
        _plan_family(plan, families[family], in_use, references or {}, now, policy)

    if delete_snapshots and plan["deregistered"]:
        going = {item["image_id"] for item in plan["deregistered"]}
        users_of: dict = {}
        for image in all_images if all_images is not None else images:
            if image["ImageId"] in going:
                continue
            for snapshot_id in snapshot_ids(image):
                users_of.setdefault(snapshot_id, []).append(image["ImageId"])
        for item in plan["deregistered"]:
            for snapshot_id in item["snapshot_ids"]:
                if snapshot_id in users_of:
                    plan["kept_snapshots"].append(
                        {"snapshot_id": snapshot_id, "reason": f"also used by {', '.join(sorted(users_of[snapshot_id]))}"}
                    )
                elif snapshot_id not in plan["deleted_snapshots"]:
                    plan["deleted_snapshots"].append(snapshot_id)
    return plan


def candidates(plan: dict) -> list:
    """The images a plan would disable, deregister or lift protection from (those the in-use reads check)."""
    found = {item["image_id"] for key in ("disabled", "deregistered", "protection_lifted") for item in plan[key]}
    return sorted(found)


def _family_name(family: str | None) -> str:
    return f"family {family!r}" if family is not None else f"the images without a {FAMILY_TAG} tag"


def check_limits(plans: dict, max_deletions: int | None) -> str | None:
    """None when the plans stay within the deletion limits, else a message listing what they would deregister."""
    going = [(region, item) for region in sorted(plans) for item in plans[region]["deregistered"]]
    if not going:
        return None
    problems = []
    if max_deletions is not None:
        if len(going) > max_deletions:
            problems.append(f"{len(going)} images, more than max_deletions ({max_deletions}) allows")
    else:
        if len(going) > DEFAULT_MAX_DELETIONS:
            problems.append(
                f"{len(going)} images, more than the {DEFAULT_MAX_DELETIONS} a run deregisters without max_deletions"
            )
        for region in sorted(plans):
            plan = plans[region]
            sizes: dict = {}
            for item in plan["kept"] + plan["deprecated"] + plan.get("disabled", []) + plan["deregistered"]:
                sizes[item["family"]] = sizes.get(item["family"], 0) + 1
            counts: dict = {}
            for item in plan["deregistered"]:
                counts[item["family"]] = counts.get(item["family"], 0) + 1
            for family in sorted(counts, key=lambda name: (name is None, name or "")):
                if counts[family] > MAX_FAMILY_SHARE * sizes[family]:
                    problems.append(
                        f"{counts[family]} of the {sizes[family]} images of {_family_name(family)} in {region}, "
                        f"more than {MAX_FAMILY_SHARE:.0%} of them without max_deletions"
                    )
    if not problems:
        return None
    listed = [
        f"{item['image_id']} in {region} ({_family_name(item['family'])}, {item['name']!r})" for region, item in going[:LISTED]
    ]
    if len(going) > LISTED:
        listed.append(f"and {len(going) - LISTED} more")
    return (
        f"max_deletions: stopped before any change; this run would deregister {'; and '.join(problems)}: "
        f"{', '.join(listed)}. Check the selection and the keep rules, and set max_deletions: {len(going)} to allow it"
    )


def _chunks(values: list, size: int) -> list:
    return [values[i:i + size] for i in range(0, len(values), size)]


class Pruner:
    """Read every region, check the selection, then apply the plan of every region."""

    def __init__(self, clients: dict, request: PruneRequest, check_mode: bool = False, now: datetime.datetime | None = None,
                 ssm_clients: dict | None = None, rbin_clients: dict | None = None):
        self.clients = clients
        self.ssm_clients = ssm_clients or {}
        self.rbin_clients = rbin_clients or {}
        self.request = request
        self.check_mode = check_mode
        self.now = now
        self.wanted: dict = {}
        self.filters: list = []

    def _policy(self) -> dict:
        keys = ("keep_latest", "keep_days", "deprecate_after_days", "disable_after_days", "deregister_after_days",
                "deprecate_after_count", "disable_after_count", "deregister_after_count",
                "deregister", "delete_snapshots", "protect_in_use", "lift_protection", "keep_launched_within_days",
                "include_shared")
        return {key: getattr(self.request, key) for key in keys}

    def read(self, region: str) -> dict:
        client = self.clients[region]
        images = _aws.describe_images(client, Owners=["self"], Filters=self.filters, IncludeDeprecated=True,
                                      IncludeDisabled=True)
        in_use: dict = {}
        candidate_ids = sorted(image["ImageId"] for image in images)
        if self.request.protect_in_use and len(candidate_ids) > 1:
            for chunk in _chunks(candidate_ids, FILTER_CHUNK):
                instances = _aws.describe_instances(
                    client,
                    Filters=[
                        {"Name": "image-id", "Values": chunk},
                        {"Name": "instance-state-name", "Values": list(IN_USE_STATES)},
                    ],
                )
                for instance in instances:
                    if (instance.get("State") or {}).get("Name") in IN_USE_STATES:
                        in_use.setdefault(instance.get("ImageId"), []).append(instance["InstanceId"])
        all_images = None
        if self.request.delete_snapshots and self.request.deregister and len(images) > 1:
            all_images = _aws.describe_images(client, Owners=["self"], IncludeDeprecated=True, IncludeDisabled=True)
        return {"images": images, "in_use": in_use, "all_images": all_images, "recycle_bin": self.read_rules(region)}

    def read_rules(self, region: str) -> dict | None:
        """The region's EC2_IMAGE retention rules ({"rules": [...]}, or {"unknown": why}); None when not asked."""
        rbin = self.rbin_clients.get(region)
        if rbin is None or not self.request.recycle_bin_check:
            return None
        try:
            summaries = _aws.list_rbin_rules(rbin, ResourceType=RBIN_TYPE)
        except _aws.BakeryAWSError as exc:
            if self.request.recycle_bin_retention_days is None and (
                    _aws.error_code(exc) in RBIN_DENIED or _aws.unsupported(exc)):
                return {"unknown": f"the Recycle Bin rules could not be read ({_aws.error_code(exc)})"}
            raise
        return {"rules": [_aws.get_rbin_rule(rbin, summary["Identifier"]) for summary in summaries]}

    # -- in-use checks of the images a plan would disable or deregister --------------------------

    def _references_api(self, client, image_ids: list, found: dict) -> bool:
        """Instances and SSM parameters through DescribeImageReferences; False when the API lacks it."""
        kinds = [
            {"ResourceType": "ec2:Instance",
             "ResourceTypeOptions": [{"OptionName": "state-name", "OptionValues": list(IN_USE_STATES)}]},
            {"ResourceType": "ssm:Parameter"},
        ]
        try:
            for chunk in _chunks(image_ids, REFERENCE_CHUNK):
                for ref in _aws.describe_image_references(client, ImageIds=chunk, ResourceTypes=kinds):
                    arn = ref.get("Arn") or ""
                    if ref.get("ResourceType") == "ec2:Instance":
                        why = f"instance {arn.rsplit('/', 1)[-1]}"
                    else:
                        why = f"SSM parameter {'/' + arn.split(':parameter/', 1)[-1] if ':parameter/' in arn else arn}"
                    found.setdefault(ref.get("ImageId"), []).append(why)
        except _aws.BakeryAWSError as exc:
            if _aws.unsupported(exc):
                return False
            raise
        return True

    def _parameters_direct(self, region: str, image_ids: list, found: dict) -> None:
        """SSM parameters of the region whose value is one of the images (every parameter is read)."""
        ssm = self.ssm_clients.get(region)
        if ssm is None:
            return
        wanted = set(image_ids)
        names = sorted(item["Name"] for item in _aws.describe_parameters(ssm))
        for chunk in _chunks(names, PARAMETER_CHUNK):
            for parameter in _aws.get_parameters(ssm, chunk):
                if parameter.get("Value") in wanted:
                    found.setdefault(parameter["Value"], []).append(f"SSM parameter {parameter['Name']}")

    @staticmethod
    def _launch_templates(client, image_ids: list, found: dict) -> None:
        """The default and latest version of every launch template of the region."""
        wanted = set(image_ids)
        for template in _aws.describe_launch_templates(client):
            versions = _aws.describe_launch_template_versions(
                client, LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Default", "$Latest"])
            seen: dict = {}
            for version in versions:
                image_id = (version.get("LaunchTemplateData") or {}).get("ImageId")
                if image_id in wanted:
                    marks = []
                    if version.get("DefaultVersion") or version.get("VersionNumber") == template.get("DefaultVersionNumber"):
                        marks.append("default")
                    if version.get("VersionNumber") == template.get("LatestVersionNumber"):
                        marks.append("latest")
                    seen.setdefault(image_id, set()).update(marks or ["version " + str(version.get("VersionNumber"))])
            for image_id, marks in sorted(seen.items()):
                found.setdefault(image_id, []).append(
                    f"launch template {template['LaunchTemplateId']} ({template.get('LaunchTemplateName')}, "
                    f"{' and '.join(sorted(marks))} version)")

    @staticmethod
    def _shares(client, image_ids: list, images: dict, found: dict) -> None:
        for image_id in image_ids:
            image = images.get(image_id) or {}
            if image.get("State") == "disabled":
                continue  # a disabled image has no launch permissions
            permissions = _aws.describe_image_attribute(client, image_id, "launchPermission").get("LaunchPermissions") or []
            shared = []
            for entry in permissions:
                if entry.get("Group") == "all":
                    shared.append("public (launch permission group all)")
                for key, label in (("UserId", "account"), ("OrganizationArn", "organization"),
                                   ("OrganizationalUnitArn", "organizational unit")):
                    if entry.get(key):
                        shared.append(f"{label} {entry[key]}")
            if image.get("Public") and not any(item.startswith("public") for item in shared):
                shared.append("public (launch permission group all)")
            if shared:
                found.setdefault(image_id, []).append(f"shared with {', '.join(shared)} (include_shared is false)")

    def references(self, region: str, image_ids: list, images: list) -> tuple:
        """({image_id: [why it is in use]}, how instances and SSM parameters were found) for the candidates."""
        found: dict = {}
        if not image_ids:
            return found, None
        client = self.clients[region]
        if self._references_api(client, image_ids, found):
            source = "DescribeImageReferences"
        else:
            source = "direct queries"
            self._parameters_direct(region, image_ids, found)
            # instances: the read already asked DescribeInstances for every state but terminated
        self._launch_templates(client, image_ids, found)
        if not self.request.include_shared:
            self._shares(client, image_ids, {image["ImageId"]: image for image in images}, found)
        return {key: sorted(set(value)) for key, value in found.items()}, source

    # -- changes ---------------------------------------------------------------------------------

    def _deregister(self, client, item: dict, planned: set, deleted: set, plan: dict) -> None:
        if item.get("lift_protection"):
            _aws.disable_image_deregistration_protection(client, item["image_id"])
        if planned.intersection(item["snapshot_ids"]) and plan.get("delete_with_image", True):
            try:
                results = _aws.deregister_image_with_snapshots(client, item["image_id"])
            except _aws.BakeryAWSError as exc:
                if not _aws.unsupported(exc):
                    raise
                plan["delete_with_image"] = False
            else:
                deleted.update(r.get("SnapshotId") for r in results if r.get("ReturnCode") == "success")
                return
        _aws.deregister_image(client, item["image_id"])

    def act(self, region: str, plan: dict) -> None:
        client = self.clients[region]
        rule = (plan.get("recycle_bin") or {}).get("create_rule")
        if rule is not None:
            # first, so that the images this run deregisters are retained by it
            created = _aws.create_rbin_rule(self.rbin_clients[region], **rule)
            plan["recycle_bin"]["created_rule"] = created.get("Identifier")
        for item in plan["deprecated"]:
            _aws.enable_image_deprecation(client, item["image_id"], item["deprecation_time"])
        for item in plan["disabled"]:
            _aws.disable_image(client, item["image_id"])
        for item in plan["protection_lifted"]:
            _aws.disable_image_deregistration_protection(client, item["image_id"])
        planned = set(plan["deleted_snapshots"])
        deleted: set = set()
        for item in plan["deregistered"]:
            self._deregister(client, item, planned, deleted, plan)
        # what DeregisterImage did not take along (the API lacks DeleteAssociatedSnapshots, or a
        # snapshot shared by two images of this run went with the second)
        for snapshot_id in plan["deleted_snapshots"]:
            if snapshot_id not in deleted:
                _aws.delete_snapshot(client, snapshot_id)

    def _each_region(self, func) -> tuple:
        """Run func(region) for every region at once; returns ({region: result}, {region: error})."""
        return _fanout.each_caught(func, list(self.clients), (_aws.BakeryAWSError,))

    def select_description(self) -> str:
        family = self.request.family
        if family is not None and not self.request.tags:
            return f"family: '{family}' (tag {FAMILY_TAG})"
        return f"tags: {self.wanted}"

    def _plans(self, reads: dict, now: datetime.datetime, references: dict | None = None) -> dict:
        policy = self._policy()
        if references is None:
            # the first pass finds the candidates: a recent launch must not hide an image's other users
            policy["keep_launched_within_days"] = None
        return {
            region: plan_region(read["images"], read["in_use"], now, all_images=read["all_images"], wanted=self.wanted,
                                prune_without_family=self.request.prune_without_family,
                                references=(references or {}).get(region, ({}, None))[0], **policy)
            for region, read in reads.items()
        }

    def run(self) -> dict:
        self.wanted = wanted_tags(self.request.family, self.request.tags)
        self.filters = selection_filters(self.request.family, self.request.tags)
        if self.request.restoring:
            return self.restore()
        now = self.now or _time.now()
        reads, errors = self._each_region(self.read)
        if errors:
            raise PartialFailure({"changed": False, "regions": {}, "dry_run": self.check_mode}, errors, "reading")
        first = self._plans(reads, now)
        references, errors = self._each_region(
            lambda region: self.references(region, candidates(first[region]), reads[region]["images"]))
        if errors:
            raise PartialFailure({"changed": False, "regions": {}, "dry_run": self.check_mode}, errors, "reading")
        plans = self._plans(reads, now, references)
        for region, plan in plans.items():
            plan["in_use_checked_by"] = references[region][1]
            rules = reads[region].get("recycle_bin")
            if rules is not None:
                plan["recycle_bin"] = recycle_bin_plan(
                    rules.get("rules"), self.wanted, self.request.family,
                    self.request.recycle_bin_retention_days, rules.get("unknown"))
        if sum(plan["images"] for plan in plans.values()) == 0 and self.request.required:
            raise PruneError(
                f"{self.select_description()} matches no image of this account in "
                f"{', '.join(sorted(self.clients))} (required is true)"
            )
        changed = any(plan[key] for plan in plans.values() for key in CHANGES) or any(
            (plan.get("recycle_bin") or {}).get("create_rule") for plan in plans.values())
        result = {"changed": changed, "regions": plans, "dry_run": self.check_mode}
        # check mode predicts the real run, so it stops at the limits too
        error = check_limits(plans, self.request.max_deletions)
        if error:
            raise PruneError(error, dict(result, changed=False, would_deregister=sum(
                len(plan["deregistered"]) for plan in plans.values())))
        if self.check_mode or not changed:
            return result
        _done, errors = self._each_region(lambda region: self.act(region, plans[region]))
        for plan in plans.values():
            plan.pop("delete_with_image", None)
        if errors:
            result["failed_regions"] = sorted(errors)
            raise PartialFailure(result, errors, "pruning")
        return result

    # -- state=restored --------------------------------------------------------------------------

    def restore(self) -> dict:
        """Enable again the disabled images of one version in every region, and share them again from their
        sharing record (bakery:shared-with); all checked before any change.

        An available image that an earlier restore enabled (it carries bakery:restored-at) counts as
        restored: a rerun only shares what is missing, and changes nothing when all is in place.
        """
        version = self.request.version
        reshare = self.request.reshare is not False
        wanted = dict(self.wanted, **{VERSION_TAG: version})
        filters = self.filters + [{"Name": f"tag:{VERSION_TAG}", "Values": [version]}]

        def read(region: str) -> list:
            found = _aws.describe_images(self.clients[region], Owners=["self"], Filters=filters,
                                         IncludeDeprecated=True, IncludeDisabled=True)
            return sorted((image for image in found if carries(image, wanted)), key=lambda i: i["ImageId"])

        reads, errors = self._each_region(read)
        if errors:
            raise PartialFailure({"changed": False, "regions": {}, "dry_run": self.check_mode}, errors, "reading")
        if not any(reads.values()):
            raise PruneError(
                f"version: {self.select_description()} has no image of version {version!r} in "
                f"{', '.join(sorted(self.clients))}; nothing to restore")
        refused = [problem for region in sorted(reads) for image in reads[region]
                   for problem in [_restore_refusal(region, image)] if problem]
        if refused:
            raise PruneError(f"state=restored: {'; '.join(refused)}; nothing was changed")
        stamp = _time.iso(self.now or _time.now())
        plans: dict = {region: {"restored": [], "reshared": [], "not_recorded": []} for region in reads}

        def act(region: str) -> None:
            client = self.clients[region]
            for image in reads[region]:
                disabled = image.get("State") == "disabled"
                if disabled:
                    plans[region]["restored"].append(_summary(image))
                    if not self.check_mode:
                        _aws.enable_image(client, image["ImageId"])
                        _aws.create_tags(client, [image["ImageId"]], [{"Key": RESTORED_TAG, "Value": stamp}])
                if not reshare:
                    continue
                permissions, snapshot_users = _share.recorded(_tags(image))
                if not permissions:
                    plans[region]["not_recorded"].append(_summary(image))
                    continue
                # a disabled image has no launch permissions to read: all of the record goes back
                added = _share.converge(client, image["ImageId"], snapshot_ids(image), permissions, snapshot_users,
                                        act=not self.check_mode)
                if disabled and self.check_mode:
                    added["launch_permissions"] = permissions
                if _share.changed(added):
                    plans[region]["reshared"].append(_summary(
                        image, launch_permissions=added["launch_permissions"],
                        snapshot_permissions=added["snapshot_permissions"]))

        _done, errors = self._each_region(act)
        changed = any(plan["restored"] or plan["reshared"] for plan in plans.values())
        unrecorded = sorted(item["image_id"] for plan in plans.values() for item in plan["not_recorded"])
        if not reshare:
            note = RESHARE_NOTE
        elif unrecorded:
            note = f"{', '.join(unrecorded)} {RESHARE_NOTE} (they carry no {_share.RECORD} tag to share them again from)"
        else:
            note = f"shared again as their {_share.RECORD} tags record"
        result = {"changed": changed, "regions": plans, "dry_run": self.check_mode, "launch_permissions": note}
        if errors:
            result["failed_regions"] = sorted(errors)
            raise PartialFailure(result, errors, "restoring")
        return result


def _restore_refusal(region: str, image: dict) -> str | None:
    """Why an image of the version cannot be restored, or None (disabled, or enabled by an earlier restore)."""
    state = image.get("State")
    tags = _tags(image)
    if state == "disabled":
        if RESTORED_TAG not in tags and len(tags) >= _tag_names.MAX_TAGS:
            return (f"{image['ImageId']} in {region} carries {len(tags)} tags and has no room for {RESTORED_TAG}, "
                    "which marks a restored image")
        return None
    if state == "available" and RESTORED_TAG in tags:
        return None
    return (f"only a disabled image can be restored, and {image['ImageId']} in {region} is {state}"
            + (f" without {RESTORED_TAG} (it was never disabled and restored)" if state == "available" else ""))


# What changes images; a plan with none of these changes nothing.
CHANGES = ("deprecated", "disabled", "deregistered", "deleted_snapshots", "protection_lifted")
# EC2 removes an image's launch permissions when it is disabled; without reshare (or a sharing
# record on the image) they are not put back.
RESHARE_NOTE = (
    "must be re-shared: EC2 removed the launch permissions of these images when they were disabled; run "
    "bakery.ami.ami_copy (or ami_create) with their launch_permissions again"
)


class PartialFailure(BakeryError):
    """Reading or pruning failed in some regions; `result` holds what was planned."""

    def __init__(self, result: dict, errors: dict, phase: str):
        region, error = sorted(errors.items())[0]
        cause = getattr(error, "exception", None)
        detail = f"{error.message}: {cause}" if cause is not None else error.message
        super().__init__(f"{phase} failed in {', '.join(sorted(errors))}; in {region}: {detail}", result)
        self.errors = errors
