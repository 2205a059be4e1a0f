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
#
# Every file of the image is read and written through the root-confined layer (_image_root):
# a link in the image never leads outside it. The image's cloud-init version is read from its
# files (cloudinit/version.py, dpkg status, the Python package metadata), never by running it;
# its own `cloud-init schema` validates the user-data part of the drop-in inside the sandbox
# (_sandbox), reading the text from its standard input, so nothing is written into the image.
# System settings (network, datasource_list, system_info, ...) are checked by the guard's own
# rules: cloud-init's schema describes user-data, and from 24.x it rejects keys it does not know.

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fnmatch
import json
import re
import stat
import traceback
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _cloud_config, _image_root, _sandbox
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

try:
    import yaml
except ImportError:
    yaml = None  # type: ignore[assignment]  # build_request refuses to run without it
    YAML_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    YAML_IMPORT_ERROR = None

from ansible_collections.bakery.ami.plugins.module_utils._cloudinit_protections import (
    DISTRO_SETTINGS,
    EXTRA_KEYS,
    FIRST_BOOT_EFFECTS,
    GENKEYTYPES,
    GENKEYTYPES_DSA_DROPPED,
    GENKEYTYPES_WITH_DSA,
    OPENSSH_WITHOUT_DSA,
    PRIVILEGED_KEYS,
    PRIVILEGED_SUBKEYS,
    PROTECTIONS,
    SSH_PWAUTH_STRING_DEPRECATED,
    SYSTEM_KEYS,
)

CLOUD_CFG = _cloud_config.CLOUD_CFG
CLOUD_CFG_D = _cloud_config.CLOUD_CFG_D
MODULE_LISTS = ("cloud_init_modules", "cloud_config_modules", "cloud_final_modules")
DEFAULT_FILENAME = "99_bakery_guard.cfg"
HEADER = "#cloud-config\n"
_FILENAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\.cfg")
_MODULE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_CLOUD_INIT_BINARIES = ("/usr/bin/cloud-init", "/bin/cloud-init", "/usr/local/bin/cloud-init")
_TRUE_STRINGS = ("true", "1", "on", "yes")
_FALSE_STRINGS = ("false", "0", "off", "no")

# Bounds on what is read from the image and written from the options.
MAX_CONFIG_BYTES = _cloud_config.MAX_FILE_BYTES  # one cloud-init configuration file
MAX_FACT_BYTES = 64 << 20  # dpkg status and other files read for facts
MAX_DEPTH = _cloud_config.MAX_DEPTH  # nesting of a configuration or of the settings
MAX_SETTINGS_BYTES = 64 * 1024  # the settings as written in the drop-in
MAX_NAME = 255  # the drop-in's file name
MAX_HOSTNAME = 253
MAX_DATASOURCES = 32
MAX_SCHEMA_OUTPUT = 2000  # characters of cloud-init's own messages kept in ours

_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                          r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
_DATASOURCE_RE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,39}")
_DISTRO_RE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_SERVICE_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_OWNER_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}:[A-Za-z0-9_.-]{1,32}")
_VERSION_RE = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})(?:\.([0-9]{1,4}))?(?![0-9])")
_FREQUENCIES = ("always", "once", "once-per-instance", "instance", "per-instance", "per-once", "per-always")
_RENDERERS = ("eni", "netplan", "network-manager", "networkd", "sysconfig", "freebsd", "netbsd", "openbsd")
_ACTIVATORS = ("eni", "netplan", "network-manager", "networkd")
_DEBIAN_FAMILY = ("debian", "ubuntu")
DEFAULT_LOCALE = "en_US.UTF-8"


class GuardError(BakeryError):
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


def _short(value: t.Any, limit: int = 60) -> str:
    """repr() of a user value, cut to ``limit`` characters for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _printable(text: str) -> str:
    """The image's own text for a message: control characters dropped, cut to a bound."""
    cleaned = "".join(ch if ch in "\n\t" or (ord(ch) >= 32 and ord(ch) != 127) else "?" for ch in text)
    return cleaned[:MAX_SCHEMA_OUTPUT]


def open_root(root: t.Any) -> _image_root.ImageRoot:
    try:
        return _image_root.ImageRoot(root)
    except _image_root.RootError as exc:
        raise GuardError(exc.msg) from exc


def _fact_text(image: _image_root.ImageRoot, path: str, limit: int = MAX_FACT_BYTES) -> str | None:
    """Text of a file read for a fact (lenient: undecodable bytes replaced)."""
    data = image.read_bytes(path, limit=limit, follow_last=True)
    return None if data is None else data.decode("utf-8", errors="replace")


def read_configs(image: _image_root.ImageRoot,
                 skip_name: str | None = None) -> tuple[list[_cloud_config.ConfigFile], list[str]]:
    """The image's cloud-config files as _cloud_config.load parses them (``skip_name``, the guard's
    own drop-in, left out), and warnings for what the guard does not follow in them."""
    with _as_guard_error():
        files = _cloud_config.load(image, skip_name)
    warnings = []
    for item in files:
        if item.display == CLOUD_CFG:
            if "conf_d" in item.config:
                warnings.append("%s sets conf_d; the guard reads %s only" % (CLOUD_CFG, CLOUD_CFG_D))
        elif "merge_how" in item.config or "merge_type" in item.config:
            warnings.append("%s sets merge_how/merge_type; the guard merges it the default way" % item.display)
    return files, warnings


@contextlib.contextmanager
def _as_guard_error() -> t.Iterator[None]:
    """A configuration file the reader refuses fails the guard with the reader's message."""
    try:
        yield
    except _cloud_config.ConfigError as exc:
        raise GuardError(exc.msg) from exc


def _os_release_id(image: _image_root.ImageRoot) -> str | None:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = _fact_text(image, path, MAX_CONFIG_BYTES)
        if text is None:
            continue
        for line in text.splitlines():
            if line.startswith("ID="):
                ident = line[3:].strip().strip("\"'").lower()
                return "amazon" if ident == "amzn" else ident
    return None


def detect_distro(image: _image_root.ImageRoot, effective: dict) -> str | None:
    distro = lookup(effective, "system_info.distro")
    if isinstance(distro, str) and distro:
        return distro.lower()
    return _os_release_id(image)


def parse_version(text: t.Any) -> tuple | None:
    """(major, minor, patch) of the version at the start of ``text`` ('22.4.2-1+deb12u1',
    '1:10.0p1-7' after its epoch), or None. ASCII digits only."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if re.match(r"[0-9]{1,4}:", text):
        text = text.split(":", 1)[1]
    match = _VERSION_RE.match(text)
    if not match:
        return None
    return tuple(int(part) for part in match.groups(default="0"))


def version_text(version: tuple | None) -> str:
    return ".".join(str(part) for part in version) if version else "unknown"


class CloudInit(t.NamedTuple):
    """The image's cloud-init, as read from its files."""

    version: tuple | None  # (22, 4, 2)
    source: str | None  # the file the version was read from
    binary: str | None  # /usr/bin/cloud-init
    package: str | None  # /usr/lib/python3/dist-packages/cloudinit

    @property
    def version_text(self) -> str | None:
        return version_text(self.version) if self.version else None


