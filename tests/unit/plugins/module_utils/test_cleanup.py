# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_cleanup, the one removal engine: selection (literal run ID, expiry), order, check mode, lost
answers, one failure not stopping the rest, images and snapshots, key directories, bad input.

The account is an in-memory fake of the _aws functions, one store per region. Its filters follow
EC2's (tag values with '*' and '?' as wildcards); a "sloppy" account ignores filters altogether, to
show that what the engine removes never depends on the server's filtering alone.
"""
from __future__ import annotations

import datetime
import fnmatch
import functools
import os
import threading

import botocore.exceptions
import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _cleanup
from ansible_collections.bakery.ami.plugins.module_utils import _waiter

from tests.reliability.checks import tree_digest

RUN = "run-abc123"
OTHER = "run-abc1234"  # a longer run ID that starts like RUN
PAST = "2020-01-01T00:00:00Z"
FUTURE = "2099-01-01T00:00:00Z"
NOW = "2030-01-01T00:00:00Z"
REGIONS = ["us-east-1", "us-west-2", "eu-west-1"]
MUTATING = ("terminate_instances", "deregister_image", "delete_security_group", "delete_key_pair", "delete_volume",
            "delete_snapshot")


def aws_error(code, operation):
    cause = botocore.exceptions.ClientError({"Error": {"Code": code, "Message": f"{code} message"}}, operation)
    return _aws.BakeryAWSError(message=f"Failed to {operation}", exception=cause)


def lossy(method):
    """A deletion whose answer can be lost: with its name in fake.lost it is made, its answer dropped,
    and made again, as _aws's retry does; the second answer is "not found" (False)."""
    @functools.wraps(method)
    def wrapper(self, client, *args, **kwargs):
        if method.__name__ in self.lost:
            method(self, client, *args, **kwargs)  # an error answer is not lost: it is raised
            self.lost.discard(method.__name__)
        return method(self, client, *args, **kwargs)
    return wrapper


def tag_list(tags):
    return [{"Key": k, "Value": v} for k, v in tags.items()]


