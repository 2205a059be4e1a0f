# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The package inventory of an image root: what its package manager says is installed.
#
# - Debian and Ubuntu: the dpkg status database (var/lib/dpkg/status) is read as a file through the
#   root-confined layer (_image_root), nothing of the image is executed and no chroot is needed.
#   A package is installed when the third word of its Status field is "installed" (dpkg-query's
#   "ii" and "hi"); half-installed, unpacked, config-files and not-installed entries are left out.
# - Amazon Linux and other RPM roots: the rpm database is in a format only rpm reads, so the
#   host's `rpm --root <root> -qa` reads it (the image's own rpm is never run); a host without
#   rpm fails with a message naming the distribution and what is missing.
#
# Each package carries its package URL (purl, https://github.com/package-url/purl-spec):
# pkg:deb/<debian|ubuntu>/<name>@<version>?arch=<arch>&distro=<codename>, or
# pkg:rpm/<amazon|...>/<name>@<version>-<release>?arch=<arch>&epoch=<epoch>&distro=<id>-<version_id>.

from __future__ import annotations

import dataclasses
import re
import typing as t
from urllib.parse import quote

from ansible_collections.bakery.ami.plugins.module_utils import _image_root
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

DPKG_STATUS = "/var/lib/dpkg/status"
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
RPM_DATABASES = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
# A status database of a large server image is a few MiB; one past this is not read.
MAX_STATUS_BYTES = 256 * 1024 * 1024
MAX_OS_RELEASE_BYTES = 64 * 1024
PATH_MAX = 4095
# os-release ID -> purl namespace (the purl spec's names for the vendors)
NAMESPACES = {"debian": "debian", "ubuntu": "ubuntu", "amzn": "amazon", "fedora": "fedora", "centos": "centos",
              "rhel": "redhat", "rocky": "rocky", "almalinux": "almalinux", "ol": "oracle"}
# The fields of one package, in the order rpm prints them (tab-separated, one package a line).
RPM_QUERYFORMAT = "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"
_FIELD = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*):(.*)\Z")
_SOURCE = re.compile(r"(\S+)(?:\s+\((\S+)\))?\Z")
_SOURCE_RPM = re.compile(r"(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm\Z")


class PackagesError(BakeryError):
    """A root whose packages cannot be read; the message names the option or the file."""


Runner = t.Callable[[list], t.Tuple[int, str, str]]


# ---------------------------------------------------------------------------------------------
# dpkg


def parse_dpkg_status(text: str) -> list:
    """The paragraphs of a dpkg status file as dicts of field -> value (field names as written;
    a continuation line, one that starts with a space or a tab, joins its field's value after a
    newline)."""
    paragraphs: list = []
    current: dict = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, last = {}, None
            continue
        if line[0] in " \t":
            if last is not None:
                current[last] += "\n" + line[1:]
            continue
        match = _FIELD.match(line)
        if match is None:
            continue
        last = match.group(1)
        current[last] = match.group(2).strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def installed(paragraph: t.Mapping) -> bool:
    """Whether dpkg counts the package as installed: its Status is `<want> <flag> installed`."""
    words = str(paragraph.get("Status", "")).split()
    return len(words) == 3 and words[2] == "installed"


def dpkg_packages(text: str, namespace: str = "debian", codename: str = "") -> list:
    """The installed packages of a dpkg status file, sorted by name and architecture."""
    packages = []
    for paragraph in parse_dpkg_status(text):
        if not installed(paragraph) or not paragraph.get("Package") or not paragraph.get("Version"):
            continue
        name, version = paragraph["Package"], paragraph["Version"]
        arch = paragraph.get("Architecture", "")
        source_name, source_version = name, version
        match = _SOURCE.match(paragraph.get("Source", ""))
        if match:
            source_name = match.group(1)
            source_version = match.group(2) or version
        packages.append({
            "name": name,
            "version": version,
            "arch": arch,
            "source": source_name,
            "source_version": source_version,
            "purl": purl("deb", namespace, name, version, arch=arch, distro=codename),
        })
    return sorted(packages, key=lambda p: (p["name"], p["arch"], p["version"]))


# ---------------------------------------------------------------------------------------------
# rpm


def rpm_packages(output: str, namespace: str = "amazon", distro: str = "") -> list:
    """The packages of `rpm -qa --queryformat RPM_QUERYFORMAT` output, sorted (gpg-pubkey
    entries, which are keys, not packages, left out)."""
    packages = []
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) != 6 or fields[0] == "gpg-pubkey":
            continue
        name, epoch, version, release, arch, source_rpm = fields
        epoch = "" if epoch in ("", "0", "(none)") else epoch
        full = "%s-%s" % (version, release)
        match = _SOURCE_RPM.match(source_rpm)
        source, source_version = (match.group(1), "%s-%s" % (match.group(2), match.group(3))) if match else (name, full)
        packages.append({
            "name": name,
            "version": ("%s:%s" % (epoch, full)) if epoch else full,
            "arch": arch,
            "source": source,
            "source_version": source_version,
            "purl": purl("rpm", namespace, name, full, arch=arch, epoch=epoch, distro=distro),
        })
    return sorted(packages, key=lambda p: (p["name"], p["arch"], p["version"]))


