# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""EC2 behaviour moto 5.x lacks and bakery.ami relies on, patched into moto's classes.

Call ``install()`` once, after MOTO_AMIS_PATH is set and before the first request. Each gap
fill follows the EC2 API reference; README.md in this directory explains each one.
"""
from __future__ import annotations

import base64
import copy
import json
import os
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from moto.ec2 import models as ec2_models
from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError, InvalidSnapshotIdError, InvalidTaggableResourceType
from moto.ec2.models import EC2Backend
from moto.ec2.models.amis import AMIS, Ami
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.elastic_block_store import Volume
from moto.ec2.models.instances import Instance
from moto.ec2.responses import EC2Response
from moto.ec2.utils import random_ami_id

from tools.local_aws.state import STATE

_INSTALLED = False

# EC2 instance state codes (low byte of the state code)
_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

_AMI_NAME_RE = re.compile(r"^[A-Za-z0-9()\[\]./\-'@_ ]{3,128}$")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


# ---------------------------------------------------------------------------------------------
# Tags: direct lookup instead of moto's scan over every tag of the region (O(n) per resource).
# ---------------------------------------------------------------------------------------------
def _get_tags(self: Any) -> list[dict[str, str]]:
    if not self.id:
        return []
    tags = self.ec2_backend.tags.get(self.id)
    if not tags:
        return []
    kind = ec2_models.tags.EC2_PREFIX_TO_RESOURCE.get(ec2_models.tags.get_prefix(self.id), "")
    return [{"resource_id": self.id, "key": key, "value": value, "resource_type": kind} for key, value in tags.items()]


# ---------------------------------------------------------------------------------------------
# Image timeline: `state` becomes a property computed from a deadline.
# ---------------------------------------------------------------------------------------------
def _ami_state_get(self: Ami) -> str:
    state = self.__dict__.get("_bakery_state", "available")
    due = self.__dict__.get("_bakery_available_at")
    if due is not None and state == "pending" and time.time() >= due:
        state = "available"
        self.__dict__["_bakery_state"] = state
        self.__dict__["_bakery_available_at"] = None
    return state


def _ami_state_set(self: Ami, value: str) -> None:
    self.__dict__["_bakery_state"] = value
    self.__dict__["_bakery_available_at"] = None


def _start_pending(ami: Ami, delay_key: str) -> None:
    delay = float(STATE.get(delay_key))
    if delay > 0:
        ami.state = "pending"
        ami.__dict__["_bakery_available_at"] = time.time() + delay


def _deprecation_at(ami: Ami) -> datetime | None:
    return ami.__dict__.get("_bakery_deprecate_at")


def _set_deprecation(ami: Ami, moment: datetime | None) -> None:
    ami.__dict__["_bakery_deprecate_at"] = moment
    ami.deprecation_time = _iso(moment) if moment is not None else None


def _is_deprecated(ami: Ami, now: datetime) -> bool:
    moment = _deprecation_at(ami)
    return moment is not None and moment <= now


# ---------------------------------------------------------------------------------------------
# Backend helpers
# ---------------------------------------------------------------------------------------------
def _check_name(backend: EC2Backend, name: str | None) -> None:
    """InvalidAMIName.Malformed / .Duplicate as EC2 answers them (per owner and region)."""
    if name is None or not _AMI_NAME_RE.match(name):
        raise EC2ClientError(
            "InvalidAMIName.Malformed",
            "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, "
            "'(', ')', '.', '-', '/', '_', '[', ']', '@', an apostrophe and spaces",
        )
    for image in list(backend.amis.values()):
        if image.name == name and image.owner_id == backend.account_id:
            raise EC2ClientError("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {image.id}")


def _split_tag_specs(specs: list[dict[str, Any]] | None, allowed: tuple[str, ...]) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = {kind: {} for kind in allowed}
    for spec in specs or []:
        kind = spec.get("ResourceType")
        if kind not in allowed:
            raise InvalidTaggableResourceType(str(kind))
        for tag in spec.get("Tags", spec.get("Tag", [])) or []:
            result[kind][tag["Key"]] = tag.get("Value", "")
    return result


def _apply_tags(ami: Ami, tags: dict[str, dict[str, str]]) -> None:
    if tags.get("image"):
        ami.add_tags(tags["image"])
    if tags.get("snapshot"):
        for snapshot in _image_snapshots(ami):
            snapshot.add_tags(tags["snapshot"])


def _image_snapshots(ami: Ami) -> list[Any]:
    snapshots = [ami.ebs_snapshot]
    for extra in ami.__dict__.get("_bakery_extra_snapshots", []):
        snapshots.append(extra)
    return snapshots


def _user_tags(ami: Ami) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in ami.get_tags() if not tag["key"].startswith("aws:")}


def _find_image(backend: EC2Backend, image_id: str) -> Ami:
    image = backend.amis.get(image_id)
    if image is None:
        raise InvalidAMIIdError(image_id)
    return image


# ---------------------------------------------------------------------------------------------
# Backend overrides
# ---------------------------------------------------------------------------------------------
def _load_amis(self: EC2Backend) -> None:
    """Catalog loading: honour owner_alias/region/deprecation_time/tags of MOTO_AMIS_PATH entries."""
    if "MOTO_AMIS_PATH" not in os.environ:
        _ORIGINAL["_load_amis"](self)
        return
    region = self.region_name
    for entry in AMIS:
        regions = entry.get("regions") or ([entry["region"]] if entry.get("region") else None)
        if regions and region not in regions:
            continue
        params = {key: value for key, value in entry.items() if key in _AMI_INIT_KEYS}
        params["owner_alias"] = entry.get("owner_alias")
        created = params.get("creation_date")
        if isinstance(created, str):
            params["creation_date"] = _parse_time(created)
        image = Ami(self, **params)
        if entry.get("deprecation_time"):
            _set_deprecation(image, _parse_time(entry["deprecation_time"]))
        for attr in ("imds_support", "ena_support", "boot_mode", "tpm_support"):
            if entry.get(attr) is not None:
                setattr(image, attr, entry[attr])
        self.amis[image.id] = image


_AMI_INIT_KEYS = {
    "ami_id", "name", "description", "owner_id", "public", "virtualization_type", "architecture", "state",
    "creation_date", "platform", "image_type", "image_location", "hypervisor", "root_device_type",
    "root_device_name", "sriov", "product_codes", "boot_mode", "tags",
}


def create_image(
    self: EC2Backend,
    instance_id: str,
    name: str,
    description: str,
    tag_specifications: list[dict[str, Any]] | None = None,
) -> Ami:
    instance = self.get_instance(instance_id)
    tags = _split_tag_specs(tag_specifications, ("image", "snapshot"))
    _check_name(self, name)
    ami_id = random_ami_id()
    ami = Ami(
        self,
        ami_id,
        instance=instance,
        name=name,
        description=description,
        root_device_type="ebs",
        root_device_name=getattr(instance, "root_device_name", None) or "/dev/xvda",
        snapshot_description=f"Created by CreateImage({instance_id}) for {ami_id}",
    )
    self.amis[ami_id] = ami
    _apply_tags(ami, tags)
    _start_pending(ami, "create_delay")
    return ami


def copy_image(
    self: EC2Backend,
    source_image_id: str,
    source_region: str,
    name: str | None = None,
    description: str | None = None,
    copy_image_tags: bool = False,
    client_token: str | None = None,
    tag_specifications: list[dict[str, Any]] | None = None,
    encrypted: bool = False,
    kms_key_id: str | None = None,
) -> Ami:
    tokens: dict[str, tuple[tuple[Any, ...], str]] = self.__dict__.setdefault("_bakery_copy_tokens", {})
    fingerprint = (source_image_id, source_region, name, description, bool(copy_image_tags), bool(encrypted), kms_key_id,
                   json.dumps(tag_specifications or [], sort_keys=True))
    if client_token:
        known = tokens.get(client_token)
        if known is not None:
            if known[0] != fingerprint:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"Client token {client_token} was already used with different request parameters",
                )
            return self.amis.get(known[1]) or _DeletedImage(known[1])
    tags = _split_tag_specs(tag_specifications, ("image", "snapshot"))
    source_backend = ec2_models.ec2_backends[self.account_id][source_region]
    source = _find_image(source_backend, source_image_id)
    _check_name(self, name)
    ami_id = random_ami_id()
    ami = Ami(
        self,
        ami_id,
        source_ami=source,
        name=name,
        description=description,
        root_device_type=source.root_device_type,
        root_device_name=source.root_device_name,
        sriov=source.sriov,
        boot_mode=source.boot_mode,
        snapshot_description=(
            f"Copied for DestinationAmi {ami_id} from SourceAmi {source.id} "
            f"for SourceSnapshot {source.ebs_snapshot.id}"
        ),
    )
    for attr in ("imds_support", "ena_support", "tpm_support"):
        if getattr(source, attr, None) is not None:
            setattr(ami, attr, getattr(source, attr))
    if encrypted:
        ami.ebs_snapshot.encrypted = True
        ami.ebs_snapshot.kms_key_id = kms_key_id
    self.amis[ami_id] = ami
    if copy_image_tags:
        user_tags = _user_tags(source)
        if user_tags:
            ami.add_tags(user_tags)
    _apply_tags(ami, tags)
    _start_pending(ami, "copy_delay")
    if client_token:
        tokens[client_token] = (fingerprint, ami_id)
    return ami


class _DeletedImage:
    """Stands for a copy made under a client token and deregistered since."""

    def __init__(self, image_id: str) -> None:
        self.id = image_id


def register_image(
    self: EC2Backend,
    name: str | None = None,
    description: str | None = None,
    **extra: Any,
) -> Ami:
    tags = _split_tag_specs(extra.get("tag_specifications"), ("image", "snapshot"))
    _check_name(self, name)
    mappings = extra.get("block_device_mappings") or []
    root_name = extra.get("root_device_name") or "/dev/sda1"
    root_snapshot = None
    other_snapshots = []
    for mapping in mappings:
        snapshot_id = (mapping.get("Ebs") or {}).get("SnapshotId")
        if not snapshot_id:
            continue
        snapshot = self.snapshots.get(snapshot_id)
        if snapshot is None:
            raise InvalidSnapshotIdError()
        if mapping.get("DeviceName") == root_name and root_snapshot is None:
            root_snapshot = snapshot
        else:
            other_snapshots.append(snapshot)
    ami_id = random_ami_id()
    ami = Ami(
        self,
        ami_id,
        name=name,
        description=description,
        virtualization_type=extra.get("virtualization_type") or "hvm",
        architecture=extra.get("architecture") or "x86_64",
        root_device_type="ebs" if mappings else "instance-store",
        root_device_name=root_name,
        boot_mode=extra.get("boot_mode") or "legacy-bios",
        snapshot_description=f"Created by RegisterImage for {ami_id}",
    )
    if root_snapshot is not None:
        # the image is backed by the caller's snapshot, not by the one Ami() made up
        self.snapshots.pop(ami.ebs_snapshot.id, None)
        ami.ebs_snapshot = root_snapshot
        root_snapshot.from_ami = ami_id
    for snapshot in other_snapshots:
        snapshot.from_ami = ami_id
    ami.__dict__["_bakery_extra_snapshots"] = other_snapshots
    ami.__dict__["_bakery_mappings"] = mappings
    for attr in ("imds_support", "ena_support", "tpm_support"):
        if extra.get(attr) is not None:
            setattr(ami, attr, extra[attr])
    self.amis[ami_id] = ami
    _apply_tags(ami, tags)
    _start_pending(ami, "register_delay")
    return ami


def _block_device_mappings(self: Ami) -> list[dict[str, Any]]:
    mappings = self.__dict__.get("_bakery_mappings")
    if not mappings:
        return _ORIGINAL["block_device_mappings"].fget(self)
    result = []
    for mapping in mappings:
        item = {key: value for key, value in mapping.items() if key != "Ebs"}
        if "Ebs" in mapping:
            ebs = dict(mapping["Ebs"])
            ebs.setdefault("DeleteOnTermination", True)
            ebs.setdefault("VolumeType", "gp2")
            snapshot = self.ec2_backend.snapshots.get(ebs.get("SnapshotId"))
            if snapshot is not None and "VolumeSize" not in ebs:
                ebs["VolumeSize"] = snapshot.volume.size
            ebs.setdefault("Encrypted", bool(snapshot.encrypted) if snapshot is not None else False)
            item["Ebs"] = ebs
        result.append(item)
    return result


def enable_image_deprecation(self: EC2Backend, image_id: str, deprecate_at: Any) -> None:
    image = _find_image(self, image_id)
    if image.owner_id != self.account_id:
        raise EC2ClientError("AuthFailure", f"Not authorized for image:{image_id}")
    try:
        moment = _parse_time(deprecate_at)
    except ValueError:
        raise EC2ClientError("InvalidParameterValue", f"Value ({deprecate_at}) for parameter DeprecateAt is invalid.") from None
    # EC2 rounds the seconds to the nearest minute
    rounded = moment.replace(second=0, microsecond=0)
    if moment.second >= 30:
        rounded += timedelta(minutes=1)
    now = _now()
    if not STATE.get("allow_past_deprecation") and moment < now - timedelta(seconds=60):
        raise EC2ClientError("InvalidParameterValue", "The deprecation time can't be in the past.")
    if rounded > now + timedelta(days=3653):
        raise EC2ClientError("InvalidParameterValue", "The deprecation time can't be more than 10 years from now.")
    _set_deprecation(image, rounded)


def disable_image_deprecation(self: EC2Backend, image_id: str) -> None:
    image = _find_image(self, image_id)
    if image.owner_id != self.account_id:
        raise EC2ClientError("AuthFailure", f"Not authorized for image:{image_id}")
    _set_deprecation(image, None)


# ---------------------------------------------------------------------------------------------
# Response overrides (parameter parsing, deprecation visibility, pagination)
# ---------------------------------------------------------------------------------------------
def _r_create_image(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    image = self.ec2_backend.create_image(
        self._get_param("InstanceId"),
        self._get_param("Name"),
        self._get_param("Description", ""),
        tag_specifications=self._get_param("TagSpecifications", []),
    )
    return ActionResult({"ImageId": image.id})


def _r_copy_image(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    image = self.ec2_backend.copy_image(
        self._get_param("SourceImageId"),
        self._get_param("SourceRegion"),
        name=self._get_param("Name"),
        description=self._get_param("Description"),
        copy_image_tags=_as_bool(self._get_param("CopyImageTags", False)),
        client_token=self._get_param("ClientToken"),
        tag_specifications=self._get_param("TagSpecifications", []),
        encrypted=_as_bool(self._get_param("Encrypted", False)),
        kms_key_id=self._get_param("KmsKeyId"),
    )
    return ActionResult({"ImageId": image.id})


def _r_run_instances(self: EC2Response) -> Any:
    """RunInstances with a ClientToken is idempotent, as in EC2: the same token with the same
    parameters answers the first launch's reservation (its instances as they are now, even
    terminated) without launching again; with other parameters, IdempotentParameterMismatch.
    moto stored the token and launched again, so a retry after a lost answer made a second
    instance. Tokens are per account and region."""
    from moto.core.responses import ActionResult

    token = self._get_param("ClientToken")
    if not token:
        return _ORIGINAL["EC2Response.run_instances"](self)
    tokens: dict[str, tuple[str, Any]] = self.ec2_backend.__dict__.setdefault("_bakery_run_tokens", {})
    fingerprint = json.dumps(
        sorted((key, value) for key, value in self.querystring.items() if key not in ("Action", "Version", "ClientToken")),
        sort_keys=True, default=str,
    )
    known = tokens.get(token)
    if known is not None:
        if known[0] != fingerprint:
            raise EC2ClientError(
                "IdempotentParameterMismatch",
                f"Client token {token} was already used with different request parameters",
            )
        return ActionResult(known[1])
    answer = _ORIGINAL["EC2Response.run_instances"](self)
    tokens[token] = (fingerprint, answer.result)
    return answer


def _r_register_image(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    image = self.ec2_backend.register_image(
        self._get_param("Name"),
        self._get_param("Description", ""),
        architecture=self._get_param("Architecture"),
        virtualization_type=self._get_param("VirtualizationType"),
        root_device_name=self._get_param("RootDeviceName"),
        block_device_mappings=self._get_param("BlockDeviceMappings", []),
        boot_mode=self._get_param("BootMode"),
        imds_support=self._get_param("ImdsSupport"),
        ena_support=self._get_param("EnaSupport"),
        tpm_support=self._get_param("TpmSupport"),
        tag_specifications=self._get_param("TagSpecifications", []),
    )
    return ActionResult({"ImageId": image.id})


def _r_enable_image_deprecation(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    self.ec2_backend.enable_image_deprecation(self._get_param("ImageId"), self._get_param("DeprecateAt"))
    return ActionResult({"Return": True})


def _r_disable_image_deprecation(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    self.ec2_backend.disable_image_deprecation(self._get_param("ImageId"))
    return ActionResult({"Return": True})


class _CachingPicker:
    """moto's attribute picker with the winning alias remembered per (class, member).

    moto tries up to a dozen aliases for every member of every object it serializes; with
    thousands of images that dominates DescribeImages. Objects of one class resolve a member
    to the same attribute, so the first resolution is reused (dicts are left to moto).
    """

    def __init__(self, response_transformers: dict[str, Any]) -> None:
        from moto.core.serialize import XFormedAttributePicker

        self._inner = XFormedAttributePicker(response_transformers=response_transformers)
        self._transformers = response_transformers
        self._resolved: dict[tuple[type, str], str] = {}

    def __call__(self, context: Any) -> Any:
        from moto.core.serialize import MISSING
        from moto.core.utils import get_value

        obj = context.obj
        if isinstance(obj, dict):
            return self._inner(context)
        cache_key = (type(obj), context.key)
        known = self._resolved.get(cache_key)
        value = MISSING
        if known is not None:
            value = get_value(obj, known, MISSING)
        if value is MISSING:
            for possible_key in self._inner.get_possible_keys(context):
                value = get_value(obj, possible_key, MISSING)
                if value is not MISSING:
                    self._resolved[cache_key] = possible_key
                    break
            else:
                value = None
        key_path = f"{context.key_path}.{context.key}"
        for suffix, transform in self._transformers.items():
            if key_path.endswith(suffix):
                return transform(value)
        return value


def _fast_result(result: dict[str, Any]) -> Any:
    from moto import settings as moto_settings
    from moto.core.responses import ActionResult

    class _FastActionResult(ActionResult):
        def execute_result(self, context: Any) -> Any:
            serializer = context.serializer_class(
                operation_model=context.operation_model,
                pretty_print=moto_settings.PRETTIFY_RESPONSES,
                value_picker=_PICKER,
            )
            serialized = serializer.serialize(self.result)
            return serialized["status_code"], serialized["headers"], serialized["body"]

    return _FastActionResult(result)


def _r_describe_snapshots(self: EC2Response) -> Any:
    """moto ignores OwnerIds; EC2 narrows to those owners (``self`` is the caller's account)."""
    from moto.core.responses import ActionResult

    snapshots = self.ec2_backend.describe_snapshots(
        snapshot_ids=self._get_param("SnapshotIds", []), filters=self._filters_from_querystring()
    )
    owners = self._get_param("OwnerIds", [])
    if owners:
        wanted = {self.ec2_backend.account_id if owner == "self" else owner for owner in owners}
        snapshots = [snapshot for snapshot in snapshots if snapshot.owner_id in wanted]
    return ActionResult({"Snapshots": snapshots})


def _r_modify_image_attribute(self: EC2Response) -> Any:
    """ModifyImageAttribute ImdsSupport=v2.0 (moto ignores it); anything else goes to moto."""
    from moto.core.responses import EmptyResult

    value = (self._get_param("ImdsSupport", {}) or {}).get("Value")
    if value is None:
        return _ORIGINAL["EC2Response.modify_image_attribute"](self)
    self.error_on_dryrun()
    image = _find_image(self.ec2_backend, self._get_param("ImageId"))
    if value != "v2.0":
        raise EC2ClientError("InvalidParameterValue", f"Value ({value}) for parameter ImdsSupport is invalid. Expected: 'v2.0'.")
    image.imds_support = "v2.0"
    return EmptyResult()


def _encode_token(after: str, query: str) -> str:
    raw = json.dumps({"after": after, "q": query}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str, query: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
        after = data["after"]
        same_query = data["q"] == query
    except (ValueError, KeyError, TypeError):
        raise EC2ClientError("InvalidPaginationToken", f"Invalid pagination token: {token}") from None
    if not same_query or not isinstance(after, str):
        raise EC2ClientError("InvalidPaginationToken", "The pagination token does not match this request.")
    return after


def _r_describe_images(self: EC2Response) -> Any:
    self.error_on_dryrun()
    ami_ids = self._get_param("ImageIds", [])
    filters = self._filters_from_querystring()
    owners = self._get_param("Owners", [])
    exec_users = self._get_param("ExecutableUsers", [])
    include_deprecated = _as_bool(self._get_param("IncludeDeprecated", False))
    max_results = self._get_param("MaxResults")
    next_token = self._get_param("NextToken")
    if max_results is not None:
        if ami_ids:
            raise EC2ClientError(
                "InvalidParameterCombination", "The parameter imageIdsSet cannot be used with the parameter maxResults"
            )
        max_results = int(max_results)
        if max_results < 1 or max_results > 1000:
            raise EC2ClientError(
                "InvalidParameterValue", f"Value ({max_results}) for parameter maxResults is invalid. Expect a value between 1 and 1000."
            )
    images = self.ec2_backend.describe_images(ami_ids=ami_ids, filters=filters, exec_users=exec_users, owners=owners)
    if not ami_ids and not include_deprecated:
        # EC2: deprecated images are hidden from everyone but their owner unless asked for
        now = _now()
        account = self.ec2_backend.account_id
        images = [image for image in images if image.owner_id == account or not _is_deprecated(image, now)]
    result: dict[str, Any] = {}
    if max_results is not None or next_token:
        query = json.dumps([sorted(filters.items()), sorted(owners), sorted(exec_users), include_deprecated], default=str)
        images = sorted(images, key=lambda image: image.id)
        if next_token:
            after = _decode_token(next_token, query)
            images = [image for image in images if image.id > after]
        limit = max_results or 1000
        if len(images) > limit:
            images = images[:limit]
            result["NextToken"] = _encode_token(images[-1].id, query)
    result["Images"] = images
    return _fast_result(result)


# ---------------------------------------------------------------------------------------------
# Instance timeline: `_state` becomes a property that finishes a transition once it is due.
# ---------------------------------------------------------------------------------------------
def _instance_state_get(self: Instance) -> Any:
    state = self.__dict__["_bakery_state"]
    transition = self.__dict__.get("_bakery_transition")
    if transition is not None and time.time() >= transition[0]:
        state.name = transition[1]
        state.code = _CODES[transition[1]]
        self.__dict__["_bakery_transition"] = None
    return state


def _instance_state_set(self: Instance, value: Any) -> None:
    self.__dict__["_bakery_state"] = value
    self.__dict__["_bakery_transition"] = None


def _begin_transition(instance: Instance, interim: str, final: str, delay_key: str) -> None:
    delay = float(STATE.get(delay_key))
    if delay <= 0:
        return
    state = instance.__dict__["_bakery_state"]
    state.name = interim
    state.code = _CODES[interim]
    instance.__dict__["_bakery_transition"] = (time.time() + delay, final)


def _wrap_instance(name: str, interim: str, final: str, delay_key: str) -> Any:
    original = getattr(Instance, name)
    _ORIGINAL[f"Instance.{name}"] = original

    def wrapper(self: Instance, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        previous = getattr(result, "name", None)
        if previous != final and self.__dict__["_bakery_state"].name == final:
            _begin_transition(self, interim, final, delay_key)
        return result

    wrapper.__name__ = name
    return wrapper


def _terminate_once(wrapped: Any) -> Any:
    """TerminateInstances is idempotent in EC2: an instance already shutting down or terminated is
    answered with its state and nothing else happens. moto tore it down again and failed on its
    network interface (InvalidNetworkInterfaceID.NotFound), so a retry after a lost answer failed."""

    def terminate(self: Instance, *args: Any, **kwargs: Any) -> Any:
        state = self._state
        if state.name in ("shutting-down", "terminated"):
            return copy.copy(state)
        return wrapped(self, *args, **kwargs)

    terminate.__name__ = "terminate"
    return terminate


def _instance_init(self: Instance, *args: Any, **kwargs: Any) -> None:
    _ORIGINAL["Instance.__init__"](self, *args, **kwargs)
    _begin_transition(self, "pending", "running", "instance_start_delay")


_ORIGINAL: dict[str, Any] = {}
_PICKER: Any = None


def _ami_filter_value(self: Ami, filter_name: str, method_name: Any = None) -> Any:
    """EC2 matches the creation-date filter as a glob on the ISO time (`2024-12-*`); moto
    compared only the exact timestamp object."""
    if filter_name == "creation-date":
        value = self.creation_date
        return value.strftime("%Y-%m-%dT%H:%M:%S.000Z") if isinstance(value, datetime) else str(value)
    return _ORIGINAL["Ami.get_filter_value"](self, filter_name, method_name)


def _volume_init(self: Any, *args: Any, **kwargs: Any) -> None:
    """EC2 answers every volume with a SnapshotId, empty for a volume not made from a snapshot;
    moto left the key out, which breaks clients that read it (amazon.aws.ec2_vol_info)."""
    _ORIGINAL["Volume.__init__"](self, *args, **kwargs)
    if self.snapshot_id is None:
        self.snapshot_id = ""


def install() -> None:
    """Patch moto's EC2 classes once."""
    global _INSTALLED, _PICKER
    if _INSTALLED:
        return
    _INSTALLED = True
    _PICKER = _CachingPicker(dict(EC2Response.RESPONSE_KEY_PATH_TO_TRANSFORMER))
    TaggedEC2Resource.get_tags = _get_tags

    _ORIGINAL["_load_amis"] = EC2Backend._load_amis
    _ORIGINAL["block_device_mappings"] = Ami.block_device_mappings
    Ami.state = property(_ami_state_get, _ami_state_set)
    Ami.deprecation_time = None
    Ami.imds_support = None
    Ami.ena_support = None
    Ami.tpm_support = None
    Ami.block_device_mappings = property(_block_device_mappings)
    _ORIGINAL["Ami.get_filter_value"] = Ami.get_filter_value
    Ami.get_filter_value = _ami_filter_value

    EC2Backend._load_amis = _load_amis
    EC2Backend.create_image = create_image
    EC2Backend.copy_image = copy_image
    EC2Backend.register_image = register_image
    EC2Backend.enable_image_deprecation = enable_image_deprecation
    EC2Backend.disable_image_deprecation = disable_image_deprecation

    EC2Response.create_image = _r_create_image
    EC2Response.copy_image = _r_copy_image
    EC2Response.register_image = _r_register_image
    EC2Response.describe_images = _r_describe_images
    EC2Response.describe_snapshots = _r_describe_snapshots
    EC2Response.enable_image_deprecation = _r_enable_image_deprecation
    EC2Response.disable_image_deprecation = _r_disable_image_deprecation
    _ORIGINAL["EC2Response.modify_image_attribute"] = EC2Response.modify_image_attribute
    EC2Response.modify_image_attribute = _r_modify_image_attribute
    _ORIGINAL["EC2Response.run_instances"] = EC2Response.run_instances
    EC2Response.run_instances = _r_run_instances

    _ORIGINAL["Volume.__init__"] = Volume.__init__
    Volume.__init__ = _volume_init
    _ORIGINAL["Instance.__init__"] = Instance.__init__
    Instance.__init__ = _instance_init
    Instance._state = property(_instance_state_get, _instance_state_set)
    Instance.start = _wrap_instance("start", "pending", "running", "instance_start_delay")
    Instance.stop = _wrap_instance("stop", "stopping", "stopped", "instance_stop_delay")
    Instance.terminate = _terminate_once(_wrap_instance("terminate", "shutting-down", "terminated", "instance_stop_delay"))

    from tools.local_aws import retire  # pylint: disable=import-outside-toplevel

    retire.install()

    from tools.local_aws import ssm  # pylint: disable=import-outside-toplevel

    ssm.install()

    from tools.local_aws import launch_templates  # pylint: disable=import-outside-toplevel

    launch_templates.install()
