# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Distribution releases: read from AMI names (release_from_ami_name, also used by ami_find) and
# from an image's files, and the Amazon Linux release lock behind ami_lock_release.
#
# The options are checked once into a LockRequest (build_request, raising ReleaseLockError that lists
# every problem), the lock is planned (plan_request reads files and computes every new content,
# raising ReleaseLockError naming the option or file at fault), then applied (apply_plan writes each
# changed file atomically). Nothing is written unless the whole plan succeeded. Every file of
# the image is read and written through the root-confined layer (_image_root): a link in the
# image never leads outside it, and a write replaces a link rather than following it.
#
# Every pattern applied to user input or image text is a full-string match over ASCII classes
# ([0-9], never \d, which also matches other scripts' digits; fullmatch or \Z, never a bare $,
# which also matches before a final newline).

from __future__ import annotations

import dataclasses
import datetime
import re
import stat
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _cloud_config
from ansible_collections.bakery.ami.plugins.module_utils import _image_root
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

# Generations of Amazon Linux, named like the ami_find catalog entries.
AL2023 = "al2023"
AL2 = "al2"
AL1 = "amzn"

GENERATION_TITLES = {
    AL2023: "Amazon Linux 2023",
    AL2: "Amazon Linux 2",
    AL1: "Amazon Linux AMI",
}

LAUNCH_UPDATES = ("security", "bugfix", "all", "none")

# Paths inside the image, without the leading slash (as FileChange.relpath and in messages after "/").
DNF_VARS_RELEASEVER = "etc/dnf/vars/releasever"
YUM_CONF = "etc/yum.conf"
CLOUD_CFG_D = _cloud_config.CLOUD_CFG_D.lstrip("/")  # paths here are relative to the root
# Sorts before the cloudinit_guard's 99_bakery_guard.cfg, so that the guard (which may turn
# launch updates off as part of its `packages` protection) has the last word.
CLOUD_DROPIN_NAME = "90_bakery_release_lock.cfg"
CLOUD_DROPIN = CLOUD_CFG_D + "/" + CLOUD_DROPIN_NAME
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
SYSTEM_RELEASE = "etc/system-release"

_DROPIN_HEADER = (
    "#cloud-config\n"
    "# Written by bakery.ami.ami_lock_release: every instance launched from this image applies\n"
    "# these settings at first boot (user-data given at launch still wins).\n"
)

# --------------------------------------------------------------------------------------------
# Release strings in AMI names
# --------------------------------------------------------------------------------------------

# al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64, al2023-ami-minimal-2023.6.20241010.0-kernel-default-arm64
_AL2023_NAME = re.compile(
    r"al2023-ami-(?P<minimal>minimal-)?(?P<release>2023\.[0-9]+\.[0-9]{8})(?:\.[0-9]+)?-kernel-[0-9a-z.]+-(?:x86_64|arm64)"
)
# amzn2-ami-hvm-2.0.20240131.0-x86_64-gp2, amzn2-ami-kernel-5.10-hvm-2.0.20240131.0-arm64-gp2,
# amzn2-ami-minimal-hvm-2.0.20240131.0-x86_64-ebs
_AL2_NAME = re.compile(
    r"amzn2-ami-(?:kernel-[0-9.]+-)?(?:minimal-)?hvm-(?P<release>2\.0\.[0-9]{8})(?:\.[0-9]+)?-(?:x86_64|arm64|i386)-(?:gp2|gp3|ebs)"
)
# amzn-ami-hvm-2018.03.0.20231218.0-x86_64-gp2, amzn-ami-minimal-hvm-2018.03.0.20231218.0-x86_64-ebs,
# amzn-ami-2018.03.0.20231218.0-x86_64-ebs (paravirtual), amzn-ami-vpc-nat-2018.03.0.20231218.0-x86_64-ebs
_AL1_NAME = re.compile(
    r"amzn-ami-(?:[a-z]+-)*(?P<release>20[0-9][0-9]\.(?:03|09))\.[0-9]+(?:\.[0-9]{8})?(?:\.[0-9]+)?-(?:x86_64|i386)-(?:gp2|ebs|s3)"
)
# ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240801,
# ubuntu-minimal/images/hvm-ssd/ubuntu-jammy-22.04-arm64-minimal-20240801,
# ubuntu-pro-server/images/hvm-ssd/ubuntu-focal-20.04-amd64-pro-server-20240801.1
_UBUNTU_NAME = re.compile(
    r"ubuntu(?:-[a-z]+)*/images(?:-testing)?/[a-z0-9-]+/ubuntu-[a-z]+-(?P<version>[0-9][0-9]\.[0-9][0-9])"
    r"-(?:amd64|arm64|i386)-(?:[a-z]+-)*(?:server|minimal)-(?P<release>[0-9]{8}(?:\.[0-9]+)?)"
)
# debian-12-amd64-20240717-1811, debian-11-arm64-20240717-1811, debian-12-backports-amd64-...
_DEBIAN_NAME = re.compile(
    r"debian-(?P<version>[0-9]+)-(?:[a-z]+-)*(?:amd64|arm64)-(?:daily-)?(?P<release>[0-9]{8}-[0-9]+)"
)
# RHEL-9.4.0_HVM-20240423-x86_64-62-Hourly2-GP3, RHEL-8.10.0_HVM-20240327-arm64-2-Access2-GP3
# (a prefix: the rest of a RHEL name varies; matched with .match, anchored at the start)
_RHEL_NAME = re.compile(
    r"RHEL-(?P<major>[0-9]+)\.(?P<minor>[0-9]+)(?:\.[0-9]+)?_HVM(?:_[A-Z0-9]+)?-[0-9]{8}-(?:x86_64|arm64)-"
)


