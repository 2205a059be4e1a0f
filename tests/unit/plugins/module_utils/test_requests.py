# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""build_request of every core: valid options make the typed (frozen) request, every rule
refuses with a message naming the option (and lists every problem in ``errors``)."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _builder
from ansible_collections.bakery.ami.plugins.module_utils import _cloudinit
from ansible_collections.bakery.ami.plugins.module_utils import _copy_request
from ansible_collections.bakery.ami.plugins.module_utils import _create
from ansible_collections.bakery.ami.plugins.module_utils import _find
from ansible_collections.bakery.ami.plugins.module_utils import _prune
from ansible_collections.bakery.ami.plugins.module_utils import _release
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

NEXT_YEAR = datetime.datetime.now(datetime.timezone.utc).year + 1
FUTURE = f"{NEXT_YEAR}-01-31T00:00:00Z"
INSTANCE = "i-0123456789abcdef0"
SNAPSHOT = "snap-0123456789abcdef0"
ACCOUNT = "123456789012"


def create_params(**overrides):
    # what AnsibleModule hands over: every option, defaults filled
    base = {
        "name": "web-base 2026.12.06", "description": None, "instance_id": INSTANCE, "reboot": True,
        "stop_instance": False, "terminate_instance": False, "snapshot_id": None, "architecture": None,
        "root_device_name": None, "boot_mode": None, "ena_support": None, "tags": None, "snapshot_tags": None,
        "pending_tags": None, "build_id": None, "imds_support": "v2.0", "deprecate_at": None, "protect": False,
        "protect_cooldown": False, "launch_permissions": None, "share_snapshots": None,
        "block_device_mappings": None, "copy": None, "wait": True, "wait_timeout": 3600,
    }
    base.update(overrides)
    return base


# ---------------------------------------------------------------------------------------------
# ami_create


def test_create_instance_request_has_the_options_and_the_defaults():
    request = _create.build_request(create_params(
        tags={"bakery:family": "web-base"}, build_id="b1", deprecate_at=FUTURE, protect=True, stop_instance=True,
        block_device_mappings=[{"device_name": "/dev/xvda", "volume_type": "gp3", "volume_size": 16, "iops": 4000}],
    ), "us-east-1")
    assert request.name == "web-base 2026.12.06" and request.instance_id == INSTANCE and request.snapshot_id is None
    assert not request.snapshot_mode and request.root_device == "/dev/xvda"
    assert request.reboot is True and request.stop_instance is True and request.protect is True
    assert request.tags == {"bakery:family": "web-base"} and request.snapshot_tags is None and request.build_id == "b1"
    assert request.deprecate_at == FUTURE and request.wait is True and request.wait_timeout == 3600
    assert request.block_device_mappings == (_create.Device("/dev/xvda", volume_size=16, volume_type="gp3", iops=4000),)
    assert request.copy is None and request.pending_tags == {}
    assert request.launch_permissions == [] and request.share_user_ids == []
    assert _create.wanted_protection(request) == "enabled-without-cooldown"


def test_create_request_is_frozen():
    request = _create.build_request(create_params())
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.name = "other"  # type: ignore[misc]


def test_create_snapshot_request_and_its_devices():
    request = _create.build_request(create_params(
        instance_id=None, snapshot_id=SNAPSHOT, root_device_name="/dev/sda1", architecture="arm64",
        block_device_mappings=[{"device_name": "/dev/sdb", "volume_size": 8, "kms_key_id": "alias/images"}],
    ))
    assert request.snapshot_mode and request.root_device == "/dev/sda1" and request.architecture == "arm64"
    device = request.block_device_mappings[0]
    assert (device.device_name, device.volume_size, device.kms_key_id, device.encrypted) == ("/dev/sdb", 8, "alias/images", None)


