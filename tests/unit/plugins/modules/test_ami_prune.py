# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_prune's main(): bad input fails before any AWS client exists; regions, check mode and failures."""
from __future__ import annotations

from unittest.mock import MagicMock, patch

import pytest


from ansible_collections.bakery.ami.plugins.module_utils import _prune
from ansible_collections.bakery.ami.plugins.modules import ami_prune

from tests.unit.plugins.modules.module_runner import patch_clients, refused_before_aws, run_module

REGIONAL = "ansible_collections.bakery.ami.plugins.module_utils._aws.regional_clients"


def fake_regional(module, service, regions):
    return {region: f"{service}-{region}" for region in dict.fromkeys(regions)}


RUN = "ansible_collections.bakery.ami.plugins.module_utils._prune.Pruner.run"
BASE = {"region": "us-east-1", "access_key": "testing", "secret_key": "testing"}


def run_main(capsys, check_mode=False, **args):
    rc, result = run_module(ami_prune.main, capsys, dict(BASE, **args), check_mode=check_mode)
    result["_rc"] = rc
    return result


@pytest.mark.parametrize(
    "args,fragment",
    [
        ({"family": "web-base", "keep_latest": 0}, "keep_latest: must be at least 1 (the newest image is always kept), got 0"),
        ({"keep_latest": 2}, "one of the following is required: family, tags"),
        ({"family": "web-base"},
         "keep_latest, keep_days, deprecate_after_days, disable_after_days, deregister_after_days, deprecate_after_count, "
         "disable_after_count or deregister_after_count: at least one of them is required"),
        ({"family": "web-base", "keep_latest": 1, "disable_after_days": -1},
         "disable_after_days: must be a whole number of days from 0 to 36500, got -1"),
        ({"family": "web-base", "keep_latest": 1, "deregister_after_days": -3},
         "deregister_after_days: must be a whole number of days from 0 to 36500, got -3"),
        ({"family": "web-base", "keep_latest": 1, "keep_launched_within_days": -1},
         "keep_launched_within_days: must be a whole number of days from 0 to 36500, got -1"),
        ({"family": "web-base", "deprecate_after_days": 30, "disable_after_days": 10},
         "disable_after_days: 10 days is before deprecate_after_days (30 days); an image is deprecated, then disabled, "
         "then deregistered"),
        ({"family": "web-base", "disable_after_days": 60, "deregister_after_days": 30},
         "deregister_after_days: 30 days is before disable_after_days (60 days)"),
        ({"family": "web-base", "disable_after_days": 60, "keep_days": 30}, "keep_days: 30 days is before disable_after_days (60 days)"),
        ({"family": "web-base", "keep_days": 30, "deregister_after_days": 30}, "keep_days and deregister_after_days: both are the age"),
        ({"family": "web-base", "deregister_after_days": 30, "deregister": False}, "deregister_after_days: deregister is false"),
        ({"family": "web-base", "state": "restored"}, "version: state=restored needs the bakery:version"),
        ({"family": "web-base", "disable_after_count": 0}, "disable_after_count: must be a whole number of images from 1 to 100000"),
        ({"family": "web-base", "disable_after_count": 5, "deregister_after_count": 3},
         "deregister_after_count: 3 images is fewer than disable_after_count (5)"),
        ({"family": "web-base", "keep_latest": 1, "recycle_bin_retention_days": 0},
         "recycle_bin_retention_days: must be a whole number of days from 1 to 365"),
        ({"tags": {"bakery:stage": "base"}, "keep_latest": 1, "recycle_bin_retention_days": 7},
         "recycle_bin_retention_days: needs family"),
        ({"family": "web-base", "state": "restored", "version": "v*"}, "may not hold *"),
        ({"family": "web-base", "state": "restored", "version": "1", "keep_latest": 2},
         "keep_latest: state=restored only enables a disabled version"),
        ({"family": "web-base", "keep_latest": 1, "regions": ["us-east-1", "nowhere"]}, "regions: 'nowhere' is not an AWS region name"),
        ({"family": "web-base", "keep_days": -2}, "keep_days: must be a whole number of days from 0 to 36500, got -2"),
        ({"tags": {"bakery:family": "*"}, "keep_latest": 1},
         "tags: the value of tag 'bakery:family' is '*'; tag values are matched literally and may not hold *"),
        ({"family": "web-base\n", "keep_latest": 1}, "family: 'web-base\\n' is not a family name"),
        ({"family": "web-base", "keep_latest": 1, "max_deletions": -1}, "max_deletions: must be a whole number of images"),
        ({"family": "web-base", "keep_latest": 1, "tags": {"aws:x": "y"}}, "tags: tag name 'aws:x' uses the reserved prefix"),
    ],
)
def test_bad_input_fails_before_any_client_is_made(capsys, args, fragment):
    assert fragment in refused_before_aws(run_main, capsys, args, RUN)["msg"]


