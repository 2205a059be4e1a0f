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

import datetime

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _fanout
from ansible_collections.bakery.ami.plugins.module_utils import _time
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._images import snapshot_ids
from ansible_collections.bakery.ami.plugins.module_utils._images import tags_of as _tags

FAMILY_TAG = "bakery:family"
KEEP_TAG = "bakery:keep"
IN_USE_STATES = ("pending", "running", "stopping", "stopped")
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
    if keep_latest is None and keep_days is None and params.get("deprecate_after_days") is None:
        errors.append("keep_latest, keep_days or deprecate_after_days: at least one of them is required")
    if keep_latest is not None and (isinstance(keep_latest, bool) or not isinstance(keep_latest, int) or keep_latest < 1):
        errors.append(f"keep_latest: must be at least 1 (the newest image is always kept), got {keep_latest!r}")
    if keep_days is not None:
        errors.append(_validate.days("keep_days", keep_days))
    deprecate_after_days = params.get("deprecate_after_days")
    if deprecate_after_days is not None:
        errors.append(_validate.days("deprecate_after_days", deprecate_after_days))
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


def _newest_first(image: dict) -> tuple:
    return (_time.parse(image.get("CreationDate")), image["ImageId"])


def _plan_family(
    plan: dict,
    images: list,
    in_use: dict,
    now: datetime.datetime,
    *,
    keep_latest: int | None,
    keep_days: int | None,
    deprecate_after_days: int | None,
    deregister: bool,
    protect_in_use: bool,
) -> None:
    """Rank the images of one family (in one region) and add each to the plan."""
    # Deregistering needs a keep policy: deprecate_after_days alone only deprecates.
    may_deregister = deregister and (keep_latest is not None or keep_days is not None)
    keep_latest = max(1, keep_latest or 1)
    rankable = [i for i in images if i.get("State") == "available" and _time.parse(i.get("CreationDate")) is not None]
    available = sorted(rankable, key=_newest_first, reverse=True)
    for image in images:
        if image.get("State") != "available":
            plan["kept"].append(_summary(image, reason=f"state is {image.get('State')}, not available"))
        elif _time.parse(image.get("CreationDate")) is None:
            plan["kept"].append(_summary(image, reason=f"creation date {image.get('CreationDate')!r} is unreadable"))

    for rank, image in enumerate(available):
        tags = _tags(image)
        users = sorted(in_use.get(image["ImageId"]) or [])
        created = _time.parse(image.get("CreationDate"))
        age_days = (now - created).total_seconds() / 86400.0
        if rank == 0:
            plan["kept"].append(_summary(image, reason="newest image"))
            continue
        if tags.get(KEEP_TAG, "").lower() == "true":
            plan["kept"].append(_summary(image, reason=f"tagged {KEEP_TAG}=true"))
            continue
        if protect_in_use and users:
            plan["kept"].append(_summary(image, reason=f"in use by {', '.join(users)}"))
            continue
        if rank < keep_latest:
            plan["kept"].append(_summary(image, reason=f"among the {keep_latest} newest (keep_latest)"))
            continue
        young = keep_days is not None and age_days < keep_days
        if may_deregister and not young:
            plan["deregistered"].append(_summary(image, snapshot_ids=snapshot_ids(image)))
            continue
        if young:
            why = f"younger than keep_days ({age_days:.1f} of {keep_days} days)"
        elif deregister:
            why = "neither keep_latest nor keep_days is set; deprecation only"
        else:
            why = "deregister is false"
        current = _time.parse(image.get("DeprecationTime"))
        if deprecate_after_days is not None:
            target = max(
                _time.round_to_minute(created + datetime.timedelta(days=deprecate_after_days)),
                _time.next_minute(now + datetime.timedelta(seconds=30)),
            )
            if current is None or current > target:
                plan["deprecated"].append(_summary(image, deprecation_time=_time.iso(target), reason=why))
                continue
        if current is not None:
            why = f"{why}; deprecated at {_time.iso(current)}"
        plan["kept"].append(_summary(image, reason=why))


