# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The core of ami_find: option checks, query building, natural sort, the per-region search
# (paginated, every filter sent to the server, only the best `limit` candidates kept in memory),
# the nearest-miss diagnosis when nothing matched, and the concurrent run over regions.
#
# Flow: build_request() checks every module parameter once and turns them into a FindRequest, or
# raises FindError naming the option (every problem in ``errors``); resolve_ssm() reads the SSM parameter in every region (FindError when it is missing
# or not an AMI ID); search() then runs the same query in each region concurrently.

from __future__ import annotations

import dataclasses
import datetime
import heapq
import re
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _channel
from ansible_collections.bakery.ami.plugins.module_utils import _fanout
from ansible_collections.bakery.ami.plugins.module_utils import _time
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._distro_catalog import CATALOG
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._release import release_from_ami_name

try:
    from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
except ImportError:  # pragma: no cover - ansible is always there when the module runs
    camel_dict_to_snake_dict = None  # type: ignore[assignment]

ARCHITECTURES = ("x86_64", "arm64", "i386")
VIRTUALIZATION_TYPES = ("hvm", "paravirtual")
ROOT_DEVICE_TYPES = ("ebs", "instance-store")
SORT_KEYS = ("creation_date", "name")
# What "modern deployments" use: a chosen image outside these gets a warning.
MODERN = {
    "architecture": ("x86_64", "arm64"),
    "virtualization-type": ("hvm",),
    "root-device-type": ("ebs",),
}
SSM_PREFIX = "resolve:ssm:"
PAGE_SIZE = 1000
MAX_LIMIT = 1000
# Filters whose values ami_find also checks on each image it receives (defence against an
# endpoint that ignores a filter, and the basis of the nearest-miss diagnosis).
_CHECKED = ("image-id", "owner-id", "owner-alias", "name", "architecture", "virtualization-type",
            "root-device-type", "state", "creation-date")
# Newest-first search: the two newest calendar months (a family that is still published has an
# image there: one request), then everything older in one pass (a family that stopped being
# published is small enough; more windows only cost requests).
WINDOW_MONTHS = (2,)
OLDEST_YEAR = 2000
# Dropped from the query when diagnosing a miss, then checked on each image to say which failed.
_RELAXED = ("architecture", "virtualization-type", "root-device-type", "state")
# ASCII digits only: a Unicode digit (\u0666) is text, not part of a number.
_DIGITS = re.compile(r"([0-9]+)")


class FindError(BakeryError):
    """Bad input or an unusable answer; the message names the option."""


@dataclasses.dataclass(frozen=True)
class FindRequest:
    """A checked ami_find request: build_request held every rule before it was made."""

    regions: tuple[str, ...]
    distro: str | None = None
    owners: tuple[str, ...] | None = None
    names: tuple[str, ...] | None = None
    filters: dict = dataclasses.field(default_factory=dict)
    tags: dict = dataclasses.field(default_factory=dict)
    architecture: str = "x86_64"
    virtualization_type: str = "hvm"
    root_device_type: str = "ebs"
    ssm_parameter: str | None = None
    image_ids: tuple[str, ...] | None = None
    executable_by_me: bool = False
    include_deprecated: bool = False
    include_disabled: bool = False
    sort_by: str = "creation_date"
    most_recent: bool = True
    unique: bool = False
    required: bool = True
    limit: int = 10
    # the channel asked for: its SSM parameter name (then also ssm_parameter), else None
    channel: str | None = None


# ---------------------------------------------------------------------------------------------
# Sorting


def natural_key(text: t.Any) -> tuple:
    """A sort key under which digit runs compare as numbers: 2023.9 < 2023.10, v2 < v10."""
    text = text if isinstance(text, str) else ""
    parts = []
    for index, part in enumerate(_DIGITS.split(text)):
        if index % 2:
            parts.append((1, int(part), part))
        elif part:
            parts.append((0, 0, part))
    # The text itself last: "2023.09" and "2023.9" compare equal part by part otherwise.
    return tuple(parts), text


def sort_key(image: dict, sort_by: str = "creation_date") -> tuple:
    """Larger is newer. Ties fall back to the other key, then to the image ID."""
    created = image.get("CreationDate") or ""
    name = natural_key(image.get("Name"))
    image_id = image.get("ImageId") or ""
    if sort_by == "name":
        return name, created, image_id
    return created, name, image_id


