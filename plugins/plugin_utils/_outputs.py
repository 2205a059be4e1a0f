# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The bake's output files (bake-report.json, launch-user-data.yml, bake-manifest.json) rendered,
# compared and written on the controller by the bakery.ami.bake_outputs action plugin. Plain
# functions, so that they are tested without a playbook; the plugin only wires them to a task.
#
# Rendering uses Ansible's own JSON encoder and YAML dumper, the ones behind the to_nice_json and
# to_nice_yaml filters, so the bytes match what those filters produced for the same data, and
# ansible-core 2.19's tagged strings and native wrapper types serialize like plain values.

from __future__ import annotations

import json
import os
import re
import stat
import typing as t

import yaml

from ansible.parsing.yaml.dumper import AnsibleDumper

from ansible_collections.bakery.ami.plugins.module_utils._paths import write_atomically

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
)
DEFAULT_MODE = "0644"
PATH_MAX = 4095  # bytes, without the terminating NUL of the kernel's PATH_MAX (4096)
NAME_MAX = 255
MODE_RE = re.compile(r"^(?:0o)?[0-7]{3,4}$")
# Files larger than this get no before/after text in the diff (ansible.builtin.copy's rule).
DEFAULT_MAX_DIFF_SIZE = 104448


class OutputsError(Exception):
    """A user mistake or an unusable file; the message names the option and the rule."""