def test_one_client_per_region_and_check_mode_reaches_the_pruner(capsys):
    seen = {}

    def fake_run(self):
        seen.update(clients=sorted(self.clients), check_mode=self.check_mode, request=self.request)
        return {"changed": True, "dry_run": self.check_mode, "regions": {}}

    with patch(REGIONAL, side_effect=fake_regional) as regional, patch.object(_prune.Pruner, "run", fake_run):
        result = run_main(capsys, check_mode=True, family="web-base", keep_latest=2, regions=["eu-west-1", "us-west-2"])
    assert result["_rc"] == 0 and result["dry_run"] is True
    assert seen["clients"] == ["eu-west-1", "us-west-2"]
    assert seen["check_mode"] is True
    assert seen["request"].deregister is True and seen["request"].delete_snapshots is True
    assert seen["request"].protect_in_use is True and seen["request"].required is False
    assert seen["request"].max_deletions is None and seen["request"].prune_without_family is False
    # one client per region and service (EC2, SSM for the in-use checks, Recycle Bin), all made at once
    assert [call.args[1] for call in regional.call_args_list] == ["ec2", "ssm", "rbin"]
    assert all(list(call.args[2]) == ["eu-west-1", "us-west-2"] for call in regional.call_args_list)


def test_regions_default_to_the_module_region(capsys):
    with patch_clients() as client, patch(RUN, return_value={"changed": False, "regions": {}}):
        result = run_main(capsys, family="web-base", keep_latest=1)
    assert result["_rc"] == 0
    assert [(call.args[1], list(call.args[2])) for call in client.call_args_list] == [
        ("ec2", ["us-east-1"]), ("ssm", ["us-east-1"]), ("rbin", ["us-east-1"])]


def test_required_with_no_match_is_a_clean_failure(capsys):
    error = _prune.PruneError("family: 'x' (tag bakery:family) matches no image of this account in us-east-1 (required is true)")
    with patch_clients(), patch(RUN, side_effect=error):
        result = run_main(capsys, family="x", keep_latest=1, required=True)
    assert result["_rc"] == 1
    assert result["msg"] == str(error)
    assert "exception" not in result


def test_partial_failure_reports_the_plan(capsys):
    err = MagicMock(message="Failed to deregister image", exception="UnauthorizedOperation")
    failure = _prune.PartialFailure({"changed": True, "regions": {"eu-west-1": {"deregistered": []}}, "dry_run": False},
                                    {"eu-west-1": err}, "pruning")
    with patch_clients(), patch(RUN, side_effect=failure):
        result = run_main(capsys, family="x", keep_latest=1)
    assert result["_rc"] == 1
    assert result["msg"] == "pruning failed in eu-west-1; in eu-west-1: Failed to deregister image: UnauthorizedOperation"
    assert result["regions"] == {"eu-west-1": {"deregistered": []}}


def test_a_run_stopped_at_the_deletion_limits_returns_its_plan(capsys):
    plan = {"eu-west-1": {"images": 5, "deregistered": [{"image_id": "ami-1"}], "kept": [], "deprecated": []}}
    error = _prune.PruneError("max_deletions: stopped before any change; this run would deregister ...",
                              {"changed": False, "regions": plan, "dry_run": True, "would_deregister": 4})
    with patch_clients(), patch(RUN, side_effect=error):
        result = run_main(capsys, check_mode=True, family="web-base", keep_latest=1)
    assert result["_rc"] == 1 and result["failed"] is True
    assert result["msg"] == error.msg
    assert result["regions"] == plan and result["would_deregister"] == 4 and result["changed"] is False
    assert "exception" not in result
