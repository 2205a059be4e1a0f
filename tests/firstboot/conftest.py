# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for first-boot tests (real cloud-init in a chroot of a debootstrap root).

rootfs_cache  (session)  Path of the cached Debian 12 image tarball; built on first use
                         (about a minute), reused afterwards.  Cache dir: $BAKERY_CACHE_DIR,
                         default ~/.cache/bakery-ami.
fresh_root    (function) Path of a fresh extracted copy of that image under tmp_path
                         (about a second); unmounted and removed after the test.

Tests using them are skipped, with the reason, when not root or when debootstrap,
chroot or unshare is missing.
"""

from __future__ import annotations

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from tools.rootfs import harness  # noqa: E402


@pytest.fixture(scope="session")
def rootfs_cache():
    reasons = harness.missing_prerequisites()
    if reasons:
        pytest.skip("rootfs harness unavailable: " + "; ".join(reasons))
    return harness.ensure_image()


@pytest.fixture
def fresh_root(rootfs_cache, tmp_path):
    root = tmp_path / "root"
    harness.fresh_root(root)
    try:
        yield root
    finally:
        harness.remove_root(root)
