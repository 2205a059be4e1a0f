# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private to bakery.ami: not a public API; may change without notice.
#
# Core of the cloudinit_guard module: reads an image's cloud-init configuration
# (/etc/cloud/cloud.cfg, then /etc/cloud/cloud.cfg.d/*.cfg in sorted order), merges it the
# way cloud-init does (dicts merge recursively; a list or scalar from a later file replaces
# the earlier value), plans the guard's own drop-in, finds later files that set its keys
# back, and audits what cloud-init will still rewrite at first boot. Nothing is written
# unless every input is valid.

from __future__ import annotations

import copy
import fnmatch
import os
import re
import shutil
import tempfile
import traceback
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _paths

try:
    import yaml
except ImportError:
    yaml = None
    YAML_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    YAML_IMPORT_ERROR = None

from ansible_collections.bakery.ami.plugins.module_utils._cloudinit_protections import (
    DISTRO_SETTINGS,
    EXTRA_KEYS,
    FIRST_BOOT_EFFECTS,
    PROTECTIONS,
)

CLOUD_CFG = "etc/cloud/cloud.cfg"
CLOUD_CFG_D = "etc/cloud/cloud.cfg.d"
MODULE_LISTS = ("cloud_init_modules", "cloud_config_modules", "cloud_final_modules")
DEFAULT_FILENAME = "99_bakery_guard.cfg"
HEADER = "#cloud-config\n"
_FILENAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*\.cfg$")
_MODULE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_CLOUD_INIT_BINARIES = ("usr/bin/cloud-init", "bin/cloud-init", "usr/local/bin/cloud-init")
_TRUE_STRINGS = ("true", "1", "on", "yes")
_FALSE_STRINGS = ("false", "0", "off", "no")


class GuardError(Exception):
    """A user mistake or an unreadable image; the message names the option or file."""


# --------------------------------------------------------------------------
# merging and lookups (pure)


def merge(lower: dict, higher: dict) -> dict:
    """cloud-init's merge of two config sources: dicts merge recursively, anything else
    from ``higher`` (lists, scalars, null) replaces the value of ``lower`` entirely."""
    result = copy.deepcopy(lower)
    for key, value in higher.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def merge_all(layers: t.Iterable[dict]) -> dict:
    """Merge config sources given lowest priority first."""
    result: dict = {}
    for layer in layers:
        result = merge(result, layer)
    return result


_MISSING = object()


def lookup(cfg: t.Any, dotted: str) -> t.Any:
    """Value at a dotted key (``apt.preserve_sources_list``), or _MISSING."""
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def sets_key(cfg: dict, dotted: str) -> tuple[bool, t.Any]:
    """Whether ``cfg`` sets ``dotted`` (or replaces one of its parents with a non-dict)."""
    node: t.Any = cfg
    parts = dotted.split(".")
    for index, part in enumerate(parts):
        if not isinstance(node, dict):
            return True, node
        if part not in node:
            return False, None
        node = node[part]
        if index < len(parts) - 1 and not isinstance(node, dict):
            return True, node
    return True, node


def leaf_keys(cfg: dict, prefix: str = "") -> list[str]:
    """Dotted keys of every non-dict value (an empty dict counts as a leaf)."""
    keys = []
    for key in sorted(cfg):
        value = cfg[key]
        dotted = prefix + str(key)
        if isinstance(value, dict) and value:
            keys.extend(leaf_keys(value, dotted + "."))
        else:
            keys.append(dotted)
    return keys


def canonical_module(name: t.Any) -> str:
    """cloud-init's module name: lower case, without cc_, '-' and '_' interchangeable."""
    text = str(name).strip().lower().replace("-", "_")
    return text[3:] if text.startswith("cc_") else text


def module_entry_name(entry: t.Any) -> str | None:
    if isinstance(entry, (list, tuple)) and entry:
        return canonical_module(entry[0])
    if isinstance(entry, str):
        return canonical_module(entry)
    if isinstance(entry, dict) and "name" in entry:
        return canonical_module(entry["name"])
    return None


