# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The regional fan-out, in one place: one function run for every region (or every plan of a
# region) at once, on threads. AWS clients are made beforehand in the calling thread; the worker
# threads only use them.

from __future__ import annotations

import concurrent.futures
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

# At most this many regions are asked at once unless the caller says otherwise.
MAX_WORKERS = 8


def each(function: t.Callable[[t.Any], t.Any], items: t.Iterable, max_workers: int | None = MAX_WORKERS) -> list:
    """function(item) for every item, concurrently; the results in the order of the items.

    With one item (or none) nothing is threaded. ``max_workers`` None means one thread an item.
    The first exception, in the order of the items, is raised once the items already running have
    ended; the items not started by then are not started.
    """
    items = list(items)
    if len(items) <= 1:
        return [function(item) for item in items]
    workers = min(len(items), max_workers or len(items))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def each_caught(function: t.Callable[[t.Any], t.Any], items: t.Iterable, catch: tuple,
                max_workers: int | None = MAX_WORKERS) -> tuple[dict, dict]:
    """Like each(), but an exception of the classes in ``catch`` is kept, not raised: returns
    ({item: result}, {item: exception}). Any other exception is raised."""
    def guarded(item: t.Any) -> tuple:
        try:
            return function(item), None
        except catch as exc:
            return None, exc

    results: dict = {}
    errors: dict = {}
    items = list(items)
    for item, (result, error) in zip(items, each(guarded, items, max_workers)):
        if error is None:
            results[item] = result
        else:
            errors[item] = error
    return results, errors


class ReadThenChange:
    """Reads every region at once; only when every region was read, changes (outside check mode) the
    regions that need it, at once. A subclass names its error class, reads (read_region), changes
    (change_region), shapes the result (_result) and says what a failed change leaves (failed_change).
    A read that fails changes nothing anywhere; a change that fails in one region is reported with the
    regions that were changed."""

    error_class: type = BakeryError
    request: t.Any
    check_mode: bool = False

    def read_region(self, region: str) -> dict:
        raise NotImplementedError

    def change_region(self, region: str, plan: dict) -> dict:
        raise NotImplementedError

    def _result(self, plans: dict, changed: bool | None = None) -> dict:
        raise NotImplementedError

    def failed_change(self, done: dict, plans: dict) -> tuple:
        """(what the message adds after the regions' errors, the result's changed)."""
        raise NotImplementedError

    def message(self, region: str, error: BaseException) -> str:
        """The class's own errors name their region already; an AWS error gets it in front."""
        if isinstance(error, self.error_class):
            return str(getattr(error, "msg", error))
        return f"{region}: {error}"

    def run(self) -> dict:
        regions = self.request.regions
        plans, errors = each_caught(self.read_region, regions, (self.error_class, _aws.BakeryAWSError))
        if errors:
            raise self.error_class(
                "; ".join(self.message(region, errors[region]) for region in regions if region in errors)
                + "; nothing was changed",
                self._result({region: plans[region] for region in regions if region in plans}, changed=False),
            )
        plans = {region: plans[region] for region in regions}
        to_change = [region for region in regions if plans[region]["changed"]]
        if self.check_mode or not to_change:
            return self._result(plans)

        def change(region: str) -> dict:
            return self.change_region(region, plans[region])

        done, failed = each_caught(change, to_change, (_aws.BakeryAWSError,))
        for region in to_change:
            if region in done:
                plans[region].update(done[region])
            else:
                plans[region]["error"] = self.message(region, failed[region])
        if failed:
            tail, changed = self.failed_change(done, plans)
            raise self.error_class(
                "; ".join(plans[region]["error"] for region in regions if region in failed) + tail,
                self._result(plans, changed=changed),
            )
        return self._result(plans)