# ---------------------------------------------------------------------------------------------
# purl


def _encode(text: str, safe: str = "") -> str:
    return quote(text, safe=safe)


def purl(kind: str, namespace: str, name: str, version: str, **qualifiers: str) -> str:
    """A package URL: pkg:<kind>/<namespace>/<name>@<version>?<qualifiers sorted, empty ones left out>."""
    text = "pkg:%s/%s/%s@%s" % (kind, _encode(namespace), _encode(name), _encode(version, safe=":"))
    given = sorted((key, value) for key, value in qualifiers.items() if value)
    if given:
        text += "?" + "&".join("%s=%s" % (key, _encode(value)) for key, value in given)
    return text


# ---------------------------------------------------------------------------------------------
# The root


def os_release(image: _image_root.ImageRoot) -> dict:
    """os-release(5) of the root, {} when it has none."""
    for path in OS_RELEASE:
        text = image.read_text(path, MAX_OS_RELEASE_BYTES, follow_last=True)
        if text is None:
            continue
        values = {}
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                    value = value[1:-1]
                values[key] = value
        return values
    return {}


@dataclasses.dataclass(frozen=True)
class PackagesRequest:
    """A checked image_packages request: build_request held every rule before it was made."""

    root: str  # as given (a message about a file that could not be read quotes it)
    image: _image_root.ImageRoot  # the root, checked
    rpm_path: t.Optional[str] = None  # the host's rpm (None when it has none)


def build_request(params: t.Mapping[str, t.Any], rpm_path: t.Optional[str] = None) -> PackagesRequest:
    """Check the options of image_packages once (root: a short absolute path to a directory) and
    return the request; raises PackagesError or RootError naming the option and the rule."""
    root = params.get("root", "/")
    if isinstance(root, str) and len(root) > PATH_MAX:
        raise PackagesError("root: must be a path of at most %d characters, got %d (%r...)" % (PATH_MAX, len(root), root[:40]))
    return PackagesRequest(root=root, image=_image_root.ImageRoot(root, "root"), rpm_path=rpm_path)


def run_inventory(request: PackagesRequest, run: t.Optional[Runner] = None) -> dict:
    """The package inventory of the request's image: {root, distro, distro_version, codename, format,
    packages, count}. run(argv) -> (rc, stdout, stderr) executes rpm on the host for RPM roots."""
    try:
        return _inventory(request.image, run, request.rpm_path)
    except OSError as exc:
        raise PackagesError("root: cannot read the package database under %s: %s"
                            % (request.root, exc.strerror or exc)) from None


def inventory(root: t.Any, run: t.Optional[Runner] = None, rpm_path: t.Optional[str] = None) -> dict:
    """build_request and run_inventory in one, for callers holding plain values."""
    return run_inventory(build_request({"root": root}, rpm_path), run)


def _inventory(image: _image_root.ImageRoot, run: t.Optional[Runner], rpm_path: t.Optional[str]) -> dict:
    release = os_release(image)
    ident = release.get("ID", "").lower()
    version_id = release.get("VERSION_ID", "")
    codename = release.get("VERSION_CODENAME", "")
    shown = release.get("PRETTY_NAME") or ident or "the system"
    result = {"root": image.root, "distro": ident, "distro_version": version_id, "codename": codename}
    # a link is resolved inside the root, as a chroot sees it
    status = image.read_bytes(DPKG_STATUS, MAX_STATUS_BYTES + 1, follow_last=True)
    if status is not None:
        if len(status) > MAX_STATUS_BYTES:
            raise PackagesError("root: %s is larger than %d MiB; not a dpkg status database this module reads"
                                % (image.host_path(DPKG_STATUS), MAX_STATUS_BYTES >> 20))
        namespace = NAMESPACES.get(ident, ident or "debian")
        packages = dpkg_packages(status.decode("utf-8", errors="replace"), namespace, codename)
        return dict(result, format="deb", packages=packages, count=len(packages))
    if any(image.is_dir(path) for path in RPM_DATABASES):
        if run is None or not rpm_path:
            raise PackagesError("root: %s (%s) keeps its packages in an rpm database, which only rpm reads; this host "
                                "has no rpm command: install rpm on the host that runs the task (the image's own rpm "
                                "is not run)" % (image.root, shown))
        argv = [rpm_path, "--query", "--all", "--queryformat", RPM_QUERYFORMAT.replace("\\t", "\t").replace("\\n", "\n")]
        if image.root != "/":
            argv[1:1] = ["--root", image.root]
        rc, out, err = run(argv)
        if rc != 0:
            raise PackagesError("root: %s (%s): rpm could not read its database (rc %d): %s"
                                % (image.root, shown, rc, (err or out).strip()[:400]))
        namespace = NAMESPACES.get(ident, ident or "rpm")
        distro = "%s-%s" % (ident, version_id) if ident and version_id else ident
        packages = rpm_packages(out, namespace, distro)
        return dict(result, format="rpm", packages=packages, count=len(packages))
    raise PackagesError("root: %s (%s) has neither a dpkg status database (%s) nor an rpm database (%s); "
                        "not the root of a Debian, Ubuntu or RPM-based system"
                        % (image.root, shown, DPKG_STATUS, " or ".join(RPM_DATABASES)))
