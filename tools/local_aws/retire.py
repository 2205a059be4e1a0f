# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image retirement behaviour moto 5.x lacks: disable/enable, deregistration protection, snapshot
deletion with DeregisterImage, LastLaunchedTime, DescribeImageReferences, image block public
access, the DataType filter of SSM DescribeParameters, and Recycle Bin retention rules.

``install()`` patches moto's classes (called by patches.install()); ``rbin()`` serves the Recycle
Bin API (a REST service moto does not have) from the middleware; ``set_image()`` is the control
route that backdates an image or plants its last launch. State lives on moto's EC2 backend of
each account and region, so a moto reset clears it. README.md in this directory lists what each
gap fill does.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2 import models as ec2_models
from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError
from moto.ec2.models import EC2Backend
from moto.ec2.models.amis import Ami
from moto.ec2.responses import EC2Response

from tools.local_aws.state import STATE

_INSTALLED = False
_ORIGINAL: dict[str, Any] = {}
_REQUEST = threading.local()  # what the DescribeImages request being served asked for

PROTECTION_OFF = "disabled"
PROTECTION_ON = "enabled-without-cooldown"
PROTECTION_COOLDOWN = "enabled-with-cooldown"
COOLING_PREFIX = "disabled-after-"
BPA_BLOCK = "block-new-sharing"
BPA_OFF = "unblocked"
REFERENCE_TYPES = ("ec2:Instance", "ec2:LaunchTemplate", "ssm:Parameter", "imagebuilder:ImageRecipe",
                   "imagebuilder:ContainerRecipe")
INSTANCE_STATES = ("pending", "running", "shutting-down", "terminated", "stopping", "stopped")


