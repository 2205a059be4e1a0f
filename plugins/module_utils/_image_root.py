# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The one root-confined file layer. Every module and role step that reads, writes or deletes
# files of an image (a live builder at /, a mounted volume, a chroot, a test tree) goes through
# ImageRoot, so that nothing the image holds can make it act outside the image:
#
# - a path is walked one component at a time with directory file descriptors (openat-style):
#   each directory is opened with O_NOFOLLOW relative to the one before it, so a link swapped in
#   between a check and a use is refused by the kernel, never followed;
# - a symbolic link met on the way is resolved the way a process chrooted into the root sees it:
#   an absolute target starts again at the root, ".." stops at the root (so /proc/self/root/...,
#   ../../.. chains and absolute links to host directories all stay inside);
# - the last component is acted on through its parent's descriptor and never followed unless the
#   caller asks (and then again only inside the root);
# - removals do not cross into another filesystem mounted inside the image (proc, a tmpfs /run).
#
# Path options are normalized first (normalize_path / check_path_option): relative paths, "~",
# control characters and paths that normalize to "/" are refused with a message naming the option.

from __future__ import annotations

import errno
import os
import secrets
import stat
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

# The deepest chain of symbolic links followed for one path (Linux's own limit is 40).
MAX_LINK_HOPS = 40

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_TEMP_PREFIX = ".bakery-"
_TEMP_SUFFIX = ".tmp"


class RootError(BakeryError):
    """A path option or a file under the root that cannot be acted on safely."""


class Entry(t.NamedTuple):
    """An existing file of the image: its canonical path and its lstat."""

    path: str
    stat: os.stat_result


def _components(path: str) -> list:
    return [part for part in path.split("/") if part not in ("", ".")]


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def normalize_path(path: t.Any, option: str) -> str:
    """The lexical normal form of an absolute path inside the image ('/a/./b/../c' -> '/a/c').

    '..' stops at '/'. Refused with a message naming ``option``: a value that is not a string, a
    relative path (and so '~', which would be the controller's home), NUL or other control
    characters (a newline in a path is never what the user meant).
    """
    if not isinstance(path, str) or not path:
        raise RootError("%s: must be an absolute path inside the image, got %r" % (option, path))
    if _has_control(path):
        raise RootError("%s: must not contain control characters (newline, NUL, ...), got %r" % (option, path))
    if not path.startswith("/"):
        raise RootError("%s: must be an absolute path inside the image (starting with '/'; '~' is not "
                        "expanded), got %r" % (option, path))
    parts: list = []
    for part in _components(path):
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def check_path_option(path: t.Any, option: str) -> str:
    """normalize_path, also refusing a path that is the whole image ('/', '/tmp/..', '/.')."""
    normal = normalize_path(path, option)
    if normal == "/":
        raise RootError("%s: %r resolves to '/', the whole image; name a path below it" % (option, path))
    return normal


class _Walk:
    """The open directories of one resolution; close() releases them."""

    def __init__(self, root_fd: int):
        self.names: list = []
        self.fds: list = [root_fd]

    @property
    def dir_fd(self) -> int:
        return self.fds[-1]

    def push(self, name: str, fd: int) -> None:
        self.names.append(name)
        self.fds.append(fd)

    def pop(self) -> None:
        if self.names:
            self.names.pop()
            os.close(self.fds.pop())

    def reset(self) -> None:
        while self.names:
            self.pop()

    def path(self, last: str | None = None) -> str:
        return "/" + "/".join(self.names + ([last] if last else []))

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.names = []


class _Target(t.NamedTuple):
    walk: _Walk
    name: str  # the last component, "" for the root itself
    stat: t.Optional[os.stat_result]  # None when the last component does not exist
    path: str  # canonical path inside the image


