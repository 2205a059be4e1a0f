# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_find by distro against publishers' catalogs: an endpoint of its own, loaded with images
owned by Amazon, Canonical, Debian and Red Hat (and look-alikes published by someone else).

The shared endpoint of the target tests has no such owners, so this test starts its own with a
catalog file (moto's amis.json format) and runs a playbook against it.
"""
from __future__ import annotations

import json

import pytest

AMAZON, CANONICAL, DEBIAN, RED_HAT, STRANGER = "137112412989", "099720109477", "136693071363", "309956199498", \
    "444455556666"

_IMAGES = [
    # (id, owner, alias, name, arch, created, extra)
    ("ami-0a000000000000001", AMAZON, "amazon", "al2023-ami-2023.5.20240624.0-kernel-6.1-x86_64", "x86_64",
     "2024-06-24T20:00:00.000Z", {}),
    ("ami-0a000000000000002", AMAZON, "amazon", "al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64", "x86_64",
     "2024-10-10T20:00:00.000Z", {}),
    ("ami-0a000000000000003", AMAZON, "amazon", "al2023-ami-2023.6.20241010.0-kernel-6.1-arm64", "arm64",
     "2024-10-10T20:00:00.000Z", {}),
    ("ami-0a000000000000004", AMAZON, "amazon", "al2023-ami-minimal-2023.6.20241010.0-kernel-6.1-x86_64", "x86_64",
     "2024-10-10T21:00:00.000Z", {}),
    ("ami-0a000000000000005", AMAZON, "amazon", "amzn2-ami-hvm-2.0.20240131.0-x86_64-gp2", "x86_64",
     "2024-01-31T00:00:00.000Z", {}),
    ("ami-0a000000000000006", AMAZON, "amazon", "amzn-ami-hvm-2018.03.0.20231218.0-x86_64-gp2", "x86_64",
     "2023-12-18T00:00:00.000Z", {}),
    ("ami-0a000000000000007", AMAZON, "amazon", "amzn-ami-pv-2018.03.0.20231218.0-x86_64-ebs", "x86_64",
     "2023-12-19T00:00:00.000Z", {"virtualization_type": "paravirtual"}),
    ("ami-0a000000000000008", CANONICAL, None, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240801",
     "x86_64", "2024-08-01T00:00:00.000Z", {}),
    ("ami-0a000000000000009", CANONICAL, None, "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240701",
     "x86_64", "2024-07-01T00:00:00.000Z", {}),
    ("ami-0a00000000000000a", DEBIAN, None, "debian-12-amd64-20240717-1811", "x86_64", "2024-07-17T18:15:00.000Z", {}),
    ("ami-0a00000000000000b", RED_HAT, None, "RHEL-9.4.0_HVM-20240423-x86_64-62-Hourly2-GP3", "x86_64",
     "2024-04-23T00:00:00.000Z", {}),
    # Look-alike: an official name, a newer date, another owner. Never picked by distro.
    ("ami-0a00000000000000c", STRANGER, None, "al2023-ami-2023.7.20250101.0-kernel-6.1-x86_64", "x86_64",
     "2025-01-01T00:00:00.000Z", {}),
    # A newer Debian image, deprecated.
    ("ami-0a00000000000000d", DEBIAN, None, "debian-12-amd64-20240901-1900", "x86_64", "2024-09-01T19:00:00.000Z",
     {"deprecation_time": "2024-12-01T00:00:00.000Z"}),
]

PLAYBOOK = """\
- name: ami_find against publishers' catalogs
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/bakery.ami.ami:
      endpoint_url: "{{ url }}"
      region: us-east-1
      access_key: testing
      secret_key: testing
  tasks:
    - name: Every distro of the catalog present here
      bakery.ami.ami_find:
        distro: "{{ item }}"
        regions: [us-east-1, eu-west-1]
      loop: [al2023, al2023-minimal, al2, amzn, ubuntu-24.04, debian-12, rhel-9]
      register: found

    - name: A distro without images here
      bakery.ami.ami_find:
        distro: ubuntu-22.04
      register: missing
      ignore_errors: true

    - name: All amazon-owned x86_64 HVM EBS images (broad, newest first)
      bakery.ami.ami_find:
        owners: [amazon]
        limit: 3
      register: broad

    - name: Paravirtual allowed
      bakery.ami.ami_find:
        distro: amzn
        name: amzn-ami-*2018.03*
        virtualization_type: any
      register: pv

    - name: Deprecated Debian image too
      bakery.ami.ami_find:
        distro: debian-12
        include_deprecated: true
      register: deprecated

    - name: Write the results
      ansible.builtin.copy:
        content: "{{ {'found': found.results, 'missing': missing, 'broad': broad, 'pv': pv,
                      'deprecated': deprecated} | to_json }}"
        dest: "{{ out }}"
        mode: "0644"
