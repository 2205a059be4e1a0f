# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bakery.ami.bake_outputs: rendering, manifest merge, writes, check and diff mode, validation
(plugin_utils/_outputs.py), and one real ansible-playbook run comparing its files with those of
the copy tasks it replaces."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible.plugins.filter.core import to_nice_json, to_nice_yaml

from ansible_collections.bakery.ami.plugins.plugin_utils import _outputs
from ansible_collections.bakery.ami.plugins.plugin_utils._outputs import (
    MARKER_KEY,
    USER_DATA_MARKER,
    OutputsError,
    bake_outputs,
    merge_manifest,
    render_json,
    render_report,
    render_user_data,
)

REPO_ROOT = Path(__file__).resolve().parents[4]

REPORT = {
    "run_id": "20250101-abc",
    "status": "succeeded",
    "failed_phase": None,
    "adopted": False,
    "unicode": "h\u00e9llo \u2713",
    "phases_seconds": {"launch": 12.5, "customize": 30, "publish": 7.25},
    "images": {"us-east-1": "ami-0123456789abcdef0"},
    "customizations": {"protected_paths": ["/etc/hostname", "/etc/hosts"], "baked": {}},
}
USER_DATA = {
    "packages": ["curl", "jq"],
    "write_files": [{"path": "/etc/motd", "content": "line one\nline two\n", "permissions": "0644"}],
    "runcmd": [["sh", "-c", "echo h\u00e9llo and a line long enough to pass the eighty columns of the YAML dumper"]],
    "zz_first": 1,
    "aa_second": None,
    "bootcmd": [],
    "yes_string": "yes",
}
BUILD = {
    "name": "web",
    "builder_type": "amazon-ebs",
    "build_time": 1735689600,
    "files": None,
    "artifact_id": "us-east-1:ami-0123456789abcdef0",
    "packer_run_uuid": "run-2",
    "custom_data": {"family": "web", "version": "2", "adopted": "false"},
}
OLD_MANIFEST = {"builds": [dict(BUILD, packer_run_uuid="run-1", build_time=1735600000)], "last_run_uuid": "run-1",
                MARKER_KEY: "manifest"}


def args(tmp_path, **extra):
    params = {
        "report_path": str(tmp_path / "out" / "bake-report.json"), "report": REPORT,
        "user_data_path": str(tmp_path / "out" / "launch-user-data.yml"), "user_data": USER_DATA,
        "manifest_path": str(tmp_path / "out" / "bake-manifest.json"), "manifest_build": BUILD,
        "mode": "0644",
    }
    params.update(extra)
    return {k: v for k, v in params.items() if v is not ...}