def plan_region(
    images: list,
    in_use: dict,
    now: datetime.datetime,
    *,
    keep_latest: int | None = None,
    keep_days: int | None = None,
    deprecate_after_days: int | None = None,
    deregister: bool = True,
    delete_snapshots: bool = True,
    protect_in_use: bool = True,
    all_images: list | None = None,
    wanted: dict | None = None,
    prune_without_family: bool = False,
) -> dict:
    """Decide, without any call, what happens to each image of one region.

    images: what the selection returned (DescribeImages shape); in_use: {image_id: [instance_id,
    ...]}; all_images: every image of the account in the region (for snapshots shared with other
    images; defaults to `images`); wanted: the selected tags, checked again on every image (an
    image without them is ignored).
    """
    plan: dict = {
        "images": 0, "deprecated": [], "deregistered": [], "deleted_snapshots": [], "kept": [],
        "kept_snapshots": [], "ignored": [],
    }
    families: dict = {}
    for image in sorted(images, key=lambda i: i["ImageId"]):
        if wanted is not None and not carries(image, wanted):
            plan["ignored"].append(_summary(image, reason="does not carry the selected tags with exactly these values"))
            continue
        plan["images"] += 1
        family = _tags(image).get(FAMILY_TAG)
        if family is None and not prune_without_family:
            plan["kept"].append(_summary(image, reason=f"no {FAMILY_TAG} tag (prune_without_family is false)"))
            continue
        families.setdefault(family, []).append(image)
    # the images without a family tag (prune_without_family) rank as one group of their own
    for family in sorted(families, key=lambda name: (name is None, name or "")):
        _plan_family(
            plan, families[family], in_use, now, keep_latest=keep_latest, keep_days=keep_days,
            deprecate_after_days=deprecate_after_days, deregister=deregister, protect_in_use=protect_in_use,
        )

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
            for item in plan["kept"] + plan["deprecated"] + plan["deregistered"]:
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

    def __init__(self, clients: dict, params: dict, check_mode: bool = False, now: datetime.datetime | None = None):
        self.clients = clients
        self.params = params
        self.check_mode = check_mode
        self.now = now
        self.wanted: dict = {}
        self.filters: list = []

    def _policy(self) -> dict:
        keys = ("keep_latest", "keep_days", "deprecate_after_days", "deregister", "delete_snapshots", "protect_in_use")
        policy = {key: self.params.get(key) for key in keys}
        for key in ("deregister", "delete_snapshots", "protect_in_use"):
            if policy[key] is None:
                policy[key] = True
        return policy

    def read(self, region: str) -> dict:
        client = self.clients[region]
        images = _aws.describe_images(client, Owners=["self"], Filters=self.filters, IncludeDeprecated=True)
        in_use: dict = {}
        candidates = sorted(image["ImageId"] for image in images)
        if self.params.get("protect_in_use", True) and len(candidates) > 1:
            for chunk in _chunks(candidates, FILTER_CHUNK):
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
        if self.params.get("delete_snapshots", True) and self.params.get("deregister", True) and len(images) > 1:
            all_images = _aws.describe_images(client, Owners=["self"], IncludeDeprecated=True)
        return {"images": images, "in_use": in_use, "all_images": all_images}

    def act(self, region: str, plan: dict) -> None:
        client = self.clients[region]
        for item in plan["deprecated"]:
            _aws.enable_image_deprecation(client, item["image_id"], item["deprecation_time"])
        for item in plan["deregistered"]:
            _aws.deregister_image(client, item["image_id"])
        for snapshot_id in plan["deleted_snapshots"]:
            _aws.delete_snapshot(client, snapshot_id)

    def _each_region(self, func) -> tuple:
        """Run func(region) for every region at once; returns ({region: result}, {region: error})."""
        return _fanout.each_caught(func, list(self.clients), (_aws.BakeryAWSError,))

    def select_description(self) -> str:
        family = self.params.get("family")
        if family is not None and not self.params.get("tags"):
            return f"family: '{family}' (tag {FAMILY_TAG})"
        return f"tags: {self.wanted}"

    def run(self) -> dict:
        # the module checks the options before it makes clients; a direct caller is held to the same rules
        errors = validate(self.params)
        if errors:
            raise PruneError("; ".join(errors))
        self.wanted = wanted_tags(self.params.get("family"), self.params.get("tags"))
        self.filters = selection_filters(self.params.get("family"), self.params.get("tags"))
        now = self.now or _time.now()
        reads, errors = self._each_region(self.read)
        if errors:
            raise PartialFailure({"changed": False, "regions": {}, "dry_run": self.check_mode}, errors, "reading")
        policy = self._policy()
        plans = {
            region: plan_region(read["images"], read["in_use"], now, all_images=read["all_images"], wanted=self.wanted,
                                prune_without_family=bool(self.params.get("prune_without_family")), **policy)
            for region, read in reads.items()
        }
        if sum(plan["images"] for plan in plans.values()) == 0 and self.params.get("required"):
            raise PruneError(
                f"{self.select_description()} matches no image of this account in "
                f"{', '.join(sorted(self.clients))} (required is true)"
            )
        changed = any(plan["deprecated"] or plan["deregistered"] or plan["deleted_snapshots"] for plan in plans.values())
        result = {"changed": changed, "regions": plans, "dry_run": self.check_mode}
        # check mode predicts the real run, so it stops at the limits too
        error = check_limits(plans, self.params.get("max_deletions"))
        if error:
            raise PruneError(error, dict(result, changed=False, would_deregister=sum(
                len(plan["deregistered"]) for plan in plans.values())))
        if self.check_mode or not changed:
            return result
        _done, errors = self._each_region(lambda region: self.act(region, plans[region]))
        if errors:
            result["failed_regions"] = sorted(errors)
            raise PartialFailure(result, errors, "pruning")
        return result


class PartialFailure(Exception):
    """Reading or pruning failed in some regions; `result` holds what was planned."""

    def __init__(self, result: dict, errors: dict, phase: str):
        region, error = sorted(errors.items())[0]
        cause = getattr(error, "exception", None)
        detail = f"{error.message}: {cause}" if cause is not None else error.message
        super().__init__(f"{phase} failed in {', '.join(sorted(errors))}; in {region}: {detail}")
        self.result = result
        self.errors = errors
