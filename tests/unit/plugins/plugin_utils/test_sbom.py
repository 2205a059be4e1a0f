# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image's CycloneDX SBOM: valid against the 1.6 schema, one component per package, deterministic."""
from __future__ import annotations

import hashlib
import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.bakery.ami.plugins.filter.sbom import sbom as sbom_filter
from ansible_collections.bakery.ami.plugins.module_utils import _packages
from ansible_collections.bakery.ami.plugins.plugin_utils import _sbom

from tests.unit.plugins.module_utils.test_packages import DEBIAN, RPM_OUTPUT, STATUS, tree

pytest.importorskip("cyclonedx")
WHEN = "2026-12-01T12:00:00Z"


@pytest.fixture
def debian(tmp_path):
    return _packages.inventory(tree(tmp_path, dict(DEBIAN, **{"/var/lib/dpkg/status": STATUS})))


def test_valid_cyclonedx_with_one_component_per_package(debian):
    made = _sbom.make(debian, "demo-base-1-x86_64", "1", WHEN, "/out/demo-base-1-x86_64.cdx.json")
    assert _sbom.validate(made["document"]) is None
    document = json.loads(made["document"])
    assert document["specVersion"] == "1.6" and document["bomFormat"] == "CycloneDX"
    assert document["metadata"]["component"]["name"] == "demo-base-1-x86_64"
    assert document["metadata"]["component"]["version"] == "1"
    assert document["metadata"]["timestamp"] == "2026-12-01T12:00:00+00:00"
    assert len(document["components"]) == debian["count"] == made["components"] == 3
    assert [c["purl"] for c in document["components"]] == [p["purl"] for p in debian["packages"]]
    assert made["sha256"] == hashlib.sha256(made["document"].encode("utf-8")).hexdigest()
    assert _sbom.is_sbom(document)
    source = [c for c in document["components"] if c["name"] == "bsdutils"][0]["properties"]
    assert source == [{"name": "bakery:source-package", "value": "util-linux@2.38.1-5"}]
    # the image depends on every package
    image = [d for d in document["dependencies"] if d["ref"] == "image"][0]
    assert len(image["dependsOn"]) == 3


def test_the_same_inputs_give_the_same_bytes_and_other_packages_another_serial(debian):
    first = _sbom.make(debian, "demo", "1", WHEN, "")
    again = _sbom.make(dict(debian, packages=list(reversed(debian["packages"]))), "demo", "1", WHEN, "")
    assert first["document"] == again["document"] and first["sha256"] == again["sha256"]
    fewer = _sbom.make(dict(debian, packages=debian["packages"][1:]), "demo", "1", WHEN, "")
    assert json.loads(fewer["document"])["serialNumber"] != json.loads(first["document"])["serialNumber"]


def test_an_rpm_inventory_validates_with_epoch_in_the_purl():
    packages = _packages.rpm_packages(RPM_OUTPUT, "amazon", "amzn-2023")
    inventory = {"format": "rpm", "distro": "amzn", "distro_version": "2023", "codename": "", "packages": packages}
    made = _sbom.make(inventory, "al2023-base-1", "1", WHEN, "")
    assert _sbom.validate(made["document"]) is None
    purls = [c["purl"] for c in json.loads(made["document"])["components"]]
    assert purls == [p["purl"] for p in packages]


def test_the_validator_catches_a_broken_document(debian):
    """The schema check can fail: a component without its name is refused."""
    document = json.loads(_sbom.make(debian, "demo", "1", WHEN, "")["document"])
    del document["components"][0]["name"]
    assert "'name' is a required property" in _sbom.validate(json.dumps(document))


@pytest.mark.parametrize("inventory, message", [
    ({}, "packages: must be the result of bakery.ami.image_packages"),
    ({"format": "deb", "packages": [{"name": "x"}]}, "every package needs a name and a version"),
    ({"format": "msi", "packages": []}, "format deb or rpm"),
])
def test_bad_inventories_are_refused(inventory, message):
    with pytest.raises(_sbom.SbomError, match=message):
        _sbom.make(inventory, "demo", "1", WHEN, "")
    with pytest.raises(AnsibleFilterError, match="^sbom: "):
        sbom_filter(inventory, name="demo", version="1", timestamp=WHEN)


def test_a_missing_library_is_named_with_what_to_do(monkeypatch):
    monkeypatch.setattr(_sbom, "LIBRARIES", ("cyclonedx_not_installed_here",))
    with pytest.raises(_sbom.SbomError, match=r"^bake_sbom: .*cyclonedx-python-lib.*or set bake_sbom: false"):
        _sbom.require_library()


def test_bad_timestamp_is_refused(debian):
    with pytest.raises(_sbom.SbomError, match="^timestamp: must be an ISO 8601 time"):
        _sbom.make(debian, "demo", "1", "yesterday", "")
