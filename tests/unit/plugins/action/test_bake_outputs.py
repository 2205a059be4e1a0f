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

from ansible.plugins.filter.core import to_nice_json, to_nice_yaml

from ansible_collections.bakery.ami.plugins.plugin_utils import _outputs
from ansible_collections.bakery.ami.plugins.plugin_utils._outputs import (
    OutputsError,
    bake_outputs,
    merge_manifest,
    render_json,
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
OLD_MANIFEST = {"builds": [dict(BUILD, packer_run_uuid="run-1", build_time=1735600000)], "last_run_uuid": "run-1"}


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
    """Every path under directory with its mode and bytes."""
    found = {}
    for path in sorted(Path(directory).rglob("*")):
        st = path.lstat()
        found[str(path)] = (stat.S_IMODE(st.st_mode), path.read_bytes() if path.is_file() else None)
    return found


# --------------------------------------------------------------------------------------------
# Rendering: the bytes of the filters the old report.yml used


@pytest.mark.parametrize("data", [REPORT, {}, {"b": [1, {"z": None, "a": True}], "a": 1.5, "c": "\u00e9\n"}])
def test_report_json_is_to_nice_json_with_a_newline(data):
    assert render_json(data) == to_nice_json(data, indent=2) + "\n"


@pytest.mark.parametrize("data", [USER_DATA, {"b": 1, "a": {"y": [1, 2], "x": "multi\nline\n"}}])
def test_user_data_is_cloud_config_then_to_nice_yaml_in_given_order(data):
    assert render_user_data(data) == "#cloud-config\n" + to_nice_yaml(data, indent=2, sort_keys=False)


def test_user_data_keeps_the_key_order():
    text = render_user_data(USER_DATA)
    assert [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()] == list(USER_DATA)


def test_empty_user_data_is_an_empty_mapping():
    assert render_user_data({}) == "#cloud-config\n{}\n"


def test_tagged_values_render_like_plain_ones():
    tags = pytest.importorskip("ansible._internal._datatag._tags")
    origin = tags.Origin(path="/playbook.yml", line_num=3)
    tagged = origin.tag({origin.tag("run_id"): tags.TrustedAsTemplate().tag("r-1"),
                         "list": origin.tag([origin.tag("x"), 2])})
    plain = {"run_id": "r-1", "list": ["x", 2]}
    assert type(tagged["run_id"]) is not str  # pylint: disable=unidiomatic-typecheck  # only tagged values make the test mean something
    assert render_json(tagged) == render_json(plain)
    assert render_user_data(tagged) == render_user_data(plain)
    with pytest.raises(OutputsError, match="^report: must be a dict, got str$"):
        _outputs.check_data("report", origin.tag("{}"))


# --------------------------------------------------------------------------------------------
# Manifest


def test_manifest_created_when_missing():
    assert merge_manifest(None, BUILD) == {"builds": [BUILD], "last_run_uuid": "run-2"}


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
    assert (out / "bake-report.json").read_text() == render_json(REPORT)
    assert (out / "launch-user-data.yml").read_text() == render_user_data(USER_DATA)
    assert json.loads((out / "bake-manifest.json").read_text()) == {"builds": [BUILD], "last_run_uuid": "run-2"}
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    before = snapshot(tmp_path)
    second = bake_outputs(args(tmp_path))
    assert second["changed"] is False
    assert not any(f["changed"] for f in second["files"].values())
    assert snapshot(tmp_path) == before


def test_rerun_with_the_same_run_keeps_one_entry_and_a_new_run_appends(tmp_path):
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
    (tmp_path / "out").mkdir()
    report = tmp_path / "out" / "bake-report.json"
    report.write_text("old\n")
    inode = report.stat().st_ino
    bake_outputs(args(tmp_path))
    assert report.stat().st_ino != inode
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "bake-manifest.json", "bake-report.json", "launch-user-data.yml"]


