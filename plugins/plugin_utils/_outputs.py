# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The bake's output files (bake-report.json, launch-user-data.yml, bake-manifest.json and the
# image's CycloneDX SBOM <name>.cdx.json) rendered,
# compared and written on the controller by the bakery.ami.bake_outputs action plugin. Plain
# functions, so that they are tested without a playbook; the plugin only wires them to a task.
#
# Rendering uses Ansible's own JSON encoder and YAML dumper, the ones behind the to_nice_json and
# to_nice_yaml filters, so the data is written as those filters write it, and ansible-core 2.19's
# tagged strings and native wrapper types serialize like plain values.
#
# The files are written so that a path cannot be turned against the user who runs the bake:
#
# - no symbolic link planted by someone else is followed: each path is walked from "/" one
#   component at a time with directory descriptors opened O_NOFOLLOW (openat-style); a directory
#   link is followed only when root or the user running the task owns it (and never in /proc, /sys
#   or /dev), a link at the file itself never, and
#   the file is created beside its final name and renamed into place through the descriptor of
#   its directory, so a link swapped in between the check and the write is never written through;
# - a file is only ever replaced when bake_outputs wrote it: each file carries a marker (the key
#   MARKER_KEY in the JSON files, the line USER_DATA_MARKER in the user-data, the metadata property
#   _sbom.MARKER_PROPERTY in the SBOM, whose schema allows no other key) and an existing file
#   without it (or with the marker of another of the files) is refused;
# - modes are data-file modes: the owner reads and writes, nobody executes, no setuid, setgid or
#   sticky bit, nobody else writes;
# - a path with a control character, on a kernel filesystem (/proc, /sys, /dev) or naming anything
#   but a regular file is refused.
#
# Every option is checked and every existing file read before anything is written; when any of
# them is wrong nothing is written and the message names the option and the rule.

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import stat
import typing as t

import yaml

from ansible.parsing.yaml.dumper import AnsibleDumper

from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.plugin_utils import _sbom

try:
    from ansible.module_utils.datatag import native_type_name
except ImportError:  # ansible-core < 2.19: no tagged types

    def native_type_name(value: t.Any) -> str:
        return type(value).__name__

try:
    from ansible.module_utils.common.json import get_encoder
except ImportError:  # ansible-core < 2.19: the encoder to_nice_json used then
    from ansible.module_utils.common.json import AnsibleJSONEncoder as JSON_ENCODER
else:
    JSON_ENCODER = get_encoder("tagless")

# (key in the result, path option, data option), in the order the files are written
PAIRS = (
    ("report", "report_path", "report"),
    ("user_data", "user_data_path", "user_data"),
    ("manifest", "manifest_path", "manifest_build"),
    ("sbom", "sbom_path", "sbom"),
)
# What each file is called in messages and in its marker.
KIND = {"report": "report", "user_data": "launch user-data", "manifest": "manifest", "sbom": "SBOM"}
# The marker of the two JSON files: a top-level key whose value is the file's kind.
MARKER_KEY = "_bakery_outputs"
# The marker of the user-data: the line right after #cloud-config (a YAML comment).
USER_DATA_MARKER = "# written by bakery.ami.bake_outputs (launch user-data); a rerun may replace this file"
CLOUD_CONFIG = "#cloud-config"
DEFAULT_MODE = "0644"
PATH_MAX = 4095  # bytes, without the terminating NUL of the kernel's PATH_MAX (4096)
NAME_MAX = 255
# A file larger than this is neither read (it cannot be one bake_outputs wrote) nor written.
MAX_FILE_BYTES = 64 * 1024 * 1024
MODE_RE = re.compile(r"(?:0o)?[0-7]{3,4}")
# Directories of kernel filesystems: nothing bake_outputs writes belongs there.
KERNEL_DIRS = ("/proc", "/sys", "/dev")
# Files larger than this get no before/after text in the diff (ansible.builtin.copy's rule).
DEFAULT_MAX_DIFF_SIZE = 104448

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class OutputsError(BakeryError):
    """A user mistake or an unusable file; the message names the option and the rule."""


