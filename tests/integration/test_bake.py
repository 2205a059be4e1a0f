# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bake end to end on the local endpoint, with the local chroot builder.

Needs root (the local builder mounts and chroots into a Debian 12 root from the rootfs harness)
and the network to the Debian mirror for the package steps. Each test starts from an empty
account on the endpoint (the ``aws`` fixture) loaded with the seed catalog.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.integration.conftest import REPO_ROOT, ansible_env, run_playbook_cmd
from tools import image_hygiene

CATALOG = REPO_ROOT / "tools" / "local_aws" / "catalogs" / "local-default.json"
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
DEBIAN_OWNER = "136693071363"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the local builder needs root (mount, chroot)")


@pytest.fixture(scope="module")
def local_aws():
    """The endpoint with the seed catalog (a Debian 12 source image in every region used)."""
    from tools.local_aws.control import LocalAws  # pylint: disable=import-outside-toplevel

    with LocalAws.start(port=0, amis=str(CATALOG)) as aws:
        yield aws


@pytest.fixture
def out(tmp_path):
    path = tmp_path / "bake-output"
    path.mkdir()
    return path


def bake(run_playbook, aws, out, playbook="playbooks/bake.yml", **overrides):
    """Run a playbook with examples/local.yml plus overrides; returns CompletedProcess. A bake runs
    without the image test stage (bake_test: false) unless the test says otherwise: the stage's own
    tests ask for it, and the other bakes do not spend its first boot (bakes are the suite's time)."""
    extra = {"bake_endpoint_url": aws.url, "bake_output_dir": str(out)}
    if playbook == "playbooks/bake.yml":
        extra["bake_test"] = False
    extra.update(overrides)
    result = run_playbook(playbook, args=["-e", "@examples/local.yml", "-e", json.dumps(extra)], timeout=1200)
    sys.stdout.write(result.stdout[-6000:])
    sys.stderr.write(result.stderr[-3000:])
    return result


def report(out):
    return json.loads((out / "bake-report.json").read_text())


def account(aws, regions=REGIONS):
    """Everything in the account that a bake could leave behind, per region."""
    state = {}
    for region in regions:
        ec2 = aws.client("ec2", region)
        state[region] = {
            "instances": sorted(
                i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                if i["State"]["Name"] != "terminated"),
            "key_pairs": sorted(k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]),
            "security_groups": sorted(
                g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"),
            "volumes": sorted(v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]),
            "images": sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"], IncludeDeprecated=True)["Images"]),
            "snapshots": sorted(s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]),
        }
    return state


def images_by_tag(aws, key, value, regions=REGIONS):
    found = {}
    for region in regions:
        images = aws.client("ec2", region).describe_images(
            Owners=["self"], IncludeDeprecated=True, Filters=[{"Name": "tag:%s" % key, "Values": [value]}])["Images"]
        found[region] = images
    return found


def boot_check(run_playbook, aws, out, **overrides):
    result = bake(run_playbook, aws, out, playbook="tools/ansible/boot_check.yml", **overrides)
    assert result.returncode == 0, "boot check failed"
    assert "came up with every baked customization intact" in result.stdout
    return result


def boot_checks(result) -> dict:
    """The boot check's checks, name -> PASS or FAIL, from its output."""
    found = {}
    for line in result.stdout.splitlines():
        text = line.strip().strip('",')
        for state in ("PASS", "FAIL"):
            if text.startswith(state + "  "):
                found[text[len(state) + 2:]] = state
    return found


def assert_the_test_stage_passed_before_the_copies(aws, result, rep, before):
    """The image test stage of a bake (bake_test): the local first boot ran between the image in the
    build region and its copies, passed every check, and the report lists it; every image finished,
    nothing temporary left."""
    assert rep["status"] == "succeeded" and sorted(rep["images"]) == sorted(REGIONS)
    assert [(t["name"], t["ok"]) for t in rep["tests"]] == [("local first boot", True)], rep["tests"]
    assert rep["tests"][0]["checks"] > 5 and rep["tests"][0]["failed_checks"] == []
    assert rep["tests_seconds"] >= rep["tests"][0]["seconds"] > 0
    text = result.stdout
    assert text.index("TASK [Note the start of the tests]") > text.index("TASK [Stop the builder and create the image in the build region")
    assert text.index("TASK [Copy the tested image") > text.index("First-boot a copy of the run's image with the launch user-data]")
    for region, image_id in rep["images"].items():
        image = aws.client("ec2", region).describe_images(ImageIds=[image_id])["Images"][0]
        assert "bakery:expires-at" not in {t["Key"] for t in image.get("Tags", [])}, region
    after = account(aws)
    for region in REGIONS:
        for kind in ("instances", "key_pairs", "security_groups"):
            assert after[region][kind] == before[region][kind], (region, kind)


