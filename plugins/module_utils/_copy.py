# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The engine of bakery.ami.ami_copy: distribute one AMI to many regions, as a checked request
# (_copy_request) asks.
#
#   load the source -> plan per region (look up existing copies)
#   -> start every copy (concurrently), wait for all of them together (one region asked per poll
#      until a copy is done), then post-process each (concurrently): tags on the copy and its
#      snapshots, launch permissions, snapshot createVolumePermission, deprecation
#   -> once every copy is available, take pending_tags off the source, the copies and snapshots
#   -> then turn on deregistration protection (protect) where it is not on yet: last, so that a
#      failed run's rollback never meets a copy it protected
#   (with max_concurrency below the region count, each worker takes a region from start to end)
#   -> when any region fails: roll back the copies this run started (never earlier ones).
#
# Idempotency: every copy carries bakery:source-image = <source_region>/<source_image_id> and
# bakery:source-name. A region that already holds an image of this account with that tag
# (pending or available) reuses it, so a rerun makes no CopyImage call. CopyImage gets a
# ClientToken derived from source image, destination region and name, so a request retried
# after a lost answer returns the first copy instead of making a second one.

from __future__ import annotations

import dataclasses
import datetime
import threading
import time
import typing as t

from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _copy_request
from ansible_collections.bakery.ami.plugins.module_utils import _fanout
from ansible_collections.bakery.ami.plugins.module_utils import _protect
from ansible_collections.bakery.ami.plugins.module_utils import _share
from ansible_collections.bakery.ami.plugins.module_utils import _time
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils import _waiter
from ansible_collections.bakery.ami.plugins.module_utils._images import snapshot_ids
from ansible_collections.bakery.ami.plugins.module_utils._images import tags_of as tag_dict

from ansible_collections.bakery.ami.plugins.module_utils._copy_request import SOURCE_NAME_TAG
from ansible_collections.bakery.ami.plugins.module_utils._copy_request import SOURCE_TAG
from ansible_collections.bakery.ami.plugins.module_utils._copy_request import CopyRequest
from ansible_collections.bakery.ami.plugins.module_utils._copy_request import InputError
from ansible_collections.bakery.ami.plugins.module_utils._copy_request import client_token
from ansible_collections.bakery.ami.plugins.module_utils._copy_request import copy_tag_sources
from ansible_collections.bakery.ami.plugins.module_utils._copy_request import source_tag_value
from ansible_collections.bakery.ami.plugins.module_utils._copy_request import user_tags
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

LIVE_STATES = ("pending", "available")

# A ClientToken that answers with a copy which no longer exists (rolled back or deregistered
# since) is retired: the next token of the same request carries a generation suffix.
MAX_TOKEN_GENERATIONS = 4
# How long a copy CopyImage just answered with may stay invisible before it counts as gone. Short
# on purpose: should the copy exist after all, the next token's CopyImage meets its name
# (InvalidAMIName.Duplicate) and the module goes back to that copy.
VISIBILITY_GRACE = 4.0
# A copy a token answers with that is already failed is an old one (the token's copy from an
# earlier run) only if it was made well before this run's CopyImage; otherwise it is this run's
# copy failing, and the region fails. The margin covers a clock that differs from EC2's.
OLD_COPY_MARGIN = datetime.timedelta(minutes=10)
# EC2 rounds deprecation times to the minute.
DEPRECATION_TOLERANCE = datetime.timedelta(seconds=60)


class RegionFailed(BakeryError):
    """One region could not be copied; the message says why."""


class CopyFailed(BakeryError):
    """At least one region failed; `result` holds what the module returns."""


class _Aborted(Exception):
    """Another region failed: stop waiting so the rollback can start (never reaches a module)."""


# ---------------------------------------------------------------------------------------------
# ami_create's copy step