class Sshd(t.NamedTuple):
    """The image's effective sshd PasswordAuthentication (first value wins, as sshd reads it)."""

    password_auth: bool | None  # None: not set anywhere (sshd's default, yes)
    source: str | None  # the file that sets it
    includes_dconf: bool  # sshd_config includes sshd_config.d/*.conf (cloud-init writes 50-cloud-init.conf)

    @property
    def effective(self) -> bool:
        return True if self.password_auth is None else self.password_auth


_SSHD_CONFIG = "/etc/ssh/sshd_config"
_SSHD_DROPIN = "/etc/ssh/sshd_config.d/50-cloud-init.conf"
_MAX_INCLUDE_DEPTH = 16


class ImageFacts:
    """What the guard reads from an image besides its cloud-init configuration (each fact read
    once, through the root-confined layer)."""

    def __init__(self, image: _image_root.ImageRoot):
        self.image = image
        self._cache: dict = {}

    def _cached(self, key: str, compute: t.Callable[[], t.Any]) -> t.Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    # -- packages ---------------------------------------------------------------------------

    def dpkg_versions(self) -> dict:
        """Version of each installed package of dpkg's status file ({} without dpkg)."""
        return self._cached("dpkg", self._read_dpkg)

    def _read_dpkg(self) -> dict:
        text = _fact_text(self.image, "/var/lib/dpkg/status")
        result: dict = {}
        if not text:
            return result
        for stanza in re.split(r"\n[ \t]*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line[:1] in (" ", "\t") or ":" not in line:
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if fields.get("package") and fields.get("status", "").endswith(" installed"):
                result[fields["package"]] = fields.get("version", "")
        return result

    def python_package_dirs(self) -> list:
        """Directories of the image's system Python packages, where cloudinit may live."""
        dirs = ["/usr/lib/python3/dist-packages"]
        for base in ("/usr/lib", "/usr/lib64", "/usr/local/lib"):
            for entry in self.image.entries(base):
                name = entry.path.rsplit("/", 1)[1]
                if re.fullmatch(r"python3(?:\.[0-9]{1,3})?", name):
                    dirs.extend(entry.path + sub for sub in ("/site-packages", "/dist-packages"))
        return dirs

    @property
    def cloud_init(self) -> CloudInit:
        return self._cached("cloud_init", self._detect_cloud_init)

    def _detect_cloud_init(self) -> CloudInit:
        binary = next((path for path in _CLOUD_INIT_BINARIES if self.image.is_file(path)), None)
        package = None
        version = None
        source = None
        for directory in self.python_package_dirs():
            candidate = directory + "/cloudinit"
            text = _fact_text(self.image, candidate + "/version.py", MAX_CONFIG_BYTES)
            if text is None:
                continue
            package = package or candidate
            packaged = re.search(r"""^_PACKAGED_VERSION\s*=\s*["']([^"'\n]*)["']""", text, re.M)
            upstream = re.search(r"""^__VERSION__\s*=\s*["']([^"'\n]*)["']""", text, re.M)
            for match in (packaged, upstream):
                if match and not match.group(1).startswith("@@") and parse_version(match.group(1)):
                    version, source = parse_version(match.group(1)), candidate + "/version.py"
                    break
            if version:
                package = candidate
                break
        if version is None:
            dpkg = self.dpkg_versions().get("cloud-init")
            if parse_version(dpkg):
                version, source = parse_version(dpkg), "/var/lib/dpkg/status"
        if version is None:
            for directory in self.python_package_dirs():
                for entry in self.image.entries(directory):
                    name = entry.path.rsplit("/", 1)[1]
                    match = re.fullmatch(r"cloud_init-([0-9][0-9A-Za-z.+]*)(?:-py[0-9.]+)?\.(?:egg|dist)-info", name)
                    if match and parse_version(match.group(1)):
                        version, source = parse_version(match.group(1)), entry.path
                        break
                if version:
                    break
        return CloudInit(version, source, binary, package)

    def schema_keys(self) -> set | None:
        """Top-level keys of the image's cloud-config schema, or None when it cannot be read."""
        return self._cached("schema_keys", self._read_schema_keys)

    def _read_schema_keys(self) -> set | None:
        package = self.cloud_init.package
        if package is None:
            return None
        text = _fact_text(self.image, package + "/config/schemas/schema-cloud-config-v1.json", 8 << 20)
        try:
            schema = json.loads(text) if text else None
        except ValueError:
            return None
        if not isinstance(schema, dict) or not isinstance(schema.get("$defs"), dict):
            return None
        keys = set(schema.get("properties") or {})
        for item in schema.get("allOf") or []:
            ref = item.get("$ref", "") if isinstance(item, dict) else ""
            definition = schema["$defs"].get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/$defs/") else None
            if isinstance(definition, dict) and isinstance(definition.get("properties"), dict):
                keys.update(definition["properties"])
        return keys or None

    def datasources(self) -> set | None:
        """Names of the datasources the image's cloud-init has (None when unknown)."""
        return self._cached("datasources", self._read_datasources)

    def _read_datasources(self) -> set | None:
        package = self.cloud_init.package
        if package is None:
            return None
        names = set()
        for entry in self.image.entries(package + "/sources"):
            match = re.fullmatch(r"DataSource([A-Za-z0-9]+)\.py", entry.path.rsplit("/", 1)[1])
            if match:
                names.add(match.group(1))
        return names or None

    @property
    def openssh_version(self) -> tuple | None:
        dpkg = self.dpkg_versions()
        for package in ("openssh-server", "openssh-client"):
            version = parse_version(dpkg.get(package))
            if version:
                return version
        return None

    # -- accounts, hostname, locale ---------------------------------------------------------

    @property
    def passwd(self) -> dict:
        """User name -> home directory, from the image's /etc/passwd."""
        return self._cached("passwd", self._read_passwd)

    def _read_passwd(self) -> dict:
        users = {}
        for line in (_fact_text(self.image, "/etc/passwd", MAX_CONFIG_BYTES) or "").splitlines():
            fields = line.split(":")
            if len(fields) >= 7 and fields[0] and not fields[0].startswith(("#", "+", "-")):
                users[fields[0]] = fields[5]
        return users

    @property
    def hostname(self) -> str | None:
        text = _fact_text(self.image, "/etc/hostname", 4096)
        line = (text or "").strip().splitlines()[0:1]
        return _printable(line[0])[:MAX_HOSTNAME] if line else None

    @property
    def locale(self) -> str | None:
        """LANG of the image's system locale (/etc/default/locale, else /etc/locale.conf)."""
        for path in ("/etc/default/locale", "/etc/locale.conf"):
            for line in (_fact_text(self.image, path, MAX_CONFIG_BYTES) or "").splitlines():
                line = line.strip()
                if line.startswith("LANG="):
                    value = line[5:].strip().strip("\"'")
                    if value:
                        return value
        return None

    # -- sshd -------------------------------------------------------------------------------

    @property
    def sshd(self) -> Sshd:
        return self._cached("sshd", self._read_sshd)

    def _read_sshd(self) -> Sshd:
        main = _fact_text(self.image, _SSHD_CONFIG, MAX_CONFIG_BYTES)
        includes = main is not None and any(
            line.startswith("Include %s.d/*.conf" % _SSHD_CONFIG) for line in main.splitlines())
        found = self._sshd_value(_SSHD_CONFIG, main, 0)
        return Sshd(found[0] if found else None, found[1] if found else None, includes)

    def _sshd_value(self, path: str, text: str | None, depth: int) -> tuple | None:
        """(value, file) of the first PasswordAuthentication outside a Match block, Include
        files read in place (sorted, as sshd's glob), or None."""
        if text is None or depth > _MAX_INCLUDE_DEPTH:
            return None
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            words = re.split(r"[ \t]+|[ \t]*=[ \t]*", line, maxsplit=1)
            keyword = words[0].lower()
            argument = words[1].strip() if len(words) > 1 else ""
            if keyword == "match":
                return None
            if keyword == "passwordauthentication":
                value = argument.split()[0].lower() if argument else ""
                if value in ("yes", "no"):
                    return value == "yes", path
                continue
            if keyword == "include":
                for pattern in argument.split():
                    for included in self._glob(pattern if pattern.startswith("/") else "/etc/ssh/" + pattern):
                        found = self._sshd_value(included, _fact_text(self.image, included, MAX_CONFIG_BYTES),
                                                 depth + 1)
                        if found:
                            return found
        return None

    def _glob(self, pattern: str) -> list:
        directory, _sep, base = pattern.rpartition("/")
        if any(ch in directory for ch in "*?["):
            return []
        if not any(ch in base for ch in "*?["):
            return [pattern]
        names = [entry.path for entry in self.image.entries(directory or "/")
                 if fnmatch.fnmatchcase(entry.path.rsplit("/", 1)[1], base)
                 and not (entry.path.rsplit("/", 1)[1].startswith(".") and not base.startswith("."))]
        return sorted(names)

    def sshd_dropin_value(self) -> bool | None:
        """PasswordAuthentication in cloud-init's own sshd drop-in, None when absent or unset."""
        text = _fact_text(self.image, _SSHD_DROPIN, MAX_CONFIG_BYTES)
        for raw in (text or "").splitlines():
            words = raw.strip().split()
            if len(words) >= 2 and words[0].lower() == "passwordauthentication" and words[1] in ("yes", "no"):
                return words[1] == "yes"
        return None

    def sshd_config_lines(self) -> list:
        """Values of every PasswordAuthentication line of sshd_config itself (cloud-init rewrites
        them all when sshd_config includes no drop-in directory)."""
        text = _fact_text(self.image, _SSHD_CONFIG, MAX_CONFIG_BYTES) or ""
        values = []
        for raw in text.splitlines():
            words = raw.strip().split()
            if len(words) >= 2 and words[0].lower() == "passwordauthentication":
                values.append(words[1])
        return values


# --------------------------------------------------------------------------
# validation of the options


def check_filename(filename: t.Any) -> str | None:
    if not isinstance(filename, str) or not filename:
        return "filename: must be a plain file name ending in .cfg, got %s" % _short(filename)
    if "/" in filename or "\\" in filename or ".." in filename or "\0" in filename:
        return "filename: must be a plain file name without a path or '..', got %s" % _short(filename)
    if not filename.endswith(".cfg"):
        return "filename: must end in .cfg (cloud-init reads only *.cfg), got %s" % _short(filename)
    if len(filename) > MAX_NAME or not _FILENAME_RE.fullmatch(filename):
        return ("filename: must be at most %d letters, digits, '_', '-', '+' or '.' ending in .cfg and "
                "not starting with '.', got %s" % (MAX_NAME, _short(filename)))
    return None


def check_extra_key(key: str, value: t.Any, where: str) -> str | None:
    rule = EXTRA_KEYS.get(key)
    if rule is None:
        return None
    kind = rule["type"]
    ok = {"str": isinstance(value, str), "list": isinstance(value, list),
          "bool": isinstance(value, bool)}[kind]
    if not ok:
        return "%s.%s: must be a %s, got %s" % (where, key, kind, _short(value))
    if "choices" in rule and value not in rule["choices"]:
        return "%s.%s: must be one of %s, got %s" % (where, key, ", ".join(rule["choices"]), _short(value))
    if kind == "list" and not all(isinstance(item, str) and item for item in value):
        return "%s.%s: must be a list of non-empty strings, got %s" % (where, key, _short(value))
    return None


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 and ch not in "\n\t" or ord(ch) == 127 for ch in text)