# ---------------------------------------------------------------------------------------------


def test_base_then_service_then_rerun_adopts(aws, rootfs_image, run_playbook, out, tmp_path):
    """A base bake, a service bake on top of it, and a rerun of the service that adopts."""
    result = bake(run_playbook, aws, out, bake_version="1")
    assert result.returncode == 0
    base = report(out)
    assert base["status"] == "succeeded" and not base["adopted"]
    assert sorted(base["images"]) == sorted(REGIONS)
    assert base["source_image"]["owner_id"] == DEBIAN_OWNER
    assert base["api_calls"]["by_action"]["CreateImage"] == 1
    assert base["api_calls"]["by_action"]["CopyImage"] == 2
    base_id = base["images"]["us-east-1"]
    image = aws.client("ec2").describe_images(ImageIds=[base_id])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["bakery:family"] == "demo-base" and tags["bakery:stage"] == "base"
    assert tags["bakery:bake-level"] == "full" and tags["bakery:version"] == "1"
    assert "bakery:expires-at" not in tags, "a finished bake takes bakery:expires-at off its images"
    assert base["api_calls"]["by_action"].get("ModifyImageAttribute", 0) >= 1  # ImdsSupport v2.0 on the image
    manifest = json.loads((out / "bake-manifest.json").read_text())
    assert manifest["last_run_uuid"] == base["run_id"]
    assert manifest["builds"][-1]["artifact_id"].count("ami-") == 3
    assert sorted(manifest["builds"][-1]["artifact_id"].split(",")) == sorted("%s:%s" % kv for kv in base["images"].items())
    assert (out / "launch-user-data.yml").read_text().startswith("#cloud-config\n")
    assert base["local_archive"] == "written" and base["warnings"] == []
    # bake_test: false: no test stage, and the report says so without a warning
    assert base["tests"] == "skipped" and base["tests_seconds"] is None
    assert "First-boot a copy" not in result.stdout
    assert base["snapshot_archive"].endswith(base_id + ".tar")
    # the shipped image (the archive) passes the project's own scan: nothing ran after generalize
    archive = Path(base["snapshot_archive"])
    assert json.loads(archive.with_suffix(".json").read_text())["scan"]["clean"] is True
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    subprocess.run(["tar", "--numeric-owner", "-xpf", str(archive), "-C", str(shipped)], check=True)
    assert image_hygiene.load().scan(str(shipped))["findings"] == []
    assert not (shipped / "root/.ansible").exists()
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(shipped)], check=True)
    checks = boot_checks(boot_check(run_playbook, aws, out))
    # examples/local.yml's launch values, sourced by the image's sh; the hostname is the instance's own
    assert checks["launch values in /etc/default/bakery-demo equal bake_launch_config.values when sourced by sh"] == "PASS"
    assert [c for c, state in checks.items() if c.startswith("first boot: the instance has its new hostname")
            and state == "PASS"], checks
    nothing_temporary = account(aws)
    for region in REGIONS:
        assert nothing_temporary[region]["instances"] == []
        assert nothing_temporary[region]["key_pairs"] == []
        assert nothing_temporary[region]["security_groups"] == []

    service_out = tmp_path / "service-output"
    service_out.mkdir()
    service = dict(bake_family="demo-web", bake_stage="service", bake_base_family="demo-base", bake_version="7",
                   bake_level="standard", bake_packages=[], bake_services=[],
                   bake_files=[{"path": "/etc/demo-web.conf", "content": "listen 8080\n"}])
    # the service bake runs the image test stage (bake_test): its first boot is the boot check
    before_service = account(aws)
    result = bake(run_playbook, aws, service_out, bake_test=True, **service)
    assert result.returncode == 0
    first = report(service_out)
    assert_the_test_stage_passed_before_the_copies(aws, result, first, before_service)
    assert first["source_image"]["image_id"] == base_id
    assert first["parent_image"] == "us-east-1/" + base_id
    web_id = first["images"]["us-east-1"]
    tags = {t["Key"]: t["Value"] for t in aws.client("ec2").describe_images(ImageIds=[web_id])["Images"][0]["Tags"]}
    assert tags["bakery:parent-image"] == "us-east-1/" + base_id and tags["bakery:stage"] == "service"
    # standard: the file is applied at launch, so the user-data carries it
    assert "/etc/demo-web.conf" in (service_out / "launch-user-data.yml").read_text()
    # the service image was built on the base image's content (the archive of its snapshot)
    assert first["snapshot_archive"].endswith(web_id + ".tar")

    before = aws.counts()
    result = bake(run_playbook, aws, service_out, bake_test=True, **service)
    assert result.returncode == 0
    rerun = report(service_out)
    assert rerun["adopted"] is True
    # the adopted image was tested by the run that made it: no second test, no warning
    assert rerun["tests"] == "skipped" and "First-boot a copy" not in result.stdout
    assert rerun["images"] == first["images"]
    # the adopted image's content is the archive the first run wrote
    assert rerun["local_archive"] == "present" and rerun["warnings"] == []
    assert rerun["snapshot_archive"] == first["snapshot_archive"]
    after = aws.counts()
    for action in ("RunInstances", "CreateImage", "CopyImage", "CreateKeyPair"):
        assert after.get(action, 0) == before.get(action, 0), action
    web = images_by_tag(aws, "bakery:family", "demo-web")
    assert all(len(images) == 1 for images in web.values()), "a rerun adopts instead of duplicating"
    manifest = json.loads((service_out / "bake-manifest.json").read_text())
    assert len(manifest["builds"]) == 2


