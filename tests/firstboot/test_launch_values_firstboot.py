# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launch values arrive intact, with real cloud-init, on each verified Debian suite.

The customize role (the real plan, run by ansible-playbook) turns bake_launch_config.values into
launch user-data; a fresh root is first-booted with it in a chroot; then the image's own /bin/sh
sources the values file (in the sandbox of plugins/module_utils/_sandbox.py, as the boot check
does), and every variable must equal the bake variable itself: values that a naive KEY=value
writer breaks (spaces, quotes, `=`, `$`, backticks, backslashes, newlines, a trailing newline,
booleans, numbers, null, empty, non-ASCII). The same check on the file the old plan wrote (lines
joined with a literal backslash-n) fails, so the check can fail.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import yaml

from tests.integration.conftest import ansible_bin, ansible_env
from tools import local_builder
from tools.rootfs import harness

VALUES = {
    "BAKERY_ENVIRONMENT": "local-demo",
    "BAKERY_LOG_LEVEL": "info",
    "WITH_SPACES": "two words  and a\ttab",
    "SINGLE_QUOTE": "it's",
    "DOUBLE_QUOTE": 'say "hi"',
    "EQUALS": "a=b=c",
    "DOLLAR": "$HOME ${PATH} $(id) `id`",
    "BACKSLASH": "C:\\path\\n not a newline",
    "NEWLINES": "line one\nline two",
    "TRAILING_NEWLINE": "ends\n",
    "SEMICOLON": "x; touch /tmp/bakery-pwned",
    "HASH": "# not a comment",
    "EMPTY": "",
    "NOTHING": None,
    "TRUE": True,
    "NUMBER": 8080,
    "FLOAT": 1.5,
    "UNICODE": "h\u00e9llo \u2713",
    "_under_score9": "ok",
}
VALUES_PATH = "/etc/default/bakery-values-test"


@pytest.fixture(scope="module")
def launch_user_data(tmp_path_factory):
    """The customize plan's user-data for VALUES (one ansible-playbook run for every suite)."""
    tmp = tmp_path_factory.mktemp("launch-values")
    out = tmp / "user-data.yml"
    book = tmp / "plan.yml"
    book.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Plan", "ansible.builtin.include_role": {
            "name": "bakery.ami.customize", "tasks_from": "plan.yml"},
            "vars": {"customize_level": "full", "customize_launch_config": {
                "values": VALUES, "values_path": VALUES_PATH},
                "customize_user_data_path": str(out)}}]}]))
    proc = subprocess.run([ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", str(book)],
                          env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return out.read_text()


def wrong_values(sourced: dict) -> list:
    return [key for key, value in VALUES.items() if sourced.get(key) != local_builder.launch_value_text(value)]


def test_launch_values_sourced_in_the_booted_image_equal_the_bake_variables(fresh_root, launch_user_data, suite):
    data = yaml.safe_load(launch_user_data)
    assert [f["path"] for f in data["write_files"]] == [VALUES_PATH]
    boot = harness.first_boot(fresh_root, instance_id="i-%s" % uuid.uuid4().hex[:17], hostname="ip-10-1-2-3",
                              user_data=launch_user_data)
    assert (fresh_root / VALUES_PATH.lstrip("/")).is_file(), boot.output_log[-3000:]
    sourced, why = local_builder.source_in_image(fresh_root, VALUES_PATH)
    assert sourced is not None, why
    assert wrong_values(sourced) == [], suite
    assert not (fresh_root / "tmp" / "bakery-pwned").exists()

    # the old plan's file: KEY=value lines joined with a literal backslash-n
    old = "\\n".join("%s=%s" % (k, "" if v is None else v) for k, v in VALUES.items()) + "\\n"
    (fresh_root / "etc/default/bakery-old").write_text(old)
    sourced, why = local_builder.source_in_image(fresh_root, "/etc/default/bakery-old")
    assert sourced is None or len(wrong_values(sourced)) >= len(VALUES) - 2, "the check cannot fail"
