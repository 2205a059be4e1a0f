# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input: every module fed malformed inputs fails with a message naming the option, without
a Python traceback, changing nothing on disk (fixture tree digest) or in the account (no
mutating action in the endpoint's counts)."""
from __future__ import annotations

import shutil

import pytest

from tests.reliability.checks import bad_input_problems, mutating_calls, tree_digest
from tests.reliability.conftest import FIXTURES, run_tasks, scratch_collection

HUGE = "x" * 100_000
NOT_YAML = "{name: [unclosed, 'quote}"

# bake_outputs cases write under {root}, so any file they create changes the tree's digest; most
# carry this valid pair too, proving that nothing at all is written when any option is bad
OUTPUT_REPORT = {"report_path": "{root}/bake-out/bake-report.json", "report": {"run_id": "rel-bad"}}

# module -> [(case id, arguments, the option the message must name)]; {root} is a fixture tree
# copy, {file} a plain file, {broken} a tree whose cloud.cfg does not parse, {instance} an instance
CASES = {
    "ami_find": [
        ("arch-not-a-choice", {"distro": "debian-12", "architecture": "sparc"}, "architecture"),
        ("owner-empty", {"owners": [""]}, "owners"),
        ("image-id-malformed", {"image_ids": ["ami-zz!"]}, "image_ids"),
        ("region-unknown", {"distro": "debian-12", "regions": ["moon-1"]}, "regions"),
        ("limit-wrong-type", {"distro": "debian-12", "limit": "lots"}, "limit"),
        ("limit-huge", {"distro": "debian-12", "limit": 10 ** 12}, "limit"),
        ("name-empty", {"owners": ["self"], "name": ""}, "name"),
        ("filters-not-yaml", {"owners": ["self"], "filters": NOT_YAML}, "filters"),
        ("tags-not-a-dict", {"owners": ["self"], "tags": "nope"}, "tags"),
        ("distro-huge", {"distro": HUGE}, "distro"),
        ("distro-unknown", {"distro": "../../etc/passwd"}, "distro"),
        ("bool-wrong-type", {"distro": "debian-12", "include_deprecated": "maybe"}, "include_deprecated"),
    ],
    "ami_builder": [
        ("run-id-empty", {"run_id": "", "image_id": "ami-0123456789abcdef0"}, "run_id"),
        ("run-id-traversal", {"run_id": "../../etc/passwd", "image_id": "ami-0123456789abcdef0"}, "run_id"),
        ("run-id-huge", {"run_id": HUGE, "image_id": "ami-0123456789abcdef0"}, "run_id"),
        ("image-id-missing", {"run_id": "rel-bad-builder"}, "image_id"),
        ("image-id-malformed", {"run_id": "rel-bad-builder", "image_id": "ami-zz!"}, "image_id"),
        ("ssh-open-to-all", {"run_id": "rel-bad-builder", "image_id": "ami-0123456789abcdef0",
                             "ssh_cidrs": ["0.0.0.0/0"]}, "ssh_cidrs"),
        ("ssh-not-a-cidr", {"run_id": "rel-bad-builder", "image_id": "ami-0123456789abcdef0",
                            "ssh_cidrs": ["not a cidr"]}, "ssh_cidrs"),
        ("key-file-dir-missing", {"run_id": "rel-bad-builder", "image_id": "ami-0123456789abcdef0",
                                  "key_file": "{root}/no/such/dir/id_ed25519"}, "key_file"),
        ("subnet-id-traversal", {"run_id": "rel-bad-builder", "image_id": "ami-0123456789abcdef0",
                                 "subnet_id": "subnet-../../x"}, "subnet_id"),
        ("volume-size-huge", {"run_id": "rel-bad-builder", "image_id": "ami-0123456789abcdef0",
                              "volume_size": 10 ** 9}, "volume_size"),
        ("volume-type-not-a-choice", {"run_id": "rel-bad-builder", "image_id": "ami-0123456789abcdef0",
                                      "volume_type": "ssd"}, "volume_type"),
        ("expires-at-not-a-time", {"run_id": "rel-bad-builder", "image_id": "ami-0123456789abcdef0",
                                   "expires_at": "soonish"}, "expires_at"),
        ("tags-not-yaml", {"run_id": "rel-bad-builder", "image_id": "ami-0123456789abcdef0", "tags": NOT_YAML},
         "tags"),
        ("wait-timeout-wrong-type", {"run_id": "rel-bad-builder", "image_id": "ami-0123456789abcdef0",
                                     "wait_timeout": "forever"}, "wait_timeout"),
        ("state-not-a-choice", {"run_id": "rel-bad-builder", "state": "gone"}, "state"),
    ],
    "ami_create": [
        ("name-empty", {"instance_id": "{instance}", "name": ""}, "name"),
        ("name-too-short", {"instance_id": "{instance}", "name": "ab"}, "name"),
        ("name-bad-chars", {"instance_id": "{instance}", "name": "bad*name|x"}, "name"),
        ("name-huge", {"instance_id": "{instance}", "name": HUGE}, "name"),
        ("instance-id-malformed", {"instance_id": "i-xyz", "name": "rel-bad-1"}, "instance_id"),
        ("instance-id-wrong-type", {"instance_id": 12345, "name": "rel-bad-1"}, "instance_id"),
        ("snapshot-id-traversal", {"snapshot_id": "snap-../../x", "name": "rel-bad-1", "architecture": "x86_64"},
         "snapshot_id"),
        ("tags-not-yaml", {"instance_id": "{instance}", "name": "rel-bad-1", "tags": NOT_YAML}, "tags"),
        ("deprecate-at-not-a-time", {"instance_id": "{instance}", "name": "rel-bad-1", "deprecate_at": "soonish"},
         "deprecate_at"),
        ("wait-timeout-wrong-type", {"instance_id": "{instance}", "name": "rel-bad-1", "wait_timeout": "forever"},
         "wait_timeout"),
        ("wait-timeout-negative", {"instance_id": "{instance}", "name": "rel-bad-1", "wait_timeout": -5},
         "wait_timeout"),
        ("volume-size-huge", {"instance_id": "{instance}", "name": "rel-bad-1", "block_device_mappings": [
            {"device_name": "/dev/xvda", "volume_size": 10 ** 9}]}, "volume_size"),
        ("copy-region-unknown", {"instance_id": "{instance}", "name": "rel-bad-1", "copy": {"regions": ["moon-1"]}},
         "copy.regions"),
        ("copy-regions-wrong-type", {"instance_id": "{instance}", "name": "rel-bad-1", "copy": {"regions": "us-west-2 x"}},
         "regions"),
        ("copy-pending-tags-not-yaml", {"instance_id": "{instance}", "name": "rel-bad-1",
                                        "copy": {"regions": ["us-west-2"], "pending_tags": NOT_YAML}}, "pending_tags"),
    ],
    "ami_copy": [
        ("source-empty", {"source_image_id": "", "regions": ["us-west-2"]}, "source_image_id"),
        ("source-malformed", {"source_image_id": "ami-zz", "regions": ["us-west-2"]}, "source_image_id"),
        ("regions-empty", {"source_image_id": "ami-0123456789abcdef0", "regions": []}, "regions"),
        ("region-unknown", {"source_image_id": "ami-0123456789abcdef0", "regions": ["moon-1"]}, "regions"),
        ("region-entry-bad-key", {"source_image_id": "ami-0123456789abcdef0",
                                  "regions": [{"region": "us-west-2", "bogus": 1}]}, "regions"),
        ("source-region-unknown", {"source_image_id": "ami-0123456789abcdef0", "source_region": "moon-1",
                                   "regions": ["us-west-2"]}, "source_region"),
        ("kms-key-malformed", {"source_image_id": "ami-0123456789abcdef0", "regions": ["us-west-2"],
                               "encrypted": True, "kms_key_id": "not a key"}, "kms_key_id"),
        ("deprecate-at-not-a-time", {"source_image_id": "ami-0123456789abcdef0", "regions": ["us-west-2"],
                                     "deprecate_at": "yesterday"}, "deprecate_at"),
        ("concurrency-zero", {"source_image_id": "ami-0123456789abcdef0", "regions": ["us-west-2"],
                              "max_concurrency": 0}, "max_concurrency"),
        ("wait-timeout-wrong-type", {"source_image_id": "ami-0123456789abcdef0", "regions": ["us-west-2"],
                                     "wait_timeout": "x"}, "wait_timeout"),
        ("name-bad-chars", {"source_image_id": "ami-0123456789abcdef0", "regions": ["us-west-2"],
                            "name": "bad|name*"}, "name"),
        ("user-id-malformed", {"source_image_id": "ami-0123456789abcdef0", "regions": ["us-west-2"],
                               "launch_permissions": {"user_ids": ["12"]}}, "user_ids"),
        ("tags-not-yaml", {"source_image_id": "ami-0123456789abcdef0", "regions": ["us-west-2"],
                           "tags": NOT_YAML}, "tags"),
    ],
    "ami_prune": [
        ("family-empty", {"family": "", "keep_latest": 1}, "family"),
        ("family-bad-chars", {"family": "bad family!", "keep_latest": 1}, "family"),
        ("keep-latest-negative", {"family": "rel", "keep_latest": -1}, "keep_latest"),
        ("keep-latest-wrong-type", {"family": "rel", "keep_latest": "three"}, "keep_latest"),
        ("keep-days-negative", {"family": "rel", "keep_days": -10}, "keep_days"),
        ("keep-days-huge", {"family": "rel", "keep_days": 10 ** 15}, "keep_days"),
        ("region-unknown", {"family": "rel", "keep_latest": 1, "regions": ["moon-1"]}, "regions"),
        ("region-empty", {"family": "rel", "keep_latest": 1, "regions": [""]}, "regions"),
        ("tags-not-yaml", {"tags": NOT_YAML, "keep_latest": 1}, "tags"),
        ("deprecate-after-negative", {"family": "rel", "keep_latest": 1, "deprecate_after_days": -1},
         "deprecate_after_days"),
        ("bool-wrong-type", {"family": "rel", "keep_latest": 1, "deregister": "perhaps"}, "deregister"),
    ],
    "ami_lock_release": [
        ("root-empty", {"root": "", "release": "2023.6.20241010"}, "root"),
        ("root-missing", {"root": "{root}/no/such/dir", "release": "2023.6.20241010"}, "root"),
        ("root-is-a-file", {"root": "{file}", "release": "2023.6.20241010"}, "root"),
        ("release-empty", {"root": "{root}", "release": ""}, "release"),
        ("release-malformed", {"root": "{root}", "release": "2023.x.bad"}, "release"),
        ("release-traversal", {"root": "{root}", "release": "../../etc/passwd"}, "release"),
        ("release-huge", {"root": "{root}", "release": "9" * 5000}, "release"),
        ("launch-updates-not-a-choice", {"root": "{root}", "launch_updates": "sometimes"}, "launch_updates"),
        ("ami-name-unparsable", {"root": "{root}", "release": "source", "ami_name": "my-own-image"}, "ami_name"),
        ("ami-name-huge", {"root": "{root}", "release": "source", "ami_name": HUGE}, "ami_name"),
        ("release-not-yaml", {"root": "{root}", "release": NOT_YAML}, "release"),
    ],
    "cloudinit_guard": [
        ("protect-unknown", {"root": "{root}", "protect": ["nonsense"]}, "protect"),
        ("protect-empty-string", {"root": "{root}", "protect": [""]}, "protect"),
        ("settings-not-yaml", {"root": "{root}", "settings": NOT_YAML}, "settings"),
        ("filename-traversal", {"root": "{root}", "protect": ["hostname"], "filename": "../../etc/passwd"},
         "filename"),
        ("filename-empty", {"root": "{root}", "protect": ["hostname"], "filename": ""}, "filename"),
        ("filename-wrong-suffix", {"root": "{root}", "protect": ["hostname"], "filename": "99_x.txt"}, "filename"),
        ("disable-unknown-module", {"root": "{root}", "disable_modules": ["no_such_module"]}, "disable_modules"),
        ("root-missing", {"root": "{root}/no/such/dir", "protect": ["hostname"]}, "root"),
        ("customized-path-relative", {"root": "{root}", "protect": ["hostname"],
                                      "customized_paths": ["etc/hostname"]}, "customized_paths"),
        ("cloud-cfg-not-yaml", {"root": "{broken}", "protect": ["hostname"]}, "cloud.cfg"),
        ("audit-off-fail-on", {"root": "{root}", "protect": ["hostname"], "audit": False,
                               "fail_on_unprotected": True}, "fail_on_unprotected"),
        ("protect-huge", {"root": "{root}", "protect": [HUGE]}, "protect"),
    ],
    "image_scan": [
        ("category-unknown", {"root": "{root}", "categories": ["nonsense"]}, "categories"),
        ("category-huge", {"root": "{root}", "categories": [HUGE]}, "categories"),
        ("root-missing", {"root": "{root}/no/such/dir"}, "root"),
        ("root-empty", {"root": ""}, "root"),
        ("root-is-a-file", {"root": "{file}"}, "root"),
        ("exclude-relative", {"root": "{root}", "exclude": ["../../etc"]}, "exclude"),
        ("keep-key-not-a-key", {"root": "{root}", "keep_authorized_keys": ["not a key"]}, "keep_authorized_keys"),
        ("bake-key-not-a-key", {"root": "{root}", "bake_authorized_key": "garbage"}, "bake_authorized_key"),
        ("bake-path-relative", {"root": "{root}", "bake_paths": ["relative/path"]}, "bake_paths"),
        ("bool-wrong-type", {"root": "{root}", "fail_on_findings": "sometimes"}, "fail_on_findings"),
        ("categories-not-yaml", {"root": "{root}", "categories": NOT_YAML}, "categories"),
    ],
    "bake_outputs": [
        ("report-path-without-report", {"report_path": "{root}/bake-out/bake-report.json"}, "report"),
        ("report-not-yaml", {"report_path": "{root}/bake-out/bake-report.json", "report": NOT_YAML}, "report"),
        ("report-path-wrong-type", {"report_path": 12345, "report": {"run_id": "rel-bad"}}, "report_path"),
        ("report-path-huge", {"report_path": "{root}/" + HUGE, "report": {"run_id": "rel-bad"}}, "report_path"),
        ("user-data-path-empty", dict(OUTPUT_REPORT, user_data_path="", user_data={}), "user_data_path"),
        ("user-data-path-is-a-directory", dict(OUTPUT_REPORT, user_data_path="{root}/etc", user_data={}),
         "user_data_path"),
        ("user-data-same-file-as-report", dict(OUTPUT_REPORT, user_data_path="{root}/bake-out/bake-report.json",
                                               user_data={}), "user_data_path"),
        ("manifest-path-traversal", dict(OUTPUT_REPORT, manifest_path="{root}/etc/image-id/../bake-manifest.json",
                                         manifest_build={"packer_run_uuid": "rel-bad"}), "manifest_path"),
        ("manifest-not-json", dict(OUTPUT_REPORT, manifest_path="{root}/etc/image-id",
                                   manifest_build={"packer_run_uuid": "rel-bad"}), "manifest_path"),
        ("manifest-build-without-uuid", dict(OUTPUT_REPORT, manifest_path="{root}/bake-out/bake-manifest.json",
                                             manifest_build={"name": "rel-bad"}), "manifest_build"),
        ("mode-not-octal", dict(OUTPUT_REPORT, mode="rw-r--r--"), "mode"),
        ("mode-wrong-type", dict(OUTPUT_REPORT, mode=420), "mode"),
        ("mode-huge", dict(OUTPUT_REPORT, mode="7" * 5000), "mode"),
        ("unknown-option", dict(OUTPUT_REPORT, colour="red"), "colour"),
    ],
}


def _case_params():
    params = []
    for module, cases in sorted(CASES.items()):
        for index, (case, _args, _option) in enumerate(cases):
            params.append(pytest.param(module, index, case, id="%s-%s" % (module, case)))
    return params


def _fill(value, places: dict):
    if isinstance(value, str):
        for key, replacement in places.items():
            value = value.replace("{%s}" % key, replacement)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, places) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, places) for v in value]
    return value


