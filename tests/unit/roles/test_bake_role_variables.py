"""bake.yml enters the publish role and the collection's builder role past both of their checks: the
role's argument check and its settings check (the assert that opens tasks/main.yml). The plan has
checked every value the variables are made of. What those checks would have caught is checked
here instead: for plans of every kind of bake (the examples, the EC2 benchmark's, with and without
the test stage, SBOM, sharing, launch templates, lifecycle), the publish_* and builder_* variables
bake.yml passes to each of its includes of the two roles satisfy the role's argument specification
and its settings check.

The variables are read from bake.yml and tasks/publish_tested.yml themselves, and the settings
check from the role's tasks/main.yml, so a change to either is checked as written. One real
ansible-playbook run per plan: bakery.ami.bake_plan makes the plan, the builder's and the
source's results are stand-ins (their shapes are those the builder role and ami_find return),
ansible.builtin.validate_argument_spec checks the variables of each include, and the role's own
assert (with the role's defaults and vars under the include's variables) checks its settings.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
BAKE = ROOT / "playbooks" / "bake.yml"
TESTED = ROOT / "playbooks" / "tasks" / "publish_tested.yml"
PUBLISH_BLOCK = "Create the image, copy, share and retire old versions, unless an earlier phase failed"
BUILDER_INCLUDE = "Create the key pair, the security group and the builder instance"

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
    """(label, role, variables) of each include of the publish role, as bake.yml writes them."""
    plays = yaml.safe_load(BAKE.read_text())
    block = _find_block(plays[-1]["tasks"], PUBLISH_BLOCK)
    assert block, f"bake.yml has no block named {PUBLISH_BLOCK!r}"
    base = dict(block["vars"])
    includes = []
    for task in block["block"]:
        role = (task.get("ansible.builtin.include_role") or {}).get("name")
        if role == "bakery.ami.publish":
            includes.append((task["name"], "publish", dict(base, **task.get("vars", {}))))
    for task in yaml.safe_load(TESTED.read_text()):
        role = (task.get("ansible.builtin.include_role") or {}).get("name")
        if role == "bakery.ami.publish":
            includes.append(("tested: " + task["name"], "publish", dict(base, **task.get("vars", {}))))
    return includes


def builder_include() -> tuple:
    """(label, role, variables) of bake.yml's include of the builder role."""
    plays = yaml.safe_load(BAKE.read_text())
    task = next(filter(None, (_find_block(play.get("tasks", []), BUILDER_INCLUDE) for play in plays)), {})
    assert task, f"bake.yml has no task named {BUILDER_INCLUDE!r}"
    return ("builder: " + task["name"], "builder", dict(task["vars"]))


def role_files(role: str) -> tuple:
    """The role's argument spec (main entry point), its settings check (the first task of
    tasks/main.yml) and its defaults and vars, the variables under an include's own."""
    where = ROOT / "roles" / role
    options = yaml.safe_load((where / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    first = yaml.safe_load((where / "tasks" / "main.yml").read_text())[0]
    assert "ansible.builtin.assert" in first, f"{role}: tasks/main.yml does not open with its settings check"
    below = {}
    for part in ("defaults", "vars"):
        below.update(yaml.safe_load((where / part / "main.yml").read_text()) or {})
    return options, first["ansible.builtin.assert"], below


def playbook(includes: list) -> list:
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
    for label, role, variables in includes:
        options, settings_check, below = role_files(role)
        # bake.yml enters only the collection's own builder role past its checks
        when = ["bake.builder.role == 'bakery.ami.builder'"] if role == "builder" else []
        tasks.append({
            "name": "Check the arguments of " + label, "when": when, "vars": variables,
            "ansible.builtin.validate_argument_spec": {"argument_spec": options},
        })
        tasks.append({
            "name": "Check the settings of " + label, "when": when, "vars": dict(below, **variables),
            "ansible.builtin.assert": dict(settings_check, quiet=True),
        })
    return [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable}, "tasks": tasks}]


def all_includes() -> list:
    return publish_includes() + [builder_include()]


