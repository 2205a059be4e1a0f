# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The one validation vocabulary of the collection's AWS modules (ami_find, ami_copy, ami_create,
# ami_prune, ami_builder). Each rule is a function that returns None when the value is fine, or a
# message that names the option and the rule, so a module can collect every problem and fail
# before it makes any API call or touches any file. The time rules parse_time and future_time
# return (value, message) since their callers need the parsed time.
#
# How the rules match:
# - every pattern is matched against the whole string (re.fullmatch, no ^/$: "$" also matches
#   before a trailing newline, so "name\n" would pass);
# - classes are ASCII ([0-9], [a-z]; never \d, which takes Unicode digits such as '\u0666');
# - shown values are quoted with repr() and cut to 80 characters, so a newline or a control
#   character is visible in the message.
#
# The rules:
#   resource_id, account_id, owner, ami_name, family, run_id, device_name, region_name, kms_key,
#   org_arn, org_unit_arn, ssm_parameter, days,
#   instance_type                                  -- one value of a given kind
#   instance_types                                 -- an ordered list of 1-20 instance types, each once
#   tag_key, tag_value, tags                       -- EC2 tags: key 1-128, value <= 256 characters,
#                                                     no "aws:" prefix, no control characters
#   literal_tags                                   -- tags, and no filter wildcard (* ? \) in a value,
#                                                     for tags that select resources through a filter
#   tag_total                                      -- at most 50 tags on one resource, counting every
#                                                     source of tags a module gives it
#   parse_time, future_time, expires_at, expires_tag -- ISO-8601 times; in the future where EC2 or
#                                                     the sweep needs it

from __future__ import annotations

import datetime
import ipaddress
import re
import typing as t
import unicodedata

from ansible_collections.bakery.ami.plugins.module_utils import _tags
from ansible_collections.bakery.ami.plugins.module_utils import _time

# EC2 tag limits (per resource, per key, per value) and the prefix reserved to AWS.
MAX_TAGS = _tags.MAX_TAGS
MAX_TAG_KEY = _tags.MAX_KEY_LENGTH
MAX_TAG_VALUE = _tags.MAX_VALUE_LENGTH
# The tag that says when the sweep may remove a resource (every temporary resource of a run).
EXPIRES_TAG = _tags.EXPIRES_AT
# Characters an EC2 filter value reads as wildcards (* and ?) and as their escape (\).
FILTER_SPECIAL = ("*", "?", "\\")
# Tag keys: letters, digits and spaces of any script and these, the set every AWS service accepts
# (EC2 itself takes any character).
_KEY_PUNCTUATION = "_.:/=+-@"
# Unicode categories never allowed in a tag key or value: control and format characters,
# surrogates, line and paragraph separators.
_FORBIDDEN_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")

# An image ID, the one pattern every module checks one against (fullmatch).
IMAGE_ID = r"ami-[0-9a-f]{8}(?:[0-9a-f]{9})?"
# The owner aliases EC2's DescribeImages takes besides account IDs.
OWNER_ALIASES = ("self", "amazon", "aws-marketplace")
# EBS volume types (a builder's root volume, an image's block device mappings, bake_volume_type).
VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")