def newest_first(images: t.Iterable[dict], sort_by: str = "creation_date") -> list:
    return sorted(images, key=lambda image: sort_key(image, sort_by), reverse=True)


class TopN:
    """The best n images seen so far (by sort_key) and the count of all images offered."""

    def __init__(self, n: int, sort_by: str):
        self.n = n
        self.sort_by = sort_by
        self.count = 0
        self._heap: list = []

    def offer(self, image: dict) -> None:
        self.count += 1
        entry = (sort_key(image, self.sort_by), self.count, image)
        if len(self._heap) < self.n:
            heapq.heappush(self._heap, entry)
        elif entry[0] > self._heap[0][0]:
            heapq.heapreplace(self._heap, entry)

    def best(self) -> list:
        return [entry[2] for entry in sorted(self._heap, key=lambda entry: entry[0], reverse=True)]


# ---------------------------------------------------------------------------------------------
# Option checks


def strip_ssm_prefix(value: str) -> str:
    return value[len(SSM_PREFIX):] if value.startswith(SSM_PREFIX) else value


def _check_filters(filters: t.Any, errors: list) -> dict:
    if filters is None:
        return {}
    if not isinstance(filters, dict):
        errors.append("filters: must be a dictionary of DescribeImages filter names to values")
        return {}
    result = {}
    for key, value in filters.items():
        if not isinstance(key, str) or not key:
            errors.append(f"filters: filter name {key!r} must be a non-empty string")
            continue
        if key in ("owner-id", "owner-alias"):
            # trust is an owner: a raw filter would replace the owners option or the catalog's
            errors.append(f"filters: '{key}' is not allowed here; give the trusted owners with the owners option "
                          "(or a distro of the catalog)")
            continue
        values = value if isinstance(value, list) else [value]
        if not values:
            errors.append(f"filters: filter '{key}' has an empty list of values")
            continue
        converted = []
        for item in values:
            if isinstance(item, bool):
                item = "true" if item else "false"
            elif isinstance(item, (int, float)):
                item = str(item)
            if not isinstance(item, str):
                errors.append(f"filters: the values of filter '{key}' must be strings, got {type(item).__name__}")
                break
            converted.append(item)
        else:
            result[key] = converted
    return result


