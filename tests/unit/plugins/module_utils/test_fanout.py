# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one regional fan-out that ami_find, ami_copy and ami_prune share."""
from __future__ import annotations

import threading

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _fanout

REGIONS = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1"]


def test_each_keeps_the_order_of_the_items_whatever_finishes_first():
    done = {region: threading.Event() for region in REGIONS}

    def work(region):
        # each region waits for the one after it: the last finishes first
        later = REGIONS[REGIONS.index(region) + 1:]
        if later:
            assert done[later[0]].wait(5)
        done[region].set()
        return region.upper()

    assert _fanout.each(work, REGIONS, max_workers=None) == [r.upper() for r in REGIONS]


def test_each_runs_the_items_at_once_up_to_max_workers():
    barrier = threading.Barrier(len(REGIONS), timeout=5)
    assert _fanout.each(lambda region: barrier.wait() >= 0, REGIONS) == [True] * len(REGIONS)
    running, most = [0], [0]
    lock = threading.Lock()

    def count(_region):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(0.02)
        with lock:
            running[0] -= 1

    _fanout.each(count, REGIONS * 3, max_workers=2)
    assert most[0] == 2


def test_each_without_threads_for_one_item_and_none():
    assert _fanout.each(lambda _r: threading.current_thread() is threading.main_thread(), ["r"]) == [True]
    assert _fanout.each(lambda _r: 1, []) == []


def test_each_raises_the_first_failure_in_the_order_of_the_items():
    def work(region):
        if region == "eu-west-1":
            threading.Event().wait(0.05)  # fails last in time, first in order
        if region in ("eu-west-1", "sa-east-1"):
            raise ValueError(region)
        return region

    with pytest.raises(ValueError, match="^eu-west-1$"):
        _fanout.each(work, REGIONS, max_workers=None)


def test_each_caught_keeps_the_named_failures_per_item_and_raises_others():
    def work(region):
        if region == "eu-west-1":
            raise KeyError(region)
        return len(region)

    results, errors = _fanout.each_caught(work, REGIONS, (KeyError,))
    assert results == {r: len(r) for r in REGIONS if r != "eu-west-1"}
    assert list(errors) == ["eu-west-1"] and isinstance(errors["eu-west-1"], KeyError)
    with pytest.raises(KeyError):
        _fanout.each_caught(work, REGIONS, (ValueError,))