def _valid_date(yyyymmdd: str) -> bool:
    if not re.fullmatch(r"[0-9]{8}", yyyymmdd):
        return False
    try:
        datetime.datetime.strptime(yyyymmdd, "%Y%m%d")
    except ValueError:
        return False
    return True


def release_from_ami_name(name: t.Any) -> tuple[str, str] | None:
    """The distribution and release an image name says it holds, or None.

    Pure: looks at the name only. The distribution is named like the ami_find catalog entry:

    - ``al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64`` -> ``("al2023", "2023.6.20241010")``
      (the trailing ``.0`` is the image build, not part of the release);
      ``al2023-ami-minimal-...`` -> ``("al2023-minimal", ...)``
    - ``amzn2-ami-hvm-2.0.20240131.0-x86_64-gp2`` -> ``("al2", "2.0.20240131")``
    - ``amzn-ami-hvm-2018.03.0.20231218.0-x86_64-gp2`` -> ``("amzn", "2018.03")``
    - ``ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240801``
      -> ``("ubuntu-24.04", "20240801")`` (the Canonical serial)
    - ``debian-12-amd64-20240717-1811`` -> ``("debian-12", "20240717-1811")``
    - ``RHEL-9.4.0_HVM-20240423-x86_64-62-Hourly2-GP3`` -> ``("rhel-9", "9.4")``

    Names of derived images (ECS- or EKS-optimized, vendors' own images) and anything else
    return None: a guess there would be worse than no answer.
    """
    if not isinstance(name, str) or not name.isascii():
        return None
    match = _AL2023_NAME.fullmatch(name)
    if match and _valid_date(match.group("release").rsplit(".", 1)[1]):
        return ("al2023-minimal" if match.group("minimal") else AL2023), match.group("release")
    match = _AL2_NAME.fullmatch(name)
    if match and _valid_date(match.group("release").rsplit(".", 1)[1]):
        return AL2, match.group("release")
    match = _AL1_NAME.fullmatch(name)
    if match:
        return AL1, match.group("release")
    match = _UBUNTU_NAME.fullmatch(name)
    if match and _valid_date(match.group("release")[:8]):
        return "ubuntu-" + match.group("version"), match.group("release")
    match = _DEBIAN_NAME.fullmatch(name)
    if match and _valid_date(match.group("release")[:8]):
        return "debian-" + match.group("version"), match.group("release")
    match = _RHEL_NAME.match(name)
    if match and not _has_control(name):
        return "rhel-" + match.group("major"), match.group("major") + "." + match.group("minor")
    return None