def test_symbolic_link_to_a_file_is_followed(tmp_path):
    (tmp_path / "out").mkdir()
    real = tmp_path / "real.json"
    real.write_text("{}\n")
    (tmp_path / "out" / "bake-report.json").symlink_to(real)
    bake_outputs(args(tmp_path))
    assert (tmp_path / "out" / "bake-report.json").is_symlink()
    assert real.read_text() == render_json(REPORT)


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
    assert result["diff"][0] == {"before": "", "after": render_json(REPORT),
                                 "before_header": str(tmp_path / "out" / "bake-report.json"),
                                 "after_header": str(tmp_path / "out" / "bake-report.json")}
    bake_outputs(args(tmp_path))
    result = bake_outputs(args(tmp_path, report=dict(REPORT, status="failed")), diff=True)
    assert len(result["diff"]) == 1
    assert result["diff"][0]["before"] == render_json(REPORT)
    assert '"status": "failed"' in result["diff"][0]["after"]
    assert bake_outputs(args(tmp_path, report=dict(REPORT, status="failed")), diff=True)["diff"] == []


def test_diff_of_large_or_binary_files_is_skipped(tmp_path):
    result = bake_outputs(args(tmp_path), check_mode=True, diff=True, max_diff_size=10)
    assert result["diff"][0].get("src_larger") == 10 and "after" not in result["diff"][0]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "bake-report.json").write_bytes(b"\xff\xfe")
    result = bake_outputs(args(tmp_path), check_mode=True, diff=True)
    assert result["diff"][0].get("dst_binary") == 1


def test_relative_paths_are_taken_from_cwd(tmp_path):
    result = bake_outputs(args(tmp_path, report_path="rel/r.json", user_data=..., user_data_path=...,
                               manifest_path=..., manifest_build=...), cwd=str(tmp_path))
    assert result["files"]["report"]["path"] == str(tmp_path / "rel" / "r.json")
    assert (tmp_path / "rel" / "r.json").exists()


# --------------------------------------------------------------------------------------------
# Validation: every error names the option, and nothing is written


def _bad(tmp_path):
    """Fixtures bad cases point at: a plain file, a directory, a manifest that is not JSON."""
    (tmp_path / "dir").mkdir(exist_ok=True)
    (tmp_path / "plain").write_text("plain\n")
    (tmp_path / "not-json.json").write_text("{builds: [\n")
    return tmp_path


CIRCULAR: dict = {}
CIRCULAR["self"] = CIRCULAR

