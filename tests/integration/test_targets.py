# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every tests/integration/targets/<name>/ against the local AWS endpoint.

A target is role-shaped (tasks/main.yml, optional defaults/files). It runs on localhost with
module_defaults pointing bakery.ami and amazon.aws at the endpoint, in a fresh account. Its
`aliases` file may say `disabled` (skipped, with the reason on the next line as a comment) or
`needs/root_harness` (the target also gets the cached Debian root filesystem, which needs root).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

TARGETS = Path(__file__).resolve().parent / "targets"

PLAYBOOK = """\
- name: Integration target {name}
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/bakery.ami.ami: &aws
      endpoint_url: "{{{{ aws_endpoint_url }}}}"
      region: "{{{{ aws_region }}}}"
      access_key: testing
      secret_key: testing
    group/amazon.aws.aws: *aws
    group/community.aws.aws: *aws
  tasks:
    - name: Run target {name}
      ansible.builtin.include_role:
        name: {name}
"""


def _aliases(target: Path) -> list:
    path = target / "aliases"
    if not path.exists():
        return []
    return [line.split("#", 1)[0].strip() for line in path.read_text().splitlines() if line.split("#", 1)[0].strip()]


def _targets() -> list:
    params = []
    for target in sorted(p for p in TARGETS.iterdir() if (p / "tasks" / "main.yml").exists()):
        aliases = _aliases(target)
        marks = []
        if "disabled" in aliases:
            marks.append(pytest.mark.skip(reason=f"{target.name}: marked disabled in its aliases file"))
        params.append(pytest.param(target.name, aliases, id=target.name, marks=marks))
    return params


@pytest.fixture(scope="session")
def rootfs_tarball():
    if os.geteuid() != 0:
        pytest.skip("the root filesystem harness needs root (debootstrap, chroot, mounts)")
    from tools.rootfs import harness  # pylint: disable=import-outside-toplevel

    return str(harness.ensure_image())


@pytest.mark.parametrize("name,aliases", _targets())
def test_target(name, aliases, aws, run_playbook, tmp_path, request):
    extra_vars = {
        "aws_endpoint_url": aws.url,
        "aws_region": "us-east-1",
        "bakery_control_url": aws.url,
        "bakery_repo_root": str(TARGETS.parents[2]),
        "bakery_scratch": str(tmp_path),
    }
    if "needs/root_harness" in aliases:
        extra_vars["bakery_rootfs_cache"] = request.getfixturevalue("rootfs_tarball")
    playbook = tmp_path / "target.yml"
    playbook.write_text(PLAYBOOK.format(name=name))
    result = run_playbook(playbook, extra_vars, env={"ANSIBLE_ROLES_PATH": str(TARGETS)})
    output = result.stdout[-20000:] + result.stderr[-5000:]
    assert result.returncode == 0, f"target {name} failed (rc={result.returncode}):\n{output}"
    assert "failed=0" in result.stdout, output
