# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reusable root-filesystem harness (see README.md): cached debootstrap Debian 12
and Debian 13 roots and a real cloud-init first boot of them in the image sandbox."""

from __future__ import annotations

from .harness import (  # noqa: F401
    DSLIST_FILE,
    PACKAGES,
    SEED_DIR,
    FirstBootResult,
    HarnessError,
    StageResult,
    cache_dir,
    chroot_run,
    ensure_image,
    find_mirror,
    first_boot,
    fresh_root,
    image_path,
    missing_prerequisites,
    mounted,
    mounts_under,
    recipe,
    recipe_hash,
    remove_root,
    sandbox_argv,
    seed,
    snapshot_files,
    unmount_all,
    unseed,
)
