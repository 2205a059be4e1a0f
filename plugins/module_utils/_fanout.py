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
