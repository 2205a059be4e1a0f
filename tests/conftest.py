# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by every test tier: keep the local builder's cache from growing with each test."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(autouse=True)
def _remove_snapshot_archives_of_this_test():
    """Each local bake archives its root as <cache>/snapshots/<ami-id>.tar (about 250 MB, see
    tools/local_builder.py); remove the ones a test made once it is over. Tests that bake must not
    run concurrently with other bakes on the same cache."""
    from tools.rootfs import harness  # pylint: disable=import-outside-toplevel

    archives = harness.cache_dir() / "snapshots"
    before = set(archives.glob("ami-*")) if archives.is_dir() else set()
    yield
    for path in (set(archives.glob("ami-*")) if archives.is_dir() else set()) - before:
        path.unlink(missing_ok=True)
