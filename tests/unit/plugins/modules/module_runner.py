# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drive a module's main() the way Ansible does and read back its JSON result."""
from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args


def run_module(main, capsys, args: dict, check_mode: bool = False, diff: bool = False) -> tuple:
    """Run main() with these module arguments; returns (exit code, result)."""
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)
