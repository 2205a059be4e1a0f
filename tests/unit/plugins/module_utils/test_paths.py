# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _paths


def test_write_atomically_makes_every_missing_directory_0755_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        _paths.write_atomically(str(tmp_path / "a" / "b" / "f.txt"), "x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o755
    assert (tmp_path / "a" / "b" / "f.txt").read_text() == "x\n"


def test_make_directories_leaves_existing_ones_alone_and_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "kept").mkdir(mode=0o700)
    _paths.make_directories(str(tmp_path / "kept" / "new"))
    assert stat.S_IMODE((tmp_path / "kept").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "kept" / "new").stat().st_mode) == 0o755
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError):
        _paths.make_directories(str(tmp_path / "file" / "sub"))