def _plain_yaml(value: t.Any, path: str, depth: int = 1) -> str | None:
    """The first problem of a value that must be plain YAML: string keys, scalars, lists and
    dicts only, no control characters in keys or strings, at most MAX_DEPTH levels."""
    if depth > MAX_DEPTH:
        return "%s: nested more than %d levels deep" % (path, MAX_DEPTH)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return "%s: keys must be strings, got %s" % (path, _short(key))
            if not key or _has_control(key) or "\n" in key or "\t" in key:
                return "%s: keys must be non-empty and hold no control characters, got %s" % (path, _short(key))
            problem = _plain_yaml(item, "%s.%s" % (path, key), depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = _plain_yaml(item, "%s[%d]" % (path, index), depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, str):
        if _has_control(value):
            return "%s: must not contain control characters (other than newline and tab), got %s" % (
                path, _short(value))
        return None
    if value is None or isinstance(value, (bool, int, float)):
        return None
    return "%s: %s values cannot be written to a cloud-config file" % (path, type(value).__name__)


def check_hostname(key: str, value: t.Any) -> str | None:
    if not isinstance(value, str):
        return "settings.%s: must be a string, got %s" % (key, _short(value))
    if len(value) > MAX_HOSTNAME:
        return "settings.%s: must be at most %d characters, got %d" % (key, MAX_HOSTNAME, len(value))
    if not _HOSTNAME_RE.fullmatch(value):
        return ("settings.%s: must be a host name: labels of 1 to 63 letters, digits and '-' (not first or "
                "last) separated by '.', got %s" % (key, _short(value)))
    return None


def _module_list_problem(key: str, entries: t.Any) -> str | None:
    if not isinstance(entries, list):
        return "settings.%s: must be a list of cloud-init module names, got %s" % (key, _short(entries))
    for entry in entries:
        name, frequency = entry, None
        if isinstance(entry, list) and 1 <= len(entry) <= 3:
            name = entry[0]
            frequency = entry[1] if len(entry) > 1 else None
        if not isinstance(name, str) or len(name) > 64 or not _MODULE_RE.fullmatch(name):
            return "settings.%s: %s is not a module name or [name, frequency]" % (key, _short(entry))
        if frequency is not None and frequency not in _FREQUENCIES:
            return "settings.%s: frequency %s of %s is not one of %s" % (
                key, _short(frequency), name, ", ".join(_FREQUENCIES))
    return None


def check_system_key(key: str, value: t.Any) -> str | None:
    """The first problem of a system setting, by its own rule."""
    where = "settings." + key
    if key in EXTRA_KEYS:
        return check_extra_key(key, value, "settings")
    if key == "network":
        if value != {"config": "disabled"}:
            return ("%s: the guard writes only {config: disabled} (cloud-init then renders no network "
                    "configuration; the baked one stays), got %s" % (where, _short(value)))
        return None
    if key == "datasource_list":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_DATASOURCES:
            return "%s: must be a list of 1 to %d datasource names, got %s" % (where, MAX_DATASOURCES, _short(value))
        for name in value:
            if not isinstance(name, str) or not _DATASOURCE_RE.fullmatch(name):
                return "%s: %s is not a datasource name (letters and digits, e.g. Ec2, None)" % (where, _short(name))
        return None
    if key == "datasource":
        if not isinstance(value, dict):
            return "%s: must be a mapping of datasource names to their settings, got %s" % (where, _short(value))
        for name, config in value.items():
            if not _DATASOURCE_RE.fullmatch(name):
                return "%s: %s is not a datasource name (letters and digits, e.g. Ec2)" % (where, _short(name))
            if not isinstance(config, dict):
                return "%s.%s: must be a mapping, got %s" % (where, name, _short(config))
            for field in ("timeout", "max_wait", "retries"):
                if field in config and (isinstance(config[field], bool) or not isinstance(config[field], int)
                                        or not 0 <= config[field] <= 3600):
                    return "%s.%s.%s: must be a number of seconds from 0 to 3600, got %s" % (
                        where, name, field, _short(config[field]))
        return None
    if key in ("manual_cache_clean", "allow_userdata"):
        if not isinstance(value, bool):
            return "%s: must be a bool, got %s" % (where, _short(value))
        return None
    if key == "system_info":
        if not isinstance(value, dict):
            return "%s: must be a mapping, got %s" % (where, _short(value))
        known = ("distro", "network", "ssh_svcname", "default_user", "paths", "package_mirrors")
        for field in value:
            if field not in known:
                return "%s: %s is not a system_info key the guard writes (%s)" % (where, _short(field), ", ".join(known))
        if "distro" in value and not (isinstance(value["distro"], str) and _DISTRO_RE.fullmatch(value["distro"])):
            return "%s.distro: must be a distribution name such as debian or amazon, got %s" % (
                where, _short(value["distro"]))
        if "ssh_svcname" in value and not (isinstance(value["ssh_svcname"], str)
                                           and _SERVICE_RE.fullmatch(value["ssh_svcname"])):
            return "%s.ssh_svcname: must be a service name, got %s" % (where, _short(value["ssh_svcname"]))
        if "network" in value:
            network = value["network"]
            if not isinstance(network, dict) or set(network) - {"renderers", "activators"}:
                return "%s.network: must be a mapping of renderers and activators, got %s" % (where, _short(network))
            for field, allowed in (("renderers", _RENDERERS), ("activators", _ACTIVATORS)):
                items = network.get(field, [])
                if not isinstance(items, list) or any(item not in allowed for item in items):
                    return "%s.network.%s: must be a list of %s, got %s" % (
                        where, field, ", ".join(allowed), _short(items))
        for field in ("default_user", "paths"):
            if field in value and not isinstance(value[field], dict):
                return "%s.%s: must be a mapping, got %s" % (where, field, _short(value[field]))
        if "package_mirrors" in value and not isinstance(value["package_mirrors"], list):
            return "%s.package_mirrors: must be a list, got %s" % (where, _short(value["package_mirrors"]))
        return None
    if key in MODULE_LISTS:
        return _module_list_problem(key, value)
    if key == "syslog_fix_perms":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and _OWNER_RE.fullmatch(i) for i in items):
            return "%s: must be user:group or a list of them, got %s" % (where, _short(value))
        return None
    if key == "output":
        if not isinstance(value, dict):
            return "%s: must be a mapping of stages to destinations, got %s" % (where, _short(value))
        return None
    if key == "reporting":
        if not isinstance(value, dict):
            return "%s: must be a mapping of reporter names to settings, got %s" % (where, _short(value))
        return None
    if key == "def_log_file":
        if not isinstance(value, str) or not value.startswith("/"):
            return "%s: must be an absolute path, got %s" % (where, _short(value))
        return None
    if key == "log_cfgs":
        if not isinstance(value, list):
            return "%s: must be a list, got %s" % (where, _short(value))
        return None
    return None


