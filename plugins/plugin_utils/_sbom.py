# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The image's software bill of materials: a CycloneDX 1.6 JSON document made on the controller
# with cyclonedx-python-lib from the package inventory bakery.ami.image_packages read on the
# builder. The metadata component is the image (its name and version), each package one component
# with its package URL (made again here with packageurl-python, from the package's fields).
#
# The document is deterministic: packages sorted, the timestamp the bake's start, and a serial
# number derived (UUID 5) from the image name, version, that timestamp and the package list, so the
# same inputs give the same bytes and the sha256 recorded in the report and in the image's tag
# `bakery:sbom-sha256` is the file's own. bake_outputs recognizes a file it wrote by the property
# MARKER_PROPERTY in the document's metadata (CycloneDX allows no other top-level key).

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import json
import sys
import typing as t
import uuid

from ansible_collections.bakery.ami.plugins.module_utils import _time
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

# cyclonedx-python-lib and packageurl-python are imported when a document is made, not with this
# file: the plan only checks that they are installed (importing the library takes about 0.5 s, its
# schema validator, which the tests use, seconds more).
LIBRARIES = ("cyclonedx", "packageurl")

SPEC_VERSION = "1.6"
MARKER_PROPERTY = "bakery:outputs"
MARKER_VALUE = "sbom"
# the namespace of the serial numbers (UUID 5 of the image and its packages)
SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:bakery.ami:sbom")
REQUIREMENT = "cyclonedx-python-lib>=9"


class SbomError(BakeryError):
    """An SBOM that cannot be made; the message says why and what to do."""


def require_library(option: str = "bake_sbom") -> None:
    """Raise unless cyclonedx-python-lib (and packageurl-python, which it brings) is installed in
    the controller's Python."""
    missing = [name for name in LIBRARIES if importlib.util.find_spec(name) is None]
    if missing:
        raise SbomError("%s: the SBOM is made on the controller with cyclonedx-python-lib, which is not installed in "
                        "the controller's Python (%s, no module %s): install %s (see requirements.txt), or set %s: false"
                        % (option, sys.executable, " or ".join(missing), REQUIREMENT, option))


def _purl(package: t.Mapping, kind: str, namespace: str, distro: str) -> t.Any:
    from packageurl import PackageURL  # pylint: disable=import-outside-toplevel

    version = str(package["version"])
    qualifiers = {"arch": str(package.get("arch") or "")}
    if kind == "rpm" and ":" in version:
        epoch, version = version.split(":", 1)
        qualifiers["epoch"] = epoch
    qualifiers["distro"] = distro
    return PackageURL(type=kind, namespace=namespace, name=str(package["name"]), version=version,
                      qualifiers={k: v for k, v in qualifiers.items() if v})


def _check_inventory(inventory: t.Any) -> list:
    if not isinstance(inventory, t.Mapping) or inventory.get("format") not in ("deb", "rpm") or \
            not isinstance(inventory.get("packages"), list):
        raise SbomError("packages: must be the result of bakery.ami.image_packages (format deb or rpm and a list of "
                        "packages), got %s" % type(inventory).__name__)
    for package in inventory["packages"]:
        if not isinstance(package, t.Mapping) or not package.get("name") or not package.get("version"):
            raise SbomError("packages: every package needs a name and a version, got %r" % (package,))
    return sorted(inventory["packages"], key=lambda p: (str(p["name"]), str(p.get("arch") or ""), str(p["version"])))


def serial_number(name: str, version: str, timestamp: str, packages: list) -> uuid.UUID:
    """UUID 5 of the image, the time and its packages: the same inputs give the same serial number."""
    digest = hashlib.sha256()
    for part in [name, version, timestamp] + ["%s\t%s\t%s" % (p["name"], p.get("arch") or "", p["version"])
                                              for p in packages]:
        digest.update(part.encode("utf-8") + b"\n")
    return uuid.uuid5(SERIAL_NAMESPACE, digest.hexdigest())


def _timestamp(value: str) -> datetime.datetime:
    moment = _time.parse(value)  # the collection's one ISO-8601 parser
    if moment is None:
        raise SbomError("timestamp: must be an ISO 8601 time such as 2026-01-02T03:04:05Z, got %r" % (value,))
    return moment


def document(inventory: t.Mapping, name: str, version: str, timestamp: str) -> str:
    """The CycloneDX 1.6 JSON text of the image `name` at `version` holding the packages of
    `inventory` (bakery.ami.image_packages' result); deterministic for the same inputs."""
    require_library()
    # pylint: disable=import-outside-toplevel
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    packages = _check_inventory(inventory)
    kind = inventory["format"]
    ident = str(inventory.get("distro") or "")
    namespace = {"amzn": "amazon", "rhel": "redhat", "ol": "oracle"}.get(ident, ident or ("debian" if kind == "deb" else "rpm"))
    if kind == "deb":
        distro = str(inventory.get("codename") or "")
    else:
        distro = "%s-%s" % (ident, inventory.get("distro_version")) if ident and inventory.get("distro_version") else ident
    moment = _timestamp(timestamp)
    bom = Bom(serial_number=serial_number(name, version, moment.isoformat(), packages))
    bom.metadata.timestamp = moment
    image = Component(name=name, version=version, type=ComponentType.OPERATING_SYSTEM, bom_ref="image",
                      description="machine image baked by bakery.ami (%s %s)" % (
                          ident or kind, inventory.get("distro_version") or inventory.get("codename") or ""))
    bom.metadata.component = image
    bom.metadata.properties.add(Property(name=MARKER_PROPERTY, value=MARKER_VALUE))
    components = []
    seen = set()
    for package in packages:
        purl = _purl(package, kind, namespace, distro)
        ref = purl.to_string()
        if ref in seen:  # the same package listed twice (a damaged database): one component
            continue
        seen.add(ref)
        component = Component(name=str(package["name"]), version=str(package["version"]), type=ComponentType.LIBRARY,
                              purl=purl, bom_ref=ref)
        source = package.get("source")
        if source and source != package["name"]:
            component.properties.add(Property(name="bakery:source-package", value="%s@%s" % (
                source, package.get("source_version") or package["version"])))
        components.append(component)
        bom.components.add(component)
    bom.register_dependency(image, components)
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    # keys sorted, so the bytes do not depend on the library's field order
    return json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def validate(text: str) -> t.Optional[str]:
    """None when text is valid CycloneDX 1.6 JSON, otherwise the schema's complaint."""
    require_library()
    # pylint: disable=import-outside-toplevel
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is None:
        return None
    return getattr(getattr(error, "data", None), "message", None) or str(error).splitlines()[0]


def is_sbom(parsed: t.Any) -> bool:
    """Whether parsed JSON is an SBOM bake_outputs wrote (it carries the marker property)."""
    if not isinstance(parsed, dict) or parsed.get("bomFormat") != "CycloneDX":
        return False
    properties = (parsed.get("metadata") or {}).get("properties") if isinstance(parsed.get("metadata"), dict) else None
    return isinstance(properties, list) and {"name": MARKER_PROPERTY, "value": MARKER_VALUE} in properties


def make(inventory: t.Mapping, name: str, version: str, timestamp: str, path: str) -> dict:
    """{path, sha256, components, spec_version, document}: the SBOM of the image, ready for
    bake_outputs to write at path and for its sha256 to tag the image. (Not validated against the
    schema here, which costs seconds: the tests validate what it makes.)"""
    text = document(inventory, name, version, timestamp)
    return {"path": path, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "components": len(json.loads(text).get("components", [])), "spec_version": SPEC_VERSION,
            "document": text}
