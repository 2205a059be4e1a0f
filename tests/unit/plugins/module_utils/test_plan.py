# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bake's plan: every rule of the bake's variables with its message, and the derived values."""
from __future__ import annotations

import datetime
import re

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _plan, _tags
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError as PlanError

NOW = datetime.datetime(2026, 12, 5, 10, 0, 0, tzinfo=datetime.timezone.utc)
INSTALLED = ("my_role", "ns.coll.web", "bakery.ami.builder", "/opt/roles/my_builder", "ns.coll.hook")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")


def context(**overrides):
    fields = dict(now=NOW, run_token="abcd1234", is_root=True, known_regions=REGIONS, cwd="/work/here",
                  cache_dir="/var/cache/bakery", role_exists=lambda name: name in ("my_role", "ns.coll.web", "bakery.ami.image_test"),
                  local_tools="/checkout", rendered_templates={"app.conf.j2": "rendered\n"},
                  role_path=lambda name: name if name in INSTALLED or name.startswith("/checkout/tools/") else None)
    fields.update(overrides)
    return _plan.Context(**fields)


def good(**overrides):
    settings = {"bake_family": "web-base", "bake_regions": ["us-east-1", "eu-west-1"],
                "bake_ssh_cidrs": ["203.0.113.10/32"], "bake_source": {"distro": "al2023"}}
    settings.update(overrides)
    return settings


def plan(**overrides):
    ctx = overrides.pop("ctx", context())
    return _plan.build_plan(good(**overrides), ctx)


def refused(pattern, ctx=None, **overrides):
    with pytest.raises(PlanError) as caught:
        _plan.build_plan(good(**overrides), ctx or context())
    assert re.search(pattern, caught.value.msg), caught.value.msg
    return caught.value.msg


# --- every rule the bake used to state in validate.yml, with its message ------------------------

