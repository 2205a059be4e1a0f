# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by every test tier: keep the local builder's cache from growing with each test run."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def _snapshot_dir() -> Path:
    # The local builder archives each baked root as <cache>/snapshots/<ami-id>.tar (tools/local_builder.py).
    cache = os.environ.get("BAKERY_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "bakery-ami")
    return Path(cache) / "snapshots"


@pytest.fixture(scope="session", autouse=True)
def _remove_snapshot_archives_of_this_session():
    """Local bakes in tests leave a ~250 MB archive per image; remove the ones this session made."""
    snapshots = _snapshot_dir()
    before = set(snapshots.glob("*.tar")) if snapshots.is_dir() else set()
    yield
    if snapshots.is_dir():
        for archive in set(snapshots.glob("*.tar")) - before:
            archive.unlink(missing_ok=True)
