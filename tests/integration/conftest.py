# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the integration tier: a running local AWS endpoint and a playbook runner.

Integration tests talk to the endpoint over HTTP through the same modules and playbooks that
talk to AWS; nothing here patches boto3.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

AWS_REGION = "us-east-1"


def collections_path() -> str:
    """A collections path in which this checkout is bakery.ami (tools/ci/venv.sh sets one)."""
    configured = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    if configured:
        return configured
    digest = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]
    base = Path(tempfile.gettempdir()) / f"bakery-ami-collections-{digest}"
    link = base / "ansible_collections" / "bakery" / "ami"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO_ROOT)
    return str(base)


def ansible_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=collections_path(),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=AWS_REGION,
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("AWS_PROFILE", None)
    if extra:
        env.update(extra)
    return env


def ansible_bin(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def run_playbook_cmd(playbook, extra_vars: dict | None = None, args: list | None = None, env: dict | None = None,
                     timeout: int = 1800) -> subprocess.CompletedProcess:
    cmd = [ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    cmd += list(args or [])
    return subprocess.run(cmd, env=ansible_env(env), cwd=str(REPO_ROOT), capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="session")
def local_aws():
    """The local AWS endpoint (moto plus the collection's gap fills), one per test session."""
    from tools.local_aws.control import LocalAws  # pylint: disable=import-outside-toplevel

    with LocalAws.start(port=0) as aws:
        yield aws


@pytest.fixture
def aws(local_aws):
    """The session endpoint, reset to an empty account with default timeline and no faults."""
    local_aws.reset()
    yield local_aws


@pytest.fixture
def run_playbook():
    """Run a playbook on localhost with this checkout as bakery.ami; returns CompletedProcess."""
    return run_playbook_cmd


@pytest.fixture(scope="session")
def rootfs_image():
    """The cached Debian 12 root the local builder starts from (built once, about a minute)."""
    from tools.rootfs import harness  # pylint: disable=import-outside-toplevel

    reasons = harness.missing_prerequisites()
    if reasons:
        pytest.skip("rootfs harness unavailable: " + "; ".join(reasons))
    return harness.ensure_image()
