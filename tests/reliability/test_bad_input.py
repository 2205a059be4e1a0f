# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad and hostile input: the corpus of tests/reliability/hostile, one playbook per module.

Every case is judged by three properties (see hostile/corpus.py): the decoy outside the image
root is byte-, inode- and mode-identical; no mutating AWS call is made before a refusal (the
endpoint's counts, read after each case); a failure is a clear message naming the option, without
a traceback. Cases whose right answer is acceptance check their safe result instead of an error.
The planted tests at the end show each property's check catching a module that breaks it.
"""
from __future__ import annotations

import os
import textwrap

import pytest

from tests.reliability.checks import fingerprint, fingerprint_changes
from tests.reliability.conftest import REPO_ROOT, scratch_collection
from tests.reliability.hostile import corpus, table, trees
from tests.reliability.hostile.corpus import Case, Tree, accept, refuse

SPECS = corpus.load()
# Items of issue 17's "What was seen" that are not an input to a module: a lost CreateKeyPair
# answer (6, tests/reliability/test_lost_answers.py) and key files of killed runs (9, the kill
# tests of tests/reliability/test_bake.py).
NOT_INPUT_ITEMS = {6, 9}


class Runs:
    """Each module's corpus, run once per session on first use."""

    def __init__(self, endpoint, factory):
        self.endpoint = endpoint
        self.factory = factory
        self.bases = trees.Bases(factory.mktemp("hostile-bases"))
        self.runs: dict = {}

    def get(self, module: str) -> corpus.Run:
        if module not in self.runs:
            spec = SPECS[module]
            skip = {c.id for c in spec.cases if c.needs_root and os.geteuid() != 0}
            self.runs[module] = corpus.run(spec, self.endpoint, self.factory.mktemp("hostile-" + module), self.bases,
                                           skip=skip)
        return self.runs[module]


@pytest.fixture(scope="session")
def hostile_runs(endpoint, tmp_path_factory):
    return Runs(endpoint, tmp_path_factory)


def _params():
    return [pytest.param(module, case.id, id="%s-%s" % (module, case.id),
                         marks=[pytest.mark.skipif(case.needs_root and os.geteuid() != 0,
                                                   reason="runs an image's program in a chroot (root)")])
            for module, spec in sorted(SPECS.items()) for case in spec.cases]


@pytest.mark.parametrize("module,case_id", _params())
def test_hostile_input(hostile_runs, module, case_id):
    verdict = hostile_runs.get(module).verdicts[case_id]
    assert verdict.problems == [], "%s %s\nargs: %.600s\nresult: %.1500s\ncalls: %s" % (
        module, case_id, verdict.case.args, verdict.result, verdict.calls)


@pytest.mark.parametrize("module", sorted(SPECS))
def test_controller_home_untouched(hostile_runs, module):
    """HOME is a decoy home during the run: '~' in an option must not change anything in it."""
    assert hostile_runs.get(module).home_changes == []


@pytest.mark.parametrize("module", sorted(SPECS))
def test_enough_cases(module):
    assert len(SPECS[module].cases) >= SPECS[module].minimum


def test_every_input_item_of_issue_17_is_a_case():
    covered = {case.item for spec in SPECS.values() for case in spec.cases if case.item}
    assert set(range(1, 15)) - NOT_INPUT_ITEMS - covered == set()


def test_case_table_is_current():
    """hostile/README.md holds the table of the cases as they are (python -m
    tests.reliability.hostile.table --write rewrites it)."""
    assert table.in_readme() == table.section(SPECS)


# -- the checks can fail ------------------------------------------------------------------------

PLANTED_MODULES = {
    # item 1 of issue 17 in a few lines: reads the image's shadow the right way (inside the root)
    # but writes it back through the host's view of <root>/etc/shadow, which follows the link; with
    # note, also writes a file at a '~' path (the controller's home)
    "planted_escape": """
import os
from ansible.module_utils.basic import AnsibleModule

def main():
    module = AnsibleModule(argument_spec={"root": {"type": "path"}, "note": {"type": "path"},
                                          "behave": {"type": "bool", "default": False}})
    root = module.params["root"]
    if module.params["behave"]:
        module.exit_json(changed=False)
    if module.params["note"]:
        with open(module.params["note"], "w") as handle:
            handle.write("planted")
    path = os.path.join(root, "etc/shadow")
    with open(path) as handle:
        text = handle.read()
    with open(path, "w") as handle:
        handle.write(text.replace("root:$", "root:!$"))
    module.exit_json(changed=True)
""",
    # refuses its input, but only after it made a security group
    "planted_mutating": """
import boto3
from ansible.module_utils.basic import AnsibleModule

def main():
    module = AnsibleModule(argument_spec={"run_id": {"type": "str"}, "endpoint": {"type": "str"},
                                          "behave": {"type": "bool", "default": False}})
    if not module.params["behave"]:
        ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=module.params["endpoint"],
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        ec2.create_security_group(GroupName="planted-" + module.params["run_id"].strip(), Description="planted")
    module.fail_json(msg="run_id: %r is not a run ID" % module.params["run_id"])
""",
    # crashes on bad input (a traceback), or fails with a message that names nothing
    "planted_crash": """
from ansible.module_utils.basic import AnsibleModule

def main():
    module = AnsibleModule(argument_spec={"release": {"type": "str"}, "how": {"type": "str"}})
    if module.params["how"] == "crash":
        int(module.params["release"])
    if module.params["how"] == "vague":
        module.fail_json(msg="invalid input")
    module.fail_json(msg="release: %r is not a release" % module.params["release"])
""",
}

PLANTED = corpus.Spec("planted", [
    Case("escape-through-etc-link", {"root": "{root}"}, accept("nothing outside the root changes"),
         tree=Tree("dirty-debian-12", corpus.Escape("/etc", "{outside}/etc")), module="planted_escape"),
    Case("escape-control", {"root": "{root}", "behave": True}, accept("nothing outside the root changes"),
         tree=Tree("dirty-debian-12", corpus.Escape("/etc", "{outside}/etc")), module="planted_escape"),
    Case("mutating-before-refusal", {"run_id": "planted-1", "endpoint": "{endpoint}"}, refuse("run_id"),
         module="planted_mutating"),
    Case("mutating-control", {"run_id": "planted-2\n", "endpoint": "{endpoint}", "behave": True}, refuse("run_id"),
         module="planted_mutating"),
    Case("traceback", {"release": "2023.x", "how": "crash"}, refuse("release"), module="planted_crash"),
    Case("vague-message", {"release": "2023.x", "how": "vague"}, refuse("release"), module="planted_crash"),
    Case("crash-control", {"release": "2023.x"}, refuse("release"), module="planted_crash"),
    Case("tilde-into-controller-home", {"root": "{root}", "note": "~/.planted"}, accept("nothing outside changes"),
         tree=Tree("debian-12"), module="planted_escape"),
], minimum=0)


def test_planted_violations_are_found(hostile_runs, endpoint, tmp_path):
    """Fake modules in a scratch collection break each property once; the corpus's judge reports
    exactly those cases, and passes the same fakes when they behave."""
    collections, croot = scratch_collection(tmp_path / "colls")
    for name, body in PLANTED_MODULES.items():
        (croot / "plugins" / "modules" / ("%s.py" % name)).write_text(
            "#!/usr/bin/python\nfrom __future__ import annotations\n" + textwrap.dedent(body)
            + "\n\nif __name__ == '__main__':\n    main()\n")
    run = corpus.run(PLANTED, endpoint, tmp_path / "run", hostile_runs.bases, collections=collections)
    problems = {case_id: " | ".join(v.problems) for case_id, v in run.verdicts.items()}
    assert "the decoy outside the root changed: etc/shadow" in problems["escape-through-etc-link"], problems
    assert "mutating AWS calls before the refusal: {'CreateSecurityGroup': 1}" in problems["mutating-before-refusal"]
    assert "unhandled exception" in problems["traceback"], problems
    assert "message does not name 'release'" in problems["vague-message"], problems
    assert ".planted appeared" in run.home_changes, run.home_changes
    assert [c for c in ("escape-control", "mutating-control", "crash-control") if problems[c]] == [], problems


def test_fingerprint_sees_every_kind_of_change(tmp_path):
    """Content, inode (a file replaced by an identical copy), mode, a new entry, a removal."""
    tree = trees.make_decoy(tmp_path / "decoy")
    before = fingerprint(tree)
    assert fingerprint_changes(before, fingerprint(tree)) == []
    shadow = tree / "etc" / "shadow"
    copy = tmp_path / "shadow.copy"
    copy.write_bytes(shadow.read_bytes())
    os.replace(copy, shadow)
    assert any(c.startswith("etc/shadow: inode") for c in fingerprint_changes(before, fingerprint(tree)))
    before = fingerprint(tree)
    (tree / "home" / "alice" / ".ssh" / "id_ed25519").chmod(0o644)
    assert "mode" in " ".join(fingerprint_changes(before, fingerprint(tree)))
    before = fingerprint(tree)
    (tree / "tmp" / "new").write_text("x")
    (tree / "var" / "log" / "syslog").unlink()
    changes = fingerprint_changes(before, fingerprint(tree))
    assert "tmp/new appeared" in changes and "var/log/syslog was removed" in changes, changes


def test_readme_states_the_counts():
    """The README's reliability section gives each module's case count and the total."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index("### Hostile input"):]
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.strip(" |").split("|")[1:]]
            for line in section.splitlines() if line.startswith("| ")}
    names = [name.replace(" role", "") for name in rows["module"]]
    numbers = [int(n) for n in rows["cases"]]
    assert dict(zip(names, numbers, strict=True)) == {module: len(spec.cases) for module, spec in SPECS.items()}
    assert "runs a corpus of %d inputs" % sum(len(s.cases) for s in SPECS.values()) in " ".join(section.split())