class Account:
    """The _aws functions the engine uses, over one in-memory store per region (client = region name)."""

    def __init__(self, sloppy=False):
        self.stores = {region: {"instances": {}, "images": {}, "snapshots": {}, "volumes": {}, "groups": {}, "pairs": {}}
                       for region in REGIONS}
        self.calls = []
        self.errors = {}  # operation -> exception raised once
        self.lost = set()
        self.sloppy = sloppy
        self.counter = 0
        self.lock = threading.Lock()

    def _next(self, prefix):
        with self.lock:
            self.counter += 1
            return f"{prefix}-{self.counter:017x}"

    def _call(self, region, name, detail=None):
        with self.lock:
            self.calls.append((region, name, detail))
            error = self.errors.pop(name, None)
        if error is not None:
            raise error

    def names(self, region=None):
        return [name for r, name, _d in self.calls if region is None or r == region]

    def mutations(self):
        return [(r, name, d) for r, name, d in self.calls if name in MUTATING]

    def _match(self, resource, filters, extra=None):
        if self.sloppy:
            return True
        tags = {t["Key"]: t["Value"] for t in resource.get("Tags", [])}
        for flt in filters or []:
            name, values = flt["Name"], flt["Values"]
            if name.startswith("tag:"):
                value = tags.get(name[4:])
                # EC2 reads '*' and '?' in filter values as wildcards
                if value is None or not any(fnmatch.fnmatchcase(value, v) for v in values):
                    return False
            elif name == "tag-key":
                if not any(key in tags for key in values):
                    return False
            elif (extra or {}).get(name) not in values:
                return False
        return True

    # -- planting ---------------------------------------------------------------------------------

    def instance(self, region, tags, state="running", key_name=None, group_id=None, keeps_volume=None):
        instance_id = self._next("i")
        item = {"InstanceId": instance_id, "State": {"Name": state}, "Tags": tag_list(tags),
                "SecurityGroups": [{"GroupId": group_id}] if group_id else [], "BlockDeviceMappings": []}
        if key_name:
            item["KeyName"] = key_name
        if keeps_volume:
            item["BlockDeviceMappings"] = [{"DeviceName": "/dev/xvdb",
                                            "Ebs": {"VolumeId": keeps_volume, "DeleteOnTermination": False}}]
        self.stores[region]["instances"][instance_id] = item
        return instance_id

    def snapshot(self, region, tags):
        snapshot_id = self._next("snap")
        self.stores[region]["snapshots"][snapshot_id] = {"SnapshotId": snapshot_id, "Tags": tag_list(tags)}
        return snapshot_id

    def image(self, region, tags, snapshot_tags=None, state="available"):
        snapshot_id = self.snapshot(region, tags if snapshot_tags is None else snapshot_tags)
        image_id = self._next("ami")
        self.stores[region]["images"][image_id] = {
            "ImageId": image_id, "State": state, "Tags": tag_list(tags),
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}]}
        return image_id, snapshot_id

    def group(self, region, tags):
        group_id = self._next("sg")
        self.stores[region]["groups"][group_id] = {"GroupId": group_id, "GroupName": "g-" + group_id, "Tags": tag_list(tags)}
        return group_id

    def pair(self, region, name, tags):
        self.stores[region]["pairs"][name] = {"KeyName": name, "Tags": tag_list(tags)}
        return name

    def volume(self, region, tags, state="available"):
        volume_id = self._next("vol")
        self.stores[region]["volumes"][volume_id] = {"VolumeId": volume_id, "State": state, "Tags": tag_list(tags)}
        return volume_id

    def run_everything(self, region, run_id, expires=PAST, key=True, kept_volume=False, image=True):
        """What one run leaves in a region: instance, group, key pair, image and snapshot, and with
        kept_volume a volume the instance keeps at termination (its root volume goes with it)."""
        tags = {"bakery:run-id": run_id, "bakery:expires-at": expires}
        made = {"group": self.group(region, tags)}
        made["pair"] = self.pair(region, "bakery-" + run_id, tags) if key else None
        made["volume"] = self.volume(region, tags, state="in-use") if kept_volume else None
        made["instance"] = self.instance(region, tags, key_name=made["pair"], group_id=made["group"],
                                         keeps_volume=made["volume"])
        if image:
            made["image"], made["snapshot"] = self.image(region, tags)
        return made

    # -- the _aws functions -----------------------------------------------------------------------

    def _terminated(self, region, item):
        """A shutting-down instance is terminated: the volumes it kept become available."""
        item["State"] = {"Name": "terminated"}
        for mapping in item["BlockDeviceMappings"]:
            volume = self.stores[region]["volumes"].get(mapping["Ebs"]["VolumeId"])
            if volume is not None:
                volume["State"] = "available"

    def describe_instances(self, client, **params):
        self._call(client, "describe_instances", params)
        found = []
        for item in self.stores[client]["instances"].values():
            if item["State"]["Name"] == "shutting-down":
                self._terminated(client, item)
            if self._match(item, params.get("Filters"), {"instance-state-name": item["State"]["Name"],
                                                         "instance-id": item["InstanceId"]}):
                found.append(dict(item))
        return found

    @lossy
    def terminate_instances(self, client, instance_ids):
        self._call(client, "terminate_instances", list(instance_ids))
        for instance_id in instance_ids:
            self.stores[client]["instances"][instance_id]["State"] = {"Name": "shutting-down"}
        return True

    def describe_images(self, client, **params):
        self._call(client, "describe_images", params)
        return [dict(i) for i in self.stores[client]["images"].values() if self._match(i, params.get("Filters"))]

    @lossy
    def deregister_image(self, client, image_id):
        self._call(client, "deregister_image", image_id)
        return self.stores[client]["images"].pop(image_id, None) is not None

    def describe_snapshots(self, client, **params):
        self._call(client, "describe_snapshots", params)
        return [dict(s) for s in self.stores[client]["snapshots"].values() if self._match(s, params.get("Filters"))]

    @lossy
    def delete_snapshot(self, client, snapshot_id):
        self._call(client, "delete_snapshot", snapshot_id)
        for image in self.stores[client]["images"].values():
            if any(m["Ebs"]["SnapshotId"] == snapshot_id for m in image["BlockDeviceMappings"]):
                raise aws_error("InvalidSnapshot.InUse", "DeleteSnapshot")
        return self.stores[client]["snapshots"].pop(snapshot_id, None) is not None

    def describe_security_groups(self, client, **params):
        self._call(client, "describe_security_groups", params)
        return [dict(g) for g in self.stores[client]["groups"].values() if self._match(g, params.get("Filters"))]

    @lossy
    def delete_security_group(self, client, group_id):
        self._call(client, "delete_security_group", group_id)
        for item in self.stores[client]["instances"].values():
            if item["State"]["Name"] != "terminated" and any(g["GroupId"] == group_id for g in item["SecurityGroups"]):
                if item["State"]["Name"] == "shutting-down":
                    self._terminated(client, item)  # free at the next attempt
                raise aws_error("DependencyViolation", "DeleteSecurityGroup")
        return self.stores[client]["groups"].pop(group_id, None) is not None

    def describe_key_pairs(self, client, **params):
        self._call(client, "describe_key_pairs", params)
        return [dict(p) for p in self.stores[client]["pairs"].values() if self._match(p, params.get("Filters"))]

    @lossy
    def delete_key_pair(self, client, key_name):
        self._call(client, "delete_key_pair", key_name)
        return self.stores[client]["pairs"].pop(key_name, None) is not None

    def describe_volumes(self, client, **params):
        self._call(client, "describe_volumes", params)
        return [dict(v) for v in self.stores[client]["volumes"].values()
                if self._match(v, params.get("Filters"), {"status": v["State"]})]

    @lossy
    def delete_volume(self, client, volume_id):
        self._call(client, "delete_volume", volume_id)
        return self.stores[client]["volumes"].pop(volume_id, None) is not None

    def left(self, region=None):
        """Every resource still there (terminated instances aside), as (region, kind, id)."""
        out = []
        for name, store in self.stores.items():
            if region is not None and name != region:
                continue
            for kind, items in store.items():
                for resource_id, item in items.items():
                    if kind == "instances" and item["State"]["Name"] in ("terminated", "shutting-down"):
                        continue
                    out.append((name, kind, resource_id))
        return sorted(out)


FUNCTIONS = ("describe_instances", "terminate_instances", "describe_images", "deregister_image", "describe_snapshots",
             "delete_snapshot", "describe_security_groups", "delete_security_group", "describe_key_pairs",
             "delete_key_pair", "describe_volumes", "delete_volume")


def _install(monkeypatch, account):
    for name in FUNCTIONS:
        monkeypatch.setattr(_aws, name, getattr(account, name))
    return account


@pytest.fixture
def account(monkeypatch):
    return _install(monkeypatch, Account())