def snapshot(directory):
    """Every path under directory (the directory too) with its inode, type and mode, and the
    bytes of a regular file or the target of a link (never followed)."""
    found = {}
    for path in [Path(directory)] + sorted(Path(directory).rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            content = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            content = path.read_bytes()
        else:
            content = None
        found[str(path)] = (st.st_ino, st.st_mode, st.st_uid, content)
    return found


# --------------------------------------------------------------------------------------------
# Rendering: the bytes of the filters the old report.yml used, plus each file's marker


@pytest.mark.parametrize("data", [REPORT, {}, {"b": [1, {"z": None, "a": True}], "a": 1.5, "c": "\u00e9\n"}])
def test_report_json_is_to_nice_json_with_a_newline(data):
    assert render_json(data) == to_nice_json(data, indent=2) + "\n"
    assert render_report(data) == to_nice_json(dict(data, _bakery_outputs="report"), indent=2) + "\n"


@pytest.mark.parametrize("data", [USER_DATA, {"b": 1, "a": {"y": [1, 2], "x": "multi\nline\n"}}])
def test_user_data_is_cloud_config_then_to_nice_yaml_in_given_order(data):
    assert render_user_data(data) == ("#cloud-config\n" + USER_DATA_MARKER + "\n"
                                      + to_nice_yaml(data, indent=2, sort_keys=False))
    assert yaml.safe_load(render_user_data(data)) == data, "the marker is a comment: cloud-init reads the same data"


def test_user_data_keeps_the_key_order():
    text = render_user_data(USER_DATA)
    assert [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()] == list(USER_DATA)


def test_empty_user_data_is_an_empty_mapping():
    assert render_user_data({}) == "#cloud-config\n" + USER_DATA_MARKER + "\n{}\n"


def test_tagged_values_render_like_plain_ones():
    tags = pytest.importorskip("ansible._internal._datatag._tags")
    origin = tags.Origin(path="/playbook.yml", line_num=3)
    tagged = origin.tag({origin.tag("run_id"): tags.TrustedAsTemplate().tag("r-1"),
                         "list": origin.tag([origin.tag("x"), 2])})
    plain = {"run_id": "r-1", "list": ["x", 2]}
    assert type(tagged["run_id"]) is not str  # pylint: disable=unidiomatic-typecheck  # only tagged values make the test mean something
    assert render_json(tagged) == render_json(plain)
    assert render_report(tagged) == render_report(plain)
    assert render_user_data(tagged) == render_user_data(plain)
    with pytest.raises(OutputsError, match="^report: must be a dict, got str$"):
        _outputs.check_data("report", origin.tag("{}"))


# --------------------------------------------------------------------------------------------
# Manifest


def test_manifest_created_when_missing():
    assert merge_manifest(None, BUILD) == {"builds": [BUILD], "last_run_uuid": "run-2", MARKER_KEY: "manifest"}


def test_manifest_appends_a_new_run():
    merged = merge_manifest(json.dumps(OLD_MANIFEST), BUILD)
    assert merged["builds"] == OLD_MANIFEST["builds"] + [BUILD]
    assert merged["last_run_uuid"] == "run-2"


def test_manifest_replaces_the_same_run_in_place_and_keeps_other_keys():
    other = dict(BUILD, packer_run_uuid="run-3")
    existing = {"builds": [dict(BUILD, artifact_id="old"), other], "last_run_uuid": "run-3", "note": "kept"}
    merged = merge_manifest(json.dumps(existing), BUILD)
    assert merged["builds"] == [BUILD, other]
    assert merged["last_run_uuid"] == "run-2"
    assert merged["note"] == "kept"


@pytest.mark.parametrize("text", ["not json", "", "[]", '{"builds": {}}', '{"last_run_uuid": "x"}'])
def test_manifest_that_is_not_a_packer_manifest_is_refused(text):
    with pytest.raises(OutputsError, match="manifest_path: /m.json is not"):
        merge_manifest(text, BUILD, "/m.json")


# --------------------------------------------------------------------------------------------
# Writing, idempotence, mode, check and diff mode


def test_writes_three_files_then_changes_nothing(tmp_path):
    first = bake_outputs(args(tmp_path))
    assert first["changed"] is True
    assert first["files"] == {
        "report": {"path": str(tmp_path / "out" / "bake-report.json"), "changed": True},
        "user_data": {"path": str(tmp_path / "out" / "launch-user-data.yml"), "changed": True},
        "manifest": {"path": str(tmp_path / "out" / "bake-manifest.json"), "changed": True},
    }
    out = tmp_path / "out"
    assert (out / "bake-report.json").read_text() == render_report(REPORT)
    assert json.loads((out / "bake-report.json").read_text()) == dict(REPORT, _bakery_outputs="report")
    assert (out / "launch-user-data.yml").read_text() == render_user_data(USER_DATA)
    assert json.loads((out / "bake-manifest.json").read_text()) == {
        "builds": [BUILD], "last_run_uuid": "run-2", "_bakery_outputs": "manifest"}
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    before = snapshot(tmp_path)
    second = bake_outputs(args(tmp_path))
    assert second["changed"] is False
    assert not any(f["changed"] for f in second["files"].values())
    assert snapshot(tmp_path) == before


def test_rerun_with_the_same_run_keeps_one_entry_and_a_new_run_appends(tmp_path):
    """(The manifest bake_outputs wrote earlier, marker included.)"""
    (tmp_path / "out").mkdir()
    manifest = tmp_path / "out" / "bake-manifest.json"
    manifest.write_text(render_json(OLD_MANIFEST))
    bake_outputs(args(tmp_path))
    bake_outputs(args(tmp_path))
    builds = json.loads(manifest.read_text())["builds"]
    assert [b["packer_run_uuid"] for b in builds] == ["run-1", "run-2"]
    changed = bake_outputs(args(tmp_path, manifest_build=dict(BUILD, artifact_id="us-east-1:ami-0fedcba9876543210")))
    assert changed["files"]["manifest"]["changed"] is True
    builds = json.loads(manifest.read_text())["builds"]
    assert [b["artifact_id"] for b in builds] == [
        OLD_MANIFEST["builds"][0]["artifact_id"], "us-east-1:ami-0fedcba9876543210"]


def test_only_the_pairs_given_are_written(tmp_path):
    result = bake_outputs(args(tmp_path, user_data_path=..., user_data=..., manifest_path=..., manifest_build=...))
    assert list(result["files"]) == ["report"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bake-report.json"]


def test_mode_of_new_and_existing_files(tmp_path):
    bake_outputs(args(tmp_path, mode="0600"))
    for name in ("bake-report.json", "launch-user-data.yml", "bake-manifest.json"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o600
    content = (tmp_path / "out" / "bake-report.json").read_bytes()
    result = bake_outputs(args(tmp_path, mode="644"), diff=True)
    assert result["changed"] is True
    assert all(f["changed"] for f in result["files"].values())
    assert (tmp_path / "out" / "bake-report.json").read_bytes() == content
    assert stat.S_IMODE((tmp_path / "out" / "bake-report.json").stat().st_mode) == 0o644
    assert {"path": str(tmp_path / "out" / "bake-report.json"), "mode": "0600"} in [d["before"] for d in result["diff"]]
    assert bake_outputs(args(tmp_path, mode="0o644"))["changed"] is False


def test_parent_directories_are_0755_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        bake_outputs(args(tmp_path, report_path=str(tmp_path / "a" / "b" / "r.json")))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a" / "b" / "r.json").stat().st_mode) == 0o644


def test_atomic_write_leaves_no_temporary_file_and_replaces_the_inode(tmp_path):
    bake_outputs(args(tmp_path, report=dict(REPORT, status="failed")))
    report = tmp_path / "out" / "bake-report.json"
    inode = report.stat().st_ino
    bake_outputs(args(tmp_path))
    assert report.stat().st_ino != inode
    assert report.read_text() == render_report(REPORT)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "bake-manifest.json", "bake-report.json", "launch-user-data.yml"]


def test_a_mode_change_replaces_the_file_instead_of_changing_its_inode(tmp_path):
    """A second name of the file (a hard link) keeps its mode: nothing is changed in place."""
    bake_outputs(args(tmp_path, mode="0600"))
    report = tmp_path / "out" / "bake-report.json"
    other = tmp_path / "other-name"
    os.link(report, other)
    assert bake_outputs(args(tmp_path, mode="0640"))["changed"] is True
    assert stat.S_IMODE(report.stat().st_mode) == 0o640
    assert stat.S_IMODE(other.stat().st_mode) == 0o600
    assert other.read_bytes() == report.read_bytes()


def test_symbolic_link_at_the_path_is_refused_and_its_target_untouched(tmp_path):
    (tmp_path / "out").mkdir()
    real = tmp_path / "real.json"
    real.write_text(render_report({"run_id": "an older bake"}))
    real.chmod(0o600)
    (tmp_path / "out" / "bake-report.json").symlink_to(real)
    before = snapshot(tmp_path)
    with pytest.raises(OutputsError, match="^report_path: .*/out/bake-report.json is a symbolic link"):
        bake_outputs(args(tmp_path))
    assert snapshot(tmp_path) == before
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_check_mode_writes_nothing_and_predicts(tmp_path):
    result = bake_outputs(args(tmp_path), check_mode=True)
    assert result["changed"] is True
    assert all(f["changed"] for f in result["files"].values())
    assert not (tmp_path / "out").exists()
    bake_outputs(args(tmp_path))
    before = snapshot(tmp_path)
    again = bake_outputs(args(tmp_path, report=dict(REPORT, status="failed")), check_mode=True)
    assert again["changed"] is True
    assert [k for k, f in again["files"].items() if f["changed"]] == ["report"]
    assert snapshot(tmp_path) == before
    assert bake_outputs(args(tmp_path), check_mode=True)["changed"] is False


def test_diff_per_changed_file(tmp_path):
    result = bake_outputs(args(tmp_path), check_mode=True, diff=True)
    assert [d["after_header"] for d in result["diff"]] == [
        str(tmp_path / "out" / n) for n in ("bake-report.json", "launch-user-data.yml", "bake-manifest.json")]
    assert result["diff"][0] == {"before": "", "after": render_report(REPORT),
                                 "before_header": str(tmp_path / "out" / "bake-report.json"),
                                 "after_header": str(tmp_path / "out" / "bake-report.json")}
    bake_outputs(args(tmp_path))
    result = bake_outputs(args(tmp_path, report=dict(REPORT, status="failed")), diff=True)
    assert len(result["diff"]) == 1
    assert result["diff"][0]["before"] == render_report(REPORT)
    assert '"status": "failed"' in result["diff"][0]["after"]
    assert bake_outputs(args(tmp_path, report=dict(REPORT, status="failed")), diff=True)["diff"] == []


def test_diff_of_large_files_is_skipped(tmp_path):
    result = bake_outputs(args(tmp_path), check_mode=True, diff=True, max_diff_size=10)
    assert result["diff"][0].get("src_larger") == 10 and "after" not in result["diff"][0]
    bake_outputs(args(tmp_path))
    result = bake_outputs(args(tmp_path, report=dict(REPORT, status="failed")), check_mode=True, diff=True,
                          max_diff_size=10)
    assert result["diff"][0].get("dst_larger") == 10 and "before" not in result["diff"][0]


def test_relative_paths_are_taken_from_cwd(tmp_path):
    result = bake_outputs(args(tmp_path, report_path="rel/r.json", user_data=..., user_data_path=...,
                               manifest_path=..., manifest_build=...), cwd=str(tmp_path))
    assert result["files"]["report"]["path"] == str(tmp_path / "rel" / "r.json")
    assert (tmp_path / "rel" / "r.json").exists()


# --------------------------------------------------------------------------------------------
# Validation: every error names the option, and nothing is written


def test_the_sbom_is_written_as_given_then_left_alone_and_never_over_another_output(tmp_path):
    path = tmp_path / "out" / "demo.cdx.json"
    first = bake_outputs(args(tmp_path, sbom_path=str(path), sbom=SBOM_TEXT), diff=True)
    assert first["files"]["sbom"] == {"path": str(path), "changed": True}
    assert path.read_text() == SBOM_TEXT
    assert any(d.get("after_header") == str(path) for d in first["diff"])
    again = bake_outputs(args(tmp_path, sbom_path=str(path), sbom=SBOM_TEXT))
    assert again["files"]["sbom"]["changed"] is False
    # check mode predicts a new SBOM and writes nothing
    other = SBOM_TEXT.replace('"1.6"', '"1.5"')
    predicted = bake_outputs(args(tmp_path, sbom_path=str(path), sbom=other), check_mode=True)
    assert predicted["files"]["sbom"]["changed"] is True and path.read_text() == SBOM_TEXT
    # the manifest is not an SBOM, and an SBOM is not a manifest
    with pytest.raises(OutputsError, match="sbom_path: .* is the manifest that bakery.ami.bake_outputs wrote, not a SBOM"):
        bake_outputs(args(tmp_path, sbom_path=str(tmp_path / "out" / "bake-manifest.json"), sbom=SBOM_TEXT,
                          manifest_path=..., manifest_build=...))
    with pytest.raises(OutputsError, match="manifest_path: .* is the SBOM that bakery.ami.bake_outputs wrote"):
        bake_outputs(args(tmp_path, manifest_path=str(path)))


def _bad(tmp_path):
    """Fixtures bad cases point at: a plain file, a directory, a manifest that is not JSON."""
    (tmp_path / "dir").mkdir(exist_ok=True)
    (tmp_path / "plain").write_text("plain\n")
    (tmp_path / "not-json.json").write_text("{builds: [\n")
    if not (tmp_path / "fifo").exists():
        os.mkfifo(tmp_path / "fifo")
    return tmp_path


SBOM_TEXT = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6",
                        "metadata": {"properties": [{"name": "bakery:outputs", "value": "sbom"}]}}, indent=2) + "\n"