def copy_created_image(request: CopyRequest, clients: dict, created: dict, image: dict | None, check_mode: bool,
                       warn: t.Callable[[str], None], **timing: t.Any) -> dict:
    """Copy the image ami_create has just made or adopted; returns the copy result (without diff).

    created: ami_create's result; image: the image as ami_create last described it (None when
    check mode predicts a new one). Raises CopyFailed (its result without diff) or InputError as
    AmiCopier does; its warnings go to warn either way.
    """
    if created.get("image_id") is None:
        return _copy_request.predict_for_new_source(request, created["name"], created.get("tags") or {})
    request = dataclasses.replace(request, source_image_id=created["image_id"])
    # ami_create may have tagged the image after describing it: the copier sees its tags as they are now
    source = dict(image or {}, ImageId=created["image_id"],
                  Tags=[{"Key": key, "Value": value} for key, value in sorted((created.get("tags") or {}).items())])
    # an image ami_create made in this task (not adopted) cannot have copies yet
    copier = AmiCopier(request, clients, check_mode=check_mode, source=source, source_is_new=not created.get("adopted", True),
                       **timing)
    try:
        result = copier.run()
    except CopyFailed as exc:
        exc.result.pop("diff", None)
        raise
    finally:
        for warning in copier.warnings:
            warn(warning)
    result.pop("diff", None)
    return result


class CopyStepError(BakeryError):
    """ami_create's copy step failed after the image was made or adopted; the message says which image."""


def copy_new_image(request: CopyRequest, clients: dict, region: str, created: dict, image: dict | None, check_mode: bool,
                   warn: t.Callable[[str], None], **timing: t.Any) -> dict:
    """ami_create's copy option: copy the image at once, in the same task; returns ami_create's result
    with ``copies``. A failure raises CopyStepError naming the image it leaves, with ami_create's result
    (and the copies' result when the copy step got that far)."""
    made = f"image {created['image_id']} in {region} is {'adopted' if created['adopted'] else 'made'}"
    try:
        copies = copy_created_image(request, clients, created, image, check_mode, warn, **timing)
    except _copy_request.InputError as e:
        raise CopyStepError(f"{made}, but it cannot be copied: copy: {e.msg}", created) from e
    except CopyFailed as e:
        raise CopyStepError(f"{made}, but copying it failed: {e.msg}", dict(created, copies=e.result)) from e
    except _aws.BakeryAWSError as e:
        raise CopyStepError(f"{made}, but copying it failed: {e.msg}", dict(created, **e.result)) from e
    result = dict(created, copies=copies, changed=created["changed"] or copies["changed"])
    if not check_mode and request.pending_tags and not copies["failed_regions"]:
        # the copy step took them off the image once every copy was available
        result["tags"] = {key: value for key, value in result["tags"].items() if key not in request.pending_tags}
    return result


# ---------------------------------------------------------------------------------------------
# Pure helpers


def missing_tags(current: dict, desired: dict) -> dict:
    return {key: value for key, value in desired.items() if current.get(key) != value}


def pick_existing(images: list, name: str) -> dict | None:
    """Of several copies of the source in one region, prefer available, then the wanted name, then newest."""
    if not images:
        return None

    def rank(image: dict) -> tuple:
        return (
            image.get("State") == "available",
            image.get("Name") == name,
            image.get("CreationDate") or "",
            image.get("ImageId") or "",
        )

    return max(images, key=rank)


def deprecation_differs(current: t.Any, desired: datetime.datetime | None) -> bool:
    if desired is None:
        return False
    parsed = _time.parse(current)
    return parsed is None or abs(parsed - desired) >= DEPRECATION_TOLERANCE


# ---------------------------------------------------------------------------------------------
# The copier


@dataclasses.dataclass
class RegionPlan:
    region: str
    client: t.Any
    name: str
    description: str | None
    kms_key_id: str | None
    action: str  # "source", "reuse" or "copy"
    existing: dict | None = None
    preexisting_ids: tuple = ()
    # what the run knows of the region's copy: its image as last described, and whether it changed
    image: dict = dataclasses.field(default_factory=dict)  # {} until the region's copy is known
    generation: int = 0  # of the ClientToken that started the copy
    started_at: datetime.datetime | None = None  # when this run's CopyImage answered
    changed: bool = False
    done: bool = False  # its entry is final (check-mode prediction, failure, halt)


