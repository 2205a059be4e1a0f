# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make this checkout importable as ansible_collections.bakery.ami for unit tests."""
from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _collections_root() -> Path:
    # When the checkout already sits at .../ansible_collections/bakery/ami, use that tree.
    if REPO_ROOT.parent.name == "bakery" and REPO_ROOT.parent.parent.name == "ansible_collections":
        return REPO_ROOT.parents[2]
    digest = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]
    base = Path(tempfile.gettempdir()) / f"bakery-ami-unit-{digest}"
    link = base / "ansible_collections" / "bakery" / "ami"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO_ROOT)
    return base


_root = str(_collections_root())
if _root not in sys.path:
    sys.path.insert(0, _root)
# The `ansible` package's collections (amazon.aws) live in site-packages/ansible_collections: extend
# the namespace package so both trees are searched.
import ansible_collections  # noqa: E402  pylint: disable=wrong-import-position

_ours = str(Path(_root) / "ansible_collections")
if _ours not in list(ansible_collections.__path__):
    ansible_collections.__path__.append(_ours)  # pylint: disable=no-member
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))


import pytest  # noqa: E402  pylint: disable=wrong-import-position
from ansible.module_utils.common import warnings as _ansible_warnings  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(autouse=True)
def _fresh_module_warnings():
    """Module warnings and deprecations are process-wide in ansible-core; a module run in one test
    must not leak its warnings into the result of the next."""
    # pylint: disable=protected-access
    _ansible_warnings._global_warnings.clear()
    _ansible_warnings._global_deprecations.clear()
    yield