@pytest.mark.parametrize("level", ["minimal"])
def test_level_boots_under_ansible_runner(aws, rootfs_image, out, tmp_path, monkeypatch, level):
    """Each level (full and standard above) makes a working instance; this one via ansible-runner."""
    import ansible_runner  # pylint: disable=import-outside-toplevel

    monkeypatch.setenv("PATH", "%s:%s" % (Path(sys.executable).parent, os.environ.get("PATH", "")))

    extra = yaml_vars()
    extra.update({"bake_endpoint_url": aws.url, "bake_output_dir": str(out), "bake_level": level,
                  "bake_version": level, "bake_family": "demo-" + level, "bake_test": False})
    private = tmp_path / "runner"
    (private / "env").mkdir(parents=True)
    (private / "env" / "envvars").write_text(json.dumps({
        key: value for key, value in ansible_env().items()
        if key.startswith(("ANSIBLE_", "AWS_")) or key in ("PATH", "HOME")}))
    result = ansible_runner.run(private_data_dir=str(private), project_dir=str(REPO_ROOT),
                                playbook=str(REPO_ROOT / "playbooks" / "bake.yml"), inventory="localhost,",
                                extravars=extra, quiet=True,
                                cmdline="-c local")
    assert result.status == "successful", result.stdout.read()[-4000:]
    rep = report(out)
    assert rep["status"] == "succeeded"
    assert rep["customizations"]["baked"]["packages"] == []
    assert rep["customizations"]["launch"]["packages"] == ["cron"]
    user_data = (out / "launch-user-data.yml").read_text()
    assert "packages:" in user_data and "runcmd:" in user_data
    boot_check(run_playbook_cmd, aws, out)


def yaml_vars():
    import yaml  # pylint: disable=import-outside-toplevel

    return yaml.safe_load((REPO_ROOT / "examples" / "local.yml").read_text())


# ---------------------------------------------------------------------------------------------
# launch values and hostname after a real first boot; local archives

# values that KEY=value lines joined by the old plan broke (and a naive writer still would)
HOSTILE_VALUES = {
    "BAKERY_ENVIRONMENT": "local demo",
    "BAKERY_LOG_LEVEL": "info",
    "BAKERY_QUOTES": "it's \"quoted\"",
    "BAKERY_EQUALS": "a=b",
    "BAKERY_DOLLAR": "$HOME `id` $(id)",
    "BAKERY_LINES": "one\ntwo",
    "BAKERY_FLAG": True,
    "BAKERY_PORT": 8080,
}
ONE_REGION = {"bake_packages": [], "bake_services": [], "bake_regions": ["us-east-1"]}


def test_launch_values_intact_and_new_hostname_after_a_local_bake(aws, rootfs_image, run_playbook, out, tmp_path):
    """With the bake's default protections: the booted values file, sourced by the image's sh,
    equals bake_launch_config.values, and the instance first-booted with a new hostname has it.
    The same bake's SBOM lists what dpkg reports in the image (one bake serves both: bakes are the
    suite's time)."""
    from tools.local_builder import collection_module  # pylint: disable=import-outside-toplevel

    _plan = collection_module("plugins.module_utils._plan")
    launch = {"values": HOSTILE_VALUES, "values_path": "/etc/default/bakery-demo"}
    common = dict(ONE_REGION, bake_launch_config=launch, bake_cloudinit_protect=_plan.OPTIONS["bake_cloudinit_protect"][1])
    result = bake(run_playbook, aws, out, bake_version="values", **common)
    assert result.returncode == 0
    assert_sbom_lists_what_dpkg_reports(aws, out, tmp_path)
    result = bake(run_playbook, aws, out, playbook="tools/ansible/boot_check.yml", boot_check_hostname="ip-10-20-30-40",
                  **common)
    checks = boot_checks(result)
    assert checks["launch values in /etc/default/bakery-demo equal bake_launch_config.values when sourced by sh"] == "PASS"
    assert [name for name, state in checks.items() if state == "FAIL"] == [] and result.returncode == 0

    # the same check refuses a values file whose variables differ from the bake's
    wrong_vars = dict(common)
    wrong_vars["bake_launch_config"] = dict(launch, values=dict(HOSTILE_VALUES, BAKERY_LOG_LEVEL="debug"))
    wrong_result = bake(run_playbook, aws, out, playbook="tools/ansible/boot_check.yml", **wrong_vars)
    assert wrong_result.returncode != 0
    assert boot_checks(wrong_result)[
        "launch values in /etc/default/bakery-demo equal bake_launch_config.values when sourced by sh"] == "FAIL"
    assert "BAKERY_LOG_LEVEL: 4 characters, expected 5 characters" in wrong_result.stdout

    assert "hostname protected: kept as baked (every instance shares it)" not in checks
    assert checks["first boot: the instance has its new hostname ip-10-20-30-40"] == "PASS"