class ControlError(ValueError):
    """A control-route request was refused."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_time(value: Any) -> datetime:
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _owned(backend: EC2Backend, image_id: str) -> Ami:
    image = backend.amis.get(image_id)
    if image is None:
        raise InvalidAMIIdError(image_id)
    if image.owner_id != backend.account_id:
        raise EC2ClientError("AuthFailure", f"Not authorized for image:{image_id}")
    return image


def _store(backend: Any, name: str, factory: Callable[[], Any]) -> Any:
    """Per-backend state of the gap fills (gone with moto's reset, like the backend itself)."""
    return backend.__dict__.setdefault(f"_bakery_{name}", factory())


# ---------------------------------------------------------------------------------------------
# Deregistration protection
# ---------------------------------------------------------------------------------------------
def protection(image: Ami) -> str:
    """The DeregistrationProtection value EC2 shows: disabled, enabled-without-cooldown,
    enabled-with-cooldown, or, for the cooldown after protection with cooldown was disabled,
    disabled-after-<time it ends>."""
    mode = image.__dict__.get("_bakery_protection")
    if mode:
        return mode
    until = image.__dict__.get("_bakery_protection_until")
    if until is not None and _now() < until:
        return COOLING_PREFIX + _iso(until)
    return PROTECTION_OFF


def enable_protection(self: EC2Backend, image_id: str, with_cooldown: bool) -> str:
    image = _owned(self, image_id)
    image.__dict__["_bakery_protection"] = PROTECTION_COOLDOWN if with_cooldown else PROTECTION_ON
    image.__dict__["_bakery_protection_until"] = None
    return protection(image)


def disable_protection(self: EC2Backend, image_id: str) -> str:
    image = _owned(self, image_id)
    if image.__dict__.get("_bakery_protection") == PROTECTION_COOLDOWN:
        image.__dict__["_bakery_protection_until"] = _now() + timedelta(seconds=float(STATE.get("protection_cooldown")))
    image.__dict__["_bakery_protection"] = None
    return protection(image)


# ---------------------------------------------------------------------------------------------
# Deregistration: protection, associated snapshots
# ---------------------------------------------------------------------------------------------
def _snapshots_of(image: Ami) -> list[Any]:
    snapshots = [image.ebs_snapshot] + list(image.__dict__.get("_bakery_extra_snapshots", []))
    seen: dict[str, Any] = {}
    for snapshot in snapshots:
        if snapshot is not None:
            seen.setdefault(snapshot.id, snapshot)
    return list(seen.values())


def deregister_image(self: EC2Backend, ami_id: str, delete_snapshots: bool = False) -> list[dict[str, str]]:
    """DeregisterImage: refused while protected (or cooling down); with DeleteAssociatedSnapshots
    the image's snapshots that no other image of the account uses are deleted (the others skipped)."""
    image = self.amis.get(ami_id)
    if image is not None:
        state = protection(image)
        if state != PROTECTION_OFF:
            raise EC2ClientError(
                "OperationNotPermitted",
                f"The image {ami_id} cannot be deregistered: deregistration protection is {state}.",
            )
    snapshots = _snapshots_of(image) if image is not None and delete_snapshots else []
    _ORIGINAL["deregister_image"](self, ami_id)
    results = []
    for snapshot in snapshots:
        users = [other.id for other in self.amis.values() if snapshot.id in {s.id for s in _snapshots_of(other)}]
        if users or snapshot.id not in self.snapshots:
            results.append({"SnapshotId": snapshot.id, "ReturnCode": "skipped"})
            continue
        self.snapshots.pop(snapshot.id, None)
        results.append({"SnapshotId": snapshot.id, "ReturnCode": "success"})
    return results


def _r_deregister_image(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    delete = str(self._get_param("DeleteAssociatedSnapshots", False)).lower() == "true"
    results = self.ec2_backend.deregister_image(self._get_param("ImageId"), delete_snapshots=delete)
    answer: dict[str, Any] = {"Return": True}
    if delete:
        answer["DeleteSnapshotResults"] = results
    return ActionResult(answer)


# ---------------------------------------------------------------------------------------------
# Disable / enable
# ---------------------------------------------------------------------------------------------
def disable_image(self: EC2Backend, ami_id: str) -> None:
    """EC2: a disabled image is private (every launch permission removed), cannot launch and is
    listed only with IncludeDisabled. Disabling a disabled image changes nothing."""
    image = _owned(self, ami_id)
    if image.state == "disabled":
        return
    if image.state != "available":
        raise EC2ClientError("IncorrectState", f"The image {ami_id} is {image.state}; only an available image can be disabled.")
    image.launch_permissions = []
    image.state = "disabled"


def enable_image(self: EC2Backend, ami_id: str) -> None:
    """EC2: the image is available again; the launch permissions it lost stay lost."""
    image = _owned(self, ami_id)
    if image.state == "disabled":
        image.state = "available"


def _describe_images_backend(self: EC2Backend, *args: Any, **kwargs: Any) -> Any:
    images = _ORIGINAL["describe_images"](self, *args, **kwargs)
    request = getattr(_REQUEST, "describe_images", None)
    if request is not None and not request["include_disabled"]:
        images = [image for image in images if image.state != "disabled"]
    return images


def _r_describe_images(self: EC2Response) -> Any:
    _REQUEST.describe_images = {"include_disabled": str(self._get_param("IncludeDisabled", False)).lower() == "true"}
    try:
        return _ORIGINAL["EC2Response.describe_images"](self)
    finally:
        _REQUEST.describe_images = None


def _r_disable_image(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    self.ec2_backend.disable_image(self._get_param("ImageId"))
    return ActionResult({"Return": True})


def _r_enable_image(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    self.ec2_backend.enable_image(self._get_param("ImageId"))
    return ActionResult({"Return": True})


# ---------------------------------------------------------------------------------------------
# Launch permissions: block public access, disabled images
# ---------------------------------------------------------------------------------------------
def block_public_access(backend: EC2Backend) -> str:
    return _store(backend, "image_bpa", lambda: [BPA_OFF])[0]


def _adds_public(response: EC2Response) -> bool:
    added = (response._get_param("LaunchPermission", {}) or {}).get("Add", []) or []
    if any(entry.get("Group") == "all" for entry in added):
        return True
    return response._get_param("OperationType") == "add" and "all" in (response._get_param("UserGroups", []) or [])


def _adds_any(response: EC2Response) -> bool:
    return bool((response._get_param("LaunchPermission", {}) or {}).get("Add")) or response._get_param("OperationType") == "add"


def _r_modify_image_attribute(self: EC2Response) -> Any:
    """A disabled image cannot be shared; under image block public access a new public share is refused."""
    image_id = self._get_param("ImageId")
    image = self.ec2_backend.amis.get(image_id)
    if image is not None and image.state == "disabled" and _adds_any(self):
        raise EC2ClientError("OperationNotPermitted", f"The image {image_id} is disabled and cannot be shared.")
    if _adds_public(self) and block_public_access(self.ec2_backend) == BPA_BLOCK:
        raise EC2ClientError(
            "OperationNotPermitted",
            f"The image {image_id} cannot be made public: image block public access is {BPA_BLOCK} in {self.region}.",
        )
    return _ORIGINAL["EC2Response.modify_image_attribute"](self)


def _r_get_image_block_public_access_state(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    return ActionResult({"ImageBlockPublicAccessState": block_public_access(self.ec2_backend), "ManagedBy": "account"})


def _r_enable_image_block_public_access(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    value = self._get_param("ImageBlockPublicAccessState")
    if value != BPA_BLOCK:
        raise EC2ClientError("InvalidParameterValue", f"Value ({value}) for parameter ImageBlockPublicAccessState is invalid.")
    _store(self.ec2_backend, "image_bpa", lambda: [BPA_OFF])[0] = BPA_BLOCK
    return ActionResult({"ImageBlockPublicAccessState": BPA_BLOCK})


def _r_disable_image_block_public_access(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    _store(self.ec2_backend, "image_bpa", lambda: [BPA_OFF])[0] = BPA_OFF
    return ActionResult({"ImageBlockPublicAccessState": BPA_OFF})


# ---------------------------------------------------------------------------------------------
# Deregistration protection actions, DescribeImageAttribute
# ---------------------------------------------------------------------------------------------
def _r_enable_protection(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    cooldown = str(self._get_param("WithCooldown", False)).lower() == "true"
    return ActionResult({"Return": enable_protection(self.ec2_backend, self._get_param("ImageId"), cooldown)})


def _r_disable_protection(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    return ActionResult({"Return": disable_protection(self.ec2_backend, self._get_param("ImageId"))})


def _r_describe_image_attribute(self: EC2Response) -> Any:
    """deregistrationProtection and lastLaunchedTime as EC2 answers them; the rest as moto does."""
    from moto.core.responses import ActionResult

    attribute = self._get_param("Attribute")
    if attribute not in ("deregistrationProtection", "lastLaunchedTime"):
        return _ORIGINAL["EC2Response.describe_image_attribute"](self)
    image_id = self._get_param("ImageId")
    image = self.ec2_backend.amis.get(image_id)
    if image is None:
        raise InvalidAMIIdError(image_id)
    if attribute == "deregistrationProtection":
        return ActionResult({"ImageId": image_id, "DeregistrationProtection": {"Value": protection(image)}})
    launched = last_launched(image)
    return ActionResult({"ImageId": image_id, "LastLaunchedTime": {"Value": launched} if launched else {}})


# ---------------------------------------------------------------------------------------------
# LastLaunchedTime
# ---------------------------------------------------------------------------------------------
def last_launched(image: Ami) -> str | None:
    """The image's LastLaunchedTime: the latest launch at least last_launched_delay seconds ago."""
    launches = image.__dict__.get("_bakery_launches") or []
    visible = [moment for moment, shown_at in launches if shown_at <= time.time()]
    planted = image.__dict__.get("_bakery_last_launched")
    if planted is not None:
        visible.append(planted)
    return _iso(max(visible)) if visible else None


def _run_instances(self: EC2Backend, image_id: str, *args: Any, **kwargs: Any) -> Any:
    """A disabled image cannot launch; every launch is recorded for LastLaunchedTime."""
    image = self.amis.get(image_id) if image_id else None
    if image is not None and image.state == "disabled":
        raise EC2ClientError("InvalidAMIID.Unavailable", f"The image id '[{image_id}]' is disabled")
    reservation = _ORIGINAL["run_instances"](self, image_id, *args, **kwargs)
    delay = float(STATE.get("last_launched_delay"))
    now = _now()
    for instance in reservation.instances:
        launched = self.amis.get(instance.image_id)
        if launched is not None:
            launched.__dict__.setdefault("_bakery_launches", []).append((now, time.time() + delay))
    return reservation


# ---------------------------------------------------------------------------------------------
# DescribeImageReferences
# ---------------------------------------------------------------------------------------------
def _options(entry: dict[str, Any]) -> dict[str, list[str]]:
    return {option.get("OptionName"): list(option.get("OptionValues") or []) for option in entry.get("ResourceTypeOptions") or []}


def image_references(backend: EC2Backend, image_ids: list[str], kinds: dict[str, dict[str, list[str]]]) -> list[dict[str, str]]:
    """Which instances, launch templates and SSM parameters of the account refer to these images."""
    from moto.ssm.models import ssm_backends

    region, account = backend.region_name, backend.account_id
    wanted = set(image_ids)
    found: list[dict[str, str]] = []
    if "ec2:Instance" in kinds:
        states = set(kinds["ec2:Instance"].get("state-name") or INSTANCE_STATES)
        for instance in backend.all_instances():
            if instance.image_id in wanted and instance._state.name in states:
                found.append({"ImageId": instance.image_id, "ResourceType": "ec2:Instance",
                              "Arn": f"arn:aws:ec2:{region}:{account}:instance/{instance.id}"})
    if "ec2:LaunchTemplate" in kinds:
        depth = int((kinds["ec2:LaunchTemplate"].get("version-depth") or ["10"])[0])
        for template in backend.launch_templates.values():
            seen = set()
            for version in template.versions[-depth:]:
                if version.image_id in wanted and version.image_id not in seen:
                    seen.add(version.image_id)
                    found.append({"ImageId": version.image_id, "ResourceType": "ec2:LaunchTemplate",
                                  "Arn": f"arn:aws:ec2:{region}:{account}:launch-template/{template.id}"})
    if "ssm:Parameter" in kinds:
        ssm = ssm_backends[account][region]
        for name in list(ssm._parameters):
            parameter = ssm.get_parameter(name)
            if parameter is not None and parameter.value in wanted:
                path = name if name.startswith("/") else "/" + name
                found.append({"ImageId": parameter.value, "ResourceType": "ssm:Parameter",
                              "Arn": f"arn:aws:ssm:{region}:{account}:parameter{path}"})
    return sorted(found, key=lambda item: (item["ImageId"], item["ResourceType"], item["Arn"]))


def _r_describe_image_references(self: EC2Response) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    image_ids = self._get_param("ImageIds", []) or []
    if not 1 <= len(image_ids) <= 10:
        raise EC2ClientError("InvalidParameterValue", "ImageIds: give between 1 and 10 image IDs.")
    for image_id in image_ids:
        if image_id not in self.ec2_backend.amis:
            raise InvalidAMIIdError(image_id)
    kinds: dict[str, dict[str, list[str]]] = {}
    for entry in self._get_param("ResourceTypes", []) or []:
        kind = entry.get("ResourceType")
        if kind not in REFERENCE_TYPES:
            raise EC2ClientError("InvalidParameterValue", f"Value ({kind}) for parameter ResourceType is invalid.")
        kinds[kind] = _options(entry)
    if str(self._get_param("IncludeAllResourceTypes", False)).lower() == "true":
        for kind in REFERENCE_TYPES:
            kinds.setdefault(kind, {})
    if not kinds:
        raise EC2ClientError("InvalidParameterCombination", "Specify ResourceTypes or IncludeAllResourceTypes.")
    found = image_references(self.ec2_backend, image_ids, kinds)
    start = int(self._get_param("NextToken") or 0)
    size = int(self._get_param("MaxResults") or 1000)
    page = found[start:start + size]
    answer: dict[str, Any] = {"ImageReferences": page}
    if start + size < len(found):
        answer["NextToken"] = str(start + size)
    return ActionResult(answer)


# ---------------------------------------------------------------------------------------------
# SSM DescribeParameters: the DataType filter
# ---------------------------------------------------------------------------------------------
def _ssm_describe_parameters(self: Any, filters: Any, parameter_filters: Any) -> Any:
    data_types = None
    rest = []
    for item in parameter_filters or []:
        if item.get("Key") == "DataType":
            data_types = set(item.get("Values") or [])
        else:
            rest.append(item)
    found = _ORIGINAL["ssm.describe_parameters"](self, filters, rest)
    if data_types is not None:
        found = [parameter for parameter in found if (parameter.data_type or "text") in data_types]
    return found


# ---------------------------------------------------------------------------------------------
# Control route: backdate an image, plant a launch
# ---------------------------------------------------------------------------------------------
def set_image(body: dict[str, Any]) -> dict[str, Any]:
    """POST /_bakery/images {"region", "image_id", "creation_date"?, "last_launched_time"?}."""
    if not isinstance(body, dict):
        raise ControlError("images: the body must be a JSON object")
    unknown = sorted(set(body) - {"region", "image_id", "creation_date", "last_launched_time", "account_id"})
    if unknown:
        raise ControlError(f"images: unknown key(s) {', '.join(unknown)}")
    region, image_id = body.get("region"), body.get("image_id")
    if not isinstance(region, str) or not isinstance(image_id, str):
        raise ControlError("images: region and image_id are required strings")
    backend = ec2_models.ec2_backends[body.get("account_id") or DEFAULT_ACCOUNT_ID][region]
    image = backend.amis.get(image_id)
    if image is None:
        raise ControlError(f"images: no image {image_id} in {region}")
    try:
        if body.get("creation_date") is not None:
            image.creation_date = _parse_time(body["creation_date"])
        if "last_launched_time" in body:
            value = body["last_launched_time"]
            image.__dict__["_bakery_last_launched"] = _parse_time(value) if value is not None else None
            image.__dict__["_bakery_launches"] = []
    except ValueError as error:
        raise ControlError(f"images: {error}") from None
    return {"image_id": image_id, "creation_date": _iso(image.creation_date), "last_launched_time": last_launched(image)}


# ---------------------------------------------------------------------------------------------
# Recycle Bin (rbin, REST-JSON): retention rules
# ---------------------------------------------------------------------------------------------
RBIN_TYPES = ("EBS_SNAPSHOT", "EC2_IMAGE", "EBS_VOLUME")
RBIN_UNITS = ("DAYS",)


class _RbinError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _rbin_rules(region: str) -> dict[str, dict[str, Any]]:
    backend = ec2_models.ec2_backends[DEFAULT_ACCOUNT_ID][region]
    return _store(backend, "rbin_rules", dict)


def _rule_view(rule: dict[str, Any], summary: bool = False) -> dict[str, Any]:
    if summary:
        keys = ("Identifier", "Description", "RetentionPeriod", "LockState", "RuleArn")
    else:
        keys = ("Identifier", "Description", "ResourceType", "RetentionPeriod", "ResourceTags", "Status",
                "LockState", "RuleArn", "ExcludeResourceTags")
    return {key: rule[key] for key in keys if rule.get(key) is not None}


def _rbin_create(region: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    kind = body.get("ResourceType")
    if kind not in RBIN_TYPES:
        raise _RbinError(400, "ValidationException", f"ResourceType must be one of {', '.join(RBIN_TYPES)}")
    period = body.get("RetentionPeriod") or {}
    value, unit = period.get("RetentionPeriodValue"), period.get("RetentionPeriodUnit")
    if unit not in RBIN_UNITS or not isinstance(value, int) or not 1 <= value <= 3650:
        raise _RbinError(400, "ValidationException", "RetentionPeriod: 1-3650 DAYS")
    tags = body.get("ResourceTags") or []
    excluded = body.get("ExcludeResourceTags") or []
    if tags and excluded:
        raise _RbinError(400, "ValidationException", "ResourceTags and ExcludeResourceTags cannot be combined")
    identifier = uuid.uuid4().hex[:11]
    rule = {
        "Identifier": identifier, "Description": body.get("Description") or "", "ResourceType": kind,
        "RetentionPeriod": {"RetentionPeriodValue": value, "RetentionPeriodUnit": unit},
        "ResourceTags": tags or None, "ExcludeResourceTags": excluded or None, "Status": "available",
        "LockState": "unlocked", "Tags": body.get("Tags") or [],
        "RuleArn": f"arn:aws:rbin:{region}:{DEFAULT_ACCOUNT_ID}:rule/{identifier}",
    }
    _rbin_rules(region)[identifier] = rule
    return 201, dict(_rule_view(rule), Tags=rule["Tags"])


def _tags_match(wanted: list[dict[str, Any]], have: list[dict[str, Any]]) -> bool:
    pairs = {(tag.get("ResourceTagKey"), tag.get("ResourceTagValue") or "") for tag in have or []}
    return all((tag.get("ResourceTagKey"), tag.get("ResourceTagValue") or "") in pairs for tag in wanted)


def _rbin_list(region: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    kind = body.get("ResourceType")
    if kind not in RBIN_TYPES:
        raise _RbinError(400, "ValidationException", f"ResourceType must be one of {', '.join(RBIN_TYPES)}")
    rules = [rule for _id, rule in sorted(_rbin_rules(region).items()) if rule["ResourceType"] == kind]
    if body.get("ResourceTags"):
        rules = [rule for rule in rules if rule.get("ResourceTags") and _tags_match(body["ResourceTags"], rule["ResourceTags"])]
    start = int(body.get("NextToken") or 0)
    size = int(body.get("MaxResults") or 100)
    answer: dict[str, Any] = {"Rules": [_rule_view(rule, summary=True) for rule in rules[start:start + size]]}
    if start + size < len(rules):
        answer["NextToken"] = str(start + size)
    return 200, answer


def _rbin_get(region: str, identifier: str) -> tuple[int, dict[str, Any]]:
    rule = _rbin_rules(region).get(identifier)
    if rule is None:
        raise _RbinError(404, "ResourceNotFoundException", f"Rule {identifier} not found")
    return 200, _rule_view(rule)


def _rbin_delete(region: str, identifier: str) -> tuple[int, dict[str, Any]]:
    if _rbin_rules(region).pop(identifier, None) is None:
        raise _RbinError(404, "ResourceNotFoundException", f"Rule {identifier} not found")
    return 204, {}


def rbin(environ: dict[str, Any], body: bytes, start_response: Callable[..., Any], region: str | None) -> list[bytes]:
    """Serve CreateRule (POST /rules), ListRules (POST /list-rules), GetRule and DeleteRule (GET and DELETE
    /rules/<id>) of the Recycle Bin service in the request's region."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "").rstrip("/")
    region = region or "us-east-1"
    try:
        payload = json.loads(body.decode("utf-8") or "{}") if body else {}
        if (method, path) == ("POST", "/rules"):
            status, answer = _rbin_create(region, payload)
        elif (method, path) == ("POST", "/list-rules"):
            status, answer = _rbin_list(region, payload)
        elif path.startswith("/rules/") and method == "GET":
            status, answer = _rbin_get(region, path[len("/rules/"):])
        elif path.startswith("/rules/") and method == "DELETE":
            status, answer = _rbin_delete(region, path[len("/rules/"):])
        else:
            raise _RbinError(400, "ValidationException", f"{method} {path} is not modelled by the local endpoint")
    except ValueError as error:
        status, answer = 400, {"Message": f"malformed request: {error}"}
        headers = [("x-amzn-ErrorType", "ValidationException")]
        return _json(start_response, status, answer, headers)
    except _RbinError as error:
        return _json(start_response, error.status, {"Message": error.message}, [("x-amzn-ErrorType", error.code)])
    return _json(start_response, status, answer, [])


def _json(start_response: Callable[..., Any], status: int, payload: Any, headers: list[tuple[str, str]]) -> list[bytes]:
    reasons = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found"}
    data = b"" if status == 204 else json.dumps(payload).encode()
    response_headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                        ("x-amzn-RequestId", str(uuid.uuid4()))]
    start_response(f"{status} {reasons[status]}", response_headers + headers)
    return [data]


# ---------------------------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------------------------
def install() -> None:
    """Patch moto once; after patches.install() (this wraps some of its overrides)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    from moto.ssm.models import SimpleSystemManagerBackend

    Ami.deregistration_protection = property(protection)
    Ami.last_launched_time = property(last_launched)

    _ORIGINAL["deregister_image"] = EC2Backend.deregister_image
    EC2Backend.deregister_image = deregister_image
    EC2Backend.disable_image = disable_image
    EC2Backend.enable_image = enable_image
    _ORIGINAL["describe_images"] = EC2Backend.describe_images
    EC2Backend.describe_images = _describe_images_backend
    _ORIGINAL["run_instances"] = EC2Backend.run_instances
    EC2Backend.run_instances = _run_instances

    EC2Response.deregister_image = _r_deregister_image
    EC2Response.disable_image = _r_disable_image
    EC2Response.enable_image = _r_enable_image
    _ORIGINAL["EC2Response.describe_images"] = EC2Response.describe_images
    EC2Response.describe_images = _r_describe_images
    _ORIGINAL["EC2Response.modify_image_attribute"] = EC2Response.modify_image_attribute
    EC2Response.modify_image_attribute = _r_modify_image_attribute
    _ORIGINAL["EC2Response.describe_image_attribute"] = EC2Response.describe_image_attribute
    EC2Response.describe_image_attribute = _r_describe_image_attribute
    EC2Response.enable_image_deregistration_protection = _r_enable_protection
    EC2Response.disable_image_deregistration_protection = _r_disable_protection
    EC2Response.describe_image_references = _r_describe_image_references
    EC2Response.get_image_block_public_access_state = _r_get_image_block_public_access_state
    EC2Response.enable_image_block_public_access = _r_enable_image_block_public_access
    EC2Response.disable_image_block_public_access = _r_disable_image_block_public_access

    _ORIGINAL["ssm.describe_parameters"] = SimpleSystemManagerBackend.describe_parameters
    SimpleSystemManagerBackend.describe_parameters = _ssm_describe_parameters