CIRCULAR: dict = {}
CIRCULAR["self"] = CIRCULAR

BAD = [
    ("report-path-only", dict(report=...), "report_path and report: give both or neither (report is missing)"),
    ("data-only", dict(user_data_path=...), "user_data_path and user_data: give both or neither"),
    ("nothing", dict(report_path=..., report=..., user_data_path=..., user_data=..., manifest_path=...,
                     manifest_build=...), "report_path, user_data_path, manifest_path, sbom_path: give at least one"),
    ("path-not-a-string", dict(report_path=["a"]), "report_path: must be a non-empty string"),
    ("path-a-number", dict(report_path=5), "report_path: must be a non-empty string"),
    ("path-empty", dict(user_data_path=""), "user_data_path: must be a non-empty string"),
    ("path-nul", dict(manifest_path="{tmp}/a\x00b"), "manifest_path: must not contain control characters"),
    ("path-huge", dict(report_path="/" + "x" * 5000), "report_path: must be at most 4095 bytes"),
    ("component-huge", dict(report_path="{tmp}/" + "x" * 300 + "/r.json"), "report_path: every path component"),
    ("path-is-a-directory", dict(report_path="{tmp}/dir"), "report_path: {tmp}/dir is a directory"),
    ("path-ends-in-slash", dict(report_path="{tmp}/new/"), "report_path: must name a file"),
    ("path-through-a-file", dict(user_data_path="{tmp}/plain/x.yml"), "user_data_path: {tmp}/plain is not a directory"),
    ("traversal-through-a-file", dict(report_path="{tmp}/plain/../r.json"),
     "report_path: {tmp}/plain is not a directory"),
    ("traversal-after-missing", dict(report_path="{tmp}/missing/../r.json"),
     "report_path: '..' follows {tmp}/missing, which is not an existing directory"),
    ("path-special-file", dict(report_path="{tmp}/fifo"), "report_path: {tmp}/fifo exists and is not a regular file"),
    ("path-on-dev", dict(report_path="/dev/null"), "report_path: /dev/null is on a kernel filesystem"),
    ("same-file-twice", dict(user_data_path="{tmp}/out/bake-report.json"),
     "report_path and user_data_path: must be different files"),
    ("report-not-a-dict", dict(report="{run_id: x}"), "report: must be a dict, got str"),
    ("user-data-a-list", dict(user_data=["a"]), "user_data: must be a dict, got list"),
    ("build-without-uuid", dict(manifest_build={"name": "x"}), "manifest_build: must have packer_run_uuid"),
    ("build-uuid-empty", dict(manifest_build=dict(BUILD, packer_run_uuid=" ")), "manifest_build: must have"),
    ("manifest-not-json", dict(manifest_path="{tmp}/not-json.json"),
     "manifest_path: {tmp}/not-json.json exists and was not written by bakery.ami.bake_outputs"),
    ("manifest-not-a-manifest", dict(manifest_path="{tmp}/plain-manifest.json"),
     "manifest_path: {tmp}/plain-manifest.json is not a Packer manifest"),
    ("report-not-serializable", dict(report={"x": object()}), "report: cannot be written as JSON"),
    ("report-circular", dict(report=CIRCULAR), "report: cannot be written as JSON"),
    ("user-data-not-serializable", dict(user_data={"x": object()}), "user_data: cannot be written as YAML"),
    ("sbom-a-dict", dict(sbom_path="{tmp}/s.cdx.json", sbom={"bomFormat": "CycloneDX"}),
     "sbom: must be the JSON text of a CycloneDX document (a string), got dict"),
    ("sbom-not-json", dict(sbom_path="{tmp}/s.cdx.json", sbom="{bomFormat"), "sbom: is not JSON"),
    ("sbom-without-marker", dict(sbom_path="{tmp}/s.cdx.json", sbom='{"bomFormat": "CycloneDX"}'),
     "sbom: must be a CycloneDX document with the metadata property 'bakery:outputs'"),
    ("sbom-over-the-report", dict(sbom_path="{tmp}/out/bake-report.json", sbom=SBOM_TEXT),
     "report_path and sbom_path: must be different files"),
    ("sbom-over-a-plain-file", dict(sbom_path="{tmp}/plain", sbom=SBOM_TEXT),
     "sbom_path: {tmp}/plain exists and was not written by bakery.ami.bake_outputs (it lacks the metadata property"),
    ("mode-a-number", dict(mode=420), "mode: must be an octal string such as '0644', got int 420 (quote it"),
    ("mode-symbolic", dict(mode="u=rw,g=r"), "mode: must be an octal string of 3 or 4 digits"),
    ("mode-not-octal", dict(mode="0988"), "mode: must be an octal string"),
    ("mode-huge", dict(mode="7" * 10000), "mode: must be an octal string"),
]


