# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The corpus runner: cases, their trees, one playbook per module, and the judge.

A case is a module's arguments (or the generalize role's variables), the tree it runs on, and
what the right answer is:

- refuse(options): the task fails with a message naming one of the options, without a
  traceback, reporting no change, with no mutating AWS call during the case, and with the image
  tree and the decoy exactly as they were;
- accept(safe): the task succeeds and the check of its safe result holds (a tag matched
  literally, a link reported as itself, a lock written inside the root ...);
- either(options, safe): issue 17 leaves the choice open ("refused, or matched literally"): a
  failure is judged as a refusal, a success by the safe-result check.

Whatever the answer, three properties are checked for every case: the decoy outside the root is
byte-, inode- and mode-identical (checks.fingerprint); no mutating AWS call was made unless the
case's answer is an acceptance that makes one (the endpoint's counts are read after every case, so
each case has its own); no traceback, and for a failure a message naming the option.

All cases of a module run in one ansible-playbook invocation (each task with ignore_errors and
register, each role run in a block with a rescue), against the session's local endpoint, with
HOME pointing at a decoy home (so '~' lands in a checked tree) and, as root, with the host's file
systems read-only except the run's scratch directory (readonly.py).
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import pkgutil
import posixpath
import shutil
import subprocess
import sys
import time
import typing as t
from pathlib import Path

from tests.integration.conftest import ansible_bin, ansible_env
from tests.reliability.checks import (clean_failure_problems, fingerprint, fingerprint_changes, mutating_calls,
                                      refusal_problems)
from tests.reliability.conftest import play
from tests.reliability.hostile import trees

READONLY = Path(__file__).resolve().with_name("readonly.py")
HUGE = "x" * 100_000
NOT_YAML = "{name: [unclosed, 'quote}"


# -- what a case expects --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Expect:
    kind: str  # refuse, accept or either
    options: tuple = ()
    safe: str = ""  # the safe result of an acceptance, in words (the case table)
    check: t.Optional[t.Callable] = None  # (result, ctx) -> [problem, ...]
    mutating: bool = False  # an acceptance that makes AWS changes (a builder launched)


def refuse(*options: str) -> Expect:
    """A clear refusal naming one of options (the first is the one the table shows)."""
    return Expect("refuse", options)


def accept(safe: str, check: t.Optional[t.Callable] = None, mutating: bool = False) -> Expect:
    return Expect("accept", (), safe, check, mutating)


def either(*options: str, safe: str, check: t.Optional[t.Callable] = None) -> Expect:
    return Expect("either", options, safe, check)


# -- the tree a case runs on ----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Link:
    """Replace path (an image path) with a symbolic link to target.

    target may use {outside} (the decoy), {root}, {case} (the case's directory) and {up}, the
    relative '../' chain from the link's directory up to the case's directory.

    With mirror, what the link reaches on the host (in the decoy) is also copied into the image
    where the link leads when resolved inside the root (a chroot's view: an absolute target starts
    at the root, '..' stops there). An attacker plants that copy so that a module which reads
    through the link correctly still finds something to act on (a usable root password in shadow),
    and then shows whether it acts on what it read or on the host's view of the same path.
    """
    path: str
    target: str
    mirror: bool = False

    def apply(self, root: t.Optional[Path], ctx: "CaseContext") -> None:
        link = _place(self.path, root, ctx)
        trees.remove_path(link)
        link.parent.mkdir(parents=True, exist_ok=True)
        target = ctx.fill(self.target).replace("{up}", trees.relative_up(ctx.dir, link))
        os.symlink(target, link)
        image_path = ctx.fill(self.path).rstrip("/")
        in_root = in_root_target(ctx.fill(self.path), target)
        # a target that resolves, inside the root, through the link itself (/tmp -> /tmp/...) has
        # no place of its own in the image to mirror into
        if self.mirror and not (in_root == image_path or in_root.startswith(image_path + "/")):
            reached = Path(os.path.realpath(link))
            inside = root / in_root.lstrip("/")
            inside.parent.mkdir(parents=True, exist_ok=True)
            if reached.is_dir():
                shutil.copytree(reached, inside, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(reached, inside)


def in_root_target(path: str, target: str) -> str:
    """Where a link at image path `path` to `target` leads inside the root (one hop)."""
    joined = target if target.startswith("/") else posixpath.join(posixpath.dirname(path), target)
    parts: list = []
    for part in joined.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def Escape(path: str, target: str) -> Link:  # pylint: disable=invalid-name
    """A link out of the root with the attacker's mirror inside it (see Link)."""
    return Link(path, target, mirror=True)


@dataclasses.dataclass(frozen=True)
class File:
    """Write a file (an image path; {outside} and the others are filled in)."""
    path: str
    text: str
    mode: int = 0o644

    def apply(self, root: t.Optional[Path], ctx: "CaseContext") -> None:
        trees.write(_place(self.path, root, ctx), ctx.fill(self.text), self.mode)


@dataclasses.dataclass(frozen=True)
class HostProgram:
    """Copy a program of this host, with the libraries it loads, into the image at path (so that a
    script in the image has an interpreter)."""
    path: str
    source: str

    def apply(self, root: t.Optional[Path], ctx: "CaseContext") -> None:
        out = subprocess.run(["ldd", self.source], capture_output=True, text=True, check=True).stdout
        libraries = [part for line in out.splitlines() for part in line.split() if part.startswith("/")]
        for source, dest in [(self.source, self.path)] + [(lib, lib) for lib in libraries]:
            target = _place(dest, root, ctx)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.realpath(source), target)


