# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The one waiter every bakery.ami module uses. Fixed-attempt waiters give up on slow image
# creations and keep polling images that have already failed; this one:
# - polls adaptively: every 3 s for the first 30 s, then a delay that grows with the time already
#   waited (10 % of it), capped at 15 s: an image is noticed at most 10 % (and never more than
#   15 s) after it becomes available, and a long wait costs a poll every 15 s. The wait for a new
#   image, whose every copy waits on it, starts at every 2 s instead (IMAGE_MIN_DELAY, 10 % of the
#   time waited from 20 s on): its polls are one call each, a few more of them in its first 20 s;
# - keeps that rhythm from the start of the wait (fixed rate, not fixed delay): the time each
#   check takes does not push every later poll back;
# - can skip the poll at time zero (first_delay) when the caller has just started the operation
#   and already knows it is pending;
# - honours a wall-clock timeout (wait_timeout) rather than an attempt count;
# - treats an image that is not visible yet (EC2 is eventually consistent right after
#   CreateImage/CopyImage) as still pending;
# - stops at once when an image fails, with its state reason.
# Several regions are waited for together, so time to "all available" is the slowest one. With
# spread=True (copies started together), each poll asks one region in turn until one of them is
# done, then asks every region still pending: a near-simultaneous finish costs one call per region
# instead of one per region per poll.

from __future__ import annotations

import time
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _aws, _fanout
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

MIN_DELAY = 3.0
# the rhythm of the wait for an image CreateImage has just started (see above)
IMAGE_MIN_DELAY = 2.0
MAX_DELAY = 15.0
GROWTH = 0.1

IMAGE_DONE = "available"
IMAGE_FAILED = frozenset(("failed", "error", "invalid", "deregistered", "disabled"))
# The State wait_for_images(vanish_after=...) gives an image that is not visible when it should be.
IMAGE_MISSING = "missing"
VANISHED = "not visible (deregistered, or never made)"


class WaitTimeout(BakeryError):
    """The wait ran out of time; `pending` names what was still not done (also in the result)."""

    def __init__(self, message: str, pending: dict):
        super().__init__(message, {"pending": pending})
        self.pending = pending


class ImageFailed(BakeryError):
    """An image went to a failed state; the message carries its state reason, the result the image."""

    def __init__(self, region: str, image_id: str, state: str, reason: str):
        super().__init__(
            f"image {image_id} in {region} went to state '{state}': {reason or 'no reason given'}",
            {"image_id": image_id, "state": state, "state_reason": reason},
        )
        self.region = region
        self.image_id = image_id
        self.state = state
        self.reason = reason


def next_delay(elapsed: float, min_delay: float = MIN_DELAY, max_delay: float = MAX_DELAY) -> float:
    """The pause before the next poll, given how long the wait has lasted."""
    return max(min_delay, min(max_delay, elapsed * GROWTH))


def working_sleep(
    work: t.Callable[[], None],
    sleep: t.Callable[[float], None] = time.sleep,
    clock: t.Callable[[], float] = time.monotonic,
) -> t.Callable[[float], None]:
    """A sleep for poll() that does `work` in its first pause and then sleeps what is left of it.

    Work a module needs later (another region's client, say) costs nothing while an operation it
    has just started cannot be done yet; the polls keep their rhythm.
    """
    pending = [work]

    def pause(seconds: float) -> None:
        if pending:
            started = clock()
            pending.pop()()
            seconds -= clock() - started
        if seconds > 0:
            sleep(seconds)

    return pause


def poll(
    check: t.Callable[[], bool],
    timeout: float,
    describe_pending: t.Callable[[], dict],
    what: str,
    *,
    sleep: t.Callable[[float], None] = time.sleep,
    clock: t.Callable[[], float] = time.monotonic,
    min_delay: float = MIN_DELAY,
    max_delay: float = MAX_DELAY,
    first_delay: float = 0.0,
) -> int:
    """Call check() until it returns True; returns how many polls were made.

    first_delay: pause before the first check (the caller knows the thing is not done yet).
    """
    start = clock()
    polls = 0
    # Polls keep their rhythm from the start (3 s, 6 s, 9 s...): the time a check takes is not
    # added to every pause, so the poll that sees the image comes no later than the schedule says.
    due = min(first_delay, timeout) if first_delay > 0 else 0.0
    if due > 0:
        sleep(due)
    while True:
        polls += 1
        if check():
            return polls
        elapsed = clock() - start
        remaining = timeout - elapsed
        if remaining <= 0:
            raise WaitTimeout(f"timed out after {int(timeout)} s waiting for {what}", describe_pending())
        due += next_delay(due, min_delay, max_delay)
        # a check that took longer than the pause: the next one at once would crowd the API
        pause = max(due - elapsed, min_delay / 2)
        due = elapsed + pause
        sleep(min(pause, remaining))


def image_state_reason(image: dict) -> str:
    reason = image.get("StateReason") or {}
    return reason.get("Message") or reason.get("Code") or ""


