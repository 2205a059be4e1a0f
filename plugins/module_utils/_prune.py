# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The core of bakery.ami.ami_prune: the keep-N / age / deprecation lifecycle of one image family.
#
# Per region, this account's images of the family are ranked newest first (CreationDate, then
# ImageId). An image is kept, with the reason, when it is
#   the newest available image | tagged bakery:keep=true | in use by a pending, running,
#   stopping or stopped instance | among the keep_latest newest | not available (pending, failed);
# every other image is superseded. A superseded image older than keep_days (or any, without
# keep_days) is deregistered when deregister is true and keep_latest or keep_days is set (with
# deprecate_after_days alone nothing is deregistered), and its snapshots deleted when
# delete_snapshots is true and no other image of the account uses them. A superseded image that
# stays gets a DeprecationTime of CreationDate + deprecate_after_days (never earlier than the
# next minute) when that option is set and it has no earlier one.
#
# plan_region() is pure (images, instances, clock in; decisions out) so the policy is unit
# tested without AWS; Pruner does the calls, all reads first, then the changes, one thread per
# region.

from __future__ import annotations

import concurrent.futures
import datetime

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._images import round_to_minute as _round_minute
from ansible_collections.bakery.ami.plugins.module_utils._images import snapshot_ids
from ansible_collections.bakery.ami.plugins.module_utils._images import tags_of as _tags

FAMILY_TAG = "bakery:family"
KEEP_TAG = "bakery:keep"
IN_USE_STATES = ("pending", "running", "stopping", "stopped")
# DescribeInstances takes at most 200 values per filter.
FILTER_CHUNK = 200
MAX_WORKERS = 8


class PruneError(Exception):
    """A user-level failure: the message names the option and the rule."""


def validate(params: dict) -> list:
    """Every problem with the options, found without any API call."""
    errors = []
    family = params.get("family")
    tags = params.get("tags")
    if family is None and not tags:
        errors.append("family or tags: one of them is required to select the images")
    if family is not None:
        errors.append(_validate.family("family", family))
    errors.append(_validate.tags("tags", tags))
    if tags and family is not None and FAMILY_TAG in tags and tags[FAMILY_TAG] != family:
        errors.append(f"tags: the tag {FAMILY_TAG} is '{tags[FAMILY_TAG]}' but family is '{family}'; set only family")
    keep_latest = params.get("keep_latest")
    keep_days = params.get("keep_days")
    if keep_latest is None and keep_days is None and params.get("deprecate_after_days") is None:
        errors.append("keep_latest, keep_days or deprecate_after_days: at least one of them is required")
    if keep_latest is not None and keep_latest < 1:
        errors.append(f"keep_latest: must be at least 1 (the newest image is always kept), got {keep_latest}")
    if keep_days is not None:
        errors.append(_validate.days("keep_days", keep_days))
    deprecate_after_days = params.get("deprecate_after_days")
    if deprecate_after_days is not None:
        errors.append(_validate.days("deprecate_after_days", deprecate_after_days))
    regions = params.get("regions") or []
    for region in regions:
        errors.append(_validate.region_name("regions", region))
    if len(set(regions)) != len(regions):
        errors.append("regions: a region appears more than once")
    return [error for error in errors if error]


def selection_filters(family: str | None, tags: dict | None) -> list:
    wanted = dict(tags or {})
    if family is not None:
        wanted[FAMILY_TAG] = family
    return [{"Name": f"tag:{key}", "Values": [value]} for key, value in sorted(wanted.items())]


def _time(value) -> datetime.datetime | None:
    if not value:
        return None
    parsed, _error = _validate.parse_time("time", value)
    return parsed


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_minute(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)


def _summary(image: dict, **extra) -> dict:
    item = {
        "image_id": image["ImageId"],
        "name": image.get("Name"),
        "creation_date": image.get("CreationDate"),
    }
    item.update(extra)
    return item


