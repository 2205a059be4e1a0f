# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_launch_template's main(): bad input fails before any AWS client exists; clients, check mode, diff, failures."""
from __future__ import annotations

from unittest.mock import patch

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _launch_template
from ansible_collections.bakery.ami.plugins.modules import ami_launch_template

from tests.unit.plugins.modules.module_runner import refused_before_aws, run_module

REGIONAL = "ansible_collections.bakery.ami.plugins.module_utils._aws.regional_clients"
RUN = "ansible_collections.bakery.ami.plugins.module_utils._launch_template.LaunchTemplates.run"
BASE = {"region": "us-east-1", "access_key": "testing", "secret_key": "testing", "launch_template": "web"}
A1 = "ami-0000000000000000a"


def run_main(capsys, check_mode=False, diff=False, **args):
    rc, result = run_module(ami_launch_template.main, capsys, dict(BASE, **args), check_mode=check_mode, diff=diff)
    result["_rc"] = rc
    return result


@pytest.mark.parametrize("args,fragment", [
    ({"launch_template": "web app", "image_id": A1}, "launch_template: 'web app' is neither a launch template ID"),
    ({"launch_template": "web\n", "image_id": A1}, "launch_template: 'web\\n' is neither"),
    ({"image_id": "ami-1"}, "image_id: 'ami-1' is not a valid image ID"),
    ({"images": {"xx-north-9": A1}}, "images: unknown region 'xx-north-9'"),
    ({"image_id": A1, "source_version": "latest"}, "source_version: 'latest' is not $Latest, $Default or a version number"),
    ({}, "image_id or images: one of them is required with state=present"),
    ({"state": "absent"}, "state: absent removes the versions made for an image or by a run"),
])
def test_bad_input_fails_before_any_client_is_made(capsys, args, fragment):
    with patch(REGIONAL) as regional:
        result = refused_before_aws(run_main, capsys, args, RUN)
    regional.assert_not_called()
    assert fragment in result["msg"]


def test_clients_per_region_check_mode_and_diff(capsys):
    seen = {}

    def fake_run(self):
        seen.update(clients=self.clients, check_mode=self.check_mode, request=self.request)
        return {"changed": True, "launch_template": "web", "regions": {}, "diff": {"before": {}, "after": {}}}

    with patch(REGIONAL, side_effect=lambda module, service, regions: {r: f"{service}-{r}" for r in regions}), \
            patch(RUN, fake_run):
        result = run_main(capsys, check_mode=True, diff=True, images={"us-east-1": A1, "eu-west-1": A1},
                          set_default=True)
    assert result["_rc"] == 0 and result["changed"] is True and result["diff"] == {"before": {}, "after": {}}
    assert seen["clients"] == {"us-east-1": "ec2-us-east-1", "eu-west-1": "ec2-eu-west-1"}
    assert seen["check_mode"] is True and seen["request"].set_default is True


def test_a_core_failure_is_returned_with_the_plan(capsys):
    def failing(self):
        raise _launch_template.LaunchTemplateError("launch_template: no launch template ... ; nothing was changed",
                                                   {"changed": False, "launch_template": "web", "regions": {}, "diff": {}})

    with patch(REGIONAL, return_value={"us-east-1": "ec2"}), patch(RUN, failing):
        result = run_main(capsys, image_id=A1)
    assert result["_rc"] == 1 and result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("launch_template: no launch template") and "diff" not in result