def module_entry_frequency(entry: t.Any) -> str | None:
    if isinstance(entry, (list, tuple)) and len(entry) > 1:
        return str(entry[1])
    if isinstance(entry, dict) and entry.get("frequency"):
        return str(entry["frequency"])
    return None


def is_true(value: t.Any) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in _TRUE_STRINGS


def is_false(value: t.Any) -> bool:
    if isinstance(value, bool):
        return not value
    return isinstance(value, str) and value.strip().lower() in _FALSE_STRINGS


def _same(value: t.Any, item: t.Any) -> bool:
    if isinstance(value, str) and isinstance(item, str):
        return value.strip().lower() == item.lower()
    return type(value) is type(item) and value == item


def acts(rule: dict, cfg: dict) -> tuple[bool, t.Any]:
    """Whether the rule's key makes its module act under ``cfg``; and the value seen."""
    value = lookup(cfg, rule["key"])
    if value is _MISSING or value is None:
        value = rule.get("default")
    how = rule["acts"]
    if how == "always":
        result = True
    elif how == "if_true":
        result = is_true(value)
    elif how == "unless_true":
        result = not is_true(value)
    elif how == "unless_false":
        result = value is not None and not is_false(value)
    elif how == "if_set":
        result = value not in (None, "", [], {}) and not is_false(value)
    elif how == "if_bool":
        result = is_true(value) or is_false(value)
    elif how == "unless_in":
        result = not any(_same(value, item) for item in rule.get("values", []))
    else:
        raise ValueError("unknown acts rule %r" % how)
    for extra in rule.get("also", []):
        ok, _value = acts(extra, cfg)
        result = result and ok
    return result, value


# --------------------------------------------------------------------------
# reading the image


def resolve_in_root(root: str, relpath: str) -> str:
    """Host path of relpath inside root; symbolic links never lead out of root."""
    return _paths.resolve_in_root(root, relpath, GuardError)


