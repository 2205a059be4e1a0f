# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The shape of a module's result, where several modules return it alike.

from __future__ import annotations


def diff_if_asked(result: dict, diff_mode: bool) -> dict:
    """The result without its ``diff`` unless the task runs in diff mode (a result refused before any
    read has none)."""
    result = dict(result)
    diff = result.pop("diff", None)
    if diff_mode and diff is not None:
        result["diff"] = diff
    return result
