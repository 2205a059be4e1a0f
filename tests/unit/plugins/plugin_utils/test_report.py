# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bake's report, manifest entry and summary lines (plugin_utils/_report.py): what a local
endpoint's builds and the local cache add to them."""
from __future__ import annotations

import pytest

from ansible_collections.bakery.ami.plugins.plugin_utils import _report


def bake(endpoint_url=""):
    return {
        "run_id": "r-1a2b3c4d", "family": "demo", "stage": "base", "version": "7", "name": "demo base 7",
        "build_id": "demo-7", "level": "full", "region": "us-east-1", "builder": {"mode": "local"},
        "cloudinit": {"protect": []}, "customize": {}, "aws": {"endpoint_url": endpoint_url, "profile": ""},
        "paths": {"manifest": "/o/m.json", "report": "/o/r.json", "user_data": "/o/u.yml"},
    }


RESULTS = {"source": {"image_id": "ami-11111111"}, "publish": {"images": {"us-east-1": "ami-22222222"}},
           "marks": {"start": 1.0, "plan": 2.0}}


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:5000", "https://ec2.example.internal"])
def test_a_build_on_an_endpoint_names_it_in_the_manifest(endpoint):
    build = _report.manifest_build(bake(endpoint), RESULTS)
    assert build["custom_data"]["endpoint_url"] == endpoint
    assert all(isinstance(value, str) for value in build["custom_data"].values())


def test_a_build_on_aws_itself_names_no_endpoint():
    assert "endpoint_url" not in _report.manifest_build(bake(), RESULTS)["custom_data"]


def test_the_summary_shows_the_local_cache_and_what_was_removed():
    cache = {"dir": "/root/.cache/bakery-ami", "bytes": 512_000_000, "archives": 2,
             "removed_archives": ["ami-33333333", "ami-44444444"]}
    lines = _report.summary(_report.report(bake("http://127.0.0.1:5000"), RESULTS, {"local_cache": cache}))
    line = next(line for line in lines if line.startswith("local cache:"))
    assert "512 MB in /root/.cache/bakery-ami" in line and "2 snapshot archive(s)" in line
    assert "removed the archives of 2 image(s)" in line


def test_without_a_cache_report_the_summary_says_nothing_of_it():
    lines = _report.summary(_report.report(bake(), RESULTS, {}))
    assert not [line for line in lines if line.startswith("local cache")]


def test_the_report_lists_the_channels_moved_and_warns_of_one_that_was_not():
    moved = {"latest": {"us-east-1": {"name": "/bakery/demo/latest", "before": "ami-11111111",
                                      "after": "ami-22222222", "changed": True}}}
    document = _report.report(dict(bake(), channels={"prefix": "bakery", "names": ["latest"]}),
                              dict(RESULTS, channels=moved))
    assert document["channels"] == moved and document["warnings"] == []
    failed = _report.report(dict(bake(), channels={"prefix": "bakery", "names": ["latest"]}),
                            dict(RESULTS, channels={}, channel_error="AccessDenied on ssm:PutParameter"))
    assert failed["status"] == "succeeded"  # the images are published and good
    assert failed["warnings"] == ["channels: not all of latest point at the new images: AccessDenied on ssm:PutParameter"]
    assert _report.report(bake(), RESULTS)["channels"] == {}


def test_the_report_and_manifest_record_the_instance_type_used_and_every_attempt():
    attempts = [{"instance_type": "m7i.large", "error_code": "InsufficientInstanceCapacity"},
                {"instance_type": "m6i.large", "error_code": None}]
    results = dict(RESULTS, builder={"builder_type": "amazon-ebs", "instance_type": "m6i.large",
                                     "instance_type_attempts": attempts})
    document = _report.report(bake(), results)
    assert document["instance_type"] == "m6i.large" and document["instance_type_attempts"] == attempts
    assert _report.manifest_build(bake(), results)["custom_data"]["instance_type"] == "m6i.large"
    # an adopted image launched no builder: nothing to record
    assert _report.report(bake(), RESULTS)["instance_type_attempts"] == []
    assert "instance_type" not in _report.manifest_build(bake(), RESULTS)["custom_data"]


SBOM = {"path": "/o/demo-base-7.cdx.json", "sha256": "ab" * 32, "components": 169, "spec_version": "1.6",
        "document": '{"bomFormat": "CycloneDX"}\n'}


def test_the_report_records_the_sbom_and_the_outputs_write_it():
    document = _report.report(bake(), dict(RESULTS, sbom=SBOM))
    assert document["sbom"] == {"path": "/o/demo-base-7.cdx.json", "sha256": "ab" * 32, "components": 169,
                                "spec_version": "1.6"}
    options = _report.outputs(bake(), dict(RESULTS, sbom=SBOM))
    assert options["sbom_path"] == SBOM["path"] and options["sbom"] == SBOM["document"]
    assert any(line.startswith("SBOM: /o/demo-base-7.cdx.json (169 packages") for line in _report.summary(document))


def test_a_bake_that_should_have_an_sbom_and_has_none_warns():
    planned = dict(bake(), sbom={"enabled": True, "path": "/o/x.cdx.json"})
    assert _report.report(planned, RESULTS)["warnings"] == [
        "sbom: no SBOM was made: nothing listed the builder's packages (a builder play that does not run "
        "bakery.ami.image_packages before generalize?)"]
    assert _report.report(planned, dict(RESULTS, adopted=True))["warnings"] == [], "an adopted image was made before"
    assert _report.report(planned, dict(RESULTS, sbom=SBOM))["warnings"] == []


def test_no_sbom_without_one_or_when_the_bake_failed():
    assert _report.report(bake(), RESULTS)["sbom"] is None
    assert "sbom_path" not in _report.outputs(bake(), RESULTS)
    failed = dict(RESULTS, sbom=SBOM, failed={"phase": "publish", "error": "x"})
    assert _report.report(bake(), failed)["sbom"] is None and "sbom" not in _report.outputs(bake(), failed)


def test_the_report_lists_the_tests_of_the_image_test_stage():
    tested = dict(RESULTS, tests=[{"name": "local first boot", "ok": True, "seconds": 4.2}], tests_seconds=5.0)
    document = _report.report(dict(bake(), test={"enabled": True, "roles": []}), tested)
    assert document["tests"] == [{"name": "local first boot", "ok": True, "seconds": 4.2}]
    assert document["tests_seconds"] == 5.0


def test_the_report_says_skipped_without_the_test_stage_or_for_an_adopted_image():
    assert _report.report(dict(bake(), test={"enabled": False, "roles": []}), RESULTS)["tests"] == "skipped"
    adopted = dict(RESULTS, adopted=True)
    assert _report.report(dict(bake(), test={"enabled": True, "roles": []}), adopted)["tests"] == "skipped"
    # a bake that failed before the stage ran no test
    failed = dict(RESULTS, failed={"phase": "customize", "error": "x"})
    assert _report.report(dict(bake(), test={"enabled": True, "roles": []}), failed)["tests"] == []


def test_a_bake_that_should_test_and_ran_no_test_says_so():
    document = _report.report(dict(bake(), test={"enabled": True, "roles": ["bakery.ami.image_test"]}), RESULTS)
    assert document["tests"] == "skipped"
    assert [w for w in document["warnings"] if w.startswith("bake_test: the image was not tested")], document["warnings"]
    skipped = _report.report(dict(bake(), test={"enabled": False, "roles": []}), RESULTS)
    assert not [w for w in skipped["warnings"] if w.startswith("bake_test")]
