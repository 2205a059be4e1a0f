# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The bake's plan: every bake_* variable validated once, and every value the bake derives from
# them (run ID, version, names, paths, regions, tags, copy and share settings, the customize
# plan, the protected paths) computed once, in plain Python that unit tests drive directly.
# The bakery.ami.bake_plan action plugin gathers the variables and the facts of the controller
# (time, whether it runs as root, which roles are installed, rendered templates) and calls
# build_plan(); playbooks/bake.yml and the roles only pass its values on.
#
# Rules are checked in a fixed order and the first one broken is reported alone, with a message
# that names the variable and the rule (later rules may rely on the types the earlier ones
# established).

from __future__ import annotations

import datetime
import difflib
import ipaddress
import re
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _customize, _protect, _tags, _time, _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError


class PlanError(BakeryError):
    """A bake variable breaks a rule; the message names it and the rule."""


# --- the variables ------------------------------------------------------------------------------

_TRUE = ("true", "yes", "on", "1", "y", "t")
_FALSE = ("false", "no", "off", "0", "n", "f")

LEVELS = ("full", "standard", "minimal")
STAGES = ("base", "service")
BUILDERS = ("aws", "local")
ARCHES = ("x86_64", "arm64")
NAME_FIELDS = ("family", "version", "arch", "stage", "level")

# name -> (kind, default). Kinds: str, bool, int, list, dict, any. Defaults that depend on the
# controller (the output directory) are filled in by build_plan from the context.
OPTIONS: t.Dict[str, t.Tuple[str, t.Any]] = {
    # what to build
    "bake_family": ("str", ""),
    "bake_stage": ("str", "base"),
    "bake_base_family": ("str", ""),
    "bake_version": ("version", ""),
    "bake_arch": ("str", "x86_64"),
    "bake_name_template": ("str", "{family}-{version}-{arch}"),
    "bake_description": ("str", ""),
    "bake_build_id": ("str", ""),
    "bake_tags": ("dict", {}),
    # where
    "bake_region": ("str", "us-east-1"),
    "bake_regions": ("list", ["us-east-1"]),
    "bake_endpoint_url": ("str", ""),
    "bake_aws_profile": ("str", ""),
    # the source image
    "bake_source": ("dict", {}),
    # the builder
    "bake_builder": ("str", "aws"),
    "bake_instance_type": ("str", "t3.micro"),
    # the types to try in order (None: not set, [bake_instance_type])
    "bake_instance_types": ("list", None),
    "bake_subnet_id": ("str", ""),
    "bake_vpc_id": ("str", ""),
    "bake_public_ip": ("bool", True),
    "bake_ssh_user": ("str", "ec2-user"),
    "bake_ssh_cidrs": ("list", []),
    "bake_allow_open_ssh": ("bool", False),
    "bake_kms_key_id": ("str", ""),
    "bake_volume_size": ("int", 0),
    "bake_volume_type": ("str", "gp3"),
    "bake_ttl_minutes": ("int", 180),
    "bake_wait_timeout": ("int", 1800),
    "bake_builder_role": ("str", ""),
    "bake_hooks": ("dict", {}),
    "bake_cache_dir": ("str", ""),
    "bake_local_cache_dir": ("str", ""),
    "bake_local_tools_dir": ("str", ""),
    # how much to bake
    "bake_customize": ("bool", True),
    "bake_level": ("str", "full"),
    "bake_packages": ("list", []),
    "bake_files": ("list", []),
    "bake_services": ("list", []),
    "bake_launch_config": ("dict", {}),
    "bake_roles": ("list", []),
    # release lock, cloud-init guard, generalize
    "bake_release": ("str", "source"),
    "bake_launch_updates": ("str", ""),
    "bake_cloudinit_protect": ("list", ["ssh_config", "etc_hosts"]),
    "bake_cloudinit_settings": ("dict", {}),
    "bake_cloudinit_allow_privileged_settings": ("bool", False),
    "bake_generalize_exclude": ("list", []),
    "bake_generalize_keep_secret_files": ("list", []),
    "bake_generalize_remove_secret_files": ("list", []),
    # publishing and lifecycle
    "bake_share_user_ids": ("list", []),
    "bake_share_org_arns": ("list", []),
    "bake_share_org_unit_arns": ("list", []),
    "bake_deprecate_days": ("int", 0),
    # deregistration protection of the new image and every copy (ami_create and ami_copy protect)
    "bake_protect": ("bool", False),
    "bake_protect_cooldown": ("bool", False),
    "bake_keep_latest": ("int", 0),
    "bake_keep_days": ("int", 0),
    "bake_prune_deprecate_after_days": ("int", 0),
    "bake_prune_max_deletions": ("int", -1),
    "bake_keep_failed": ("bool", False),
    # image channels (SSM parameters /<prefix>/<family>/<channel>) pointed at the new images
    "bake_channels": ("list", []),
    "bake_channel_prefix": ("str", "bakery"),
    # launch templates that get a version launching the new image (ami_launch_template)
    "bake_launch_templates": ("list", []),
    # the image test stage: the new image booted and tested before any copy, share or publish
    "bake_test": ("bool", True),
    # the roles run on the test instance (None: not set, [DEFAULT_TEST_ROLE])
    "bake_test_roles": ("list", None),
    # ansible_* connection variables of the test instance (bake_builder: aws), over the builder's SSH settings
    "bake_test_connection": ("dict", {}),
    # outputs
    "bake_output_dir": ("str", ""),
    "bake_manifest_path": ("str", ""),
    "bake_report_path": ("str", ""),
    "bake_user_data_path": ("str", ""),
    "bake_sbom": ("bool", True),
    "bake_run_id": ("str", ""),
}