def build_request(params: dict, default_region: str | None, known_regions: t.Iterable[str] | None = None) -> FindRequest:
    """Check every option of ami_find and return the request; raises FindError listing every problem
    (``errors`` in its result), before any API call. regions defaults to [default_region]; channel is
    the SSM parameter of a channel (module_utils/_channel.py) and stands for ssm_parameter."""
    channel = None
    if params.get("channel") is not None:
        channel, error = _channel.channel_reference("channel", params["channel"])
        if error:
            raise FindError(error, {"errors": [error]})
        params = dict(params, ssm_parameter=channel)
    errors: list = []
    distro = params.get("distro")
    entry = None
    if distro is not None:
        entry = CATALOG.get(distro)
        if entry is None:
            errors.append(f"distro: unknown distribution {_validate.show(distro)}; known ones are "
                          f"{', '.join(sorted(CATALOG))}")

    owners = params.get("owners")
    if owners is not None:
        if not owners:
            errors.append("owners: must not be an empty list; name at least one account ID or alias"
                          f" ({', '.join(_validate.OWNER_ALIASES)}), or leave owners out when distro, image_ids,"
                          " ssm_parameter or executable_by_me is given")
        for owner in owners:
            errors.append(_validate.owner("owners", owner))
        owners = [str(owner) for owner in owners]

    image_ids = params.get("image_ids")
    if image_ids is not None:
        if not image_ids:
            errors.append("image_ids: must not be an empty list")
        for image_id in image_ids:
            errors.append(_validate.resource_id("image_ids", image_id, "image"))
        image_ids = list(dict.fromkeys(image_ids))

    ssm_parameter = params.get("ssm_parameter")
    if ssm_parameter is not None:
        error = _validate.ssm_parameter(
            "ssm_parameter", strip_ssm_prefix(ssm_parameter) if isinstance(ssm_parameter, str) else ssm_parameter
        )
        if error:
            errors.append(f"{error}; the resolve:ssm: prefix may come first")
        else:
            ssm_parameter = strip_ssm_prefix(ssm_parameter)
    if image_ids is not None and ssm_parameter is not None:
        errors.append("image_ids: cannot be combined with ssm_parameter; give one of them")

    executable_by_me = bool(params.get("executable_by_me"))
    if owners is None and entry is None and distro is None and image_ids is None and ssm_parameter is None \
            and not executable_by_me:
        errors.append(
            "owners: required unless distro, image_ids, ssm_parameter or executable_by_me is given: a search"
            " across every owner is refused because anyone can publish an image under an official-looking"
            " name (untrusted images); name the owners you trust (account IDs, "
            + ", ".join(_validate.OWNER_ALIASES[:-1]) + " or " + _validate.OWNER_ALIASES[-1] + ")"
        )

    name = params.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        errors.append("name: must be a non-empty glob on the image name")

    tags = params.get("tags") or {}
    # tags are matched literally: a * or ? would make EC2 match other values (a glob goes in filters)
    errors.append(_validate.literal_tags("tags", tags))
    filters = _check_filters(params.get("filters"), errors)
    if name is not None and "name" in filters:
        errors.append("name: also given as filters.name; give the name glob once")
    for key, value in (tags.items() if isinstance(tags, dict) else []):
        if f"tag:{key}" in filters and filters[f"tag:{key}"] != [value]:
            errors.append(f"tags: tag '{key}' is also given, with another value, as filters.tag:{key}")

    architecture = params.get("architecture") or "x86_64"
    if architecture not in ARCHITECTURES + ("any",):
        errors.append(f"architecture: must be one of {', '.join(ARCHITECTURES + ('any',))}, got '{architecture}'")
    virtualization_type = params.get("virtualization_type") or "hvm"
    if virtualization_type not in VIRTUALIZATION_TYPES + ("any",):
        errors.append(f"virtualization_type: must be one of {', '.join(VIRTUALIZATION_TYPES + ('any',))},"
                      f" got '{virtualization_type}'")
    root_device_type = params.get("root_device_type") or "ebs"
    if root_device_type not in ROOT_DEVICE_TYPES + ("any",):
        errors.append(f"root_device_type: must be one of {', '.join(ROOT_DEVICE_TYPES + ('any',))},"
                      f" got '{root_device_type}'")
    sort_by = params.get("sort_by") or "creation_date"
    if sort_by not in SORT_KEYS:
        errors.append(f"sort_by: must be one of {', '.join(SORT_KEYS)}, got '{sort_by}'")

    names = [name] if name is not None else None
    if entry is not None and names is None and "name" not in filters:
        if architecture == "any":
            names = list(entry["names"].values())
        elif architecture in entry["names"]:
            names = [entry["names"][architecture]]
        else:
            errors.append(
                f"architecture: {entry['title']} (distro {distro}) has no {architecture} images in the catalog;"
                f" it has {', '.join(entry['names'])}"
            )
    if owners is None and entry is not None:
        owners = list(entry["owners"])

    limit = params.get("limit")
    limit = 10 if limit is None else limit
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        errors.append(f"limit: must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}")

    regions = params.get("regions")
    if regions is not None:
        if not regions:
            errors.append("regions: must not be an empty list; leave it out to search the module's region")
        known = list(known_regions) if known_regions is not None else None
        for region in regions:
            errors.append(_validate.region_name("regions", region, known))
        regions = list(dict.fromkeys(regions))
    else:
        if not default_region:
            errors.append("region: no region given; set region (or AWS_REGION) or regions")
        regions = [default_region]

    errors = list(dict.fromkeys(error for error in errors if error))
    if errors:
        raise FindError("; ".join(errors), {"errors": errors})
    return FindRequest(
        distro=distro, owners=_tuple(owners), names=_tuple(names), filters=filters, tags=dict(tags),
        architecture=architecture, virtualization_type=virtualization_type, root_device_type=root_device_type,
        ssm_parameter=ssm_parameter, image_ids=_tuple(image_ids), executable_by_me=executable_by_me,
        include_deprecated=bool(params.get("include_deprecated")),
        include_disabled=bool(params.get("include_disabled")), sort_by=sort_by,
        most_recent=params.get("most_recent") is not False, unique=bool(params.get("unique")),
        required=params.get("required") is not False, regions=tuple(regions), limit=limit, channel=channel,
    )


def _tuple(values: list | None) -> tuple | None:
    return None if values is None else tuple(values)


# ---------------------------------------------------------------------------------------------
# Query building