_ID_PATTERNS = {
    "image": re.compile(IMAGE_ID),
    "snapshot": re.compile(r"snap-[0-9a-f]{8}([0-9a-f]{9})?"),
    "instance": re.compile(r"i-[0-9a-f]{8}([0-9a-f]{9})?"),
    "volume": re.compile(r"vol-[0-9a-f]{8}([0-9a-f]{9})?"),
    "security group": re.compile(r"sg-[0-9a-f]{8}([0-9a-f]{9})?"),
    "subnet": re.compile(r"subnet-[0-9a-f]{8}([0-9a-f]{9})?"),
    "vpc": re.compile(r"vpc-[0-9a-f]{8}([0-9a-f]{9})?"),
}
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
# AMI names: 3-128 characters from letters, digits, ( ) [ ] . / - ' @ _ and space.
_AMI_NAME = re.compile(r"[A-Za-z0-9()\[\]./\-'@_ ]{3,128}")
_AMI_NAME_CHAR = re.compile(r"[A-Za-z0-9()\[\]./\-'@_ ]")
# Image families (the bakery:family tag): they become part of AMI names, so the bake allows only
# what every AMI name and tag accepts.
_FAMILY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Run IDs (the bakery:run-id tag): part of resource names (key pairs, security groups).
_RUN_ID = re.compile(r"[A-Za-z0-9-]{6,64}")
# Block device names as EC2 takes them in a mapping: /dev/xvda, /dev/sda1, /dev/sdf.
_DEVICE = re.compile(r"/dev/[a-z][a-z0-9]{1,31}")
_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+")
_KMS_KEY = re.compile(
    r"("
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # key ID
    r"|mrk-[0-9a-f]{32}"  # multi-Region key ID
    r"|alias/[A-Za-z0-9/_-]{1,250}"  # alias name
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key/[0-9a-f-]{36}|key/mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]{1,250})"
    r")"
)
_ORG_ARN = re.compile(r"arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}")
_OU_ARN = re.compile(r"arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}")
# SSM parameter names (an optional :version or :label suffix).
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9-]{1,64}")
MAX_INSTANCE_TYPES = 20
_SSM_NAME = re.compile(r"[A-Za-z0-9_.\-/]{1,2048}(:[A-Za-z0-9_.\-]{1,100})?")


def full_match(pattern: re.Pattern, value: t.Any) -> bool:
    """Whether value is a string that the pattern matches from its first to its last character."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def show(value: t.Any, limit: int = 80) -> str:
    """A value quoted for a message: control characters visible, long strings cut."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    return repr(value)


def resource_id(option: str, value: t.Any, kind: str) -> str | None:
    """kind is one of image, snapshot, instance, volume, security group, subnet, vpc."""
    if not full_match(_ID_PATTERNS[kind], value):
        prefix = _ID_PATTERNS[kind].pattern.split("-")[0]
        return f"{option}: {show(value)} is not a valid {kind} ID (expected {prefix}- followed by 8 or 17 hex digits)"
    return None


def account_id(option: str, value: t.Any) -> str | None:
    if not full_match(_ACCOUNT_ID, value):
        return f"{option}: {show(value)} is not an AWS account ID (12 digits)"
    return None


def owner(option: str, value: t.Any) -> str | None:
    if value in OWNER_ALIASES or full_match(_ACCOUNT_ID, value):
        return None
    return f"{option}: {show(value)} is neither a 12-digit account ID nor one of {', '.join(OWNER_ALIASES)}"


def ami_name(option: str, value: t.Any) -> str | None:
    if not isinstance(value, str):
        return f"{option}: must be a string"
    if full_match(_AMI_NAME, value):
        return None
    if not 3 <= len(value) <= 128:
        return f"{option}: AMI names are 3-128 characters long; {show(value, 40)} has {len(value)}"
    bad = sorted({c for c in value if not full_match(_AMI_NAME_CHAR, c)})
    return (
        f"{option}: {show(value)} has characters AMI names do not allow ({' '.join(repr(c) for c in bad)}); "
        "allowed are letters, digits, spaces and ( ) [ ] . / - ' @ _"
    )


def family(option: str, value: t.Any) -> str | None:
    if full_match(_FAMILY, value):
        return None
    return (
        f"{option}: {show(value)} is not a family name: 1-64 characters, letters, digits, '.', '_' or '-', "
        "starting with a letter or digit"
    )


def run_id(option: str, value: t.Any) -> str | None:
    """A run ID (the bakery:run-id tag, part of the run's resource names)."""
    if full_match(_RUN_ID, value):
        return None
    return f"{option}: must be 6-64 characters of letters, digits and '-', got {show(value)}"


def instance_type(option: str, value: t.Any) -> str | None:
    """An instance type name (family, '.', size: t3.micro, m7i-flex.large, u-6tb1.metal)."""
    if full_match(_INSTANCE_TYPE, value) and len(value) <= 64:
        return None
    return f"{option}: {show(value)} is not an instance type such as t3.micro"