@pytest.mark.parametrize("extra,message", [pytest.param(e, m, id=i) for i, e, m in BAD])
def test_bad_input_fails_naming_the_option_and_writes_nothing(tmp_path, extra, message):
    _bad(tmp_path)
    (tmp_path / "plain-manifest.json").write_text('{"builds": "no", "_bakery_outputs": "manifest"}\n')
    extra = {k: (v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) else v) for k, v in extra.items()}
    before = snapshot(tmp_path)
    with pytest.raises(OutputsError) as caught:
        bake_outputs(args(tmp_path, **extra))
    assert message.replace("{tmp}", str(tmp_path)) in str(caught.value)
    assert snapshot(tmp_path) == before


def test_unwritable_directory_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    locked = str(tmp_path / "locked")
    os.mkdir(locked)
    real_access = os.access
    monkeypatch.setattr(_outputs.os, "access", lambda p, m: False if p == locked else real_access(p, m))
    before = snapshot(tmp_path)
    with pytest.raises(OutputsError, match="manifest_path: cannot write into .*locked"):
        bake_outputs(args(tmp_path, manifest_path=locked + "/sub/m.json"))
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# Documentation and argument spec (validate-modules does not compare them for a docs-only module)


def test_documented_options_are_the_argument_spec():
    import yaml  # pylint: disable=import-outside-toplevel

    from ansible_collections.bakery.ami.plugins.action import bake_outputs as action  # pylint: disable=import-outside-toplevel
    from ansible_collections.bakery.ami.plugins.modules import bake_outputs as docs  # pylint: disable=import-outside-toplevel

    options = yaml.safe_load(docs.DOCUMENTATION)["options"]
    assert set(options) == set(action.ARGUMENT_SPEC)
    assert options["mode"]["default"] == action.ARGUMENT_SPEC["mode"]["default"] == _outputs.DEFAULT_MODE
    assert {name for name, _path, _data in _outputs.PAIRS} == set(yaml.safe_load(docs.RETURN)["files"]["contains"])
    assert {"bake", "results", "hook_report"} <= set(options)


# --------------------------------------------------------------------------------------------
# A real playbook: old report.yml tasks and bake_outputs on the same data, byte for byte

PLAYBOOK_VARS = {
    "report_data": {
        "run_id": "{{ run_id }}",
        "status": "{{ 'succeeded' }}",
        "error": None,
        "unicode": "h\u00e9llo \u2713",
        "count": "{{ 1 + 2 }}",
        "seconds": "{{ 2.5 * 2 }}",
        "images": "{{ {'us-east-1': 'ami-0123456789abcdef0'} }}",
        "adopted": "{{ false }}",
        "list": [[1, "two"], {"b": 1, "a": None}],
    },
    "user_data_data": {
        "packages": "{{ ['curl', 'jq'] }}",
        "write_files": [{"path": "/etc/motd", "content": "{{ 'line one\nline two\n' }}", "permissions": "0644"}],
        "runcmd": [["sh", "-c", "echo {{ run_id }} h\u00e9llo, a line long enough to pass the eighty columns of YAML"]],
        "zz_first": 1,
        "aa_second": None,
    },
    "build_data": {
        "name": "web",
        "builder_type": "amazon-ebs",
        "build_time": "{{ 1735689600 | int }}",
        "files": None,
        "artifact_id": "{{ {'us-east-1': 'ami-0123456789abcdef0'}.items() | map('join', ':') | join(',') }}",
        "packer_run_uuid": "{{ run_id }}",
        "custom_data": {"family": "web", "adopted": "{{ false | string | lower }}"},
    },
}