def build_query(spec: FindRequest, image_ids: list | None = None) -> dict:
    """The owners, executable users and filters sent to DescribeImages, as returned in `query`.

    Owners go to the server as owner-id filters (all account IDs) or owner-alias filters (all
    aliases); a mix, or `self` (which is no owner alias), goes as the Owners parameter, because
    filters of different names are ANDed. Explicit `filters` win over the option-derived ones.
    """
    owners: list = []
    filters: dict = {}
    # The most selective filters first: EC2 does not mind the order, and an endpoint that applies
    # them one after the other (moto) does less work.
    ids = image_ids if image_ids is not None else spec.image_ids
    if ids:
        filters["image-id"] = list(ids)
    if spec.names:
        filters["name"] = list(spec.names)
    if spec.owners:
        if "self" not in spec.owners and all(o.isdigit() for o in spec.owners):
            filters["owner-id"] = list(spec.owners)
        elif "self" not in spec.owners and not any(o.isdigit() for o in spec.owners):
            filters["owner-alias"] = list(spec.owners)
        else:
            owners = list(spec.owners)
    if spec.executable_by_me:
        # Images shared with this account, not the whole public catalog.
        filters["is-public"] = ["false"]
    if spec.architecture != "any":
        filters["architecture"] = [spec.architecture]
    if spec.virtualization_type != "any":
        filters["virtualization-type"] = [spec.virtualization_type]
    if spec.root_device_type != "any":
        filters["root-device-type"] = [spec.root_device_type]
    filters["state"] = ["available", "disabled"] if spec.include_disabled else ["available"]
    for key, value in sorted(spec.tags.items()):
        filters[f"tag:{key}"] = [value]
    filters.update(spec.filters)
    return {
        "owners": owners,
        "executable_users": ["self"] if spec.executable_by_me else [],
        "filters": filters,
        "include_deprecated": spec.include_deprecated,
        "include_disabled": spec.include_disabled,
    }


def request_params(query: dict) -> dict:
    """DescribeImages keyword arguments for a query (without paging)."""
    call: dict = {"Filters": [{"Name": key, "Values": list(values)} for key, values in query["filters"].items()]}
    if query["owners"]:
        call["Owners"] = list(query["owners"])
    if query["executable_users"]:
        call["ExecutableUsers"] = list(query["executable_users"])
    if query["include_deprecated"]:
        call["IncludeDeprecated"] = True
    if query["include_disabled"]:
        call["IncludeDisabled"] = True
    return call


def describe_query(query: dict) -> str:
    parts = []
    if query["owners"]:
        parts.append(f"owners {query['owners']}")
    if query["executable_users"]:
        parts.append(f"executable users {query['executable_users']}")
    parts.append(f"filters {query['filters']}")
    if query["include_deprecated"]:
        parts.append("including deprecated images")
    if query["include_disabled"]:
        parts.append("including disabled images")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# Matching on the client side


def glob_match(pattern: str, value: t.Any) -> bool:
    """EC2 filter semantics: * is any run of characters, ? one character; case-sensitive."""
    if not isinstance(value, str):
        return False
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _image_value(image: dict, key: str) -> t.Any:
    if key.startswith("tag:"):
        tag = key[4:]
        for item in image.get("Tags") or []:
            if item.get("Key") == tag:
                return item.get("Value")
        return None
    return image.get({
        "image-id": "ImageId",
        "owner-id": "OwnerId",
        "owner-alias": "ImageOwnerAlias",
        "name": "Name",
        "architecture": "Architecture",
        "virtualization-type": "VirtualizationType",
        "root-device-type": "RootDeviceType",
        "state": "State",
        "creation-date": "CreationDate",
    }[key])


def _checked_keys(filters: dict) -> list:
    return [key for key in filters if key in _CHECKED or key.startswith("tag:")]


def passes(image: dict, key: str, values: list) -> bool:
    value = _image_value(image, key)
    return any(glob_match(pattern, value) for pattern in values)


def is_deprecated(image: dict, now: datetime.datetime) -> bool:
    moment = _time.parse(image.get("DeprecationTime"))
    return moment is not None and moment <= now


def _owners_ok(image: dict, owners: list) -> bool:
    if not owners or "self" in owners:
        return True  # `self` is only known to the server
    return image.get("OwnerId") in owners or image.get("ImageOwnerAlias") in owners


