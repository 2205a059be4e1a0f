# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the reliability suite: the local endpoint, playbook runs, scratch collections."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.integration.conftest import ansible_bin, ansible_env  # noqa: E402  pylint: disable=wrong-import-position

CATALOG = REPO_ROOT / "tools" / "local_aws" / "catalogs" / "local-default.json"
FIXTURES = REPO_ROOT / "tests" / "unit" / "fixtures" / "amazon_linux"
AWS_GROUP_DEFAULTS = ("group/bakery.ami.ami", "group/amazon.aws.aws")


def play(tasks: list, url: str, name: str = "reliability") -> list:
    """A localhost play whose AWS modules talk to the endpoint at url."""
    defaults = {"endpoint_url": url, "region": "us-east-1", "access_key": "testing", "secret_key": "testing"}
    return [{"name": name, "hosts": "localhost", "connection": "local", "gather_facts": False,
             "module_defaults": {group: defaults for group in AWS_GROUP_DEFAULTS}, "tasks": tasks}]


def run_ansible(playbook: Path, args: list | None = None, env: dict | None = None, collections: str | None = None,
                timeout: int = 900) -> subprocess.CompletedProcess:
    """ansible-playbook on localhost (this checkout as bakery.ami unless collections is given)."""
    extra = dict(env or {})
    if collections:
        extra["ANSIBLE_COLLECTIONS_PATH"] = collections
    cmd = [ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)] + list(args or [])
    return subprocess.run(cmd, env=ansible_env(extra), cwd=str(REPO_ROOT), capture_output=True, text=True,
                          timeout=timeout, check=False)


def run_tasks(tmp: Path, tasks: list, url: str, collections: str | None = None) -> dict:
    """Run tasks that register their results; returns the registered results from a JSON dump."""
    out = tmp / "results.json"
    names = [t["register"] for t in tasks if "register" in t]
    dump = {"name": "Dump the results", "ansible.builtin.copy": {
        "dest": str(out), "mode": "0600",
        "content": "{{ {%s} | to_json }}" % ", ".join("'%s': %s | default(None)" % (n, n) for n in names)}}
    book = tmp / "play.yml"
    book.write_text(json.dumps(play(tasks + [dump], url)))
    proc = run_ansible(book, collections=collections)
    if not out.exists():
        raise AssertionError("playbook failed before dumping its results:\n%s\n%s" % (proc.stdout[-4000:], proc.stderr[-2000:]))
    return json.loads(out.read_text())


@pytest.fixture(scope="session")
def endpoint():
    """One local endpoint (seed catalog) for the session."""
    from tools.local_aws.control import LocalAws  # pylint: disable=import-outside-toplevel

    with LocalAws.start(port=0, amis=str(CATALOG)) as aws:
        yield aws


@pytest.fixture
def aws(endpoint):
    """The session endpoint reset to an empty account, default timeline, no faults."""
    endpoint.reset()
    yield endpoint


def scratch_collection(dest: Path) -> tuple[str, Path]:
    """A copy of the collection's plugins and metadata in dest; returns (collections path, root)."""
    root = dest / "ansible_collections" / "bakery" / "ami"
    root.mkdir(parents=True)
    for name in ("galaxy.yml", "meta", "plugins"):
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    return str(dest), root


def needs_root():
    return pytest.mark.skipif(os.geteuid() != 0, reason="the local bake's builder needs root (chroot, mounts)")
