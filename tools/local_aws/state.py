# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runtime configuration, action counts and the seeded fault generator of the endpoint.

One process-wide ``STATE`` object is shared by the moto patches (delays) and the WSGI
middleware (counts, faults, control routes). Every access goes through its lock because
werkzeug serves requests from several threads.
"""
from __future__ import annotations

import copy
import random
import threading
from typing import Any

FAULT_CODES = {
    # EC2 error code -> HTTP status EC2 answers it with
    "RequestLimitExceeded": 503,
    "InternalError": 500,
}

# RunInstances refusals of an instance type (instance_type_refusals) -> the HTTP status EC2 answers
# them with: no capacity is a server error (500), the others client errors (400).
REFUSAL_CODES = {
    "InsufficientInstanceCapacity": 500,
    "Unsupported": 400,
    "InstanceLimitExceeded": 400,
    "VcpuLimitExceeded": 400,
}

DEFAULTS: dict[str, Any] = {
    "create_delay": 0.0,
    "copy_delay": 0.0,
    "register_delay": 0.0,
    "instance_start_delay": 0.0,
    "instance_stop_delay": 0.0,
    "fault_rate": 0.0,
    "fault_seed": 0,
    "fault_actions": [],
    "fault_codes": sorted(FAULT_CODES),
    # "before": the faulted request is not served (throttled). "after": it is served and the
    # answer is lost, replaced by the fault (what a client sees when a response times out).
    "fault_timing": "before",
    # How many faults to inject after the last configuration change, then none; None: no limit.
    # With fault_rate 1, fault_actions [A] and fault_timing "after", a limit of 1 loses exactly
    # the first answer of A and serves its retries.
    "fault_limit": None,
    "allow_past_deprecation": False,
    # Image retirement (retire.py): seconds deregistration protection outlives its disabling when it
    # was enabled with a cooldown (EC2: 24 hours); seconds before a launch shows in an image's
    # LastLaunchedTime (EC2: about 24 hours; 0 here unless set); actions answered InvalidAction, as
    # in a region or partition that lacks them.
    "protection_cooldown": 86400.0,
    "last_launched_delay": 0.0,
    "unsupported_actions": [],
    # RunInstances for these instance types is refused with the given error code, never served:
    # {"m7i.large": "InsufficientInstanceCapacity", ...} (capacity, zone offerings, quotas).
    "instance_type_refusals": {},
    # Request-rate throttling (throttle.py): off unless set; per-action overrides of the bucket
    # sizes and refill rates, {"DescribeImages": [capacity, refill per second], ...}.
    "throttle": False,
    "throttle_rates": {},
}

DELAY_KEYS = ("create_delay", "copy_delay", "register_delay", "instance_start_delay", "instance_stop_delay",
              "protection_cooldown", "last_launched_delay")


class ConfigError(ValueError):
    """A control-API configuration value was rejected."""


def _as_number(key: str, value: Any, low: float, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{key}: must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{key}: must be a number, got {value!r}") from None
    if number < low or (high is not None and number > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigError(f"{key}: must be {bound}, got {value!r}")
    return number


def _as_names(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{key}: must be a list of action names, got {value!r}")
    return list(value)


def _as_rates(key: str, value: Any) -> dict[str, list[float]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be an object of action name: [capacity, refill per second], got {value!r}")
    rates = {}
    for action, pair in value.items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise ConfigError(f"{key}: {action}: must be [capacity, refill per second], got {pair!r}")
        capacity = _as_number(f"{key}: {action}: capacity", pair[0], 1.0, None)
        refill = _as_number(f"{key}: {action}: refill", pair[1], 0.0, None)
        rates[str(action)] = [capacity, refill]
    return rates


def _as_refusals(key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be an object of instance type: error code, got {value!r}")
    for instance_type, code in value.items():
        if not isinstance(instance_type, str) or not instance_type:
            raise ConfigError(f"{key}: {instance_type!r} is not an instance type")
        if code not in REFUSAL_CODES:
            raise ConfigError(f"{key}: {instance_type}: the error code must be one of {sorted(REFUSAL_CODES)}, got {code!r}")
    return dict(value)


def validate(changes: dict[str, Any]) -> dict[str, Any]:
    """Return ``changes`` normalised; raise ConfigError naming the first bad key."""
    if not isinstance(changes, dict):
        raise ConfigError("config: must be a JSON object")
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in DEFAULTS:
            raise ConfigError(f"{key}: unknown setting; known: {', '.join(sorted(DEFAULTS))}")
        if key in DELAY_KEYS:
            clean[key] = _as_number(key, value, 0.0, None)
        elif key == "fault_rate":
            clean[key] = _as_number(key, value, 0.0, 1.0)
        elif key == "fault_seed":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"fault_seed: must be an integer, got {value!r}")
            clean[key] = value
        elif key in ("fault_actions", "unsupported_actions"):
            clean[key] = _as_names(key, value)
        elif key == "fault_codes":
            codes = _as_names(key, value)
            unknown = [code for code in codes if code not in FAULT_CODES]
            if unknown or not codes:
                raise ConfigError(f"fault_codes: must be a non-empty subset of {sorted(FAULT_CODES)}, got {value!r}")
            clean[key] = codes
        elif key == "fault_timing":
            if value not in ("before", "after"):
                raise ConfigError(f"fault_timing: must be 'before' or 'after', got {value!r}")
            clean[key] = value
        elif key == "fault_limit":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"fault_limit: must be a whole number of faults (0 or more) or null, got {value!r}")
            clean[key] = value
        elif key in ("allow_past_deprecation", "throttle"):
            if not isinstance(value, bool):
                raise ConfigError(f"{key}: must be true or false, got {value!r}")
            clean[key] = value
        elif key == "throttle_rates":
            clean[key] = _as_rates(key, value)
        elif key == "instance_type_refusals":
            clean[key] = _as_refusals(key, value)
    return clean


class BakeryState:
    """Configuration, counters and the fault generator, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config: dict[str, Any] = {}
        self._counts: dict[str, int] = {}
        self._faults: dict[str, int] = {}
        self._injected = 0  # faults injected since the last configuration change (fault_limit)
        self._rng = random.Random(0)
        self.generation = 0  # bumped by every reset and configuration change (the throttle refills on it)
        self.reset()

    # configuration -------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._config = copy.deepcopy(DEFAULTS)
            self._rng = random.Random(self._config["fault_seed"])
            self._injected = 0
            self._counts = {}
            self._faults = {}
            self.generation += 1

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply validated changes; the fault generator is reseeded (and the fault_limit count
        restarted) on every call."""
        clean = validate(changes)
        with self._lock:
            self._config.update(clean)
            self._rng = random.Random(self._config["fault_seed"])
            self._injected = 0
            self.generation += 1
            return self._snapshot()

    def config(self) -> dict[str, Any]:
        with self._lock:
            return self._snapshot()

    def get(self, key: str) -> Any:
        with self._lock:
            return self._config[key]

    def _snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self._config)

    # counters --------------------------------------------------------------
    def count(self, action: str) -> None:
        with self._lock:
            self._counts[action] = self._counts.get(action, 0) + 1

    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"counts": dict(self._counts), "faults": dict(self._faults)}

    def reset_counts(self) -> None:
        with self._lock:
            self._counts = {}
            self._faults = {}

    # faults ------------------------------------------------------------------
    def draw_fault(self, action: str, is_ec2: bool) -> str | None:
        """Decide whether this request fails; return the EC2 error code or None.

        Only requests eligible for faults draw from the generator, so the sequence of
        outcomes depends on the seed and the order of eligible requests alone. Once fault_limit
        faults have been injected, no request draws any more.
        """
        with self._lock:
            rate = self._config["fault_rate"]
            listed = self._config["fault_actions"]
            limit = self._config["fault_limit"]
            if rate <= 0.0 or (limit is not None and self._injected >= limit):
                return None
            if listed:
                if action not in listed:
                    return None
            elif not is_ec2:
                return None
            roll = self._rng.random()
            codes = self._config["fault_codes"]
            pick = codes[self._rng.randrange(len(codes))] if len(codes) > 1 else codes[0]
            if roll >= rate:
                return None
            self._injected += 1
            self._faults[action] = self._faults.get(action, 0) + 1
            return pick


STATE = BakeryState()