def failures(image: dict, query: dict, now: datetime.datetime) -> list:
    """The criteria of a query this image fails, as (filter name, expected values) pairs."""
    failed = []
    if not _owners_ok(image, query["owners"]):
        failed.append(("owners", query["owners"]))
    for key in _checked_keys(query["filters"]):
        if not passes(image, key, query["filters"][key]):
            failed.append((key, query["filters"][key]))
    if not query["include_deprecated"] and is_deprecated(image, now):
        failed.append(("deprecated", []))
    return failed


# ---------------------------------------------------------------------------------------------
# Output


def image_result(image: dict) -> dict:
    """snake_case keys as amazon.aws returns them, tags as a dict, plus release and distro."""
    result = camel_dict_to_snake_dict(image, ignore_list=["Tags"])
    result["tags"] = {item["Key"]: item.get("Value", "") for item in image.get("Tags") or []}
    parsed = release_from_ami_name(image.get("Name"))
    result["release"] = parsed[1] if parsed else None
    result["distro"] = parsed[0] if parsed else None
    return result


# ---------------------------------------------------------------------------------------------
# The search


class RegionResult(t.NamedTuple):
    region: str
    query: dict
    matched: int
    images: list  # raw boto3 dicts, newest first, at most limit
    ssm_value: str | None
    complete: bool = True  # False: a newest-first search stopped once it had enough candidates


def scan(client, query: dict, sink: t.Callable[[dict], None]) -> int:
    """Stream every page of the query to sink; returns the number of pages read."""
    call = request_params(query)
    call["MaxResults"] = PAGE_SIZE
    pages = 0
    while True:
        response = _aws.describe_images_page(client, **call)
        pages += 1
        for image in response.get("Images") or []:
            sink(image)
        token = response.get("NextToken")
        if not token:
            return pages
        call["NextToken"] = token


def _month_back(now: datetime.datetime, months: int) -> tuple:
    index = now.year * 12 + now.month - 1 - months
    return index // 12, index % 12 + 1


def creation_windows(now: datetime.datetime) -> list:
    """creation-date filter values that split all time into disjoint windows, newest first.

    Windows of 1, 2, 4, 8, 16 and 32 calendar months back from the current month (as YYYY-MM-*
    wildcards), then everything older (the rest of that year by month, then whole years).
    """
    windows = []
    start = 0
    for size in WINDOW_MONTHS:
        windows.append(["%04d-%02d-*" % _month_back(now, back) for back in range(start, start + size)])
        start += size
    year, month = _month_back(now, start)
    rest = ["%04d-%02d-*" % (year, m) for m in range(month, 0, -1)]
    rest += ["%04d-*" % y for y in range(year - 1, OLDEST_YEAR - 1, -1)]
    windows.append(rest)
    return windows


def newest_first_applies(spec: FindRequest, query: dict) -> bool:
    """Read newest first in creation-date windows, stopping once enough candidates are found?

    For queries that usually match a long line of releases: broad ones (owners and attributes
    only), distro queries, and name globs over a publisher's images (owners given, none of them
    this account, every name a wildcard), such as al2023-ami-2023.*-x86_64 with hundreds of
    matches. The first window then answers with a few images instead of all of them, and a line
    that stopped being published costs one request more. Queries by image ID, by tag, or by name
    among this account's or shared images are usually small and read in one pass.
    """
    filters = query["filters"]
    if spec.sort_by != "creation_date" or "creation-date" in filters or "image-id" in filters:
        return False
    if any(key.startswith("tag:") for key in filters):
        return False
    if "name" not in filters:
        return True
    catalog_names = set(CATALOG[spec.distro]["names"].values()) if spec.distro in CATALOG else set()
    if catalog_names and set(filters["name"]) <= catalog_names:
        return True
    owners = spec.owners or ()
    publishers = bool(owners) and "self" not in owners and not spec.executable_by_me
    return publishers and all(any(c in name for c in "*?") for name in filters["name"])