@pytest.fixture
def sloppy(monkeypatch):
    return _install(monkeypatch, Account(sloppy=True))


def cleanup(params, check_mode=False, warnings=None, regions=None):
    params = dict(params)
    params.setdefault("regions", regions or REGIONS)
    request = _cleanup.build_request(params, "us-east-1")
    clients = {region: region for region in request.regions}
    warn = warnings.append if warnings is not None else None
    now = [0.0]  # a clock that only sleeping moves: a wait never takes real time

    def sleep(seconds):
        now[0] += seconds

    return _cleanup.Cleanup(clients, request, check_mode, warn=warn, sleep=sleep, clock=lambda: now[0]).run()


# ---------------------------------------------------------------------------------------------
# Input: refused before any call


@pytest.mark.parametrize(
    "params,fragment",
    [
        ({}, "run_id or expired_before: give exactly one of them"),
        ({"run_id": RUN, "expired_before": NOW}, "run_id and expired_before: give only one of them"),
        ({"run_id": "run-*"}, "run_id: must be 6-64 characters of letters, digits and '-', got 'run-*' (a run ID is matched literally"),
        ({"run_id": "run-abc?23"}, "'?' and '\\' are not wildcards here"),
        ({"run_id": RUN + "\n"}, "run_id: must be 6-64 characters of letters, digits and '-', got 'run-abc123\\n'"),
        ({"run_id": "*"}, "run_id: must be 6-64"),
        ({"run_id": "r" * 65}, "run_id: must be 6-64"),
        ({"run_id": "run-٦٦٦٦٦"}, "run_id: must be 6-64"),
        ({"run_id": ""}, "run_id: must be 6-64"),
        ({"expired_before": "now"}, "expired_before: 'now' is not an ISO-8601 time"),
        ({"expired_before": NOW + "\n"}, "expired_before:"),
        ({"run_id": RUN, "regions": ["us-east-1", "mars-1"]}, "regions[1]:"),
        ({"run_id": RUN, "images": "some"}, "images: must be one of none, unfinished, all"),
        ({"run_id": RUN, "key_dir": "/cache/keys/other-run"}, "key_dir: '/cache/keys/other-run' is not named after the run"),
        ({"run_id": RUN, "key_dir": "/cache/keys/../keys/" + RUN}, "key_dir: must not contain '..'"),
        ({"run_id": RUN, "key_dir": "/cache/keys/" + RUN + "/.."}, "key_dir: must not contain '..'"),
        ({"run_id": RUN, "key_dir": "keys/" + RUN}, "key_dir: must be an absolute path"),
        ({"run_id": RUN, "key_dir": "/cache/keys/" + RUN + "\n"}, "key_dir: must not contain control characters"),
        ({"run_id": RUN, "key_root": "/cache/keys"}, "key_root: only with expired_before"),
        ({"expired_before": NOW, "key_dir": "/cache/keys/" + RUN}, "key_dir: only with run_id"),
        ({"expired_before": NOW, "key_root": "/"}, "key_root: must not be '/'"),
        ({"expired_before": NOW, "key_root": "//./"}, "key_root: must not be '/'"),
        ({"expired_before": NOW, "key_root": "/cache/keys", "key_ttl_minutes": -1}, "key_ttl_minutes: must be 0-9999999"),
        ({"run_id": RUN, "wait_timeout": 0}, "wait_timeout: must be 1-86400 seconds, got 0"),
    ],
)
def test_bad_input_is_refused_naming_the_option_before_any_call(account, params, fragment):
    with pytest.raises(_cleanup.InputError) as info:
        cleanup(dict({"regions": REGIONS}, **params))
    assert fragment in str(info.value), str(info.value)
    assert account.calls == []


def test_paths_are_taken_in_normal_form():
    request = _cleanup.build_request({"run_id": RUN, "key_dir": "//cache/./keys//" + RUN + "/"}, "us-east-1")
    assert request.key_dir == "/cache/keys/" + RUN
    request = _cleanup.build_request({"expired_before": NOW, "key_root": "/cache/keys/."}, "us-east-1")
    assert request.key_root == "/cache/keys"


def test_every_problem_is_listed_at_once():
    errors = _cleanup.validate({"run_id": "r*", "images": "x", "wait_timeout": 0, "key_dir": "rel"})
    assert [e.split(":")[0] for e in errors] == ["run_id", "images", "key_dir", "wait_timeout"]


@pytest.mark.parametrize("run_id", ["run-abc123", "A" * 64, "000000", "20300101000000-abcd1234"])
def test_run_ids_the_bake_makes_are_accepted(run_id):
    assert _cleanup.validate({"run_id": run_id}) == []


# ---------------------------------------------------------------------------------------------
# By run ID


def test_a_run_is_removed_in_every_region_in_order_and_nothing_else(account):
    made = {region: account.run_everything(region, RUN, kept_volume=True) for region in REGIONS}
    others = {region: account.run_everything(region, OTHER, kept_volume=True) for region in REGIONS}
    before_others = [x for x in account.left() if any(x[2] in m.values() for m in others.values())]
    result = cleanup({"run_id": RUN, "images": "all"})
    assert result["changed"] is True
    for region in REGIONS:
        m = made[region]
        assert result["removed"][region] == {
            "instances": [m["instance"]], "images": [m["image"]], "security_groups": [m["group"]],
            "key_pairs": [m["pair"]], "volumes": [m["volume"]], "snapshots": [m["snapshot"]]}
        names = [n for n in account.names(region) if n in MUTATING]
        # instances before their group, images before their snapshots
        assert names == ["terminate_instances", "deregister_image", "delete_security_group", "delete_security_group",
                         "delete_key_pair", "delete_volume", "delete_snapshot"]
        # the kept volume became available when the instance was terminated, and was found then
        assert account.names(region).index("describe_volumes") > account.names(region).index("terminate_instances")
    assert account.left() == before_others


