# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bakery.ami.ami_launch_template on the local endpoint, through ansible-playbook: check mode
predicts and changes nothing, a version is made once per region (rerun unchanged), set_default
moves only the default when the latest version already launches the image, state=absent removes
the run's versions and puts the default back, a missing template fails before any change."""
from __future__ import annotations

import json

REGIONS = ["us-east-1", "eu-west-1"]
TEMPLATE = "web"
RUN_ID = "20301231T000000-abcd1234"
MUTATING = ("CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "DeleteLaunchTemplateVersions")


def stock_image(ec2) -> str:
    return ec2.describe_images(Owners=["amazon"], MaxResults=5, Filters=[
        {"Name": "architecture", "Values": ["x86_64"]}, {"Name": "root-device-type", "Values": ["ebs"]}])["Images"][0]["ImageId"]


def setup(aws) -> dict:
    """A template 'web' (version 1 on a stock image, t3.micro) and a new image in each region."""
    images = {}
    for region in REGIONS:
        ec2 = aws.client("ec2", region)
        stock = stock_image(ec2)
        ec2.create_launch_template(LaunchTemplateName=TEMPLATE, VersionDescription="hand made",
                                   LaunchTemplateData={"ImageId": stock, "InstanceType": "t3.micro"})
        instance = ec2.run_instances(ImageId=stock, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
        images[region] = ec2.create_image(InstanceId=instance["InstanceId"], Name="web-base-1")["ImageId"]
    aws.reset_counts()
    return images


def mutations(aws) -> dict:
    return {operation: count for operation, count in aws.counts().items() if operation in MUTATING}


def versions(aws, region: str) -> dict:
    """version number -> (image ID, is default, description)."""
    found = aws.client("ec2", region).describe_launch_template_versions(LaunchTemplateName=TEMPLATE)
    return {item["VersionNumber"]: (item["LaunchTemplateData"].get("ImageId"), item["DefaultVersion"],
                                    item.get("VersionDescription"), item["LaunchTemplateData"].get("InstanceType"))
            for item in found["LaunchTemplateVersions"]}


def call(run_playbook, aws, tmp_path, args: dict, check: bool = False) -> dict:
    """One ami_launch_template task; its registered result."""
    out = tmp_path / "result.json"
    task = {"name": "ami_launch_template", "bakery.ami.ami_launch_template": args, "register": "result",
            "ignore_errors": True, "check_mode": check, "diff": True}
    save = {"name": "Save", "ansible.builtin.copy": {"dest": str(out), "content": "{{ result | to_json }}", "mode": "0600"}}
    play = [{"name": "t", "hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/bakery.ami.ami": {"endpoint_url": aws.url, "region": "us-east-1",
                                                          "access_key": "testing", "secret_key": "testing"}},
             "tasks": [task, save]}]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    done = run_playbook(playbook)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return json.loads(out.read_text())


def test_versions_made_once_set_default_and_removed_with_the_default_restored(aws, run_playbook, tmp_path):
    images = setup(aws)
    args = {"launch_template": TEMPLATE, "images": images, "set_default": True, "run_id": RUN_ID, "description": "bake"}

    predicted = call(run_playbook, aws, tmp_path, args, check=True)
    assert predicted["changed"] is True, predicted
    assert mutations(aws) == {}
    assert all(versions(aws, region).keys() == {1} for region in REGIONS)

    done = call(run_playbook, aws, tmp_path, args)
    assert done["changed"] is True, done
    assert mutations(aws) == {"CreateLaunchTemplateVersion": 2, "ModifyLaunchTemplate": 2}
    for region in REGIONS:
        plan = done["regions"][region]
        assert (plan["action"], plan["version"], plan["created"]) == ("create", 2, True)
        # check mode predicted the same plan, but for the number the new version got
        assert {k: v for k, v in predicted["regions"][region].items() if k != "version"} == \
            {k: v for k, v in plan.items() if k not in ("version", "created", "default_set")}
        now = versions(aws, region)
        stock = now[1][0]
        assert now[2] == (images[region], True, f"bake [bakery.ami image={images[region]} run={RUN_ID} default-was=1]",
                          "t3.micro")
        assert now[1] == (stock, False, "hand made", "t3.micro")
        assert done["diff"]["after"][region] == {"latest_version": 2, "default_version": 2, "image_id": images[region]}

    aws.reset_counts()
    rerun = call(run_playbook, aws, tmp_path, args)
    assert rerun["changed"] is False, rerun
    assert mutations(aws) == {}
    assert {region: plan["action"] for region, plan in rerun["regions"].items()} == {r: "none" for r in REGIONS}

    # someone makes a newer version by hand: without set_default, a new version on top; with it,
    # the default (still ours) already launches the image
    for region in REGIONS:
        aws.client("ec2", region).create_launch_template_version(
            LaunchTemplateName=TEMPLATE, SourceVersion="1", LaunchTemplateData={"InstanceType": "t3.large"})
    aws.reset_counts()
    assert call(run_playbook, aws, tmp_path, args)["changed"] is False
    again = call(run_playbook, aws, tmp_path, dict(args, set_default=False, description="latest"))
    assert again["changed"] is True and again["regions"]["us-east-1"]["version"] == 4
    assert mutations(aws) == {"CreateLaunchTemplateVersion": 2}
    assert versions(aws, "us-east-1")[4][0] == images["us-east-1"]
    assert versions(aws, "us-east-1")[4][3] == "t3.large"

    # the run's versions go; the default goes back to version 1, where it was
    aws.reset_counts()
    removal = {"launch_template": TEMPLATE, "run_id": RUN_ID, "regions": REGIONS, "state": "absent"}
    checked = call(run_playbook, aws, tmp_path, removal, check=True)
    assert checked["changed"] is True and mutations(aws) == {}
    removed = call(run_playbook, aws, tmp_path, removal)
    assert removed["changed"] is True, removed
    for region in REGIONS:
        plan = removed["regions"][region]
        assert (plan["delete"], plan["deleted"], plan["default_before"], plan["default_after"]) == ([2, 4], [2, 4], 2, 1)
        assert checked["regions"][region]["delete"] == [2, 4]
        now = versions(aws, region)
        assert sorted(now) == [1, 3] and now[1][1] is True
    assert call(run_playbook, aws, tmp_path, removal)["changed"] is False


def test_set_default_only_moves_the_default_when_the_latest_launches_the_image(aws, run_playbook, tmp_path):
    images = setup(aws)
    args = {"launch_template": TEMPLATE, "images": images}
    assert call(run_playbook, aws, tmp_path, args)["changed"] is True
    aws.reset_counts()
    moved = call(run_playbook, aws, tmp_path, dict(args, set_default=True))
    assert moved["changed"] is True
    assert {plan["action"] for plan in moved["regions"].values()} == {"set_default"}
    assert mutations(aws) == {"ModifyLaunchTemplate": 2}
    assert all(versions(aws, region)[2][1] is True for region in REGIONS)
    # by image: the version made for it goes, the default back to 1
    removed = call(run_playbook, aws, tmp_path, {"launch_template": TEMPLATE, "images": images, "state": "absent"})
    assert removed["changed"] is True
    assert all(sorted(versions(aws, region)) == [1] and versions(aws, region)[1][1] for region in REGIONS)


def test_a_missing_template_fails_naming_it_before_any_change(aws, run_playbook, tmp_path):
    images = setup(aws)
    aws.client("ec2", "eu-west-1").delete_launch_template(LaunchTemplateName=TEMPLATE)
    aws.reset_counts()
    failed = call(run_playbook, aws, tmp_path, {"launch_template": TEMPLATE, "images": images, "set_default": True})
    assert failed.get("failed") is True
    assert "launch_template: no launch template with the name 'web' in eu-west-1" in failed["msg"]
    assert "nothing was changed" in failed["msg"]
    assert mutations(aws) == {}
    assert sorted(versions(aws, "us-east-1")) == [1]
    missing_id = call(run_playbook, aws, tmp_path, {"launch_template": "lt-0123456789abcdef0",
                                                    "image_id": images["us-east-1"]})
    assert "launch_template: no launch template with the ID 'lt-0123456789abcdef0' in us-east-1" in missing_id["msg"]
    assert mutations(aws) == {}
