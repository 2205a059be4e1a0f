"""bake.yml includes the publish role without the role's own argument check (the plan has checked
every value the publish variables are made of). What that check would have caught is checked here
instead: for plans of every kind of bake (the examples, the EC2 benchmark's, with and without the
test stage, SBOM, sharing, launch templates, lifecycle), the publish_* variables bake.yml passes to
each of its includes of the role satisfy the role's argument specification.

The variables are read from bake.yml and tasks/publish_tested.yml themselves, so a change to the
mapping is checked as written. One real ansible-playbook run per plan: bakery.ami.bake_plan makes
the plan, the builder's and the source's results are stand-ins (their shapes are those the
builder role and ami_find return), and ansible.builtin.validate_argument_spec checks the
variables of each include.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
BAKE = ROOT / "playbooks" / "bake.yml"
TESTED = ROOT / "playbooks" / "tasks" / "publish_tested.yml"
SPEC = ROOT / "roles" / "publish" / "meta" / "argument_specs.yml"
PUBLISH_BLOCK = "Create the image, copy, share and retire old versions, unless an earlier phase failed"

# What the plan is made from, beside the examples: every option that reaches a publish variable.
RICH = {
    "bake_family": "web-base",
    "bake_region": "us-east-1",
    "bake_regions": ["us-east-1", "eu-west-1", "ap-southeast-2"],
    "bake_builder": "aws",
    "bake_customize": False,
    "bake_source": {"owners": ["amazon"], "name": "al2023-ami-2023.*-x86_64"},
    "bake_ssh_cidrs": ["10.0.0.0/8"],
    "bake_share_accounts": ["123456789012"],
    "bake_kms_key_id": "alias/aws/ebs",
    "bake_keep_latest": 3,
    "bake_keep_days": 30,
    "bake_deprecate_days": 90,
    "bake_protect": True,
    "bake_launch_templates": [{"name": "web", "set_default": True}],
}
# what bench/bake/run.py adds to bench/bake/bakery-ec2.yml
EC2_EXTRA = {"bake_regions": ["us-east-1", "eu-west-1"], "bake_family": "bench"}


def _find_block(tasks: list, name: str) -> dict:
    for task in tasks:
        if task.get("name") == name:
            return task
        for section in ("block", "rescue", "always"):
            if section in task:
                found = _find_block(task[section], name)
                if found:
                    return found
    return {}


def publish_includes() -> list:
    """(label, variables) of each include of the publish role, as bake.yml writes them."""
    plays = yaml.safe_load(BAKE.read_text())
    block = _find_block(plays[-1]["tasks"], PUBLISH_BLOCK)
    assert block, f"bake.yml has no block named {PUBLISH_BLOCK!r}"
    base = dict(block["vars"])
    includes = []
    for task in block["block"]:
        role = (task.get("ansible.builtin.include_role") or {}).get("name")
        if role == "bakery.ami.publish":
            includes.append((task["name"], dict(base, **task.get("vars", {}))))
    for task in yaml.safe_load(TESTED.read_text()):
        role = (task.get("ansible.builtin.include_role") or {}).get("name")
        if role == "bakery.ami.publish":
            includes.append(("tested: " + task["name"], dict(base, **task.get("vars", {}))))
    return includes


def playbook(includes: list, options: dict) -> list:
    stand_ins = {
        "source": {"image_id": "ami-0123456789abcdef0", "name": "al2023-ami-2023.6.20250101.0-x86_64",
                   "root_device_name": "/dev/xvda"},
        "adopted": False,
        "existing_image": None,
        "builder": {"instance_id": "i-0123456789abcdef0", "security_group_id": "sg-0123456789abcdef0",
                    "public_key": "", "builder_type": "amazon-ebs"},
        "builder_run": {"finished": True, "release": {"locked": True, "release": "2023.6.20250101"}},
        "sbom": {"sha256": "0" * 64},
        "publish": {"image_id": "ami-0fedcba9876543210", "created": True},
    }
    tasks = [
        {"name": "Plan", "bakery.ami.bake_plan": {}, "register": "__bake_plan"},
        {"name": "Keep the plan and the stand-ins", "ansible.builtin.set_fact": {
            "bake": "{{ __bake_plan.bake }}", "bake_results": stand_ins}},
    ]
    for label, variables in includes:
        tasks.append({
            "name": "Check the variables of " + label,
            "vars": variables,
            "ansible.builtin.validate_argument_spec": {"argument_spec": options},
        })
    return [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable}, "tasks": tasks}]


def run(tmp_path: pathlib.Path, extra: dict, var_files: list, includes: list) -> subprocess.CompletedProcess:
    options = yaml.safe_load(SPEC.read_text())["argument_specs"]["main"]["options"]
    book = tmp_path / "check.yml"
    book.write_text(yaml.safe_dump(playbook(includes, options), sort_keys=False))
    argv = [str(pathlib.Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", str(book)]
    for path in var_files:
        argv += ["-e", "@" + str(path)]
    argv += ["-e", json.dumps(dict(extra, bake_output_dir=str(tmp_path / "out")))]
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_NOCOLOR="1", BAKERY_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.run(argv, cwd=str(tmp_path), env=env, capture_output=True, text=True, check=False, timeout=300)


def test_every_include_of_the_publish_role_is_found():
    labels = [label for label, _variables in publish_includes()]
    assert len(labels) == 3, labels
    assert all(variables.get("publish_name") for _label, variables in publish_includes())


@pytest.mark.parametrize(
    "var_files,extra",
    [
        pytest.param([ROOT / "bench" / "bake" / "bakery-ec2.yml"], EC2_EXTRA, id="ec2-benchmark"),
        pytest.param([ROOT / "examples" / "al2023-base.yml"], {}, id="al2023-base"),
        pytest.param([ROOT / "examples" / "service-on-base.yml"], {"bake_ssh_cidrs": ["10.0.0.0/8"]}, id="service-on-base"),
        pytest.param([ROOT / "examples" / "local.yml"], {"bake_local_tools_dir": str(ROOT)}, id="local"),
        pytest.param([], RICH, id="every-publish-option"),
        pytest.param([], dict(RICH, bake_test=False, bake_keep_latest=0, bake_keep_days=0, bake_deprecate_days=0,
                              bake_share_accounts=[], bake_launch_templates=[], bake_protect=False), id="bare"),
    ],
)
def test_the_publish_variables_of_every_include_satisfy_the_role_spec(tmp_path, var_files, extra):
    done = run(tmp_path, extra, var_files, publish_includes())
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert done.stdout.count("Check the variables of ") == 3


def test_a_variable_of_the_wrong_type_is_caught(tmp_path):
    """The check can fail: a mapping that passes a list where the role takes a number."""
    includes = [(label, dict(variables, publish_keep_latest="{{ bake.regions }}"))
                for label, variables in publish_includes()]
    done = run(tmp_path, EC2_EXTRA, [ROOT / "bench" / "bake" / "bakery-ec2.yml"], includes[:1])
    assert done.returncode != 0
    assert "TASK [Check the variables of " in done.stdout  # the plan passed; the check failed
    assert "publish_keep_latest" in done.stdout
