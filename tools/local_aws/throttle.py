# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""EC2's request-rate limits as token buckets (the endpoint's ``throttle`` setting).

EC2 throttles each account per region and evaluates every API action on its own: each action has
a bucket of tokens, a request takes one, and the bucket refills at a set rate up to its capacity.
An empty bucket answers ``RequestLimitExceeded`` and leaves the other actions alone. The sizes
below are the ones the EC2 API documentation lists ("Request throttling for the Amazon EC2 API",
request token bucket sizes and refill rates): a category per kind of action, and actions of
their own ("uncategorized") where the documentation gives them one. The resource-rate buckets of
RunInstances/StartInstances/StopInstances/TerminateInstances (instances, not requests) are not
modelled, nor the console's buckets.

Buckets start full, are kept per (region, action) and refill continuously; every reset or
configuration change of the endpoint refills them all. Only EC2 requests are throttled.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from tools.local_aws.state import STATE

# (capacity, refill per second)
NON_MUTATING = (100.0, 20.0)
UNFILTERED = (50.0, 10.0)
MUTATING = (50.0, 5.0)
RESOURCE_INTENSIVE = (50.0, 5.0)

NON_MUTATING_PREFIXES = ("Describe", "List", "Search", "Get")
# Describe actions that take from a smaller bucket when asked without a filter and without pagination.
UNFILTERED_ACTIONS = frozenset({
    "DescribeInstances", "DescribeInstanceStatus", "DescribeNetworkInterfaces", "DescribeSecurityGroups",
    "DescribeSnapshots", "DescribeSpotInstanceRequests", "DescribeVolumes",
})
RESOURCE_INTENSIVE_ACTIONS = frozenset({
    "AcceptVpcPeeringConnection", "AuthorizeSecurityGroupIngress", "CancelSpotInstanceRequests", "CreateKeyPair",
    "CreateVpcPeeringConnection", "DeleteVpcPeeringConnection", "RejectVpcPeeringConnection",
    "RevokeSecurityGroupIngress", "RequestSpotInstances",
})
# The uncategorized actions the collection and its benchmarks use (the documentation lists more).
OWN_BUCKETS = {
    "CopyImage": (100.0, 1.0),
    "CreateLaunchTemplateVersion": (100.0, 5.0),
    "CreateSnapshot": (100.0, 5.0),
    "CreateTags": (100.0, 10.0),
    "CreateVolume": (100.0, 5.0),
    "DeleteSnapshot": (100.0, 5.0),
    "DeleteTags": (100.0, 10.0),
    "DeleteVolume": (100.0, 5.0),
    "DeregisterImage": (100.0, 5.0),
    "DisableImageBlockPublicAccess": (1.0, 0.1),
    "EnableImageBlockPublicAccess": (1.0, 0.1),
    "ModifyImageAttribute": (100.0, 5.0),
    "ModifyLaunchTemplate": (100.0, 5.0),
    "ModifySnapshotAttribute": (100.0, 5.0),
    "RunInstances": (5.0, 2.0),
    "StartInstances": (5.0, 2.0),
    "TerminateInstances": (100.0, 5.0),
}


def is_unfiltered(params: dict[str, list[str]]) -> bool:
    """No filter and no pagination in a Query request (``Filter.1.Name=...``, ``MaxResults``, ``NextToken``)."""
    return not any(key.startswith("Filter.") or key in ("MaxResults", "NextToken") for key in params)


def bucket_of(action: str, params: dict[str, list[str]]) -> tuple[str, tuple[float, float]]:
    """(bucket name, (capacity, refill per second)) of one EC2 request, before overrides."""
    if action in OWN_BUCKETS:
        return action, OWN_BUCKETS[action]
    if action in RESOURCE_INTENSIVE_ACTIONS:
        return action, RESOURCE_INTENSIVE
    if action.startswith(NON_MUTATING_PREFIXES):
        if action in UNFILTERED_ACTIONS and is_unfiltered(params):
            return f"{action} (unfiltered)", UNFILTERED
        return action, NON_MUTATING
    return action, MUTATING


class Throttle:
    """Token buckets per (region, bucket); ``take`` answers whether a request may be served."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._buckets: dict[tuple[str, str], list[float]] = {}  # (region, bucket) -> [tokens, last refill]
        self._throttled: dict[str, int] = {}
        self._generation = -1

    def take(self, action: str, region: str, params: dict[str, list[str]]) -> bool:
        """Take a token for this request; False when the bucket is empty (answer RequestLimitExceeded)."""
        config = STATE.config()
        generation = STATE.generation
        with self._lock:
            if generation != self._generation:
                self._buckets = {}
                self._generation = generation
            if not config["throttle"]:
                return True
            name, (capacity, refill) = bucket_of(action, params)
            override = config["throttle_rates"].get(action)
            if override is not None:
                capacity, refill = override
            now = self._clock()
            tokens, last = self._buckets.get((region, name), (capacity, now))
            tokens = min(capacity, tokens + (now - last) * refill)
            if tokens >= 1.0:
                self._buckets[(region, name)] = [tokens - 1.0, now]
                return True
            self._buckets[(region, name)] = [tokens, now]
            self._throttled[action] = self._throttled.get(action, 0) + 1
            return False

    def throttled(self) -> dict[str, int]:
        with self._lock:
            return dict(self._throttled)

    def reset_counts(self) -> None:
        with self._lock:
            self._throttled = {}

    def report(self) -> dict[str, Any]:
        """What GET /_bakery/throttle answers: throttled requests by action, and the bucket table."""
        config = STATE.config()
        return {
            "throttle": config["throttle"],
            "throttled": self.throttled(),
            "rates": {
                "non_mutating": list(NON_MUTATING), "unfiltered_non_mutating": list(UNFILTERED),
                "mutating": list(MUTATING), "resource_intensive": list(RESOURCE_INTENSIVE),
                "actions": {action: list(rate) for action, rate in sorted(OWN_BUCKETS.items())},
                "overrides": config["throttle_rates"],
            },
        }


THROTTLE = Throttle()