def search_region(client, spec: FindRequest, region: str, ssm_value: str | None = None,
                  now: datetime.datetime | None = None) -> RegionResult:
    now = now or _time.now()
    query = build_query(spec, [ssm_value] if ssm_value else None)
    top = TopN(spec.limit, spec.sort_by)

    def sink_for(checked: dict) -> t.Callable[[dict], None]:
        def sink(image: dict) -> None:
            if not failures(image, checked, now):
                top.offer(image)
        return sink

    if not newest_first_applies(spec, query):
        scan(client, query, sink_for(query))
        return RegionResult(region, query, top.count, top.best(), ssm_value)

    # Every window is disjoint and older than the one before: once `need` candidates are found,
    # nothing in an older window can enter the best `limit`, so the search stops there.
    need = max(spec.limit, 2 if spec.unique else 1)
    windows = []
    complete = True
    for values in creation_windows(now):
        windowed = dict(query, filters=dict({"creation-date": values}, **query["filters"]))
        scan(client, windowed, sink_for(windowed))
        windows.append(values)
        if top.count >= need:
            complete = False
            break
    shown = dict(query, creation_date_windows=windows)
    if top.count == 0:
        # Nothing in any window: also what an endpoint without creation-date wildcards answers.
        # One plain pass settles it (and describes nothing twice: the windows found nothing).
        scan(client, query, sink_for(query))
        shown["creation_date_fallback"] = True
    return RegionResult(region, shown, top.count, top.best(), ssm_value, complete)


_LABELS = {
    "owners": "owned by",
    "owner-id": "owned by",
    "owner-alias": "owned by",
    "image-id": "one of the image IDs",
    "name": "named like",
    "architecture": "is",
    "virtualization-type": "is",
    "root-device-type": "has root device type",
    "state": "is in state",
}
_HINTS = {
    "deprecated": "set include_deprecated=true to accept deprecated images",
    "state": "set include_disabled=true to accept disabled images",
    "architecture": "see the architecture option",
    "virtualization-type": "see the virtualization_type option",
    "root-device-type": "see the root_device_type option",
}


def _describe_failure(key: str, expected: list, images: list) -> str:
    if key == "deprecated":
        return "is current (they are deprecated)"
    if key.startswith("tag:"):
        found = sorted({"no such tag" if value is None else f"{key[4:]}={value}"
                        for value in (_image_value(image, key) for image in images)})
        return f"carries tag {key[4:]}={' or '.join(expected)} (found: {', '.join(found)})"
    label = _LABELS.get(key, key)
    field = "owner-id" if key == "owners" else key
    found = sorted({str(_image_value(image, field)) for image in images})
    return f"{label} {' or '.join(expected)} (found: {', '.join(found)})"


def diagnose(client, spec: FindRequest, result: RegionResult, now: datetime.datetime | None = None) -> str:
    """Why nothing matched: rerun the query without the attribute filters and say what failed."""
    now = now or _time.now()
    query = {k: v for k, v in result.query.items() if k != "creation_date_windows"}
    relaxed = dict(query, include_deprecated=True, include_disabled=True,
                   filters={k: v for k, v in query["filters"].items() if k not in _RELAXED and not k.startswith("tag:")})
    misses: list = []

    def sink(image: dict) -> None:
        misses.append((failures(image, query, now), image))

    scan(client, relaxed, sink)
    kept = [key for key in ("owners", "image-id", "name") if key in relaxed["filters"] or
            (key == "owners" and (relaxed["owners"] or "owner-id" in relaxed["filters"]
                                  or "owner-alias" in relaxed["filters"]))]
    what = " and ".join({"owners": "the owners", "image-id": "the image IDs", "name": "the name"}[k] for k in kept) \
        or "the filters"
    if result.ssm_value:
        what = f"the image {result.ssm_value} named by SSM parameter {spec.ssm_parameter}"
    if not misses:
        if result.ssm_value:
            return f"{what} does not exist in {result.region} or is not owned by the owners asked for"
        if spec.image_ids:
            return f"none of the image IDs exists in {result.region} with the owners and filters asked for"
        return f"no image matched {what} at all"
    fewest = min(len(failed) for failed, _image in misses)
    groups: dict = {}
    for failed, image in misses:
        if len(failed) == fewest:
            groups.setdefault(tuple((key, tuple(values)) for key, values in failed), []).append(image)
    failed, images = max(groups.items(), key=lambda item: len(item[1]))
    noun = "image" if len(misses) == 1 else "images"
    verb = "matches" if len(misses) == 1 else "matched"
    reasons = " and ".join(_describe_failure(key, list(values), images) for key, values in failed)
    nearest = newest_first(images, spec.sort_by)[0]
    hints = [_HINTS[key] for key, _value in failed if key in _HINTS]
    message = (
        f"{len(misses)} {noun} {verb} {what} but none {reasons};"
        f" nearest miss: {nearest.get('ImageId')} ({nearest.get('Name')})"
    )
    if hints:
        message += "; " + "; ".join(dict.fromkeys(hints))
    return message