def test_create_request_shares_and_copies_as_asked():
    request = _create.build_request(create_params(
        launch_permissions={"user_ids": [ACCOUNT]}, pending_tags={"bakery:expires-at": FUTURE},
        copy={"regions": ["us-west-2"]},
    ), "us-east-1")
    assert request.launch_permissions == [{"UserId": ACCOUNT}] and request.share_user_ids == [ACCOUNT]
    assert request.pending_tags == {"bakery:expires-at": FUTURE}
    assert isinstance(request.copy, _copy_request.CopyRequest)
    assert [spec.region for spec in request.copy.regions] == ["us-west-2"]
    # the copies are shared as the image is, and carry the pending tags too
    assert request.copy.launch_permissions == [{"UserId": ACCOUNT}] and request.copy.share_user_ids == [ACCOUNT]
    assert request.copy.pending_tags == {"bakery:expires-at": FUTURE}


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"name": "ab"}, "name: AMI names are 3-128 characters"),
        ({"instance_id": None}, "instance_id or snapshot_id: one of them is required"),
        ({"snapshot_id": SNAPSHOT}, "instance_id and snapshot_id: give only one of them"),
        ({"instance_id": "i-xyz"}, "instance_id: 'i-xyz' is not a valid instance ID"),
        ({"architecture": "arm64"}, "architecture: applies only to images registered from a snapshot (snapshot_id)"),
        ({"instance_id": None, "snapshot_id": SNAPSHOT, "reboot": False}, "reboot: applies only to images created from an instance"),
        ({"terminate_instance": True, "wait": False}, "terminate_instance: needs wait=true"),
        ({"description": "d" * 256}, "description: at most 255 characters, got 256"),
        ({"build_id": ""}, "build_id: must be 1-256 characters"),
        ({"deprecate_at": "soon"}, "deprecate_at: 'soon' is not an ISO-8601 time"),
        ({"wait_timeout": 0}, "wait_timeout: must be at least 1 second, got 0"),
        ({"protect_cooldown": True}, "protect_cooldown: applies only with protect: true"),
        ({"tags": {"k": "v"}, "pending_tags": {"k": "v"}}, "pending_tags: 'k' is also in tags"),
        ({"block_device_mappings": [{"device_name": "/dev/xvda", "volume_type": "gp2", "throughput": 300}]},
         "block_device_mappings[0].throughput: only gp3 volumes take a throughput"),
        ({"block_device_mappings": [{"device_name": "/dev/xvda", "volume_size": 0}]},
         "block_device_mappings[0].volume_size: must be 1-65536 GiB, got 0"),
        ({"launch_permissions": {"group_names": ["everyone"]}},
         "launch_permissions.group_names: 'everyone' is not a launch permission group (only 'all')"),
        ({"share_snapshots": True}, "share_snapshots: sharing snapshots needs launch_permissions.user_ids"),
        ({"copy": {"regions": ["us-west-2"]}, "wait": False}, "copy: the copies start once the image is available; it needs wait=true"),
        ({"copy": {"regions": ["us-west-2"], "kms_key_id": "alias/x"}}, "copy.kms_key_id: a KMS key needs encrypted=true"),
    ],
)
def test_create_rule_refuses_naming_the_option(overrides, message):
    with pytest.raises(_create.CreateError) as caught:
        _create.build_request(create_params(**overrides), "us-east-1", ["us-east-1", "us-west-2"])
    assert isinstance(caught.value, BakeryError)
    assert message in caught.value.msg
    assert any(message in error for error in caught.value.result["errors"])


def test_create_lists_every_problem_at_once():
    with pytest.raises(_create.CreateError) as caught:
        _create.build_request(create_params(name="ab", wait_timeout=0, protect_cooldown=True))
    assert len(caught.value.result["errors"]) == 3
    assert caught.value.msg == "; ".join(caught.value.result["errors"])


# ---------------------------------------------------------------------------------------------
# ami_prune


