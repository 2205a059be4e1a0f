# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Input rules shared by the modules. Each check returns None when the value is fine, or a
# message that names the option and the rule, so a module can collect every problem and fail
# before it makes any API call or touches any file.

from __future__ import annotations

import datetime
import re
import typing as t

_ID_PATTERNS = {
    "image": re.compile(r"^ami-[0-9a-f]{8}([0-9a-f]{9})?$"),
    "snapshot": re.compile(r"^snap-[0-9a-f]{8}([0-9a-f]{9})?$"),
    "instance": re.compile(r"^i-[0-9a-f]{8}([0-9a-f]{9})?$"),
    "volume": re.compile(r"^vol-[0-9a-f]{8}([0-9a-f]{9})?$"),
    "security group": re.compile(r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$"),
    "subnet": re.compile(r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$"),
    "vpc": re.compile(r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$"),
}
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_OWNER_ALIASES = ("self", "amazon", "aws-marketplace")
# AMI names: 3-128 characters from letters, digits, ( ) [ ] . / - ' @ _ and space.
_AMI_NAME = re.compile(r"^[A-Za-z0-9()\[\]./\-'@_ ]{3,128}$")
_AMI_NAME_CHAR = re.compile(r"[A-Za-z0-9()\[\]./\-'@_ ]")
# Image families (the bakery:family tag): they become part of AMI names, so the bake allows only
# what every AMI name and tag accepts.
_FAMILY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$")
_KMS_KEY = re.compile(
    r"^("
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # key ID
    r"|mrk-[0-9a-f]{32}"  # multi-Region key ID
    r"|alias/[A-Za-z0-9/_-]{1,250}"  # alias name
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key/[0-9a-f-]{36}|key/mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]{1,250})"
    r")$"
)
_ORG_ARN = re.compile(r"^arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$")
_OU_ARN = re.compile(r"^arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$")


def resource_id(option: str, value: t.Any, kind: str) -> str | None:
    """kind is one of image, snapshot, instance, volume, security group, subnet, vpc."""
    if not isinstance(value, str) or not _ID_PATTERNS[kind].match(value):
        prefix = _ID_PATTERNS[kind].pattern[1:].split("-")[0]
        return f"{option}: '{value}' is not a valid {kind} ID (expected {prefix}- followed by 8 or 17 hex digits)"
    return None


def account_id(option: str, value: t.Any) -> str | None:
    if not isinstance(value, str) or not _ACCOUNT_ID.match(value):
        return f"{option}: '{value}' is not an AWS account ID (12 digits)"
    return None


def owner(option: str, value: t.Any) -> str | None:
    if isinstance(value, str) and (value in _OWNER_ALIASES or _ACCOUNT_ID.match(value)):
        return None
    return f"{option}: '{value}' is neither a 12-digit account ID nor one of {', '.join(_OWNER_ALIASES)}"


def ami_name(option: str, value: t.Any) -> str | None:
    if not isinstance(value, str):
        return f"{option}: must be a string"
    if _AMI_NAME.match(value):
        return None
    if not 3 <= len(value) <= 128:
        return f"{option}: AMI names are 3-128 characters long; '{value[:40]}' has {len(value)}"
    bad = sorted({c for c in value if not _AMI_NAME_CHAR.match(c)})
    return (
        f"{option}: '{value}' has characters AMI names do not allow ({' '.join(repr(c) for c in bad)}); "
        "allowed are letters, digits, spaces and ( ) [ ] . / - ' @ _"
    )


def family(option: str, value: t.Any) -> str | None:
    if isinstance(value, str) and _FAMILY.match(value):
        return None
    return (
        f"{option}: '{value}' is not a family name: 1-64 characters, letters, digits, '.', '_' or '-', "
        "starting with a letter or digit"
    )


def days(option: str, value: t.Any, maximum: int = 36500) -> str | None:
    """A count of days from 0 to `maximum` (100 years by default)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        return f"{option}: must be a whole number of days from 0 to {maximum}, got {value!r}"
    return None


def sanitize_ami_name(value: str) -> str:
    """Replace characters AMI names do not allow with '-' (for names built from templates)."""
    return "".join(c if _AMI_NAME_CHAR.match(c) else "-" for c in value)[:128]


def region_name(option: str, value: t.Any, known: t.Iterable[str] | None = None) -> str | None:
    """A syntactically valid region; with `known`, also one of those regions."""
    if not isinstance(value, str) or not _REGION.match(value):
        return f"{option}: '{value}' is not an AWS region name (for example us-east-1)"
    if known is not None:
        known = sorted(known)
        if known and value not in known:
            return f"{option}: unknown region '{value}'; known regions are {', '.join(known)}"
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


def kms_key(option: str, value: t.Any) -> str | None:
    if not isinstance(value, str) or not _KMS_KEY.match(value):
        return (
            f"{option}: '{value}' is not a KMS key reference "
            "(a key ID, mrk- multi-Region key ID, alias/NAME, or a key or alias ARN)"
        )
    return None


def org_arn(option: str, value: t.Any) -> str | None:
    if not isinstance(value, str) or not _ORG_ARN.match(value):
        return f"{option}: '{value}' is not an AWS Organizations organization ARN"
    return None


def org_unit_arn(option: str, value: t.Any) -> str | None:
    if not isinstance(value, str) or not _OU_ARN.match(value):
        return f"{option}: '{value}' is not an AWS Organizations OU ARN"
    return None


def parse_time(option: str, value: t.Any) -> tuple:
    """Parse an ISO-8601 time; returns (aware datetime in UTC, None) or (None, error)."""
    if isinstance(value, datetime.datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None, f"{option}: '{value}' is not an ISO-8601 time (for example 2027-01-31T00:00:00Z)"
    else:
        return None, f"{option}: '{value}' is not an ISO-8601 time (for example 2027-01-31T00:00:00Z)"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc), None


def future_time(option: str, value: t.Any, now: datetime.datetime | None = None) -> tuple:
    """Like parse_time, and the time must lie in the future."""
    parsed, error = parse_time(option, value)
    if error:
        return None, error
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if parsed <= now:
        return None, f"{option}: '{value}' is in the past; a deprecation time must lie in the future"
    return parsed, None


def tags(option: str, value: t.Any) -> str | None:
    """EC2 tags: string keys of 1-128 characters and string values of at most 256."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"{option}: must be a dictionary of tag names to string values"
    for key, val in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            return f"{option}: tag name '{key}' must be a string of 1-128 characters"
        if key.lower().startswith("aws:"):
            return f"{option}: tag name '{key}' uses the reserved prefix 'aws:'"
        if not isinstance(val, str):
            return f"{option}: the value of tag '{key}' must be a string, got {type(val).__name__} (quote it in YAML)"
        if len(val) > 256:
            return f"{option}: the value of tag '{key}' is longer than 256 characters"
    return None


def first_error(*errors: str | None) -> str | None:
    for error in errors:
        if error:
            return error
    return None