def test_adopted_image_without_its_archive_is_reported_and_not_booted(aws, rootfs_image, run_playbook, out):
    """A rerun that adopts a local image whose archive is gone says local_archive: missing in its
    report and final message; the boot check refuses the image, saying why, instead of booting."""
    from tools import local_builder  # pylint: disable=import-outside-toplevel

    result = bake(run_playbook, aws, out, bake_version="noarchive", **ONE_REGION)
    assert result.returncode == 0
    first = report(out)
    archive = Path(first["snapshot_archive"])
    assert first["local_archive"] == "written" and archive.is_file()
    archive.unlink()
    assert not local_builder.archive_status(None, first["images"]["us-east-1"])["present"]

    result = bake(run_playbook, aws, out, bake_version="noarchive", **ONE_REGION)
    assert result.returncode == 0
    rerun = report(out)
    assert rerun["adopted"] is True and rerun["status"] == "succeeded"
    assert rerun["local_archive"] == "missing" and rerun["snapshot_archive"] is None
    assert len(rerun["warnings"]) == 1 and rerun["warnings"][0].startswith("local_archive: missing: ")
    final = [line for line in result.stdout.splitlines() if "Baked " in line]
    assert final and "local_archive: missing" in final[-1], final

    result = bake(run_playbook, aws, out, playbook="tools/ansible/boot_check.yml", **ONE_REGION)
    assert result.returncode != 0
    assert "says local_archive: missing" in result.stdout
    assert "First-boot a copy" not in result.stdout, "nothing is booted"