def privileged_settings(settings: dict) -> list:
    """(dotted key, what it does) of every setting that needs allow_privileged_settings."""
    found = []
    for key in sorted(settings):
        value = settings[key]
        if key in PRIVILEGED_KEYS:
            found.append((key, PRIVILEGED_KEYS[key]))
            continue
        if key == "disable_root" and is_false(value):
            found.append((key, "lets the launch key pair log in as root"))
            continue
        if key in PRIVILEGED_SUBKEYS and isinstance(value, dict):
            allowed, reason = PRIVILEGED_SUBKEYS[key]
            if key == "datasource":
                for name in sorted(value):
                    config = value[name] if isinstance(value[name], dict) else {}
                    found.extend(("%s.%s.%s" % (key, name, field), reason)
                                 for field in sorted(config) if field not in allowed)
            else:
                found.extend(("%s.%s" % (key, field), reason) for field in sorted(value) if field not in allowed)
    return found


def check_settings(settings: t.Any, allow_privileged: bool = False) -> list:
    """Every problem of the settings that needs no image: shape, bounds, privilege, system keys."""
    if not isinstance(settings, dict):
        return ["settings: must be a dictionary of cloud-init keys"]
    problem = _plain_yaml(settings, "settings")
    if problem:
        return [problem]
    errors = []
    for key in sorted(settings):
        value = settings[key]
        if key in ("hostname", "fqdn"):
            problem = check_hostname(key, value)
        elif key in SYSTEM_KEYS:
            problem = check_system_key(key, value)
        else:
            problem = None
        if problem:
            errors.append(problem)
    if not allow_privileged:
        refused = privileged_settings(settings)
        if refused:
            errors.append("settings: refused without allow_privileged_settings=true: %s" % "; ".join(
                "%s (%s)" % (key, reason) for key, reason in refused))
    if not errors and settings:
        size = len(yaml.safe_dump(settings, default_flow_style=False, width=1000).encode("utf-8"))
        if size > MAX_SETTINGS_BYTES:
            errors.append("settings: %d bytes when written; at most %d" % (size, MAX_SETTINGS_BYTES))
    return errors