class FilePlan(t.NamedTuple):
    key: str
    option: str
    path: str  # absolute, as the task gave it
    target: str  # the file actually written (symbolic links of the last component followed)
    before: bytes | None  # None: the file does not exist
    before_mode: int | None
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
    """JSON as `to_nice_json(indent=2)` wrote it, plus the final newline of the old copy task."""
    return json.dumps(data, cls=JSON_ENCODER, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"


def render_user_data(data: t.Mapping) -> str:
    """`#cloud-config` then the block-style YAML of data in its own key order, or `{}` when empty."""
    if not data:
        return "#cloud-config\n{}\n"
    body = yaml.dump(data, Dumper=AnsibleDumper, allow_unicode=True, default_flow_style=False, indent=2,
                     sort_keys=False)
    return "#cloud-config\n" + body + ("" if body.endswith("\n") else "\n")


def merge_manifest(existing: str | None, build: t.Mapping, path: str = "manifest_path") -> dict:
    """The manifest with build in it: appended, or in place of the entry with its packer_run_uuid.

    existing is the current file's text (None when there is none); other top-level keys of it
    are kept. A file that is not a JSON object with a `builds` list raises, naming path.
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
    return manifest


# ---------------------------------------------------------------------------------------------
# Validation


def parse_mode(value: t.Any) -> int:
    """An octal mode string ('0644', '644', '0o644') as a number; anything else raises."""
    if isinstance(value, bool) or not isinstance(value, str):
        hint = ""
        if isinstance(value, int) and not isinstance(value, bool):
            hint = " (quote it: an unquoted 0644 in YAML is the decimal number 420)"
        raise OutputsError("mode: must be an octal string such as '0644', got %s %r%s"
                           % (native_type_name(value), value, hint))
    if not MODE_RE.match(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise OutputsError("mode: must be an octal string of 3 or 4 digits such as '0644', got %r" % shown)
    return int(value[2:] if value.startswith("0o") else value, 8)


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "...")


def check_path(option: str, value: t.Any, cwd: str | None = None) -> str:
    """The absolute path of option's value; raises unless a regular file could be written there.

    A relative path is taken from cwd (the controller's current directory). `..` is allowed only
    after an existing directory (where the kernel would resolve it the same way). Every
    existing component before the last must be a directory; the last one, when it exists, a
    regular file (a symbolic link to one is followed); the nearest existing directory must be
    writable.
    """
    if not isinstance(value, str) or not value:
        raise OutputsError("%s: must be a non-empty string (a file path), got %r" % (option, value))
    if "\x00" in value:
        raise OutputsError("%s: must not contain a NUL byte" % option)
    value = os.path.expanduser(os.path.expandvars(value))  # as options of type path are
    if len(os.fsencode(value)) > PATH_MAX:
        raise OutputsError("%s: must be at most %d bytes long, got %d" % (option, PATH_MAX, len(os.fsencode(value))))
    if value.endswith("/"):
        raise OutputsError("%s: must name a file, not a directory: %s" % (option, _shown(value)))
    if not os.path.isabs(value):
        value = os.path.join(cwd or os.getcwd(), value)
    parts = value.split("/")
    current = "/"
    existing_dir = "/"
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part in ("", "."):
            continue
        if len(os.fsencode(part)) > NAME_MAX:
            raise OutputsError("%s: every path component must be at most %d bytes long: %s"
                               % (option, NAME_MAX, _shown(value)))
        if part == "..":
            if not os.path.isdir(current):
                raise OutputsError("%s: '..' follows %s, which is not an existing directory" % (option, current))
            current = os.path.dirname(os.path.realpath(current))
            existing_dir = current
            if last:
                raise OutputsError("%s: must name a file, not a directory: %s" % (option, _shown(value)))
            continue
        current = os.path.join(current, part)
        if not last and os.path.lexists(current):
            if not os.path.isdir(current):
                raise OutputsError("%s: %s is not a directory" % (option, current))
            existing_dir = current
    if os.path.lexists(current):
        try:
            st = os.stat(current)
        except OSError as exc:
            raise OutputsError("%s: cannot read %s: %s" % (option, current, exc.strerror)) from None
        if stat.S_ISDIR(st.st_mode):
            raise OutputsError("%s: %s is a directory; give the path of the file to write" % (option, current))
        if not stat.S_ISREG(st.st_mode):
            raise OutputsError("%s: %s exists and is not a regular file" % (option, current))
    if not os.access(existing_dir, os.W_OK | os.X_OK):
        raise OutputsError("%s: cannot write into %s (permission denied)" % (option, existing_dir))
    return current


def check_data(option: str, value: t.Any) -> None:
    if not isinstance(value, t.Mapping):
        raise OutputsError("%s: must be a dict, got %s" % (option, native_type_name(value)))


def _read(option: str, path: str) -> tuple[bytes | None, int | None]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        return data, stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise OutputsError("%s: cannot read %s: %s" % (option, path, exc.strerror)) from None


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
        raise OutputsError("report_path, user_data_path, manifest_path: give at least one of them, each with its"
                           " data (report, user_data, manifest_build)")
    mode = parse_mode(DEFAULT_MODE if params.get("mode") is None else params["mode"])

    paths: dict = {}
    targets: dict = {}
    for key, path_option, data_option in given:
        check_data(data_option, params[data_option])
        path = check_path(path_option, params[path_option], cwd)
        target = os.path.realpath(path)
        for other, other_target in targets.items():
            if other_target == target:
                raise OutputsError("%s and %s: must be different files, both are %s" % (other, path_option, target))
        paths[path_option], targets[path_option] = path, target

    build = params.get("manifest_build")
    if build is not None:
        uuid = build.get("packer_run_uuid")
        if not isinstance(uuid, str) or not uuid.strip():
            raise OutputsError("manifest_build: must have packer_run_uuid, a non-empty string (the run ID), got %r"
                               % (uuid,))

    plans = []
    for key, path_option, data_option in given:
        path, target = paths[path_option], targets[path_option]
        before, before_mode = _read(path_option, target)
        try:
            if key == "report":
                text = render_json(params[data_option])
            elif key == "user_data":
                text = render_user_data(params[data_option])
            else:
                existing = None
                if before is not None:
                    try:
                        existing = before.decode("utf-8")
                    except UnicodeDecodeError:
                        raise OutputsError("manifest_path: %s is not JSON (not UTF-8 text); fix or remove it"
                                           % path) from None
                text = render_json(merge_manifest(existing, params[data_option], path))
        except (TypeError, ValueError, RecursionError, yaml.YAMLError) as exc:
            raise OutputsError("%s: cannot be written as %s: %s"
                               % (data_option, "YAML" if key == "user_data" else "JSON", exc)) from None
        plans.append(FilePlan(key, path_option, path, target, before, before_mode, text.encode("utf-8"), mode))
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
            else:
                try:
                    entry["before"] = "" if item.before is None else item.before.decode("utf-8")
                    entry["after"] = item.after.decode("utf-8")
                except UnicodeDecodeError:
                    entry = {"dst_binary": 1, "before_header": item.path, "after_header": item.path}
            result.append(entry)
        if item.mode_changed:
            result.append({"before_header": item.path, "after_header": item.path,
                           "before": {"path": item.path, "mode": _mode_text(item.before_mode)},
                           "after": {"path": item.path, "mode": _mode_text(item.mode)}})
    return result


def write(plans: list[FilePlan]) -> None:
    """Write the changed files atomically (temporary file beside each, then a rename)."""
    for item in plans:
        try:
            if item.content_changed:
                # missing parent directories are made 0755, whatever the umask
                write_atomically(item.target, item.after.decode("utf-8"), mode=item.mode)
            elif item.mode_changed:
                os.chmod(item.target, item.mode)
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