@pytest.mark.parametrize("overrides, message", [
    ({"bake_level": "medium"}, r"^bake_level: must be one of full, standard, minimal, got medium$"),
    ({"bake_stage": "prod"}, r"^bake_stage: must be base or service, got prod$"),
    ({"bake_builder": "vm"}, r"^bake_builder: must be aws or local, got vm$"),
    ({"bake_arch": "sparc"}, r"^bake_arch: must be x86_64 or arm64, got sparc$"),
    ({"bake_family": "web base!"}, r"^bake_family: must be 1-64 characters, letters, digits, '\.', '_' or '-', "
                                   r"starting with a letter or digit, so that it can be used in AMI names and tags; "
                                   r"got 'web base!'$"),
    ({"bake_family": "web\n"}, r"^bake_family: .* got 'web\\n'$"),
    ({"bake_stage": "service", "bake_base_family": ""}, r"^bake_base_family: must be 1-64 characters"),
    ({"bake_regions": []}, r"^bake_regions: must be a non-empty list of region names without duplicates"),
    ({"bake_regions": ["us-east-1", "us-east-1"]}, r"^bake_regions: must be a non-empty list .* without duplicates"),
    ({"bake_region": ""}, r"^bake_region: must be a region name$"),
    ({"bake_regions": ["us-east-1", "mars-north-1"]}, r"^bake_regions: unknown region\(s\) mars-north-1"),
    ({"bake_region": "moon-1"}, r"^bake_region: unknown region\(s\) moon-1"),
    ({"bake_ssh_cidrs": ["0.0.0.0/0"]}, r"^bake_ssh_cidrs: SSH from anywhere .* is refused; .*bake_allow_open_ssh: true"),
    ({"bake_ssh_cidrs": ["::/0"]}, r"^bake_ssh_cidrs: SSH from anywhere"),
    ({"bake_ssh_cidrs": []}, r"^bake_ssh_cidrs: must be a non-empty list of CIDR blocks"),
    ({"bake_ssh_cidrs": ["not a cidr"]}, r"^bake_ssh_cidrs: every entry must be a CIDR block"),
    ({"bake_ssh_cidrs": "203.0.113.10/32"}, r"^bake_ssh_cidrs: must be a list, got str"),
    ({"bake_packages": "cron"}, r"^bake_packages: must be a list, got str"),
    ({"bake_services": {"cron": 1}}, r"^bake_services: must be a list, got dict"),
    ({"bake_roles": "my_role"}, r"^bake_roles: must be a list, got str"),
    ({"bake_files": [{"content": "x"}]}, r"^bake_files: every entry needs an absolute path"),
    ({"bake_files": [{"path": "etc/x", "content": "x"}]}, r"^bake_files: path must be an absolute file path"),
    ({"bake_launch_config": ["x"]}, r"^bake_launch_config: must be a mapping, got list"),
    ({"bake_tags": ["x"]}, r"^bake_tags: must be a mapping, got list"),
    ({"bake_source": "al2023"}, r"^bake_source: must be a mapping, got str"),
    ({"bake_customize": "sometimes"}, r"^bake_customize: must be a boolean \(true/false, yes/no\), got str"),
    ({"bake_customize": False, "bake_packages": ["cron"]},
     r"^bake_customize: false bakes the source as launched; it cannot be combined with bake_packages$"),
    ({"bake_roles": [{"vars": {}}]}, r"^bake_roles: each entry must be a role name or a mapping with name"),
    ({"bake_roles": ["no_such_role_here"]}, r"^bake_roles: not installed: no_such_role_here \(looked in"),
    ({"bake_name_template": "{family}|{version}"}, r"^bake_name_template: gives the image name 'web-base\|"),
    ({"bake_name_template": "{family}-{vresion}"}, r"^bake_name_template: unknown placeholder \{vresion\}"),
    ({"bake_channels": "latest"}, r"^bake_channels: must be a list, got str 'latest'$"),
    ({"bake_channels": ["Latest"]}, r"^bake_channels: 'Latest' is not a channel name: 1-64 characters"),
    ({"bake_channels": ["../prod"]}, r"^bake_channels: '\.\./prod' is not a channel name"),
    ({"bake_channels": ["latest", "latest"]}, r"^bake_channels: each channel once"),
    ({"bake_channel_prefix": "/bakery"}, r"^bake_channel_prefix: '/bakery' is not a parameter path prefix"),
    ({"bake_channel_prefix": "aws-images"}, r"^bake_channel_prefix: 'aws-images' starts with 'aws' or 'ssm'"),
])
def test_each_rule_names_the_variable_and_the_rule(overrides, message):
    refused(message, **overrides)


def test_local_builder_needs_root():
    refused(r"^bake_builder: local needs root: .*Run the bake as root", ctx=context(is_root=False),
            bake_builder="local")


def test_local_builder_outside_a_checkout_says_what_to_do():
    msg = refused(r"^bake_builder: local is the embedded default of a checkout", ctx=context(local_tools=None),
                  bake_builder="local")
    assert "bash tools/bake_local.sh" in msg and "bake_local_tools_dir" in msg