def check_customized_path(path: t.Any) -> str | None:
    if not isinstance(path, str) or not path.startswith("/"):
        return "customized_paths: %s is not an absolute path in the image" % _short(path)
    try:
        _image_root.normalize_path(path, "customized_paths")
    except _image_root.RootError as exc:
        return exc.msg
    return None


def check_options(protect: t.Any, settings: t.Any, disable_modules: t.Any, filename: t.Any,
                  customized_paths: t.Any, allow_privileged: bool = False) -> list[str]:
    """Every problem with the options that needs no image, each naming the option and the rule."""
    errors = []
    problem = check_filename(filename)
    if problem:
        errors.append(problem)
    if not isinstance(protect, list):
        errors.append("protect: must be a list of protection names")
    else:
        unknown = [_short(p) for p in protect if not isinstance(p, str) or p not in PROTECTIONS]
        if unknown:
            errors.append("protect: unknown protection %s; known: %s"
                          % (", ".join(unknown[:5]), ", ".join(sorted(PROTECTIONS))))
    errors.extend(check_settings(settings, allow_privileged))
    if not isinstance(disable_modules, list):
        errors.append("disable_modules: must be a list of cloud-init module names")
    else:
        for name in disable_modules:
            if not isinstance(name, str) or len(name) > 64 or not _MODULE_RE.fullmatch(name):
                errors.append("disable_modules: %s is not a cloud-init module name "
                              "(letters, digits, '_' and '-')" % _short(name))
        if isinstance(settings, dict) and disable_modules:
            clash = sorted(k for k in settings if k in MODULE_LISTS)
            if clash:
                errors.append("settings: %s cannot be set together with disable_modules, which "
                              "writes those lists itself" % ", ".join(clash))
    if not isinstance(customized_paths, list):
        errors.append("customized_paths: must be a list of absolute paths in the image")
    else:
        for path in customized_paths:
            problem = check_customized_path(path)
            if problem:
                errors.append(problem)
                break
    return errors


def check_settings_against_image(settings: dict, facts: ImageFacts) -> list:
    """Problems of the settings that only the image's own cloud-init can tell."""
    errors = []
    cloud_init = facts.cloud_init
    schema_keys = facts.schema_keys()
    if schema_keys is not None:
        unknown = sorted(key for key in settings if key not in SYSTEM_KEYS and key not in schema_keys)
        if unknown:
            errors.append("settings: %s %s neither a system setting the guard knows (%s) nor a key of the "
                          "image's cloud-init %s schema" % (
                              ", ".join(_short(key) for key in unknown[:5]), "is" if len(unknown) == 1 else "are",
                              ", ".join(SYSTEM_KEYS[:6]) + ", ...",
                              cloud_init.version_text or ""))
    known = facts.datasources()
    if known is not None:
        asked = list(settings.get("datasource_list") or []) + list(settings.get("datasource") or {})
        missing = sorted({name for name in asked if isinstance(name, str) and name not in known})
        if missing:
            errors.append("settings: datasource %s not in the image's cloud-init %s (it has: %s)" % (
                ", ".join(missing), cloud_init.version_text or "", ", ".join(sorted(known))))
    return errors


# --------------------------------------------------------------------------
# planning


class Plan(t.NamedTuple):
    image: _image_root.ImageRoot
    path: str  # host path of the drop-in
    display: str  # its path inside the image
    before: str | None
    after: str | None
    content: dict
    schema_text: str  # the user-data part of the drop-in, for cloud-init's schema
    effective: dict
    conflicts: list
    first_boot_changes: list
    unprotected: list
    warnings: list
    distro: str | None
    cloud_init: CloudInit

    @property
    def changed(self) -> bool:
        return self.after is not None and self.after != self.before


# A protection key that must stay unset (ssh_pwauth when no file of the image sets it).
UNSET = object()


def ssh_pwauth_setting(base: dict, facts: ImageFacts) -> t.Any:
    """What ssh_config writes for ssh_pwauth: UNSET when no configuration of the image sets it
    (set_passwords then leaves sshd alone); else, on cloud-init older than 22.2, the string
    'unchanged' (not deprecated there); else the boolean of the image's effective
    PasswordAuthentication, so set_passwords writes what sshd already does."""
    current = lookup(base, "ssh_pwauth")
    if current is _MISSING or current is None:
        return UNSET
    version = facts.cloud_init.version
    if version is not None and version < SSH_PWAUTH_STRING_DEPRECATED:
        return "unchanged"
    return facts.sshd.effective


def protection_settings(protect: list, distro: str | None, base: dict | None = None,
                        facts: ImageFacts | None = None) -> tuple[dict, dict]:
    """The protections' settings for this image, and every key they own -> its value (UNSET
    for a key that must stay unset)."""
    content: dict = {}
    owned: dict = {}
    for name in protect:
        entry = PROTECTIONS[name]
        content = merge(content, entry["settings"])
        extra = DISTRO_SETTINGS.get(name, {}).get(distro or "")
        if extra:
            content = merge(content, extra)
        for key in entry.get("derive", []):
            if key == "ssh_pwauth":
                value = ssh_pwauth_setting(base or {}, facts) if facts is not None else UNSET
                owned[key] = value
                if value is not UNSET:
                    content[key] = value
    for key in leaf_keys(content):
        owned.setdefault(key, lookup(content, key))
    return content, owned


def contradictions(protect: list, settings: dict, owned: dict) -> list:
    """Settings that set a key a chosen protection owns to another value, or set a key the
    protection leaves unset (ssh_pwauth, when no file of the image sets it)."""
    errors = []
    for key, wanted in owned.items():
        found, value = sets_key(settings, key)
        if not found or (value == wanted and type(value) is type(wanted)):
            continue
        which = next((name for name in protect if key in PROTECTIONS[name].get("derive", [])
                      or lookup(PROTECTIONS[name]["settings"], key) is not _MISSING), "?")
        if wanted is UNSET:
            errors.append("settings: %s=%s contradicts protection '%s', which leaves it unset so that "
                          "cloud-init keeps the baked sshd settings" % (key, _short(value), which))
        else:
            errors.append("settings: %s=%s contradicts protection '%s', which sets %r"
                          % (key, _short(value), which, wanted))
    return errors