def instance_types(option: str, value: t.Any) -> list:
    """Every problem of an ordered list of instance types to try: 1-20 of them, each valid, each once."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_INSTANCE_TYPES:
        got = f"{len(value)} entries" if isinstance(value, list) else type(value).__name__
        return [f"{option}: must be a list of 1-{MAX_INSTANCE_TYPES} instance types to try in order, got {got}"]
    errors = [instance_type(f"{option}[{index}]", entry) for index, entry in enumerate(value)]
    repeated = sorted({entry for entry in value if isinstance(entry, str) and value.count(entry) > 1})
    if repeated:
        errors.append(f"{option}: each type once; listed more than once: {', '.join(repeated)}")
    return [error for error in errors if error]


def device_name(option: str, value: t.Any) -> str | None:
    """A block device name of a mapping (/dev/xvda, /dev/sda1)."""
    if full_match(_DEVICE, value):
        return None
    return f"{option}: must be a device path such as /dev/xvda (/dev/ then lowercase letters and digits), got {show(value)}"


def ssm_parameter(option: str, value: t.Any) -> str | None:
    """An SSM parameter name, with an optional :version or :label."""
    if full_match(_SSM_NAME, value):
        return None
    return f"{option}: {show(value)} is not an SSM parameter name (letters, digits, . - _ and /, optionally :version)"


def days(option: str, value: t.Any, maximum: int = 36500) -> str | None:
    """A count of days from 0 to `maximum` (100 years by default)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        return f"{option}: must be a whole number of days from 0 to {maximum}, got {value!r}"
    return None


def region_name(option: str, value: t.Any, known: t.Iterable[str] | None = None) -> str | None:
    """A syntactically valid region; with `known`, also one of those regions."""
    if not full_match(_REGION, value):
        return f"{option}: {show(value)} is not an AWS region name (for example us-east-1)"
    if known is not None:
        known = sorted(known)
        if known and value not in known:
            return f"{option}: unknown region {show(value)}; known regions are {', '.join(known)}"
    return None


_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


def known_regions() -> list:
    """EC2 regions of the commercial, China and GovCloud partitions, as the installed botocore knows them.

    Read from botocore's partition data (a few KB listing every region of each partition; EC2 runs
    in all of them) rather than its endpoint data (over a megabyte, about 0.13 s to load on every
    module run). The pseudo-regions of global endpoints (aws-global ...) are left out. A botocore
    without partition data falls back to the endpoint data.
    """
    try:
        from botocore.exceptions import DataNotFoundError
        from botocore.loaders import create_loader
    except ImportError:
        return []
    regions: set = set()
    try:
        partitions = create_loader().load_data("partitions").get("partitions") or []
    except DataNotFoundError:
        partitions = []
    for partition in partitions:
        if partition.get("id") in _PARTITIONS:
            regions.update(name for name in partition.get("regions") or {} if not name.endswith("-global"))
    if regions:
        return sorted(regions)
    import boto3

    session = boto3.session.Session()
    for name in _PARTITIONS:
        try:
            regions.update(session.get_available_regions("ec2", partition_name=name))
        except Exception:  # pylint: disable=broad-exception-caught
            # An older botocore without a partition's data: that partition is simply not known.
            continue
    return sorted(regions)


def regions_or_default(regions: t.Any, default_region: str | None, known: t.Iterable[str] | None, errors: list) -> list:
    """regions, or the module's region when not given; problems appended to errors."""
    if regions is None:
        regions = [default_region] if default_region else []
        if not regions:
            errors.append("regions: no region given; set regions, or the module's region (or AWS_REGION)")
    elif not isinstance(regions, list) or not regions:
        errors.append("regions: must name at least one region")
        return []
    for region in regions:
        errors.append(region_name("regions", region, known))
    if len(set(map(str, regions))) != len(regions):
        errors.append("regions: a region is named more than once")
    return list(regions)


