# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# What bakery.ami.ami_copy (and ami_create's copy option) is asked to do, checked before any AWS
# call: the typed request, every rule with a message naming the option, and what is derived from
# the request alone (the copies' tags, the CopyImage ClientToken, the check-mode prediction for an
# image not made yet). The engine that carries a request out is _copy.

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _protect
from ansible_collections.bakery.ami.plugins.module_utils import _share
from ansible_collections.bakery.ami.plugins.module_utils import _tags
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError

SOURCE_TAG = _tags.SOURCE_IMAGE
SOURCE_NAME_TAG = _tags.SOURCE_NAME
MANAGED_TAGS = (SOURCE_TAG, SOURCE_NAME_TAG)

REGION_KEYS = ("region", "kms_key_id", "name", "description")


class InputError(BakeryError):
    """A user mistake found before any copy started; the message names the option."""


@dataclasses.dataclass
class RegionSpec:
    """One destination: its region, and what it sets differently from the request."""

    region: str
    name: str | None = None
    description: str | None = None
    kms_key_id: str | None = None
    where: str = "regions"  # how messages name this item, e.g. "regions[2] (eu-west-1)"


@dataclasses.dataclass(frozen=True)
class CopyRequest:
    """A checked ami_copy request (or ami_create's copy option): every rule held before it is made."""

    source_image_id: str
    source_region: str
    regions: list[RegionSpec]
    name: str | None = None
    description: str | None = None
    encrypted: bool = False
    kms_key_id: str | None = None
    copy_tags: bool = True
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    pending_tags: dict[str, str] = dataclasses.field(default_factory=dict)
    launch_permissions: list[dict] = dataclasses.field(default_factory=list)  # LaunchPermission entries
    share_user_ids: list[str] = dataclasses.field(default_factory=list)  # accounts the snapshots are shared with
    deprecate_at: datetime.datetime | None = None
    protection: str | None = None  # the DeregistrationProtection every copy gets (None: left as it is)
    wait: bool = True
    wait_timeout: float = 3600
    max_concurrency: int | None = None
    rollback_on_failure: bool = True


def _region_specs(value: t.Any, known: t.Iterable[str] | None, errors: list) -> list[RegionSpec]:
    if not isinstance(value, list) or not value:
        errors.append("regions: must be a non-empty list of region names or dictionaries")
        return []
    specs: list[RegionSpec] = []
    seen: set = set()
    for index, item in enumerate(value):
        where = f"regions[{index}]"
        if isinstance(item, str):
            spec = RegionSpec(region=item)
        elif isinstance(item, dict):
            unknown = sorted(str(key) for key in item if key not in REGION_KEYS)
            if unknown:
                errors.append(f"{where}: unknown key(s) {', '.join(unknown)}; allowed are {', '.join(REGION_KEYS)}")
                continue
            if not item.get("region"):
                errors.append(f"{where}: a dictionary item needs 'region'")
                continue
            for key in ("name", "description", "kms_key_id"):
                if item.get(key) is not None and not isinstance(item[key], str):
                    errors.append(f"{where}.{key}: must be a string")
            spec = RegionSpec(
                region=item["region"],
                name=item.get("name"),
                description=item.get("description"),
                kms_key_id=item.get("kms_key_id"),
            )
            where = f"regions[{index}] ({spec.region})"
            if isinstance(spec.name, str):
                _add(errors, _validate.ami_name(f"{where}.name", spec.name))
            if isinstance(spec.description, str) and len(spec.description) > 255:
                errors.append(f"{where}.description: must be at most 255 characters")
            if spec.kms_key_id is not None:
                _add(errors, _validate.kms_key(f"{where}.kms_key_id", spec.kms_key_id))
        else:
            errors.append(f"{where}: must be a region name or a dictionary with 'region', got {type(item).__name__}")
            continue
        error = _validate.region_name(where if isinstance(item, str) else f"{where}.region", spec.region, known)
        if error:
            errors.append(error)
            continue
        if spec.region in seen:
            errors.append(f"regions: region '{spec.region}' is listed more than once")
            continue
        seen.add(spec.region)
        spec.where = f"regions[{index}] ({spec.region})"
        specs.append(spec)
    return specs


def _add(errors: list, error: str | None) -> None:
    if error:
        errors.append(error)


