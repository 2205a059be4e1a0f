# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Files on the controller (the builder's key files): directories made with exact modes and
# atomic writes. Files under an image's root go through _image_root.ImageRoot instead.

from __future__ import annotations

import errno
import os
import stat
import tempfile
import typing as t


def make_directories(directory: str, mode: int = 0o755) -> None:
    """Create directory and the missing ones above it, each with exactly `mode`, whatever the umask
    (os.makedirs applies its mode to the last one only, and through the umask)."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for each in reversed(missing):
        try:
            os.mkdir(each, mode)
        except FileExistsError:
            if not os.path.isdir(each):
                raise
            continue
        os.chmod(each, mode)


def write_atomically(path: str, text: str, move: t.Callable[[str, str], t.Any] | None = None,
                     mode: int | None = None) -> None:
    """Write text to path through a temporary file beside it, then a move, so no reader (nor
    cloud-init, which reads only *.cfg) ever sees a partial file.

    move(src, dest) is AnsibleModule.atomic_move in a module (it keeps the target's mode, owner
    and SELinux context); without it the mode and owner are copied here and os.replace is used.
    A new file gets mode 0644, a new directory 0755. With `mode` (a secret: 0600) the file gets
    exactly that mode, new or not; the temporary file is 0600 from the start, so the content is
    never readable by anyone else on the way.
    """
    directory = os.path.dirname(path)
    make_directories(directory)
    existing = None
    try:
        existing = os.stat(path)
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=".bakery-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
        if mode is not None:
            os.chmod(tmp, mode)
        elif existing is not None:
            os.chmod(tmp, stat.S_IMODE(existing.st_mode))
            try:
                os.chown(tmp, existing.st_uid, existing.st_gid)
            except OSError as exc:
                if exc.errno != errno.EPERM:  # not root: the file stays ours
                    raise
        else:
            os.chmod(tmp, 0o644)
        if move is None:
            os.replace(tmp, path)
        else:
            move(tmp, path)
            if mode is not None or existing is None:
                os.chmod(path, 0o644 if mode is None else mode)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
