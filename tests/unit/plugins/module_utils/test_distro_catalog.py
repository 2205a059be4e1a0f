# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The distro catalog: shape, owners, name patterns against real image names, SSM paths, and
agreement with the release parser for each distribution family."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ansible_collections.bakery.ami.plugins.module_utils._distro_catalog import CATALOG
from ansible_collections.bakery.ami.plugins.module_utils._find import glob_match
from ansible_collections.bakery.ami.plugins.module_utils._release import release_from_ami_name

REQUIRED = ["al2023", "al2023-minimal", "al2", "amzn", "ubuntu-24.04", "ubuntu-22.04", "ubuntu-20.04",
            "debian-12", "debian-11", "rhel-9", "rhel-8"]

# One published name per distro and architecture, with the release the parser must read.
SAMPLES = {
    ("al2023", "x86_64"): ("al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64", "2023.6.20241010"),
    ("al2023", "arm64"): ("al2023-ami-2023.6.20241010.0-kernel-6.1-arm64", "2023.6.20241010"),
    ("al2023-minimal", "x86_64"): ("al2023-ami-minimal-2023.6.20241010.0-kernel-6.1-x86_64", "2023.6.20241010"),
    ("al2023-minimal", "arm64"): ("al2023-ami-minimal-2023.6.20241010.0-kernel-6.1-arm64", "2023.6.20241010"),
    ("al2", "x86_64"): ("amzn2-ami-hvm-2.0.20240131.0-x86_64-gp2", "2.0.20240131"),
    ("al2", "arm64"): ("amzn2-ami-hvm-2.0.20240131.0-arm64-gp2", "2.0.20240131"),
    ("amzn", "x86_64"): ("amzn-ami-hvm-2018.03.0.20231218.0-x86_64-gp2", "2018.03"),
    ("ubuntu-24.04", "x86_64"): ("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240801", "20240801"),
    ("ubuntu-24.04", "arm64"): ("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20240801", "20240801"),
    ("ubuntu-22.04", "x86_64"): ("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240701", "20240701"),
    ("ubuntu-22.04", "arm64"): ("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-20240701", "20240701"),
    ("ubuntu-20.04", "x86_64"): ("ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-20240710", "20240710"),
    ("ubuntu-20.04", "arm64"): ("ubuntu/images/hvm-ssd/ubuntu-focal-20.04-arm64-server-20240710", "20240710"),
    ("debian-12", "x86_64"): ("debian-12-amd64-20240717-1811", "20240717-1811"),
    ("debian-12", "arm64"): ("debian-12-arm64-20240717-1811", "20240717-1811"),
    ("debian-11", "x86_64"): ("debian-11-amd64-20240717-1811", "20240717-1811"),
    ("debian-11", "arm64"): ("debian-11-arm64-20240717-1811", "20240717-1811"),
    ("rhel-9", "x86_64"): ("RHEL-9.4.0_HVM-20240423-x86_64-62-Hourly2-GP3", "9.4"),
    ("rhel-9", "arm64"): ("RHEL-9.4.0_HVM-20240423-arm64-62-Hourly2-GP3", "9.4"),
    ("rhel-8", "x86_64"): ("RHEL-8.10.0_HVM-20240327-x86_64-2-Hourly2-GP3", "8.10"),
    ("rhel-8", "arm64"): ("RHEL-8.10.0_HVM-20240327-arm64-2-Hourly2-GP3", "8.10"),
}

FAMILIES = {"amazon-linux": "Amazon Linux", "ubuntu": "Ubuntu", "debian": "Debian", "rhel": "Red Hat"}


def test_every_required_distro_is_there():
    assert sorted(CATALOG) == sorted(REQUIRED)


@pytest.mark.parametrize("distro", sorted(CATALOG))
def test_entry_shape(distro):
    entry = CATALOG[distro]
    assert set(entry) <= {"title", "owners", "names", "ssm", "family"}
    assert entry["title"] and entry["family"] in FAMILIES
    assert entry["owners"] and all(re.fullmatch(r"[0-9]{12}", owner) for owner in entry["owners"])
    assert entry["names"] and set(entry["names"]) <= {"x86_64", "arm64", "i386"}
    assert set(entry.get("ssm", {})) <= set(entry["names"])
    for path in entry.get("ssm", {}).values():
        assert path.startswith("/aws/service/")


@pytest.mark.parametrize("distro, owner", [
    ("al2023", "137112412989"), ("al2", "137112412989"), ("amzn", "137112412989"),
    ("ubuntu-24.04", "099720109477"), ("debian-12", "136693071363"), ("rhel-9", "309956199498"),
])
def test_publisher_owner_ids(distro, owner):
    assert CATALOG[distro]["owners"] == [owner]


@pytest.mark.parametrize("distro, arch", sorted(SAMPLES))
def test_pattern_matches_the_published_name_and_the_parser_agrees(distro, arch):
    name, release = SAMPLES[(distro, arch)]
    assert glob_match(CATALOG[distro]["names"][arch], name)
    assert release_from_ami_name(name) == (distro, release)


def test_every_pattern_has_a_sample():
    assert {(d, a) for d, entry in CATALOG.items() for a in entry["names"]} == set(SAMPLES)


@pytest.mark.parametrize("distro, arch", sorted(SAMPLES))
def test_pattern_matches_no_other_distro_or_architecture(distro, arch):
    pattern = CATALOG[distro]["names"][arch]
    for (other, other_arch), (name, _release) in SAMPLES.items():
        if (other, other_arch) != (distro, arch):
            assert not glob_match(pattern, name), (pattern, name)


@pytest.mark.parametrize("distro, arch, path", [
    ("al2023", "x86_64", "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"),
    ("al2023-minimal", "arm64", "/aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-arm64"),
    ("al2", "x86_64", "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"),
    ("ubuntu-24.04", "x86_64", "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"),
    ("ubuntu-22.04", "x86_64", "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id"),
    ("debian-12", "arm64", "/aws/service/debian/release/12/latest/arm64"),
])
def test_ssm_paths(distro, arch, path):
    assert CATALOG[distro]["ssm"][arch] == path


def test_rhel_has_no_public_ssm_parameter():
    assert "ssm" not in CATALOG["rhel-9"] and "ssm" not in CATALOG["rhel-8"]


def test_module_documentation_lists_every_distro():
    source = (Path(__file__).resolve().parents[4] / "plugins" / "modules" / "ami_find.py").read_text()
    documentation = source.split('DOCUMENTATION = r"""')[1].split('"""')[0]
    for distro in CATALOG:
        assert f"V({distro})" in documentation


def test_catalog_is_plain_data():
    # AnsiballZ ships the catalog as Python source: keep it literals only.
    allowed = (str, list, dict)

    def walk(value):
        assert isinstance(value, allowed), value
        if isinstance(value, dict):
            for key, item in value.items():
                assert isinstance(key, str)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(CATALOG)
