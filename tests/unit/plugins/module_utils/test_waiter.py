# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import threading
from unittest.mock import patch

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _waiter

DESCRIBE = "ansible_collections.bakery.ami.plugins.module_utils._aws.describe_images"
DESCRIBE_INSTANCES = "ansible_collections.bakery.ami.plugins.module_utils._aws.describe_instances"


class FakeClock:
    """Time that moves only when the waiter sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def image(image_id, state, reason=None):
    result = {"ImageId": image_id, "State": state}
    if reason:
        result["StateReason"] = {"Code": "Client.Error", "Message": reason}
    return result


@pytest.mark.parametrize(
    "elapsed,expected",
    [(0, 3.0), (5, 3.0), (20, 3.0), (30, 3.0), (60, 6.0), (120, 12.0), (150, 15.0), (10000, 15.0)],
)
def test_next_delay_grows_with_elapsed_time_between_3_and_15_seconds(elapsed, expected):
    assert _waiter.next_delay(elapsed) == pytest.approx(expected)


def test_not_found_right_after_create_is_pending_then_available():
    clock = FakeClock()
    answers = [[], [image("ami-11111111", "pending")], [image("ami-11111111", "available")]]
    with patch(DESCRIBE, side_effect=answers) as describe:
        result = _waiter.wait_for_images(
            {"us-east-1": ("client", ["ami-11111111"])}, 600, sleep=clock.sleep, clock=clock.clock
        )
    assert result == {"us-east-1": {"ami-11111111": image("ami-11111111", "available")}}
    assert describe.call_count == 3
    # The ID goes to the server as a filter, so an invisible ID cannot fail the call.
    assert describe.call_args.kwargs["Filters"] == [{"Name": "image-id", "Values": ["ami-11111111"]}]
    assert clock.sleeps == [3.0, 3.0]


@pytest.mark.parametrize("check_seconds", [0.0, 0.05, 0.4, 1.2])
def test_polls_keep_their_rhythm_however_long_a_check_takes(check_seconds):
    """Polls start 3, 6, 9... s into the wait (then every 10 % of the time waited): the time the
    checks take is not added to every pause, so the poll that sees the image is not late."""
    clock = FakeClock()
    started_at = []

    def check():
        started_at.append(clock.now)
        clock.now += check_seconds
        return len(started_at) == 20

    _waiter.poll(check, 600, dict, "the image", sleep=clock.sleep, clock=clock.clock, first_delay=3.0)
    expected, due = [3.0], 3.0
    while len(expected) < 20:
        due += _waiter.next_delay(due)
        expected.append(due)
    assert started_at == pytest.approx(expected)


def test_a_check_slower_than_the_pause_is_followed_by_half_a_pause_at_least():
    clock = FakeClock()
    calls = []

    def check():
        calls.append(clock.now)
        clock.now += 5.0
        return len(calls) == 3

    _waiter.poll(check, 600, dict, "the image", sleep=clock.sleep, clock=clock.clock)
    assert clock.sleeps == [1.5, 1.5]


@pytest.mark.parametrize("work_seconds", [0.0, 1.25, 2.9, 4.0])
def test_work_done_in_the_first_pause_shortens_that_pause_and_moves_no_poll(work_seconds):
    """working_sleep: the work runs once, at the first pause, and the polls keep the rhythm they
    would have without it (a work longer than the pause delays only the first poll)."""
    clock = FakeClock()
    done = []
    polled_at = []

    def work():
        done.append(clock.now)
        clock.now += work_seconds

    def check():
        polled_at.append(clock.now)
        return len(polled_at) == 4

    sleep = _waiter.working_sleep(work, clock.sleep, clock.clock)
    _waiter.poll(check, 600, dict, "the image", sleep=sleep, clock=clock.clock, first_delay=3.0)
    assert done == [0.0]
    assert polled_at == pytest.approx([max(3.0, work_seconds), 6.0, 9.0, 12.0])
    if work_seconds < 3.0:
        assert clock.sleeps[0] == pytest.approx(3.0 - work_seconds)
    else:  # nothing left of the first pause: the second one is shortened instead
        assert clock.sleeps[0] == pytest.approx(6.0 - work_seconds)


def test_failed_image_stops_the_wait_at_once_with_its_reason():
    clock = FakeClock()
    answers = [[image("ami-22222222", "pending")], [image("ami-22222222", "failed", "snapshot copy failed")]]
    with patch(DESCRIBE, side_effect=answers):
        with pytest.raises(_waiter.ImageFailed, match="snapshot copy failed") as caught:
            _waiter.wait_for_images({"eu-west-1": ("c", ["ami-22222222"])}, 3600, sleep=clock.sleep, clock=clock.clock)
    assert caught.value.region == "eu-west-1"
    assert caught.value.state == "failed"
    assert clock.now < 10  # not held until the timeout


def test_collect_failures_returns_the_failed_image_and_waits_for_the_rest():
    clock = FakeClock()

    def describe(client, **params):
        ids = params["Filters"][0]["Values"]
        if client == "east":
            return [image("ami-33333333", "failed", "boom")]
        return [image(i, "available" if clock.now >= 4 else "pending") for i in ids]

    with patch(DESCRIBE, side_effect=describe):
        result = _waiter.wait_for_images(
            {"us-east-1": ("east", ["ami-33333333"]), "us-west-2": ("west", ["ami-44444444"])},
            600,
            collect_failures=True,
            sleep=clock.sleep,
            clock=clock.clock,
        )
    assert result["us-east-1"]["ami-33333333"]["State"] == "failed"
    assert result["us-west-2"]["ami-44444444"]["State"] == "available"


def test_timeout_names_what_is_still_pending():
    clock = FakeClock()
    with patch(DESCRIBE, return_value=[image("ami-55555555", "pending")]):
        with pytest.raises(_waiter.WaitTimeout) as caught:
            _waiter.wait_for_images({"us-east-1": ("c", ["ami-55555555"])}, 30, sleep=clock.sleep, clock=clock.clock)
    assert caught.value.pending == {"us-east-1": ["ami-55555555"]}
    assert clock.now == pytest.approx(30)  # the last sleep is cut to the time left


def test_regions_are_waited_for_together_so_total_time_is_the_slowest():
    clock = FakeClock()
    ready_at = {"a": 10, "b": 40, "c": 25}

    ids = {"a": "ami-00000001", "b": "ami-00000002", "c": "ami-00000003"}

    def describe(client, **params):
        return [image(ids[client], "available" if clock.now >= ready_at[client] else "pending")]

    targets = {f"r-{c}": (c, [image_id]) for c, image_id in ids.items()}
    with patch(DESCRIBE, side_effect=describe):
        _waiter.wait_for_images(targets, 600, sleep=clock.sleep, clock=clock.clock)
    assert 40 <= clock.now <= 40 * 1.2  # the slowest region plus at most one growing poll interval


def test_instances_wait_for_state_and_fail_when_terminated():
    clock = FakeClock()
    states = iter(["pending", "running"])
    with patch(DESCRIBE_INSTANCES, side_effect=lambda c, **p: [{"InstanceId": "i-12345678", "State": {"Name": next(states)}}]):
        result = _waiter.wait_for_instances("c", ["i-12345678"], "running", 60, sleep=clock.sleep, clock=clock.clock)
    assert list(result) == ["i-12345678"]
    with patch(DESCRIBE_INSTANCES, return_value=[{"InstanceId": "i-12345678", "State": {"Name": "terminated"}}]):
        with pytest.raises(_waiter.WaitTimeout, match="terminated while waiting"):
            _waiter.wait_for_instances("c", ["i-12345678"], "stopped", 60, sleep=clock.sleep, clock=clock.clock)


def test_first_delay_skips_the_poll_at_time_zero():
    clock = FakeClock()
    answers = [[image("ami-11111111", "available")]]
    with patch(DESCRIBE, side_effect=answers) as describe:
        _waiter.wait_for_images(
            {"us-east-1": ("client", ["ami-11111111"])}, 600, first_delay=3.0, sleep=clock.sleep, clock=clock.clock
        )
    assert describe.call_count == 1
    assert clock.sleeps == [3.0]


def _image_wait(ready_at: float, **options) -> tuple:
    """A wait for one image that becomes available at `ready_at` s; (when it was seen, the polls)."""
    clock = FakeClock()
    polls = []

    def describe(client, **params):
        polls.append(clock.now)
        return [image("ami-11111111", "available" if clock.now >= ready_at else "pending")]

    with patch(DESCRIBE, side_effect=describe):
        _waiter.wait_for_images({"us-east-1": ("client", ["ami-11111111"])}, 3600, sleep=clock.sleep,
                                clock=clock.clock, **options)
    return clock.now, polls


NEW_IMAGE = {"min_delay": _waiter.IMAGE_MIN_DELAY, "first_delay": _waiter.IMAGE_MIN_DELAY}


@pytest.mark.parametrize("ready_at", [1.0, 7.3, 14.0, 19.9, 20.0, 20.1, 29.0, 45.5, 90.0, 301.0])
def test_a_new_image_is_noticed_within_2_s_in_its_first_20_s_and_within_10_percent_after(ready_at):
    """The rhythm ami_create waits for a new image with (IMAGE_MIN_DELAY), for any moment it is ready."""
    seen, polls = _image_wait(ready_at, **NEW_IMAGE)
    assert polls[0] == _waiter.IMAGE_MIN_DELAY  # nothing at time zero: CreateImage has just started it
    assert seen - ready_at <= max(_waiter.IMAGE_MIN_DELAY, ready_at * _waiter.GROWTH * 1.1) + 1e-9, (seen, polls)
    assert all(b - a >= _waiter.IMAGE_MIN_DELAY - 1e-9 for a, b in zip(polls, polls[1:], strict=False)), polls
    # a few polls more than the 3 s rhythm of the other waits, however long the wait
    assert len(polls) - len(_image_wait(ready_at, first_delay=_waiter.MIN_DELAY)[1]) <= 5


def test_a_new_image_is_noticed_sooner_on_average_over_its_first_30_s():
    ready = [n / 10 for n in range(1, 301)]
    late_2s = sum(_image_wait(r, **NEW_IMAGE)[0] - r for r in ready) / len(ready)
    late_3s = sum(_image_wait(r, first_delay=_waiter.MIN_DELAY)[0] - r for r in ready) / len(ready)
    assert late_2s <= late_3s - 0.3, (late_2s, late_3s)


def _spread_run(ready_at: dict, spread: bool):
    clock = FakeClock()
    ids = {client: "ami-0000000%d" % n for n, client in enumerate(sorted(ready_at), start=1)}
    asked = []

    def describe(client, **params):
        asked.append(client)
        return [image(ids[client], "available" if clock.now >= ready_at[client] else "pending")]

    targets = {"r-" + client: (client, [image_id]) for client, image_id in ids.items()}
    with patch(DESCRIBE, side_effect=describe):
        result = _waiter.wait_for_images(targets, 600, spread=spread, first_delay=3.0, sleep=clock.sleep, clock=clock.clock)
    return clock, asked, result


def test_spread_asks_one_region_per_poll_until_one_is_done_then_the_rest_at_once():
    clock, asked, result = _spread_run({"a": 30, "b": 30, "c": 30}, spread=True)
    _clock2, asked_all, _result2 = _spread_run({"a": 30, "b": 30, "c": 30}, spread=False)
    assert all(len(images) == 1 for images in result.values())
    polls = len(clock.sleeps)
    # one call per poll, plus the two other regions asked right after the first one is done
    assert len(asked) == polls + 2
    assert len(asked_all) == 3 * polls
    # the regions take turns
    assert asked[:3] == ["a", "b", "c"]
    assert 30 <= clock.now <= 30 * 1.25


def test_spread_still_waits_for_a_slower_region_and_asks_only_it():
    clock, asked, result = _spread_run({"a": 10, "b": 40, "c": 10}, spread=True)
    assert set(result) == {"r-a", "r-b", "r-c"}
    assert 40 <= clock.now <= 40 * 1.25
    # once a and c are done, only b is asked
    last_a_or_c = max(i for i, client in enumerate(asked) if client in ("a", "c"))
    assert asked[last_a_or_c + 1:] and set(asked[last_a_or_c + 1:]) == {"b"}
    assert len(asked) < 3 * len(clock.sleeps)


def _copies_done_at_30(regions: int, wait_for_peak: int, **options) -> tuple:
    """A spread wait for `regions` copies that are all done at 30 s. Each call of the round after
    the first done one is counted in flight and waits (up to 1 s) until wait_for_peak calls are
    under way beside each other. Returns (the wait's result, the targets, the counts)."""
    clock = FakeClock()
    lock = threading.Condition()
    flight = {"now": 0, "peak": 0, "done": 0}

    def describe(client, **params):
        image_id = params["Filters"][0]["Values"][0]
        if clock.now < 30:
            return [image(image_id, "pending")]
        with lock:
            flight["done"] += 1
            if flight["done"] == 1:  # the region of this poll (spread: one at a time)
                return [image(image_id, "available")]
            flight["now"] += 1
            flight["peak"] = max(flight["peak"], flight["now"])
            lock.notify_all()
            lock.wait_for(lambda: flight["peak"] >= wait_for_peak, timeout=1)
            flight["now"] -= 1
        return [image(image_id, "available")]

    targets = {"r%02d" % n: ("c%02d" % n, ["ami-%08d" % n]) for n in range(regions)}
    with patch(DESCRIBE, side_effect=describe):
        result = _waiter.wait_for_images(targets, 600, spread=True, first_delay=3.0, sleep=clock.sleep,
                                         clock=clock.clock, **options)
    return result, targets, flight


@pytest.mark.parametrize("regions", [3, 8, 16])
def test_the_regions_asked_together_are_asked_at_once(regions):
    """Once the first copy is done, the other regions are asked at the same moment: each of those
    calls waits (up to 1 s) for another one to be under way beside it, which asking one region
    after the other never gives."""
    result, targets, flight = _copies_done_at_30(regions, 2)
    assert sorted(result) == sorted(targets)
    assert all(found["State"] == "available" for images in result.values() for found in images.values())
    assert flight["done"] == regions
    assert flight["peak"] >= 2


def test_vanish_after_reports_an_image_that_never_shows_up_and_stop_at_failure_ends_the_wait():
    clock = FakeClock()
    seen = set()

    def describe(client, **params):
        if client == "gone":
            return []
        return [image("ami-00000002", "available" if clock.now >= 30 else "pending")]

    targets = {"r-gone": ("gone", ["ami-00000001"]), "r-slow": ("slow", ["ami-00000002"])}
    with patch(DESCRIBE, side_effect=describe):
        result = _waiter.wait_for_images(targets, 600, collect_failures=True, stop_at_failure=True,
                                         vanish_after=4.0, seen=seen, sleep=clock.sleep, clock=clock.clock)
    assert result["r-gone"] == {"ami-00000001": {"ImageId": "ami-00000001", "State": _waiter.IMAGE_MISSING,
                                                 "StateReason": {"Message": _waiter.VANISHED}}}
    assert result["r-slow"] == {}  # still pending when the wait ended
    assert 4.0 <= clock.now < 30
    assert seen == {"ami-00000002"}


def test_without_collect_failures_a_vanished_image_raises():
    clock = FakeClock()
    with patch(DESCRIBE, return_value=[]):
        with pytest.raises(_waiter.ImageFailed, match="not visible"):
            _waiter.wait_for_images({"r": ("c", ["ami-00000001"])}, 600, vanish_after=4.0,
                                    sleep=clock.sleep, clock=clock.clock)
    assert clock.now < 10


@pytest.mark.parametrize("max_workers, expected_peak", [(None, 15), (8, 8), (1, 1)])
def test_max_workers_bounds_the_regions_asked_at_once(max_workers, expected_peak):
    """16 copies started together, the first done: the other 15 are asked in one round, as many at
    once as max_workers allows (None: all of them). Each call of that round waits (up to 1 s) until
    the peak of the round is reached, so a lower bound than asked for shows as a lower peak."""
    result, targets, flight = _copies_done_at_30(16, expected_peak, max_workers=max_workers)
    assert sorted(result) == sorted(targets)
    assert flight["peak"] == expected_peak
