# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# What goes into the image and what happens at launch, for a bake level (the customize role's
# plan): full bakes packages, files and services; standard bakes packages and applies files and
# services at launch; minimal does everything at launch. What is not baked becomes cloud-config
# user-data for the launch template. Environment values (launch_config.values) are never baked:
# they are written at launch as a shell-sourceable KEY='value' file.

from __future__ import annotations

import hashlib
import re
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

LEVELS = ("full", "standard", "minimal")
DEFAULT_VALUES_PATH = "/etc/default/bakery-launch"

_ABSOLUTE = re.compile(r"/[^\x00-\x1f\x7f]*\Z")
_MODE = re.compile(r"0?[0-7]{3}\Z")
_OWNER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z|[0-9]{1,10}\Z")
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_SHELL_PLAIN = re.compile(r"[A-Za-z0-9_./:@%+,=-]*\Z")
_FILE_KEYS = ("path", "content", "template", "mode", "owner", "group")

# What enables a service at launch, whatever the init system of the instance.
ENABLE_SERVICE = (
    'if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl enable --now "$0"; '
    'elif command -v systemctl >/dev/null 2>&1; then systemctl enable "$0"; '
    'elif command -v update-rc.d >/dev/null 2>&1; then update-rc.d "$0" enable && { service "$0" start || true; }; '
    'else chkconfig "$0" on && { service "$0" start || true; }; fi'
)


class CustomizeError(BakeryError):
    """A customize setting breaks a rule; the message names it."""


def check_files(option: str, files: t.Any) -> None:
    """Each entry: {path (absolute), content or template, mode, owner, group}."""
    if not isinstance(files, list):
        raise CustomizeError("%s: must be a list of {path, content or template, mode, owner, group}" % option)
    seen = set()
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise CustomizeError("%s: every entry needs an absolute path: {path, content or template, mode}, got %r"
                                 % (option, entry))
        path = entry["path"]
        if not _ABSOLUTE.fullmatch(path) or "/../" in path + "/" or path.rstrip("/") == "":
            raise CustomizeError("%s: path must be an absolute file path without '..' or control characters, "
                                 "got %r" % (option, path))
        if path in seen:
            raise CustomizeError("%s: %s is listed twice" % (option, path))
        seen.add(path)
        unknown = sorted(set(map(str, entry)) - set(_FILE_KEYS))
        if unknown:
            raise CustomizeError("%s: %s: unknown keys %s (known: %s)" % (
                option, path, ", ".join(unknown), ", ".join(_FILE_KEYS)))
        if "content" in entry and "template" in entry:
            raise CustomizeError("%s: %s: give content or template, not both" % (option, path))
        if "content" in entry and not isinstance(entry["content"], str):
            raise CustomizeError("%s: %s: content must be a string" % (option, path))
        if "template" in entry and (not isinstance(entry["template"], str) or not entry["template"]):
            raise CustomizeError("%s: %s: template must be a template file name" % (option, path))
        mode = str(entry.get("mode", "0644"))
        if not _MODE.fullmatch(mode):
            raise CustomizeError("%s: %s: mode must be an octal string such as '0644', got %r"
                                 % (option, path, entry.get("mode")))
        for key in ("owner", "group"):
            if key in entry and not _OWNER.fullmatch(str(entry[key])):
                raise CustomizeError("%s: %s: %s must be a user or group name or number, got %r"
                                     % (option, path, key, entry[key]))


def check_launch_config(option: str, config: t.Any) -> None:
    if not isinstance(config, dict):
        raise CustomizeError("%s: must be a mapping with files, values and values_path" % option)
    unknown = sorted(set(map(str, config)) - {"files", "values", "values_path"})
    if unknown:
        raise CustomizeError("%s: unknown keys %s (known: files, values, values_path)" % (option, ", ".join(unknown)))
    check_files(option + ".files", config.get("files") or [])
    values = config.get("values") or {}
    if not isinstance(values, dict):
        raise CustomizeError("%s.values: must be a mapping of variable names to values" % option)
    for key, value in values.items():
        if not isinstance(key, str) or not _SHELL_NAME.fullmatch(key):
            raise CustomizeError("%s.values: %r is not a shell variable name (letters, digits and '_', not "
                                 "starting with a digit)" % (option, key))
        if isinstance(value, (dict, list, tuple)):
            raise CustomizeError("%s.values: %s must be a string, number, boolean or null (lists and mappings "
                                 "cannot be one shell variable), got %s" % (option, key, type(value).__name__))
        if "\0" in value_text(value):
            raise CustomizeError("%s.values: %s must not contain NUL" % (option, key))
    path = config.get("values_path")
    if path is not None and path != "" and (not isinstance(path, str) or not _ABSOLUTE.fullmatch(path)):
        raise CustomizeError("%s.values_path: must be an absolute path, got %r" % (option, path))


