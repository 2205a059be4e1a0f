# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's own module_utils and plugin_utils keep their bytecode on the controller
(plugin_utils/_bytecode.py); nothing else changes loader.

Each case runs a fresh interpreter with Ansible's collection loader set up as ansible-playbook sets
it up, over a copy of the collection's plugins (so the checkout gets no __pycache__), and reports
for every module it imports which loader took it and whether Python compiled its source; each also
checks that sys.meta_path is as it was after the window, and that a file imported later is Ansible's
loader's again (what ansible-test's import sanity test asks of plugins).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[4]

PROBE = r"""
import importlib, importlib.machinery, json, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([sys.argv[1]])

compiled = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code
def source_to_code(self, data, path, *args, **kwargs):
    compiled.append(path)
    return _source_to_code(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = source_to_code

names = sys.argv[3:]
before = list(sys.meta_path)
if sys.argv[2] == "window":
    from ansible_collections.bakery.ami.plugins.plugin_utils._bytecode import cached_imports
    with cached_imports():
        for name in names:
            importlib.import_module(name)
else:
    for name in names:
        importlib.import_module(name)
# what ansible-test's import sanity test checks; modules imported may append finders of their own
assert sys.meta_path[0] is before[0], "sys.meta_path[0] changed"
assert not [f for f in sys.meta_path if type(f).__name__ == "CachedSourceFinder"], "the finder stayed"
# after the window: a file of ours not imported yet is Ansible's loader's again
late = "ansible_collections.bakery.ami.plugins.module_utils._paths"
importlib.import_module(late)
assert late in names or type(sys.modules[late].__loader__).__name__ == "_AnsibleCollectionLoader", "taken after the window"
print(json.dumps({name: {"loader": type(sys.modules[name].__loader__).__name__,
                         "compiled": getattr(sys.modules[name], "__file__", None) in compiled}
                  for name in names}))
"""

OURS = [
    "ansible_collections.bakery.ami.plugins.module_utils._waiter",  # imports _aws and _fanout, also ours
    "ansible_collections.bakery.ami.plugins.module_utils._aws",
    "ansible_collections.bakery.ami.plugins.plugin_utils._report",
]
NOT_OURS = [
    "ansible_collections.bakery.ami.plugins.modules.ami_find",  # a module, not module_utils
    "ansible_collections.amazon.aws.plugins.module_utils.retries",  # another collection's
]


@pytest.fixture
def collections(tmp_path):
    """A collections directory holding a copy of this collection's plugins (and a nested package
    the finder must leave alone)."""
    root = tmp_path / "collections"
    collection = root / "ansible_collections" / "bakery" / "ami"
    shutil.copytree(REPO_ROOT / "plugins", collection / "plugins",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO_ROOT / "galaxy.yml", collection / "galaxy.yml")
    nested = collection / "plugins" / "module_utils" / "nested"
    nested.mkdir()
    (nested / "__init__.py").write_text("")
    (nested / "inner.py").write_text("VALUE = 1\n")
    return root


def probe(collections: Path, names: list, window: bool = True, write_bytecode: bool = True) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    run = subprocess.run([sys.executable, "-c", PROBE, str(collections), "window" if window else "-"] + names,
                         env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def cached_files(collections: Path) -> list:
    return sorted(p.name for p in collections.rglob("*.pyc"))


def test_our_files_are_compiled_once_and_then_read_from_their_bytecode(collections):
    first = probe(collections, OURS)
    assert {name: seen["loader"] for name, seen in first.items()} == dict.fromkeys(OURS, "SourceFileLoader")
    assert all(seen["compiled"] for seen in first.values()), first
    assert {"_waiter.cpython-%d%d.pyc" % sys.version_info[:2], "_fanout.cpython-%d%d.pyc" % sys.version_info[:2]} \
        <= set(cached_files(collections))

    again = probe(collections, OURS)
    assert not [name for name, seen in again.items() if seen["compiled"]], again


def test_a_changed_source_is_compiled_again(collections):
    probe(collections, OURS[:1])
    waiter = collections / "ansible_collections/bakery/ami/plugins/module_utils/_waiter.py"
    waiter.write_text(waiter.read_text() + "\nCHANGED = True\n")
    os.utime(waiter, (waiter.stat().st_atime, waiter.stat().st_mtime + 5))
    assert probe(collections, OURS[:1])[OURS[0]]["compiled"]


def test_everything_else_keeps_ansibles_loader(collections):
    nested = "ansible_collections.bakery.ami.plugins.module_utils.nested.inner"
    seen = probe(collections, NOT_OURS + [nested, "ansible_collections.bakery.ami.plugins.module_utils.nested"])
    assert {name: s["loader"] for name, s in seen.items()} == dict.fromkeys(seen, "_AnsibleCollectionLoader"), seen
    # what ami_find imports of our module_utils is cached; nothing outside the two packages' own directories
    where = {p.parent.relative_to(collections / "ansible_collections/bakery/ami/plugins").as_posix()
             for p in collections.rglob("*.pyc")}
    assert where == {"module_utils/__pycache__"}, where
    assert not [name for name in cached_files(collections) if name.startswith(("ami_find.", "inner.", "__init__."))]


def test_without_the_finder_ansible_compiles_every_time(collections):
    """What the finder is for: Ansible's loader keeps no bytecode."""
    runs = [probe(collections, OURS[1:2], window=False) for _run in range(2)]
    assert [seen[OURS[1]]["loader"] for seen in runs] == ["_AnsibleCollectionLoader"] * 2
    assert cached_files(collections) == []


def test_no_bytecode_is_written_when_python_is_told_not_to(collections):
    seen = probe(collections, OURS, write_bytecode=False)
    assert {name: s["loader"] for name, s in seen.items()} == dict.fromkeys(OURS, "SourceFileLoader")
    assert cached_files(collections) == []


def test_the_window_leaves_the_import_system_as_it_found_it_even_on_an_error():
    from ansible_collections.bakery.ami.plugins.plugin_utils._bytecode import cached_imports  # pylint: disable=import-outside-toplevel

    before = list(sys.meta_path)
    with pytest.raises(ImportError):
        with cached_imports():
            with cached_imports():
                assert len(sys.meta_path) == len(before) + 2
            raise ImportError("a failing import inside the window")
    assert sys.meta_path == before