def _newest_first(image: dict) -> tuple:
    created = _time(image.get("CreationDate")) or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    return (created, image["ImageId"])


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
) -> dict:
    """Decide, without any call, what happens to each image of one region.

    images: the family's images (DescribeImages shape); in_use: {image_id: [instance_id, ...]};
    all_images: every image of the account in the region (for snapshots shared with other
    images; defaults to `images`).
    """
    # Deregistering needs a keep policy: deprecate_after_days alone only deprecates.
    may_deregister = deregister and (keep_latest is not None or keep_days is not None)
    keep_latest = max(1, keep_latest or 1)
    plan: dict = {"deprecated": [], "deregistered": [], "deleted_snapshots": [], "kept": [], "kept_snapshots": []}
    available = sorted((i for i in images if i.get("State") == "available"), key=_newest_first, reverse=True)
    for image in sorted((i for i in images if i.get("State") != "available"), key=_newest_first, reverse=True):
        plan["kept"].append(_summary(image, reason=f"state is {image.get('State')}, not available"))

    for rank, image in enumerate(available):
        tags = _tags(image)
        users = sorted(in_use.get(image["ImageId"]) or [])
        created = _time(image.get("CreationDate")) or now
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
        current = _time(image.get("DeprecationTime"))
        if deprecate_after_days is not None:
            target = max(
                _round_minute(created + datetime.timedelta(days=deprecate_after_days)),
                _next_minute(now + datetime.timedelta(seconds=30)),
            )
            if current is None or current > target:
                plan["deprecated"].append(_summary(image, deprecation_time=_iso(target), reason=why))
                continue
        if current is not None:
            why = f"{why}; deprecated at {_iso(current)}"
        plan["kept"].append(_summary(image, reason=why))

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


def _chunks(values: list, size: int) -> list:
    return [values[i:i + size] for i in range(0, len(values), size)]


class Pruner:
    """Read every region, check the selection, then apply the plan of every region."""

    def __init__(self, clients: dict, params: dict, check_mode: bool = False, now: datetime.datetime | None = None):
        self.clients = clients
        self.params = params
        self.check_mode = check_mode
        self.now = now
        self.filters = selection_filters(params.get("family"), params.get("tags"))

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
        regions = list(self.clients)
        results: dict = {}
        errors: dict = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(regions)) or 1) as pool:
            futures = {pool.submit(func, region): region for region in regions}
            for future in concurrent.futures.as_completed(futures):
                region = futures[future]
                try:
                    results[region] = future.result()
                except _aws.BakeryAWSError as e:
                    errors[region] = e
        return results, errors

    def select_description(self) -> str:
        family = self.params.get("family")
        if family is not None and not self.params.get("tags"):
            return f"family: '{family}' (tag {FAMILY_TAG})"
        wanted = dict(self.params.get("tags") or {})
        if family is not None:
            wanted[FAMILY_TAG] = family
        return f"tags: {wanted}"

    def run(self) -> dict:
        now = self.now or datetime.datetime.now(datetime.timezone.utc)
        reads, errors = self._each_region(self.read)
        if errors:
            raise PartialFailure({"changed": False, "regions": {}, "dry_run": self.check_mode}, errors, "reading")
        total = sum(len(read["images"]) for read in reads.values())
        if total == 0 and self.params.get("required"):
            raise PruneError(
                f"{self.select_description()} matches no image of this account in "
                f"{', '.join(sorted(self.clients))} (required is true)"
            )
        policy = self._policy()
        plans = {
            region: plan_region(read["images"], read["in_use"], now, all_images=read["all_images"], **policy)
            for region, read in reads.items()
        }
        for region, read in reads.items():
            plans[region]["images"] = len(read["images"])
        changed = any(plan["deprecated"] or plan["deregistered"] or plan["deleted_snapshots"] for plan in plans.values())
        result = {"changed": changed, "regions": plans, "dry_run": self.check_mode}
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
