# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_prune's staged retirement, protection, in-use checks and restore, through the module,
against the running local endpoint, in three regions.

Images are registered with boto3 on the endpoint and backdated with its control route; the module
runs in ansible-playbook. Every case runs check mode, then for real, then again, and holds the same
properties: check mode plans exactly what the run does, the rerun changes nothing, and no image
outside the selected family (nor its snapshots) is ever touched.
"""
from __future__ import annotations

import datetime
import json
import time

import pytest

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
FAMILY = "it-retire"
ACTIONS = ("deprecated", "disabled", "deregistered", "deleted_snapshots", "protection_lifted")
# What the module may call that changes anything.
MUTATING = ("EnableImageDeprecation", "DisableImage", "EnableImage", "DeregisterImage", "DeleteSnapshot",
            "DisableImageDeregistrationProtection", "EnableImageDeregistrationProtection", "ModifyImageAttribute")
OTHER_ACCOUNT = "222233334444"

PLAYBOOK_HEAD = """\
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/bakery.ami.ami:
      endpoint_url: "{url}"
      region: us-east-1
      access_key: testing
      secret_key: testing
  tasks:
"""
STEP = """\
    - name: Step {n}
      bakery.ami.{module}: {args}
      check_mode: {check}
      register: step_{n}
      ignore_errors: true
    - name: Record step {n}
      ansible.builtin.copy:
        content: "{{{{ step_{n} | to_json }}}}"
        dest: "{out}/step_{n}.json"
        mode: "0600"