def test_a_sloppy_server_that_ignores_filters_still_removes_only_the_run(sloppy):
    """The selection is checked again client-side: a server that answers with everything (or reads a
    value as a wildcard) never makes another run's resource go."""
    made = sloppy.run_everything("us-east-1", RUN)
    kept = sloppy.run_everything("us-east-1", OTHER)
    untagged = sloppy.image("us-east-1", {"Name": "someone's image"})
    result = cleanup({"run_id": RUN, "images": "all"}, regions=["us-east-1"])
    gone = {x for ids in result["removed"]["us-east-1"].values() for x in ids}
    assert gone == {made[k] for k in ("instance", "group", "pair", "image", "snapshot")}
    assert not gone & set(kept.values()) and not gone & set(untagged)


def test_the_planted_sloppy_check_is_caught(sloppy, monkeypatch):
    """Without the client-side check, the sloppy server's answer removes another run's resources."""
    sloppy.run_everything("us-east-1", RUN)
    kept = sloppy.run_everything("us-east-1", OTHER)
    monkeypatch.setattr(_cleanup.Selection, "matches", lambda self, resource, resource_id: True)
    result = cleanup({"run_id": RUN, "images": "all"}, regions=["us-east-1"])
    gone = {x for ids in result["removed"]["us-east-1"].values() for x in ids}
    assert gone & set(kept.values())


def test_the_server_filter_is_the_literal_run_id(account):
    account.run_everything("us-east-1", RUN)
    cleanup({"run_id": RUN, "images": "all"}, regions=["us-east-1"])
    filters = [d["Filters"] for _r, name, d in account.calls if name.startswith("describe_")]
    assert filters and all({"Name": "tag:bakery:run-id", "Values": [RUN]} in f for f in filters)


def test_check_mode_lists_the_same_and_calls_nothing_mutating(account):
    for region in REGIONS:
        account.run_everything(region, RUN)
    before = account.left()
    predicted = cleanup({"run_id": RUN, "images": "all"}, check_mode=True)
    assert account.mutations() == []
    assert account.left() == before
    assert predicted["changed"] is True
    real = cleanup({"run_id": RUN, "images": "all"})
    assert predicted["removed"] == real["removed"]


def test_a_rerun_is_unchanged_without_mutating_calls(account):
    for region in REGIONS:
        account.run_everything(region, RUN)
    cleanup({"run_id": RUN, "images": "all"})
    account.calls.clear()
    again = cleanup({"run_id": RUN, "images": "all"})
    assert again["changed"] is False
    assert account.mutations() == []
    assert all(ids == [] for found in again["removed"].values() for ids in found.values())


@pytest.mark.parametrize("operation", MUTATING)
def test_a_lost_answer_counts_as_removed(account, operation):
    made = account.run_everything("us-east-1", RUN, kept_volume=True)
    account.lost.add(operation)
    result = cleanup({"run_id": RUN, "images": "all"}, regions=["us-east-1"])
    assert not account.lost, "the fault was not met"
    removed = result["removed"]["us-east-1"]
    assert removed["instances"] == [made["instance"]] and removed["images"] == [made["image"]]
    assert removed["security_groups"] == [made["group"]] and removed["key_pairs"] == [made["pair"]]
    assert removed["snapshots"] == [made["snapshot"]] and removed["volumes"] == [made["volume"]]
    assert account.left() == []


def test_one_failure_does_not_stop_the_others_and_every_error_is_listed(account):
    made = {region: account.run_everything(region, RUN, kept_volume=True) for region in REGIONS}
    account.errors["delete_key_pair"] = aws_error("UnauthorizedOperation", "DeleteKeyPair")
    account.errors["deregister_image"] = aws_error("UnauthorizedOperation", "DeregisterImage")
    with pytest.raises(_cleanup.CleanupError) as info:
        cleanup({"run_id": RUN, "images": "all"})
    errors = info.value.errors
    assert len(errors) == 2 and "2 errors" in info.value.msg
    assert any(":" in e and "delete key pair bakery-" + RUN in e for e in errors)
    assert any("deregister image ami-" in e for e in errors)
    assert all(e.split(":")[0] in REGIONS for e in errors)
    # everything else went, and the result says so
    result = info.value.result
    left = account.left()
    assert len(left) == 3  # the one key pair, the one image and its snapshot (kept: its image stays)
    assert {kind for _r, kind, _i in left} == {"pairs", "images", "snapshots"}
    assert result["changed"] is True and result["errors"] == errors
    assert sum(len(found["instances"]) for found in result["removed"].values()) == 3
    assert made


def test_a_failed_lookup_of_instances_looks_for_everything_else(account):
    account.run_everything("us-east-1", RUN, key=True)
    account.errors["describe_instances"] = aws_error("InternalError", "DescribeInstances")
    with pytest.raises(_cleanup.CleanupError) as info:
        cleanup({"run_id": RUN}, regions=["us-east-1"])
    assert info.value.errors[0].startswith("us-east-1: find instances:")
    assert info.value.result["removed"]["us-east-1"]["key_pairs"] == ["bakery-" + RUN]