def assert_sbom_lists_what_dpkg_reports(aws, out, tmp_path):
    """The bake wrote the image's CycloneDX SBOM beside the manifest: valid CycloneDX 1.6, one
    component per package dpkg-query counts as installed in the very root that became the image
    (its snapshot archive), its sha256 in the report and in the image's tag bakery:sbom-sha256."""
    import hashlib  # pylint: disable=import-outside-toplevel
    import tarfile  # pylint: disable=import-outside-toplevel

    from tools.local_builder import collection_module  # pylint: disable=import-outside-toplevel

    _sbom = collection_module("plugins.plugin_utils._sbom")
    done = report(out)
    sbom_path = Path(done["sbom"]["path"])
    assert sbom_path.parent == out, "the SBOM lies beside the manifest"
    data = sbom_path.read_bytes()
    assert done["sbom"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert _sbom.validate(data.decode("utf-8")) is None
    document = json.loads(data)
    assert document["specVersion"] == "1.6" and document["metadata"]["component"]["name"] == done["name"]

    # dpkg's own count on the image's content
    admin = tmp_path / "dpkg"
    with tarfile.open(done["snapshot_archive"]) as archive:
        member = archive.getmember("./var/lib/dpkg/status")
        admin.mkdir()
        (admin / "status").write_bytes(archive.extractfile(member).read())
    listed = subprocess.run(["dpkg-query", "-W", "--admindir", str(admin), "-f", "${db:Status-Abbrev}\\n"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    installed = [line for line in listed if line[1:2] == "i"]
    assert installed and len(document["components"]) == len(installed) == done["sbom"]["components"]

    image = aws.client("ec2").describe_images(ImageIds=[done["images"]["us-east-1"]])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["bakery:sbom-sha256"] == done["sbom"]["sha256"]


# ---------------------------------------------------------------------------------------------
# failures: the account ends with nothing from the failed run


QUICK = {"bake_packages": [], "bake_services": [], "bake_regions": list(REGIONS)}


def assert_nothing_from_run(aws, out, before):
    rep = report(out)
    assert rep["status"] == "failed"
    assert account(aws) == before, "the failed run left resources behind"
    for region, images in images_by_tag(aws, "bakery:run-id", rep["run_id"]).items():
        assert images == [], region
    return rep


def test_failure_source_not_found(aws, rootfs_image, run_playbook, out):
    before = account(aws)
    result = bake(run_playbook, aws, out, bake_source={"owners": [DEBIAN_OWNER], "name": "debian-99-*"}, **QUICK)
    assert result.returncode != 0
    assert "debian-99" in result.stdout
    assert account(aws) == before
    assert aws.counts().get("RunInstances", 0) == 0


def test_failure_in_customization_cleans_up(aws, rootfs_image, run_playbook, out):
    before = account(aws)
    result = bake(run_playbook, aws, out,
                  bake_files=[{"path": "/etc/broken.conf", "content": "x\n", "owner": "no-such-user"}], **QUICK)
    assert result.returncode != 0
    rep = assert_nothing_from_run(aws, out, before)
    assert rep["failed_phase"] == "customize"
    assert aws.counts().get("TerminateInstances", 0) >= 1


def test_failure_in_image_creation_cleans_up(aws, rootfs_image, run_playbook, out):
    before = account(aws)
    aws.configure(fault_rate=1.0, fault_actions=["CreateImage"])
    result = bake(run_playbook, aws, out, **QUICK)
    aws.configure(fault_rate=0.0, fault_actions=[])
    assert result.returncode != 0
    rep = assert_nothing_from_run(aws, out, before)
    assert rep["failed_phase"] == "publish"


def test_failure_of_one_copy_rolls_back(aws, rootfs_image, run_playbook, out):
    """A copy fails in one region (its name is taken there): every image of the run is removed."""
    name = "demo-base-copyfail-x86_64"
    west = aws.client("ec2", "us-west-2")
    source = west.describe_images(Owners=[DEBIAN_OWNER])["Images"][0]["ImageId"]
    instance = west.run_instances(ImageId=source, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    squatter = west.create_image(InstanceId=instance, Name=name)["ImageId"]
    west.terminate_instances(InstanceIds=[instance])
    before = account(aws)
    result = bake(run_playbook, aws, out, bake_version="copyfail", **QUICK)
    assert result.returncode != 0
    rep = assert_nothing_from_run(aws, out, before)
    assert rep["failed_phase"] == "publish"
    assert squatter in account(aws)["us-west-2"]["images"], "an image the run did not make is never touched"


def test_a_failing_test_rolls_the_image_back_and_leaves_nothing(aws, rootfs_image, run_playbook, out):
    """A test of bake_hooks.test that fails: the bake fails in phase test before any copy, the image
    is rolled back, nothing of the run is left; the report names the failed test."""
    before = account(aws)
    failing = str(REPO_ROOT / "tests" / "roles" / "failing_image_test")
    result = bake(run_playbook, aws, out, bake_version="untested", bake_test=True, bake_hooks={"test": [failing]},
                  **QUICK)
    assert result.returncode != 0
    rep = assert_nothing_from_run(aws, out, before)
    assert rep["failed_phase"] == "test"
    assert "the marker is missing" in rep["error"]
    assert rep["tests"][0]["name"] == "local first boot" and rep["tests"][0]["ok"] is True
    assert rep["tests"][-1] == dict(rep["tests"][-1], name="Fail the image test", ok=False)
    assert aws.counts().get("CopyImage", 0) == 0, "nothing was copied before the test"
    assert rep["rollback"]["images"], "the image was made and rolled back"


def test_without_customization(aws, rootfs_image, run_playbook, out):
    """bake_customize: false: nothing runs on the builder; images everywhere, finished, account clean."""
    before = account(aws)
    result = bake(run_playbook, aws, out, bake_customize=False, bake_version="plain", bake_launch_config={}, bake_files=[],
                  bake_channels=["latest"], **QUICK)
    assert result.returncode == 0
    rep = report(out)
    assert rep["status"] == "succeeded"
    assert sorted(rep["images"]) == sorted(REGIONS)
    # the channel of every region names that region's new image (as EC2 would resolve it)
    channel = "/bakery/%s/latest" % rep["family"]
    for region, image_id in rep["images"].items():
        parameter = aws.client("ssm", region).get_parameter(Name=channel)["Parameter"]
        assert (parameter["Value"], parameter["DataType"]) == (image_id, "aws:ec2:image"), region
    assert {region: entry["after"] for region, entry in rep["channels"]["latest"].items()} == rep["images"]
    assert rep["snapshot_archive"] is None, "nothing was customized, so no root is archived"
    for region, image_id in rep["images"].items():
        ec2 = aws.client("ec2", region)
        image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
        assert "bakery:expires-at" not in {t["Key"] for t in image.get("Tags", [])}, region
        snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "SnapshotId" in m.get("Ebs", {})]
        assert snapshots, region
        for snapshot in ec2.describe_snapshots(SnapshotIds=snapshots)["Snapshots"]:
            assert "bakery:expires-at" not in {t["Key"] for t in snapshot.get("Tags", [])}, (region, snapshot["SnapshotId"])
    after = account(aws)
    for region in REGIONS:
        for kind in ("instances", "key_pairs", "security_groups"):
            assert after[region][kind] == before[region][kind], (region, kind)


# ---------------------------------------------------------------------------------------------
# validation: bad configuration fails before any AWS resource is created


@pytest.mark.parametrize("overrides, message", [
    ({"bake_level": "medium"}, "bake_level"),
    ({"bake_regions": ["us-east-1", "mars-north-1"]}, "bake_regions"),
    ({"bake_regions": []}, "bake_regions"),
    ({"bake_family": "web base!"}, "bake_family"),
    ({"bake_builder": "aws", "bake_ssh_cidrs": ["0.0.0.0/0"]}, "bake_allow_open_ssh"),
    ({"bake_roles": ["no_such_role_here"]}, "bake_roles"),
    ({"bake_customize": False, "bake_packages": ["cron"]}, "bake_customize"),
    ({"bake_launch_config": {"values": {"BAD-KEY": "x"}}}, "bake_launch_config.values: 'BAD-KEY' is not a shell variable"),
    ({"bake_launch_config": {"values": {"OK": ["a", "list"]}}}, "bake_launch_config.values: OK must be a string"),
    ({"bake_instance_types": []}, "bake_instance_types: must be a list of 1-20 instance types"),
    ({"bake_test": True, "bake_test_roles": ["no_such_test_role"]}, "bake_test_roles: role no_such_test_role is not installed"),
    ({"bake_test": True, "bake_test_roles": ["../../etc"]}, "bake_test_roles: every entry must be a role name"),
    ({"bake_test": False, "bake_test_roles": ["bakery.ami.image_test"]}, "bake_test: false skips the image test stage"),
    ({"bake_test": True, "bake_test_connection": {"ansible_connection": "local"}},
     "bake_test_connection: sets the connection to the test instance of bake_builder: aws"),
    ({"bake_test": True, "bake_builder": "aws", "bake_customize": False, "bake_packages": [], "bake_services": [],
      "bake_files": []}, "reaches the test instance of the image test stage over SSH"),
    ({"bake_test": True, "bake_builder": "aws", "bake_ssh_cidrs": ["203.0.113.0/24"],
      "bake_test_connection": {"connection": "local"}}, "bake_test_connection: 'connection' is not a connection variable"),
])
def test_bad_configuration_fails_before_anything_exists(aws, run_playbook, out, overrides, message):
    result = bake(run_playbook, aws, out, **overrides)
    assert result.returncode != 0
    assert message in result.stdout
    counts = aws.counts()
    for action in ("CreateKeyPair", "CreateSecurityGroup", "RunInstances", "CreateImage"):
        assert counts.get(action, 0) == 0, action


# ---------------------------------------------------------------------------------------------


def tag_spec(kind, tags):
    return [{"ResourceType": kind, "Tags": tags}]


def test_sweep_removes_leftovers_of_a_killed_run(aws, run_playbook, out):
    """Resources planted as a killed run left them (expires-at passed) go; others stay."""
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (datetime.now(timezone.utc) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    planted = {}
    for region, expires in (("us-east-1", past), ("eu-west-1", past), ("us-west-2", future)):
        ec2 = aws.client("ec2", region)
        tags = [{"Key": "bakery:run-id", "Value": "killed-run"}, {"Key": "bakery:expires-at", "Value": expires}]

        ec2.create_key_pair(KeyName="bakery-killed-run", KeyType="ed25519", TagSpecifications=tag_spec("key-pair", tags))
        group = ec2.create_security_group(GroupName="bakery-killed-run", Description="x",
                                          TagSpecifications=tag_spec("security-group", tags))["GroupId"]
        source = ec2.describe_images(Owners=[DEBIAN_OWNER])["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=source, MinCount=1, MaxCount=1,
                                     TagSpecifications=tag_spec("instance", tags))["Instances"][0]["InstanceId"]
        image = ec2.create_image(InstanceId=instance, Name="killed-" + region, TagSpecifications=tag_spec("image", tags))["ImageId"]
        seed = ec2.create_volume(AvailabilityZone=region + "a", Size=1)["VolumeId"]
        snapshot = ec2.create_snapshot(VolumeId=seed, TagSpecifications=tag_spec("snapshot", tags))["SnapshotId"]
        ec2.delete_volume(VolumeId=seed)
        # (from a snapshot: amazon.aws.ec2_vol_info fails on moto's volumes without SnapshotId)
        volume = ec2.create_volume(AvailabilityZone=region + "a", SnapshotId=snapshot,
                                   TagSpecifications=tag_spec("volume", tags))["VolumeId"]
        planted[region] = {"group": group, "instance": instance, "volume": volume, "image": image,
                           "snapshot": snapshot}
    result = bake(run_playbook, aws, out, playbook="playbooks/sweep.yml")
    assert result.returncode == 0
    state = account(aws)
    for region in ("us-east-1", "eu-west-1"):
        assert state[region]["key_pairs"] == [], region
        assert state[region]["security_groups"] == [], region
        assert state[region]["instances"] == [], region
        assert planted[region]["volume"] not in state[region]["volumes"]
        assert state[region]["images"] == [], region
        assert planted[region]["snapshot"] not in state[region]["snapshots"]
    kept = state["us-west-2"]
    assert kept["key_pairs"] == ["bakery-killed-run"]
    assert planted["us-west-2"]["group"] in kept["security_groups"]
    assert planted["us-west-2"]["instance"] in kept["instances"]
    assert planted["us-west-2"]["image"] in kept["images"]


@pytest.mark.parametrize("launch_config, launch_files", [
    ({}, []),
    ({"files": [{"path": "/etc/x.conf", "content": "x\n"}]}, ["/etc/x.conf"]),
    ({"values": {"A": 1}}, ["/etc/default/bakery-launch"]),
    ({"values": None, "files": None}, []),
])
def test_launch_config_without_some_keys(run_playbook, tmp_path, launch_config, launch_files):
    """bake_launch_config: {} (the default) or without files/values plans without errors."""
    playbook = tmp_path / "plan.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "Plan", "ansible.builtin.include_role": {"name": "bakery.ami.customize", "tasks_from": "plan.yml"},
             "vars": {"customize_level": "standard", "customize_packages": [], "customize_files": [],
                      "customize_services": [], "customize_launch_config": launch_config,
                      "customize_user_data_path": str(tmp_path / "user-data.yml")}},
        ]}]))
    result = run_playbook(playbook, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    user_data = (tmp_path / "user-data.yml").read_text()
    assert user_data.startswith("#cloud-config\n")
    for path in launch_files:
        assert "path: " + path in user_data
    assert ("write_files" in user_data) == bool(launch_files)


# (launch config, what the message says after "customize_launch_config"); keys that are not shell
# variable names, values that cannot be one shell variable, a relative values_path
BAD_LAUNCH_CONFIGS = [
    ({"values": {key: "x"}}, ".values: %r is not a shell variable name" % key, "")
    for key in ("BAD-KEY", "1ABC", "A\n", "", "A B", "A=B", "A;id", "\u00c4B", "$(id)")
] + [
    ({"values": {"OK": ["a"]}}, ".values: OK must be a string, number, boolean or null", ""),
    ({"values": {"OK": {"a": 1}}}, ".values: OK must be a string, number, boolean or null", ""),
    ({"values": {"OK": "a\u0000b"}}, ".values: OK must not contain NUL", ""),
    ({"values": "A=B"}, ".values: must be a mapping", ""),
    ({"values": {"A": "x"}, "values_path": "etc/default/x"}, ".values_path: must be an absolute path", ""),
    ({"values": {"A": "x"}, "values_path": "/etc/default/x\ny"}, ".values_path: must be an absolute path", ""),
    ({"files": [{"content": "x"}]}, ".files: every entry needs an absolute path", ""),
]


def test_bad_launch_values_are_refused_naming_the_variable(run_playbook, tmp_path):
    """Each bad launch config fails the plan with a clear message before anything is written."""
    tasks = []
    for index, (config, _message, _shown) in enumerate(BAD_LAUNCH_CONFIGS):
        tasks.append({"name": "case %d" % index, "block": [
            {"name": "Plan", "ansible.builtin.include_role": {"name": "bakery.ami.customize", "tasks_from": "plan.yml"},
             "vars": {"customize_level": "standard", "customize_launch_config": config,
                      "customize_user_data_path": str(tmp_path / ("user-data-%d.yml" % index))}},
            {"name": "Not refused", "ansible.builtin.set_fact": {"result_%d" % index: "not refused"}}],
            "rescue": [{"name": "Refused", "ansible.builtin.set_fact": {
                "result_%d" % index: "{{ ansible_failed_result.msg }}"}}]})
    tasks.append({"name": "dump", "ansible.builtin.copy": {
        "dest": str(tmp_path / "results.json"), "mode": "0600",
        "content": "{{ [%s] | to_json }}" % ", ".join("result_%d" % i for i in range(len(BAD_LAUNCH_CONFIGS)))}})
    playbook = tmp_path / "plan.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    result = run_playbook(playbook, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    messages = json.loads((tmp_path / "results.json").read_text())
    for (config, message, shown), got in zip(BAD_LAUNCH_CONFIGS, messages, strict=True):
        assert got.startswith("customize_launch_config" + message), (config, got)
        assert shown in got, (config, got)
        assert "Traceback" not in got
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.yml", "results.json"], "a refused plan wrote nothing"


# ---------------------------------------------------------------------------------------------
# launch templates: a version per region for the new image; a failed bake removes them


def make_template(aws, name, regions):
    """A launch template 'name' in each region (version 1 on the Debian source, t3.micro)."""
    for region in regions:
        ec2 = aws.client("ec2", region)
        source = ec2.describe_images(Owners=[DEBIAN_OWNER])["Images"][0]["ImageId"]
        ec2.create_launch_template(LaunchTemplateName=name, VersionDescription="hand made",
                                   LaunchTemplateData={"ImageId": source, "InstanceType": "t3.micro"})


def template_versions(aws, name, region):
    """version number -> (image ID, is default)."""
    found = aws.client("ec2", region).describe_launch_template_versions(LaunchTemplateName=name)
    return {v["VersionNumber"]: (v["LaunchTemplateData"].get("ImageId"), v["DefaultVersion"])
            for v in found["LaunchTemplateVersions"]}


def test_launch_templates_get_a_version_of_the_new_image_from_a_fallback_instance_type(aws, rootfs_image, run_playbook, out):
    """A version per region of the template for the new image, made the default. The same bake's
    builder: bake_instance_types (over examples/local.yml's bake_instance_type), EC2 has no m7i.large
    capacity, so the builder is an m6i.large; the report and the manifest say which type and why."""
    make_template(aws, "bake-lt-ok", REGIONS)
    aws.configure(instance_type_refusals={"m7i.large": "InsufficientInstanceCapacity"})
    result = bake(run_playbook, aws, out, bake_customize=False, bake_version="lt-ok", bake_launch_config={},
                  bake_files=[], bake_launch_templates=[{"name": "bake-lt-ok", "set_default": True}],
                  bake_instance_types=["m7i.large", "m6i.large"], **QUICK)
    assert result.returncode == 0
    rep = report(out)

    assert "bake_instance_type: 't3.micro' is not used; bake_instance_types" in result.stdout + result.stderr
    assert rep["status"] == "succeeded"
    assert rep["instance_type"] == "m6i.large"
    assert rep["instance_type_attempts"] == [{"instance_type": "m7i.large", "error_code": "InsufficientInstanceCapacity"},
                                             {"instance_type": "m6i.large", "error_code": None}]
    manifest = json.loads((out / "bake-manifest.json").read_text())
    assert manifest["builds"][-1]["custom_data"]["instance_type"] == "m6i.large"
    launched = [i["InstanceType"] for r in aws.client("ec2", "us-east-1").describe_instances()["Reservations"]
                for i in r["Instances"]]
    assert launched.count("m6i.large") == 1 and "m7i.large" not in launched, launched

    for region, image_id in rep["images"].items():
        versions = template_versions(aws, "bake-lt-ok", region)
        assert versions[2] == (image_id, True), region
        assert versions[1][1] is False
        made = rep["launch_templates"]["bake-lt-ok"][region]
        assert (made["action"], made["version"], made["created"]) == ("create", 2, True)
        assert f"run={rep['run_id']} default-was=1]" in made["version_description"]


def test_failed_bake_removes_its_launch_template_versions_and_restores_the_default(
        aws, rootfs_image, run_playbook, out):
    """The first template gets its versions (made the default), the second is missing in one region:
    the publish fails, and the rollback removes the images and the first template's new versions,
    putting its default back on version 1."""
    make_template(aws, "bake-lt-web", REGIONS)
    make_template(aws, "bake-lt-api", REGIONS[:2])
    before = account(aws)
    result = bake(run_playbook, aws, out, bake_customize=False, bake_version="lt-fail", bake_launch_config={},
                  bake_files=[], bake_launch_templates=[{"name": "bake-lt-web", "set_default": True}, "bake-lt-api"],
                  **QUICK)
    assert result.returncode != 0
    rep = assert_nothing_from_run(aws, out, before)
    assert rep["failed_phase"] == "publish"
    assert "launch_template: no launch template with the name 'bake-lt-api' in eu-west-1" in rep["error"]
    assert aws.counts().get("CreateLaunchTemplateVersion", 0) == len(REGIONS)
    for region in REGIONS:
        versions = template_versions(aws, "bake-lt-web", region)
        assert sorted(versions) == [1] and versions[1][1] is True, region
    for region in REGIONS[:2]:
        assert sorted(template_versions(aws, "bake-lt-api", region)) == [1], region
    assert sorted(rep["rollback"]["launch_template_versions"]) == ["bake-lt-web:2"] * len(REGIONS)
    assert rep["rollback"]["restored_defaults"] == {region: {"bake-lt-web": 1} for region in REGIONS}