def old_tasks(out: str) -> list:
    """The tasks of playbooks/tasks/report.yml that bake_outputs replaces."""
    return [
        {"name": "old: directory", "ansible.builtin.file": {"path": out, "state": "directory", "mode": "0755"}},
        {"name": "old: user-data", "ansible.builtin.copy": {
            "dest": out + "/launch-user-data.yml", "mode": "0644",
            "content": "#cloud-config\n{{ user_data_data | to_nice_yaml(indent=2, sort_keys=false)"
                       " if user_data_data | length > 0 else '{}' }}\n"}},
        {"name": "old: report", "ansible.builtin.copy": {
            "dest": out + "/bake-report.json", "mode": "0644", "content": "{{ report_data | to_nice_json(indent=2) }}\n"}},
        {"name": "old: read manifest", "ansible.builtin.slurp": {"src": out + "/bake-manifest.json"},
         "register": "old_manifest", "failed_when": False},
        {"name": "old: manifest", "vars": {
            "old": "{{ (old_manifest.content | b64decode | from_json) if old_manifest.content is defined"
                   " else {'builds': []} }}"},
         "ansible.builtin.copy": {
             "dest": out + "/bake-manifest.json", "mode": "0644",
             "content": "{{ {'builds': old.builds | default([]) + [build_data], 'last_run_uuid': run_id}"
                        " | to_nice_json(indent=2) }}\n"}},
    ]


def new_task(out: str, register: str, **extra) -> dict:
    task = {"name": "new: " + register, "bakery.ami.bake_outputs": {
        "report_path": out + "/bake-report.json", "report": "{{ report_data }}",
        "user_data_path": out + "/launch-user-data.yml", "user_data": "{{ user_data_data }}",
        "manifest_path": out + "/bake-manifest.json", "manifest_build": "{{ build_data }}"},
        "register": register}
    task.update(extra)
    return task


def test_playbook_matches_the_old_tasks_and_is_idempotent(tmp_path):
    from tests.integration.conftest import ansible_bin, ansible_env  # pylint: disable=import-outside-toplevel

    old, new = str(tmp_path / "old"), str(tmp_path / "new" / "sub")
    # both manifests start with an earlier build, which the new one is appended to (bake_outputs
    # only adds to a manifest that carries its marker)
    for directory in (tmp_path / "old", tmp_path / "new" / "sub"):
        directory.mkdir(parents=True)
    (tmp_path / "old" / "bake-manifest.json").write_text(
        render_json({k: v for k, v in OLD_MANIFEST.items() if k != MARKER_KEY}))
    (tmp_path / "new" / "sub" / "bake-manifest.json").write_text(render_json(OLD_MANIFEST))
    registers = ["check_1", "run_1", "run_2", "check_2", "bad"]
    tasks = old_tasks(old) + [
        new_task(new, "check_1", check_mode=True),
        new_task(new, "run_1"),
        new_task(new, "run_2"),
        new_task(new, "check_2", check_mode=True),
        {"name": "new: unknown option", "bakery.ami.bake_outputs": {
            "report_path": str(tmp_path / "never" / "r.json"), "report": {}, "colour": "red"},
         "register": "bad", "ignore_errors": True},
        {"name": "dump", "ansible.builtin.copy": {
            "dest": str(tmp_path / "results.json"), "mode": "0600",
            "content": "{{ {%s} | to_json }}" % ", ".join("'%s': %s" % (r, r) for r in registers)}},
    ]
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                 "vars": dict(PLAYBOOK_VARS, run_id="run-2"), "tasks": tasks}]))
    proc = subprocess.run([ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", str(book)],
                          env=ansible_env({"ANSIBLE_PYTHON_INTERPRETER": sys.executable}), cwd=str(REPO_ROOT),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())

    assert results["check_1"]["changed"] is True
    assert results["run_1"]["changed"] is True
    assert all(f["changed"] for f in results["run_1"]["files"].values())
    assert results["run_2"]["changed"] is False
    assert not any(f["changed"] for f in results["run_2"]["files"].values())
    assert results["check_2"]["changed"] is False
    assert results["bad"]["failed"] is True
    assert "colour" in results["bad"]["msg"] and "bakery.ami.bake_outputs" in results["bad"]["msg"]
    assert not (tmp_path / "never").exists()
    # the old tasks' files, and the marker: a key in the JSON files, a comment line in the user-data
    for name, kind in (("bake-report.json", "report"), ("bake-manifest.json", "manifest")):
        old_data = json.loads((tmp_path / "old" / name).read_text())
        assert (tmp_path / "new" / "sub" / name).read_text() == render_json(dict(old_data, _bakery_outputs=kind)), name
    old_text = (tmp_path / "old" / "launch-user-data.yml").read_text()
    assert old_text.startswith("#cloud-config\n")
    assert (tmp_path / "new" / "sub" / "launch-user-data.yml").read_text() == (
        "#cloud-config\n" + USER_DATA_MARKER + "\n" + old_text[len("#cloud-config\n"):])
    for name in ("bake-report.json", "launch-user-data.yml", "bake-manifest.json"):
        assert stat.S_IMODE((tmp_path / "new" / "sub" / name).stat().st_mode) == 0o644
    builds = json.loads((tmp_path / "new" / "sub" / "bake-manifest.json").read_text())["builds"]
    assert [b["packer_run_uuid"] for b in builds] == ["run-1", "run-2"]
    assert builds[1]["build_time"] == 1735689600  # a number, as the template made it


# --------------------------------------------------------------------------------------------
# Modes: data-file modes only


@pytest.mark.parametrize("mode", ["0644", "644", "0o644", "0640", "0600", "0660", "0664", "0620"])
def test_data_file_modes_are_accepted(mode):
    assert _outputs.parse_mode(mode) == int(mode[-3:], 8)


@pytest.mark.parametrize("mode, rule", [
    ("4755", "setuid, setgid or sticky"), ("4644", "setuid, setgid or sticky"), ("2644", "setuid, setgid or sticky"),
    ("1644", "setuid, setgid or sticky"), ("6600", "setuid, setgid or sticky"),
    ("0777", "executable"), ("0755", "executable"), ("0744", "executable"), ("0654", "executable"),
    ("0645", "executable"), ("0700", "executable"),
    ("0000", "owner read and write"), ("0400", "owner read and write"), ("0444", "owner read and write"),
    ("0200", "owner read and write"), ("0066", "owner read and write"),
    ("0666", "every user"), ("0646", "every user"), ("0602", "every user"),
])
def test_other_modes_are_refused_naming_the_rule(mode, rule):
    with pytest.raises(OutputsError, match=r"^mode: '%s' .*%s.*such as '0644'" % (mode, rule)):
        _outputs.parse_mode(mode)


# --------------------------------------------------------------------------------------------
# The marker: only files bake_outputs wrote are replaced


def test_each_file_carries_its_marker_and_is_recognised(tmp_path):
    bake_outputs(args(tmp_path))
    out = tmp_path / "out"
    assert json.loads((out / "bake-report.json").read_text())[MARKER_KEY] == "report"
    assert json.loads((out / "bake-manifest.json").read_text())[MARKER_KEY] == "manifest"
    assert (out / "launch-user-data.yml").read_text().splitlines()[:2] == ["#cloud-config", USER_DATA_MARKER]
    for key, name in (("report", "bake-report.json"), ("user_data", "launch-user-data.yml"),
                      ("manifest", "bake-manifest.json")):
        _outputs.check_marker(key, "x_path", name, (out / name).read_bytes())


FOREIGN = [
    ("report", b"not json\n", "was not written by"),
    ("report", b'{"run_id": "x"}\n', "was not written by"),
    ("report", b"", "was not written by"),
    ("report", b'{"_bakery_outputs": "Report"}\n', "was not written by"),
    ("report", b'["_bakery_outputs", "report"]\n', "was not written by"),
    ("report", b'{"_bakery_outputs": "manifest", "builds": []}\n', "is the manifest that bakery.ami.bake_outputs wrote"),
    ("report", b"\xff\xfe{}", "was not written by"),
    ("manifest", b'{"builds": [], "last_run_uuid": "packer"}\n', "was not written by"),
    ("manifest", b'{"_bakery_outputs": "report"}\n', "is the report that"),
    ("manifest", ("#cloud-config\n" + USER_DATA_MARKER + "\n{}\n").encode(), "is the launch user-data that"),
    ("user_data", b"#cloud-config\nusers: []\n", "was not written by"),
    ("user_data", ("#cloud-config\nusers: []\n" + USER_DATA_MARKER + "\n").encode(), "was not written by"),
    ("user_data", (USER_DATA_MARKER + "\n#cloud-config\n").encode(), "was not written by"),
    ("user_data", ("#cloud-config\n" + USER_DATA_MARKER + " \n").encode(), "was not written by"),
    ("user_data", b'{"_bakery_outputs": "report"}\n', "was not written by"),
]


@pytest.mark.parametrize("key, content, message", FOREIGN)
def test_a_file_without_the_marker_of_its_kind_is_refused(key, content, message):
    option = key + "_path"
    with pytest.raises(OutputsError, match="^%s: /f " % option) as caught:
        _outputs.check_marker(key, option, "/f", content)
    assert message in str(caught.value)


def test_a_report_holding_the_marker_key_is_refused(tmp_path):
    with pytest.raises(OutputsError, match="^report: must not hold the key '_bakery_outputs'"):
        bake_outputs(args(tmp_path, report=dict(REPORT, _bakery_outputs="manifest")))
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# Between the check and the write


def test_a_file_that_appears_after_the_check_is_not_replaced(tmp_path):
    plans = _outputs.plan(args(tmp_path, user_data_path=..., user_data=..., manifest_path=..., manifest_build=...))
    (tmp_path / "out").mkdir()
    intruder = tmp_path / "out" / "bake-report.json"
    intruder.write_text("someone else's\n")
    with pytest.raises(OutputsError, match="^report_path: .* changed while bake_outputs was writing"):
        _outputs.write(plans)
    assert intruder.read_text() == "someone else's\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bake-report.json"]