def test_key_pairs_and_volumes_are_only_looked_for_when_an_instance_could_have_left_them(account):
    account.run_everything("us-east-1", RUN, key=False, image=False)
    cleanup({"run_id": RUN}, regions=["us-east-1"])
    assert account.names() == ["describe_instances", "terminate_instances", "describe_security_groups",
                               "delete_security_group", "delete_security_group"]
    # the terminated instance is still listed: it tells that no key pair was used, not which
    # volumes it kept (EC2 lists a terminated instance without its block device mappings)
    account.calls.clear()
    cleanup({"run_id": RUN}, regions=["us-east-1"])
    assert account.names() == ["describe_instances", "describe_security_groups", "describe_volumes"]
    # once EC2 no longer lists it, nothing is left to tell: a rerun looks for everything
    account.stores["us-east-1"]["instances"].clear()
    account.calls.clear()
    cleanup({"run_id": RUN}, regions=["us-east-1"])
    assert account.names() == ["describe_instances", "describe_security_groups", "describe_key_pairs", "describe_volumes"]


def test_a_builder_terminated_before_its_cleanup_is_never_terminated_again_and_its_group_goes(account):
    made = account.run_everything("us-east-1", RUN, key=True, kept_volume=True, image=False)
    account.stores["us-east-1"]["instances"][made["instance"]]["State"] = {"Name": "terminated"}
    # as EC2 lists a terminated instance: no block device mappings
    account.stores["us-east-1"]["instances"][made["instance"]]["BlockDeviceMappings"] = []
    account.stores["us-east-1"]["volumes"][made["volume"]]["State"] = "available"
    result = cleanup({"run_id": RUN}, regions=["us-east-1"])
    assert "terminate_instances" not in account.names()
    removed = result["removed"]["us-east-1"]
    assert removed["instances"] == [] and removed["security_groups"] == [made["group"]]
    # the key pair it used (its name is still listed) and the volume it kept both go
    assert removed["key_pairs"] == [made["pair"]] and removed["volumes"] == [made["volume"]]
    assert account.left() == []


def test_a_kept_volume_is_waited_for_and_deleted(account):
    made = account.run_everything("us-east-1", RUN, kept_volume=True, image=False)
    result = cleanup({"run_id": RUN}, regions=["us-east-1"])
    assert result["removed"]["us-east-1"]["volumes"] == [made["volume"]]
    assert account.left() == []


def test_a_group_held_by_no_instance_of_the_selection_fails_at_once(account):
    group = account.group("us-east-1", {"bakery:run-id": RUN})
    account.instance("us-east-1", {"bakery:run-id": OTHER}, group_id=group)
    with pytest.raises(_cleanup.CleanupError) as info:
        cleanup({"run_id": RUN}, regions=["us-east-1"])
    assert "DependencyViolation" in info.value.errors[0]
    assert account.names().count("delete_security_group") == 1


def test_a_group_still_held_at_wait_timeout_gives_up(account, monkeypatch):
    group = account.group("us-east-1", {"bakery:run-id": RUN})
    account.instance("us-east-1", {"bakery:run-id": RUN}, group_id=group)
    account.instance("us-east-1", {"bakery:run-id": OTHER}, group_id=group)  # never terminated here
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    request = _cleanup.build_request({"run_id": RUN, "wait_timeout": 30}, "us-east-1")
    with pytest.raises(_cleanup.CleanupError) as info:
        _cleanup.Cleanup({"us-east-1": "us-east-1"}, request, sleep=sleep, clock=lambda: now[0]).run()
    assert f"delete security group {group}: timed out after 30 s" in info.value.errors[0]
    assert account.names().count("delete_security_group") == 11  # at 0 s, then every 3 s up to 30 s


# ---------------------------------------------------------------------------------------------
# Images


def test_images_none_leaves_images_and_snapshots(account):
    made = account.run_everything("us-east-1", RUN)
    result = cleanup({"run_id": RUN}, regions=["us-east-1"])
    assert result["removed"]["us-east-1"]["images"] == [] and result["removed"]["us-east-1"]["snapshots"] == []
    assert {x[2] for x in account.left()} == {made["image"], made["snapshot"]}
    assert "describe_images" not in account.names() and "describe_snapshots" not in account.names()


def test_unfinished_keeps_a_finished_image_of_the_run_with_its_snapshots(account):
    finished, finished_snap = account.image("us-east-1", {"bakery:run-id": RUN})
    pending, pending_snap = account.image("us-east-1", {"bakery:run-id": RUN, "bakery:expires-at": PAST})
    orphan = account.snapshot("us-east-1", {"bakery:run-id": RUN, "bakery:expires-at": PAST})
    finished_orphan = account.snapshot("us-east-1", {"bakery:run-id": RUN})
    result = cleanup({"run_id": RUN, "images": "unfinished"}, regions=["us-east-1"])
    assert result["removed"]["us-east-1"]["images"] == [pending]
    assert result["removed"]["us-east-1"]["snapshots"] == [pending_snap, orphan]
    assert result["kept"] == {"us-east-1": {finished: "finished (no bakery:expires-at tag)"}}
    assert {x[2] for x in account.left()} == {finished, finished_snap, finished_orphan}