def wait_for_images(
    targets: dict,
    timeout: float,
    *,
    collect_failures: bool = False,
    spread: bool = False,
    first_delay: float = 0.0,
    vanish_after: float | None = None,
    stop_at_failure: bool = False,
    seen: set | None = None,
    max_workers: int | None = _fanout.MAX_WORKERS,
    min_delay: float = MIN_DELAY,
    sleep: t.Callable[[float], None] = time.sleep,
    clock: t.Callable[[], float] = time.monotonic,
) -> dict:
    """Wait until every image is available.

    targets: {region: (ec2_client, [image_id, ...])}.
    spread: until some region is done, each poll asks only the next region in turn (for images
    started together, which finish close together); afterwards every pending region is asked.
    first_delay: no poll before this many seconds (the caller has just started the images).
    Returns {region: {image_id: image}} with each image as DescribeImages gives it.
    A failed image raises ImageFailed at once, unless collect_failures is true: then it is
    returned with its failed State and the others are still waited for (or, with stop_at_failure,
    the wait ends after that poll and the images still pending are left out of the result).
    vanish_after: an image not visible at a poll this many seconds into the wait is returned with
    State "missing" (collect_failures) instead of being waited for until the timeout.
    seen: a set to which every image ID observed pending is added.
    max_workers: how many regions are asked at once (None: every region of a poll at once).
    min_delay: the shortest pause between polls (see poll()).
    """
    start = clock()
    results: dict = {region: {} for region in targets}
    failed: list = []
    pending = {region: set(ids) for region, (_client, ids) in targets.items() if ids}
    targets_with_ids = set(pending)
    turn = {"next": 0, "one_done": not spread or len(pending) < 2}

    def regions_to_ask() -> list:
        regions = sorted(pending)
        if turn["one_done"]:
            return regions
        region = regions[turn["next"] % len(regions)]
        turn["next"] += 1
        return [region]

    def ask(region: str) -> list:
        ids = sorted(pending[region])
        # A filter (not ImageIds) so an ID that is not visible yet is simply absent instead
        # of failing the whole call with InvalidAMIID.NotFound.
        return _aws.describe_images(
            targets[region][0], Filters=[{"Name": "image-id", "Values": ids}], IncludeDeprecated=True
        )

    def take(region: str, images: list) -> None:
        visible = set()
        for image in images:
            image_id = image["ImageId"]
            visible.add(image_id)
            state = image.get("State")
            if state == IMAGE_DONE or state in IMAGE_FAILED:
                if state in IMAGE_FAILED and not collect_failures:
                    raise ImageFailed(region, image_id, state, image_state_reason(image))
                results[region][image_id] = image
                pending[region].discard(image_id)
                if state in IMAGE_FAILED:
                    failed.append(image_id)
            elif seen is not None:
                seen.add(image_id)
        if vanish_after is not None and clock() - start >= vanish_after:
            for image_id in sorted(pending[region] - visible):
                if not collect_failures:
                    raise ImageFailed(region, image_id, IMAGE_MISSING, VANISHED)
                results[region][image_id] = {"ImageId": image_id, "State": IMAGE_MISSING,
                                             "StateReason": {"Message": VANISHED}}
                pending[region].discard(image_id)
                failed.append(image_id)
        if not pending[region]:
            del pending[region]

    def check() -> bool:
        asked = regions_to_ask()
        while asked:
            # the regions of one round are asked at once (copies finishing together are noticed
            # together); their answers are then taken in order
            for region, images in zip(asked, _fanout.each(ask, asked, max_workers)):
                take(region, images)
            asked = []
            if not turn["one_done"] and len(pending) < len(targets_with_ids):
                # the first region is done: the others are probably done too, ask them now
                turn["one_done"] = True
                asked = sorted(pending)
        return not pending or (stop_at_failure and bool(failed))

    poll(
        check,
        timeout,
        lambda: {region: sorted(ids) for region, ids in pending.items()},
        "images to become available",
        sleep=sleep,
        clock=clock,
        min_delay=min_delay,
        first_delay=first_delay,
    )
    return results


def wait_for_instances(
    client,
    instance_ids: list,
    state: str,
    timeout: float,
    *,
    sleep: t.Callable[[float], None] = time.sleep,
    clock: t.Callable[[], float] = time.monotonic,
) -> dict:
    """Wait until every instance is in `state` (running, stopped or terminated).

    Returns {instance_id: instance}. An instance that is not visible yet counts as pending; one
    that reaches `terminated` while waiting for another state fails the wait.
    """
    results: dict = {}
    pending = set(instance_ids)

    def check() -> bool:
        instances = _aws.describe_instances(
            client, Filters=[{"Name": "instance-id", "Values": sorted(pending)}]
        )
        for instance in instances:
            instance_id = instance["InstanceId"]
            current = instance.get("State", {}).get("Name")
            if current == state:
                results[instance_id] = instance
                pending.discard(instance_id)
            elif current == "terminated" and state != "terminated":
                reason = (instance.get("StateReason") or {}).get("Message", "")
                raise WaitTimeout(
                    f"instance {instance_id} terminated while waiting for '{state}': {reason}",
                    {"instances": [instance_id]},
                )
        return not pending

    poll(
        check,
        timeout,
        lambda: {"instances": sorted(pending)},
        f"instances to be {state}",
        sleep=sleep,
        clock=clock,
    )
    return results
