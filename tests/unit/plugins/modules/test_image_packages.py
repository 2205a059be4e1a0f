# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_packages' main(): read-only, same in check mode, failures named."""
from __future__ import annotations

from unittest.mock import patch

from ansible_collections.bakery.ami.plugins.modules import image_packages

from tests.unit.plugins.module_utils.test_packages import AMAZON, DEBIAN, STATUS, tree
from tests.unit.plugins.modules.module_runner import run_module


def test_lists_the_packages_and_changes_nothing_in_check_mode(tmp_path, capsys):
    root = tree(tmp_path, dict(DEBIAN, **{"/var/lib/dpkg/status": STATUS}))
    for check_mode in (False, True):
        code, result = run_module(image_packages.main, capsys, {"root": root}, check_mode=check_mode)
        assert code == 0 and result["changed"] is False
        assert result["count"] == 3 and [p["name"] for p in result["packages"]] == ["bsdutils", "held", "libc6"]
        assert result["format"] == "deb" and result["codename"] == "bookworm"


def test_an_rpm_root_on_a_host_without_rpm_fails_naming_what_is_missing(tmp_path, capsys):
    root = tree(tmp_path, AMAZON)
    with patch("ansible.module_utils.basic.AnsibleModule.get_bin_path", return_value=None):
        code, result = run_module(image_packages.main, capsys, {"root": root})
    assert code == 1 and result["failed"] is True
    assert "Amazon Linux" in result["msg"] and "no rpm command" in result["msg"]
    assert "Traceback" not in result["msg"]