def images_by_region(value: t.Any, known: t.Iterable[str] | None, errors: list) -> dict:
    """images: {region: image ID} (as the publish role returns it) or [{region, image_id}, ...];
    problems appended to errors."""
    pairs: list = []
    shape_errors = len(errors)
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, dict) or sorted(item) != ["image_id", "region"]:
                errors.append(f"images[{index}]: must be a dictionary with exactly the keys region and image_id")
                continue
            pairs.append((item["region"], item["image_id"]))
    else:
        errors.append("images: must be a dictionary of region to image ID, or a list of {region, image_id}")
        return {}
    if not pairs and len(errors) == shape_errors:
        errors.append("images: must name at least one region")
    images: dict = {}
    for region, image_id in pairs:
        errors.append(region_name("images", region, known))
        errors.append(resource_id(f"images[{region}]" if isinstance(region, str) else "images", image_id, "image"))
        if region in images:
            errors.append(f"images: the region {show(region)} is named more than once")
        images.setdefault(region, image_id)
    return images


def kms_key(option: str, value: t.Any) -> str | None:
    if not full_match(_KMS_KEY, value):
        return (
            f"{option}: {show(value)} is not a KMS key reference "
            "(a key ID, mrk- multi-Region key ID, alias/NAME, or a key or alias ARN)"
        )
    return None


def org_arn(option: str, value: t.Any) -> str | None:
    if not full_match(_ORG_ARN, value):
        return f"{option}: {show(value)} is not an AWS Organizations organization ARN"
    return None


def org_unit_arn(option: str, value: t.Any) -> str | None:
    if not full_match(_OU_ARN, value):
        return f"{option}: {show(value)} is not an AWS Organizations OU ARN"
    return None


# ---------------------------------------------------------------------------------------------
# Times


def _time_error(option: str, value: t.Any) -> tuple:
    return None, f"{option}: {show(value)} is not an ISO-8601 time (for example 2027-01-31T00:00:00Z)"


def parse_time(option: str, value: t.Any) -> tuple:
    """An ISO-8601 time (the one parser, _time.parse); returns (aware datetime in UTC, None) or
    (None, the message naming the option). Without a zone the time is UTC."""
    parsed = _time.parse(value)
    return (parsed, None) if parsed is not None else _time_error(option, value)


def future_time(option: str, value: t.Any, now: datetime.datetime | None = None,
                what: str = "a deprecation time") -> tuple:
    """Like parse_time, and the time must lie in the future; `what` names the time in the message."""
    parsed, error = parse_time(option, value)
    if error:
        return None, error
    now = now or _time.now()
    if parsed <= now:
        return None, f"{option}: {show(value)} is in the past; {what} must lie in the future"
    return parsed, None


def expires_at(option: str, value: t.Any, now: datetime.datetime | None = None) -> str | None:
    """When the sweep may remove a resource: a time in the future (a past one is swept at once)."""
    return future_time(option, value, now, what="an expiry time (the sweep removes an expired resource at once)")[1]


def expires_tag(option: str, value: t.Any, now: datetime.datetime | None = None) -> str | None:
    """The bakery:expires-at tag in a dict of tags, when there, is an expiry time in the future."""
    if not isinstance(value, dict) or EXPIRES_TAG not in value:
        return None
    return expires_at(f"{option}: tag {EXPIRES_TAG}", value[EXPIRES_TAG], now)


# ---------------------------------------------------------------------------------------------
# Tags


def _forbidden_character(text: str) -> tuple | None:
    """(position, character) of the first control/format character or line break, or None."""
    for index, char in enumerate(text):
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            return index, char
    return None


