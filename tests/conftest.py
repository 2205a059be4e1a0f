# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by every test tier: keep the local builder's cache from growing with each test, and give
each pytest-xdist worker a bake cache of its own."""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

WORKER_CACHE = pytest.StashKey[Path]()


def pytest_configure(config):
    """Under pytest-xdist (tools/test.sh runs the long steps two tests at a time), each worker bakes
    into a cache of its own: a bake's sweep and archive clean-up remove what their endpoint does not
    know, which in a shared cache would be the other worker's images. The debootstrap images stay
    shared ($BAKERY_IMAGE_DIR), built once under their lock."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    from tools.rootfs import harness  # pylint: disable=import-outside-toplevel

    os.environ.setdefault("BAKERY_IMAGE_DIR", str(harness.image_dir()))
    private = Path(tempfile.mkdtemp(prefix="bakery-cache-%s-" % worker))
    os.environ["BAKERY_CACHE_DIR"] = str(private)
    config.stash[WORKER_CACHE] = private


# Tests that must run on one worker, because they read one run made once per worker: the files whose
# tests share a module-scoped run, and each module's hostile corpus (one playbook per module, made on
# first use). Every other test is scheduled on its own.
ONE_WORKER_FILES = (
    "tests/integration/test_ami_find_catalog.py",
    "tests/reliability/test_idempotency.py",
    "tests/reliability/test_image_code_sandbox.py",
)
HOSTILE_MODULE = re.compile(r"^tests/reliability/test_bad_input\.py::test_(?:hostile_input|controller_home_untouched)"
                            r"\[(?P<module>[a-z0-9_]+)[-\]]")


def worker_scope(nodeid: str) -> str:
    """The unit a test is scheduled in: tests of one scope run on one worker."""
    path = nodeid.split("::", 1)[0]
    if path in ONE_WORKER_FILES:
        return path
    hostile = HOSTILE_MODULE.match(nodeid)
    if hostile:
        return "hostile corpus of " + hostile.group("module")
    return nodeid


def pytest_xdist_make_scheduler(config, log):
    """xdist's load scheduling over the scopes of worker_scope (its xdist_group mark is not honoured
    under this pytest: the mark renames a test's node ID, which pytest 9 no longer allows)."""
    from xdist.scheduler import LoadScopeScheduling  # pylint: disable=import-outside-toplevel

    class ScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_scope(nodeid)

    return ScopeScheduling(config, log)


# Under xdist the files whose tests take minutes each start first, so that a run does not end with
# one worker on a four-minute test while the other idles (figures: the slowest-tests list that
# tools/test.sh prints per step). Larger scopes go before single tests anyway (xdist's reordering).
LONG_FIRST = (
    "tests/integration/test_targets.py",
    "tests/integration/test_readme_manual_endpoint.py",
    "tests/integration/test_bake.py",
)


def pytest_collection_modifyitems(config, items):
    del config
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one at a time: the order of the files

    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONG_FIRST.index(path) if path in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)  # stable: every worker collects the same order


def pytest_unconfigure(config):
    private = config.stash.get(WORKER_CACHE, None)
    if private is None:
        return
    from tools.rootfs import harness  # pylint: disable=import-outside-toplevel

    if harness.mounts_under(private):
        harness.unmount_all(private)
    if not harness.mounts_under(private):  # never remove through a mount that is still there
        shutil.rmtree(private, ignore_errors=True)


@pytest.fixture(autouse=True)
def _remove_snapshot_archives_of_this_test():
    """Each local bake archives its root as <cache>/snapshots/<ami-id>.tar (about 250 MB, see
    tools/local_builder.py); remove the ones a test made once it is over. Tests that bake must not
    run concurrently with other bakes on the same cache (each xdist worker has its own, above)."""
    from tools.rootfs import harness  # pylint: disable=import-outside-toplevel

    archives = harness.cache_dir() / "snapshots"
    before = set(archives.glob("ami-*")) if archives.is_dir() else set()
    yield
    for path in (set(archives.glob("ami-*")) if archives.is_dir() else set()) - before:
        path.unlink(missing_ok=True)