# The points of the bake where bake_hooks run roles on the controller (the extension point).
HOOK_POINTS = ("start", "after_builder", "test", "after_publish", "before_report", "sweep")
DEFAULT_BUILDER_ROLE = "bakery.ami.builder"
# what bake_test_roles runs on the test instance unless set
DEFAULT_TEST_ROLE = "bakery.ami.image_test"
# the test stage of bake_builder: aws with the collection's builder role: a test instance launched
# from the new image, bake_test_roles run against it, terminated (roles/builder/tasks/test_instance.yml)
AWS_TEST_HOOK = {"role": DEFAULT_BUILDER_ROLE, "tasks_from": "test_instance.yml"}
# bake_test_connection: connection variables only (ansible_<name>), given as plain values
_CONNECTION_VARIABLE = re.compile(r"ansible_[a-z0-9_]{1,64}\Z")
# the connections that reach the test instance over SSH with the run's key (the default)
SSH_CONNECTIONS = ("ssh", "ansible.builtin.ssh", "paramiko", "paramiko_ssh", "ansible.builtin.paramiko_ssh")
# The embedded default of a checkout (bake_builder: local): roles under its tools/, never shipped.
LOCAL_ROLES = "tools/ansible/roles"
LOCAL_BUILDER_ROLE = LOCAL_ROLES + "/local_builder"
LOCAL_HOOKS = {
    "start": [{"role": LOCAL_ROLES + "/local_endpoint", "tasks_from": "start.yml"}],
    "after_builder": [{"role": LOCAL_ROLES + "/local_builder", "tasks_from": "archive.yml"}],
    # the test stage of the embedded default: the local first boot of the image (the boot check)
    "test": [{"role": LOCAL_ROLES + "/local_builder", "tasks_from": "test.yml"}],
    "after_publish": [{"role": LOCAL_ROLES + "/local_builder", "tasks_from": "publish.yml"}],
    "before_report": [{"role": LOCAL_ROLES + "/local_endpoint", "tasks_from": "report.yml"},
                      {"role": LOCAL_ROLES + "/local_builder", "tasks_from": "follow.yml"}],
    "sweep": [{"role": LOCAL_ROLES + "/local_builder", "tasks_from": "sweep.yml"},
              {"role": LOCAL_ROLES + "/local_builder", "tasks_from": "follow.yml"}],
}
SOURCE_KEYS = ("distro", "owners", "name", "filters", "tags", "ssm_parameter", "image_ids", "executable_by_me",
               "include_deprecated", "sort_by")

_KIND_WORDS = {"str": "a string", "bool": "a boolean (true/false, yes/no)", "int": "a whole number",
               "list": "a list", "dict": "a mapping", "version": "a string"}

_NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_RUN_ID = re.compile(r"[A-Za-z0-9-]{6,64}\Z")
_VERSION = re.compile(r"[A-Za-z0-9._+-]{1,64}\Z")
_CIDR_SHAPE = re.compile(r"[0-9a-fA-F:.]+/[0-9]{1,3}\Z")
_ROLE_NAME = re.compile(r"([a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\.)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_ABSOLUTE = re.compile(r"/[^\x00-\x1f\x7f]*\Z")


def _fail(message: str) -> t.NoReturn:
    raise PlanError(message)


def convert(name: str, kind: str, value: t.Any) -> t.Any:
    """A variable's value as its kind, accepting Ansible's usual spellings of booleans and whole
    numbers given as strings (`-e bake_customize=false`, `-e bake_keep_latest=3`)."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
            return int(value.strip())
    elif kind == "str":
        if isinstance(value, str):
            return value
    elif kind == "version":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif kind == "list":
        if isinstance(value, (list, tuple)):
            return list(value)
    elif kind == "dict":
        if value is None:
            return {}
        if isinstance(value, dict):
            return dict(value)
    else:
        return value
    _fail("%s: must be %s, got %s %r" % (name, _KIND_WORDS[kind], type(value).__name__, _short(value)))


def _short(value: t.Any, limit: int = 80) -> t.Any:
    text = repr(value)
    return value if len(text) <= limit else text[:limit] + "..."


# bake_* facts the bake playbook and its hooks keep while running: state, never settings
RUN_STATE = frozenset(("bake_results", "bake_builder_result", "bake_hook_report", "bake_test_results"))


def unknown_variables(given: t.Iterable[str]) -> list:
    """Warnings for bake_* names the bake does not know (a typo silently ignored is worse)."""
    warnings = []
    for name in sorted(given):
        if name.startswith("bake_") and name not in OPTIONS and name not in RUN_STATE:
            close = difflib.get_close_matches(name, list(OPTIONS), n=1)
            warnings.append("%s: not a variable of the bake; it is ignored%s"
                            % (name, " (did you mean %s?)" % close[0] if close else ""))
    return warnings


def superseded(given: dict) -> list:
    """Warnings for a variable set but not used because another one takes its place."""
    single, listed = given.get("bake_instance_type"), given.get("bake_instance_types")
    if single is not None and listed is not None:
        # variables come in layers (a bake file, group_vars, -e): the list wins, and says so
        return ["bake_instance_type: %r is not used; bake_instance_types %r is (the builder's instance types to try in "
                "order)" % (_short(single), _short(listed))]
    return []


def settle(given: dict, defaults: t.Optional[dict] = None) -> dict:
    """Every bake_* variable converted to its kind, defaults filled in."""
    values = {}
    for name, (kind, default) in OPTIONS.items():
        if name in given and given[name] is not None:
            values[name] = convert(name, kind, given[name])
        else:
            values[name] = (defaults or {}).get(name, default)
            if isinstance(values[name], (list, dict)):
                values[name] = type(values[name])(values[name])
    return values


# --- rules ----------------------------------------------------------------------------------------

def _check_list_of_strings(name: str, value: list, rule: t.Optional[re.Pattern] = None, what: str = "") -> None:
    for item in value:
        if not isinstance(item, str) or not item or (rule is not None and not rule.fullmatch(item)):
            _fail("%s: every entry must be %s, got %r" % (name, what or "a non-empty string", _short(item)))


def _roles(value: list) -> list:
    """bake_roles as [{name, vars}] in the order given (strings and mappings alike)."""
    roles: list[dict[str, t.Any]] = []
    for entry in value:
        if isinstance(entry, str):
            roles.append({"name": entry, "vars": {}})
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            extra = set(entry) - {"name", "vars"}
            if extra:
                _fail("bake_roles: an entry has unknown keys %s; each entry is a role name or a mapping "
                      "with name and optional vars" % ", ".join(sorted(map(str, extra))))
            role_vars = entry.get("vars") or {}
            if not isinstance(role_vars, dict):
                _fail("bake_roles: the vars of role %s must be a mapping" % entry["name"])
            roles.append({"name": entry["name"], "vars": dict(role_vars)})
        else:
            _fail("bake_roles: each entry must be a role name or a mapping with name (and optional vars), "
                  "got %r" % (_short(entry),))
    for role in roles:
        if not _ROLE_NAME.fullmatch(role["name"]):
            _fail("bake_roles: %r is not a role name (name, or namespace.collection.name)" % role["name"])
    return roles


def test_roles(value: t.Optional[list]) -> list:
    """bake_test_roles as a list of role names (None: the shipped default test role)."""
    if value is None:
        return [DEFAULT_TEST_ROLE]
    _check_list_of_strings("bake_test_roles", value, _ROLE_NAME, "a role name (name, or namespace.collection.name)")
    if len(set(value)) != len(value):
        _fail("bake_test_roles: a role is listed twice (%s)" % ", ".join(sorted({r for r in value if value.count(r) > 1})))
    return list(value)


def image_name(template: str, fields: dict) -> str:
    """The name template with its {placeholders} replaced; PlanError for an unknown one."""
    unknown = sorted({m for m in _PLACEHOLDER.findall(template) if m not in NAME_FIELDS})
    if unknown:
        _fail("bake_name_template: unknown placeholder%s %s; known: %s" % (
            "s" if len(unknown) > 1 else "", ", ".join("{%s}" % u for u in unknown),
            ", ".join("{%s}" % f for f in NAME_FIELDS)))
    return _PLACEHOLDER.sub(lambda m: str(fields[m.group(1)]), template)


class Context(t.NamedTuple):
    """What the plan needs to know about the controller."""

    now: datetime.datetime  # aware, UTC
    run_token: str  # 8 random lowercase letters and digits, for a generated run ID
    is_root: bool
    known_regions: t.Sequence[str]
    cwd: str  # where bake-output/ goes by default
    cache_dir: str  # $BAKERY_CACHE_DIR or ~/.cache/bakery-ami
    role_exists: t.Callable[[str], bool]
    local_tools: t.Optional[str]  # the checkout holding tools/ for bake_builder: local, or None
    role_path: t.Callable[[str], t.Optional[str]]  # where a role of that name (or path) is, or None
    rendered_templates: t.Mapping[str, str]  # template path -> rendered text (bake_files, launch files)


def validate(values: dict, context: Context) -> None:
    """The rules of the bake's variables, in order; PlanError with the first one broken."""
    v = values
    for name, choices in (("bake_level", LEVELS), ("bake_stage", STAGES), ("bake_builder", BUILDERS),
                          ("bake_arch", ARCHES), ("bake_volume_type", _validate.VOLUME_TYPES)):
        if v[name] not in choices:
            article = "one of " if len(choices) > 2 else ""
            allowed = ", ".join(choices) if len(choices) > 2 else " or ".join(choices)
            _fail("%s: must be %s%s, got %s" % (name, article, allowed, _short(v[name])))
    for name in ("bake_family",) + (("bake_base_family",) if v["bake_stage"] == "service" else ()):
        if not _NAME_RULE.fullmatch(v[name]):
            _fail("%s: must be 1-64 characters, letters, digits, '.', '_' or '-', starting with a letter or "
                  "digit, so that it can be used in AMI names and tags; got %r" % (name, v[name]))
    regions = v["bake_regions"]
    if not regions or len(set(map(str, regions))) != len(regions) or not all(isinstance(r, str) for r in regions):
        _fail("bake_regions: must be a non-empty list of region names without duplicates, got %s" % (regions,))
    if not v["bake_region"]:
        _fail("bake_region: must be a region name")
    known = set(context.known_regions)
    for name, listed in (("bake_region", [v["bake_region"]]), ("bake_regions", regions)):
        unknown = [r for r in listed if not re.fullmatch(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+", r)
                   or (known and r not in known)]
        if unknown:
            _fail("%s: unknown region(s) %s (not an AWS region name)" % (name, ", ".join(unknown)))
    _check_list_of_strings("bake_ssh_cidrs", v["bake_ssh_cidrs"], _CIDR_SHAPE,
                           "a CIDR block such as 203.0.113.10/32")
    for cidr in v["bake_ssh_cidrs"]:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            _fail("bake_ssh_cidrs: %r is not a CIDR block (e.g. 203.0.113.10/32)" % cidr)
    opened = _validate.internet_covering_families(v["bake_ssh_cidrs"])
    if opened and not v["bake_allow_open_ssh"]:
        _fail("bake_ssh_cidrs: SSH from anywhere (%s, together covering all of %s) is refused; list the "
              "controller's address range, or set bake_allow_open_ssh: true to accept the risk"
              % (", ".join(v["bake_ssh_cidrs"]), " and ".join(opened)))
    if connects_over_ssh(v) and not v["bake_ssh_cidrs"]:
        _fail("bake_ssh_cidrs: must be a non-empty list of CIDR blocks (e.g. 203.0.113.10/32) from which the "
              "controller reaches the builder over SSH (bake_builder: aws with bake_customize: true)")
    _check_list_of_strings("bake_packages", v["bake_packages"], re.compile(r"[A-Za-z0-9][A-Za-z0-9.+:~=_*-]{0,199}\Z"),
                           "a package name")
    _check_list_of_strings("bake_services", v["bake_services"], re.compile(r"[A-Za-z0-9_@.:-]{1,200}\Z"),
                           "a service name")
    _customize.check_files("bake_files", v["bake_files"])
    _customize.check_launch_config("bake_launch_config", v["bake_launch_config"])
    roles = _roles(v["bake_roles"])
    if not v["bake_customize"]:
        busy = [n for n in ("bake_packages", "bake_files", "bake_services", "bake_roles") if v[n]]
        if busy:
            _fail("bake_customize: false bakes the source as launched; it cannot be combined with %s"
                  % ", ".join(busy))
    if v["bake_builder"] == "local" and not context.is_root:
        _fail("bake_builder: local needs root: the local builder mounts proc, sys and dev in a Debian root "
              "filesystem and customizes it through chroot. Run the bake as root (e.g. sudo), or bake on AWS "
              "with bake_builder: aws.")
    if v["bake_builder"] == "local" and not context.local_tools:
        _fail("bake_builder: local is the embedded default of a checkout of the bakery.ami repository: its "
              "tools/ directory is not part of the installed collection. Run `bash tools/bake_local.sh` in a "
              "checkout, or set bake_local_tools_dir to a checkout's root, or bake on AWS with bake_builder: aws.")
    unknown_source = sorted(set(map(str, v["bake_source"])) - set(SOURCE_KEYS))
    if unknown_source:
        _fail("bake_source: unknown keys %s (the options of bakery.ami.ami_find: %s)"
              % (", ".join(unknown_source), ", ".join(SOURCE_KEYS)))
    if v["bake_stage"] == "base" and not v["bake_source"]:
        _fail("bake_source: a base bake needs its source image: distro, owners with name, ssm_parameter or "
              "image_ids (the options of bakery.ami.ami_find)")
    if v["bake_builder_role"] and context.role_path(v["bake_builder_role"]) is None:
        _fail("bake_builder_role: role %s is not installed (looked in the playbook's roles/, the roles path and "
              "the collections paths)" % v["bake_builder_role"])
    hooks(v["bake_hooks"], context)
    tests = test_roles(v["bake_test_roles"])
    if v["bake_test"]:
        missing_tests = [r for r in tests if not context.role_exists(r)]
        if missing_tests:
            _fail("bake_test_roles: role %s is not installed (looked in the playbook's roles/, the roles path and "
                  "the collections paths)" % ", ".join(missing_tests))
    elif v["bake_test_roles"]:
        _fail("bake_test: false skips the image test stage; it cannot be combined with bake_test_roles")
    if test_over_ssh(v, test_connection(v)) and not v["bake_ssh_cidrs"]:
        _fail("bake_ssh_cidrs: must be a non-empty list of CIDR blocks (e.g. 203.0.113.10/32) from which the "
              "controller reaches the test instance of the image test stage over SSH (bake_builder: aws with "
              "bake_test: true, also with bake_customize: false); or set bake_test_connection to reach it "
              "another way, or bake_test: false to skip the stage")
    missing = [r["name"] for r in roles if not context.role_exists(r["name"])]
    if missing:
        _fail("bake_roles: not installed: %s (looked in the playbook's roles/, the roles path and the "
              "collections paths)" % ", ".join(missing))
    if v["bake_run_id"] and not _RUN_ID.fullmatch(v["bake_run_id"]):
        _fail("bake_run_id: must be 6-64 letters, digits or '-', got %r" % v["bake_run_id"])
    if v["bake_version"] and not _VERSION.fullmatch(v["bake_version"]):
        _fail("bake_version: must be 1-64 letters, digits, '.', '_', '+' or '-', got %r" % v["bake_version"])
    for name, low, high in (("bake_ttl_minutes", 10, 7 * 24 * 60), ("bake_wait_timeout", 60, 24 * 3600),
                            ("bake_volume_size", 0, 16384), ("bake_deprecate_days", 0, 36500),
                            ("bake_keep_latest", 0, 10000), ("bake_keep_days", 0, 36500),
                            ("bake_prune_deprecate_after_days", 0, 36500)):
        if not low <= v[name] <= high:
            _fail("%s: must be a whole number from %d to %d, got %d" % (name, low, high, v[name]))
    if v["bake_kms_key_id"]:
        _raise_if(_validate.kms_key("bake_kms_key_id", v["bake_kms_key_id"]))
    for user in v["bake_share_user_ids"]:
        _raise_if(_validate.account_id("bake_share_user_ids", user))
    for arn in v["bake_share_org_arns"]:
        _raise_if(_validate.org_arn("bake_share_org_arns", arn))
    for arn in v["bake_share_org_unit_arns"]:
        _raise_if(_validate.org_unit_arn("bake_share_org_unit_arns", arn))
    instance_types(v)
    for name in ("bake_subnet_id", "bake_vpc_id"):
        if v[name]:
            _raise_if(_validate.resource_id(name, v[name], "subnet" if name == "bake_subnet_id" else "vpc"))
    if not -1 <= v["bake_prune_max_deletions"] <= 100000:
        _fail("bake_prune_max_deletions: must be -1 (ami_prune's own limits) or a number of images from 0 to "
              "100000, got %d" % v["bake_prune_max_deletions"])
    for name in ("bake_output_dir", "bake_manifest_path", "bake_report_path", "bake_user_data_path",
                 "bake_cache_dir", "bake_local_cache_dir", "bake_local_tools_dir"):
        if v[name] and not _ABSOLUTE.fullmatch(v[name]):
            _fail("%s: must be an absolute path without control characters, got %r" % (name, v[name]))
    for message in _protect.errors({"protect": v["bake_protect"], "protect_cooldown": v["bake_protect_cooldown"]},
                                   prefix="bake_"):
        _fail(message)
    _check_list_of_strings("bake_generalize_exclude", v["bake_generalize_exclude"], _ABSOLUTE,
                           "an absolute path inside the image (glob patterns allowed)")
    _check_list_of_strings("bake_cloudinit_protect", v["bake_cloudinit_protect"])
    _check_list_of_strings("bake_channels", v["bake_channels"])
    if v["bake_channels"] or v["bake_channel_prefix"] != "bakery":
        # only then: _channel brings boto3, which the plan of every other bake does without (~0.8 s)
        from ansible_collections.bakery.ami.plugins.module_utils import _channel  # pylint: disable=import-outside-toplevel

        for channel in v["bake_channels"]:
            _raise_if(_channel.check_channel("bake_channels", channel))
        if len(set(v["bake_channels"])) != len(v["bake_channels"]):
            _fail("bake_channels: each channel once, got %s" % (v["bake_channels"],))
        _raise_if(_channel.check_prefix("bake_channel_prefix", v["bake_channel_prefix"]))
    for name in ("bake_generalize_keep_secret_files", "bake_generalize_remove_secret_files"):
        _check_list_of_strings(name, v[name], _ABSOLUTE, "an absolute path inside the image")
    launch_templates(v["bake_launch_templates"], [v["bake_region"]] + list(v["bake_regions"]))


LAUNCH_TEMPLATE_KEYS = ("name", "set_default", "regions")


def launch_templates(value: list, bake_regions: list) -> list:
    """bake_launch_templates as [{name, set_default, regions}]: each entry a template name or ID, or a
    dictionary {name, set_default (default false), regions (default every region of the bake)}.

    PlanError naming the entry and the rule: each template once; its regions among the bake's
    (the new image exists only there), each once; a template ID (lt-...) names one region's template,
    so it takes exactly one region.
    """
    if not value:
        return []
    # only then: _launch_template brings boto3, which the plan of every other bake does without
    from ansible_collections.bakery.ami.plugins.module_utils import _launch_template  # pylint: disable=import-outside-toplevel

    regions_of_bake = list(dict.fromkeys(bake_regions))
    result: list = []
    for index, entry in enumerate(value):
        where = "bake_launch_templates[%d]" % index
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            _fail("%s: must be a launch template name or ID, or a dictionary with the keys %s, got %s"
                  % (where, ", ".join(LAUNCH_TEMPLATE_KEYS), _short(entry)))
        unknown = sorted(set(map(str, entry)) - set(LAUNCH_TEMPLATE_KEYS))
        if unknown:
            _fail("%s: unknown keys %s; the keys are %s" % (where, ", ".join(unknown), ", ".join(LAUNCH_TEMPLATE_KEYS)))
        if "name" not in entry:
            _fail("%s.name: required, the launch template's name or ID" % where)
        _raise_if(_launch_template.check_template(where + ".name", entry["name"]))
        set_default = entry.get("set_default", False)
        if not isinstance(set_default, bool):
            _fail("%s.set_default: must be true or false, got %s" % (where, _short(set_default)))
        regions = entry.get("regions", regions_of_bake)
        if not isinstance(regions, list) or not regions:
            _fail("%s.regions: must be a non-empty list of the bake's regions, got %s" % (where, _short(regions)))
        for region in regions:
            if region not in regions_of_bake:
                _fail("%s.regions: %r is not a region of the bake (%s); the new image exists only there"
                      % (where, region, ", ".join(regions_of_bake)))
        if len(set(regions)) != len(regions):
            _fail("%s.regions: each region once, got %s" % (where, regions))
        if _launch_template.by_id(entry["name"]) and len(regions) != 1:
            _fail("%s.regions: %s is a launch template ID, which names the template of one region; give exactly "
                  "one region (or the template's name, the same in every region)" % (where, entry["name"]))
        if any(known["name"] == entry["name"] for known in result):
            _fail("%s.name: the launch template %r is named more than once" % (where, entry["name"]))
        ordered = [region for region in regions_of_bake if region in regions]
        result.append({"name": entry["name"], "set_default": set_default, "regions": ordered})
    return result


def _raise_if(message: t.Optional[str]) -> None:
    if message:
        _fail(message)


def instance_types(values: dict) -> list:
    """The builder's instance types to try in order: bake_instance_types, else [bake_instance_type]."""
    listed = values["bake_instance_types"]
    if listed is None:
        _raise_if(_validate.instance_type("bake_instance_type", values["bake_instance_type"]))
        return [values["bake_instance_type"]]
    errors = _validate.instance_types("bake_instance_types", listed)
    if errors:
        _fail(errors[0])
    return list(listed)


def tests_instance(values: dict) -> bool:
    """Whether the bake tests its image on a test instance (the shipped test hook of bake_builder: aws
    with the collection's builder role)."""
    return (values["bake_builder"] == "aws" and values["bake_builder_role"] in ("", DEFAULT_BUILDER_ROLE)
            and bool(values["bake_test"]))


def test_connection(values: dict) -> dict:
    """bake_test_connection checked: ansible_* variables with plain values, only where a test
    instance is made; PlanError naming the option and the rule."""
    given = values["bake_test_connection"]
    if not given:
        return {}
    if not values["bake_test"]:
        _fail("bake_test: false skips the image test stage; it cannot be combined with bake_test_connection")
    if not tests_instance(values):
        _fail("bake_test_connection: sets the connection to the test instance of bake_builder: aws with the "
              "collection's builder role; this bake makes no test instance (bake_builder: %s%s)"
              % (values["bake_builder"], ", bake_builder_role: " + values["bake_builder_role"]
                 if values["bake_builder_role"] not in ("", DEFAULT_BUILDER_ROLE) else ""))
    for name, value in given.items():
        if not isinstance(name, str) or not _CONNECTION_VARIABLE.fullmatch(name):
            _fail("bake_test_connection: %r is not a connection variable; every key must be ansible_ followed by "
                  "lower-case letters, digits or '_' (e.g. ansible_connection, ansible_user, ansible_ssh_common_args)"
                  % _short(name))
        if isinstance(value, (dict, list)) or value is None:
            _fail("bake_test_connection: %s must be a plain value (a string, number or boolean), got %s"
                  % (name, type(value).__name__ if value is not None else "null"))
    return dict(given)


def test_over_ssh(values: dict, connection: dict) -> bool:
    """Whether the controller reaches the test instance over SSH with the run's key (and so needs bake_ssh_cidrs)."""
    return tests_instance(values) and str(connection.get("ansible_connection", "ssh")) in SSH_CONNECTIONS


def connects_over_ssh(values: dict) -> bool:
    """Whether the controller reaches the builder over SSH (and so needs bake_ssh_cidrs): the
    collection's own builder role with something to run on the builder."""
    return (values["bake_builder"] == "aws" and values["bake_builder_role"] in ("", DEFAULT_BUILDER_ROLE)
            and bool(values["bake_customize"]))


def hooks(value: dict, context: Context) -> dict:
    """bake_hooks as {point: [{role, tasks_from}]}; PlanError naming the point and the entry."""
    result: dict = {point: [] for point in HOOK_POINTS}
    for point, entries in value.items():
        if point not in HOOK_POINTS:
            _fail("bake_hooks: unknown point %r; the points are %s" % (point, ", ".join(HOOK_POINTS)))
        if not isinstance(entries, list):
            _fail("bake_hooks.%s: must be a list of roles (a name, or {role, tasks_from})" % point)
        for entry in entries:
            if isinstance(entry, str):
                entry = {"role": entry}
            if not isinstance(entry, dict) or not isinstance(entry.get("role"), str) or \
                    set(entry) - {"role", "tasks_from"}:
                _fail("bake_hooks.%s: each entry must be a role name or path, or {role, tasks_from}, got %r"
                      % (point, _short(entry)))
            tasks_from = entry.get("tasks_from", "main.yml")
            if not isinstance(tasks_from, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.ya?ml", tasks_from):
                _fail("bake_hooks.%s: tasks_from must be a task file name such as main.yml, got %r" % (point, tasks_from))
            where = context.role_path(entry["role"])
            if where is None:
                _fail("bake_hooks.%s: role %s is not installed" % (point, entry["role"]))
            result[point].append({"role": where, "tasks_from": tasks_from})
    return result


def image_tags(values: dict, run_id: str, version: str, build_id: str, expires_at: str) -> dict:
    """The tags every image and snapshot of this bake carries (the source, parent and release tags
    are added by the bake once known: their names are in plan['tag_names'])."""
    own = {
        _tags.FAMILY: values["bake_family"],
        _tags.VERSION: version,
        _tags.STAGE: values["bake_stage"],
        _tags.BUILD_ID: build_id,
        _tags.BAKE_LEVEL: values["bake_level"],
        _tags.RUN_ID: run_id,
        _tags.EXPIRES_AT: expires_at,
    }
    tags = dict(values["bake_tags"])
    added_later = (_tags.SOURCE_IMAGE, _tags.PARENT_IMAGE, _tags.AL_RELEASE, _tags.SBOM_SHA256)
    clash = sorted(k for k in tags if k in own or k in added_later)
    if clash:
        _fail("bake_tags: %s %s set by the bake itself" % (", ".join(clash), "is" if len(clash) == 1 else "are"))
    tags.update(own)
    # room for the tags added later (source, parent, release, SBOM digest) and by the copies (source name)
    later = 5 if values["bake_sbom"] and values["bake_customize"] else 4
    _raise_if(_validate.tags("bake_tags", values["bake_tags"]))
    if len(tags) + later > _tags.MAX_TAGS:
        _fail("bake_tags: %d tags, with the %d the bake adds, exceed EC2's limit of %d tags per resource"
              % (len(values["bake_tags"]), len(own) + later, _tags.MAX_TAGS))
    return tags


def sbom_path(manifest: str, name: str) -> str:
    """The SBOM's file: beside the manifest, named after the image (characters other than letters,
    digits, '.', '_' and '-' of the name, which an AMI name may hold, as '-')."""
    return "%s/%s.cdx.json" % (manifest.rsplit("/", 1)[0], re.sub(r"[^A-Za-z0-9._-]", "-", name).lstrip(".") or "image")


def build_plan(given: dict, context: Context) -> dict:
    """The bake's plan from its variables (bake_* names to values); PlanError for the first
    broken rule."""
    values = settle(given)
    if not values["bake_output_dir"]:
        values["bake_output_dir"] = context.cwd.rstrip("/") + "/bake-output"
    validate(values, context)
    v = values
    types = instance_types(v)
    now = context.now.astimezone(_time.UTC)
    version = v["bake_version"] or _time.stamp(now)
    run_id = v["bake_run_id"] or "%s-%s" % (_time.stamp(now), context.run_token)
    name = image_name(v["bake_name_template"], {"family": v["bake_family"], "version": version,
                                                "arch": v["bake_arch"], "stage": v["bake_stage"],
                                                "level": v["bake_level"]})
    _raise_if(_validate.ami_name("bake_name_template", name) and
              "bake_name_template: gives the image name %r, which is not a valid AMI name (3-128 letters, digits, "
              "spaces and ( ) [ ] . / - ' @ _)" % name)
    build_id = v["bake_build_id"] or name
    if len(build_id) > 256:
        _fail("bake_build_id: must be at most 256 characters (it is a tag value)")
    expires_at = _time.iso(now + datetime.timedelta(minutes=v["bake_ttl_minutes"]))
    regions = [v["bake_region"]] + [r for r in v["bake_regions"] if r != v["bake_region"]]
    out = v["bake_output_dir"].rstrip("/")
    cache = (v["bake_cache_dir"] or v["bake_local_cache_dir"] or context.cache_dir).rstrip("/")
    builder_role = v["bake_builder_role"] or DEFAULT_BUILDER_ROLE
    hook_settings = dict(v["bake_hooks"])
    if v["bake_builder"] == "local":
        # the embedded default: a builder role and hooks from the checkout's tools/
        tools = (context.local_tools or "").rstrip("/")
        builder_role = v["bake_builder_role"] or tools + "/" + LOCAL_BUILDER_ROLE
        for point, entries in LOCAL_HOOKS.items():
            hook_settings[point] = [dict(e, role=tools + "/" + e["role"]) for e in entries] + list(
                hook_settings.get(point) or [])
    if tests_instance(v):
        # the test stage on AWS: the shipped test instance first, then the test hooks of one's own
        hook_settings["test"] = [dict(AWS_TEST_HOOK)] + list(hook_settings.get("test") or [])
    builder_role_path = context.role_path(builder_role)
    if builder_role_path is None:
        _fail("bake_builder_role: role %s is not installed" % builder_role)
    tags = image_tags(v, run_id, version, build_id, expires_at)
    customize = _customize.plan(v["bake_level"] if v["bake_customize"] else "full",
                                v["bake_packages"], v["bake_files"], v["bake_services"], v["bake_launch_config"],
                                context.rendered_templates, option_prefix="bake_")
    # a pinned version or build ID (or a template without the version) names an image a previous
    # run may have made: the bake looks for it and adopts it
    adoptable = bool(v["bake_version"] or v["bake_build_id"] or "{version}" not in v["bake_name_template"])
    pending = {_tags.EXPIRES_AT: expires_at}
    copy_tags = {_tags.RUN_ID: run_id}
    deprecate_at = _time.iso(now + datetime.timedelta(days=v["bake_deprecate_days"])) if v["bake_deprecate_days"] else ""
    source = dict(v["bake_source"])
    if v["bake_stage"] == "service":
        source = {"owners": ["self"],
                  "tags": dict({_tags.FAMILY: v["bake_base_family"], _tags.STAGE: "base"}, **(source.get("tags") or {})),
                  **{k: source[k] for k in ("include_deprecated", "sort_by") if k in source}}
    return {
        "run_id": run_id,
        "version": version,
        "name": name,
        "build_id": build_id,
        "description": v["bake_description"],
        "started_at": _time.iso(now),
        "expires_at": expires_at,
        "family": v["bake_family"],
        "base_family": v["bake_base_family"],
        "stage": v["bake_stage"],
        "arch": v["bake_arch"],
        "level": v["bake_level"],
        "region": v["bake_region"],
        "regions": regions,
        "copy_regions": regions[1:],
        "aws": {"endpoint_url": v["bake_endpoint_url"], "profile": v["bake_aws_profile"]},
        "source": source,
        "adoptable": adoptable,
        "builder": {
            "mode": v["bake_builder"],
            "role": builder_role_path,
            "connect": bool(v["bake_customize"]),
            "ssh": connects_over_ssh(v),
            "instance_type": types[0],
            "instance_types": types,
            "subnet_id": v["bake_subnet_id"],
            "vpc_id": v["bake_vpc_id"],
            "public_ip": v["bake_public_ip"],
            "ssh_user": v["bake_ssh_user"],
            # SSH to the builder only when something is run on it: a builder nobody connects to
            # (bake_customize: false) gets a security group with no ingress rule at all
            "ssh_cidrs": list(v["bake_ssh_cidrs"]) if v["bake_customize"] else [],
            "allow_open_ssh": v["bake_allow_open_ssh"],
            "kms_key_id": v["bake_kms_key_id"],
            "volume_size": v["bake_volume_size"],
            "volume_type": v["bake_volume_type"],
            "wait_timeout": v["bake_wait_timeout"],
            "key_dir": "%s/keys/%s" % (cache, run_id),
            "local_root": "%s/work/%s/root" % (cache, run_id),
            "local_tools_dir": context.local_tools or "",
        },
        "customize": dict(customize, enabled=bool(v["bake_customize"])),
        "roles": _roles(v["bake_roles"]),
        "release": {"release": v["bake_release"], "launch_updates": v["bake_launch_updates"]},
        "cloudinit": {"protect": v["bake_cloudinit_protect"], "settings": v["bake_cloudinit_settings"],
                      "allow_privileged_settings": v["bake_cloudinit_allow_privileged_settings"]},
        "generalize": {"exclude": v["bake_generalize_exclude"],
                       "keep_secret_files": v["bake_generalize_keep_secret_files"],
                       "remove_secret_files": v["bake_generalize_remove_secret_files"]},
        "tag_names": {"source_image": _tags.SOURCE_IMAGE, "parent_image": _tags.PARENT_IMAGE,
                      "al_release": _tags.AL_RELEASE, "expires_at": _tags.EXPIRES_AT, "run_id": _tags.RUN_ID,
                      "build_id": _tags.BUILD_ID, "sbom_sha256": _tags.SBOM_SHA256},
        "tags": {"image": tags, "copies": copy_tags, "pending": pending},
        "hooks": hooks(hook_settings, context),
        "share": {"user_ids": v["bake_share_user_ids"], "org_arns": v["bake_share_org_arns"],
                  "org_unit_arns": v["bake_share_org_unit_arns"]},
        "shared": bool(v["bake_share_user_ids"] or v["bake_share_org_arns"] or v["bake_share_org_unit_arns"]),
        "deprecate_at": deprecate_at,
        "protect": {"enabled": v["bake_protect"], "cooldown": v["bake_protect_cooldown"]},
        "prune": {"enabled": bool(v["bake_keep_latest"] or v["bake_keep_days"] or v["bake_prune_deprecate_after_days"]),
                  "keep_latest": v["bake_keep_latest"], "keep_days": v["bake_keep_days"],
                  "deprecate_after_days": v["bake_prune_deprecate_after_days"],
                  "max_deletions": v["bake_prune_max_deletions"]},
        "keep_failed": v["bake_keep_failed"],
        # the image's CycloneDX SBOM, next to the manifest (its sha256 in the report and the image's tags)
        # (bake_customize: false runs nothing on the builder, so nothing lists its packages)
        "sbom": {"enabled": v["bake_sbom"] and v["bake_customize"], "path": sbom_path(v["bake_manifest_path"] or out + "/bake-manifest.json", name)},
        "channels": {"prefix": v["bake_channel_prefix"], "names": list(v["bake_channels"])},
        "launch_templates": launch_templates(v["bake_launch_templates"], regions),
        # the image test stage (after the image exists in the build region, before any copy or share)
        "test": {"enabled": v["bake_test"], "roles": test_roles(v["bake_test_roles"]) if v["bake_test"] else [],
                 # the test instance (bake_builder: aws): made or not, its connection variables over the SSH
                 # defaults of the builder, and whether that is SSH with the run's key
                 "instance": tests_instance(v), "connection": test_connection(v),
                 "ssh": test_over_ssh(v, test_connection(v)),
                 # SSH to the test instance only when the stage reaches it over SSH
                 "ssh_cidrs": list(v["bake_ssh_cidrs"]) if test_over_ssh(v, test_connection(v)) else []},
        "paths": {
            "output_dir": out,
            "manifest": v["bake_manifest_path"] or out + "/bake-manifest.json",
            "report": v["bake_report_path"] or out + "/bake-report.json",
            "user_data": v["bake_user_data_path"] or out + "/launch-user-data.yml",
            "cache_dir": cache,
        },
    }


SWEEP_OPTIONS = ("bake_region", "bake_regions", "bake_endpoint_url", "bake_aws_profile", "bake_ttl_minutes",
                 "bake_wait_timeout",
                 "bake_cache_dir", "bake_local_cache_dir", "bake_local_tools_dir", "bake_builder", "bake_hooks")


def build_sweep_plan(given: dict, context: Context) -> dict:
    """What sweep.yml needs (regions, endpoint, expiry window, cache, sweep hooks) from the same
    variables as the bake; only those are checked, so a sweep runs with the bake's own file or
    with just the regions."""
    values = settle({name: value for name, value in given.items() if name in SWEEP_OPTIONS})
    v = values
    if v["bake_builder"] not in BUILDERS:
        _fail("bake_builder: must be aws or local, got %s" % _short(v["bake_builder"]))
    regions = v["bake_regions"]
    if not regions or len(set(map(str, regions))) != len(regions):
        _fail("bake_regions: must be a non-empty list of region names without duplicates, got %s" % (regions,))
    known = set(context.known_regions)
    unknown = [r for r in [v["bake_region"]] + regions if not isinstance(r, str) or (known and r not in known)]
    if unknown:
        _fail("bake_regions: unknown region(s) %s (not an AWS region name)" % ", ".join(map(str, unknown)))
    if not 10 <= v["bake_ttl_minutes"] <= 7 * 24 * 60:
        _fail("bake_ttl_minutes: must be a whole number from 10 to %d, got %d" % (7 * 24 * 60, v["bake_ttl_minutes"]))
    if not 60 <= v["bake_wait_timeout"] <= 24 * 3600:
        _fail("bake_wait_timeout: must be a whole number of seconds from 60 to 86400, got %d" % v["bake_wait_timeout"])
    if v["bake_builder"] == "local" and not context.local_tools:
        _fail("bake_builder: local is the embedded default of a checkout of the bakery.ami repository; run the "
              "sweep from a checkout, or set bake_local_tools_dir to a checkout's root")
    hook_settings = dict(v["bake_hooks"])
    if v["bake_builder"] == "local":
        tools = (context.local_tools or "").rstrip("/")
        hook_settings["sweep"] = [dict(e, role=tools + "/" + e["role"]) for e in LOCAL_HOOKS["sweep"]] + list(
            hook_settings.get("sweep") or [])
    cache = (v["bake_cache_dir"] or v["bake_local_cache_dir"] or context.cache_dir).rstrip("/")
    return {
        "region": v["bake_region"],
        "regions": [v["bake_region"]] + [r for r in regions if r != v["bake_region"]],
        "aws": {"endpoint_url": v["bake_endpoint_url"], "profile": v["bake_aws_profile"]},
        "ttl_minutes": v["bake_ttl_minutes"],
        "wait_timeout": v["bake_wait_timeout"],
        "paths": {"cache_dir": cache},
        "hooks": hooks(hook_settings, context),
    }