def test_a_directory_swapped_for_a_link_after_the_check_is_not_followed(tmp_path):
    (tmp_path / "out").mkdir()
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    plans = _outputs.plan(args(tmp_path))
    (tmp_path / "out").rmdir()
    (tmp_path / "out").symlink_to(decoy)
    os.lchown(tmp_path / "out", PLANTER, PLANTER)
    before = snapshot(tmp_path)
    with pytest.raises(OutputsError, match="^report_path: .*/out is a symbolic link"):
        _outputs.write(plans)
    assert snapshot(tmp_path) == before


def test_a_link_swapped_in_at_the_file_after_the_check_is_replaced_not_followed(tmp_path, monkeypatch):
    """The last line of defence: the rename replaces a link planted after the identity check."""
    bake_outputs(args(tmp_path, report=dict(REPORT, status="failed")))
    decoy = tmp_path / "decoy-key"
    decoy.write_text("PRIVATE\n")
    decoy.chmod(0o600)
    report = tmp_path / "out" / "bake-report.json"
    real_rename = os.rename

    def swap_then_rename(src, dst, **kwargs):
        report.unlink()
        report.symlink_to(decoy)
        return real_rename(src, dst, **kwargs)

    monkeypatch.setattr(_outputs.os, "rename", swap_then_rename)
    monkeypatch.setattr(_outputs, "_still_as_planned", lambda item, place: None)
    bake_outputs(args(tmp_path))
    assert decoy.read_text() == "PRIVATE\n" and stat.S_IMODE(decoy.stat().st_mode) == 0o600
    assert not report.is_symlink() and report.read_text() == render_report(REPORT)


def test_a_directory_link_of_the_user_is_followed_and_the_file_lands_in_its_target(tmp_path):
    """A checkout or an output directory reached through the user's own link (or root's, such as
    /home -> /data/home) works; the file itself is never a link."""
    real = tmp_path / "real-out"
    real.mkdir()
    (tmp_path / "out").symlink_to(real)
    bake_outputs(args(tmp_path))
    assert (real / "bake-report.json").read_text() == render_report(REPORT)
    assert (tmp_path / "out").is_symlink()


def test_sizes_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(_outputs, "MAX_FILE_BYTES", 4096)
    with pytest.raises(OutputsError, match="^report: is written as [0-9]+ bytes, more than"):
        bake_outputs(args(tmp_path, report={"x": "y" * 5000}))
    assert not (tmp_path / "out").exists()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "bake-report.json").write_bytes(b" " * 5000)
    with pytest.raises(OutputsError, match="^report_path: .* is larger than"):
        bake_outputs(args(tmp_path))


# --------------------------------------------------------------------------------------------
# Hostile inputs. Each case is checked for three properties: the decoy tree (a user's own files
# outside the output directory, and every file and link in the output directory) keeps every
# inode, mode and byte; the task fails with a message that names the option first; nothing but
# OutputsError is raised (no traceback). Every case also carries a valid pair of options, so
# "nothing written" covers the files that were fine too. The same cases run once more through
# ansible-playbook (test_hostile_inputs_through_the_action_plugin).

DECOY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ndecoy, the user's own key\n-----END OPENSSH PRIVATE KEY-----\n"