def generation_of_distro(distro: str) -> str | None:
    """The Amazon Linux generation of an ami_find distro name, None for other distributions."""
    if distro in (AL2023, "al2023-minimal"):
        return AL2023
    if distro in (AL2, AL1):
        return distro
    return None


# --------------------------------------------------------------------------------------------
# Release strings of each generation
# --------------------------------------------------------------------------------------------

_AL2023_RELEASE = re.compile(r"2023\.([0-9]+)\.([0-9]{8})")
_AL1_RELEASE = re.compile(r"(20[0-9][0-9])\.(03|09)")


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def validate_release(generation: str, release: t.Any) -> str | None:
    """None when release is a lockable release of that generation, else the rule it breaks."""
    if generation == AL2023:
        match = _AL2023_RELEASE.fullmatch(release) if isinstance(release, str) else None
        if match and _valid_date(match.group(2)):
            return None
        hint = ""
        if isinstance(release, str) and re.fullmatch(r"2023\.[0-9]+\.[0-9]{8}\.[0-9]+", release):
            hint = " (drop the trailing image build number)"
        return (
            "an Amazon Linux 2023 release has the form 2023.<minor>.<YYYYMMDD> with a real date,"
            f" e.g. 2023.6.20241010{hint}"
        )
    if generation == AL1:
        match = _AL1_RELEASE.fullmatch(release) if isinstance(release, str) else None
        if match and "2011.09" <= release <= "2018.03":
            return None
        return "an Amazon Linux AMI release has the form YYYY.MM, from 2011.09 to 2018.03, e.g. 2018.03"
    return f"{GENERATION_TITLES.get(generation, generation)} has no lockable releases"


def release_key(release: str) -> tuple[int, ...]:
    """Sort key of a release string of one generation (numeric, component by component)."""
    return tuple(int(part) for part in re.findall(r"[0-9]+", release))


# --------------------------------------------------------------------------------------------
# Reading an image's identity
# --------------------------------------------------------------------------------------------


class ReleaseLockError(BakeryError):
    """Bad input or an unusable root; the message names the option or file at fault."""


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5): KEY=value lines, values optionally quoted with shell-style escapes."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote = value[0]
            value = value[1:-1]
            if quote == '"':
                value = re.sub(r'\\([\\$"`])', r"\1", value)
        result[key] = value
    return result


MAX_FILE_BYTES = 1 << 20  # the files the lock reads are a few hundred bytes


def open_root(root: t.Any) -> _image_root.ImageRoot:
    try:
        return _image_root.ImageRoot(root)
    except _image_root.RootError as exc:
        raise ReleaseLockError(exc.msg) from exc


def host_path(image: _image_root.ImageRoot, relpath: str) -> str:
    """Where the file at relpath lies on this host: its directory resolved inside the image
    (links followed there, never out of it), for messages and the module's `files`."""
    directory, _sep, name = ("/" + relpath).rpartition("/")
    canonical = image.canonical(directory or "/", follow_last=True) or directory or "/"
    return image.host_path(canonical.rstrip("/") + "/" + name)