class FilePlan(t.NamedTuple):
    key: str
    option: str
    path: str  # absolute and normal (no '.', '..' or repeated '/'); no link in it
    before: bytes | None  # None: the file does not exist
    before_mode: int | None
    identity: tuple | None  # (st_dev, st_ino, st_size, st_mtime_ns) of the existing file
    after: bytes
    mode: int

    @property
    def content_changed(self) -> bool:
        return self.before != self.after

    @property
    def mode_changed(self) -> bool:
        return self.before_mode is not None and self.before_mode != self.mode

    @property
    def changed(self) -> bool:
        return self.content_changed or self.mode_changed


# ---------------------------------------------------------------------------------------------
# Rendering


def render_json(data: t.Any) -> str:
    """JSON as `to_nice_json(indent=2)` writes it, plus a final newline."""
    return json.dumps(data, cls=JSON_ENCODER, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"


def render_report(data: t.Mapping) -> str:
    """The report: data and the marker key, as JSON."""
    return render_json(dict(data, **{MARKER_KEY: KIND["report"]}))


def render_user_data(data: t.Mapping) -> str:
    """`#cloud-config`, the marker line, then the block-style YAML of data in its own key order
    (`{}` when empty)."""
    head = CLOUD_CONFIG + "\n" + USER_DATA_MARKER + "\n"
    if not data:
        return head + "{}\n"
    body = yaml.dump(data, Dumper=AnsibleDumper, allow_unicode=True, default_flow_style=False, indent=2,
                     sort_keys=False)
    return head + body + ("" if body.endswith("\n") else "\n")


def merge_manifest(existing: str | None, build: t.Mapping, path: str = "manifest_path") -> dict:
    """The manifest with build in it: appended, or in place of the entry with its packer_run_uuid.

    existing is the current file's text (None when there is none); other top-level keys of it
    are kept. A file that is not a JSON object with a `builds` list raises, naming path. The
    result carries the marker key.
    """
    uuid = build.get("packer_run_uuid")
    if existing is None:
        manifest: dict = {"builds": []}
    else:
        try:
            manifest = json.loads(existing)
        except ValueError as exc:
            raise OutputsError("manifest_path: %s is not JSON (%s); fix or remove it" % (path, exc)) from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("builds"), list):
            raise OutputsError("manifest_path: %s is not a Packer manifest (a JSON object with a 'builds' list);"
                               " fix or remove it" % path)
    builds = list(manifest["builds"])
    for index, entry in enumerate(builds):
        if isinstance(entry, dict) and entry.get("packer_run_uuid") == uuid:
            builds[index] = build
            break
    else:
        builds.append(build)
    manifest = dict(manifest, builds=builds, last_run_uuid=uuid)
    manifest[MARKER_KEY] = KIND["manifest"]
    return manifest