def disabled_lists(effective: dict, disabled: list[str]) -> tuple[dict, list[str]]:
    """The module lists that contain a disabled module, in full without it; warnings."""
    wanted = {canonical_module(name) for name in disabled}
    lists = {}
    seen: t.Set[t.Optional[str]] = set()  # None: an entry that names no module
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
    present: t.Set[t.Optional[str]] = set()
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
        ", ".join("'%s' is" % name for name in missing), ", ".join(MODULE_LISTS),
        ", ".join(sorted(name for name in present if name is not None)))


def _dump(content: dict) -> str:
    return yaml.safe_dump(content, default_flow_style=False, sort_keys=True, width=1000)


def render(content: dict, protect: list, disabled: list) -> str:
    lines = [HEADER.rstrip("\n"),
             "# Written by bakery.ami.cloudinit_guard to keep the baked image's customizations",
             "# at first boot. Rerun the guard rather than editing this file. User-data given",
             "# at launch still overrides these settings."]
    if protect:
        lines.append("# Protections: %s" % ", ".join(sorted(set(protect))))
    if disabled:
        lines.append("# Modules removed: %s" % ", ".join(sorted({canonical_module(d) for d in disabled})))
    return "\n".join(lines) + "\n" + _dump(content)


def schema_document(content: dict) -> str:
    """The user-data part of the drop-in (system settings left out), as cloud-config text."""
    userdata = {key: value for key, value in content.items() if key not in SYSTEM_KEYS}
    return HEADER + (_dump(userdata) if userdata else "{}\n")


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


def _change(module: str, path: str, key: str, value: t.Any, frequency: str,
            overrides: t.Sequence = (), detail: str | None = None) -> dict:
    return {"module": module, "file": path, "key": key, "value": value, "frequency": frequency,
            "overrides": list(overrides), "detail": detail}


class User(t.NamedTuple):
    name: str
    home: str | None
    sudo: t.Any
    default: bool


def configured_users(effective: dict) -> list:
    """The users users_groups creates or updates (the default user resolved from system_info)."""
    users = effective.get("users")
    entries: list = []
    if isinstance(users, str):
        entries = [part.strip() for part in users.split(",") if part.strip()]
    elif isinstance(users, list):
        entries = users
    elif isinstance(users, dict):
        entries = [dict(config, name=name) if isinstance(config, dict) else name for name, config in users.items()]
    legacy = effective.get("user")
    default_cfg = lookup(effective, "system_info.default_user")
    default_cfg = dict(default_cfg) if isinstance(default_cfg, dict) else {}
    if isinstance(legacy, dict):
        default_cfg = merge(default_cfg, legacy)
    elif isinstance(legacy, str) and legacy:
        default_cfg["name"] = legacy
    result = []
    wants_default = legacy is not None and legacy != ""
    for entry in entries:
        if entry == "default" or (isinstance(entry, dict) and entry.get("name") == "default"):
            wants_default = True
        elif isinstance(entry, str):
            result.append(User(entry, None, None, False))
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            home = entry.get("homedir") if isinstance(entry.get("homedir"), str) else None
            result.append(User(entry["name"], home, entry.get("sudo"), False))
    if wants_default and isinstance(default_cfg.get("name"), str) and default_cfg["name"]:
        home = default_cfg.get("homedir") if isinstance(default_cfg.get("homedir"), str) else None
        result.insert(0, User(default_cfg["name"], home, default_cfg.get("sudo"), True))
    return result


def default_user_name(effective: dict) -> str | None:
    name = lookup(effective, "system_info.default_user.name")
    return name if isinstance(name, str) and name else None


def _sudo_rules(sudo: t.Any) -> list:
    """The sudoers rules of a user's ``sudo`` setting (none for unset, false or 'false')."""
    if sudo is None or isinstance(sudo, bool) or (isinstance(sudo, str) and is_false(sudo)):
        return []
    if isinstance(sudo, str):
        return [sudo]
    if isinstance(sudo, list):
        return [str(rule) for rule in sudo if rule]
    return []


def computed_effects(effective: dict, facts: ImageFacts, enabled: dict | None, distro: str | None) -> list:
    """First-boot changes that depend on the image's own files: host keys, users and sudo, the
    default user's keys, sshd's PasswordAuthentication and the locale."""
    changes = []

    def runs(module: str) -> bool:
        return enabled is None or module in enabled

    def frequency(module: str, default: str = "once-per-instance") -> str:
        return (enabled or {}).get(module) or default

    users = configured_users(effective)
    passwd = facts.passwd
    if runs("users_groups") and users:
        freq = frequency("users_groups")
        for path in ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"):
            changes.append(_change("users_groups", path, "users", [u.name for u in users], freq))
        for user in users:
            if user.name not in passwd:
                home = user.home or "/home/" + user.name
                changes.append(_change("users_groups", home, "users", user.name, freq,
                                       detail="home directory of %s, who is created" % user.name))
            rules = _sudo_rules(user.sudo)
            if rules:
                nopasswd = any("NOPASSWD" in rule for rule in rules)
                changes.append(_change(
                    "users_groups", "/etc/sudoers.d/90-cloud-init-users", "users", rules, freq,
                    overrides=["/etc/sudoers", "/etc/sudoers.d/*"],
                    detail="gives %s%s sudo %s%s, over the image's sudoers policy" % (
                        "the default user " if user.default else "", user.name, ", ".join(rules),
                        " (no password asked)" if nopasswd else "")))

    if runs("ssh"):
        freq = frequency("ssh")
        version = facts.cloud_init.version
        if isinstance(effective.get("ssh_keys"), dict) and effective["ssh_keys"]:
            changes.append(_change("ssh", "/etc/ssh/ssh_host_*_key", "ssh_keys", "(keys)", freq,
                                   detail="host keys written from ssh_keys"))
        else:
            types = effective.get("ssh_genkeytypes")
            if not isinstance(types, list):
                types = GENKEYTYPES if version is not None and version >= GENKEYTYPES_DSA_DROPPED \
                    else GENKEYTYPES_WITH_DSA
            openssh = facts.openssh_version
            types = [str(kind) for kind in types
                     if not (kind == "dsa" and openssh is not None and openssh >= OPENSSH_WITHOUT_DSA)]
            deletekeys = lookup(effective, "ssh_deletekeys")
            if deletekeys is _MISSING or deletekeys is None or not is_false(deletekeys):
                for path in ("/etc/ssh/ssh_host_*_key", "/etc/ssh/ssh_host_*_key.pub"):
                    changes.append(_change("ssh", path, "ssh_deletekeys", True, freq,
                                           detail="every host key deleted; new ones of types %s" % ", ".join(types)))
            else:
                for kind in types:
                    path = "/etc/ssh/ssh_host_%s_key" % kind
                    if not facts.image.exists(path):
                        for each in (path, path + ".pub"):
                            changes.append(_change(
                                "ssh", each, "ssh_genkeytypes", kind, freq,
                                detail="the image has no %s host key, so one is generated" % kind))
        disable_root = lookup(effective, "disable_root")
        root_refused = disable_root is _MISSING or disable_root is None or not is_false(disable_root)
        changes.append(_change("ssh", "/root/.ssh/authorized_keys", "disable_root", root_refused, freq,
                               detail="the launch key, with a command refusing root logins" if root_refused
                               else "the launch key: root logs in with it"))
        default = next((user for user in users if user.default), None)
        if default is not None:
            home = passwd.get(default.name) or default.home or "/home/" + default.name
            changes.append(_change("ssh", home.rstrip("/") + "/.ssh/authorized_keys", "users", default.name, freq,
                                   detail="the launch key pair's public key, for the default user %s"
                                          % default.name))

    if runs("set_passwords"):
        value = lookup(effective, "ssh_pwauth")
        if value is not _MISSING and (is_true(value) or is_false(value)):
            wanted = is_true(value)
            sshd = facts.sshd
            freq = frequency("set_passwords")
            detail = "PasswordAuthentication %s" % ("yes" if wanted else "no")
            overrides = [] if wanted == sshd.effective else ["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/*"]
            if sshd.includes_dconf:
                if facts.sshd_dropin_value() != wanted:
                    changes.append(_change("set_passwords", _SSHD_DROPIN, "ssh_pwauth", value, freq,
                                           overrides, detail))
            else:
                lines = facts.sshd_config_lines()
                if not lines or any(line != ("yes" if wanted else "no") for line in lines):
                    changes.append(_change("set_passwords", _SSHD_CONFIG, "ssh_pwauth", value, freq,
                                           overrides, detail))

    if runs("locale"):
        value = lookup(effective, "locale")
        if value is _MISSING or value is None or not is_false(value):
            own = facts.locale
            if value is _MISSING or value is None:
                target = own if own and (distro in _DEBIAN_FAMILY) else DEFAULT_LOCALE
            else:
                target = str(value)
            if own is None or own.lower() != target.lower():
                for path in ("/etc/default/locale", "/etc/locale.conf", "/etc/locale.gen"):
                    changes.append(_change("locale", path, "locale", target, frequency("locale"),
                                           detail="LANG=%s (the image has %s)" % (target, own or "none")))
    return changes