def hostile_tree(base: Path) -> tuple[Path, Path]:
    """base/decoy: a user's own files; base/out: an output directory full of traps."""
    decoy, out = base / "decoy", base / "out"
    (decoy / ".ssh").mkdir(parents=True)
    (decoy / "sub").mkdir()
    (decoy / ".ssh" / "id_ed25519").write_text(DECOY_KEY)
    (decoy / ".ssh" / "id_ed25519").chmod(0o600)
    (decoy / ".ssh").chmod(0o700)
    (decoy / "bake-report.json").write_text('{"run_id": "the user\'s own report"}\n')
    (decoy / "bake-report.json").chmod(0o600)
    (decoy / "packer-manifest.json").write_text('{"builds": [], "last_run_uuid": "packer"}\n')
    (decoy / "user-data.yml").write_text("#cloud-config\nusers: [default]\n")
    out.mkdir()
    (out / "notes.txt").write_text("an unrelated file\n")
    (out / "packer-manifest.json").write_text('{"builds": [{"packer_run_uuid": "p"}], "last_run_uuid": "p"}\n')
    (out / "hand-written.yml").write_text("#cloud-config\nruncmd: [[echo, mine]]\n")
    (out / "late-marker.yml").write_text("#cloud-config\nusers: []\n" + USER_DATA_MARKER + "\n")
    (out / "empty.yml").write_text("")
    (out / "a-report.json").write_text(render_report({"run_id": "r"}))
    os.mkfifo(out / "fifo")
    (out / "report-link.json").symlink_to(decoy / "bake-report.json")
    (out / "manifest-link.json").symlink_to("../decoy/packer-manifest.json")
    (out / "user-data-link.yml").symlink_to(decoy / "user-data.yml")
    (out / "key-link.json").symlink_to(decoy / ".ssh" / "id_ed25519")
    (out / "dangling.json").symlink_to(decoy / "new-file.json")
    (out / "dir-link").symlink_to(decoy)
    (out / "rel-dir-link").symlink_to("../decoy")
    (out / "chain-a").symlink_to("chain-b")
    (out / "chain-b").symlink_to(decoy / "sub")
    (out / "loop").symlink_to("loop")
    (out / "real-dir").mkdir()
    (out / "real-dir" / "inner-link").symlink_to(decoy)
    # directory links planted by another user (bake_outputs follows only those of root or its own user)
    for link in ("dir-link", "rel-dir-link", "chain-a", "chain-b", "loop", "real-dir/inner-link"):
        os.lchown(out / link, PLANTER, PLANTER)
    return decoy, out


PLANTER = 65534  # nobody: the owner of links someone else planted


SHM = Path("/dev/shm")
# (case, options ({out} and {decoy} are filled in), the option the message names first)
HOSTILE = [
    ("report-path-symlink-to-a-file", {"report_path": "{out}/report-link.json"}, "report_path"),
    ("report-path-symlink-to-a-private-key", {"report_path": "{out}/key-link.json"}, "report_path"),
    ("manifest-path-relative-symlink", {"manifest_path": "{out}/manifest-link.json"}, "manifest_path"),
    ("user-data-path-symlink", {"user_data_path": "{out}/user-data-link.yml"}, "user_data_path"),
    ("report-path-dangling-symlink", {"report_path": "{out}/dangling.json"}, "report_path"),
    ("report-path-symlinked-directory", {"report_path": "{out}/dir-link/bake-report.json"}, "report_path"),
    ("manifest-path-relative-symlinked-directory", {"manifest_path": "{out}/rel-dir-link/sub/m.json"},
     "manifest_path"),
    ("user-data-path-symlink-chain", {"user_data_path": "{out}/chain-a/ud.yml"}, "user_data_path"),
    ("report-path-link-loop", {"report_path": "{out}/loop/r.json"}, "report_path"),
    ("manifest-path-link-below-a-real-directory", {"manifest_path": "{out}/real-dir/inner-link/new/m.json"},
     "manifest_path"),
    ("report-path-dot-dot-after-a-link", {"report_path": "{out}/dir-link/../notes.json"}, "report_path"),
    ("report-path-proc-self-root", {"report_path": "/proc/self/root{decoy}/bake-report.json"}, "report_path"),
    ("user-data-path-proc-self-cwd", {"user_data_path": "/proc/self/cwd/ud.yml"}, "user_data_path"),
    ("report-path-proc-sys", {"report_path": "/proc/sys/kernel/bakery-report.json"}, "report_path"),
    ("manifest-path-sys", {"manifest_path": "/sys/kernel/bakery-manifest.json"}, "manifest_path"),
    ("report-path-dev-shm", {"report_path": "/dev/shm/bakery-report.json"}, "report_path"),
    ("user-data-path-dev-null", {"user_data_path": "/dev/null"}, "user_data_path"),
    ("report-path-foreign-text-file", {"report_path": "{out}/notes.txt"}, "report_path"),
    ("report-path-the-users-private-key", {"report_path": "{decoy}/.ssh/id_ed25519"}, "report_path"),
    ("manifest-path-a-manifest-packer-wrote", {"manifest_path": "{out}/packer-manifest.json"}, "manifest_path"),
    ("user-data-path-hand-written-cloud-config", {"user_data_path": "{out}/hand-written.yml"}, "user_data_path"),
    ("user-data-path-marker-not-on-line-two", {"user_data_path": "{out}/late-marker.yml"}, "user_data_path"),
    ("user-data-path-empty-file", {"user_data_path": "{out}/empty.yml"}, "user_data_path"),
    ("manifest-path-a-bake-outputs-report", {"manifest_path": "{out}/a-report.json"}, "manifest_path"),
    ("report-path-fifo", {"report_path": "{out}/fifo"}, "report_path"),
    ("report-path-a-directory", {"report_path": "{out}"}, "report_path"),
    ("report-path-tilde", {"report_path": "~"}, "report_path"),
    ("report-path-relative-climb-to-a-foreign-file", {"report_path": "../decoy/bake-report.json"}, "report_path"),
    ("report-path-relative-through-a-link", {"report_path": "dir-link/x.json"}, "report_path"),
    ("report-path-newline", {"report_path": "{out}/bake\nreport.json"}, "report_path"),
    ("user-data-path-newline-in-a-directory", {"user_data_path": "{out}/sub\n/ud.yml"}, "user_data_path"),
    ("manifest-path-tab", {"manifest_path": "{out}/m\t.json"}, "manifest_path"),
    ("report-path-escape-sequence", {"report_path": "{out}/\x1b[31mred.json"}, "report_path"),
    ("report-path-delete-character", {"report_path": "{out}/r\x7f.json"}, "report_path"),
    ("report-path-carriage-return", {"report_path": "{out}/r.json\r"}, "report_path"),
    ("report-path-huge", {"report_path": "{out}/" + "a/" * 3000 + "r.json"}, "report_path"),
    ("user-data-path-huge-component", {"user_data_path": "{out}/" + "u" * 300 + ".yml"}, "user_data_path"),
    ("manifest-path-same-file-as-report", {"manifest_path": "{out}/fresh/./x/../bake-report.json"},
     "report_path and manifest_path"),
    ("report-holds-the-marker", {"report": {"_bakery_outputs": "manifest", "builds": []}}, "report"),
    ("mode-setuid", {"mode": "4755"}, "mode"),
    ("mode-setgid", {"mode": "2644"}, "mode"),
    ("mode-sticky", {"mode": "1644"}, "mode"),
    ("mode-nothing", {"mode": "0000"}, "mode"),
    ("mode-everything", {"mode": "0777"}, "mode"),
    ("mode-executable", {"mode": "0755"}, "mode"),
    ("mode-world-writable", {"mode": "0666"}, "mode"),
    ("mode-read-only", {"mode": "0400"}, "mode"),
    ("mode-huge", {"mode": "6" * 100000}, "mode"),
]


