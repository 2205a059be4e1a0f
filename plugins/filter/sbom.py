# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: sbom
author:
  - bakery.ami contributors (@bakery-ami)
version_added: 0.1.0
short_description: The CycloneDX 1.6 SBOM of an image from the packages image_packages listed
description:
  - Makes the software bill of materials of an image on the controller with cyclonedx-python-lib, from the
    result of M(bakery.ami.image_packages) - the image (its name and version) as the metadata component,
    one component per package with its package URL - as CycloneDX 1.6 JSON text.
  - The text is deterministic (packages sorted, keys sorted, the given timestamp, a serial number derived
    from the image, the timestamp and the packages), so its sha256 names the file written from it.
  - The bake (C(bake_sbom)) records the result in C(bake_results.sbom); M(bakery.ami.bake_outputs) writes
    its C(document) at its C(path), and the image is tagged C(bakery:sbom-sha256) with its C(sha256).
requirements:
  - cyclonedx-python-lib on the controller
options:
  _input:
    description: The registered result of M(bakery.ami.image_packages).
    type: dict
    required: true
  name:
    description: The image's name.
    type: str
    required: true
  version:
    description: The image's version.
    type: str
    required: true
  timestamp:
    description: When the SBOM describes the image, in ISO 8601 (the bake's start).
    type: str
    required: true
  path:
    description: Where the SBOM will be written (returned as is).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: List the builder's packages
  bakery.ami.image_packages:
  register: packages

- name: Make the SBOM
  ansible.builtin.set_fact:
    image_sbom: >-
      {{ packages | bakery.ami.sbom(name='web-1.0', version='1.0', timestamp='2026-12-01T12:00:00Z',
                                    path='/srv/bakes/web-1.0.cdx.json') }}
"""

RETURN = r"""
_value:
  description: The SBOM and what the report says of it.
  type: dict
  contains:
    path:
      description: O(path).
      type: str
    sha256:
      description: The sha256 of RV(_value.document) encoded as UTF-8, the bytes written.
      type: str
    components:
      description: The number of package components.
      type: int
    spec_version:
      description: The CycloneDX version, V(1.6).
      type: str
    document:
      description: The CycloneDX JSON text.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.bakery.ami.plugins.plugin_utils import _sbom


def sbom(packages, name="", version="", timestamp="", path="") -> dict:
    if not name or not version or not timestamp:
        raise AnsibleFilterError("sbom: name, version and timestamp are required")
    try:
        return _sbom.make(packages, str(name), str(version), str(timestamp), str(path))
    except _sbom.SbomError as exc:
        raise AnsibleFilterError("sbom: %s" % exc.msg) from None


class FilterModule:
    def filters(self):
        return {"sbom": sbom}