def _place(path: str, root: t.Optional[Path], ctx: "CaseContext") -> Path:
    """An image path ('/etc/x') under the root, or a host path given by a placeholder ('{case}/x')."""
    if path.startswith("{"):
        return Path(ctx.fill(path))
    return root / ctx.fill(path).lstrip("/")


@dataclasses.dataclass(frozen=True)
class Tree:
    """A base tree (trees.Bases) with plants on top."""
    base: str
    plants: tuple = ()

    def __init__(self, base: str, *plants):
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "plants", plants)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    args: dict
    expect: Expect
    tree: t.Optional[Tree] = None
    item: t.Optional[int] = None  # the item of issue 17's "What was seen" the case repeats
    needs_root: bool = False  # runs an image's program in a chroot
    plants: tuple = ()  # Link/File at host paths ('{case}/...') for cases without a tree
    module: t.Optional[str] = None  # another module than the spec's (the planted tests' fakes)


@dataclasses.dataclass
class CaseContext:
    index: int
    case: Case
    dir: Path
    outside: Path
    root: t.Optional[Path]
    places: dict

    def fill(self, value):
        if isinstance(value, str):
            for key, replacement in self.places.items():
                value = value.replace("{%s}" % key, str(replacement))
            return value
        if isinstance(value, dict):
            return {self.fill(k): self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value


@dataclasses.dataclass
class Spec:
    """One module's corpus (a cases_<module>.py file)."""
    module: str
    cases: list
    prepare: t.Optional[t.Callable] = None  # (endpoint, work) -> placeholders; seeds the account
    role: bool = False  # the cases are variables of the role bakery.ami.<module>
    minimum: int = 20
    aws: bool = True  # reads the endpoint's counts after every case (else once, after all of them)


def load() -> dict:
    """Every cases_<module>.py of this package, by module name."""
    specs = {}
    package = Path(__file__).resolve().parent
    for info in sorted(pkgutil.iter_modules([str(package)]), key=lambda i: i.name):
        if info.name.startswith("cases_"):
            mod = importlib.import_module("tests.reliability.hostile." + info.name)
            spec = Spec(mod.MODULE, list(mod.CASES), getattr(mod, "prepare", None), getattr(mod, "ROLE", False),
                        getattr(mod, "MINIMUM", 20), getattr(mod, "AWS", True))
            ids = [c.id for c in spec.cases]
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError("%s: duplicate case ids %s" % (info.name, duplicates))
            specs[spec.module] = spec
    return specs


# -- running a module's cases ---------------------------------------------------------------------

def _build(index: int, case: Case, work: Path, bases: trees.Bases, places: dict) -> CaseContext:
    case_dir = work / "cases" / ("%02d-%s" % (index, case.id))[:80]
    case_dir.mkdir(parents=True)
    outside = trees.make_decoy(case_dir / "outside")
    plain = case_dir / "plain-file"
    plain.write_text("not a directory\n")
    (case_dir / "keys").mkdir(mode=0o700)
    root = None
    all_places = dict(places, outside=str(outside), case=str(case_dir), file=str(plain))
    if case.tree is not None:
        root = bases.copy(case.tree.base, case_dir / "root")
        os.symlink("root", case_dir / "root-link")
        all_places.update(root=str(root), root_link=str(case_dir / "root-link"))
    ctx = CaseContext(index, case, case_dir, outside, root, all_places)
    for plant in (case.tree.plants if case.tree else ()) + case.plants:
        plant.apply(root, ctx)
    return ctx


def _counts_task(index, url: str) -> dict:
    name = "counts_%s" % index
    return {"name": "Read the endpoint's counts (%s)" % name, "ansible.builtin.set_fact": {
        name: "{{ lookup('ansible.builtin.url', '%s/_bakery/counts', split_lines=False, use_proxy=False)"
              " | from_json }}" % url}}


def _case_tasks(spec: Spec, ctx: CaseContext) -> list:
    name = "%02d %s" % (ctx.index, ctx.case.id)
    register = "case_%d" % ctx.index
    args = ctx.fill(ctx.case.args)
    if not spec.role:
        module = ctx.case.module or spec.module
        return [{"name": name, "bakery.ami.%s" % module: args, "register": register, "ignore_errors": True}]
    report = "%s_report" % spec.module
    return [{"name": name, "block": [
        {"name": "%s: run the role" % name, "ansible.builtin.include_role": {"name": "bakery.ami.%s" % spec.module},
         "vars": args},
        {"name": "%s: keep its report" % name, "ansible.builtin.set_fact": {
            register: {"failed": False, "report": "{{ %s | default(None) }}" % report}}}],
        "rescue": [{"name": "%s: keep the failure" % name, "ansible.builtin.set_fact": {
            register: "{{ ansible_failed_result | combine({'failed': true, 'failed_task': ansible_failed_task.name}) }}"}}]}]


def guarded() -> bool:
    """Whether playbooks run with the host read-only (root and util-linux's unshare)."""
    return os.geteuid() == 0 and shutil.which("unshare") is not None and shutil.which("mount") is not None


def run_playbook(work: Path, tasks: list, url: str, home: Path, collections: t.Optional[str] = None,
                 timeout: int = 1800) -> tuple:
    """Run tasks in one play; returns (registered results, the process)."""
    out = work / "results.json"
    names = [n for task in tasks for n in _registered(task)]
    dump = {"name": "Dump the results", "ansible.builtin.copy": {
        "dest": str(out), "mode": "0600",
        "content": "{{ {%s} | to_json }}" % ", ".join("'%s': %s | default(None)" % (n, n) for n in names)}}
    book = work / "play.yml"
    plays = play(tasks + [dump], url, name="hostile input")
    plays[0]["vars"] = {"ansible_module_compression": "ZIP_STORED"}  # as the bake: no deflate per module run
    book.write_text(json.dumps(plays))
    for sub in ("tmp", "ansible", "cache", "cwd"):
        (work / sub).mkdir(exist_ok=True)
    env = {"HOME": str(home), "ANSIBLE_HOME": str(work / "ansible"), "ANSIBLE_LOCAL_TEMP": str(work / "ansible" / "tmp"),
           "ANSIBLE_REMOTE_TEMP": str(work / "ansible" / "remote"), "TMPDIR": str(work / "tmp"),
           "BAKERY_CACHE_DIR": str(work / "cache"), "ANSIBLE_PIPELINING": "1"}
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections
    cmd = [ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", str(book)]
    if guarded():
        cmd = ["unshare", "--mount", "--propagation", "private", sys.executable, str(READONLY), str(work), "--"] + cmd
    proc = subprocess.run(cmd, env=ansible_env(env), cwd=str(work / "cwd"), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if not out.exists():
        raise AssertionError("the corpus playbook failed before dumping its results:\n%s\n%s"
                             % (proc.stdout[-6000:], proc.stderr[-3000:]))
    return json.loads(out.read_text()), proc


def _registered(task: dict) -> list:
    names = [task["register"]] if "register" in task else []
    for key in ("ansible.builtin.set_fact",):
        if key in task:
            names += [n for n in task[key] if n.startswith(("case_", "counts_"))]
    for sub in task.get("block", []) + task.get("rescue", []):
        names += [n for n in _registered(sub) if n not in names]
    return names


@dataclasses.dataclass
class Verdict:
    case: Case
    problems: list
    result: t.Any
    calls: dict


@dataclasses.dataclass
class Run:
    module: str
    verdicts: dict  # case id -> Verdict
    home_changes: list  # changes to the controller's home (HOME) over the whole run
    seconds: float
    guarded: bool
    log: str


def run(spec: Spec, endpoint, work: Path, bases: trees.Bases, collections: t.Optional[str] = None,
        skip: t.Container = ()) -> Run:
    """Build every case's trees, run the module's cases in one playbook, judge each case."""
    work.mkdir(parents=True, exist_ok=True)
    endpoint.reset()
    places = dict(spec.prepare(endpoint, work) if spec.prepare else {}, endpoint=endpoint.url)
    cases = [c for c in spec.cases if c.id not in skip]
    contexts = [_build(i, case, work, bases, places) for i, case in enumerate(cases)]
    home = trees.make_controller_home(work / "home")
    home_before = fingerprint(home)
    before = [(fingerprint(c.outside), fingerprint(c.root) if c.root else None) for c in contexts]
    endpoint.reset_counts()
    # A module without AWS access has its counts read once, after all its cases: any call at all
    # is then a problem of every case (they are not told apart, and none is expected).
    tasks = [_counts_task("start", endpoint.url)]
    for ctx in contexts:
        tasks += _case_tasks(spec, ctx)
        if spec.aws or ctx is contexts[-1]:
            tasks.append(_counts_task(ctx.index, endpoint.url))
    started = time.monotonic()
    results, proc = run_playbook(work, tasks, endpoint.url, home, collections)
    seconds = time.monotonic() - started
    verdicts = {}
    previous = (results.get("counts_start") or {}).get("counts") or {}
    for ctx, (outside_before, root_before) in zip(contexts, before, strict=True):
        index = ctx.index if spec.aws else contexts[-1].index
        counts = (results.get("counts_%d" % index) or {}).get("counts") or {}
        calls = {k: n - previous.get(k, 0) for k, n in counts.items() if n - previous.get(k, 0)}
        if spec.aws:
            previous = counts or previous
        result = results.get("case_%d" % ctx.index)
        decoy = fingerprint_changes(outside_before, fingerprint(ctx.outside))
        in_root = fingerprint_changes(root_before, fingerprint(ctx.root)) if ctx.root else []
        verdicts[ctx.case.id] = Verdict(ctx.case, judge(ctx, result, calls, decoy, in_root), result, calls)
    (work / "verdicts.json").write_text(json.dumps({v.case.id: v.problems for v in verdicts.values()}, indent=1))
    for ctx in contexts:
        # the trees of passing cases go (a Debian /etc is 1.2 MB); failing ones stay to look at
        if not verdicts[ctx.case.id].problems:
            shutil.rmtree(ctx.dir)
    return Run(spec.module, verdicts, fingerprint_changes(home_before, fingerprint(home)), seconds, guarded(),
               proc.stdout[-20000:])


def judge(ctx: CaseContext, result, calls: dict, decoy: list, in_root: list) -> list:
    """The problems of one case: its answer, and the three properties."""
    case, expect = ctx.case, ctx.case.expect
    label = "%s (%s)" % (case.id, expect.kind)
    problems = ["the decoy outside the root changed: %s" % change for change in decoy]
    if not isinstance(result, dict):
        return problems + ["%s: the task did not run (result %r)" % (label, result)]
    mutating = mutating_calls(calls)
    failed = bool(result.get("failed"))
    if expect.kind == "refuse" or (expect.kind == "either" and failed):
        problems += refusal_problems(label, result, expect.options)
        if mutating:
            problems.append("%s: mutating AWS calls before the refusal: %s" % (label, mutating))
        problems += ["%s: the image tree changed before the refusal: %s" % (label, change) for change in in_root]
        return problems
    problems += clean_failure_problems(label, result)
    if failed:
        problems.append("%s: failed, but the right answer is acceptance (%s): %r"
                        % (label, expect.safe, str(result.get("msg"))[:300]))
        return problems
    if mutating and not expect.mutating:
        problems.append("%s: accepted with mutating AWS calls %s" % (label, mutating))
    if expect.check is not None:
        problems += ["%s: %s" % (label, p) for p in expect.check(result, ctx)]
    return problems


# -- helpers for the cases files ------------------------------------------------------------------

def many_tags(count: int, prefix: str = "team") -> dict:
    return {"%s-%02d" % (prefix, n): "v%d" % n for n in range(count)}


def findings(result: dict) -> list:
    """image_scan findings, or the generalize report's."""
    if "findings" in result:
        return result.get("findings") or []
    return ((result.get("report") or {}).get("findings")) or []


def no_findings_under(*prefixes: str) -> t.Callable:
    """Safe result of a scan across a hostile link: nothing reported under these image paths
    except the link itself (the decoy behind it is never read)."""
    def check(result, ctx):
        bad = [f for f in findings(result)
               if any(str(f.get("path", "")).startswith(p.rstrip("/") + "/") for p in prefixes)]
        return ["reported %s, which lies behind a link out of the root" % f.get("path") for f in bad]
    return check


def in_root_paths(result, ctx) -> list:
    """Every host path a result names (root_path of findings) lies inside the case's root."""
    root = str(ctx.root)
    return ["names %s, outside the root" % f["root_path"] for f in findings(result)
            if f.get("root_path") and not str(f["root_path"]).startswith(root + "/") and f["root_path"] != root]


def all_of(*checks: t.Callable) -> t.Callable:
    def check(result, ctx):
        return [p for c in checks for p in c(result, ctx)]
    return check


def root_file(path: str, expected: t.Optional[str] = None, exists: bool = True) -> t.Callable:
    """Safe result: an image file (not followed if a link) exists with this text, or is gone."""
    def check(result, ctx):
        host = ctx.root / path.lstrip("/")
        if not exists:
            return ["%s is still in the image" % path] if os.path.lexists(host) else []
        if not host.is_file() or host.is_symlink():
            return ["%s is not a plain file in the image" % path]
        if expected is not None and host.read_text().rstrip("\n") != expected:
            return ["%s holds %r, expected %r" % (path, host.read_text()[:200], expected)]
        return []
    return check