def hostile_args(case_args: dict, decoy: Path, out: Path) -> dict:
    """The case's options, filled in, plus a valid pair of another file (written if anything is)."""
    filled = {k: (v.replace("{out}", str(out)).replace("{decoy}", str(decoy)) if isinstance(v, str) else v)
              for k, v in case_args.items()}
    params: dict = {}
    if "report_path" in filled or "report" in filled:
        params.update(user_data_path=str(out / "fresh" / "launch-user-data.yml"), user_data=USER_DATA)
    params.update(report_path=str(out / "fresh" / "bake-report.json"), report=REPORT)
    if "user_data_path" in filled:
        params["user_data"] = USER_DATA
    if "manifest_path" in filled:
        params["manifest_build"] = BUILD
    params.update(filled)
    return params


def shm_listing():
    return sorted(os.listdir(SHM)) if SHM.is_dir() else None


@pytest.mark.parametrize("case_args, option", [pytest.param(a, o, id=c) for c, a, o in HOSTILE])
def test_hostile_input_changes_nothing_and_names_the_option(tmp_path, case_args, option):
    decoy, out = hostile_tree(tmp_path)
    before, shm = snapshot(tmp_path), shm_listing()
    with pytest.raises(OutputsError) as caught:
        bake_outputs(hostile_args(case_args, decoy, out), cwd=str(out))
    message = str(caught.value)
    assert message.split(": ", 1)[0] == option, message[:300]
    assert snapshot(tmp_path) == before
    assert shm_listing() == shm
    assert "Traceback" not in message


def test_hostile_input_from_the_environment(tmp_path, monkeypatch):
    """A variable expanded into a path brings no control character in either."""
    decoy, out = hostile_tree(tmp_path)
    monkeypatch.setenv("BAKERY_HOSTILE_DIR", str(out) + "/x\n")
    before = snapshot(tmp_path)
    with pytest.raises(OutputsError, match="^report_path: must not contain control characters"):
        bake_outputs(hostile_args({"report_path": "$BAKERY_HOSTILE_DIR/r.json"}, decoy, out))
    assert snapshot(tmp_path) == before


def test_hostile_deep_data_is_refused(tmp_path):
    decoy, out = hostile_tree(tmp_path)
    deep: list = []
    for _level in range(100000):
        deep = [deep]
    before = snapshot(tmp_path)
    with pytest.raises(OutputsError, match="^report: cannot be written as JSON"):
        bake_outputs(hostile_args({"report": {"deep": deep}}, decoy, out))
    assert snapshot(tmp_path) == before


def test_the_snapshot_sees_every_kind_of_change(tmp_path):
    """The property the hostile cases rely on can fail: content, mode, inode, link target, new file."""
    decoy, out = hostile_tree(tmp_path)
    key = decoy / ".ssh" / "id_ed25519"
    changes = [
        lambda: key.write_text(DECOY_KEY + "x"),
        lambda: key.chmod(0o644),
        lambda: (key.unlink(), key.write_text(DECOY_KEY), key.chmod(0o600)),
        lambda: ((out / "dangling.json").unlink(), (out / "dangling.json").symlink_to(decoy / "other.json")),
        lambda: (decoy / "sub" / "new.json").write_text("{}"),
        lambda: (out / "real-dir").chmod(0o700),
    ]
    for change in changes:
        before = snapshot(tmp_path)
        change()
        assert snapshot(tmp_path) != before


def test_hostile_inputs_through_the_action_plugin(tmp_path):
    """Every hostile case as a task of one real playbook: failed, the option named, no traceback,
    not changed, and the trees untouched."""
    from tests.integration.conftest import ansible_bin, ansible_env  # pylint: disable=import-outside-toplevel
    from tests.reliability.checks import bad_input_problems  # pylint: disable=import-outside-toplevel

    decoy, out = hostile_tree(tmp_path / "tree")
    tasks = []
    for index, (case, case_args, _option) in enumerate(HOSTILE):
        tasks.append({"name": case, "bakery.ami.bake_outputs": hostile_args(case_args, decoy, out),
                      "register": "case_%d" % index, "ignore_errors": True})
    results = tmp_path / "results.json"
    tasks.append({"name": "dump", "ansible.builtin.copy": {
        "dest": str(results), "mode": "0600",
        "content": "{{ [%s] | to_json }}" % ", ".join("case_%d" % i for i in range(len(HOSTILE)))}})
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                 "tasks": tasks}]))
    before, shm = snapshot(tmp_path / "tree"), shm_listing()
    proc = subprocess.run([ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", str(book)],
                          env=ansible_env({"ANSIBLE_PYTHON_INTERPRETER": sys.executable}), cwd=str(out),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    problems = []
    for (case, _args, option), result in zip(HOSTILE, json.loads(results.read_text()), strict=True):
        problems += bad_input_problems(case, result, option)
        if str(result.get("msg", "")).split(": ", 1)[0] != option:
            problems.append("%s: message does not start with %r: %r" % (case, option, str(result.get("msg"))[:200]))
    assert problems == []
    assert "Traceback" not in proc.stdout + proc.stderr
    assert snapshot(tmp_path / "tree") == before
    assert shm_listing() == shm