def prune_params(**overrides):
    base = {
        "family": "web-base", "tags": None, "regions": None, "keep_latest": None, "keep_days": None,
        "deprecate_after_days": None, "deregister": True, "delete_snapshots": True, "protect_in_use": True,
        "required": False, "max_deletions": None, "prune_without_family": False, "state": "present", "version": None,
        "disable_after_days": None, "deregister_after_days": None, "deprecate_after_count": None,
        "disable_after_count": None, "deregister_after_count": None, "lift_protection": False,
        "keep_launched_within_days": None, "include_shared": False, "recycle_bin_check": True,
        "recycle_bin_retention_days": None,
    }
    base.update(overrides)
    return base


def test_prune_request_has_the_options_and_the_defaults():
    request = _prune.build_request(prune_params(keep_latest=3, keep_days=30, max_deletions=5), "eu-west-1")
    assert request.family == "web-base" and request.tags is None
    assert request.regions == ("eu-west-1",)  # the module's region, when regions is not given
    assert request.keep_latest == 3 and request.keep_days == 30 and request.max_deletions == 5
    assert request.deregister and request.delete_snapshots and request.protect_in_use and request.recycle_bin_check
    assert not request.required and not request.lift_protection and not request.include_shared
    assert not request.restoring and request.state == "present"
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.keep_latest = 1  # type: ignore[misc]


def test_prune_request_takes_regions_tags_and_restore():
    request = _prune.build_request(prune_params(
        family=None, tags={"bakery:family": "web-base", "team": "a"}, regions=["us-west-2", "eu-west-1"],
        state="restored", version="1.4.0",
    ), "us-east-1")
    assert request.regions == ("us-west-2", "eu-west-1") and request.tags == {"bakery:family": "web-base", "team": "a"}
    assert request.restoring and request.version == "1.4.0"


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"family": None}, "family or tags: one of them is required to select the images"),
        ({"keep_latest": 0}, "keep_latest: must be at least 1 (the newest image is always kept), got 0"),
        ({}, "at least one of them is required"),
        ({"keep_latest": 1, "max_deletions": -1}, "max_deletions: must be a whole number of images from 0 to 100000, got -1"),
        ({"keep_latest": 1, "regions": ["eu-west-1", "eu-west-1"]}, "regions: a region appears more than once"),
        ({"keep_latest": 1, "tags": {"bakery:family": "other"}}, "tags: the tag bakery:family is 'other' but family is 'web-base'"),
        ({"deprecate_after_days": 30, "disable_after_days": 5}, "disable_after_days: 5 days is before deprecate_after_days"),
        ({"state": "restored"}, "version"),
    ],
)
def test_prune_rule_refuses_naming_the_option(overrides, message):
    with pytest.raises(_prune.PruneError) as caught:
        _prune.build_request(prune_params(**overrides), "eu-west-1")
    assert message in caught.value.msg
    assert any(message in error for error in caught.value.result["errors"])


def test_prune_without_a_region_refuses():
    with pytest.raises(_prune.PruneError) as caught:
        _prune.build_request(prune_params(keep_latest=1), None)
    assert caught.value.msg == "regions: give the regions to prune in, or set the module's region"


# ---------------------------------------------------------------------------------------------
# ami_builder

RUN = "run-abc123"


def builder_params(**overrides):
    base = {
        "run_id": RUN, "state": "running", "image_id": "ami-0123456789abcdef0", "instance_type": None,
        "instance_types": None, "subnet_id": None, "vpc_id": None, "ssh_cidrs": [], "allow_open_ssh": False,
        "key_file": None, "associate_public_ip": None, "root_device_name": "/dev/xvda", "volume_size": 8,
        "volume_type": "gp3", "kms_key_id": None, "expires_at": None, "tags": None, "wait": True, "wait_timeout": 600,
    }
    base.update(overrides)
    return base