"""


def _catalog() -> list:
    entries = []
    for image_id, owner, alias, name, arch, created, extra in _IMAGES:
        entry = {
            "ami_id": image_id, "name": name, "description": name, "owner_id": owner, "owner_alias": alias,
            "public": True, "state": "available", "architecture": arch, "virtualization_type": "hvm",
            "root_device_type": "ebs", "root_device_name": "/dev/xvda", "image_type": "machine",
            "hypervisor": "xen", "sriov": "simple", "creation_date": created, "regions": ["us-east-1", "eu-west-1"],
        }
        entry.update(extra)
        entries.append(entry)
    return entries


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    # run_playbook is function-scoped; one endpoint and one playbook serve this whole module.
    from tests.integration.conftest import run_playbook_cmd  # pylint: disable=import-outside-toplevel
    from tools.local_aws.control import LocalAws  # pylint: disable=import-outside-toplevel

    scratch = tmp_path_factory.mktemp("ami_find_catalog")
    catalog = scratch / "amis.json"
    catalog.write_text(json.dumps(_catalog()))
    playbook = scratch / "playbook.yml"
    playbook.write_text(PLAYBOOK)
    out = scratch / "out.json"
    with LocalAws.start(port=0, amis=catalog) as aws:
        result = run_playbook_cmd(playbook, {"url": aws.url, "out": str(out)})
    assert result.returncode == 0, result.stdout[-15000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


EXPECTED = {
    "al2023": ("ami-0a000000000000002", "2023.6.20241010"),
    "al2023-minimal": ("ami-0a000000000000004", "2023.6.20241010"),
    "al2": ("ami-0a000000000000005", "2.0.20240131"),
    "amzn": ("ami-0a000000000000006", "2018.03"),
    "ubuntu-24.04": ("ami-0a000000000000008", "20240801"),
    "debian-12": ("ami-0a00000000000000a", "20240717-1811"),
    "rhel-9": ("ami-0a00000000000000b", "9.4"),
}


@pytest.mark.parametrize("distro", sorted(EXPECTED))
def test_distro_finds_the_publishers_newest_image_in_each_region(results, distro):
    found = next(r for r in results["found"] if r["item"] == distro)
    image_id, release = EXPECTED[distro]
    assert found["image"]["image_id"] == image_id
    assert found["image"]["release"] == release and found["image"]["distro"] == distro
    assert set(found["images_by_region"]) == {"us-east-1", "eu-west-1"}
    assert found["images_by_region"]["eu-west-1"]["image"]["image_id"] == image_id
    assert found["changed"] is False


def test_look_alike_of_another_owner_is_never_picked(results):
    found = next(r for r in results["found"] if r["item"] == "al2023")
    assert "ami-0a00000000000000c" not in [i["image_id"] for i in found["images"]]
    assert found["query"]["filters"]["owner-id"] == [AMAZON]


def test_missing_distro_fails_with_the_query(results):
    missing = results["missing"]
    assert missing["failed"]
    assert "no image found in us-east-1" in missing["msg"]
    assert "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*" in missing["msg"]
    assert "'owner-id': ['099720109477']" in missing["msg"]


def test_broad_query_newest_first(results):
    broad = results["broad"]
    assert [i["image_id"] for i in broad["images"]] == [
        "ami-0a000000000000004", "ami-0a000000000000002", "ami-0a000000000000001"
    ]
    assert broad["query"]["filters"]["owner-alias"] == ["amazon"]


def test_paravirtual_match_warns(results):
    pv = results["pv"]
    assert pv["image"]["image_id"] == "ami-0a000000000000007"
    assert any("virtualization-type paravirtual" in w for w in pv["warnings"])


def test_deprecated_image_only_when_asked(results):
    plain = next(r for r in results["found"] if r["item"] == "debian-12")
    assert plain["image"]["image_id"] == "ami-0a00000000000000a"
    assert results["deprecated"]["image"]["image_id"] == "ami-0a00000000000000d"
