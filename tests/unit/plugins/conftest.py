# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Modules and module_utils run on a target, where ansible-core's controller code is not loaded.

Importing controller code (the action plugin tests do) sets ansible-core's process-wide
"is controller" flag, which sends module warnings to the controller's display instead of the
module result. Module tests run with the flag as it is on a target, whatever ran before them.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from ansible.module_utils import _internal

_TARGET_SIDE = ("modules", "module_utils")


@pytest.fixture(autouse=True)
def _as_on_a_target(request, monkeypatch):
    if Path(str(request.fspath)).parent.name in _TARGET_SIDE:
        monkeypatch.setattr(_internal, "is_controller", False)