def first_boot_changes(effective: dict, distro: str | None, facts: ImageFacts | None = None) -> tuple[list, list]:
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
            changes.append(_change(module, path, rule["key"], value, frequency, rule.get("overrides", [])))
    if facts is not None:
        changes.extend(computed_effects(effective, facts, enabled, distro))
    return changes, warnings


def unprotected_paths(changes: list, customized: list) -> list:
    result = []
    for path in customized:
        norm = _image_root.normalize_path(path, "customized_paths")
        for change in changes:
            patterns = [change["file"]] + change["overrides"]
            if any(fnmatch.fnmatchcase(norm, pattern) for pattern in patterns):
                result.append({"path": path, "module": change["module"], "key": change["key"],
                               "file": change["file"], "frequency": change["frequency"]})
                break
    return result


def conflicts_of(later: list[_cloud_config.ConfigFile], content: dict) -> list:
    found = []
    for item in later:
        for key in leaf_keys(content):
            sets, value = sets_key(item.config, key)
            wanted = lookup(content, key)
            if sets and value != wanted:
                found.append({"file": item.display, "key": key, "value": value, "guard_value": wanted})
    return found


def identity_warnings(protect: list, settings: dict, facts: ImageFacts) -> list:
    warnings = []
    for name in protect:
        text = PROTECTIONS[name].get("warning")
        if text:
            hostname = facts.hostname if name == "hostname" else None
            warnings.append(text.replace("{name}", " (%r)" % hostname if hostname else ""))
    for key in ("hostname", "fqdn"):
        if isinstance(settings.get(key), str):
            warnings.append("settings: %s %r is applied on every instance launched from this image, so all of "
                            "them share one %s" % (key, settings[key], key))
    return warnings


def default_user_warning(effective: dict, facts: ImageFacts) -> str | None:
    """A warning when the default user will not exist at first boot: the launch key pair's public
    key then reaches no user."""
    name = default_user_name(effective)
    if name is None or name in facts.passwd:
        return None
    enabled = enabled_modules(effective)
    creates = (enabled is None or "users_groups" in enabled) and any(u.default for u in configured_users(effective))
    if creates:
        return None
    return ("default_user: the image has no user '%s' (system_info.default_user) and cloud-init will not create "
            "it (users_groups does not run or users has no 'default'), so the launch key pair's public key is "
            "installed for no user; bake the user, or leave users_groups to cloud-init" % name)


@dataclasses.dataclass(frozen=True)
class GuardRequest:
    """A checked cloudinit_guard request: build_request held every rule before it was made."""

    root: str = "/"
    protect: tuple[str, ...] = ()
    settings: dict = dataclasses.field(default_factory=dict)
    disable_modules: tuple[str, ...] = ()
    filename: str = DEFAULT_FILENAME
    audit: bool = True
    customized_paths: tuple[str, ...] = ()
    allow_privileged_settings: bool = False
    fail_on_unprotected: bool = False


def build_request(params: dict) -> GuardRequest:
    """Check every option of cloudinit_guard (root: that it is an image root with /etc/cloud) and return
    the request; raises GuardError listing every problem (``errors`` in its result), before any write."""
    if yaml is None:
        raise GuardError("PyYAML is required by cloudinit_guard")
    root = params.get("root", "/")
    protect = [] if params.get("protect") is None else params["protect"]
    settings = {} if params.get("settings") is None else params["settings"]
    disable_modules = [] if params.get("disable_modules") is None else params["disable_modules"]
    filename = DEFAULT_FILENAME if params.get("filename") is None else params["filename"]
    customized_paths = [] if params.get("customized_paths") is None else params["customized_paths"]
    audit = params.get("audit") is not False
    fail_on_unprotected = bool(params.get("fail_on_unprotected"))
    errors = check_options(protect, settings, disable_modules, filename, customized_paths,
                           bool(params.get("allow_privileged_settings")))
    if fail_on_unprotected and not audit:
        errors.append("fail_on_unprotected: needs audit=true")
    image_error = _image_error(root)[1]
    if image_error:
        errors.insert(0, image_error)
    if errors:
        raise GuardError("; ".join(errors), {"errors": errors})
    return GuardRequest(
        root=root, protect=tuple(protect), settings=dict(settings), disable_modules=tuple(disable_modules),
        filename=filename, audit=audit, customized_paths=tuple(customized_paths),
        allow_privileged_settings=bool(params.get("allow_privileged_settings")), fail_on_unprotected=fail_on_unprotected,
    )