class ImageRoot:
    """A directory taken as the root of an image; every path below is an image path ('/etc/x')."""

    def __init__(self, root: t.Any, option: str = "root"):
        if not isinstance(root, str) or not root.startswith("/") or _has_control(root):
            raise RootError("%s: must be an absolute path, got %r" % (option, root))
        if not os.path.isdir(root):
            raise RootError("%s: %r does not exist or is not a directory" % (option, root))
        # A root given as a symbolic link is the directory it names (the user chose it).
        self.root = os.path.realpath(root)
        self.option = option

    # -- resolution -------------------------------------------------------------------------

    def _open_root(self) -> int:
        return os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))

    def _resolve(self, path: str, follow_last: bool) -> t.Optional[_Target]:
        """Walk ``path`` from the root; None when a directory on the way is missing or not one."""
        if not isinstance(path, str) or not path.startswith("/") or _has_control(path):
            raise RootError("path: must be an absolute path inside the image, got %r" % (path,))
        pending = _components(path)
        walk = _Walk(self._open_root())
        hops = 0
        retries = 0
        try:
            while pending:
                name = pending.pop(0)
                if name == "..":
                    walk.pop()
                    continue
                try:
                    st = os.stat(name, dir_fd=walk.dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    if pending:
                        walk.close()
                        return None
                    return _Target(walk, name, None, walk.path(name))
                except OSError as exc:
                    if exc.errno in (errno.ENOTDIR, errno.EACCES, errno.ELOOP, errno.ENAMETOOLONG):
                        walk.close()
                        return None
                    raise
                last = not pending
                if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                    hops += 1
                    if hops > MAX_LINK_HOPS:
                        walk.close()
                        raise RootError("%s: too many levels of symbolic links resolving %s under %s"
                                        % (self.option, path, self.root))
                    target = os.readlink(name, dir_fd=walk.dir_fd)
                    if target.startswith("/"):
                        walk.reset()
                    pending = _components(target) + pending
                    continue
                if last:
                    return _Target(walk, name, st, walk.path(name))
                if not stat.S_ISDIR(st.st_mode):
                    walk.close()
                    return None
                try:
                    fd = os.open(name, _DIR_FLAGS, dir_fd=walk.dir_fd)
                except OSError as exc:
                    # Swapped for a link or a file since the stat: look at it again (bounded).
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT) and retries < MAX_LINK_HOPS:
                        retries += 1
                        pending.insert(0, name)
                        continue
                    walk.close()
                    if exc.errno in (errno.EACCES, errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                        return None
                    raise
                walk.push(name, fd)
            return _Target(walk, "", os.fstat(walk.dir_fd), walk.path())
        except BaseException:
            walk.close()
            raise

    def _resolve_dir(self, path: str) -> t.Optional[_Walk]:
        """The open directory at ``path`` (links to it followed inside the root), or None."""
        target = self._resolve(path, follow_last=True)
        if target is None:
            return None
        walk = target.walk
        if target.name == "":
            return walk
        if target.stat is None or not stat.S_ISDIR(target.stat.st_mode):
            walk.close()
            return None
        try:
            fd = os.open(target.name, _DIR_FLAGS, dir_fd=walk.dir_fd)
        except OSError:
            walk.close()
            return None
        walk.push(target.name, fd)
        return walk

    # -- reading ----------------------------------------------------------------------------

    def lstat(self, path: str) -> t.Optional[Entry]:
        """The entry at ``path`` (directories on the way resolved inside the root, the last
        component not followed), or None when it does not exist."""
        target = self._resolve(path, follow_last=False)
        if target is None:
            return None
        target.walk.close()
        return Entry(target.path, target.stat) if target.stat is not None else None

    def stat(self, path: str) -> t.Optional[Entry]:
        """As lstat, with a final link followed inside the root."""
        target = self._resolve(path, follow_last=True)
        if target is None:
            return None
        target.walk.close()
        return Entry(target.path, target.stat) if target.stat is not None else None

    def exists(self, path: str) -> bool:
        return self.lstat(path) is not None

    def is_dir(self, path: str) -> bool:
        entry = self.stat(path)
        return entry is not None and stat.S_ISDIR(entry.stat.st_mode)

    def is_file(self, path: str) -> bool:
        entry = self.stat(path)
        return entry is not None and stat.S_ISREG(entry.stat.st_mode)

    def canonical(self, path: str, follow_last: bool = False) -> t.Optional[str]:
        entry = self.stat(path) if follow_last else self.lstat(path)
        return entry.path if entry else None

    def readlink(self, path: str) -> t.Optional[str]:
        target = self._resolve(path, follow_last=False)
        if target is None:
            return None
        try:
            if target.stat is None or not stat.S_ISLNK(target.stat.st_mode):
                return None
            return os.readlink(target.name, dir_fd=target.walk.dir_fd)
        finally:
            target.walk.close()

    def entries(self, path: str) -> list:
        """Entry of each name in the directory at ``path``, sorted; links are not followed."""
        walk = self._resolve_dir(path)
        if walk is None:
            return []
        try:
            base = walk.path()
            prefix = base.rstrip("/") + "/"
            result = []
            for name in sorted(os.listdir(walk.dir_fd)):
                try:
                    st = os.stat(name, dir_fd=walk.dir_fd, follow_symlinks=False)
                except OSError:
                    continue
                result.append(Entry(prefix + name, st))
            return result
        except OSError:
            return []
        finally:
            walk.close()

    def walk(self, path: str, skip: t.Container = ()) -> t.Iterator[Entry]:
        """Every entry below the directory at ``path`` (depth first), never following a link and
        never descending into another filesystem or into a path listed in ``skip``."""
        top = self._resolve_dir(path)
        if top is None:
            return
        top_dev = os.fstat(top.dir_fd).st_dev
        # each frame: (fd, canonical directory path, remaining names)
        frames = [(top.dir_fd, top.path(), sorted(os.listdir(top.dir_fd)))]
        top.fds.pop()  # the frame owns the last descriptor now
        try:
            while frames:
                fd, base, names = frames[-1]
                if not names:
                    os.close(fd)
                    frames.pop()
                    continue
                name = names.pop(0)
                child = base.rstrip("/") + "/" + name
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    continue
                if child in skip:
                    continue
                yield Entry(child, st)
                if stat.S_ISDIR(st.st_mode) and st.st_dev == top_dev:
                    try:
                        sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except OSError:
                        continue
                    try:
                        listing = sorted(os.listdir(sub))
                    except OSError:
                        os.close(sub)
                        continue
                    frames.append((sub, child, listing))
        finally:
            for fd, _base, _names in frames:
                os.close(fd)
            top.close()

    def read_bytes(self, path: str, limit: t.Optional[int] = None, follow_last: bool = False) -> t.Optional[bytes]:
        """Content of the regular file at ``path`` (at most ``limit`` bytes), or None when it is
        missing or not a regular file. A final link is followed only with ``follow_last``."""
        target = self._resolve(path, follow_last=follow_last)
        if target is None:
            return None
        try:
            if target.stat is None or not stat.S_ISREG(target.stat.st_mode):
                return None
            try:
                fd = os.open(target.name, _READ_FLAGS, dir_fd=target.walk.dir_fd)
            except OSError:
                return None
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    return None
                return handle.read() if limit is None else handle.read(limit)
        finally:
            target.walk.close()

    def read_text(self, path: str, limit: t.Optional[int] = None, follow_last: bool = False) -> t.Optional[str]:
        data = self.read_bytes(path, limit, follow_last)
        return None if data is None else data.decode("utf-8", errors="replace")

    def host_path(self, path: str) -> str:
        """Where a canonical image path lies on this host (for messages and for tools that run in
        the image itself; never open it: use the methods above)."""
        return self.root if path == "/" else self.root.rstrip("/") + path

    # -- writing ----------------------------------------------------------------------------

    def makedirs(self, path: str, mode: int = 0o755) -> str:
        """Create the directory at ``path`` and the missing ones above it, each with exactly
        ``mode``; returns its canonical path. RootError when a file is in the way."""
        normal = normalize_path(path, "path")
        walk = _Walk(self._open_root())
        try:
            pending = _components(normal)
            hops = 0
            while pending:
                name = pending.pop(0)
                if name == "..":
                    walk.pop()
                    continue
                try:
                    st = os.stat(name, dir_fd=walk.dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    os.mkdir(name, mode, dir_fd=walk.dir_fd)
                    st = os.stat(name, dir_fd=walk.dir_fd, follow_symlinks=False)
                    fd = os.open(name, _DIR_FLAGS, dir_fd=walk.dir_fd)
                    os.fchmod(fd, mode)
                    walk.push(name, fd)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > MAX_LINK_HOPS:
                        raise RootError("%s: too many levels of symbolic links creating %s" % (self.option, path))
                    target = os.readlink(name, dir_fd=walk.dir_fd)
                    if target.startswith("/"):
                        walk.reset()
                    pending = _components(target) + pending
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise RootError("%s: cannot create %s: %s is not a directory" % (self.option, path, walk.path(name)))
                walk.push(name, os.open(name, _DIR_FLAGS, dir_fd=walk.dir_fd))
            return walk.path()
        finally:
            walk.close()

    def write_bytes(self, path: str, data: bytes, mode: t.Optional[int] = None, make_parents: bool = True) -> str:
        """Replace the file at ``path`` atomically (a temporary file beside it, then a rename), so
        no reader ever sees a partial file. An existing regular file keeps its mode, owner and
        SELinux label unless ``mode`` is given; a new one gets ``mode`` or 0644. A link at
        ``path`` is replaced, never written through. Returns the canonical path."""
        normal = check_path_option(path, "path")
        parent, name = normal.rsplit("/", 1)
        if make_parents:
            self.makedirs(parent or "/")
        target = self._resolve(normal, follow_last=False)
        if target is None:
            raise RootError("%s: cannot write %s: a directory on the way is missing" % (self.option, path))
        walk = target.walk
        name = target.name
        try:
            existing = target.stat
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                raise RootError("%s: cannot write %s: it is a directory" % (self.option, target.path))
            label = None
            if existing is not None and stat.S_ISREG(existing.st_mode):
                label = self._selinux_label(walk.dir_fd, name)
            temp = None
            for _attempt in range(100):
                candidate = _TEMP_PREFIX + secrets.token_hex(6) + _TEMP_SUFFIX
                try:
                    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | getattr(os, "O_CLOEXEC", 0), 0o600, dir_fd=walk.dir_fd)
                except FileExistsError:
                    continue
                temp = candidate
                break
            if temp is None:
                raise RootError("%s: cannot create a temporary file beside %s" % (self.option, target.path))
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    if mode is not None:
                        os.fchmod(handle.fileno(), mode)
                    elif existing is not None and stat.S_ISREG(existing.st_mode):
                        os.fchmod(handle.fileno(), stat.S_IMODE(existing.st_mode))
                        try:
                            os.fchown(handle.fileno(), existing.st_uid, existing.st_gid)
                        except OSError as exc:
                            if exc.errno != errno.EPERM:  # not root: the file stays ours
                                raise
                    else:
                        os.fchmod(handle.fileno(), 0o644)
                    if label is not None:
                        try:
                            os.setxattr(handle.fileno(), "security.selinux", label)
                        except OSError:
                            pass
                    os.fsync(handle.fileno())
                os.rename(temp, name, src_dir_fd=walk.dir_fd, dst_dir_fd=walk.dir_fd)
                temp = None
            finally:
                if temp is not None:
                    try:
                        os.unlink(temp, dir_fd=walk.dir_fd)
                    except OSError:
                        pass
            return target.path
        finally:
            walk.close()

    def write_text(self, path: str, text: str, mode: t.Optional[int] = None, make_parents: bool = True) -> str:
        return self.write_bytes(path, text.encode("utf-8"), mode, make_parents)

    @staticmethod
    def _selinux_label(dir_fd: int, name: str) -> t.Optional[bytes]:
        if not hasattr(os, "getxattr"):
            return None
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except OSError:
            return None
        try:
            return os.getxattr(fd, "security.selinux")
        except OSError:
            return None
        finally:
            os.close(fd)

    def truncate(self, path: str) -> bool:
        """Empty the regular file at ``path`` in place (mode and owner stay); False when it is
        missing or not a regular file (a link is never written through)."""
        target = self._resolve(path, follow_last=False)
        if target is None:
            return False
        try:
            if target.stat is None or not stat.S_ISREG(target.stat.st_mode):
                return False
            fd = os.open(target.name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0),
                         dir_fd=target.walk.dir_fd)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return False
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)
            return True
        finally:
            target.walk.close()

    def remove(self, path: str) -> bool:
        """Remove the entry at ``path`` (a directory with everything below it); a final link is
        removed itself, never followed. Never removes the root, and refuses to descend into
        another filesystem mounted inside the image. False when there was nothing to remove."""
        check_path_option(path, "path")
        target = self._resolve(path, follow_last=False)
        if target is None:
            return False
        try:
            if target.stat is None:
                return False
            if target.name == "":
                raise RootError("%s: refusing to remove %s, the whole image" % (self.option, path))
            _remove_at(target.walk.dir_fd, target.name, os.fstat(target.walk.dir_fd).st_dev, target.path)
            return True
        finally:
            target.walk.close()


def _remove_at(parent_fd: int, name: str, device: int, display: str) -> None:
    """Remove name (recursively) below parent_fd without following links or leaving ``device``."""
    st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=parent_fd)
        return
    if st.st_dev != device:
        raise RootError("path: %s is a mount point; not removing another filesystem" % display)
    # Iterative, so a hostile tree thousands of levels deep cannot exhaust the Python stack.
    first = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    stack = [(first, parent_fd, name, display)]
    try:
        while stack:
            fd, above, entry, where = stack[-1]
            descended = False
            for child in os.listdir(fd):
                child_st = os.stat(child, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(child_st.st_mode):
                    if child_st.st_dev != device:
                        raise RootError("path: %s/%s is a mount point; not removing another filesystem"
                                        % (where, child))
                    stack.append((os.open(child, _DIR_FLAGS, dir_fd=fd), fd, child, where + "/" + child))
                    descended = True
                    break
                os.unlink(child, dir_fd=fd)
            if descended:
                continue
            os.close(fd)
            stack.pop()
            os.rmdir(entry, dir_fd=above)
    finally:
        for fd, _above, _entry, _where in stack:
            os.close(fd)