class AmiCopier:
    """Copies one source AMI to regions; `clients` maps each region (source included) to an EC2 client."""

    def __init__(
        self,
        request: CopyRequest,
        clients: dict,
        check_mode: bool = False,
        *,
        sleep: t.Callable[[float], None] = time.sleep,
        clock: t.Callable[[], float] = time.monotonic,
        source: dict | None = None,
        source_is_new: bool = False,
    ):
        """source: the source image as the caller has just described it (ami_create), saving the look-up.

        source_is_new: the caller made the source image itself, just now (ami_create's CreateImage), so
        no copy of it can exist yet and the look-up for earlier copies is skipped (one call per region).
        """
        self.request = request
        self._given_source = source
        self._source_is_new = source_is_new
        self.clients = clients
        self.check_mode = check_mode
        self._sleep = sleep
        self._clock = clock
        self._deadline = clock() + request.wait_timeout
        self._lock = threading.Lock()
        self._abort = threading.Event()
        self.source: dict = {}
        self.source_tags: dict = {}
        self.images: dict = {}
        self.failed: dict = {}
        self.started: dict = {}
        self.warnings: list = []

    # -- phases ---------------------------------------------------------------------------------

    def run(self) -> dict:
        request = self.request
        self.load_source()
        plans = self.plan()
        before = sorted(plan.region for plan in plans if plan.action == "reuse")
        completed = False
        try:
            self._run_all(plans)
            completed = True
        finally:
            if not completed and self.started and request.rollback_on_failure:
                # An unexpected error ended the run: leave nothing this run started behind.
                self.rollback()
        rolled_back: dict = {}
        rollback_errors: dict = {}
        if self.failed and request.rollback_on_failure and self.started:
            rolled_back, rollback_errors = self.rollback()
        after = sorted(
            region
            for region, entry in self.images.items()
            if region != request.source_region and entry.get("state") in LIVE_STATES + ("predicted",)
            and region not in rolled_back
        )
        changed = any(entry.get("changed") for region, entry in self.images.items() if region not in rolled_back)
        if not self.failed:
            try:
                changed = self.release_pending() or changed
            except RegionFailed as exc:
                self.failed["pending_tags"] = str(exc)
        if not self.failed:
            try:
                changed = self.protect() or changed
            except RegionFailed as exc:
                self.failed["protect"] = str(exc)
        result = {
            "changed": changed,
            "images": self.images,
            "failed_regions": dict(self.failed),
            "diff": {"before": {"regions": before}, "after": {"regions": after}},
        }
        if self.failed:
            result["rolled_back"] = rolled_back
            if rollback_errors:
                result["rollback_errors"] = rollback_errors
            message = "ami_copy failed in " + "; ".join(f"{region}: {error}" for region, error in sorted(self.failed.items()))
            if rolled_back:
                message += "; rolled back the copies this run started in " + ", ".join(sorted(rolled_back))
            if rollback_errors:
                message += "; rollback incomplete in " + ", ".join(sorted(rollback_errors))
            raise CopyFailed(message, result)
        return result

    def load_source(self) -> None:
        request = self.request
        client = self.clients[request.source_region]
        if self._given_source is not None:
            images = [self._given_source]
        else:
            images = _aws.describe_images(client, ImageIds=[request.source_image_id])
        if not images:
            raise InputError(
                f"source_image_id: image {request.source_image_id} does not exist in {request.source_region} "
                "or is not visible to this account"
            )
        source = images[0]
        state = source.get("State")
        if state == "pending":
            if not request.wait:
                raise InputError(
                    f"source_image_id: image {request.source_image_id} in {request.source_region} is still pending; "
                    "it must be available before it is copied (or set wait=true to wait for it)"
                )
            if not self.check_mode:
                try:
                    done = self._wait({request.source_region: (client, [request.source_image_id])})
                except (_waiter.WaitTimeout, _waiter.ImageFailed) as exc:
                    raise InputError(f"source_image_id: {request.source_image_id} did not become available: {exc}") from exc
                source = done[request.source_region][request.source_image_id]
                state = source.get("State")
        if state not in LIVE_STATES:
            raise InputError(
                f"source_image_id: image {request.source_image_id} in {request.source_region} is '{state}', "
                "not available"
            )
        self.source = source
        self.source_tags = tag_dict(source)
        error = _validate.tag_total(
            "tags", "copy",
            copy_tag_sources(request.tags, request.pending_tags, self.source_tags, request.copy_tags),
        )
        if error:
            raise InputError(f"{error} (source image {request.source_image_id} has {len(self.source_tags)} tags)")

    def plan(self) -> list:
        request = self.request
        source_name = self.source.get("Name")
        plans = []
        for spec in request.regions:
            name = spec.name or request.name or source_name
            if spec.region != request.source_region:
                error = _validate.ami_name("name", name)
                if error:
                    raise InputError(f"{error} (the source image's name cannot be used; set name)")
            plans.append(
                RegionPlan(
                    region=spec.region,
                    client=self.clients[spec.region],
                    # a copy's name was checked above; only a nameless source leaves its own region's plan unnamed
                    name=name or "",
                    description=spec.description or request.description or self.source.get("Description"),
                    kms_key_id=spec.kms_key_id or request.kms_key_id,
                    action="source" if spec.region == request.source_region else "copy",
                )
            )
        lookups = [plan for plan in plans if plan.action != "source" and not self._source_is_new]
        tag = source_tag_value(request.source_region, request.source_image_id)
        for plan, found in zip(lookups, self._map(lambda plan: self._find_copies(plan.client, tag), lookups)):
            plan.preexisting_ids = tuple(image["ImageId"] for image in found)
            plan.existing = pick_existing(found, plan.name)
            if plan.existing is not None:
                plan.action = "reuse"
                # a copy made earlier keeps the tags it has: with the ones it lacks, still 50 at most
                have = tag_dict(plan.existing)
                error = _validate.tag_total(
                    "tags", f"copy {plan.existing.get('ImageId')} in {plan.region}",
                    [("its current tags", have), ("this task", missing_tags(have, self.desired_tags()))],
                )
                if error:
                    raise InputError(error)
        return plans

    def _run_all(self, plans: list) -> None:
        """Start every copy (concurrently), wait for all of them together, then finish each."""
        for plan in plans:
            if plan.action == "source":
                # the source region listed among the regions: its image gets the same sharing as the copies
                shared = False
                request = self.request
                if (request.launch_permissions or request.share_user_ids) and self.source.get("State") == "available":
                    added = _share.converge(plan.client, self.source["ImageId"], snapshot_ids(self.source),
                                            request.launch_permissions, request.share_user_ids, not self.check_mode,
                                            tags=self.source_tags)
                    shared = _share.changed(added)
                self.images[plan.region] = self._entry(self.source, changed=shared)
        work = [plan for plan in plans if plan.action != "source"]
        if self.request.max_concurrency and self.request.max_concurrency < len(work):
            # at most max_concurrency copies in flight: each worker takes a region from start to end
            self._each(self._from_start_to_end, work)
            return
        self._each(self._start, work)
        live = [plan for plan in work if not plan.done]
        if self._abort.is_set():
            for plan in live:
                self._halt(plan, "stopped")
            return
        if self.request.wait and not self.check_mode:
            self._wait_together(live)
            live = [plan for plan in live if not plan.done]
        self._each(self._finish, live)

    def _from_start_to_end(self, plan: RegionPlan) -> None:
        self._start(plan)
        if not plan.done and self.request.wait and not self.check_mode:
            self._wait_together([plan])
        if not plan.done:
            self._finish(plan)

    def _each(self, step: t.Callable, plans: list) -> None:
        """Run step(plan) for every plan concurrently; a region's failure is recorded, never raised."""
        list(self._map(lambda plan: self._guarded(step, plan), plans))

    def _guarded(self, step: t.Callable, plan: RegionPlan) -> None:
        if self._abort.is_set():
            self._halt(plan, "stopped" if plan.image else "not started")
            return
        finished = False
        try:
            step(plan)
            finished = True
        except (_aws.BakeryAWSError, RegionFailed, _waiter.ImageFailed) as exc:
            self._fail(plan, str(exc))
        except _waiter.WaitTimeout as exc:
            self._fail(plan, f"{exc} (still pending: {exc.pending})")
        except _Aborted:
            self._halt(plan, "stopped")
        finally:
            if not finished and not plan.done:
                # An unexpected error is on its way up: stop the other regions, run() rolls back.
                self._abort.set()

    def _start(self, plan: RegionPlan) -> None:
        """Start the region's copy (or take the existing one); plan.image is what is known of it."""
        if plan.action == "reuse":
            plan.image = plan.existing or {}  # a reused region always has one
            return
        if self.check_mode:
            plan.done = True
            with self._lock:
                self.images[plan.region] = {
                    "image_id": None,
                    "name": plan.name,
                    "state": "predicted",
                    "changed": True,
                    "snapshot_ids": [],
                    "tags": self.desired_tags(),
                    "deregistration_protection": self.request.protection or _protect.OFF,
                }
            return
        image_id = self.start_copy(plan)
        plan.changed = plan.region in self.started
        if plan.image.get("ImageId") != image_id:
            plan.image = {"ImageId": image_id, "Name": plan.name, "State": "pending"}

    def _wait_together(self, plans: list) -> None:
        """One wait for every region's copy: few calls, and the total is the slowest region.

        A copy CopyImage answered with but that never shows up alive (not visible after
        VISIBILITY_GRACE, or already failed) is one an old token still points at, deregistered
        since: the region starts again with the next token.
        """
        pending = [plan for plan in plans if plan.image.get("State") != _waiter.IMAGE_DONE]
        alive: set = set()
        while pending:
            by_region = {plan.region: plan for plan in pending}
            targets = {plan.region: (plan.client, [plan.image["ImageId"]]) for plan in pending}
            # copies this run has just started cannot be done yet: no poll at time zero
            fresh = all(plan.changed for plan in pending)
            try:
                done = self._wait(
                    targets,
                    spread=True,
                    first_delay=_waiter.MIN_DELAY if fresh else 0.0,
                    collect_failures=True,
                    stop_at_failure=True,
                    vanish_after=VISIBILITY_GRACE,
                    seen=alive,
                )
            except _waiter.WaitTimeout as exc:
                for region in exc.pending:
                    self._fail(by_region[region], f"{exc} (still pending: {exc.pending})")
                for plan in pending:
                    if not plan.done:
                        plan.image = self._describe(plan.client, plan.image["ImageId"]) or plan.image
                return
            again = []
            failed = False
            for region, plan in sorted(by_region.items()):
                image_id = plan.image["ImageId"]
                image = done.get(region, {}).get(image_id)
                if image is None:
                    again.append(plan)  # still pending: another region ended this wait
                elif image.get("State") == _waiter.IMAGE_DONE:
                    plan.image = image
                elif plan.action == "copy" and plan.region in self.started and self._dead_token(plan, image, alive):
                    with self._lock:
                        self.started.pop(plan.region, None)
                    try:
                        restarted = self.start_copy(plan, plan.generation + 1, suspect=image_id)
                    except (_aws.BakeryAWSError, RegionFailed) as exc:
                        self._fail(plan, str(exc))
                        failed = True
                        continue
                    plan.image = {"ImageId": restarted, "Name": plan.name, "State": "pending"}
                    plan.changed = plan.region in self.started
                    again.append(plan)
                else:
                    self._fail(plan, str(_waiter.ImageFailed(region, image_id, image.get("State"),
                                                             _waiter.image_state_reason(image))))
                    failed = True
            if failed and self.request.rollback_on_failure:
                for plan in again:
                    self._halt(plan, "stopped")
                return
            pending = again

    @staticmethod
    def _dead_token(plan: RegionPlan, image: dict, alive: set) -> bool:
        """Did CopyImage answer with a copy of an earlier run that is gone (or failed) since?

        Never for a copy seen alive in this run. A copy that is not visible at all is one. A failed
        one only if it was made well before this run's CopyImage: a copy of this run that fails
        fast (a KMS key it may not use, for example) fails the region instead of being retried.
        """
        if image["ImageId"] in alive:
            return False
        if image.get("State") == _waiter.IMAGE_MISSING:
            return True
        created = _time.parse(image.get("CreationDate"))
        return created is not None and plan.started_at is not None and created < plan.started_at - OLD_COPY_MARGIN

    def _finish(self, plan: RegionPlan) -> None:
        """Tags, permissions and deprecation of an available copy; the region's entry."""
        request = self.request
        image = plan.image
        changed = plan.changed
        if image.get("State") == _waiter.IMAGE_DONE or (self.check_mode and request.wait):
            if self.converge(plan, image):
                changed = True
                image = self._describe(plan.client, image["ImageId"]) or image
        elif request.launch_permissions or request.deprecate_at or request.share_user_ids:
            self._warn(
                f"{plan.region}: {image['ImageId']} is still {image.get('State')}; launch permissions, snapshot "
                "permissions and deprecation are applied once it is available (run the task again with wait=true)"
            )
        with self._lock:
            self.images[plan.region] = self._entry(image, changed)

    def release_pending(self) -> bool:
        """Take pending_tags off the source, every copy and their snapshots once all are available.

        One DeleteTags per region (image and snapshots together), so an image without the tags
        means its snapshots lost them in the same call. Returns whether anything was (or, in check
        mode, would be) removed.
        """
        request = self.request
        keys = sorted(request.pending_tags)
        if not keys or self.failed:
            return False
        states = {entry.get("state") for region, entry in self.images.items()}
        if not states <= {_waiter.IMAGE_DONE, "predicted"}:
            self._warn("pending_tags stay on the images until every copy is available (run the task again with wait=true)")
            return False
        work = []
        if any(key in self.source_tags for key in keys):
            work.append((request.source_region, [request.source_image_id] + snapshot_ids(self.source)))
        for region, entry in sorted(self.images.items()):
            if region != request.source_region and entry.get("image_id") and any(key in entry["tags"] for key in keys):
                work.append((region, [entry["image_id"]] + list(entry.get("snapshot_ids") or [])))
        if not work or self.check_mode:
            return bool(work)

        def untag(region: str, resource_ids: list) -> None:
            _aws.delete_tags(self.clients[region], resource_ids, [{"Key": key} for key in keys])

        failures = self._last_step(untag, work)
        for region, entry in self.images.items():
            if region not in failures:
                for key in keys:
                    entry["tags"].pop(key, None)
        self._raise_failures(failures, "pending_tags could not be removed")
        return True

    def protect(self) -> bool:
        """Deregistration protection on every available copy (and the listed source) that lacks it.

        Only once every region is done, so a rollback never meets a copy this run protected. Each
        region's entry shows the protection (predicted in check mode) and counts as changed when it
        was turned on. Returns whether anything was (or, in check mode, would be) turned on.
        """
        request = self.request
        if request.protection is None:
            return False
        work = []
        for region, entry in sorted(self.images.items()):
            if entry.get("state") == "predicted":
                entry["deregistration_protection"] = request.protection
            elif entry.get("state") != _waiter.IMAGE_DONE:
                self._warn(f"protect: {region}: {entry.get('image_id')} is {entry.get('state')}; it is protected once "
                           "available (run the task again with wait=true)")
            elif _protect.needed({"DeregistrationProtection": entry.get("deregistration_protection")}, request.protection):
                work.append((region, entry))
        if not work:
            return False

        def turn_on(region: str, entry: dict) -> None:
            if not self.check_mode:
                _aws.enable_image_deregistration_protection(
                    self.clients[region], entry["image_id"], _protect.with_cooldown(request.protection))
            with self._lock:
                entry["deregistration_protection"] = request.protection
                entry["changed"] = True

        self._raise_failures(self._last_step(turn_on, work), "deregistration protection could not be turned on")
        return True

    def _last_step(self, step: t.Callable, work: list) -> dict:
        """step(region, item) for every (region, item) of work at once; {region: error} of the AWS calls that failed."""
        failures: dict = {}

        def guarded(pair: tuple) -> None:
            try:
                step(*pair)
            except _aws.BakeryAWSError as exc:
                with self._lock:
                    failures[pair[0]] = str(exc)

        list(self._map(guarded, work))
        return failures

    @staticmethod
    def _raise_failures(failures: dict, what: str) -> None:
        if failures:
            raise RegionFailed(
                f"the copies are available but {what} in "
                + "; ".join(f"{region}: {error}" for region, error in sorted(failures.items()))
                + " (run the task again)"
            )

    # -- AWS steps --------------------------------------------------------------------------------

    def _find_copies(self, client, tag: str) -> list:
        return _aws.describe_images(
            client,
            Owners=["self"],
            Filters=[
                {"Name": f"tag:{SOURCE_TAG}", "Values": [tag]},
                {"Name": "state", "Values": list(LIVE_STATES)},
            ],
            IncludeDeprecated=True,
        )

    def _describe(self, client, image_id: str) -> dict | None:
        images = _aws.describe_images(client, Filters=[{"Name": "image-id", "Values": [image_id]}], IncludeDeprecated=True)
        return images[0] if images else None

    def desired_tags(self) -> dict:
        """Tags of every copy and of its snapshots: source's (copy_tags), then `tags`, then ours."""
        request = self.request
        tags: dict = {}
        if request.copy_tags:
            tags.update(user_tags(self.source_tags))
        tags.update(request.tags)
        tags[SOURCE_TAG] = source_tag_value(request.source_region, request.source_image_id)
        tags[SOURCE_NAME_TAG] = self.source.get("Name") or ""
        return tags

    def copy_params(self, plan: RegionPlan) -> dict:
        request = self.request
        desired = self.desired_tags()
        # CopyImageTags brings the source's tags to the image (not to its snapshots); the image's
        # tag specification adds only what it would not bring.
        inherited = user_tags(self.source_tags) if request.copy_tags else {}
        # pending_tags mark the new copy and its snapshots until every copy is done
        desired.update(request.pending_tags)
        own = {key: value for key, value in desired.items() if inherited.get(key) != value}
        params = {
            "SourceImageId": request.source_image_id,
            "SourceRegion": request.source_region,
            "Name": plan.name,
            "CopyImageTags": request.copy_tags,
            "TagSpecifications": [
                {"ResourceType": "image", "Tags": ansible_dict_to_boto3_tag_list(own)},
                {"ResourceType": "snapshot", "Tags": ansible_dict_to_boto3_tag_list(desired)},
            ],
        }
        if plan.description:
            params["Description"] = plan.description
        if request.encrypted:
            params["Encrypted"] = True
            if plan.kms_key_id:
                params["KmsKeyId"] = plan.kms_key_id
        return params

    def start_copy(self, plan: RegionPlan, generation: int = 0, suspect: str | None = None) -> str:
        """CopyImage in the destination region with the request's ClientToken of `generation`.

        suspect: the copy the previous token answered with, which never showed up alive (see
        _wait_together); should the next token meet its name, the module goes back to it.
        """
        request = self.request
        params = self.copy_params(plan)
        for gen in range(generation, MAX_TOKEN_GENERATIONS):
            token = client_token(request.source_region, request.source_image_id, plan.region, plan.name, gen)
            try:
                image_id = _aws.copy_image(plan.client, ClientToken=token, **params)["ImageId"]
            except _aws.BakeryAWSError as exc:
                if exc.code == "IdempotentParameterMismatch":
                    continue  # this token served another request earlier: take the next one
                if exc.code == "InvalidAMIName.Duplicate" and suspect is not None:
                    holder = self._name_holder(plan)
                    if holder is None or holder == suspect:
                        # The copy the previous token answered with exists but was not visible yet.
                        plan.generation = gen
                        self._record_start(plan, suspect)
                        return suspect
                raise RegionFailed(f"CopyImage failed: {exc}") from exc
            plan.generation = gen
            plan.started_at = _time.now()
            if image_id not in plan.preexisting_ids:
                self._record_start(plan, image_id)
            return image_id
        raise RegionFailed(
            f"CopyImage answered {MAX_TOKEN_GENERATIONS} times with copies that no longer exist "
            f"(last {suspect}); deregistered copies keep their client tokens"
        )

    def _record_start(self, plan: RegionPlan, image_id: str) -> None:
        with self._lock:
            self.started[plan.region] = image_id

    def _name_holder(self, plan: RegionPlan) -> str | None:
        images = _aws.describe_images(
            plan.client, Owners=["self"], Filters=[{"Name": "name", "Values": [plan.name]}], IncludeDeprecated=True
        )
        return images[0]["ImageId"] if images else None

    def converge(self, plan: RegionPlan, image: dict) -> bool:
        """Bring an available copy's tags, permissions and deprecation to the request; True if changed."""
        request = self.request
        client = plan.client
        image_id = image["ImageId"]
        act = not self.check_mode
        changed = False
        desired = self.desired_tags()

        todo = missing_tags(tag_dict(image), desired)
        if todo:
            changed = True
            if act:
                _aws.create_tags(client, [image_id], ansible_dict_to_boto3_tag_list(todo))

        snaps = snapshot_ids(image)
        # a copy this run started got its snapshot tags from CopyImage's tag specification
        if snaps and plan.region not in self.started:
            snapshot_todo: dict = {}
            needing = []
            for snapshot in _aws.describe_snapshots(client, SnapshotIds=snaps):
                todo = missing_tags(tag_dict(snapshot), desired)
                if todo:
                    needing.append(snapshot["SnapshotId"])
                    snapshot_todo.update(todo)
            if needing:
                changed = True
                if act:
                    _aws.create_tags(client, needing, ansible_dict_to_boto3_tag_list(snapshot_todo))

        added = _share.converge(client, image_id, snaps, request.launch_permissions, request.share_user_ids, act,
                                tags=tag_dict(image))
        if _share.changed(added):
            changed = True

        if deprecation_differs(image.get("DeprecationTime"), request.deprecate_at):
            changed = True
            if act:
                _aws.enable_image_deprecation(client, image_id, request.deprecate_at)
        return changed

    def rollback(self) -> tuple:
        """Deregister the copies this run started and delete their snapshots."""
        with self._lock:
            started = dict(self.started)
            self.started.clear()
        rolled_back: dict = {}
        errors: dict = {}

        def undo(item: tuple) -> None:
            region, image_id = item
            client = self.clients[region]
            try:
                image = self._describe(client, image_id)
                snaps = snapshot_ids(image) if image else []
                for snapshot in _aws.describe_snapshots(
                    client, OwnerIds=["self"], Filters=[{"Name": "description", "Values": [f"*{image_id}*"]}]
                ):
                    if snapshot["SnapshotId"] not in snaps:
                        snaps.append(snapshot["SnapshotId"])
                _aws.deregister_image(client, image_id)
                for snapshot_id in snaps:
                    _aws.delete_snapshot(client, snapshot_id)
            except _aws.BakeryAWSError as exc:
                with self._lock:
                    errors[region] = f"{image_id}: {exc}"
                return
            with self._lock:
                rolled_back[region] = image_id
                entry = self.images.get(region)
                if entry is not None:
                    entry["state"] = "deregistered"
                    entry["changed"] = False

        list(self._map(undo, sorted(started.items())))
        return rolled_back, errors

    # -- plumbing -------------------------------------------------------------------------------

    def _entry(self, image: dict, changed: bool) -> dict:
        return {
            "image_id": image.get("ImageId"),
            "name": image.get("Name"),
            "state": image.get("State"),
            "changed": changed,
            "snapshot_ids": snapshot_ids(image),
            "tags": tag_dict(image),
            "deregistration_protection": _protect.of(image),
        }

    def _fail(self, plan: RegionPlan, message: str) -> None:
        plan.done = True
        with self._lock:
            self.failed[plan.region] = message
            self.images[plan.region] = self._blank(plan, "failed")
        if self.request.rollback_on_failure:
            # The other regions' copies will be rolled back: stop waiting for them.
            self._abort.set()

    def _halt(self, plan: RegionPlan, state: str) -> None:
        """A region left unfinished because another one failed (its copy is rolled back)."""
        plan.done = True
        with self._lock:
            if plan.action == "reuse" and plan.image:
                # an earlier run's copy: not rolled back, reported as it is
                self.images[plan.region] = self._entry(plan.image, False)
            else:
                self.images[plan.region] = self._blank(plan, state)

    def _blank(self, plan: RegionPlan, state: str) -> dict:
        """Call with the lock held."""
        image_id = self.started.get(plan.region)
        return {
            "image_id": image_id,
            "name": plan.name,
            "state": state,
            "changed": image_id is not None,
            "snapshot_ids": [],
            "tags": {},
            "deregistration_protection": None,
        }

    def _warn(self, message: str) -> None:
        with self._lock:
            self.warnings.append(message)

    def _pause(self, seconds: float) -> None:
        if self._abort.is_set():
            raise _Aborted()
        if self._sleep is time.sleep:
            if self._abort.wait(seconds):
                raise _Aborted()
        else:
            self._sleep(seconds)
            if self._abort.is_set():
                raise _Aborted()

    def _wait(self, targets: dict, **options: t.Any) -> dict:
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise _waiter.WaitTimeout(
                f"timed out after {int(self.request.wait_timeout)} s waiting for images to become available",
                {region: ids for region, (_client, ids) in targets.items()},
            )
        # the regions of a poll are asked as many at once as the copies run (by default all of them)
        return _waiter.wait_for_images(targets, remaining, sleep=self._pause, clock=self._clock,
                                       max_workers=self.request.max_concurrency, **options)

    def _map(self, func: t.Callable, items: list) -> list:
        return _fanout.each(func, items, self.request.max_concurrency)