def test_builder_request_has_the_options_and_the_defaults():
    request = _builder.build_request(builder_params(
        instance_types=["m7i.large", "m6i.large"], subnet_id="subnet-0123456789abcdef0", ssh_cidrs=["203.0.113.0/24"],
        associate_public_ip=False, volume_size=16, kms_key_id="alias/builder", expires_at=FUTURE, tags={"team": "images"},
    ))
    assert request.run_id == RUN and request.state == "running" and not request.absent
    assert request.image_id == "ami-0123456789abcdef0" and request.instance_types == ("m7i.large", "m6i.large")
    assert request.subnet_id == "subnet-0123456789abcdef0" and request.vpc_id is None
    assert request.ssh_cidrs == ("203.0.113.0/24",) and request.allow_open_ssh is False
    assert request.associate_public_ip is False and request.key_file is None
    assert (request.root_device_name, request.volume_size, request.volume_type, request.kms_key_id) == (
        "/dev/xvda", 16, "gp3", "alias/builder")
    assert request.expires_at == FUTURE and request.tags == {"team": "images"}
    assert request.wait is True and request.wait_timeout == 600


def test_builder_one_instance_type_is_a_one_entry_tuple_and_the_default_is_t3_micro():
    assert _builder.build_request(builder_params(instance_type="c7g.large")).instance_types == ("c7g.large",)
    assert _builder.build_request(builder_params()).instance_types == ("t3.micro",)


def test_builder_request_is_frozen():
    request = _builder.build_request(builder_params())
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.image_id = "ami-0123456789abcdef1"  # type: ignore[misc]


def test_builder_absent_needs_only_the_run_id_and_carries_no_launch_options():
    # options of a builder to make are not checked when removing one, and not carried either
    request = _builder.build_request({"run_id": RUN, "state": "absent", "image_id": None, "volume_size": 0,
                                      "expires_at": "tomorrow", "wait_timeout": 60})
    assert request.absent and request.wait_timeout == 60
    assert request.image_id is None and request.volume_size == 8 and request.expires_at is None
    assert _builder.Builder(None, request).tags == {"bakery:run-id": RUN, "Name": "bakery-" + RUN}


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"run_id": "abc"}, "run_id: must be 6-64 characters of letters, digits and '-', got 'abc'"),
        ({"image_id": None}, "image_id: required when state is running"),
        ({"image_id": "ami-xyz"}, "image_id: 'ami-xyz' is neither an image ID"),
        ({"instance_types": ["t3.micro"], "instance_type": "t3.small"}, "instance_types: set either instance_type or instance_types"),
        ({"instance_types": ["t3.micro", "t3.micro"]}, "instance_types: each type once; listed more than once: t3.micro"),
        ({"subnet_id": "sub-1"}, "subnet_id: 'sub-1' is not a valid subnet ID"),
        ({"ssh_cidrs": ["0.0.0.0/0"]}, "ssh_cidrs[0]: '0.0.0.0/0' opens SSH to the whole internet; set allow_open_ssh: true"),
        ({"key_file": "/no/such/dir/id_ed25519"}, "key_file: the directory of '/no/such/dir/id_ed25519' (/no/such/dir) does not exist"),
        ({"root_device_name": "xvda"}, "root_device_name: must be a device path such as /dev/xvda, got 'xvda'"),
        ({"volume_size": 0}, "volume_size: must be 1-16384 GiB, got 0"),
        ({"volume_type": "ssd"}, "volume_type: must be one of gp2, gp3"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at: '2020-01-01T00:00:00Z' is in the past"),
        ({"tags": {"Name": "x"}}, "tags: 'Name' is set by the module"),
        ({"wait_timeout": 0}, "wait_timeout: must be 1-86400 seconds, got 0"),
    ],
)
def test_builder_rule_refuses_naming_the_option(overrides, message):
    with pytest.raises(_builder.BuilderError) as caught:
        _builder.build_request(builder_params(**overrides))
    assert message in caught.value.msg
    assert any(message in error for error in caught.value.result["errors"])


def test_builder_lists_every_problem_at_once_in_option_order():
    with pytest.raises(_builder.BuilderError) as caught:
        _builder.build_request(builder_params(run_id="abc", image_id="ami-xyz", volume_size=0))
    errors = caught.value.result["errors"]
    assert [e.split(":")[0] for e in errors] == ["run_id", "image_id", "volume_size"]
    assert caught.value.msg == "; ".join(errors)