def run(tmp_path: pathlib.Path, extra: dict, var_files: list, includes: list) -> subprocess.CompletedProcess:
    book = tmp_path / "check.yml"
    book.write_text(yaml.safe_dump(playbook(includes), sort_keys=False))
    argv = [str(pathlib.Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", str(book)]
    for path in var_files:
        argv += ["-e", "@" + str(path)]
    argv += ["-e", json.dumps(dict(extra, bake_output_dir=str(tmp_path / "out")))]
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_NOCOLOR="1", BAKERY_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.run(argv, cwd=str(tmp_path), env=env, capture_output=True, text=True, check=False, timeout=300)


def test_every_include_of_the_two_roles_is_found():
    includes = all_includes()
    assert [role for _label, role, _variables in includes] == ["publish"] * 3 + ["builder"], includes
    assert all(variables.get("publish_name") for _label, role, variables in includes if role == "publish")
    assert builder_include()[2].get("builder_run_id")


@pytest.mark.parametrize(
    "var_files,extra,builder",
    [
        pytest.param([ROOT / "bench" / "bake" / "bakery-ec2.yml"], EC2_EXTRA, True, id="ec2-benchmark"),
        pytest.param([ROOT / "examples" / "al2023-base.yml"], {}, True, id="al2023-base"),
        pytest.param([ROOT / "examples" / "service-on-base.yml"], {"bake_ssh_cidrs": ["10.0.0.0/8"]}, True,
                     id="service-on-base"),
        pytest.param([ROOT / "examples" / "local.yml"], {"bake_local_tools_dir": str(ROOT)}, False, id="local"),
        pytest.param([], RICH, True, id="every-publish-option"),
        pytest.param([], dict(RICH, bake_test=False, bake_keep_latest=0, bake_keep_days=0, bake_deprecate_days=0,
                              bake_share_accounts=[], bake_launch_templates=[], bake_protect=False), True, id="bare"),
    ],
)
def test_the_variables_of_every_include_satisfy_the_role_spec_and_settings_check(tmp_path, var_files, extra, builder):
    done = run(tmp_path, extra, var_files, all_includes())
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    for check in ("arguments", "settings"):
        for label, _role, _variables in publish_includes():
            assert f"TASK [Check the {check} of {label}]" in done.stdout
        # the local plan's builder role is another one, entered through its own checks
        ran = re.search(rf"TASK \[Check the {check} of builder: [^\n]*\n(ok|skipping)", done.stdout)
        assert ran and ran.group(1) == ("ok" if builder else "skipping"), done.stdout[-3000:]


def test_a_variable_of_the_wrong_type_is_caught(tmp_path):
    """The argument check can fail: a mapping that passes a list where the role takes a number."""
    includes = [(label, role, dict(variables, publish_keep_latest="{{ bake.regions }}"))
                for label, role, variables in publish_includes()]
    done = run(tmp_path, EC2_EXTRA, [ROOT / "bench" / "bake" / "bakery-ec2.yml"], includes[:1])
    assert done.returncode != 0
    assert "TASK [Check the arguments of " in done.stdout  # the plan passed; the check failed
    assert "publish_keep_latest" in done.stdout


@pytest.mark.parametrize("wrong, role", [
    ({"builder_ssh_cidrs": "{{ ['0.0.0.0/1', '128.0.0.0/1'] }}"}, "builder"),
    ({"builder_run_id": "run id with spaces"}, "builder"),
    ({"publish_instance_id": ""}, "publish"),
])
def test_a_value_the_settings_check_refuses_is_caught(tmp_path, wrong, role):
    """The settings check can fail: SSH open to all of IPv4, a run ID the rule refuses, no instance."""
    includes = [(label, r, dict(variables, **wrong)) for label, r, variables in all_includes() if r == role][:1]
    done = run(tmp_path, EC2_EXTRA, [ROOT / "bench" / "bake" / "bakery-ec2.yml"], includes)
    assert done.returncode != 0
    assert "TASK [Check the settings of " in done.stdout
    assert f"{role}: needs" in done.stdout