def _marker_of(key: str, data: bytes) -> str | None:
    """The kind named by the marker in an existing file's content, or None when it has none."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith(CLOUD_CONFIG + "\n" + USER_DATA_MARKER + "\n"):
        return KIND["user_data"]
    if key == "user_data":
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(parsed, dict) and parsed.get(MARKER_KEY) in (KIND["report"], KIND["manifest"]):
        return parsed[MARKER_KEY]
    if _sbom.is_sbom(parsed):
        return KIND["sbom"]
    return None


def check_marker(key: str, option: str, path: str, data: bytes) -> None:
    """Raise unless data (an existing file at path) is a file bake_outputs wrote as `key`."""
    found = _marker_of(key, data)
    if found == KIND[key]:
        return
    if key == "user_data":
        marker = "the line %r after #cloud-config" % USER_DATA_MARKER
    elif key == "sbom":
        marker = 'the metadata property {"name": "%s", "value": "%s"}' % (_sbom.MARKER_PROPERTY, _sbom.MARKER_VALUE)
    else:
        marker = 'the key "%s": "%s"' % (MARKER_KEY, KIND[key])
    if found is None:
        raise OutputsError("%s: %s exists and was not written by bakery.ami.bake_outputs (it lacks %s); refusing to "
                           "replace a file it did not write: remove it or choose another path"
                           % (option, path, marker))
    raise OutputsError("%s: %s is the %s that bakery.ami.bake_outputs wrote, not a %s; refusing to replace it: "
                       "choose another path" % (option, path, found, KIND[key]))


# ---------------------------------------------------------------------------------------------
# Validation


def parse_mode(value: t.Any) -> int:
    """An octal mode string ('0644', '644', '0o644') as a number, for a data file: the owner
    reads and writes it, nobody executes it, nobody else writes it, no special bit."""
    if isinstance(value, bool) or not isinstance(value, str):
        hint = ""
        if isinstance(value, int) and not isinstance(value, bool):
            hint = " (quote it: an unquoted 0644 in YAML is the decimal number 420)"
        raise OutputsError("mode: must be an octal string such as '0644', got %s %r%s"
                           % (native_type_name(value), value, hint))
    if not MODE_RE.fullmatch(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise OutputsError("mode: must be an octal string of 3 or 4 digits such as '0644', got %r" % shown)
    mode = int(value[2:] if value.startswith("0o") else value, 8)
    rule = None
    if mode & 0o7000:
        rule = "sets the setuid, setgid or sticky bit"
    elif mode & 0o111:
        rule = "makes the file executable"
    elif mode & 0o600 != 0o600:
        rule = "does not let the owner read and write the file (a rerun reads and replaces it)"
    elif mode & 0o002:
        rule = "lets every user of the controller change the file"
    if rule:
        raise OutputsError("mode: %r %s; the output files are data: give the owner read and write, nobody "
                           "execute, no special bit and no write for others (such as '0644', '0640' or '0600')"
                           % (value, rule))
    return mode


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "...")


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def check_path(option: str, value: t.Any, cwd: str | None = None) -> str:
    """The absolute, normal path of option's value, checked lexically (not on disk yet).

    `~` and environment variables are expanded as options of type path are; a relative path is
    taken from cwd (the controller's current directory).
    """
    if not isinstance(value, str) or not value:
        raise OutputsError("%s: must be a non-empty string (a file path), got %r" % (option, value))
    if _has_control(value):
        raise OutputsError("%s: must not contain control characters (newline, tab, NUL, ...), got %s"
                           % (option, _shown(value)))
    value = os.path.expanduser(os.path.expandvars(value))
    if _has_control(value):
        raise OutputsError("%s: must not contain control characters (newline, tab, NUL, ...) once ~ and "
                           "variables are expanded, got %s" % (option, _shown(value)))
    try:
        size = len(os.fsencode(value))
    except UnicodeError:
        raise OutputsError("%s: cannot be encoded as a file name: %s" % (option, _shown(value))) from None
    if size > PATH_MAX:
        raise OutputsError("%s: must be at most %d bytes long, got %d" % (option, PATH_MAX, size))
    if value.endswith("/"):
        raise OutputsError("%s: must name a file, not a directory: %s" % (option, _shown(value)))
    if not os.path.isabs(value):
        value = os.path.join(cwd or os.getcwd(), value)
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if not parts or parts[-1] == "..":
        raise OutputsError("%s: must name a file, not a directory: %s" % (option, _shown(value)))
    for part in parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise OutputsError("%s: every path component must be at most %d bytes long: %s"
                               % (option, NAME_MAX, _shown(value)))
    return value


def check_sbom(option: str, value: t.Any) -> None:
    """The SBOM is given as its JSON text (so that the bytes written are the ones whose sha256 the
    bake recorded): a CycloneDX document carrying the marker property."""
    if not isinstance(value, str):
        raise OutputsError("%s: must be the JSON text of a CycloneDX document (a string), got %s"
                           % (option, native_type_name(value)))
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise OutputsError("%s: is not JSON (%s)" % (option, exc)) from None
    if not _sbom.is_sbom(parsed):
        raise OutputsError("%s: must be a CycloneDX document with the metadata property %r: %r (as the bake makes "
                           "it); got something else" % (option, _sbom.MARKER_PROPERTY, _sbom.MARKER_VALUE))


def check_data(option: str, value: t.Any) -> None:
    if option == "sbom":
        check_sbom(option, value)
        return
    if not isinstance(value, t.Mapping):
        raise OutputsError("%s: must be a dict, got %s" % (option, native_type_name(value)))


# ---------------------------------------------------------------------------------------------
# The file layer: walking a path without following links


class _Place(t.NamedTuple):
    """Where a file goes: its directory (open when it exists), what is missing above it."""

    dir_fd: int  # the deepest existing directory, open; caller closes
    existing: str  # its path
    missing: tuple  # names of the directories to create below it, in order
    name: str  # the file's own name
    path: str  # the file's absolute normal path


_MAX_DIR_LINKS = 40


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def _walk(option: str, path: str, create: bool = False) -> _Place:
    """Walk the directories of path from '/', never following a link; with create, make the
    missing ones (mode 0755 whatever the umask). Raises OutputsError naming option."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    name = parts.pop()
    stack = [os.open("/", os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))]
    names: list = []
    missing: list = []
    hops = 0
    try:
        while parts:
            part = parts.pop(0)
            here = "/" + "/".join(names)
            if missing:
                if part == "..":
                    raise OutputsError("%s: '..' follows %s, which is not an existing directory"
                                       % (option, _join(here, "/".join(missing))))
                missing.append(part)
                continue
            if part == "..":
                if names:
                    os.close(stack.pop())
                    names.pop()
                continue
            try:
                st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    missing.append(part)
                    continue
                try:
                    os.mkdir(part, 0o755, dir_fd=stack[-1])
                except FileExistsError:
                    pass
                st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    fd = os.open(part, _DIR_FLAGS, dir_fd=stack[-1])
                    os.fchmod(fd, 0o755)
                    stack.append(fd)
                    names.append(part)
                    continue
            except PermissionError:
                raise OutputsError("%s: cannot look into %s (permission denied)" % (option, here)) from None
            where = _join(here, part)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(part, dir_fd=stack[-1])
                # A directory link the administrator or this user made (/home -> /data/home, a
                # checkout reached through a link) is followed; one anybody else owns, which they
                # could have planted in a shared directory, is refused.
                if st.st_uid not in (0, os.geteuid()) or hops >= _MAX_DIR_LINKS or names[:1] in (["proc"], ["sys"], ["dev"]):
                    raise OutputsError("%s: %s is a symbolic link (to %s) owned by another user; bake_outputs "
                                       "follows only directory links of root or of the user running it: give a "
                                       "path without it" % (option, where, _shown(target)))
                hops += 1
                if target.startswith("/"):
                    while names:
                        os.close(stack.pop())
                        names.pop()
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise OutputsError("%s: %s is not a directory" % (option, where))
            try:
                fd = os.open(part, _DIR_FLAGS, dir_fd=stack[-1])
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    raise OutputsError("%s: %s changed while it was checked (now a link or not a directory)"
                                       % (option, where)) from None
                raise OutputsError("%s: cannot open %s: %s" % (option, where, exc.strerror)) from None
            stack.append(fd)
            names.append(part)
        existing = "/" + "/".join(names)
        parent = _join(existing, "/".join(missing)) if missing else existing
        dir_fd = stack.pop()
        return _Place(dir_fd, existing, tuple(missing), name, _join(parent, name))
    finally:
        for fd in stack:
            os.close(fd)