def test_all_removes_finished_images_too_but_never_one_tagged_keep(account):
    finished, finished_snap = account.image("us-east-1", {"bakery:run-id": RUN})
    keep, keep_snap = account.image("us-east-1", {"bakery:run-id": RUN, "bakery:keep": "True"})
    result = cleanup({"run_id": RUN, "images": "all"}, regions=["us-east-1"])
    assert result["removed"]["us-east-1"]["images"] == [finished]
    assert result["removed"]["us-east-1"]["snapshots"] == [finished_snap]
    assert result["kept"]["us-east-1"] == {keep: "tagged bakery:keep=true"}
    assert {x[2] for x in account.left()} == {keep, keep_snap}


def test_a_snapshot_of_an_image_that_could_not_be_deregistered_stays(account):
    image, snap = account.image("us-east-1", {"bakery:run-id": RUN, "bakery:expires-at": PAST})
    account.errors["deregister_image"] = aws_error("UnauthorizedOperation", "DeregisterImage")
    with pytest.raises(_cleanup.CleanupError):
        cleanup({"run_id": RUN, "images": "all"}, regions=["us-east-1"])
    assert "delete_snapshot" not in account.names()
    assert {x[2] for x in account.left()} == {image, snap}


# ---------------------------------------------------------------------------------------------
# By expiry


def test_expired_resources_of_every_run_go_unexpired_and_unparseable_stay(account):
    expired = [account.run_everything(region, "killed-run-1", expires=PAST) for region in REGIONS]
    fresh = [account.run_everything(region, "running-run-1", expires=FUTURE) for region in REGIONS]
    odd = account.group("us-east-1", {"bakery:run-id": "odd-run-1", "bakery:expires-at": "next tuesday"})
    untagged = account.group("us-east-1", {"bakery:run-id": "killed-run-1"})
    warnings = []
    result = cleanup({"expired_before": NOW, "images": "unfinished"}, warnings=warnings)
    gone = {x for found in result["removed"].values() for ids in found.values() for x in ids}
    assert gone == {v for made in expired for v in made.values() if v}
    # instance, group, key pair, image and snapshot in each region
    assert all(len([x for ids in found.values() for x in ids]) == 5 for found in result["removed"].values())
    left = {x[2] for x in account.left()}
    assert {v for made in fresh for v in made.values() if v} | {odd, untagged} == left
    assert warnings == [f"{odd}: its tag bakery:expires-at is not a time ('next tuesday'); it is left alone"]
    assert result["selection"] == "bakery:expires-at before 2030-01-01T00:00:00Z"


def test_by_expiry_the_server_filter_is_the_tag_key(account):
    cleanup({"expired_before": NOW, "images": "unfinished"}, regions=["us-east-1"])
    filters = [d["Filters"] for _r, name, d in account.calls if name.startswith("describe_")]
    assert len(filters) == 6 and all({"Name": "tag-key", "Values": ["bakery:expires-at"]} in f for f in filters)


def test_by_expiry_an_expired_snapshot_of_a_finished_image_stays(account):
    """A finished image (its expiry taken off) whose snapshot still carries an expired tag keeps it."""
    image, snap = account.image("us-east-1", {"bakery:run-id": "done-run-1"},
                                snapshot_tags={"bakery:run-id": "done-run-1", "bakery:expires-at": PAST})
    lone = account.snapshot("us-east-1", {"bakery:run-id": "done-run-1", "bakery:expires-at": PAST})
    result = cleanup({"expired_before": NOW, "images": "unfinished"}, regions=["us-east-1"])
    assert result["removed"]["us-east-1"]["snapshots"] == [lone]
    assert {x[2] for x in account.left()} == {image, snap}


def test_by_expiry_a_time_with_an_offset_is_compared_as_a_time(account):
    group = account.group("us-east-1", {"bakery:expires-at": "2030-01-01T01:30:00+02:00"})  # 23:30 UTC the day before
    result = cleanup({"expired_before": NOW}, regions=["us-east-1"])
    assert result["removed"]["us-east-1"]["security_groups"] == [group]


# ---------------------------------------------------------------------------------------------
# Key directories


def decoy_state(path):
    """Content, link targets and modes (tree_digest) and the inode of every path of a decoy tree."""
    return tree_digest(path), sorted((str(p.relative_to(path)), p.lstat().st_ino, p.lstat().st_mode)
                                     for p in [path, *path.rglob("*")])