def build_request(
    params: dict,
    default_region: str | None,
    known_regions: t.Iterable[str] | None = None,
    now: datetime.datetime | None = None,
    option_prefix: str = "",
) -> CopyRequest:
    """Check every option and return the request; raises InputError listing every problem.

    option_prefix names the options in messages when they are suboptions of another module's
    option (ami_create's copy: "copy.regions: ...").
    """
    known = sorted(known_regions) if known_regions else None
    errors: list = []

    source_image_id = params.get("source_image_id")
    _add(errors, _validate.resource_id("source_image_id", source_image_id, "image"))

    source_region = params.get("source_region") or default_region
    if not source_region:
        errors.append("source_region: no region given (set source_region or the module's region)")
    else:
        _add(errors, _validate.region_name("source_region", source_region, known))

    regions = _region_specs(params.get("regions"), known, errors)

    name = params.get("name")
    if name is not None:
        _add(errors, _validate.ami_name("name", name))
    description = params.get("description")
    if description is not None and len(description) > 255:
        errors.append("description: must be at most 255 characters")

    encrypted = bool(params.get("encrypted"))
    kms_key_id = params.get("kms_key_id")
    if kms_key_id is not None:
        _add(errors, _validate.kms_key("kms_key_id", kms_key_id))
    if not encrypted:
        if kms_key_id is not None:
            errors.append("kms_key_id: a KMS key needs encrypted=true")
        for spec in regions:
            if spec.kms_key_id is not None:
                errors.append(f"{spec.where}.kms_key_id: a KMS key needs encrypted=true")

    tags = params.get("tags") or {}
    error = _validate.tags("tags", tags)
    _add(errors, error)
    if not error:
        for key in MANAGED_TAGS:
            if key in tags:
                errors.append(f"tags: '{key}' is set by ami_copy itself and cannot be given")

    _add(errors, _validate.expires_tag("tags", tags, now))

    pending_tags = params.get("pending_tags") or {}
    pending_error = _validate.tags("pending_tags", pending_tags)
    _add(errors, pending_error)
    if not pending_error:
        for key in pending_tags:
            if key in MANAGED_TAGS:
                errors.append(f"pending_tags: '{key}' is set by ami_copy itself and cannot be given")
            elif key in tags:
                errors.append(f"pending_tags: '{key}' is also in tags; a tag is either kept or removed when done, not both")
        _add(errors, _validate.expires_tag("pending_tags", pending_tags, now))
    if not error and not pending_error:
        # what every copy gets whatever the source carries: the source's own tags are counted once read
        _add(errors, _validate.tag_total("tags", "copy", copy_tag_sources(tags, pending_tags)))

    permissions, share_user_ids = _share.parse(params, errors)

    deprecate_at = None
    if params.get("deprecate_at") is not None:
        deprecate_at, error = _validate.future_time("deprecate_at", params["deprecate_at"], now)
        _add(errors, error)

    errors.extend(_protect.errors(params))

    wait_timeout = params.get("wait_timeout")
    if wait_timeout is None:
        wait_timeout = 3600
    if wait_timeout <= 0:
        errors.append(f"wait_timeout: must be a positive number of seconds, got {wait_timeout}")
    max_concurrency = params.get("max_concurrency")
    if max_concurrency is not None and max_concurrency < 1:
        errors.append(f"max_concurrency: must be at least 1, got {max_concurrency}")

    if errors:
        raise InputError("; ".join(option_prefix + error for error in errors))
    copy_tags = params.get("copy_tags")
    wait = params.get("wait")
    rollback = params.get("rollback_on_failure")
    return CopyRequest(
        # both were checked above: strings from here on
        source_image_id=str(source_image_id),
        source_region=str(source_region),
        regions=regions,
        name=name,
        description=description,
        encrypted=encrypted,
        kms_key_id=kms_key_id,
        copy_tags=True if copy_tags is None else bool(copy_tags),
        tags=dict(tags),
        pending_tags=dict(pending_tags),
        launch_permissions=permissions,
        share_user_ids=share_user_ids,
        deprecate_at=deprecate_at,
        protection=_protect.wanted(params),
        wait=True if wait is None else bool(wait),
        wait_timeout=float(wait_timeout),
        max_concurrency=max_concurrency,
        rollback_on_failure=True if rollback is None else bool(rollback),
    )


def copy_suboptions() -> dict:
    """The argument spec of what to copy where: ami_copy's options, and the suboptions of ami_create's copy."""
    return dict(
        regions=dict(type="list", elements="raw", required=True),
        name=dict(type="str"),
        description=dict(type="str"),
        encrypted=dict(type="bool", default=False),
        kms_key_id=dict(type="str", no_log=False),
        copy_tags=dict(type="bool", default=True),
        tags=dict(type="dict"),
        pending_tags=dict(type="dict"),
        **_share.suboptions(),
        deprecate_at=dict(type="str"),
        # not given (None) is false for ami_copy; ami_create's copy then takes the image's own setting
        **_protect.suboptions(default=None),
        max_concurrency=dict(type="int"),
        rollback_on_failure=dict(type="bool", default=True),
    )