def _in_kernel_dir(path: str) -> bool:
    return any(path == top or path.startswith(top + "/") for top in KERNEL_DIRS)


def _read_existing(option: str, place: _Place) -> tuple:
    """(content, mode, identity) of the file at place, or (None, None, None) when missing."""
    shown = place.path
    try:
        st = os.stat(place.name, dir_fd=place.dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None, None, None
    except OSError as exc:
        raise OutputsError("%s: cannot read %s: %s" % (option, shown, exc.strerror)) from None
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(place.name, dir_fd=place.dir_fd)
        raise OutputsError("%s: %s is a symbolic link (to %s); bake_outputs never writes through a link: remove "
                           "it or give another path" % (option, shown, _shown(target)))
    if stat.S_ISDIR(st.st_mode):
        raise OutputsError("%s: %s is a directory; give the path of the file to write" % (option, shown))
    if not stat.S_ISREG(st.st_mode):
        raise OutputsError("%s: %s exists and is not a regular file" % (option, shown))
    if st.st_size > MAX_FILE_BYTES:
        raise OutputsError("%s: %s exists and is larger than %d MiB, so bake_outputs did not write it; refusing "
                           "to replace it" % (option, shown, MAX_FILE_BYTES >> 20))
    try:
        fd = os.open(place.name, _READ_FLAGS, dir_fd=place.dir_fd)
    except OSError as exc:
        raise OutputsError("%s: cannot read %s: %s" % (option, shown, exc.strerror)) from None
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise OutputsError("%s: %s changed while it was read" % (option, shown))
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OutputsError("%s: %s grew larger than %d MiB while it was read" % (option, shown, MAX_FILE_BYTES >> 20))
    return data, stat.S_IMODE(opened.st_mode), (opened.st_dev, opened.st_ino, opened.st_size, opened.st_mtime_ns)


def locate(option: str, value: t.Any, cwd: str | None = None) -> tuple:
    """Check option's path on disk: (absolute path, content, mode, identity) of the file there,
    content None when it does not exist. Raises unless a regular file could be written there
    without following a link."""
    path = check_path(option, value, cwd)
    try:
        place = _walk(option, path)
    except OSError as exc:
        raise OutputsError("%s: cannot check %s: %s" % (option, path, exc.strerror or exc)) from None
    try:
        if _in_kernel_dir(place.path.rsplit("/", 1)[0] or "/"):
            raise OutputsError("%s: %s is on a kernel filesystem (/proc, /sys or /dev); give a path on a regular "
                               "filesystem" % (option, place.path))
        if place.missing:
            before = (None, None, None)
        else:
            before = _read_existing(option, place)
        if not os.access(place.existing, os.W_OK | os.X_OK):
            raise OutputsError("%s: cannot write into %s (permission denied)" % (option, place.existing))
    except OSError as exc:
        raise OutputsError("%s: cannot check %s: %s" % (option, path, exc.strerror or exc)) from None
    finally:
        os.close(place.dir_fd)
    return (place.path,) + tuple(before)


def plan(params: t.Mapping, cwd: str | None = None) -> list[FilePlan]:
    """Validate every option, read the current files and render the new ones; write nothing.

    params holds the task's options (None for one not given). Raises OutputsError at the first
    problem, so nothing is written unless everything is valid.
    """
    given = []
    for key, path_option, data_option in PAIRS:
        has_path, has_data = params.get(path_option) is not None, params.get(data_option) is not None
        if has_path != has_data:
            raise OutputsError("%s and %s: give both or neither (%s is missing)"
                               % (path_option, data_option, data_option if has_path else path_option))
        if has_path:
            given.append((key, path_option, data_option))
    if not given:
        raise OutputsError("report_path, user_data_path, manifest_path, sbom_path: give at least one of them, each"
                           " with its data (report, user_data, manifest_build, sbom)")
    mode = parse_mode(DEFAULT_MODE if params.get("mode") is None else params["mode"])

    for _key, _path_option, data_option in given:
        check_data(data_option, params[data_option])
    report = params.get("report")
    if report is not None and MARKER_KEY in report:
        raise OutputsError("report: must not hold the key %r, which bake_outputs sets itself (its marker)" % MARKER_KEY)
    build = params.get("manifest_build")
    if build is not None:
        uuid = build.get("packer_run_uuid")
        if not isinstance(uuid, str) or not uuid.strip():
            raise OutputsError("manifest_build: must have packer_run_uuid, a non-empty string (the run ID), got %r"
                               % (uuid,))

    found: dict = {}
    for _key, path_option, _data_option in given:
        path = os.path.normpath(check_path(path_option, params[path_option], cwd))
        for other, other_path in found.items():
            if other_path == path:
                raise OutputsError("%s and %s: must be different files, both are %s" % (other, path_option, path))
        found[path_option] = path

    plans = []
    for key, path_option, data_option in given:
        path, before, before_mode, identity = locate(path_option, params[path_option], cwd)
        if before is not None:
            check_marker(key, path_option, path, before)
        try:
            if key == "report":
                text = render_report(params[data_option])
            elif key == "user_data":
                text = render_user_data(params[data_option])
            elif key == "sbom":
                text = params[data_option] if params[data_option].endswith("\n") else params[data_option] + "\n"
            else:
                existing = None if before is None else before.decode("utf-8")
                text = render_json(merge_manifest(existing, params[data_option], path))
        except (TypeError, ValueError, RecursionError, yaml.YAMLError) as exc:
            raise OutputsError("%s: cannot be written as %s: %s"
                               % (data_option, "YAML" if key == "user_data" else "JSON", exc)) from None
        after = text.encode("utf-8")
        if len(after) > MAX_FILE_BYTES:
            raise OutputsError("%s: is written as %d bytes, more than the %d MiB an output file may hold"
                               % (data_option, len(after), MAX_FILE_BYTES >> 20))
        plans.append(FilePlan(key, path_option, path, before, before_mode, identity, after, mode))
    return plans


# ---------------------------------------------------------------------------------------------
# Diff, write, result


def _mode_text(mode: int | None) -> str:
    return "" if mode is None else "%04o" % mode


def diffs(plans: list[FilePlan], max_size: int = DEFAULT_MAX_DIFF_SIZE) -> list:
    """One diff per changed file, as ansible.builtin.copy returns it (mode changes as file's)."""
    result = []
    for item in plans:
        if item.content_changed:
            entry: dict = {"before_header": item.path, "after_header": item.path}
            if item.before is not None and len(item.before) > max_size:
                entry["dst_larger"] = max_size
            elif len(item.after) > max_size:
                entry["src_larger"] = max_size
            else:  # both are UTF-8: an existing file is one bake_outputs wrote (its marker was read)
                entry["before"] = "" if item.before is None else item.before.decode("utf-8")
                entry["after"] = item.after.decode("utf-8")
            result.append(entry)
        if item.mode_changed:
            result.append({"before_header": item.path, "after_header": item.path,
                           "before": {"path": item.path, "mode": _mode_text(item.before_mode)},
                           "after": {"path": item.path, "mode": _mode_text(item.mode)}})
    return result


def _still_as_planned(item: FilePlan, place: _Place) -> None:
    """Raise when the file changed since it was planned (appeared, went, or was replaced)."""
    try:
        st = os.stat(place.name, dir_fd=place.dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    now = None if st is None else (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if now != item.identity or (st is not None and not stat.S_ISREG(st.st_mode)):
        raise OutputsError("%s: %s changed while bake_outputs was writing (another writer?); not replaced, run the "
                           "task again" % (item.option, item.path))


def _write_one(item: FilePlan) -> None:
    place = _walk(item.option, item.path, create=True)
    try:
        _still_as_planned(item, place)
        temp = None
        for _attempt in range(100):
            candidate = ".bake_outputs-%s.tmp" % secrets.token_hex(6)
            try:
                fd = os.open(candidate, _TEMP_FLAGS, 0o600, dir_fd=place.dir_fd)
            except FileExistsError:
                continue
            temp = candidate
            break
        if temp is None:
            raise OutputsError("%s: cannot create a temporary file beside %s" % (item.option, item.path))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(item.after)
                handle.flush()
                os.fchmod(handle.fileno(), item.mode)
                os.fsync(handle.fileno())
            _still_as_planned(item, place)
            # rename replaces whatever has the name (a link included) and never follows it
            os.rename(temp, place.name, src_dir_fd=place.dir_fd, dst_dir_fd=place.dir_fd)
            temp = None
            os.fsync(place.dir_fd)
        finally:
            if temp is not None:
                try:
                    os.unlink(temp, dir_fd=place.dir_fd)
                except OSError:
                    pass
    finally:
        os.close(place.dir_fd)


def write(plans: list[FilePlan]) -> None:
    """Write the changed files: each through a new file beside it, then a rename in its directory
    (a mode change too: the existing file is never modified in place)."""
    for item in plans:
        if not item.changed:
            continue
        try:
            _write_one(item)
        except OSError as exc:
            raise OutputsError("%s: cannot write %s: %s" % (item.option, item.path, exc.strerror or exc)) from None


def result(plans: list[FilePlan]) -> dict:
    return {"changed": any(p.changed for p in plans),
            "files": {p.key: {"path": p.path, "changed": p.changed} for p in plans}}


def bake_outputs(params: t.Mapping, check_mode: bool = False, diff: bool = False, cwd: str | None = None,
                 max_diff_size: int = DEFAULT_MAX_DIFF_SIZE) -> dict:
    """The whole task: plan, then write unless check_mode; the task result without `failed`."""
    plans = plan(params, cwd)
    if not check_mode:
        write(plans)
    answer = result(plans)
    if diff:
        answer["diff"] = diffs(plans, max_diff_size)
    return answer