def _decoy(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_ed25519").write_text("the user's own key\n")
    (outside / "sub").mkdir()
    (outside / "sub" / "notes").write_text("notes\n")
    return outside


def test_the_runs_key_directory_goes_never_through_a_link(account, tmp_path):
    keys = tmp_path / "keys"
    (keys / RUN).mkdir(parents=True)
    (keys / RUN / "id_ed25519").write_text("private\n")
    outside = _decoy(tmp_path)
    (keys / RUN / "link-out").symlink_to(outside, target_is_directory=True)
    digest = decoy_state(outside)
    check = cleanup({"run_id": RUN, "key_dir": str(keys / RUN)}, check_mode=True, regions=["us-east-1"])
    assert check["key_dirs"] == [str(keys / RUN)] and check["changed"] is True and (keys / RUN).is_dir()
    result = cleanup({"run_id": RUN, "key_dir": str(keys / RUN)}, regions=["us-east-1"])
    assert result["key_dirs"] == [str(keys / RUN)] and result["changed"] is True
    assert not os.path.lexists(keys / RUN)
    assert decoy_state(outside) == digest
    again = cleanup({"run_id": RUN, "key_dir": str(keys / RUN)}, regions=["us-east-1"])
    assert again["key_dirs"] == [] and again["changed"] is False


@pytest.mark.parametrize("kind", ["link", "file"])
def test_a_link_or_a_file_at_the_key_directory_is_left_and_reported(account, tmp_path, kind):
    keys = tmp_path / "keys"
    keys.mkdir()
    outside = _decoy(tmp_path)
    if kind == "link":
        (keys / RUN).symlink_to(outside, target_is_directory=True)
    else:
        (keys / RUN).write_text("not a directory\n")
    digest, inode = decoy_state(outside), os.lstat(keys / RUN).st_ino
    with pytest.raises(_cleanup.CleanupError) as info:
        cleanup({"run_id": RUN, "key_dir": str(keys / RUN)}, regions=["us-east-1"])
    assert info.value.errors[0].startswith("key_dir: ")
    assert ("symbolic link" if kind == "link" else "not a directory") in info.value.errors[0]
    assert os.lstat(keys / RUN).st_ino == inode and decoy_state(outside) == digest


def test_the_planted_link_following_removal_is_caught(account, tmp_path, monkeypatch):
    """A removal that follows the link at key_dir empties the directory outside: the digest says so."""
    keys = tmp_path / "keys"
    keys.mkdir()
    outside = _decoy(tmp_path)
    (keys / RUN).symlink_to(outside, target_is_directory=True)
    digest = decoy_state(outside)

    def naive(path, check_mode):
        # what a removal that checks with isdir() and works through the path does
        if os.path.isdir(path):
            for name in os.listdir(path):
                if os.path.isfile(os.path.join(path, name)):
                    os.unlink(os.path.join(path, name))
        return [path], []

    monkeypatch.setattr(_cleanup, "remove_key_dir", naive)
    cleanup({"run_id": RUN, "key_dir": str(keys / RUN)}, regions=["us-east-1"])
    assert decoy_state(outside) != digest


def _plant_keys(tmp_path):
    keys = tmp_path / "keys"
    old = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
    for name in ("expired-run-1", "fresh-run-1", "x"):
        (keys / name).mkdir(parents=True)
        (keys / name / "id_ed25519").write_text("private key of %s\n" % name)
    outside = _decoy(tmp_path)
    (keys / "linked-run-1").symlink_to(outside, target_is_directory=True)
    (keys / "a-file-run-1").write_text("not a directory\n")
    for name in ("expired-run-1", "x", "a-file-run-1"):
        os.utime(keys / name, (old, old))
    os.utime(keys / "linked-run-1", (old, old), follow_symlinks=False)
    return keys, outside


def test_key_root_sweeps_only_expired_real_run_directories(account, tmp_path):
    keys, outside = _plant_keys(tmp_path)
    digest = decoy_state(outside)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"expired_before": now, "key_root": str(keys), "key_ttl_minutes": 180}
    check = cleanup(params, check_mode=True, regions=["us-east-1"])
    assert check["key_dirs"] == [str(keys / "expired-run-1")] and (keys / "expired-run-1").is_dir()
    result = cleanup(params, regions=["us-east-1"])
    assert result["key_dirs"] == [str(keys / "expired-run-1")]
    assert sorted(os.listdir(keys)) == ["a-file-run-1", "fresh-run-1", "linked-run-1", "x"]
    # far in the future every run's directory goes, never the link, the file, nor a name that is no run ID
    later = cleanup(dict(params, expired_before="2100-01-01T00:00:00Z"), regions=["us-east-1"])
    assert later["key_dirs"] == [str(keys / "fresh-run-1")]
    assert sorted(os.listdir(keys)) == ["a-file-run-1", "linked-run-1", "x"]
    assert decoy_state(outside) == digest


def test_a_key_root_that_is_a_link_is_refused(account, tmp_path):
    keys, outside = _plant_keys(tmp_path)
    (tmp_path / "keys-link").symlink_to(keys, target_is_directory=True)
    with pytest.raises(_cleanup.CleanupError) as info:
        cleanup({"expired_before": "2100-01-01T00:00:00Z", "key_root": str(tmp_path / "keys-link")}, regions=["us-east-1"])
    assert "key_root:" in info.value.errors[0] and "symbolic link" in info.value.errors[0]
    assert (keys / "expired-run-1").is_dir() and (keys / "fresh-run-1").is_dir()
    assert outside.is_dir()


def test_a_missing_key_directory_is_nothing_to_do(account, tmp_path):
    result = cleanup({"run_id": RUN, "key_dir": str(tmp_path / "keys" / RUN)}, regions=["us-east-1"])
    assert result == {"changed": False, "selection": "bakery:run-id=" + RUN, "kept": {}, "key_dirs": [],
                      "removed": {"us-east-1": {kind: [] for kind in _cleanup.KINDS}}}


# ---------------------------------------------------------------------------------------------
# ami_builder state=absent: the same engine, one region, builder kinds only


def test_remove_run_is_the_engine_without_images_and_without_region_prefix(account):
    made = account.run_everything("us-east-1", RUN, kept_volume=True)
    # remove_run names no region: the fake account's client is its region
    result = _cleanup.remove_run("us-east-1", RUN, sleep=lambda s: None)
    assert result == {"changed": True, "removed": {"instances": [made["instance"]], "security_groups": [made["group"]],
                                                   "key_pairs": [made["pair"]], "volumes": [made["volume"]]}}
    assert {x[2] for x in account.left()} == {made["image"], made["snapshot"]}
    account.errors["describe_security_groups"] = aws_error("InternalError", "DescribeSecurityGroups")
    with pytest.raises(_cleanup.CleanupError) as info:
        _cleanup.remove_run("us-east-1", RUN, sleep=lambda s: None)
    assert info.value.errors[0].startswith("find security groups:")
    assert info.value.result["changed"] is False