# The image ami_create is about to make has no ID yet: its copy request is checked with this one
# and gets the real ID once the image exists.
UNKNOWN_SOURCE_ID = "ami-00000000000000000"


def request_for_new_image(params: dict, region: str | None, known_regions: t.Iterable[str] | None = None,
                          now: datetime.datetime | None = None) -> CopyRequest:
    """ami_create's copy option: the copy request for the image the task makes, checked up front.

    params are ami_create's; messages name the suboptions as copy.<option>.
    """
    errors = []
    if not params.get("wait", True):
        errors.append("copy: the copies start once the image is available; it needs wait=true")
    copy = dict(params.get("copy") or {})
    if copy.get("protect") is None:
        # the copies are protected as the image is, unless copy says otherwise
        copy["protect"] = params.get("protect")
        copy["protect_cooldown"] = params.get("protect_cooldown")
    clash = sorted(set(copy.get("pending_tags") or {}) & set(params.get("tags") or {}))
    if clash:
        errors.append(f"copy.pending_tags: '{clash[0]}' is also in tags; a tag is either kept or removed when done, not both")
    request = None
    try:
        request = build_request(
            dict(copy, source_image_id=UNKNOWN_SOURCE_ID, source_region=region, wait=True,
                 wait_timeout=params.get("wait_timeout")),
            region, known_regions, now, option_prefix="copy.",
        )
    except InputError as exc:
        errors.insert(0, str(exc))
    if request is not None and isinstance(params.get("tags") or {}, dict):
        # the image is made with its tags, bakery:build-id and the pending tags; copies inherit them
        source_tags = dict(params.get("tags") or {}, **request.pending_tags)
        if params.get("build_id") is not None:
            source_tags[_tags.BUILD_ID] = params["build_id"]
        _add(errors, _validate.tag_total(
            "copy.tags", "copy",
            copy_tag_sources(request.tags, request.pending_tags, source_tags, request.copy_tags),
        ))
    if errors or request is None:  # no request means its errors are listed
        raise InputError("; ".join(errors))
    return request


def predict_for_new_source(request: CopyRequest, name: str, tags: dict) -> dict:
    """Check mode, source not made yet: every region would get a copy (nothing to look up)."""
    images: t.Dict[str, dict] = {}
    for spec in request.regions:
        if spec.region == request.source_region:
            images[spec.region] = {"image_id": None, "name": name, "state": "predicted", "changed": True,
                                   "snapshot_ids": [], "tags": dict(tags),
                                   "deregistration_protection": request.protection or _protect.OFF}
            continue
        copy_tags = user_tags(tags) if request.copy_tags else {}
        copy_tags.update(request.tags)
        copy_tags.update(request.pending_tags)
        copy_tags[SOURCE_NAME_TAG] = name
        images[spec.region] = {"image_id": None, "name": spec.name or request.name or name, "state": "predicted",
                               "changed": True, "snapshot_ids": [], "tags": copy_tags,
                               "deregistration_protection": request.protection or _protect.OFF}
    return {"changed": bool(images), "images": images, "failed_regions": {}}


# ---------------------------------------------------------------------------------------------
# Derived from the request alone


def source_tag_value(source_region: str, source_image_id: str) -> str:
    return f"{source_region}/{source_image_id}"


def client_token(source_region: str, source_image_id: str, region: str, name: str, generation: int = 0) -> str:
    """The CopyImage ClientToken: the same request always gets the same token (max 64 chars)."""
    parts = ["bakery.ami/copy", source_tag_value(source_region, source_image_id), region, name]
    if generation:
        parts.append(f"g{generation}")
    digest = hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()
    return f"bakery-{digest[:48]}"


def user_tags(tags: dict) -> dict:
    """Tags a copy may inherit: not AWS's own (aws:, in any case), not our bookkeeping tags, and not the
    source's sharing record (each copy records its own sharing)."""
    return {key: value for key, value in tags.items()
            if not key.lower().startswith("aws:") and key not in MANAGED_TAGS and not _share.is_record_key(key)}


def copy_tag_sources(tags: dict, pending_tags: dict, source_tags: dict | None = None, copy_tags: bool = True) -> list:
    """Every source of a copy's tags, for _validate.tag_total: inherited, tags, pending_tags, ours."""
    sources = []
    if source_tags and copy_tags:
        sources.append(("the source image (copy_tags)", user_tags(source_tags)))
    sources.append(("tags", tags))
    sources.append(("pending_tags", pending_tags))
    sources.append(("ami_copy's own tags", dict.fromkeys(MANAGED_TAGS, "")))
    return sources
