# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The one reader of cloud-init's system configuration in an image, as cloud-init reads it:
# /etc/cloud/cloud.cfg, then every /etc/cloud/cloud.cfg.d/*.cfg in sorted (string) order, the last
# one winning. The guard (_cloudinit), the release lock (_release) and the image scan (_hygiene)
# all take the file set and its order from here. Two ways to read the files, for two needs:
# - load: every file parsed as YAML, refused (ConfigError naming the file and line) when cloud-init
#   could not use it as it stands; the guard writes a drop-in that must merge right with them;
# - network_disabled, top_level_scalar: questions answered from the text alone, so a hostile or
#   malformed file still gets an answer (the scan must never fail on what it scans) and a builder
#   without PyYAML can ask them (the release lock reads its keys and the later drop-ins' this way).

from __future__ import annotations

import re
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _image_root
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

try:
    import yaml
except ImportError:
    yaml = None  # type: ignore[assignment]  # load needs it: the guard checks for it first

CLOUD_CFG = "/etc/cloud/cloud.cfg"
CLOUD_CFG_D = "/etc/cloud/cloud.cfg.d"
DROPIN_SUFFIX = ".cfg"
MAX_FILE_BYTES = 1 << 20  # one configuration file
MAX_DEPTH = 32  # nesting of a configuration

# `network: {config: disabled}` (flow or block style) at the top level of one file.
_NETWORK_DISABLED = re.compile(
    r"(?m)^network:[ \t]*(?:\{[^}\n]*config:[ \t]*[\"']?disabled[\"']?|\n(?:[ \t]+.*\n|[ \t]*\n)*?[ \t]+config:[ \t]*"
    r"[\"']?disabled[\"']?[ \t]*$)")


class ConfigError(BakeryError):
    """A configuration file that cannot be read as cloud-config; the message names the file."""


class ConfigFile(t.NamedTuple):
    name: str  # file name in cloud.cfg.d, or "cloud.cfg"
    display: str  # path inside the image, /etc/cloud/...
    config: dict


class _Lister(t.Protocol):
    def entries(self, path: str) -> list: ...


def dropin_names(image: _Lister) -> list[str]:
    """The names of cloud.cfg.d's drop-ins in the order cloud-init reads them (lowest priority first).

    ``image`` lists a directory of the image (sorted, links not followed): an ImageRoot, or a
    caller's wrapper of one with its own error policy.
    """
    names = (entry.path.rsplit("/", 1)[1] for entry in image.entries(CLOUD_CFG_D))
    return sorted(name for name in names if name.endswith(DROPIN_SUFFIX))


def read_text(image: _image_root.ImageRoot, path: str, limit: int = MAX_FILE_BYTES) -> str | None:
    """UTF-8 text of the regular file at ``path`` (a final link followed inside the image);
    None when it does not exist. ConfigError naming the file when too large or not UTF-8."""
    data = image.read_bytes(path, limit=limit + 1, follow_last=True)
    if data is None:
        return None
    if len(data) > limit:
        raise ConfigError("%s: larger than %d bytes; not a cloud-init configuration the guard reads" % (path, limit))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("%s: not UTF-8 text (byte %d)" % (path, exc.start)) from exc


def _depth(value: t.Any) -> int:
    """Nesting depth of dicts and lists (iterative: a hostile file cannot exhaust the stack)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, (list, tuple)):
            children = list(node)
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse(text: str, display: str) -> dict:
    """A cloud-config file's mapping; ConfigError naming the file and line when malformed."""
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
        raise ConfigError("%s:%s malformed YAML: %s" % (display, where, problem)) from exc
    except RecursionError as exc:
        raise ConfigError("%s: nested more than %d levels deep" % (display, MAX_DEPTH)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("%s: line 1: the top level must be a mapping, got %s" % (display, type(data).__name__))
    if _depth(data) > MAX_DEPTH:
        raise ConfigError("%s: nested more than %d levels deep" % (display, MAX_DEPTH))
    return data


def load(image: _image_root.ImageRoot, skip_name: str | None = None) -> list[ConfigFile]:
    """cloud.cfg then every cloud.cfg.d/*.cfg in sorted order (lowest priority first), parsed.

    ``skip_name`` (a drop-in the caller writes itself) is left out; a drop-in that is not a
    regular file (a final link followed inside the image) is not read.
    """
    files = []
    text = read_text(image, CLOUD_CFG)
    if text is not None:
        files.append(ConfigFile("cloud.cfg", CLOUD_CFG, parse(text, CLOUD_CFG)))
    for name in dropin_names(image):
        if name == skip_name:
            continue
        display = "%s/%s" % (CLOUD_CFG_D, name)
        if not image.is_file(display):
            continue
        files.append(ConfigFile(name, display, parse(read_text(image, display) or "", display)))
    return files


def network_disabled(texts: t.Iterable[str]) -> bool:
    """Whether cloud.cfg and its drop-ins (their texts, in reading order) turn cloud-init's network
    configuration off: the last file with a top-level ``network:`` decides. Text only, so a file
    that is not valid YAML still gets an answer."""
    disabled = False
    for text in texts:
        if re.search(r"(?m)^network:", text):
            disabled = _NETWORK_DISABLED.search(text) is not None
    return disabled


def top_level_scalar(text: str, key: str) -> str | None:
    """The plain scalar a cloud-config text gives a top-level key (``key: value``), or None when no
    line at the top level sets it. The first such line counts; one pair of matching quotes around
    the value and a trailing ``# comment`` are taken off, spaces and tabs around the colon allowed,
    CRLF line ends accepted. Text only (no YAML), for keys whose values are plain words."""
    pattern = re.compile(r"%s[ \t]*:[ \t]*(.*?)[ \t]*(?:#.*)?" % re.escape(key))
    for line in text.splitlines():
        match = pattern.fullmatch(line.rstrip("\r\n"))
        if match:
            value = match.group(1)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            return value
    return None