def _image_error(root: str) -> tuple[_image_root.ImageRoot | None, str | None]:
    """The image root at root, or the message saying why it is none (no such root, no /etc/cloud)."""
    try:
        image = _image_root.ImageRoot(root)
    except _image_root.RootError as exc:
        return None, exc.msg
    if not image.is_dir("/etc/cloud"):
        return None, "root: %s has no /etc/cloud; is cloud-init installed in the image?" % root
    return image, None


def plan_request(request: GuardRequest) -> Plan:
    """Everything the guard will do under the request's root, without writing. GuardError when the image
    refuses what was asked (settings it does not know, contradictions) or cannot be read."""
    protect = list(request.protect)
    settings = request.settings
    disable_modules = list(request.disable_modules)
    filename = request.filename
    image, error = _image_error(request.root)
    if image is None:  # it was one when the request was checked
        raise GuardError(error or "root: %s is not an image root" % request.root)
    facts = ImageFacts(image)

    display = "%s/%s" % (CLOUD_CFG_D, filename)
    entry = image.lstat(display)
    if entry is not None and not stat.S_ISREG(entry.stat.st_mode):
        raise GuardError("filename: %s exists and is not a regular file" % display)
    with _as_guard_error():
        before = _cloud_config.read_text(image, display) if entry is not None else None
    directory = image.canonical(CLOUD_CFG_D, follow_last=True) or CLOUD_CFG_D
    host = image.host_path(directory.rstrip("/") + "/" + filename)

    others, warnings = read_configs(image, skip_name=filename)
    base = merge_all(item.config for item in others)
    distro = detect_distro(image, base)

    errors = check_settings_against_image(settings, facts)
    unknown = unknown_modules(base, disable_modules)
    if unknown:
        errors.append(unknown)
    content, owned = protection_settings(protect, distro, base, facts)
    errors.extend(contradictions(protect, settings, owned))
    if errors:
        raise GuardError("; ".join(errors))
    disabled = list(disable_modules)
    for name in protect:
        disabled.extend(PROTECTIONS[name]["disable_modules"])
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
        with _as_guard_error():
            own = _cloud_config.parse(before, display) if before is not None else {}

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

    warnings.extend(identity_warnings(protect, settings, facts))
    missing_user = default_user_warning(effective_after, facts)
    if missing_user and ("default_user" in protect or "users_groups" in {canonical_module(m) for m in disabled}):
        warnings.append(missing_user)

    changes: list = []
    unprotected: list = []
    if request.audit:
        changes, audit_warnings = first_boot_changes(effective_after, distro, facts)
        warnings.extend(audit_warnings)
        unprotected = unprotected_paths(changes, list(request.customized_paths))
    return Plan(image=image, path=host, display=display, before=before, after=after, content=content,
                schema_text=schema_document(content), effective=effective, conflicts=conflicts,
                first_boot_changes=changes, unprotected=unprotected, warnings=warnings, distro=distro,
                cloud_init=facts.cloud_init)


# --------------------------------------------------------------------------
# schema validation and writing


_DEPRECATIONS = "Cloud config schema deprecations:"


def _schema_problem(output: str) -> str | None:
    lines = [line.strip() for line in output.splitlines()
             if line.strip() and not line.startswith(_DEPRECATIONS)]
    for line in lines:
        lowered = line.lower()
        if "schema errors" in lowered or "invalid" in lowered or "not valid yaml" in lowered \
                or "not a yaml dict" in lowered or "needs to begin with" in lowered:
            return " ".join(lines)
    return None


def schema_deprecations(output: str) -> list:
    """cloud-init's own deprecation messages of a `cloud-init schema` run."""
    found = []
    for line in output.splitlines():
        if line.startswith(_DEPRECATIONS):
            text = line[len(_DEPRECATIONS):].strip()
            if text:
                found.append(text)
    return found


def validate_schema(plan: Plan, run: t.Callable[..., tuple[int, str, str]]) -> tuple[bool, list]:
    """Validate the user-data part of the drop-in with the image's own `cloud-init schema`.

    The image's cloud-init runs through the sandbox (_sandbox: directly when the root is "/",
    otherwise in private namespaces without devices or the capabilities to leave its root, with
    private /tmp and /run) and reads the text from its standard input: nothing is written into
    the image, in check mode or not. ``run(argv, data=..., binary_data=..., environ_update=...)`` is
    AnsibleModule.run_command. Returns (validated, warnings): cloud-init's own deprecation
    messages, or why the schema could not be run. Raises GuardError when cloud-init rejects it.
    """
    cloud_init = plan.cloud_init
    label = "cloud-init %s" % cloud_init.version_text if cloud_init.version else "cloud-init"
    if cloud_init.binary is None:
        return False, ["cloud-init is not installed under %s: schema validation skipped" % plan.image.root]
    command = ["schema"]
    if cloud_init.version is not None and cloud_init.version < (22, 2):
        command = ["devel", "schema"]
    argv = [cloud_init.binary] + command + ["--config-file", "/dev/stdin"]

    def feed(args, **kwargs):
        return run(args, data=plan.schema_text, binary_data=True, **kwargs)

    # cloud-init 24.x and later write /run/cloud-init/instance-data*.json when they validate, and
    # Python may cache bytecode: in the image neither is wanted (check mode writes nothing).
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    try:
        if _sandbox.is_host_root(plan.image.root):
            rc, out, err = _sandbox.run_in_image(plan.image.root, argv, feed, env=env)
        else:
            # the sandbox of run_in_image, with fresh tmpfs mounts on the image's /tmp and /run
            rc, out, err = feed(_sandbox.image_command(plan.image.root, argv, env=env, tmp_private=True))
    except _sandbox.SandboxError as exc:
        return False, ["%s; schema validation skipped" % exc.msg]
    output = _printable("%s\n%s" % (out or "", err or ""))
    warnings = ["%s schema: deprecated: %s" % (label, text) for text in schema_deprecations(output)]
    if rc == 0:
        return True, warnings
    problem = _schema_problem(output)
    if problem:
        raise GuardError("settings: the drop-in fails cloud-init's schema (%s): %s" % (label, problem))
    return False, warnings + ["could not run %s schema (rc %d): %s" % (label, rc, output.strip()[-500:])]


def write_dropin(plan: Plan) -> str:
    """Write the drop-in through the root-confined layer: atomically (a temporary file beside it
    whose name starts with '.' and does not end in .cfg, so cloud-init never reads a partial
    file, then a rename), keeping the mode and owner of an existing file (a new one gets 0644),
    and replacing a link at its path rather than writing through it. Returns its image path;
    a failed write raises GuardError."""
    try:
        return plan.image.write_text(plan.display, plan.after or "")
    except OSError as exc:
        raise GuardError("root: writing %s failed: %s" % (plan.path, exc.strerror)) from exc
