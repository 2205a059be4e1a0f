# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Paths inside an image's root (a live system, a mounted volume, a chroot, a fixture tree) for
# the modules that act on files.

from __future__ import annotations

import os

MAX_LINK_HOPS = 40


def resolve_in_root(root: str, relpath: str, error: type = ValueError) -> str:
    """Host path of relpath inside root, following symbolic links without leaving root.

    Absolute link targets are taken relative to root (as in a chroot); `..` stops at root. The
    last component need not exist. A link loop raises `error` naming the option root.
    """
    parts = [p for p in relpath.split("/") if p not in ("", ".")]
    resolved: list = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise error(f"root: too many levels of symbolic links resolving /{relpath} under {root}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)