def value_text(value: t.Any) -> str:
    """The text a launch value stands for (booleans as true/false, as a shell script reads them;
    null as the empty string)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def shell_quote(text: str) -> str:
    if _SHELL_PLAIN.fullmatch(text) and text:
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


def values_file(values: dict) -> str:
    """KEY=value lines that `sh` sourcing the file turns back into exactly the values."""
    return "".join("%s=%s\n" % (key, shell_quote(value_text(value))) for key, value in values.items())


def _rendered(entry: dict, templates: t.Mapping[str, str], option: str) -> dict:
    if "template" in entry:
        if entry["template"] not in templates:
            raise CustomizeError("%s: %s: template %s was not rendered" % (option, entry["path"], entry["template"]))
        content = templates[entry["template"]]
    else:
        content = entry.get("content", "")
    mode = str(entry.get("mode", "0644"))
    return {"path": entry["path"], "content": content, "mode": mode if len(mode) == 4 else "0" + mode,
            "owner": str(entry.get("owner", "root")), "group": str(entry.get("group", "root"))}


def plan(level: str, packages: list, files: list, services: list, launch_config: dict,
         templates: t.Mapping[str, str], option_prefix: str = "customize_") -> dict:
    """The split of a bake between image and launch; templates maps each template name to its
    rendered text. Returns {level, baked, launch, user_data, image_files}."""
    if level not in LEVELS:
        raise CustomizeError("%slevel: must be one of %s, got %r" % (option_prefix, ", ".join(LEVELS), level))
    check_files(option_prefix + "files", files)
    check_launch_config(option_prefix + "launch_config", launch_config)
    image_files = [_rendered(entry, templates, option_prefix + "files") for entry in files]
    launch_files = [_rendered(entry, templates, option_prefix + "launch_config.files")
                    for entry in launch_config.get("files") or []]
    values = launch_config.get("values") or {}
    if values:
        launch_files.append({"path": launch_config.get("values_path") or DEFAULT_VALUES_PATH,
                             "content": values_file(values), "mode": "0644", "owner": "root", "group": "root"})
    baked_files = image_files if level == "full" else []
    write_files = [{"path": f["path"], "content": f["content"], "permissions": f["mode"],
                    "owner": "%s:%s" % (f["owner"], f["group"])}
                   for f in ([] if level == "full" else image_files) + launch_files]
    launch_services = [] if level == "full" else list(services)
    launch_packages = list(packages) if level == "minimal" else []
    runcmd = [["sh", "-c", ENABLE_SERVICE, service] for service in launch_services]
    if level == "full" and launch_files:
        # baked services read launch-time files: restart them once those are written
        runcmd += [["sh", "-c", 'service "$0" restart || true', service] for service in services]
    user_data: dict = {}
    if launch_packages:
        user_data["packages"] = launch_packages
    if write_files:
        user_data["write_files"] = write_files
    if runcmd:
        user_data["runcmd"] = runcmd
    return {
        "level": level,
        "baked": {
            "packages": list(packages) if level in ("full", "standard") else [],
            "files": [{"path": f["path"], "sha256": hashlib.sha256(f["content"].encode("utf-8")).hexdigest(),
                       "mode": f["mode"], "owner": f["owner"], "group": f["group"]} for f in baked_files],
            "services": list(services) if level == "full" else [],
        },
        "launch": {
            "packages": launch_packages,
            "files": [f["path"] for f in write_files],
            "services": launch_services,
            "values": {key: value_text(value) for key, value in values.items()},
            "values_path": (launch_config.get("values_path") or DEFAULT_VALUES_PATH) if values else "",
        },
        "user_data": user_data,
        "image_files": baked_files,
    }
