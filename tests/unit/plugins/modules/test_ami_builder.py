# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_builder's main(): bad input fails before any AWS client exists; outcomes map to results and failures."""
from __future__ import annotations

import os
from unittest.mock import patch

import botocore.exceptions
import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _builder
from ansible_collections.bakery.ami.plugins.module_utils import _cleanup
from ansible_collections.bakery.ami.plugins.module_utils import _waiter
from ansible_collections.bakery.ami.plugins.modules import ami_builder

from tests.unit.plugins.modules.module_runner import patch_clients, refused_before_aws, run_module

RUN = "ansible_collections.bakery.ami.plugins.module_utils._builder.Builder.run"
BASE = {"region": "us-east-1", "access_key": "testing", "secret_key": "testing"}
GOOD = {"run_id": "run-abc123", "image_id": "ami-0123456789abcdef0"}


def run_main(capsys, check_mode=False, **args):
    rc, result = run_module(ami_builder.main, capsys, dict(BASE, **args), check_mode=check_mode)
    result["_rc"] = rc
    return result


@pytest.mark.parametrize(
    "args,fragment",
    [
        ({"run_id": "ab", "image_id": "ami-0123456789abcdef0"}, "run_id: must be 6-64 characters"),
        ({"run_id": "run-abc123"}, "image_id: required when state is running"),
        (dict(GOOD, ssh_cidrs=["0.0.0.0/0"]), "ssh_cidrs[0]: '0.0.0.0/0' opens SSH to the whole internet"),
        (dict(GOOD, ssh_cidrs=["0.0.0.0/1", "128.0.0.0/1"]), "cover all of IPv4 and open SSH to the whole internet"),
        (dict(GOOD, ssh_cidrs=["::/1", "8000::/1"]), "cover all of IPv6 and open SSH to the whole internet"),
        (dict(GOOD, run_id="run-abc123\n"), "run_id: must be 6-64 characters"),
        (dict(GOOD, expires_at="2001-01-01T00:00:00Z"), "expires_at: '2001-01-01T00:00:00Z' is in the past"),
        (dict(GOOD, key_file="/no/such/dir/key"), "key_file: the directory of '/no/such/dir/key'"),
        (dict(GOOD, volume_size=0), "volume_size: must be 1-16384 GiB, got 0"),
        (dict(GOOD, volume_type="ssd"), "value of volume_type must be one of"),
        (dict(GOOD, expires_at="whenever"), "expires_at: 'whenever' is not an ISO-8601 time"),
        (dict(GOOD, state="gone"), "value of state must be one of"),
        ({"run_id": "no", "state": "absent"}, "run_id: must be 6-64 characters"),
        (dict(GOOD, instance_types=[]), "instance_types: must be a list of 1-20 instance types"),
        (dict(GOOD, instance_types=["t3.micro", "t3.micro"]), "instance_types: each type once"),
        (dict(GOOD, instance_types=["t3.micro"], instance_type="t3.small"), "mutually exclusive: instance_type|instance_types"),
    ],
)
def test_bad_input_fails_before_any_client_is_made(capsys, args, fragment):
    assert fragment in refused_before_aws(run_main, capsys, args, RUN)["msg"]


def test_options_reach_the_builder_and_the_result_is_returned(capsys):
    seen = {}

    def fake_run(self):
        seen.update(request=self.request, check_mode=self.check_mode, tags=self.tags)
        self.warn("a warning from the core")
        return {"changed": True, "instance_id": "i-0123456789abcdef0", "state": "running", "created": ["instance"]}

    with patch_clients() as client, patch.object(_builder.Builder, "run", fake_run):
        result = run_main(capsys, check_mode=True, expires_at="2030-01-01T00:00:00Z", **GOOD)
    assert result["_rc"] == 0
    assert result["instance_id"] == "i-0123456789abcdef0"
    assert "a warning from the core" in str(result["warnings"])
    assert seen["check_mode"] is True
    r = seen["request"]
    assert (r.state, r.instance_types, r.volume_size, r.volume_type, r.root_device_name) == (
        "running", ("t3.micro",), 8, "gp3", "/dev/xvda")
    assert r.wait is True and r.wait_timeout == 600 and r.ssh_cidrs == () and r.allow_open_ssh is False
    assert r.associate_public_ip is None and r.expires_at == "2030-01-01T00:00:00Z"
    assert seen["tags"] == {"bakery:run-id": "run-abc123", "Name": "bakery-run-abc123", "bakery:expires-at": "2030-01-01T00:00:00Z"}
    client.assert_called_once()
    assert client.call_args.args[1:] == ("ec2", ["us-east-1"])