def prepare_places(aws, tmp) -> dict:
    root = tmp / "root"
    shutil.copytree(FIXTURES / "al2023", root, symlinks=True)
    broken = tmp / "broken"
    shutil.copytree(FIXTURES / "al2023", broken, symlinks=True)
    (broken / "etc" / "cloud" / "cloud.cfg").write_text("users: [default\nssh_pwauth: {\n")
    plain_file = tmp / "plain-file"
    plain_file.write_text("not a directory\n")
    ec2 = aws.client("ec2", "us-east-1")
    source = ec2.describe_images(Owners=["136693071363"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=source, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return {"root": str(root), "broken": str(broken), "file": str(plain_file), "instance": instance}


def bad_tasks(module: str, cases: list, places: dict) -> list:
    return [{"name": "%s %s" % (module, case), "bakery.ami.%s" % module: _fill(args, places),
             "register": "case_%d" % n, "ignore_errors": True} for n, (case, args, _option) in enumerate(cases)]


@pytest.fixture(scope="module")
def bad_runs(endpoint, tmp_path_factory):
    """Every module's cases in one playbook each; with digests of the trees and the counts."""
    runs = {}
    for module, cases in CASES.items():
        endpoint.reset()
        tmp = tmp_path_factory.mktemp("bad-" + module)
        places = prepare_places(endpoint, tmp)
        before = {k: tree_digest(places[k]) for k in ("root", "broken")}
        endpoint.reset_counts()
        results = run_tasks(tmp, bad_tasks(module, cases, places), endpoint.url)
        runs[module] = {
            "results": [results["case_%d" % n] for n in range(len(cases))],
            "counts": endpoint.counts(),
            "changed_trees": [k for k in before if tree_digest(places[k]) != before[k]],
        }
    return runs


@pytest.mark.parametrize("module", sorted(CASES))
def test_at_least_ten_cases(module):
    assert len(CASES[module]) >= 10


@pytest.mark.parametrize("module,index,case", _case_params())
def test_malformed_input_fails_clearly(bad_runs, module, index, case):
    _case, _args, option = CASES[module][index]
    assert bad_input_problems("%s %s" % (module, case), bad_runs[module]["results"][index], option) == []


@pytest.mark.parametrize("module", sorted(CASES))
def test_nothing_changed_on_disk_or_in_the_account(bad_runs, module):
    assert bad_runs[module]["changed_trees"] == []
    assert mutating_calls(bad_runs[module]["counts"]) == {}


def test_planted_violations_are_found(endpoint, tmp_path):
    """image_scan raising instead of failing (traceback); cloudinit_guard failing with a vague
    message; a tree changed behind the digest's back; a mutating call in the counts."""
    endpoint.reset()
    collections, croot = scratch_collection(tmp_path / "colls")
    scan = croot / "plugins" / "modules" / "image_scan.py"
    text = scan.read_text()
    assert "module.fail_json(msg=str(exc))" in text
    scan.write_text(text.replace("module.fail_json(msg=str(exc))", "raise exc"))
    guard = croot / "plugins" / "modules" / "cloudinit_guard.py"
    text = guard.read_text()
    assert "module.fail_json(msg=str(exc))" in text
    guard.write_text(text.replace("module.fail_json(msg=str(exc))", "module.fail_json(msg='invalid input')"))
    places = prepare_places(endpoint, tmp_path)
    tasks = bad_tasks("image_scan", CASES["image_scan"][:1], places)
    tasks += [dict(t, register="guard_%d" % n) for n, t in enumerate(bad_tasks("cloudinit_guard",
                                                                               CASES["cloudinit_guard"][:1], places))]
    results = run_tasks(tmp_path, tasks, endpoint.url, collections=collections)
    assert any("traceback" in p for p in bad_input_problems("planted scan", results["case_0"], "categories")), results["case_0"]
    assert any("does not name" in p for p in bad_input_problems("planted guard", results["guard_0"], "protect"))
    before = tree_digest(places["root"])
    (tmp_path / "root" / "etc" / "image-id").write_text("planted\n")
    assert tree_digest(places["root"]) != before
    assert mutating_calls({"DescribeImages": 3, "DeregisterImage": 1}) == {"DeregisterImage": 1}
