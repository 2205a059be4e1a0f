# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for first-boot tests (real cloud-init in a chroot of a debootstrap root).

suite         (session)  each Debian suite the project verifies, in turn: bookworm (Debian 12,
                         cloud-init 22.4) and trixie (Debian 13, cloud-init 25.1); every test
                         that uses the fixtures below runs once per suite.
                         $BAKERY_TEST_SUITES (comma-separated) narrows the list.
rootfs_cache  (session)  Path of the suite's cached image tarball; built on first use
                         (about a minute), reused afterwards.  Cache dir: $BAKERY_CACHE_DIR,
                         default ~/.cache/bakery-ami.
fresh_root    (function) Path of a fresh extracted copy of that image under tmp_path
                         (about a second); unmounted and removed after the test.
collections   (module)   This checkout as ansible_collections/bakery/ami (a symlink in a temporary
                         directory), for ANSIBLE_COLLECTIONS_PATH and for importing the cores.
shared_root   (session)  Path of one extracted copy per suite for tests that only read it (or
                         mount and unmount it); the session fails at the end if a test changed
                         it (paths, modes, sizes, times).

Tests using them are skipped, with the reason, when not root or when debootstrap,
chroot or unshare is missing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from tools.rootfs import harness  # noqa: E402

REPO_PATH = Path(REPO_ROOT)


def _test_suites() -> list:
    wanted = [s.strip() for s in os.environ.get("BAKERY_TEST_SUITES", "").split(",") if s.strip()]
    for name in wanted:
        harness.check_suite(name)
    return wanted or list(harness.SUITES)


@pytest.fixture(scope="session", params=_test_suites())
def suite(request):
    return request.param


@pytest.fixture(scope="session")
def rootfs_cache(suite):
    reasons = harness.missing_prerequisites()
    if reasons:
        pytest.skip("rootfs harness unavailable: " + "; ".join(reasons))
    return harness.ensure_image(suite=suite)


def _tree_stat(root) -> dict:
    """path -> (mode, size, mtime) of everything under root: enough to see a test writing to it."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            out[os.path.relpath(full, str(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="session")
def shared_root(rootfs_cache, suite, tmp_path_factory):
    root = tmp_path_factory.mktemp("shared-" + suite) / "root"
    harness.fresh_root(root, suite=suite)
    before = _tree_stat(root)
    try:
        yield root
        changed = sorted(set(before.items()) ^ set(_tree_stat(root).items()))
        assert not changed, "a test changed the shared %s root (use fresh_root): %s" % (suite, changed[:10])
    finally:
        harness.remove_root(root)


@pytest.fixture
def fresh_root(rootfs_cache, suite, tmp_path):
    root = tmp_path / "root"
    harness.fresh_root(root, suite=suite)
    try:
        yield root
    finally:
        harness.remove_root(root)


@pytest.fixture(scope="module")
def collections(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("colls")
    link = base / "ansible_collections/bakery/ami"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO_PATH)
    return base