def tag_key(option: str, key: t.Any) -> str | None:
    """A tag key: 1-128 letters, digits, spaces and _ . : / = + - @, not starting with aws:."""
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY:
        return f"{option}: tag name {show(key)} must be a string of 1-{MAX_TAG_KEY} characters"
    if key.lower().startswith(_tags.RESERVED_PREFIX):
        return f"{option}: tag name {show(key)} uses the reserved prefix '{_tags.RESERVED_PREFIX}'"
    for index, char in enumerate(key):
        if unicodedata.category(char)[0] in "LN" or unicodedata.category(char) == "Zs" or char in _KEY_PUNCTUATION:
            continue
        return (
            f"{option}: tag name {show(key)} has the character {char!r} at position {index}; tag names take "
            f"letters, digits, spaces and {' '.join(_KEY_PUNCTUATION)}"
        )
    return None


def tag_value(option: str, key: str, value: t.Any) -> str | None:
    """A tag value: a string of at most 256 characters without control characters or line breaks."""
    if not isinstance(value, str):
        return f"{option}: the value of tag {show(key)} must be a string, got {type(value).__name__} (quote it in YAML)"
    if len(value) > MAX_TAG_VALUE:
        return f"{option}: the value of tag {show(key)} is longer than {MAX_TAG_VALUE} characters ({len(value)})"
    found = _forbidden_character(value)
    if found is not None:
        return (
            f"{option}: the value of tag {show(key)} is {show(value)}, with the control character {found[1]!r} at "
            f"position {found[0]}; tag values may not hold control characters or line breaks"
        )
    return None


def tags(option: str, value: t.Any) -> str | None:
    """EC2 tags: a dict of tag_key keys to tag_value values (None is no tags)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"{option}: must be a dictionary of tag names to string values"
    for key, val in value.items():
        error = tag_key(option, key) or tag_value(option, key, val)
        if error:
            return error
    return None


def literal_tags(option: str, value: t.Any) -> str | None:
    """Tags that select resources through EC2 filters: tags(), and no * ? or \\ in a value.

    An EC2 filter reads * and ? in a value as wildcards and \\ as their escape: a value such as
    "*" would select the resources of every value. The caller still compares each resource's tags
    with these values before acting on it.
    """
    error = tags(option, value)
    if error or not value:
        return error
    for key, val in value.items():
        special = [char for char in FILTER_SPECIAL if char in val]
        if special:
            return (
                f"{option}: the value of tag {show(key)} is {show(val)}; tag values are matched literally and may not "
                f"hold {' '.join(special)} (EC2 filters read * and ? as wildcards and \\ as an escape)"
            )
    return None


def tag_total(option: str, resource: str, sources: t.Iterable) -> str | None:
    """At most 50 tags on one resource, counting every source of tags the module gives it.

    sources: (label, {key: value}) pairs in the order they are applied, e.g.
    [("tags", user_tags), ("build_id", {"bakery:build-id": ...}), ("pending_tags", pending)]. A key
    in several sources is one tag. The message says how many each source adds.
    """
    keys: set = set()
    parts = []
    for label, given in sources:
        new = [key for key in (given or {}) if key not in keys]
        keys.update(new)
        if new:
            parts.append(f"{len(new)} from {label}")
    if len(keys) <= MAX_TAGS:
        return None
    return (
        f"{option}: the {resource} would carry {len(keys)} tags ({', '.join(parts)}); EC2 allows at most "
        f"{MAX_TAGS} tags per resource"
    )


def internet_covering_families(cidrs: t.Any) -> list:
    """The IP versions ('IPv4', 'IPv6') whose whole address space the CIDR blocks cover together.

    0.0.0.0/0 alone does, and so do 0.0.0.0/1 with 128.0.0.0/1, or any other set of prefixes
    whose union (ipaddress.collapse_addresses) is the whole space. Entries that are not CIDR
    strings are skipped here (validate() reports them).
    """
    networks: dict = {4: [], 6: []}
    for cidr in cidrs if isinstance(cidrs, (list, tuple)) else ():
        if not isinstance(cidr, str):
            continue
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            continue
        networks[network.version].append(network)
    families = []
    for version, name, whole in ((4, "IPv4", "0.0.0.0/0"), (6, "IPv6", "::/0")):
        if networks[version] and list(ipaddress.collapse_addresses(networks[version])) == [ipaddress.ip_network(whole)]:
            families.append(name)
    return families