# ---------------------------------------------------------------------------------------------
# ami_find

REGIONS = ["us-east-1", "eu-west-1", "us-west-2"]


def find_params(**overrides):
    base = {
        "distro": None, "owners": None, "name": None, "filters": {}, "tags": {}, "architecture": "x86_64",
        "virtualization_type": "hvm", "root_device_type": "ebs", "ssm_parameter": None, "image_ids": None,
        "executable_by_me": False, "include_deprecated": False, "include_disabled": False, "sort_by": "creation_date",
        "most_recent": True, "unique": False, "required": True, "regions": None, "limit": 10, "channel": None,
    }
    base.update(overrides)
    return base


def test_find_request_has_the_options_and_the_defaults():
    request = _find.build_request(find_params(owners=["self", ACCOUNT], name="web-*", tags={"team": "images"},
                                              regions=["eu-west-1", "us-east-1", "eu-west-1"], limit=3), "us-west-2", REGIONS)
    assert request.owners == ("self", ACCOUNT) and request.names == ("web-*",) and request.tags == {"team": "images"}
    assert request.regions == ("eu-west-1", "us-east-1") and request.limit == 3
    assert (request.architecture, request.virtualization_type, request.root_device_type) == ("x86_64", "hvm", "ebs")
    assert request.sort_by == "creation_date" and request.most_recent and request.required and not request.unique
    assert request.image_ids is None and request.ssm_parameter is None and request.channel is None


def test_find_request_is_frozen_and_defaults_to_the_modules_region():
    request = _find.build_request(find_params(owners=["amazon"]), "us-west-2")
    assert request.regions == ("us-west-2",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.limit = 5  # type: ignore[misc]


def test_find_distro_fills_owners_and_names_and_image_ids_are_deduplicated():
    request = _find.build_request(find_params(distro="al2023"), "us-east-1")
    assert request.owners and request.names and request.distro == "al2023"
    ids = _find.build_request(find_params(image_ids=["ami-0123456789abcdef0", "ami-0123456789abcdef0"]), "us-east-1")
    assert ids.image_ids == ("ami-0123456789abcdef0",)


def test_find_channel_stands_for_its_ssm_parameter():
    request = _find.build_request(find_params(channel="web-base/stable"), "us-east-1")
    assert request.channel == request.ssm_parameter and request.channel.endswith("/web-base/stable")


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({}, "owners: required unless distro, image_ids, ssm_parameter or executable_by_me is given"),
        ({"owners": []}, "owners: must not be an empty list"),
        ({"distro": "beos"}, "distro: unknown distribution 'beos'"),
        ({"image_ids": []}, "image_ids: must not be an empty list"),
        ({"image_ids": ["ami-0123456789abcdef0"], "ssm_parameter": "/a/b"}, "image_ids: cannot be combined with ssm_parameter"),
        ({"owners": ["self"], "name": " "}, "name: must be a non-empty glob on the image name"),
        ({"owners": ["self"], "architecture": "sparc"}, "architecture: must be one of x86_64, arm64, i386, any, got 'sparc'"),
        ({"owners": ["self"], "sort_by": "size"}, "sort_by: must be one of creation_date, name, got 'size'"),
        ({"owners": ["self"], "limit": 0}, "limit: must be a whole number from 1 to 1000, got 0"),
        ({"owners": ["self"], "regions": []}, "regions: must not be an empty list"),
        ({"channel": "no-slash"}, "channel: 'no-slash' is not 'family/channel'"),
    ],
)
def test_find_rule_refuses_naming_the_option(overrides, message):
    with pytest.raises(_find.FindError) as caught:
        _find.build_request(find_params(**overrides), "us-east-1", REGIONS)
    assert message in caught.value.msg
    assert any(message in error for error in caught.value.result["errors"])


