# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drive a module's main() the way Ansible does and read back its JSON result."""
from __future__ import annotations

import json
from unittest.mock import MagicMock, patch

import pytest

from ansible.module_utils.testing import patch_module_args

# Every AWS client a module makes comes from here (_aws.client too).
AWS_CLIENTS = "ansible_collections.bakery.ami.plugins.module_utils._aws.regional_clients"


def patch_clients(client=None):
    """Patch _aws.regional_clients: every client the module makes is `client` (a new MagicMock by default).

    The patch (entered with `with ... as clients`) records each call as (module, service, regions).
    """
    client = MagicMock() if client is None else client
    return patch(AWS_CLIENTS, side_effect=lambda module, service, regions, **_how: {region: client for region in regions})


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


def refused_before_aws(run_main, capsys, args: dict, core_run: str) -> dict:
    """Run main() with bad arguments: it must fail without making a client or running its core."""
    with patch(AWS_CLIENTS) as client, patch(core_run) as run:
        result = run_main(capsys, **args)
    assert result["_rc"] == 1
    assert result["failed"] is True
    client.assert_not_called()
    run.assert_not_called()
    return result