def read_text(path: str, display: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise GuardError("%s: cannot read: %s" % (display, exc.strerror)) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GuardError("%s: not UTF-8 text (byte %d)" % (display, exc.start)) from exc


def parse_config(text: str, display: str) -> dict:
    """A cloud-config file's mapping; GuardError naming the file and line when malformed."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = " line %d, column %d:" % (mark.line + 1, mark.column + 1) if mark is not None else ""
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            problem = "%s (%s at line %d, column %d)" % (problem, context, context_mark.line + 1,
                                                         context_mark.column + 1)
        raise GuardError("%s:%s malformed YAML: %s" % (display, where, problem)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GuardError("%s: line 1: the top level must be a mapping, got %s" % (display, type(data).__name__))
    return data


class ConfigFile(t.NamedTuple):
    name: str  # file name in cloud.cfg.d, or "cloud.cfg"
    display: str  # path inside the image, /etc/cloud/...
    config: dict


def read_configs(root: str, skip_name: str | None = None) -> tuple[list[ConfigFile], list[str]]:
    """cloud.cfg then every cloud.cfg.d/*.cfg in sorted order (lowest priority first).

    ``skip_name`` (the guard's own drop-in) is left out. Returns the files and warnings.
    """
    warnings = []
    files = []
    text = read_text(resolve_in_root(root, CLOUD_CFG), "/" + CLOUD_CFG)
    if text is not None:
        cfg = parse_config(text, "/" + CLOUD_CFG)
        files.append(ConfigFile("cloud.cfg", "/" + CLOUD_CFG, cfg))
        if "conf_d" in cfg:
            warnings.append("/%s sets conf_d; the guard reads /%s only" % (CLOUD_CFG, CLOUD_CFG_D))
    confd = resolve_in_root(root, CLOUD_CFG_D)
    names = sorted(os.listdir(confd)) if os.path.isdir(confd) else []
    for name in names:
        if not name.endswith(".cfg") or name == skip_name:
            continue
        display = "/%s/%s" % (CLOUD_CFG_D, name)
        host = resolve_in_root(root, "%s/%s" % (CLOUD_CFG_D, name))
        if not os.path.isfile(host):
            continue
        cfg = parse_config(read_text(host, display) or "", display)
        if "merge_how" in cfg or "merge_type" in cfg:
            warnings.append("%s sets merge_how/merge_type; the guard merges it the default way" % display)
        files.append(ConfigFile(name, display, cfg))
    return files, warnings


def detect_distro(root: str, effective: dict) -> str | None:
    distro = lookup(effective, "system_info.distro")
    if isinstance(distro, str) and distro:
        return distro.lower()
    for rel in ("etc/os-release", "usr/lib/os-release"):
        text = read_text(resolve_in_root(root, rel), "/" + rel)
        if text is None:
            continue
        for line in text.splitlines():
            if line.startswith("ID="):
                ident = line[3:].strip().strip("\"'").lower()
                return "amazon" if ident == "amzn" else ident
    return None


# --------------------------------------------------------------------------
# validation of the options


def check_filename(filename: t.Any) -> str | None:
    if not isinstance(filename, str) or not filename:
        return "filename: must be a plain file name ending in .cfg, got %r" % (filename,)
    if "/" in filename or "\\" in filename or ".." in filename or "\0" in filename:
        return "filename: must be a plain file name without a path or '..', got '%s'" % filename
    if not filename.endswith(".cfg"):
        return "filename: must end in .cfg (cloud-init reads only *.cfg), got '%s'" % filename
    if not _FILENAME_RE.match(filename):
        return ("filename: must be letters, digits, '_', '-', '+' or '.' ending in .cfg and not "
                "starting with '.', got '%s'" % filename)
    return None


def check_extra_key(key: str, value: t.Any, where: str) -> str | None:
    rule = EXTRA_KEYS.get(key)
    if rule is None:
        return None
    kind = rule["type"]
    ok = {"str": isinstance(value, str), "list": isinstance(value, list),
          "bool": isinstance(value, bool)}[kind]
    if not ok:
        return "%s.%s: must be a %s, got %r" % (where, key, kind, value)
    if "choices" in rule and value not in rule["choices"]:
        return "%s.%s: must be one of %s, got %r" % (where, key, ", ".join(rule["choices"]), value)
    return None


def _plain_yaml(value: t.Any, path: str) -> str | None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return "%s: keys must be strings, got %r" % (path, key)
            problem = _plain_yaml(item, "%s.%s" % (path, key))
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = _plain_yaml(item, "%s[%d]" % (path, index))
            if problem:
                return problem
        return None
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    return "%s: %s values cannot be written to a cloud-config file" % (path, type(value).__name__)


def check_options(protect: t.Any, settings: t.Any, disable_modules: t.Any, filename: t.Any,
                  customized_paths: t.Any) -> list[str]:
    """Every problem with the options, each naming the option and the rule."""
    errors = []
    problem = check_filename(filename)
    if problem:
        errors.append(problem)
    if not isinstance(protect, list):
        errors.append("protect: must be a list of protection names")
    else:
        unknown = [str(p) for p in protect if p not in PROTECTIONS]
        if unknown:
            errors.append("protect: unknown protection %s; known: %s"
                          % (", ".join("'%s'" % u for u in unknown), ", ".join(sorted(PROTECTIONS))))
    if not isinstance(settings, dict):
        errors.append("settings: must be a dictionary of cloud-init keys")
    else:
        problem = _plain_yaml(settings, "settings")
        if problem:
            errors.append(problem)
        for key, value in settings.items():
            problem = check_extra_key(str(key), value, "settings")
            if problem:
                errors.append(problem)
    if not isinstance(disable_modules, list):
        errors.append("disable_modules: must be a list of cloud-init module names")
    else:
        for name in disable_modules:
            if not isinstance(name, str) or not _MODULE_RE.match(name):
                errors.append("disable_modules: '%s' is not a cloud-init module name "
                              "(letters, digits, '_' and '-')" % (name,))
        if isinstance(settings, dict) and disable_modules:
            clash = sorted(k for k in settings if k in MODULE_LISTS)
            if clash:
                errors.append("settings: %s cannot be set together with disable_modules, which "
                              "writes those lists itself" % ", ".join(clash))
    if not isinstance(customized_paths, list):
        errors.append("customized_paths: must be a list of absolute paths in the image")
    else:
        for path in customized_paths:
            if not isinstance(path, str) or not path.startswith("/"):
                errors.append("customized_paths: '%s' is not an absolute path in the image" % (path,))
    if not errors and isinstance(protect, list) and isinstance(settings, dict):
        for name in protect:
            for key in leaf_keys(PROTECTIONS[name]["settings"]):
                found, value = sets_key(settings, key)
                wanted = lookup(PROTECTIONS[name]["settings"], key)
                if found and value != wanted:
                    errors.append("settings: %s=%r contradicts protection '%s', which sets %r"
                                  % (key, value, name, wanted))
    return errors


# --------------------------------------------------------------------------
# planning


class Plan(t.NamedTuple):
    path: str  # host path of the drop-in
    display: str  # its path inside the image
    before: str | None
    after: str | None
    content: dict
    effective: dict
    conflicts: list
    first_boot_changes: list
    unprotected: list
    warnings: list
    distro: str | None

    @property
    def changed(self) -> bool:
        return self.after is not None and self.after != self.before


def protection_settings(protect: list, distro: str | None) -> dict:
    content: dict = {}
    for name in protect:
        content = merge(content, PROTECTIONS[name]["settings"])
        extra = DISTRO_SETTINGS.get(name, {}).get(distro or "")
        if extra:
            content = merge(content, extra)
    return content


def disabled_lists(effective: dict, disabled: list[str]) -> tuple[dict, list[str]]:
    """The module lists that contain a disabled module, in full without it; warnings."""
    wanted = {canonical_module(name) for name in disabled}
    lists = {}
    seen = set()
    for key in MODULE_LISTS:
        entries = effective.get(key)
        if not isinstance(entries, list):
            continue
        kept = [entry for entry in entries if module_entry_name(entry) not in wanted]
        seen.update(module_entry_name(entry) for entry in entries)
        if len(kept) != len(entries):
            lists[key] = kept
    warnings = ["disable_modules: '%s' is in none of the image's module lists" % name
                for name in sorted(wanted - seen)]
    return lists, warnings


def unknown_modules(effective: dict, names: list) -> str | None:
    """An error naming the modules asked for by name that no module list of the image has.

    Removing a module the image never runs does nothing, so such a name is a typo or a module of
    another cloud-init; refusing it beats writing a drop-in that protects nothing.
    """
    present = set()
    for key in MODULE_LISTS:
        entries = effective.get(key)
        if isinstance(entries, list):
            present.update(module_entry_name(entry) for entry in entries)
    if not present:
        return None  # no lists in the image's files: cloud-init's built-in ones apply, unknown here
    missing = sorted({canonical_module(name) for name in names} - present)
    if not missing:
        return None
    return "disable_modules: %s in none of the image's module lists (%s); the image runs: %s" % (
        ", ".join("'%s' is" % name for name in missing), ", ".join(MODULE_LISTS), ", ".join(sorted(present)))


def render(content: dict, protect: list, disabled: list) -> str:
    lines = [HEADER.rstrip("\n"),
             "# Written by bakery.ami.cloudinit_guard to keep the baked image's customizations",
             "# at first boot. Rerun the guard rather than editing this file. User-data given",
             "# at launch still overrides these settings."]
    if protect:
        lines.append("# Protections: %s" % ", ".join(sorted(set(protect))))
    if disabled:
        lines.append("# Modules removed: %s" % ", ".join(sorted({canonical_module(d) for d in disabled})))
    body = yaml.safe_dump(content, default_flow_style=False, sort_keys=True, width=1000)
    return "\n".join(lines) + "\n" + body


def enabled_modules(effective: dict) -> dict | None:
    """canonical module name -> frequency override (or None); None when no list is set."""
    if not any(isinstance(effective.get(key), list) for key in MODULE_LISTS):
        return None
    result: dict = {}
    for key in MODULE_LISTS:
        for entry in effective.get(key) or []:
            name = module_entry_name(entry)
            if name:
                result[name] = module_entry_frequency(entry)
    return result


def _expand(rule: dict, value: t.Any) -> list[str]:
    files = rule["files"]
    how = rule.get("expand")
    if not how:
        return list(files)
    items: list = []
    if how == "keys" and isinstance(value, dict):
        items = [str(k) for k in sorted(value)]
    elif how.startswith("field:") and isinstance(value, list):
        field = how.split(":", 1)[1]
        items = [str(item[field]) for item in value if isinstance(item, dict) and item.get(field)]
    return [pattern.replace("{item}", item) for pattern in files for item in items]


def first_boot_changes(effective: dict, distro: str | None) -> tuple[list, list]:
    """Each (module, file, key) cloud-init will still change at first boot; warnings."""
    warnings = []
    enabled = enabled_modules(effective)
    if enabled is None:
        warnings.append("the image's configuration sets no module lists; the audit assumes every module runs")
    changes = []
    for rule in FIRST_BOOT_EFFECTS:
        module = rule["module"]
        if rule.get("distros") and distro and distro not in rule["distros"]:
            continue
        if module != "network_config" and enabled is not None and module not in enabled:
            continue
        active, value = acts(rule, effective)
        if not active:
            continue
        frequency = (enabled or {}).get(module) or rule["frequency"]
        for path in _expand(rule, value):
            changes.append({"module": module, "file": path, "key": rule["key"],
                            "value": value, "frequency": frequency,
                            "overrides": list(rule.get("overrides", []))})
    return changes, warnings


def unprotected_paths(changes: list, customized: list) -> list:
    result = []
    for path in customized:
        norm = os.path.normpath(path)
        for change in changes:
            patterns = [change["file"]] + change["overrides"]
            if any(fnmatch.fnmatchcase(norm, pattern) for pattern in patterns):
                result.append({"path": path, "module": change["module"], "key": change["key"],
                               "file": change["file"], "frequency": change["frequency"]})
                break
    return result


def conflicts_of(later: list[ConfigFile], content: dict) -> list:
    found = []
    for item in later:
        for key in leaf_keys(content):
            sets, value = sets_key(item.config, key)
            wanted = lookup(content, key)
            if sets and value != wanted:
                found.append({"file": item.display, "key": key, "value": value, "guard_value": wanted})
    return found


def plan_guard(root: str, protect: list | None = None, settings: dict | None = None,
               disable_modules: list | None = None, filename: str = DEFAULT_FILENAME,
               audit: bool = True, customized_paths: list | None = None) -> Plan:
    """Everything the guard will do under ``root``, without writing. GuardError on bad input."""
    protect = [] if protect is None else protect
    settings = {} if settings is None else settings
    disable_modules = [] if disable_modules is None else disable_modules
    customized_paths = [] if customized_paths is None else customized_paths
    if yaml is None:
        raise GuardError("PyYAML is required by cloudinit_guard")
    errors = check_options(protect, settings, disable_modules, filename, customized_paths)
    if not isinstance(root, str) or not os.path.isdir(root):
        errors.insert(0, "root: %s is not a directory" % (root,))
    elif not os.path.isdir(resolve_in_root(root, "etc/cloud")):
        errors.insert(0, "root: %s has no /etc/cloud; is cloud-init installed in the image?" % root)
    if errors:
        raise GuardError("; ".join(errors))

    display = "/%s/%s" % (CLOUD_CFG_D, filename)
    host = resolve_in_root(root, "%s/%s" % (CLOUD_CFG_D, filename))
    if os.path.lexists(host) and not os.path.isfile(host):
        raise GuardError("filename: %s exists and is not a regular file" % display)
    before = read_text(host, display)

    others, warnings = read_configs(root, skip_name=filename)
    base = merge_all(item.config for item in others)
    distro = detect_distro(root, base)

    unknown = unknown_modules(base, disable_modules)
    if unknown:
        raise GuardError(unknown)
    disabled = list(disable_modules)
    for name in protect:
        disabled.extend(PROTECTIONS[name]["disable_modules"])
    content = protection_settings(protect, distro)
    content = merge(content, settings)
    lists, list_warnings = disabled_lists(base, disabled)
    warnings.extend(list_warnings)
    content = merge(content, lists)

    managing = bool(protect or settings or disable_modules)
    if managing:
        after: str | None = render(content, protect, disabled)
        own = content
    else:
        after = None
        own = parse_config(before, display) if before is not None else {}

    earlier = [item for item in others if item.name == "cloud.cfg" or item.name < filename]
    later = [item for item in others if item.name != "cloud.cfg" and item.name > filename]
    effective_after = merge_all([item.config for item in earlier] + [own] + [item.config for item in later])
    conflicts = conflicts_of(later, own)
    for conflict in conflicts:
        warnings.append("%s sets %s back to %r after the guard's %s" % (
            conflict["file"], conflict["key"], conflict["value"], display))
    effective = {}
    for key in leaf_keys(own):
        value = lookup(effective_after, key)
        effective[key] = None if value is _MISSING else value

    changes: list = []
    unprotected: list = []
    if audit:
        changes, audit_warnings = first_boot_changes(effective_after, distro)
        warnings.extend(audit_warnings)
        unprotected = unprotected_paths(changes, customized_paths)
    return Plan(path=host, display=display, before=before, after=after, content=content,
                effective=effective, conflicts=conflicts, first_boot_changes=changes,
                unprotected=unprotected, warnings=warnings, distro=distro)


# --------------------------------------------------------------------------
# schema validation and writing


def find_cloud_init(root: str) -> str | None:
    """Path of cloud-init inside the image ('/usr/bin/cloud-init'), or None."""
    for rel in _CLOUD_INIT_BINARIES:
        if os.path.isfile(resolve_in_root(root, rel)):
            return "/" + rel
    return None


def _schema_problem(output: str) -> str | None:
    lines = [line.strip() for line in output.splitlines()
             if line.strip() and not line.startswith("Cloud config schema deprecations")]
    for line in lines:
        lowered = line.lower()
        if "schema errors" in lowered or "invalid" in lowered or "not valid yaml" in lowered \
                or "not a yaml dict" in lowered or "needs to begin with" in lowered:
            return " ".join(lines)
    return None


def validate_schema(root: str, text: str, run: t.Callable[..., tuple[int, str, str]]) -> tuple[bool, str | None]:
    """Run ``cloud-init schema --config-file`` on ``text`` inside ``root``.

    Returns (validated, warning). Raises GuardError when cloud-init rejects the text.
    ``run(argv, environ_update=...)`` is AnsibleModule.run_command. The text goes to a
    temporary file in the image's /tmp (root's tmp dir for root /) that is removed at once.
    """
    binary = find_cloud_init(root)
    if binary is None:
        return False, "cloud-init is not installed under %s: schema validation skipped" % root
    is_host = os.path.realpath(root) == "/"
    if is_host:
        tmp_dir = tempfile.gettempdir()
        prefix: list[str] = []
    else:
        chroot = shutil.which("chroot") or next(
            (p for p in ("/usr/sbin/chroot", "/sbin/chroot", "/usr/bin/chroot") if os.path.exists(p)), None)
        if chroot is None:
            return False, "chroot is not available: schema validation of %s skipped" % root
        tmp_dir = resolve_in_root(root, "tmp")
        if not os.path.isdir(tmp_dir):
            return False, "%s/tmp does not exist: schema validation skipped" % root
        prefix = [chroot, root]
    fd, tmp = tempfile.mkstemp(prefix=".bakery-guard-", suffix=".cfg", dir=tmp_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        inside = tmp if is_host else "/tmp/" + os.path.basename(tmp)
        argv = prefix + [binary, "schema", "--config-file", inside]
        rc, out, err = run(argv, environ_update={"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                                                 "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
    finally:
        os.unlink(tmp)
    output = "%s\n%s" % (out, err)
    if rc == 0:
        return True, None
    problem = _schema_problem(output)
    if problem:
        raise GuardError("settings: the drop-in fails cloud-init's schema: %s" % problem)
    return False, "could not run cloud-init schema (rc %d): %s" % (rc, output.strip()[-500:])


def write_dropin(plan: Plan, move: t.Callable[[str, str], t.Any] | None = None) -> None:
    """Write the drop-in atomically (temporary file beside it, then move).

    The temporary name starts with '.' and does not end in .cfg, so cloud-init never reads
    a partial file. Mode and owner of an existing file are kept; a new one gets 0644.
    """
    _paths.write_atomically(plan.path, plan.after or "", move)
