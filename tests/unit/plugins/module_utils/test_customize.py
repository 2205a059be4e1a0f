# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The customize plan: what is baked and what happens at launch, per level."""
from __future__ import annotations

import hashlib
import subprocess

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _customize
from ansible_collections.bakery.ami.plugins.module_utils._customize import CustomizeError

FILES = [{"path": "/etc/motd", "content": "hi\n", "mode": "0644"},
         {"path": "/etc/app.conf", "template": "app.conf.j2", "mode": "0640", "owner": "app", "group": "app"}]
TEMPLATES = {"app.conf.j2": "rendered\n"}


def plan(level, **kw):
    args = dict(packages=["cron"], files=FILES, services=["cron"],
                launch_config={"values": {"ENV": "prod"}, "values_path": "/etc/default/app"}, templates=TEMPLATES)
    args.update(kw)
    return _customize.plan(level, args["packages"], args["files"], args["services"], args["launch_config"],
                           args["templates"])


def test_full_bakes_everything_and_writes_only_launch_values_at_launch():
    p = plan("full")
    assert p["baked"]["packages"] == ["cron"] and p["baked"]["services"] == ["cron"]
    assert [f["path"] for f in p["baked"]["files"]] == ["/etc/motd", "/etc/app.conf"]
    assert p["baked"]["files"][1]["sha256"] == hashlib.sha256(b"rendered\n").hexdigest()
    assert p["launch"]["files"] == ["/etc/default/app"]
    assert p["user_data"]["runcmd"] == [["sh", "-c", 'service "$0" restart || true', "cron"]]


def test_standard_bakes_packages_and_applies_files_and_services_at_launch():
    p = plan("standard")
    assert p["baked"] == {"packages": ["cron"], "files": [], "services": []}
    assert p["launch"]["files"] == ["/etc/motd", "/etc/app.conf", "/etc/default/app"]
    assert p["launch"]["services"] == ["cron"]
    assert p["user_data"]["write_files"][1] == {"path": "/etc/app.conf", "content": "rendered\n",
                                                "permissions": "0640", "owner": "app:app"}
    assert "packages" not in p["user_data"]


def test_minimal_does_everything_at_launch():
    p = plan("minimal")
    assert p["baked"] == {"packages": [], "files": [], "services": []}
    assert p["user_data"]["packages"] == ["cron"]


@pytest.mark.parametrize("values", [
    {"A": "plain", "B": "two words", "C": "it's", "D": "a=b", "E": "$HOME `id` $(id)", "F": "line1\nline2",
     "G": "", "H": 42, "I": True, "J": "\\back\\slash", "K": '"quoted"'},
])
def test_launch_values_come_back_exactly_when_sh_sources_the_file(tmp_path, values):
    text = _customize.values_file(values)
    path = tmp_path / "values"
    path.write_text(text)
    names = list(values)
    script = ". %s; for n in %s; do eval \"printf '%%s\\0' \\\"\\$$n\\\"\"; done" % (path, " ".join(names))
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode()
    assert out.split("\0")[:-1] == [_customize.value_text(values[n]) for n in names]


@pytest.mark.parametrize("config, message", [
    ({"values": {"1BAD": "x"}}, r"^bake_launch_config\.values: '1BAD' is not a shell variable name"),
    ({"values": {"A-B": "x"}}, r"is not a shell variable name"),
    ({"values": {"A": {"nested": 1}}}, r"^bake_launch_config\.values: A must be a string, number, boolean or null"),
    ({"values": ["A=1"]}, r"^bake_launch_config\.values: must be a mapping"),
    ({"values_path": "relative"}, r"^bake_launch_config\.values_path: must be an absolute path"),
    ({"other": 1}, r"^bake_launch_config: unknown keys other"),
    ({"files": [{"path": "/x", "content": 1}]}, r"^bake_launch_config\.files: /x: content must be a string"),
])
def test_bad_launch_config_is_refused_naming_the_key(config, message):
    with pytest.raises(CustomizeError, match=message):
        _customize.check_launch_config("bake_launch_config", config)


@pytest.mark.parametrize("entry, message", [
    ({"path": "/a", "content": "x", "template": "t"}, "content or template, not both"),
    ({"path": "/a", "mode": "rwx"}, "mode must be an octal string"),
    ({"path": "/a", "mode": "04755x"}, "mode must be an octal string"),
    ({"path": "/a/../../etc/shadow"}, "without '..'"),
    ({"path": "/a\nb"}, "without '..' or control characters"),
    ({"path": "/a", "owner": "bad name"}, "owner must be a user or group name"),
    ({"path": "/a", "colour": "red"}, "unknown keys colour"),
])
def test_bad_files_are_refused(entry, message):
    with pytest.raises(CustomizeError, match=message):
        _customize.check_files("bake_files", [entry])


def test_a_file_listed_twice_is_refused():
    with pytest.raises(CustomizeError, match="/a is listed twice"):
        _customize.check_files("bake_files", [{"path": "/a"}, {"path": "/a"}])