def test_waits_use_the_shared_waiter(account, monkeypatch):
    """The kept-volume wait goes through _waiter.wait_for_instances with the request's timeout."""
    seen = {}
    real = _waiter.wait_for_instances

    def spy(client, ids, state, timeout, **kwargs):
        seen.update(ids=list(ids), state=state, timeout=timeout)
        return real(client, ids, state, timeout, **kwargs)

    monkeypatch.setattr(_waiter, "wait_for_instances", spy)
    made = account.run_everything("us-east-1", RUN, kept_volume=True, image=False)
    cleanup({"run_id": RUN, "wait_timeout": 77}, regions=["us-east-1"])
    assert seen == {"ids": [made["instance"]], "state": "terminated", "timeout": 77}


# ---------------------------------------------------------------------------------------------
# Planted faults: each property check above can fail


def _remove_ignoring_check_mode(self, kind, resource_id, what, action):
    if self.attempt(what, action) is not None:
        self.removed[kind].append(resource_id)
        return True
    return False


def _remove_counting_not_found_as_failure(self, kind, resource_id, what, action):
    if self.check_mode or self.attempt(what, action):
        self.removed[kind].append(resource_id)
        return True
    return False


def test_planted_check_mode_that_acts_is_caught(account, monkeypatch):
    account.run_everything("us-east-1", RUN)
    monkeypatch.setattr(_cleanup.RegionCleanup, "_remove", _remove_ignoring_check_mode)
    with pytest.raises(_cleanup.CleanupError):  # the instance, left running by check mode, holds its group
        cleanup({"run_id": RUN, "images": "all"}, check_mode=True, regions=["us-east-1"])
    assert account.mutations() != []


def test_planted_lost_answer_counted_as_not_removed_is_caught(account, monkeypatch):
    made = account.run_everything("us-east-1", RUN)
    account.lost.add("delete_security_group")
    monkeypatch.setattr(_cleanup.RegionCleanup, "_remove", _remove_counting_not_found_as_failure)
    result = cleanup({"run_id": RUN, "images": "all"}, regions=["us-east-1"])
    assert result["removed"]["us-east-1"]["security_groups"] != [made["group"]]


def test_planted_failure_that_stops_the_rest_is_caught(account, monkeypatch):
    account.run_everything("us-east-1", RUN)
    account.errors["terminate_instances"] = aws_error("UnauthorizedOperation", "TerminateInstances")

    def attempt(self, what, action):
        return action()  # no recording: the first failure ends the region

    monkeypatch.setattr(_cleanup.RegionCleanup, "attempt", attempt)
    with pytest.raises(_aws.BakeryAWSError):
        cleanup({"run_id": RUN, "images": "all"}, regions=["us-east-1"])
    assert {kind for _r, kind, _i in account.left()} == {"instances", "groups", "pairs", "images", "snapshots"}


# ---------------------------------------------------------------------------------------------
# Launch template versions of a run (their description's marker)


@pytest.mark.parametrize("params,fragment", [
    ({"expired_before": NOW, "launch_templates": ["web"]}, "launch_templates: only with run_id"),
    ({"run_id": RUN, "launch_templates": ["web app"]}, "launch_templates[0]: 'web app' is neither a launch template ID"),
])
def test_bad_launch_templates_are_refused_before_any_call(account, params, fragment):
    with pytest.raises(_cleanup.InputError) as info:
        cleanup(dict({"regions": REGIONS}, **params))
    assert fragment in str(info.value)
    assert account.calls == []


def test_the_runs_launch_template_versions_go_first_and_the_default_is_restored(account, monkeypatch):
    from ansible_collections.bakery.ami.plugins.module_utils import _launch_template

    seen = []

    def remove_run_versions(client, template, run_id, check_mode=False):
        seen.append((client, template, run_id, check_mode, list(account.calls)))
        if template == "api" or client == "eu-west-1":
            return None  # not in that region
        return {"template_id": "lt-0123456789abcdef0", "deleted": [2, 4], "delete": [2, 4],
                "default_before": 4, "default_after": 1}

    monkeypatch.setattr(_launch_template, "remove_run_versions", remove_run_versions)
    result = cleanup({"run_id": RUN, "images": "all", "launch_templates": ["web", "api"]}, regions=["us-east-1", "eu-west-1"])
    # regions run concurrently: the order across regions is free
    assert sorted(item[:3] for item in seen) == sorted([("us-east-1", "web", RUN), ("us-east-1", "api", RUN),
                                                        ("eu-west-1", "web", RUN), ("eu-west-1", "api", RUN)])
    # before anything else of the run in that region
    assert all(not [call for call in entry[-1] if call[0] == entry[0]] for entry in seen)
    assert result["removed"]["us-east-1"]["launch_template_versions"] == ["web:2", "web:4"]
    assert result["removed"]["eu-west-1"]["launch_template_versions"] == []
    assert result["restored_defaults"] == {"us-east-1": {"web": 1}}
    assert result["changed"] is True
    # without launch_templates the result keeps its shape
    assert "restored_defaults" not in cleanup({"run_id": RUN})