def test_find_lists_every_problem_at_once():
    with pytest.raises(_find.FindError) as caught:
        _find.build_request(find_params(owners=[], sort_by="size", limit=0), None)
    errors = caught.value.result["errors"]
    assert [e.split(":")[0] for e in errors] == ["owners", "sort_by", "limit", "region"]
    assert caught.value.msg == "; ".join(errors)


# ---------------------------------------------------------------------------------------------
# ami_lock_release

AL2023_NAME = "al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64"


def lock_params(**overrides):
    base = {"root": "/mnt/image", "release": "source", "ami_name": None, "launch_updates": None}
    base.update(overrides)
    return base


def test_lock_request_has_the_options_and_what_the_ami_name_says():
    request = _release.build_request(lock_params(ami_name=AL2023_NAME))
    assert (request.root, request.release, request.ami_name, request.launch_updates) == (
        "/mnt/image", "source", AL2023_NAME, None)
    assert request.from_name == ("al2023", "2023.6.20241010")
    assert _release.build_request(lock_params(release="latest", launch_updates="security")).from_name is None


def test_lock_empty_root_stays_empty_and_is_refused_not_taken_for_the_host():
    request = _release.build_request(lock_params(root=""))
    assert request.root == ""
    with pytest.raises(_release.ReleaseLockError, match="^root: "):
        _release.plan_request(request)


def test_lock_request_is_frozen():
    request = _release.build_request(lock_params())
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.release = "latest"  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"release": ""}, "release: must be 'source', 'latest' or a release string, got an empty value"),
        ({"release": " latest"}, "release: must not have leading or trailing spaces or control characters"),
        ({"release": "2023.\u0666"}, "release: must be ASCII (digits 0-9 and dots)"),
        ({"launch_updates": "some"}, "launch_updates: must be one of security, bugfix, all, none, got 'some'"),
        ({"ami_name": AL2023_NAME, "release": "latest"}, "ami_name: only used with release=source"),
        ({"ami_name": "web-base-1.0-x86_64"}, "ami_name: no release can be read from 'web-base-1.0-x86_64'"),
    ],
)
def test_lock_rule_refuses_naming_the_option(overrides, message):
    with pytest.raises(_release.ReleaseLockError) as caught:
        _release.build_request(lock_params(**overrides))
    assert message in caught.value.msg
    assert any(message in error for error in caught.value.result["errors"])


def test_lock_lists_every_problem_at_once():
    with pytest.raises(_release.ReleaseLockError) as caught:
        _release.build_request(lock_params(release=" x", launch_updates="some", ami_name="not-an-image"))
    errors = caught.value.result["errors"]
    assert [e.split(":")[0] for e in errors] == ["release", "launch_updates", "ami_name"]
    assert caught.value.msg == "; ".join(errors)


# ---------------------------------------------------------------------------------------------
# cloudinit_guard


@pytest.fixture
def cloud_root(tmp_path):
    (tmp_path / "etc/cloud").mkdir(parents=True)
    return str(tmp_path)


def guard_params(root, **overrides):
    base = {"root": root, "protect": [], "settings": {}, "disable_modules": [], "filename": "99_bakery_guard.cfg",
            "audit": True, "customized_paths": [], "fail_on_unprotected": False, "allow_privileged_settings": False}
    base.update(overrides)
    return base


def test_guard_request_has_the_options(cloud_root):
    request = _cloudinit.build_request(guard_params(
        cloud_root, protect=["hostname", "growpart"], settings={"ssh_deletekeys": True}, disable_modules=["ntp"],
        customized_paths=["/etc/hostname"], fail_on_unprotected=True,
    ))
    assert request.root == cloud_root and request.protect == ("hostname", "growpart")
    assert request.settings == {"ssh_deletekeys": True} and request.disable_modules == ("ntp",)
    assert request.customized_paths == ("/etc/hostname",) and request.filename == "99_bakery_guard.cfg"
    assert request.audit is True and request.fail_on_unprotected is True and request.allow_privileged_settings is False


