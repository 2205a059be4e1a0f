# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The one error base of the collection. Every core raises a subclass with a message that names
# the option and the rule (or the resource and what failed), and optionally the partial result a
# module should still return; a module has one `except BakeryError` at its edge.

from __future__ import annotations

import typing as t


class BakeryError(Exception):
    """A failure to report to the user: ``msg`` says what and why, ``result`` is what was done."""

    def __init__(self, msg: str, result: t.Optional[dict] = None):
        super().__init__(msg)
        self.msg = msg
        self.result = dict(result or {})