"""


COOLDOWN_SECONDS = 30.0


def _time_of(text: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def days_ago(days: float) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def prune(aws, run_playbook, tmp_path):
    """prune([(args, check_mode[, module]), ...]) -> [module result, ...], all steps in one playbook run.

    The module is ami_prune (with regions: REGIONS) unless a step names another."""
    runs = {"n": 0}

    def run(steps: list) -> list:
        runs["n"] += 1
        out = tmp_path / f"run{runs['n']}"
        out.mkdir()
        text = PLAYBOOK_HEAD.format(url=aws.url)
        for n, step in enumerate(steps):
            args, check = step[0], step[1]
            module = step[2] if len(step) > 2 else "ami_prune"
            if module == "ami_prune":
                args = dict({"regions": REGIONS}, **args)
            text += STEP.format(n=n, module=module, args=json.dumps(args), check=str(check).lower(), out=out)
        playbook = out / "prune.yml"
        playbook.write_text(text)
        result = run_playbook(playbook)
        assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
        return [json.loads((out / f"step_{n}.json").read_text()) for n in range(len(steps))]

    return run


def register(aws, region: str, name: str, tags: dict, age_days: float | None = None) -> tuple:
    """An image of this account with its own snapshot, tagged, optionally backdated: (image, snapshot)."""
    ec2 = aws.client("ec2", region)
    volume = ec2.create_volume(AvailabilityZone=f"{region}a", Size=1)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    image_id = ec2.register_image(
        Name=name, RootDeviceName="/dev/xvda", VirtualizationType="hvm", Architecture="x86_64",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}],
    )["ImageId"]
    ec2.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    if age_days is not None:
        aws.set_image(region, image_id, creation_date=days_ago(age_days))
    return image_id, snapshot


def family_images(aws, region: str, ages: dict) -> dict:
    """{label: (image, snapshot)} of FAMILY in region, by age in days; plus a newest one and outsiders."""
    made = {"newest": register(aws, region, f"{FAMILY} newest", {"bakery:family": FAMILY, "bakery:version": "9"}, 0.1)}
    for label, age in ages.items():
        made[label] = register(aws, region, f"{FAMILY} {label}", {"bakery:family": FAMILY, "bakery:version": label}, age)
    # never to be touched: another family and an untagged image, as old as the oldest
    oldest = max(ages.values()) if ages else 400
    made["other-family"] = register(aws, region, "other family", {"bakery:family": "it-other"}, oldest)
    made["untagged"] = register(aws, region, "untagged", {}, oldest)
    return made


def state(aws, region: str) -> dict:
    """{image_id: (State, DeprecationTime)} of every image of the account in region, and its snapshots."""
    ec2 = aws.client("ec2", region)
    images = ec2.describe_images(Owners=["self"], IncludeDeprecated=True, IncludeDisabled=True)["Images"]
    snapshots = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    return {"images": {i["ImageId"]: (i["State"], i.get("DeprecationTime")) for i in images}, "snapshots": snapshots}


def ids(items) -> list:
    return sorted(item["image_id"] for item in items)


def plan_of(result: dict) -> dict:
    """What a result does, region by region: the image IDs of every action and the snapshots."""
    return {
        region: {key: (sorted(plan[key]) if key == "deleted_snapshots" else ids(plan[key])) for key in ACTIONS}
        for region, plan in result["regions"].items()
    }


def reasons(result: dict, region: str) -> dict:
    return {item["image_id"]: item["reasons"] for item in result["regions"][region]["kept"]}


def assert_properties(aws, before: dict, made: dict, predicted: dict, done: dict, again: dict) -> None:
    """Check mode planned what the run did; the rerun changed nothing; only the family was touched."""
    assert not predicted.get("failed") and not done.get("failed"), (predicted, done)
    assert plan_of(predicted) == plan_of(done)
    assert again["changed"] is False and not any(v for p in plan_of(again).values() for v in p.values()), again
    for region in REGIONS:
        after = state(aws, region)
        for label in ("other-family", "untagged"):
            image_id, snapshot = made[region][label]
            assert after["images"][image_id] == before[region]["images"][image_id], (region, label)
            assert snapshot in after["snapshots"]


def snapshot_before(aws) -> dict:
    return {region: state(aws, region) for region in REGIONS}


def mutating_calls(aws) -> dict:
    return {name: count for name, count in aws.counts().items() if name in MUTATING}


# ---------------------------------------------------------------------------------------------
# Stages


def test_each_stage_at_its_own_age_in_three_regions(aws, prune):
    made = {region: family_images(aws, region, {"young": 5, "deprecate": 20, "disable": 50, "deregister": 100})
            for region in REGIONS}
    before = snapshot_before(aws)
    args = {"family": FAMILY, "keep_latest": 1, "deprecate_after_days": 10, "disable_after_days": 40,
            "deregister_after_days": 90, "max_deletions": 3}
    predicted, done, again = prune([(args, True), (args, False), (args, False)])
    assert predicted["changed"] is True and done["changed"] is True
    assert_properties(aws, before, made, predicted, done, again)
    for region in REGIONS:
        mine = {label: image_id for label, (image_id, _snapshot) in made[region].items()}
        plan = done["regions"][region]
        # the young image gets its deprecation time in the future (creation + 10 days), the other one now
        assert ids(plan["deprecated"]) == sorted([mine["deprecate"], mine["young"]])
        assert ids(plan["disabled"]) == [mine["disable"]]
        assert ids(plan["deregistered"]) == [mine["deregister"]]
        assert plan["deleted_snapshots"] == [made[region]["deregister"][1]]
        assert reasons(done, region) == {mine["newest"]: ["newest image"]}
        after = state(aws, region)
        assert mine["deregister"] not in after["images"] and made[region]["deregister"][1] not in after["snapshots"]
        assert after["images"][mine["disable"]][0] == "disabled"
        assert after["images"][mine["deprecate"]][1] is not None

    # a later run with a shorter deregistration age takes the disabled image too
    later = dict(args, deregister_after_days=45)
    predicted, done, again = prune([(later, True), (later, False), (later, False)])
    assert_properties(aws, before, made, predicted, done, again)
    for region in REGIONS:
        assert ids(done["regions"][region]["deregistered"]) == [made[region]["disable"][0]]
        assert made[region]["disable"][0] not in state(aws, region)["images"]


def test_each_stage_beyond_its_own_count_in_three_regions(aws, prune):
    made = {region: family_images(aws, region, {"v4": 4, "v3": 5, "v2": 6, "v1": 7}) for region in REGIONS}
    before = snapshot_before(aws)
    args = {"family": FAMILY, "keep_latest": 1, "deprecate_after_count": 2, "disable_after_count": 3,
            "deregister_after_count": 4, "max_deletions": 3}
    predicted, done, again = prune([(args, True), (args, False), (args, False)])
    assert_properties(aws, before, made, predicted, done, again)
    for region in REGIONS:
        plan = done["regions"][region]
        assert reasons(done, region)[made[region]["v4"][0]][-1] == "among the 2 newest (deprecate_after_count)"
        assert ids(plan["deprecated"]) == [made[region]["v3"][0]]
        assert ids(plan["disabled"]) == [made[region]["v2"][0]]
        assert ids(plan["deregistered"]) == [made[region]["v1"][0]]


def test_disable_is_the_last_stage_without_a_deregistration_age(aws, prune):
    made = {region: family_images(aws, region, {"old": 400}) for region in REGIONS}
    before = snapshot_before(aws)
    args = {"family": FAMILY, "keep_latest": 1, "disable_after_days": 30}
    predicted, done, again = prune([(args, True), (args, False), (args, False)])
    assert_properties(aws, before, made, predicted, done, again)
    for region in REGIONS:
        assert ids(done["regions"][region]["disabled"]) == [made[region]["old"][0]]
        assert done["regions"][region]["deregistered"] == []


# ---------------------------------------------------------------------------------------------
# Protection


def test_protected_images_stay_unless_lifted_and_a_cooldown_is_waited_for(aws, prune):
    # Long enough for the check, the run and the rerun below to see it on a busy machine (3 s was not).
    aws.configure(protection_cooldown=COOLDOWN_SECONDS)
    made = {region: family_images(aws, region, {"plain": 100, "cooldown": 110}) for region in REGIONS}
    for region in REGIONS:
        ec2 = aws.client("ec2", region)
        ec2.enable_image_deregistration_protection(ImageId=made[region]["plain"][0])
        ec2.enable_image_deregistration_protection(ImageId=made[region]["cooldown"][0], WithCooldown=True)
    before = snapshot_before(aws)
    args = {"family": FAMILY, "keep_latest": 1, "max_deletions": 6}
    predicted, done, again = prune([(args, True), (args, False), (args, False)])
    assert_properties(aws, before, made, predicted, done, again)
    for region in REGIONS:
        why = reasons(done, region)
        assert why[made[region]["plain"][0]] == ["deregistration protection is enabled-without-cooldown (lift_protection is false)"]
        assert why[made[region]["cooldown"][0]] == ["deregistration protection is enabled-with-cooldown (lift_protection is false)"]
    assert done["changed"] is False

    lift = dict(args, lift_protection=True)
    predicted, done, again = prune([(lift, True), (lift, False), (lift, False)])
    assert_properties(aws, before, made, predicted, done, again)
    for region in REGIONS:
        plan = done["regions"][region]
        assert ids(plan["deregistered"]) == [made[region]["plain"][0]]
        assert plan["deregistered"][0]["lift_protection"] is True
        assert ids(plan["protection_lifted"]) == [made[region]["cooldown"][0]]
        cooling = again["regions"][region]["protection_cooldowns"]
        assert ids(cooling) == [made[region]["cooldown"][0]] and cooling[0]["until"]
        assert "cooldown that ends at" in reasons(again, region)[made[region]["cooldown"][0]][0]

    # the cooldown ends (the latest "until" the rerun reported): the next run deregisters the image
    ends = max(_time_of(again["regions"][region]["protection_cooldowns"][0]["until"]) for region in REGIONS)
    time.sleep(max(0.0, (ends - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) + 0.5)
    predicted, done, again = prune([(lift, True), (lift, False), (lift, False)])
    assert_properties(aws, before, made, predicted, done, again)
    for region in REGIONS:
        assert ids(done["regions"][region]["deregistered"]) == [made[region]["cooldown"][0]]
        assert made[region]["cooldown"][0] not in state(aws, region)["images"]


def test_an_image_published_with_protect_is_kept_by_prune(aws, prune):
    made = {region: family_images(aws, region, {"old": 100}) for region in REGIONS[:1]}
    ec2 = aws.client("ec2", "us-east-1")
    _image, snapshot = register(aws, "us-east-1", "scratch", {})
    create = {"snapshot_id": snapshot, "name": f"{FAMILY} protected", "architecture": "x86_64",
              "tags": {"bakery:family": FAMILY}, "build_id": "b-1", "protect": True, "protect_cooldown": True,
              "region": "us-east-1"}
    predicted, created, again = prune([(create, True, "ami_create"), (create, False, "ami_create"),
                                       (create, False, "ami_create")])
    assert predicted["deregistration_protection"] == created["deregistration_protection"] == "enabled-with-cooldown"
    assert created["changed"] is True and again["changed"] is False
    image = ec2.describe_images(ImageIds=[created["image_id"]])["Images"][0]
    assert image["DeregistrationProtection"] == "enabled-with-cooldown"
    aws.set_image("us-east-1", created["image_id"], creation_date=days_ago(50))
    args = {"family": FAMILY, "keep_latest": 1, "regions": ["us-east-1"]}
    (done,) = prune([(args, False)])
    plan = done["regions"]["us-east-1"]
    assert ids(plan["deregistered"]) == [made["us-east-1"]["old"][0]]
    assert reasons(done, "us-east-1")[created["image_id"]] == [
        "deregistration protection is enabled-with-cooldown (lift_protection is false)"]


def test_copies_published_with_protect_are_protected_in_every_region_and_kept_by_prune(aws, prune):
    source, _snapshot = register(aws, "us-east-1", f"{FAMILY} release",
                                 {"bakery:family": FAMILY, "bakery:version": "r1"}, 0.5)
    copy = {"source_image_id": source, "region": "us-east-1", "regions": REGIONS[1:], "protect": True}
    aws.reset_counts()
    predicted, done, again = prune([(copy, True, "ami_copy"), (copy, False, "ami_copy"), (copy, False, "ami_copy")])
    assert predicted["changed"] is True and done["changed"] is True and again["changed"] is False, (predicted, done)
    for result in (predicted, done, again):
        assert {region: entry["deregistration_protection"] for region, entry in result["images"].items()} == \
            {region: "enabled-without-cooldown" for region in REGIONS[1:]}
    copies = {region: entry["image_id"] for region, entry in done["images"].items()}
    for region, image_id in copies.items():
        ec2 = aws.client("ec2", region)
        assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["DeregistrationProtection"] == \
            "enabled-without-cooldown"
        attribute = ec2.describe_image_attribute(ImageId=image_id, Attribute="deregistrationProtection")
        assert attribute["DeregistrationProtection"]["Value"] == "enabled-without-cooldown"
    # once per copy, in the real run only: check mode and the rerun call nothing
    assert mutating_calls(aws).get("EnableImageDeregistrationProtection") == 2
    # ami_prune: a newer version supersedes the copies; it keeps them until told to lift the protection
    for region, image_id in copies.items():
        aws.set_image(region, image_id, creation_date=days_ago(100))
        register(aws, region, f"{FAMILY} newer", {"bakery:family": FAMILY, "bakery:version": "r2"}, 0.1)
    args = {"family": FAMILY, "keep_latest": 1, "regions": REGIONS[1:], "max_deletions": 2}
    lift = dict(args, lift_protection=True)
    kept, predicted, lifted, again = prune([(args, False), (lift, True), (lift, False), (lift, False)])
    for region, image_id in copies.items():
        assert kept["regions"][region]["deregistered"] == []
        why = "deregistration protection is enabled-without-cooldown (lift_protection is false)"
        assert reasons(kept, region)[image_id] == [why]
        assert ids(predicted["regions"][region]["deregistered"]) == ids(lifted["regions"][region]["deregistered"]) == \
            [image_id]
        assert image_id not in state(aws, region)["images"]
    assert again["changed"] is False


# ---------------------------------------------------------------------------------------------
# In-use checks


def in_use_world(aws) -> dict:
    """Per region, old images used in exactly one way each, and one unused."""
    made = {}
    for region in REGIONS:
        made[region] = family_images(aws, region, {"template": 100, "parameter": 100, "launched": 100, "shared": 100,
                                                   "instance": 100, "unused": 100})
        ec2 = aws.client("ec2", region)
        mine = {label: image_id for label, (image_id, _snapshot) in made[region].items()}
        # the default version holds the old image, the latest the newest
        ec2.create_launch_template(LaunchTemplateName="it-web", LaunchTemplateData={"ImageId": mine["template"]})
        ec2.create_launch_template_version(LaunchTemplateName="it-web", LaunchTemplateData={"ImageId": mine["newest"]})
        aws.client("ssm", region).put_parameter(Name="/it/web/current", Value=mine["parameter"], Type="String",
                                                DataType="aws:ec2:image")
        aws.set_image(region, mine["launched"], last_launched_time=days_ago(2))
        ec2.modify_image_attribute(ImageId=mine["shared"], LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
        instance = ec2.run_instances(ImageId=mine["instance"], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        ec2.stop_instances(InstanceIds=[instance])
        made[region]["instance-id"] = (instance, None)
    return made


@pytest.mark.parametrize("references", ["DescribeImageReferences", "direct queries"])
def test_each_in_use_reason_keeps_its_image_in_three_regions(aws, prune, references):
    made = in_use_world(aws)
    if references == "direct queries":
        aws.configure(unsupported_actions=["DescribeImageReferences"])
    before = snapshot_before(aws)
    args = {"family": FAMILY, "keep_latest": 1, "deregister_after_days": 30, "keep_launched_within_days": 7,
            "max_deletions": 3}
    predicted, done, again = prune([(args, True), (args, False), (args, False)])
    assert_properties(aws, before, made, predicted, done, again)
    for region in REGIONS:
        mine = {label: image_id for label, (image_id, _snapshot) in made[region].items()}
        plan = done["regions"][region]
        assert plan["in_use_checked_by"] == references
        assert ids(plan["deregistered"]) == [mine["unused"]]
        why = reasons(done, region)
        assert why[mine["instance"]] == [f"in use by {mine['instance-id']}"]
        assert len(why[mine["template"]]) == 1 and why[mine["template"]][0].startswith("in use: launch template lt-")
        assert why[mine["template"]][0].endswith("(it-web, default version)")
        assert why[mine["parameter"]] == ["in use: SSM parameter /it/web/current"]
        assert len(why[mine["launched"]]) == 1 and "within keep_launched_within_days (7)" in why[mine["launched"]][0]
        assert why[mine["shared"]] == [f"in use: shared with account {OTHER_ACCOUNT} (include_shared is false)"]


def test_include_shared_lets_a_shared_image_go(aws, prune):
    made = {region: family_images(aws, region, {"shared": 100}) for region in REGIONS}
    for region in REGIONS:
        aws.client("ec2", region).modify_image_attribute(
            ImageId=made[region]["shared"][0], LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    before = snapshot_before(aws)
    args = {"family": FAMILY, "keep_latest": 1, "include_shared": True, "max_deletions": 3}
    predicted, done, again = prune([(args, True), (args, False), (args, False)])
    assert_properties(aws, before, made, predicted, done, again)
    for region in REGIONS:
        assert ids(done["regions"][region]["deregistered"]) == [made[region]["shared"][0]]


# ---------------------------------------------------------------------------------------------
# Restore and bad input


def test_restore_enables_a_disabled_version_everywhere_and_refuses_what_is_not_disabled(aws, prune):
    made = {region: family_images(aws, region, {"v1": 50}) for region in REGIONS}
    for region in REGIONS:
        aws.client("ec2", region).disable_image(ImageId=made[region]["v1"][0])
    args = {"family": FAMILY, "state": "restored", "version": "v1"}
    aws.reset_counts()
    predicted, done, again = prune([(args, True), (args, False), (args, False)])
    assert predicted["changed"] is True and done["changed"] is True
    assert {r: ids(p["restored"]) for r, p in predicted["regions"].items()} == \
        {r: ids(p["restored"]) for r, p in done["regions"].items()} == {r: [made[r]["v1"][0]] for r in REGIONS}
    assert "must be re-shared" in done["launch_permissions"]  # registered by hand: no sharing record
    for region in REGIONS:
        assert state(aws, region)["images"][made[region]["v1"][0]][0] == "available"
    # restored (bakery:restored-at): the rerun changes nothing
    assert again["changed"] is False and not again.get("failed"), again
    assert mutating_calls(aws) == {"EnableImage": 3}
    # an image that was never disabled is refused before any change
    (never,) = prune([({"family": FAMILY, "state": "restored", "version": "9"}, False)])
    assert never["failed"] is True and "only a disabled image can be restored" in never["msg"]
    assert mutating_calls(aws) == {"EnableImage": 3}


def test_restore_shares_a_version_again_from_the_tags_its_copies_recorded(aws, prune):
    source, _snapshot = register(aws, "us-east-1", f"{FAMILY} shared",
                                 {"bakery:family": FAMILY, "bakery:version": "s1"}, 0.5)
    org = "arn:aws:organizations::111122223333:organization/o-abcdefghij"
    share = {"user_ids": [OTHER_ACCOUNT], "org_arns": [org]}
    copy = {"source_image_id": source, "region": "us-east-1", "regions": REGIONS, "launch_permissions": share}
    (copied,) = prune([(copy, False, "ami_copy")])
    assert not copied.get("failed"), copied
    images = {region: entry["image_id"] for region, entry in copied["images"].items()}
    wanted = [{"UserId": OTHER_ACCOUNT}, {"OrganizationArn": org}]

    def launch(region: str) -> list:
        found = aws.client("ec2", region).describe_image_attribute(ImageId=images[region], Attribute="launchPermission")
        return sorted(map(str, found["LaunchPermissions"]))

    for region, image_id in images.items():
        ec2 = aws.client("ec2", region)
        tags = {t["Key"]: t["Value"] for t in ec2.describe_images(ImageIds=[image_id])["Images"][0]["Tags"]}
        assert tags["bakery:shared-with"] == f"111122223333:organization/o-abcdefghij {OTHER_ACCOUNT}+snapshots"
        ec2.disable_image(ImageId=image_id)
        assert launch(region) == []
    restore = {"family": FAMILY, "state": "restored", "version": "s1"}
    aws.reset_counts()
    predicted, done, again = prune([(restore, True), (restore, False), (restore, False)])
    assert predicted["changed"] is True and done["changed"] is True and again["changed"] is False, (predicted, done)
    assert predicted["regions"] == done["regions"]
    assert done["launch_permissions"] == "shared again as their bakery:shared-with tags record"
    for region, image_id in images.items():
        assert ids(done["regions"][region]["restored"]) == ids(done["regions"][region]["reshared"]) == [image_id]
        assert launch(region) == sorted(map(str, wanted))
        snapshots = copied["images"][region]["snapshot_ids"]
        for snapshot_id in snapshots:
            users = aws.client("ec2", region).describe_snapshot_attribute(
                SnapshotId=snapshot_id, Attribute="createVolumePermission")["CreateVolumePermissions"]
            assert {"UserId": OTHER_ACCOUNT} in users
        assert not again["regions"][region]["restored"] and not again["regions"][region]["reshared"]
    # one EnableImage and one ModifyImageAttribute per region, in the real run only
    assert mutating_calls(aws) == {"EnableImage": 3, "ModifyImageAttribute": 3}


@pytest.mark.parametrize("args,fragment", [
    ({"keep_latest": 1, "disable_after_days": -1}, "disable_after_days: must be a whole number of days from 0 to 36500, got -1"),
    ({"keep_latest": 1, "deregister_after_days": -30}, "deregister_after_days: must be a whole number of days"),
    ({"deprecate_after_days": 30, "disable_after_days": 7}, "disable_after_days: 7 days is before deprecate_after_days (30 days)"),
    ({"disable_after_days": 60, "deregister_after_days": 20}, "deregister_after_days: 20 days is before disable_after_days (60 days)"),
    ({"state": "restored"}, "version: state=restored needs the bakery:version"),
])
def test_bad_input_fails_before_any_call(aws, prune, args, fragment):
    made = {region: family_images(aws, region, {"old": 100}) for region in REGIONS[:1]}
    assert made
    aws.reset_counts()
    (result,) = prune([(dict({"family": FAMILY}, **args), False)])
    assert result["failed"] is True and fragment in result["msg"]
    assert aws.counts() == {}


# ---------------------------------------------------------------------------------------------
# Image block public access (ami_create, ami_copy)


def test_a_public_share_under_block_public_access_fails_before_any_change(aws, prune):
    aws.client("ec2", "eu-west-1").enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")
    _image, snapshot = register(aws, "us-east-1", "scratch", {})
    source, _source_snapshot = register(aws, "us-east-1", f"{FAMILY} source", {"bakery:family": FAMILY})
    public = {"group_names": ["all"]}
    create = {"snapshot_id": snapshot, "name": f"{FAMILY} public", "architecture": "x86_64", "build_id": "b-2",
              "region": "us-east-1", "launch_permissions": public,
              "copy": {"regions": ["eu-west-1"]}}
    copy = {"source_image_id": source, "region": "us-east-1", "regions": ["eu-west-1", "ap-southeast-2"],
            "launch_permissions": public}
    aws.reset_counts()
    results = prune([(create, True, "ami_create"), (create, False, "ami_create"),
                     (copy, True, "ami_copy"), (copy, False, "ami_copy")])
    for result in results:
        assert result["failed"] is True
        assert result["msg"].startswith("launch_permissions.group_names: 'all' would make the image public in eu-west-1, "
                                        "but image block public access (ImageBlockPublicAccessState) is block-new-sharing")
    assert not {"RegisterImage", "CreateImage", "CopyImage", "CreateTags", "ModifyImageAttribute"} & set(aws.counts())
    assert aws.counts().get("GetImageBlockPublicAccessState")
    # where the setting is off, the same public share goes through
    aws.client("ec2", "eu-west-1").disable_image_block_public_access()
    (done,) = prune([(copy, False, "ami_copy")])
    assert not done.get("failed"), done
    copies = {region: image["image_id"] for region, image in done["images"].items()}
    assert aws.client("ec2", "eu-west-1").describe_images(ImageIds=[copies["eu-west-1"]])["Images"][0]["Public"] is True


# ---------------------------------------------------------------------------------------------
# Recycle Bin


def test_recycle_bin_coverage_is_reported_and_a_family_rule_made_where_none_covers(aws, prune):
    made = {region: family_images(aws, region, {"old": 100}) for region in REGIONS}
    period = {"RetentionPeriodValue": 9, "RetentionPeriodUnit": "DAYS"}
    aws.client("rbin", "us-east-1").create_rule(ResourceType="EC2_IMAGE", RetentionPeriod=period)
    aws.client("rbin", "eu-west-1").create_rule(
        ResourceType="EC2_IMAGE", RetentionPeriod=period,
        ResourceTags=[{"ResourceTagKey": "bakery:family", "ResourceTagValue": "it-other"}])
    before = snapshot_before(aws)
    args = {"family": FAMILY, "keep_latest": 1, "recycle_bin_retention_days": 30, "max_deletions": 3}
    predicted, done, again = prune([(args, True), (args, False), (args, False)])
    assert_properties(aws, before, made, predicted, done, again)
    bins = {region: done["regions"][region]["recycle_bin"] for region in REGIONS}
    assert bins["us-east-1"]["covered"] is True and bins["us-east-1"]["rules"][0]["level"] == "region"
    assert bins["us-east-1"]["create_rule"] is None
    for region in ("eu-west-1", "ap-southeast-2"):
        assert bins[region]["covered"] is False
        assert bins[region]["create_rule"] == predicted["regions"][region]["recycle_bin"]["create_rule"]
        rules = aws.client("rbin", region).list_rules(
            ResourceType="EC2_IMAGE", ResourceTags=[{"ResourceTagKey": "bakery:family", "ResourceTagValue": FAMILY}])["Rules"]
        assert [r["Identifier"] for r in rules] == [bins[region]["created_rule"]]
        assert rules[0]["RetentionPeriod"]["RetentionPeriodValue"] == 30
    assert all(again["regions"][region]["recycle_bin"]["covered"] is True for region in REGIONS)