BAD = [
    ("report-path-only", dict(report=...), "report_path and report: give both or neither (report is missing)"),
    ("data-only", dict(user_data_path=...), "user_data_path and user_data: give both or neither"),
    ("nothing", dict(report_path=..., report=..., user_data_path=..., user_data=..., manifest_path=...,
                     manifest_build=...), "report_path, user_data_path, manifest_path: give at least one"),
    ("path-not-a-string", dict(report_path=["a"]), "report_path: must be a non-empty string"),
    ("path-a-number", dict(report_path=5), "report_path: must be a non-empty string"),
    ("path-empty", dict(user_data_path=""), "user_data_path: must be a non-empty string"),
    ("path-nul", dict(manifest_path="{tmp}/a\x00b"), "manifest_path: must not contain a NUL byte"),
    ("path-huge", dict(report_path="/" + "x" * 5000), "report_path: must be at most 4095 bytes"),
    ("component-huge", dict(report_path="{tmp}/" + "x" * 300 + "/r.json"), "report_path: every path component"),
    ("path-is-a-directory", dict(report_path="{tmp}/dir"), "report_path: {tmp}/dir is a directory"),
    ("path-ends-in-slash", dict(report_path="{tmp}/new/"), "report_path: must name a file"),
    ("path-through-a-file", dict(user_data_path="{tmp}/plain/x.yml"), "user_data_path: {tmp}/plain is not a directory"),
    ("traversal-through-a-file", dict(report_path="{tmp}/plain/../r.json"),
     "report_path: {tmp}/plain is not a directory"),
    ("traversal-after-missing", dict(report_path="{tmp}/missing/../r.json"),
     "report_path: '..' follows {tmp}/missing, which is not an existing directory"),
    ("path-special-file", dict(report_path="/dev/null"), "report_path: /dev/null exists and is not a regular file"),
    ("same-file-twice", dict(user_data_path="{tmp}/out/bake-report.json"),
     "report_path and user_data_path: must be different files"),
    ("report-not-a-dict", dict(report="{run_id: x}"), "report: must be a dict, got str"),
    ("user-data-a-list", dict(user_data=["a"]), "user_data: must be a dict, got list"),
    ("build-without-uuid", dict(manifest_build={"name": "x"}), "manifest_build: must have packer_run_uuid"),
    ("build-uuid-empty", dict(manifest_build=dict(BUILD, packer_run_uuid=" ")), "manifest_build: must have"),
    ("manifest-not-json", dict(manifest_path="{tmp}/not-json.json"), "manifest_path: {tmp}/not-json.json is not JSON"),
    ("manifest-not-a-manifest", dict(manifest_path="{tmp}/plain-manifest.json"), "manifest_path:"),
    ("report-not-serializable", dict(report={"x": object()}), "report: cannot be written as JSON"),
    ("report-circular", dict(report=CIRCULAR), "report: cannot be written as JSON"),
    ("user-data-not-serializable", dict(user_data={"x": object()}), "user_data: cannot be written as YAML"),
    ("mode-a-number", dict(mode=420), "mode: must be an octal string such as '0644', got int 420 (quote it"),
    ("mode-symbolic", dict(mode="u=rw,g=r"), "mode: must be an octal string of 3 or 4 digits"),
    ("mode-not-octal", dict(mode="0988"), "mode: must be an octal string"),
    ("mode-huge", dict(mode="7" * 10000), "mode: must be an octal string"),
]


@pytest.mark.parametrize("extra,message", [pytest.param(e, m, id=i) for i, e, m in BAD])
def test_bad_input_fails_naming_the_option_and_writes_nothing(tmp_path, extra, message):
    _bad(tmp_path)
    (tmp_path / "plain-manifest.json").write_text('{"builds": "no"}\n')
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
    from ansible_collections.bakery.ami.plugins.module_utils._group import GROUP_DEFAULT_OPTIONS  # pylint: disable=import-outside-toplevel
    from ansible_collections.bakery.ami.plugins.modules import bake_outputs as docs  # pylint: disable=import-outside-toplevel

    options = yaml.safe_load(docs.DOCUMENTATION)["options"]
    assert set(options) | set(GROUP_DEFAULT_OPTIONS) == set(action.ARGUMENT_SPEC)
    assert options["mode"]["default"] == action.ARGUMENT_SPEC["mode"]["default"] == _outputs.DEFAULT_MODE
    assert {name for name, _path, _data in _outputs.PAIRS} == set(yaml.safe_load(docs.RETURN)["files"]["contains"])


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
    # both manifests start with an earlier build, which the new one is appended to
    for directory in (tmp_path / "old", tmp_path / "new" / "sub"):
        directory.mkdir(parents=True)
        (directory / "bake-manifest.json").write_text(render_json(OLD_MANIFEST))
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
    for name in ("bake-report.json", "launch-user-data.yml", "bake-manifest.json"):
        assert (tmp_path / "new" / "sub" / name).read_bytes() == (tmp_path / "old" / name).read_bytes(), name
        assert stat.S_IMODE((tmp_path / "new" / "sub" / name).stat().st_mode) == 0o644
    builds = json.loads((tmp_path / "new" / "sub" / "bake-manifest.json").read_text())["builds"]
    assert [b["packer_run_uuid"] for b in builds] == ["run-1", "run-2"]
    assert builds[1]["build_time"] == 1735689600  # a number, as the template made it