def _read_text(image: _image_root.ImageRoot, relpath: str) -> str | None:
    """Text of the regular file at /relpath (a final link followed inside the image), None when
    it does not exist. Not a regular file, too large or not UTF-8 -> ReleaseLockError."""
    path = "/" + relpath
    try:
        entry = image.stat(path)
    except _image_root.RootError as exc:
        raise ReleaseLockError(exc.msg) from exc
    if entry is None:
        return None
    if not stat.S_ISREG(entry.stat.st_mode):
        raise ReleaseLockError(f"root: {host_path(image, relpath)} is not a regular file")
    data = image.read_bytes(path, limit=MAX_FILE_BYTES + 1, follow_last=True)
    if data is None:
        raise ReleaseLockError(f"root: cannot read {host_path(image, relpath)}")
    if len(data) > MAX_FILE_BYTES:
        raise ReleaseLockError(f"root: {host_path(image, relpath)} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReleaseLockError(f"root: {host_path(image, relpath)} is not UTF-8 text (byte {exc.start})") from exc


class Identity(t.NamedTuple):
    generation: str | None  # AL2023, AL2, AL1 or None (not Amazon Linux)
    distribution: str  # human-readable, for messages
    installed_release: str | None  # the release the image is on now, where it can be read


def detect(root: str | _image_root.ImageRoot) -> Identity:
    image = root if isinstance(root, _image_root.ImageRoot) else open_root(root)
    root = image.root
    text = None
    for relpath in OS_RELEASE:
        text = _read_text(image, relpath)
        if text is not None:
            break
    if text is None:
        raise ReleaseLockError(
            f"root: {root} has no etc/os-release nor usr/lib/os-release: not the root of an operating system"
        )
    fields = parse_os_release(text)
    os_id = fields.get("ID", "")
    version_id = fields.get("VERSION_ID", "")
    pretty = fields.get("PRETTY_NAME") or " ".join(x for x in (fields.get("NAME", os_id), version_id) if x) or "unknown"
    if os_id != "amzn":
        return Identity(None, f"{pretty} (ID={os_id or 'unset'})", None)
    system_release = (_read_text(image, SYSTEM_RELEASE) or "").strip()
    if version_id == "2023":
        installed = None
        for source in (system_release, pretty):
            match = re.search(r"(?<![0-9A-Za-z.])(2023\.[0-9]+\.[0-9]{8})(?![0-9A-Za-z])", source)
            if match:
                installed = match.group(1)
                break
        return Identity(AL2023, pretty, installed)
    if version_id == "2":
        return Identity(AL2, pretty, None)
    if _AL1_RELEASE.fullmatch(version_id):
        return Identity(AL1, pretty, version_id)
    raise ReleaseLockError(
        f"root: {root} is Amazon Linux with VERSION_ID={version_id or 'unset'} in its os-release,"
        " which is none of the known generations (2018.03-style, 2, 2023)"
    )


# --------------------------------------------------------------------------------------------
# Minimal edits of each file
# --------------------------------------------------------------------------------------------

# (applied with fullmatch to one line without its line ending)
_SECTION = re.compile(r"[ \t]*\[([^\]]+)\][ \t]*")
_KEY = re.compile(r"(?P<key>[A-Za-z0-9_.-]+)(?P<sep>[ \t]*[=:][ \t]*)(?P<value>.*?)(?P<trail>[ \t]*)")


def _split_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def yum_releasever(text: str, path: str) -> str | None:
    """The releasever of the [main] section of a yum.conf, None when unset."""
    setting = _scan_yum(text, path)[1]
    return None if setting is None else setting[1].group("value")


def _scan_yum(text: str, path: str) -> tuple[tuple[int, int], tuple[int, re.Match[str]] | None]:
    """((start, end) line range of [main], (line index, _KEY match) of its releasever or None)."""
    lines = _split_lines(text)
    section = None
    main_start = main_end = None
    setting: tuple[int, re.Match[str]] | None = None
    for number, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        match = _SECTION.fullmatch(line)
        if match:
            if section == "main":
                main_end = number
            section = match.group(1).strip()
            if section == "main":
                if main_start is not None:
                    raise ReleaseLockError(f"{path}: malformed: a second [main] section at line {number + 1}")
                main_start = number + 1
            continue
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if line[:1] in (" ", "\t"):
            if section is None:
                raise ReleaseLockError(f"{path}: malformed: line {number + 1} is indented outside any section")
            continue  # continuation of the previous value
        if section is None:
            raise ReleaseLockError(
                f"{path}: malformed: line {number + 1} ({stripped[:40]!r}) comes before any [section] header"
            )
        key_match = _KEY.fullmatch(line)
        if not key_match:
            raise ReleaseLockError(f"{path}: malformed: line {number + 1} ({stripped[:40]!r}) is not key=value")
        if section == "main" and key_match.group("key") == "releasever":
            if setting is not None:
                raise ReleaseLockError(
                    f"{path}: malformed: releasever set twice in [main] (lines {setting[0] + 1} and {number + 1})"
                )
            setting = (number, key_match)
    if main_start is None:
        raise ReleaseLockError(f"{path}: malformed: no [main] section")
    if main_end is None and section == "main":
        main_end = len(lines)
    return (main_start, t.cast(int, main_end)), setting


def set_yum_releasever(text: str, release: str, path: str) -> str:
    """yum.conf text with releasever=release in [main], everything else kept byte for byte."""
    (start, end), setting = _scan_yum(text, path)
    lines = _split_lines(text)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    if setting is not None:
        index, match = setting
        if match.group("value") == release:
            return text
        ending = lines[index][len(lines[index].rstrip("\r\n")):] or newline
        lines[index] = match.group("key") + match.group("sep") + release + match.group("trail") + ending
        return "".join(lines)
    # Insert after the last setting of [main] (before its trailing blank lines and comments).
    insert_at = start
    for number in range(start, end):
        stripped = lines[number].strip()
        if stripped and not stripped.startswith(("#", ";")):
            insert_at = number + 1
    if insert_at > 0 and not lines[insert_at - 1].endswith("\n"):
        lines[insert_at - 1] += newline
    lines.insert(insert_at, f"releasever={release}{newline}")
    return "".join(lines)


def _yaml_scalar(value: str) -> str:
    if re.fullmatch(r"[a-z]+", value) and value not in ("null", "true", "false", "yes", "no", "on", "off", "y", "n"):
        return value
    return "'" + value.replace("'", "''") + "'"


def update_dropin(text: str | None, settings: dict[str, str]) -> str:
    """A cloud-config drop-in with top-level keys set to settings, other lines kept."""
    if text is None:
        text = _DROPIN_HEADER
    lines = _split_lines(text)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for key, value in settings.items():
        rendered = f"{key}: {_yaml_scalar(value)}\n"
        for number, line in enumerate(lines):
            if re.match(rf"{re.escape(key)}[ \t]*:", line):
                if _cloud_config.top_level_scalar(line, key) != value:
                    lines[number] = rendered
                break
        else:
            lines.append(rendered)
    return "".join(lines)


def later_dropin_conflicts(image: _image_root.ImageRoot, settings: dict[str, str]) -> list[str]:
    """Warnings for cloud.cfg.d files sorting after ours that set one of our keys differently."""
    names = [name for name in _cloud_config.dropin_names(image) if name > CLOUD_DROPIN_NAME]
    warnings = []
    for name in names:
        try:
            text = _read_text(image, f"{CLOUD_CFG_D}/{name}") or ""
        except ReleaseLockError:
            continue
        for key, value in settings.items():
            theirs = _cloud_config.top_level_scalar(text, key)
            if theirs is not None and theirs != value:
                warnings.append(
                    f"/{CLOUD_CFG_D}/{name} sorts after /{CLOUD_DROPIN} and sets {key}: {theirs},"
                    f" which overrides {key}: {value} at launch"
                )
    return warnings


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


class FileChange(t.NamedTuple):
    relpath: str  # inside the image, without the leading slash
    path: str  # on this host (its directory resolved inside the image), for the module's `files`
    before: str | None  # None: the file does not exist yet
    after: str


class Plan(t.NamedTuple):
    image: _image_root.ImageRoot
    generation: str | None
    distribution: str
    lockable: bool
    release_before: str | None
    release: str | None
    locked: bool
    changes: list[FileChange]
    warnings: list[str]
    msg: str

    @property
    def skipped(self) -> bool:
        return self.generation is None


def _change(image: _image_root.ImageRoot, relpath: str, before: str | None, after: str) -> list[FileChange]:
    if before == after:
        return []
    return [FileChange(relpath, host_path(image, relpath), before, after)]


@dataclasses.dataclass(frozen=True)
class LockRequest:
    """A checked ami_lock_release request: build_request held every rule before it was made."""

    root: str = "/"
    release: str = "source"
    ami_name: str | None = None
    launch_updates: str | None = None
    # what ami_name says: (the distribution it names, as release_from_ami_name reads it; its release); None without it
    from_name: tuple[str, str] | None = None


def build_request(params: dict) -> LockRequest:
    """Check every option of ami_lock_release and return the request; raises ReleaseLockError listing every
    problem (``errors`` in its result), before anything is read under root."""
    release = params.get("release", "source")
    ami_name = params.get("ami_name")
    launch_updates = params.get("launch_updates")
    errors = []
    release_error = _release_error(release)
    if release_error:
        errors.append(release_error)
    if launch_updates is not None and launch_updates not in LAUNCH_UPDATES:
        errors.append(f"launch_updates: must be one of {', '.join(LAUNCH_UPDATES)}, got {launch_updates!r}")
    from_name = None
    if ami_name is not None:
        parsed = release_from_ami_name(ami_name)
        if release_error is None and release != "source":
            errors.append(
                f"ami_name: only used with release=source (it names the release to lock to), got release={release}"
            )
        elif parsed is None:
            errors.append(
                f"ami_name: no release can be read from {_short(ami_name)} (expected a name such as"
                " al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64, amzn2-ami-hvm-2.0.20240131.0-x86_64-gp2"
                " or amzn-ami-hvm-2018.03.0.20231218.0-x86_64-gp2)"
            )
        else:
            from_name = (parsed[0], parsed[1])
    if errors:
        raise ReleaseLockError("; ".join(errors), {"errors": errors})
    return LockRequest(root=params.get("root", "/"), release=release, ami_name=ami_name,
                       launch_updates=launch_updates, from_name=from_name)


def _release_error(release: t.Any) -> str | None:
    if not isinstance(release, str) or not release.strip():
        return "release: must be 'source', 'latest' or a release string, got an empty value"
    if release != release.strip() or _has_control(release):
        return f"release: must not have leading or trailing spaces or control characters, got {_short(release)}"
    if not release.isascii():
        return f"release: must be ASCII (digits 0-9 and dots), got {_short(release)}"
    return None


def _short(value: t.Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def plan_request(request: LockRequest) -> Plan:
    """Work out every file change of a checked request; raise ReleaseLockError on an unusable root. Writes nothing."""
    root, release, launch_updates, from_name = request.root, request.release, request.launch_updates, request.from_name
    ami_name = request.ami_name
    image = open_root(root)
    identity = detect(image)
    generation = identity.generation
    if generation is None:
        return Plan(image, None, identity.distribution, False, None, None, False, [], [],
                    f"{identity.distribution} is not Amazon Linux: nothing to lock")
    title = GENERATION_TITLES[generation]
    if from_name is not None and generation_of_distro(from_name[0]) != generation:
        raise ReleaseLockError(
            f"ami_name: {ami_name!r} names a {from_name[0]} image but {root} holds {title}"
        )
    warnings: list[str] = []
    if generation == AL2:
        return _plan_al2(image, release, launch_updates, identity, warnings)

    # Which release to lock to.
    if release == "source":
        if from_name is not None:
            target = from_name[1]
            if identity.installed_release and identity.installed_release != target:
                warnings.append(
                    f"the image's installed release is {identity.installed_release} but the source AMI name"
                    f" {ami_name} says {target}; locking to {target}"
                )
        elif identity.installed_release:
            target = identity.installed_release
        else:
            raise ReleaseLockError(
                f"release: source: cannot read the installed release of this {title} root from"
                f" /{SYSTEM_RELEASE} or PRETTY_NAME in its os-release; give ami_name or an explicit release"
            )
    elif release == "latest":
        target = "latest"
    else:
        problem = validate_release(generation, release)
        if problem:
            raise ReleaseLockError(f"release: {_short(release)} is not valid on {title}: {problem}")
        target = release
        if identity.installed_release and release_key(target) < release_key(identity.installed_release):
            warnings.append(
                f"release {target} is older than the installed release {identity.installed_release}:"
                " packages newer than that repository snapshot stay installed"
            )
    locked = target != "latest"

    if generation == AL2023:
        if launch_updates not in (None, "none"):
            raise ReleaseLockError(
                f"launch_updates: {launch_updates} is not supported on Amazon Linux 2023, which installs no"
                " updates at launch and whose support for cloud-init's repo_upgrade is unconfirmed;"
                " leave launch_updates unset (or none), or update at launch through user-data"
            )
        if not image.is_dir("/etc/dnf"):
            raise ReleaseLockError(f"root: {root} has no etc/dnf directory: is dnf installed in this image?")
        before_text = _read_text(image, DNF_VARS_RELEASEVER)
        release_before = before_text.splitlines()[0].strip() if before_text and before_text.strip() else None
        if before_text is None or not before_text.strip():
            after_text = target + "\n"
        else:
            first, sep, rest = before_text.partition("\n")
            after_text = before_text if first.strip() == target else target + "\n" + rest if sep else target + "\n"
        changes = _change(image, DNF_VARS_RELEASEVER, before_text, after_text)
        if launch_updates == "none":
            warnings.append("launch_updates: none is what Amazon Linux 2023 does already; nothing written for it")
        msg = (f"{title} locked to release {target} through /{DNF_VARS_RELEASEVER}" if locked else
               f"{title} unlocked: dnf follows the latest release (/{DNF_VARS_RELEASEVER} = latest)")
        return Plan(image, generation, identity.distribution, True, release_before, target, locked, changes,
                    warnings, msg)

    # The Amazon Linux AMI (2018.03 and earlier).
    yum_text = _read_text(image, YUM_CONF)
    yum_path = host_path(image, YUM_CONF)
    if yum_text is None:
        raise ReleaseLockError(f"root: {yum_path} does not exist: every Amazon Linux AMI has one")
    release_before = yum_releasever(yum_text, yum_path)
    changes = _change(image, YUM_CONF, yum_text, set_yum_releasever(yum_text, target, yum_path))
    settings = {"repo_releasever": target}
    if launch_updates is not None:
        settings["repo_upgrade"] = launch_updates
    changes += _plan_dropin(image, settings)
    warnings += later_dropin_conflicts(image, settings)
    msg = (f"{title} locked to release {target}: releasever in /{YUM_CONF} and repo_releasever in /{CLOUD_DROPIN}"
           if locked else
           f"{title} unlocked: releasever=latest in /{YUM_CONF} and repo_releasever: latest in /{CLOUD_DROPIN}")
    return Plan(image, generation, identity.distribution, True, release_before, target, locked, changes,
                warnings, msg)


def _plan_dropin(image: _image_root.ImageRoot, settings: dict[str, str]) -> list[FileChange]:
    if not image.is_dir("/etc/cloud"):
        raise ReleaseLockError(f"root: {image.root} has no etc/cloud directory: is cloud-init installed in this image?")
    before = _read_text(image, CLOUD_DROPIN)
    return _change(image, CLOUD_DROPIN, before, update_dropin(before, settings))


def _plan_al2(image: _image_root.ImageRoot, release: str, launch_updates: str | None, identity: Identity,
              warnings: list[str]) -> Plan:
    not_versioned = (
        "Amazon Linux 2 repositories are not versioned by release, so there is no release lock"
        " (hold packages with yum versionlock or serve a private mirror instead)"
    )
    if release != "source":
        shown = release if len(release) <= 80 else _short(release)  # checked: ASCII, no control characters
        raise ReleaseLockError(f"release: {shown} is not possible on Amazon Linux 2: {not_versioned}")
    changes: list[FileChange] = []
    msg = not_versioned + ": nothing was locked"
    if launch_updates is not None:
        settings = {"repo_upgrade": launch_updates}
        changes = _plan_dropin(image, settings)
        warnings += later_dropin_conflicts(image, settings)
        msg += f"; launch updates set to {launch_updates} through repo_upgrade in /{CLOUD_DROPIN}"
    return Plan(image, AL2, identity.distribution, False, None, None, False, changes, warnings, msg)


# --------------------------------------------------------------------------------------------
# Applying a plan
# --------------------------------------------------------------------------------------------


def diff_of(plan: Plan) -> list[dict[str, str]]:
    return [
        {
            "before_header": "/" + change.relpath if change.before is not None else "/dev/null",
            "after_header": "/" + change.relpath,
            "before": change.before or "",
            "after": change.after,
        }
        for change in plan.changes
    ]


def apply_plan(plan: Plan) -> list[str]:
    """Write every change through the root-confined layer: atomically (a temporary file beside
    the target, then a rename), keeping an existing file's mode, owner and SELinux label, a new
    file 0644 and new directories 0755, and replacing a link at the path rather than writing
    through it. Returns the host paths written; a failed write raises ReleaseLockError."""
    written = []
    for change in plan.changes:
        try:
            plan.image.write_text("/" + change.relpath, change.after)
        except OSError as exc:
            raise ReleaseLockError(f"root: writing {exc.filename or plan.image.root} failed: {exc.strerror}") from exc
        written.append(change.path)
    return written