def test_guard_request_is_frozen_and_fills_the_defaults(cloud_root):
    request = _cloudinit.build_request({"root": cloud_root})
    assert (request.protect, request.settings, request.disable_modules, request.customized_paths) == ((), {}, (), ())
    assert request.filename == _cloudinit.DEFAULT_FILENAME and request.audit is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.audit = False  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"protect": ["nosuch"]}, "protect: unknown protection 'nosuch'"),
        ({"protect": "hostname"}, "protect: must be a list of protection names"),
        ({"disable_modules": ["bad name"]}, "disable_modules: 'bad name' is not a cloud-init module name"),
        ({"settings": {"cloud_config_modules": []}, "disable_modules": ["locale"]},
         "settings: cloud_config_modules cannot be set together with disable_modules"),
        ({"customized_paths": ["etc/hosts"]}, "customized_paths: 'etc/hosts' is not an absolute path"),
        ({"audit": False, "fail_on_unprotected": True}, "fail_on_unprotected: needs audit=true"),
    ],
)
def test_guard_rule_refuses_naming_the_option(cloud_root, overrides, message):
    with pytest.raises(_cloudinit.GuardError) as caught:
        _cloudinit.build_request(guard_params(cloud_root, **overrides))
    assert message in caught.value.msg
    assert any(message in error for error in caught.value.result["errors"])


def test_guard_root_without_etc_cloud_comes_first_with_every_other_problem(tmp_path):
    with pytest.raises(_cloudinit.GuardError) as caught:
        _cloudinit.build_request(guard_params(str(tmp_path), protect=["nosuch"], audit=False, fail_on_unprotected=True))
    errors = caught.value.result["errors"]
    assert [e.split(":")[0] for e in errors] == ["root", "protect", "fail_on_unprotected"]
    assert "has no /etc/cloud" in errors[0] and caught.value.msg == "; ".join(errors)


def test_guard_empty_root_is_refused_not_taken_for_the_host():
    with pytest.raises(_cloudinit.GuardError) as caught:
        _cloudinit.build_request(guard_params(""))
    first = caught.value.result["errors"][0]
    assert first.startswith("root: ") and "/etc/cloud" not in first  # refused as given, not read as /


# --- every core takes a typed request -------------------------------------------------------------

ACTION_STUBS = ("bake_plan", "bake_outputs", "customize_plan")  # documentation of action plugins, not modules


def _request_builders():
    """(module, the module_utils function its main() builds its request with) for every module."""
    import importlib
    import pathlib
    import re
    modules = pathlib.Path(__file__).resolve().parents[4] / "plugins" / "modules"
    found = []
    for path in sorted(modules.glob("*.py")):
        if path.stem in ACTION_STUBS or path.stem == "__init__":
            continue
        module = importlib.import_module("ansible_collections.bakery.ami.plugins.modules." + path.stem)
        calls = re.findall(r"\b(?:(_\w+)\.)?(build_\w*request)\(", path.read_text(encoding="utf-8"))
        builders = set()
        for owner, name in calls:
            builders.add(getattr(getattr(module, owner), name) if owner else getattr(module, name))
        found.append((path.stem, sorted(builders, key=lambda f: f.__qualname__)))
    return found


@pytest.mark.parametrize("module_name, builders", _request_builders(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_module_builds_one_frozen_request(module_name, builders):
    import sys
    assert len(builders) == 1, "%s: main() should build its request once, with one build_request; found %r" % (
        module_name, builders)
    builder = builders[0]
    annotation = builder.__annotations__["return"]
    request_class = eval(annotation, vars(sys.modules[builder.__module__])) if isinstance(annotation, str) else annotation
    assert dataclasses.is_dataclass(request_class), request_class
    assert request_class.__dataclass_params__.frozen, "%s is not frozen" % request_class.__qualname__


def test_find_without_owners_names_the_owner_aliases():
    with pytest.raises(BakeryError) as caught:
        _find.build_request({"name": "debian-12-*"}, "us-east-1")
    assert caught.value.msg.endswith("name the owners you trust (account IDs, self, amazon or aws-marketplace)")