def resolve_ssm(clients: dict, spec: FindRequest) -> dict:
    """region -> the AMI ID the SSM parameter holds there; FindError when missing or not an ID."""
    if not spec.ssm_parameter:
        return {}

    def one(region: str) -> tuple:
        return region, _aws.get_parameter(clients[region], spec.ssm_parameter)

    values = {}
    errors = []
    for region, parameter in _fanout.each(one, spec.regions):
        if parameter is None:
            errors.append(f"ssm_parameter: parameter {spec.ssm_parameter} does not exist in {region}")
            continue
        value = str(parameter.get("Value", "")).strip()
        if _validate.resource_id("ssm_parameter", value, "image"):
            errors.append(f"ssm_parameter: the value of {spec.ssm_parameter} in {region} is '{value[:60]}',"
                          " which is not an AMI ID")
            continue
        values[region] = value
    if errors:
        raise FindError("; ".join(errors))
    return values


def search(ec2_clients: dict, spec: FindRequest, ssm_values: dict | None = None,
           now: datetime.datetime | None = None) -> list:
    """search_region in every region concurrently; a miss is diagnosed when required."""
    ssm_values = ssm_values or {}
    now = now or _time.now()

    def one(region: str) -> tuple:
        client = ec2_clients[region]
        result = search_region(client, spec, region, ssm_values.get(region), now)
        miss = diagnose(client, spec, result, now) if not result.matched and spec.required else None
        return result, miss

    return _fanout.each(one, spec.regions)


# ---------------------------------------------------------------------------------------------
# Putting the answer together


def _warnings_for(region: str, image: dict, spec: FindRequest, now: datetime.datetime) -> list:
    warnings = []
    label = f"{region}: {image.get('ImageId')} ({image.get('Name')})"
    options = {"architecture": spec.architecture, "virtualization-type": spec.virtualization_type,
               "root-device-type": spec.root_device_type}
    fields = {"architecture": "Architecture", "virtualization-type": "VirtualizationType",
              "root-device-type": "RootDeviceType"}
    for key, modern in MODERN.items():
        value = image.get(fields[key])
        if value and value not in modern:
            option = key.replace("-", "_")
            warnings.append(
                f"{label} is {key} {value}: it matched only because {option} is {options[key]}"
                f" (modern deployments use {' or '.join(modern)})"
            )
    if is_deprecated(image, now):
        warnings.append(f"{label} is deprecated since {image.get('DeprecationTime')}:"
                        " it matched only because include_deprecated is true")
    if image.get("State") == "disabled":
        warnings.append(f"{label} is disabled: it matched only because include_disabled is true")
    return warnings


def assemble(spec: FindRequest, outcomes: list, now: datetime.datetime | None = None) -> tuple:
    """(result dict, error message or None) from the per-region outcomes of search()."""
    now = now or _time.now()
    errors: list = []
    warnings: list = []
    by_region: dict = {}
    for result, miss in outcomes:
        entry: dict = {
            "images": [image_result(image) for image in result.images],
            "matched": result.matched,
            "complete": result.complete,
            "query": result.query,
        }
        if result.ssm_value:
            entry["ssm_parameter_value"] = result.ssm_value
        chosen = None
        if result.images and (spec.most_recent or result.matched == 1):
            chosen = result.images[0]
            entry["image"] = entry["images"][0]
        if not result.matched and spec.required:
            errors.append(f"no image found in {result.region} for {describe_query(result.query)}"
                          + (f"; {miss}" if miss else ""))
        if spec.unique and result.matched > 1:
            shown = ", ".join(f"{image.get('ImageId')} ({image.get('Name')})" for image in result.images[:5])
            errors.append(f"unique: {result.matched} images matched in {result.region} ({shown}"
                          f"{', ...' if result.matched > 5 else ''}); narrow the query or set unique=false")
        for image in [chosen] if chosen else result.images:
            warnings.extend(_warnings_for(result.region, image, spec, now))
        by_region[result.region] = entry
    first = by_region[spec.regions[0]]
    answer = {
        "changed": False,
        "images": first["images"],
        "images_by_region": by_region,
        "query": first["query"],
        "warnings": warnings,
    }
    if "image" in first:
        answer["image"] = first["image"]
    return answer, ("; ".join(errors) if errors else None)