@pytest.mark.parametrize(
    "error,expected",
    [
        (_builder.BuilderError("key_file: '/k' does not exist"), "key_file: '/k' does not exist"),
        (_waiter.WaitTimeout("timed out after 60 s waiting for instances to be running", {"instances": ["i-1"]}),
         "timed out after 60 s waiting for instances to be running"),
    ],
)
def test_failures_are_clean_messages(capsys, error, expected):
    with patch_clients(), patch(RUN, side_effect=error):
        result = run_main(capsys, **GOOD)
    assert result["_rc"] == 1
    assert result["msg"] == expected


def test_cleanup_failure_lists_every_error_and_what_was_removed(capsys):
    removed = {"instances": ["i-1"], "security_groups": [], "key_pairs": ["bakery-run-abc123"], "volumes": []}
    error = _cleanup.CleanupError(["delete security group sg-1: in use", "delete volume vol-1: in use"],
                                  {"changed": True, "removed": removed})
    with patch_clients(), patch(RUN, side_effect=error):
        result = run_main(capsys, run_id="run-abc123", state="absent")
    assert result["_rc"] == 1
    assert result["errors"] == ["delete security group sg-1: in use", "delete volume vol-1: in use"]
    assert result["removed"] == removed
    assert result["changed"] is True
    assert "2 errors" in result["msg"]


def test_instance_types_reach_the_core_and_every_refusal_is_returned(capsys):
    attempts = [{"instance_type": "m7i.large", "error_code": "InsufficientInstanceCapacity"},
                {"instance_type": "m6i.large", "error_code": "Unsupported"}]
    error = _builder.BuilderError("instance_types: EC2 launched none of the 2 instance types: ...",
                                  {"changed": True, "instance_type": None, "instance_type_attempts": attempts,
                                   "created": ["security_group"]})
    seen = {}

    def fake_run(self):
        seen["types"] = self.request.instance_types
        raise error

    with patch_clients(), patch.object(_builder.Builder, "run", fake_run):
        result = run_main(capsys, instance_types=["m7i.large", "m6i.large"], **GOOD)
    assert seen["types"] == ("m7i.large", "m6i.large")
    assert result["_rc"] == 1 and result["msg"].startswith("instance_types: EC2 launched none of the 2")
    assert result["instance_type_attempts"] == attempts and result["changed"] is True


def test_aws_errors_carry_the_operation_and_the_code(capsys):
    cause = botocore.exceptions.ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "denied"}}, "RunInstances")
    error = _aws.BakeryAWSError(message="Failed to run instances", exception=cause)
    with patch_clients(), patch(RUN, side_effect=error):
        result = run_main(capsys, **GOOD)
    assert result["_rc"] == 1
    assert result["msg"].startswith("Failed to run instances")
    assert result["error"]["code"] == "UnauthorizedOperation"


def test_a_file_at_key_file_that_is_not_the_runs_is_refused_before_any_client(capsys, tmp_path):
    decoy = tmp_path / "id_ed25519"
    decoy.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nthe user's own\n-----END OPENSSH PRIVATE KEY-----\n")
    os.chmod(decoy, 0o600)
    before = (decoy.stat().st_ino, decoy.stat().st_mode, decoy.read_bytes())
    result = refused_before_aws(run_main, capsys, dict(GOOD, key_file=str(decoy)), RUN)
    assert result["msg"].startswith(f"key_file: '{decoy}' exists and is not this run's key")
    assert (decoy.stat().st_ino, decoy.stat().st_mode, decoy.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["id_ed25519"]