@pytest.mark.parametrize("cidrs", [["0.0.0.0/1", "128.0.0.0/1"], ["::/1", "8000::/1"],
                                   ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"]])
def test_cidrs_that_together_cover_everything_are_refused(cidrs):
    refused(r"^bake_ssh_cidrs: SSH from anywhere", bake_ssh_cidrs=cidrs)
    assert plan(bake_ssh_cidrs=cidrs, bake_allow_open_ssh=True)["builder"]["ssh_cidrs"] == cidrs


def test_cidrs_that_leave_a_gap_are_accepted():
    assert plan(bake_ssh_cidrs=["0.0.0.0/1", "128.0.0.0/2"])["builder"]["ssh_cidrs"]


@pytest.mark.parametrize("spelling, expected", [("false", False), ("no", False), ("False", False), ("0", False),
                                                ("off", False), ("true", True), ("yes", True), ("on", True)])
def test_booleans_accept_ansibles_spellings(spelling, expected):
    assert plan(bake_public_ip=spelling)["builder"]["public_ip"] is expected


def test_numbers_given_as_strings_are_accepted_and_checked():
    assert plan(bake_keep_latest="3")["prune"]["keep_latest"] == 3
    refused(r"^bake_keep_latest: must be a whole number, got str 'three'", bake_keep_latest="three")
    refused(r"^bake_ttl_minutes: must be a whole number from 10 to", bake_ttl_minutes=-5)


def test_ssh_cidrs_are_needed_only_when_the_controller_connects_over_ssh():
    assert plan(bake_ssh_cidrs=[], bake_customize=False, bake_test=False)["builder"]["ssh"] is False
    assert plan(bake_ssh_cidrs=[], bake_builder="local")["builder"]["mode"] == "local"


def test_unicode_digits_and_newlines_never_pass_the_rules():
    refused(r"^bake_run_id: ", bake_run_id="run-١٢٣٤٥٦")
    refused(r"^bake_run_id: ", bake_run_id="run-123456\n")
    refused(r"^bake_version: ", bake_version="1.0\n")


def test_too_many_tags_are_refused_before_anything_is_made():
    many = {"t%02d" % i: "v" for i in range(40)}
    refused(r"^bake_tags: 40 tags, with the 12 the bake adds, exceed EC2's limit of 50", bake_tags=many)
    # without an SBOM there is no bakery:sbom-sha256 tag to make room for
    refused(r"^bake_tags: 40 tags, with the 11 the bake adds", bake_tags=many, bake_sbom=False)
    assert plan(bake_tags={"t%02d" % i: "v" for i in range(38)}, bake_sbom=False)
    refused(r"^bake_tags: bakery:sbom-sha256 is set by the bake itself", bake_tags={_tags.SBOM_SHA256: "x"})
    refused(r"^bake_tags: bakery:family is set by the bake itself", bake_tags={_tags.FAMILY: "x"})
    refused(r"^bake_tags: tag name 'aws:x' uses the reserved prefix", bake_tags={"aws:x": "y"})


def test_the_sbom_is_planned_beside_the_manifest_named_after_the_image():
    p = plan(bake_manifest_path="/srv/out/manifest.json", bake_name_template="{family} ({version})/x", bake_version="1.0")
    assert p["sbom"] == {"enabled": True, "path": "/srv/out/%s-(1.0)-x.cdx.json".replace("(", "-").replace(")", "-")
                         % p["family"]}
    assert p["tag_names"]["sbom_sha256"] == "bakery:sbom-sha256"
    assert plan(bake_sbom=False)["sbom"]["enabled"] is False
    assert plan(bake_customize=False, bake_packages=[], bake_services=[], bake_files=[])["sbom"]["enabled"] is False
    refused(r"^bake_sbom: ", bake_sbom="maybe")


def test_unknown_bake_variables_are_named_with_a_suggestion():
    warnings = _plan.unknown_variables(["bake_regoins", "bake_family", "other"])
    assert warnings == ["bake_regoins: not a variable of the bake; it is ignored (did you mean bake_regions?)"]


def test_the_bakes_own_run_state_is_not_reported_as_a_typo():
    assert _plan.unknown_variables(sorted(_plan.RUN_STATE)) == []
    assert _plan.unknown_variables(["bake_result"]) != []


# --- derived values -------------------------------------------------------------------------------

def test_names_tags_and_paths_are_derived_once():
    p = plan(bake_version="7", bake_tags={"team": "platform"}, bake_regions=["eu-west-1", "us-east-1"],
             bake_region="us-east-1", bake_deprecate_days=365)
    assert p["version"] == "7"
    assert p["name"] == "web-base-7-x86_64"
    assert p["build_id"] == p["name"]
    assert p["run_id"] == "20261205100000-abcd1234"
    assert p["expires_at"] == "2026-12-05T13:00:00Z"
    assert p["regions"] == ["us-east-1", "eu-west-1"]
    assert p["copy_regions"] == ["eu-west-1"]
    assert p["deprecate_at"] == "2027-12-05T10:00:00Z"
    assert p["tags"]["image"] == {"team": "platform", _tags.FAMILY: "web-base", _tags.VERSION: "7",
                                  _tags.STAGE: "base", _tags.BUILD_ID: "web-base-7-x86_64",
                                  _tags.BAKE_LEVEL: "full", _tags.RUN_ID: p["run_id"],
                                  _tags.EXPIRES_AT: p["expires_at"]}
    assert p["tags"]["pending"] == {_tags.EXPIRES_AT: p["expires_at"]}
    assert p["paths"] == {"output_dir": "/work/here/bake-output", "manifest": "/work/here/bake-output/bake-manifest.json",
                          "report": "/work/here/bake-output/bake-report.json",
                          "user_data": "/work/here/bake-output/launch-user-data.yml", "cache_dir": "/var/cache/bakery"}
    assert p["builder"]["key_dir"] == "/var/cache/bakery/keys/" + p["run_id"]
    assert p["adoptable"] is True


def test_a_clock_version_cannot_adopt_and_a_pinned_one_can():
    assert plan()["adoptable"] is False
    assert plan()["version"] == "20261205100000"
    assert plan(bake_build_id="b-1")["adoptable"] is True


def test_service_stage_finds_its_base_by_tags():
    p = plan(bake_stage="service", bake_base_family="web-base", bake_family="web-app",
             bake_source={"tags": {"team": "x"}, "include_deprecated": True, "distro": "ignored"})
    assert p["source"] == {"owners": ["self"], "tags": {_tags.FAMILY: "web-base", _tags.STAGE: "base", "team": "x"},
                           "include_deprecated": True}


def test_bake_roles_keep_their_order_and_their_vars():
    p = plan(bake_roles=["my_role", {"name": "ns.coll.web", "vars": {"port": 80}}, "my_role"])
    assert p["roles"] == [{"name": "my_role", "vars": {}}, {"name": "ns.coll.web", "vars": {"port": 80}},
                          {"name": "my_role", "vars": {}}]


def test_the_local_shorthand_is_the_checkouts_builder_role_and_hooks():
    p = plan(bake_builder="local")
    assert p["builder"]["role"] == "/checkout/tools/ansible/roles/local_builder"
    assert p["hooks"]["after_builder"] == [{"role": "/checkout/tools/ansible/roles/local_builder",
                                            "tasks_from": "archive.yml"}]
    assert p["hooks"]["start"][0]["role"].startswith("/checkout/tools/")
    assert p["builder"]["local_root"] == "/var/cache/bakery/work/%s/root" % p["run_id"]
    assert p["builder"]["ssh"] is False


def test_a_builder_role_and_hooks_of_ones_own_plug_in():
    p = plan(bake_builder_role="/opt/roles/my_builder", bake_hooks={"after_publish": ["ns.coll.hook"]})
    assert p["builder"]["role"] == "/opt/roles/my_builder"
    assert p["builder"]["ssh"] is False
    assert p["hooks"]["after_publish"] == [{"role": "ns.coll.hook", "tasks_from": "main.yml"}]
    assert p["hooks"]["start"] == []


@pytest.mark.parametrize("hooks, message", [
    ({"later": ["ns.coll.hook"]}, r"^bake_hooks: unknown point 'later'"),
    ({"start": "ns.coll.hook"}, r"^bake_hooks\.start: must be a list"),
    ({"start": [{"role": "ns.coll.hook", "when": "x"}]}, r"^bake_hooks\.start: each entry must be"),
    ({"start": [{"role": "ns.coll.hook", "tasks_from": "../x.yml"}]}, r"^bake_hooks\.start: tasks_from must be"),
    ({"start": ["not.installed.role"]}, r"^bake_hooks\.start: role not\.installed\.role is not installed"),
])
def test_bad_hooks_are_refused(hooks, message):
    refused(message, bake_hooks=hooks)


def test_a_builder_role_that_is_not_installed_is_refused():
    refused(r"^bake_builder_role: role /no/where is not installed", bake_builder_role="/no/where")


def test_source_keys_are_ami_finds_options():
    refused(r"^bake_source: unknown keys owner \(the options of bakery\.ami\.ami_find", bake_source={"owner": "x"})
    refused(r"^bake_source: a base bake needs its source image", bake_source={})


def test_the_sweep_plan_checks_only_where_the_run_lives():
    sweep = _plan.build_sweep_plan({"bake_regions": ["us-east-1", "eu-west-1"], "bake_family": "not checked!",
                                    "bake_builder": "local"}, context())
    assert sweep["regions"] == ["us-east-1", "eu-west-1"]
    assert sweep["hooks"]["sweep"][0]["role"] == "/checkout/tools/ansible/roles/local_builder"
    with pytest.raises(PlanError, match="^bake_regions: unknown region"):
        _plan.build_sweep_plan({"bake_regions": ["moon-1"]}, context())


def test_every_variable_is_explained_in_the_annotated_example_with_its_default():
    """examples/al2023-base.yml is the documentation of the bake's interface."""
    import pathlib  # pylint: disable=import-outside-toplevel

    import yaml  # pylint: disable=import-outside-toplevel

    example = pathlib.Path(__file__).resolve().parents[4] / "examples" / "al2023-base.yml"
    documented = yaml.safe_load(example.read_text())
    assert sorted(set(_plan.OPTIONS) - set(documented)) == []
    assert sorted(set(documented) - set(_plan.OPTIONS)) == []


def test_only_the_modules_that_call_aws_are_in_the_action_group():
    import pathlib  # pylint: disable=import-outside-toplevel

    import yaml  # pylint: disable=import-outside-toplevel

    repo = pathlib.Path(__file__).resolve().parents[4]
    group = yaml.safe_load((repo / "meta" / "runtime.yml").read_text())["action_groups"]["ami"]
    calling_aws = sorted(p.stem for p in (repo / "plugins" / "modules").glob("*.py")
                         if "module_utils._aws import" in p.read_text() or "module_utils import _aws" in p.read_text()
                         or "AnsibleAWSModule(" in p.read_text())
    assert sorted(group) == calling_aws


def test_channels_are_in_the_plan_and_none_by_default():
    assert plan()["channels"] == {"prefix": "bakery", "names": []}
    assert plan(bake_channels=["latest", "canary"], bake_channel_prefix="images/team-a")["channels"] == {
        "prefix": "images/team-a", "names": ["latest", "canary"]}


# --- the builder's instance types (bake_instance_types, bake_instance_type) ------------------------

@pytest.mark.parametrize("overrides, message", [
    ({"bake_instance_types": []},
     r"^bake_instance_types: must be a list of 1-20 instance types to try in order, got 0 entries$"),
    ({"bake_instance_types": ["m5.%dxlarge" % i for i in range(21)]},
     r"^bake_instance_types: must be a list of 1-20 instance types to try in order, got 21 entries$"),
    ({"bake_instance_types": ["m7i.large", "m7i large"]},
     r"^bake_instance_types\[1\]: 'm7i large' is not an instance type such as t3\.micro$"),
    ({"bake_instance_types": ["m7i.large\n"]}, r"^bake_instance_types\[0\]: 'm7i\.large\\n' is not an instance type"),
    ({"bake_instance_types": ["m7i.large", "m6i.large", "m7i.large"]},
     r"^bake_instance_types: each type once; listed more than once: m7i\.large$"),
    ({"bake_instance_types": "m7i.large"}, r"^bake_instance_types: must be a list, got str 'm7i\.large'$"),
    ({"bake_instance_type": "big one"}, r"^bake_instance_type: 'big one' is not an instance type such as t3\.micro$"),
])
def test_instance_type_rules_name_the_variable(overrides, message):
    refused(message, **overrides)


def test_instance_types_reach_the_builder_in_order_and_one_type_is_a_one_entry_list():
    p = plan(bake_instance_types=["m7i.large", "m6i.large", "m5.large"])
    assert p["builder"]["instance_types"] == ["m7i.large", "m6i.large", "m5.large"]
    assert p["builder"]["instance_type"] == "m7i.large"
    assert plan(bake_instance_type="c7g.large")["builder"]["instance_types"] == ["c7g.large"]
    assert plan()["builder"]["instance_types"] == ["t3.micro"]
    assert plan(bake_instance_types=None)["builder"]["instance_types"] == ["t3.micro"]  # null: not set
    assert len(plan(bake_instance_types=["m5.%dxlarge" % i for i in range(20)])["builder"]["instance_types"]) == 20


def test_bake_instance_types_supersede_bake_instance_type_with_a_warning():
    given = good(bake_instance_type="t3.small", bake_instance_types=["m7i.large", "m6i.large"])
    assert _plan.build_plan(given, context())["builder"]["instance_types"] == ["m7i.large", "m6i.large"]
    assert _plan.superseded(given) == ["bake_instance_type: 't3.small' is not used; bake_instance_types "
                                       "['m7i.large', 'm6i.large'] is (the builder's instance types to try in order)"]
    assert _plan.superseded(good(bake_instance_type="t3.small")) == []
    assert _plan.superseded(good(bake_instance_types=["m7i.large"])) == []


# ---------------------------------------------------------------------------------------------
# bake_launch_templates


def test_launch_templates_are_in_the_plan_and_none_by_default():
    assert plan()["launch_templates"] == []
    assert plan(bake_launch_templates=["web", {"name": "api", "set_default": True, "regions": ["eu-west-1"]},
                                       {"name": "lt-0123456789abcdef0", "regions": ["us-east-1"]}])["launch_templates"] == [
        {"name": "web", "set_default": False, "regions": ["us-east-1", "eu-west-1"]},
        {"name": "api", "set_default": True, "regions": ["eu-west-1"]},
        {"name": "lt-0123456789abcdef0", "set_default": False, "regions": ["us-east-1"]},
    ]


def test_launch_template_regions_follow_the_bake_order():
    got = plan(bake_launch_templates=[{"name": "web", "regions": ["eu-west-1", "us-east-1"]}])["launch_templates"]
    assert got[0]["regions"] == ["us-east-1", "eu-west-1"]


@pytest.mark.parametrize("value,message", [
    ("web", r"^bake_launch_templates: must be a list, got str 'web'$"),
    ([7], r"^bake_launch_templates\[0\]: must be a launch template name or ID, or a dictionary"),
    (["w"], r"^bake_launch_templates\[0\]\.name: 'w' is neither a launch template ID .* nor a launch template name"),
    (["web app"], r"^bake_launch_templates\[0\]\.name: 'web app' is neither"),
    ([{"set_default": True}], r"^bake_launch_templates\[0\]\.name: required"),
    ([{"name": "web", "default": True}], r"^bake_launch_templates\[0\]: unknown keys default; the keys are name"),
    ([{"name": "web", "set_default": "yes"}], r"^bake_launch_templates\[0\]\.set_default: must be true or false"),
    ([{"name": "web", "regions": ["ap-southeast-2"]}],
     r"^bake_launch_templates\[0\]\.regions: 'ap-southeast-2' is not a region of the bake \(us-east-1, eu-west-1\)"),
    ([{"name": "web", "regions": []}], r"^bake_launch_templates\[0\]\.regions: must be a non-empty list"),
    ([{"name": "web", "regions": ["us-east-1", "us-east-1"]}], r"^bake_launch_templates\[0\]\.regions: each region once"),
    (["lt-0123456789abcdef0"], r"^bake_launch_templates\[0\]\.regions: lt-0123456789abcdef0 is a launch template ID"),
    (["web", {"name": "web"}], r"^bake_launch_templates\[1\]\.name: the launch template 'web' is named more than once"),
])
def test_launch_template_rules(value, message):
    refused(message, bake_launch_templates=value)


# --- deregistration protection of the image and its copies ----------------------------------------

def test_protection_is_off_by_default_and_derived_once_for_the_image_and_its_copies():
    assert plan()["protect"] == {"enabled": False, "cooldown": False}
    assert plan(bake_protect=True)["protect"] == {"enabled": True, "cooldown": False}
    assert plan(bake_protect=True, bake_protect_cooldown=True)["protect"] == {"enabled": True, "cooldown": True}


@pytest.mark.parametrize("overrides, message", [
    ({"bake_protect_cooldown": True},
     r"^bake_protect_cooldown: applies only with bake_protect: true \(it is the cooldown of the protection\)$"),
    ({"bake_protect": "always"}, r"^bake_protect: "),
])
def test_protection_rules_are_the_modules_own(overrides, message):
    refused(message, **overrides)


# --- the image test stage (bake_test, bake_test_roles) ----------------------------------------------

def test_the_test_stage_is_on_by_default_with_the_shipped_test_role():
    p = plan()
    assert p["test"] == {"enabled": True, "roles": ["bakery.ami.image_test"], "instance": True, "connection": {},
                         "ssh": True, "ssh_cidrs": ["203.0.113.10/32"]}
    # on AWS the stage is the builder role's test instance
    assert p["hooks"]["test"] == [{"role": "bakery.ami.builder", "tasks_from": "test_instance.yml"}]


def test_test_roles_of_ones_own_replace_the_default():
    assert plan(bake_test_roles=["my_role", "ns.coll.web"])["test"]["roles"] == ["my_role", "ns.coll.web"]
    assert plan(bake_test_roles=[])["test"]["roles"] == []


def test_bake_test_false_skips_the_stage():
    p = plan(bake_test=False)
    assert p["test"] == {"enabled": False, "roles": [], "instance": False, "connection": {}, "ssh": False,
                         "ssh_cidrs": []}
    assert p["hooks"]["test"] == []


def test_the_aws_test_instance_comes_before_test_hooks_of_ones_own():
    p = plan(bake_hooks={"test": ["ns.coll.hook"]})
    assert p["hooks"]["test"] == [{"role": "bakery.ami.builder", "tasks_from": "test_instance.yml"},
                                  {"role": "ns.coll.hook", "tasks_from": "main.yml"}]


def test_a_builder_role_of_ones_own_gets_no_test_instance():
    p = plan(bake_builder_role="/opt/roles/my_builder")
    assert p["test"]["instance"] is False and p["hooks"]["test"] == []


def test_the_test_connection_goes_over_the_ssh_defaults_and_another_connection_needs_no_ssh_cidrs():
    proxied = plan(bake_test_connection={"ansible_ssh_common_args": "-o ProxyJump=bastion", "ansible_port": 2222})
    assert proxied["test"]["connection"] == {"ansible_ssh_common_args": "-o ProxyJump=bastion", "ansible_port": 2222}
    assert proxied["test"]["ssh"] is True
    local = plan(bake_ssh_cidrs=[], bake_customize=False, bake_test_connection={"ansible_connection": "local"})
    assert local["test"] == dict(local["test"], ssh=False, instance=True, connection={"ansible_connection": "local"})


def test_without_customization_the_test_instance_still_needs_a_way_in():
    message = refused(r"^bake_ssh_cidrs: must be a non-empty list", bake_ssh_cidrs=[], bake_customize=False)
    assert "test instance" in message and "bake_test_connection" in message and "bake_test: false" in message
    assert plan(bake_ssh_cidrs=[], bake_customize=False, bake_test=False)["test"]["instance"] is False


def test_the_local_default_tests_with_its_first_boot_hook():
    p = plan(bake_builder="local")
    assert p["hooks"]["test"] == [{"role": "/checkout/tools/ansible/roles/local_builder", "tasks_from": "test.yml"}]


@pytest.mark.parametrize("overrides, message", [
    ({"bake_test": "sometimes"}, r"^bake_test: "),
    ({"bake_test_roles": "my_role"}, r"^bake_test_roles: "),
    ({"bake_test_roles": ["my_role", 3]}, r"^bake_test_roles: every entry must be a role name"),
    ({"bake_test_roles": ["../etc"]}, r"^bake_test_roles: every entry must be a role name"),
    ({"bake_test_roles": ["my_role", "my_role"]}, r"^bake_test_roles: a role is listed twice \(my_role\)"),
    ({"bake_test_roles": ["not_installed"]}, r"^bake_test_roles: role not_installed is not installed"),
    ({"bake_test": False, "bake_test_roles": ["my_role"]}, r"^bake_test: false skips the image test stage"),
    ({"bake_test_connection": "local"}, r"^bake_test_connection: must be a mapping"),
    ({"bake_test_connection": {"connection": "local"}}, r"^bake_test_connection: 'connection' is not a connection variable; "
                                                        r"every key must be ansible_"),
    ({"bake_test_connection": {"ANSIBLE_USER": "x"}}, r"^bake_test_connection: 'ANSIBLE_USER' is not a connection variable"),
    ({"bake_test_connection": {"ansible_user\n": "x"}}, r"^bake_test_connection: .* is not a connection variable"),
    ({"bake_test_connection": {"ansible_user": ["a"]}}, r"^bake_test_connection: ansible_user must be a plain value .*, got list"),
    ({"bake_test_connection": {"ansible_user": None}}, r"^bake_test_connection: ansible_user must be a plain value .*, got null"),
    ({"bake_test": False, "bake_test_connection": {"ansible_user": "x"}},
     r"^bake_test: false skips the image test stage; it cannot be combined with bake_test_connection"),
    ({"bake_builder": "local", "bake_test_connection": {"ansible_user": "x"}},
     r"^bake_test_connection: sets the connection to the test instance of bake_builder: aws .* \(bake_builder: local\)"),
    ({"bake_builder_role": "/opt/roles/my_builder", "bake_test_connection": {"ansible_user": "x"}},
     r"^bake_test_connection: .*makes no test instance \(bake_builder: aws, bake_builder_role: /opt/roles/my_builder\)"),
])
def test_bad_test_settings_are_refused(overrides, message):
    refused(message, **overrides)


@pytest.mark.parametrize("customize, connection, builder_admits, test_admits", [
    (True, {}, True, True),
    (False, {}, False, True),
    (False, {"ansible_connection": "local"}, False, False),
    (True, {"ansible_connection": "local"}, True, False),
])
def test_ssh_is_admitted_only_where_the_controller_connects_over_it(customize, connection, builder_admits, test_admits):
    """A builder nothing is run on, and a test instance the stage does not reach over SSH, get no
    SSH ingress at all: bake_ssh_cidrs reach only the instances the controller logs in to."""
    cidrs = ["203.0.113.0/24", "2001:db8::/48"]
    bake = plan(bake_ssh_cidrs=cidrs, bake_customize=customize, bake_test_connection=connection)
    assert bake["builder"]["ssh_cidrs"] == (cidrs if builder_admits else [])
    assert bake["test"]["ssh_cidrs"] == (cidrs if test_admits else [])
    assert bake["builder"]["connect"] is customize
