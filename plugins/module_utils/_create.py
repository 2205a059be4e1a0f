# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The core of bakery.ami.ami_create: turn an instance (CreateImage) or an EBS snapshot
# (RegisterImage) into an image, idempotent by name.
#
# An image name is unique per account and region, and the tag bakery:build-id says which bake
# made an image. So the task first looks the name up among this account's images:
# - same build-id: the image is adopted (a rerun), and only what is missing is brought in line
#   (tags, snapshot tags, deprecation time, IMDSv2);
# - another build-id: the task fails and names the image that holds the name;
# - no image: it is created. A create whose first attempt was served but whose answer was lost
#   is retried by AWSRetry and then answered InvalidAMIName.Duplicate: the name is looked up
#   again and the image adopted when its build-id is ours.
#
# Pending tags (such as bakery:expires-at) mark an image as unfinished, so that a sweep removes it
# when the run that made it dies: a new image and its snapshots are born with them, and once the
# image is available (and, with the copy option, every copy is) they come off all of them in one
# DeleteTags per region. An adopted image that still carries one (its run was killed before the
# end) loses them the same way; one without them is left as it is.

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import time
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _copy_request
from ansible_collections.bakery.ami.plugins.module_utils import _protect
from ansible_collections.bakery.ami.plugins.module_utils import _share
from ansible_collections.bakery.ami.plugins.module_utils import _tags
from ansible_collections.bakery.ami.plugins.module_utils import _time
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils import _waiter
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._images import snapshot_ids as image_snapshot_ids
from ansible_collections.bakery.ami.plugins.module_utils._images import tag_list
from ansible_collections.bakery.ami.plugins.module_utils._images import tag_spec as _tag_spec
from ansible_collections.bakery.ami.plugins.module_utils._images import tags_of as image_tags

BUILD_ID_TAG = _tags.BUILD_ID
DUPLICATE_NAME = "InvalidAMIName.Duplicate"
SOURCE_STATES = ("running", "stopped")
# Provisioned IOPS ranges per volume type (EBS limits).
IOPS_RANGES = {"gp3": (3000, 80000), "io1": (100, 64000), "io2": (100, 256000)}
THROUGHPUT_RANGE = (125, 2000)
# How long to look for an image that is known to exist (a Duplicate answer) or was just created.
VISIBLE_TIMEOUT = 120


class CreateError(BakeryError):
    """A user-level failure: the message names the option and the rule."""


# ---------------------------------------------------------------------------------------------
# Input


def _validate_mappings(mappings: list, snapshot_mode: bool, root_device_name: str | None) -> list:
    errors = []
    seen = set()
    for index, mapping in enumerate(mappings or []):
        where = f"block_device_mappings[{index}]"
        device = mapping.get("device_name")
        error = _validate.device_name(f"{where}.device_name", device)
        if error:
            errors.append(error)
            continue
        if device in seen:
            errors.append(f"{where}.device_name: '{device}' appears more than once")
        seen.add(device)
        volume_type = mapping.get("volume_type")
        iops = mapping.get("iops")
        throughput = mapping.get("throughput")
        if iops is not None:
            if volume_type not in IOPS_RANGES:
                errors.append(f"{where}.iops: only io1, io2 and gp3 volumes take provisioned IOPS (volume_type is '{volume_type}')")
            else:
                low, high = IOPS_RANGES[volume_type]
                if not low <= iops <= high:
                    errors.append(f"{where}.iops: {volume_type} volumes take {low}-{high} IOPS, got {iops}")
        elif volume_type in ("io1", "io2"):
            errors.append(f"{where}.iops: {volume_type} volumes need provisioned IOPS")
        if throughput is not None:
            if volume_type != "gp3":
                errors.append(f"{where}.throughput: only gp3 volumes take a throughput (volume_type is '{volume_type}')")
            elif not THROUGHPUT_RANGE[0] <= throughput <= THROUGHPUT_RANGE[1]:
                errors.append(f"{where}.throughput: gp3 throughput is {THROUGHPUT_RANGE[0]}-{THROUGHPUT_RANGE[1]} MiB/s, got {throughput}")
        size = mapping.get("volume_size")
        if size is not None and not 1 <= size <= 65536:
            errors.append(f"{where}.volume_size: must be 1-65536 GiB, got {size}")
        if mapping.get("kms_key_id") is not None:
            errors.append(_validate.kms_key(f"{where}.kms_key_id", mapping["kms_key_id"]))
            if mapping.get("encrypted") is False:
                errors.append(f"{where}.kms_key_id: a KMS key needs encrypted: true")
        if snapshot_mode and device != root_device_name and size is None:
            errors.append(
                f"{where}.volume_size: a volume other than the root ({root_device_name}) of an image registered "
                "from a snapshot starts empty and needs a size"
            )
    return [error for error in errors if error]


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def tag_sources(params: dict) -> dict:
    """Every source of the tags a new image and its snapshots get: {resource: [(label, tags), ...]}.

    The image: tags, build_id (bakery:build-id) and pending_tags (or copy.pending_tags: the tags
    that mark the image until it, and every copy, is available); its snapshots: snapshot_tags (or
    tags), build_id and the pending tags. Values that are not dictionaries are left out (their own
    rule says why).
    """
    as_dict = _as_dict
    build_id = params.get("build_id")
    build = [("build_id", {BUILD_ID_TAG: build_id})] if build_id is not None else []
    if params.get("pending_tags") is not None:
        pending = [("pending_tags", as_dict(params.get("pending_tags")))]
    else:
        pending = [("copy.pending_tags", as_dict(as_dict(params.get("copy")).get("pending_tags")))]
    if params.get("snapshot_tags") is None:
        snapshot = [("tags", as_dict(params.get("tags")))]
    else:
        snapshot = [("snapshot_tags", as_dict(params.get("snapshot_tags")))]
    return {
        "image": [("tags", as_dict(params.get("tags")))] + build + pending,
        "snapshot": snapshot + build + pending,
    }


def validate(params: dict, now: datetime.datetime | None = None) -> list:
    """Every problem with the options, found without any API call."""
    errors = [_validate.ami_name("name", params.get("name"))]
    instance_id = params.get("instance_id")
    snapshot_id = params.get("snapshot_id")
    if instance_id is None and snapshot_id is None:
        errors.append("instance_id or snapshot_id: one of them is required")
    if instance_id is not None and snapshot_id is not None:
        errors.append("instance_id and snapshot_id: give only one of them")
    if instance_id is not None:
        errors.append(_validate.resource_id("instance_id", instance_id, "instance"))
        for option in ("architecture", "root_device_name", "boot_mode", "ena_support"):
            if params.get(option) is not None:
                errors.append(f"{option}: applies only to images registered from a snapshot (snapshot_id)")
    if snapshot_id is not None:
        errors.append(_validate.resource_id("snapshot_id", snapshot_id, "snapshot"))
        if params.get("stop_instance"):
            errors.append("stop_instance: applies only to images created from an instance (instance_id)")
        if params.get("terminate_instance"):
            errors.append("terminate_instance: applies only to images created from an instance (instance_id)")
        if params.get("reboot") is False:
            errors.append("reboot: applies only to images created from an instance (instance_id)")
        if params.get("root_device_name") is not None:
            errors.append(_validate.device_name("root_device_name", params["root_device_name"]))
    if params.get("terminate_instance") and params.get("wait") is False:
        # the instance goes once the image is available: without waiting that moment is not seen
        errors.append("terminate_instance: needs wait=true (the instance is terminated once the image is available)")
    description = params.get("description")
    if description is not None and len(description) > 255:
        errors.append(f"description: at most 255 characters, got {len(description)}")
    tag_errors = [_validate.tags("tags", params.get("tags")), _validate.tags("snapshot_tags", params.get("snapshot_tags"))]
    errors.extend(tag_errors)
    errors.append(_validate.expires_tag("tags", params.get("tags"), now))
    errors.append(_validate.expires_tag("snapshot_tags", params.get("snapshot_tags"), now))
    errors.extend(_pending_errors(params, now))
    build_id = params.get("build_id")
    if build_id is not None:
        if not isinstance(build_id, str) or not build_id:
            errors.append("build_id: must be 1-256 characters (it is the value of the tag bakery:build-id)")
        else:
            errors.append(_validate.tag_value("build_id", BUILD_ID_TAG, build_id))
    if not any(tag_errors):
        sources = tag_sources(params)
        errors.append(_validate.tag_total("tags", "image", sources["image"]))
        errors.append(_validate.tag_total("snapshot_tags" if params.get("snapshot_tags") is not None else "tags",
                                          "image's snapshots", sources["snapshot"]))
    for option in ("tags", "snapshot_tags"):
        given = (params.get(option) or {}).get(BUILD_ID_TAG)
        if given is not None and build_id is not None and given != build_id:
            errors.append(f"{option}: the tag {BUILD_ID_TAG} is '{given}' but build_id is '{build_id}'; set only build_id")
    if params.get("deprecate_at") is not None:
        errors.append(_validate.parse_time("deprecate_at", params["deprecate_at"])[1])
    errors.extend(
        _validate_mappings(
            params.get("block_device_mappings") or [],
            snapshot_id is not None,
            params.get("root_device_name") or "/dev/xvda",
        )
    )
    if params.get("wait_timeout") is not None and params["wait_timeout"] < 1:
        errors.append(f"wait_timeout: must be at least 1 second, got {params['wait_timeout']}")
    errors.extend(_protect.errors(params))
    return [error for error in errors if error]


def wanted_protection(request: CreateRequest) -> str | None:
    """The DeregistrationProtection the image must show, or None when the task leaves it as it is."""
    return _protect.wanted({"protect": request.protect, "protect_cooldown": request.protect_cooldown})


def _pending_errors(params: dict, now: datetime.datetime | None) -> list:
    pending = params.get("pending_tags")
    if pending is None:
        return []
    error = _validate.tags("pending_tags", pending)
    if error:
        return [error]
    errors = []
    for key in sorted(pending):
        for option in ("tags", "snapshot_tags"):
            if key in _as_dict(params.get(option)):
                errors.append(f"pending_tags: '{key}' is also in {option}; a tag is either kept or removed when done, not both")
        if key == BUILD_ID_TAG:
            errors.append(f"pending_tags: '{key}' comes from build_id and stays on the image; leave it out of pending_tags")
    errors.append(_validate.expires_tag("pending_tags", pending, now))
    copy = params.get("copy")
    given = _as_dict(copy).get("pending_tags")
    if given is not None and given != pending:
        errors.append(
            "pending_tags and copy.pending_tags: give the pending tags once, as pending_tags (the copies get them too)"
        )
    return errors


def pending_tags(params: dict) -> dict:
    """The pending tags of a task: pending_tags, else copy.pending_tags."""
    if params.get("pending_tags") is not None:
        return dict(params["pending_tags"])
    return dict(_as_dict(_as_dict(params.get("copy")).get("pending_tags")))


# ---------------------------------------------------------------------------------------------
# The typed request: every option checked once, by build_request


@dataclasses.dataclass(frozen=True)
class Device:
    """One item of block_device_mappings."""

    device_name: str
    volume_size: int | None = None
    volume_type: str | None = None
    iops: int | None = None
    throughput: int | None = None
    kms_key_id: str | None = None
    encrypted: bool | None = None
    delete_on_termination: bool | None = None

    @classmethod
    def from_option(cls, mapping: dict) -> "Device":
        return cls(
            device_name=mapping["device_name"],
            volume_size=mapping.get("volume_size"),
            volume_type=mapping.get("volume_type"),
            iops=mapping.get("iops"),
            throughput=mapping.get("throughput"),
            kms_key_id=mapping.get("kms_key_id"),
            encrypted=mapping.get("encrypted"),
            delete_on_termination=mapping.get("delete_on_termination"),
        )


@dataclasses.dataclass(frozen=True)
class CreateRequest:
    """A checked ami_create request: build_request held every rule before it was made."""

    name: str
    instance_id: str | None = None
    snapshot_id: str | None = None
    description: str | None = None
    reboot: bool = True
    stop_instance: bool = False
    terminate_instance: bool = False
    architecture: str | None = None
    root_device_name: str | None = None
    boot_mode: str | None = None
    ena_support: bool | None = None
    tags: dict = dataclasses.field(default_factory=dict)
    snapshot_tags: dict | None = None  # None: the snapshots get tags
    pending_tags: dict = dataclasses.field(default_factory=dict)  # pending_tags, else copy.pending_tags
    build_id: str | None = None
    imds_support: str = "v2.0"
    deprecate_at: str | None = None  # as given (messages quote it); ImageCreator rounds it to the minute
    protect: bool = False
    protect_cooldown: bool = False
    block_device_mappings: tuple[Device, ...] = ()
    launch_permissions: list = dataclasses.field(default_factory=list)  # LaunchPermission entries
    share_user_ids: list = dataclasses.field(default_factory=list)  # accounts the snapshots are shared with
    copy: _copy_request.CopyRequest | None = None  # the copy option, checked
    wait: bool = True
    wait_timeout: int = 3600

    @property
    def snapshot_mode(self) -> bool:
        return self.snapshot_id is not None

    @property
    def root_device(self) -> str:
        return self.root_device_name or "/dev/xvda"


def build_request(params: dict, region: str | None = None, known_regions: t.Iterable[str] | None = None,
                  now: datetime.datetime | None = None) -> CreateRequest:
    """Check every option of ami_create (the copy option included) and return the request.

    Raises CreateError listing every problem (``errors`` in its result), before any API call.
    """
    errors = validate(params, now)
    permissions, share_user_ids = _share.parse(params, errors)
    copy = params.get("copy")
    if copy is not None and copy.get("launch_permissions") is None and copy.get("share_snapshots") is None:
        # the copies are shared as the image is, unless copy says otherwise
        copy = dict(copy, launch_permissions=params.get("launch_permissions"), share_snapshots=params.get("share_snapshots"))
    if copy is not None and params.get("pending_tags") is not None and not errors:
        # the copies carry the pending tags too, and the copy step takes them off everything
        copy = dict(copy, pending_tags=params["pending_tags"])
    copy_request = None
    if copy is not None:
        try:
            copy_request = _copy_request.request_for_new_image(dict(params, copy=copy), region, known_regions, now)
        except _copy_request.InputError as e:
            errors.append(e.msg)
    if errors:
        raise CreateError("; ".join(errors), {"errors": errors})
    return request_of(params, permissions, share_user_ids, copy_request)


def request_of(params: dict, launch_permissions: list | None = None, share_user_ids: list | None = None,
               copy: _copy_request.CopyRequest | None = None) -> CreateRequest:
    """The request the options make, without checking them: build_request checks first (tests use
    this to reach the guards ImageCreator keeps for itself)."""
    defaults = CreateRequest(name=params["name"])

    def given(option: str) -> t.Any:
        value = params.get(option)
        return getattr(defaults, option) if value is None else value

    return CreateRequest(
        name=params["name"],
        instance_id=params.get("instance_id"),
        snapshot_id=params.get("snapshot_id"),
        description=params.get("description"),
        reboot=given("reboot"),
        stop_instance=given("stop_instance"),
        terminate_instance=given("terminate_instance"),
        architecture=params.get("architecture"),
        root_device_name=params.get("root_device_name"),
        boot_mode=params.get("boot_mode"),
        ena_support=params.get("ena_support"),
        tags=dict(params.get("tags") or {}),
        snapshot_tags=None if params.get("snapshot_tags") is None else dict(params["snapshot_tags"]),
        pending_tags=pending_tags(params),
        build_id=params.get("build_id"),
        imds_support=given("imds_support"),
        deprecate_at=params.get("deprecate_at"),
        protect=given("protect"),
        protect_cooldown=given("protect_cooldown"),
        block_device_mappings=tuple(Device.from_option(mapping) for mapping in params.get("block_device_mappings") or []),
        launch_permissions=list(launch_permissions or []),
        share_user_ids=list(share_user_ids or []),
        copy=copy,
        wait=given("wait"),
        wait_timeout=given("wait_timeout"),
    )


def _ebs(device: Device) -> dict:
    ebs: dict = {}
    if device.volume_size is not None:
        ebs["VolumeSize"] = device.volume_size
    if device.volume_type is not None:
        ebs["VolumeType"] = device.volume_type
    if device.iops is not None:
        ebs["Iops"] = device.iops
    if device.throughput is not None:
        ebs["Throughput"] = device.throughput
    if device.delete_on_termination is not None:
        ebs["DeleteOnTermination"] = device.delete_on_termination
    if device.kms_key_id is not None:
        ebs["Encrypted"] = True
        ebs["KmsKeyId"] = device.kms_key_id
    elif device.encrypted is not None:
        ebs["Encrypted"] = device.encrypted
    return ebs


class ImageCreator:
    """Look up, compare, create or adopt; apply only outside check mode."""

    def __init__(self, client, region: str, request: CreateRequest, check_mode: bool = False, *, pending_tags=None,
                 release_pending: bool = False, terminate_later: bool = False, while_creating=None, warn=None,
                 sleep=None, clock=None):
        self.client = client
        self.region = region
        self.request = request
        self.check_mode = check_mode
        self._timing = {}
        if sleep is not None:
            self._timing["sleep"] = sleep
        if clock is not None:
            self._timing["clock"] = clock
        # work for the first pause after CreateImage (the copy regions' clients)
        self._while_creating = while_creating
        self.build_id = request.build_id
        if self.build_id is None:
            self.build_id = request.tags.get(BUILD_ID_TAG)
        self.image_tags = dict(request.tags)
        self.snapshot_tags = dict(request.tags if request.snapshot_tags is None else request.snapshot_tags)
        if self.build_id is not None:
            self.image_tags[BUILD_ID_TAG] = self.build_id
            self.snapshot_tags[BUILD_ID_TAG] = self.build_id
        # Tags a new image and its snapshots are born with that come off once the image is done
        # (here with release_pending; else the copy step does it): never compared, so an adopted
        # image does not get them back.
        self.pending_tags = dict(pending_tags or {})
        self.release_pending = release_pending and bool(self.pending_tags)
        self._warn = warn
        self.image: dict | None = None  # the image as last described
        self.deprecate_at = None
        if request.deprecate_at is not None:
            self.deprecate_at = _time.round_to_minute(_time.parse(request.deprecate_at))
        self.imds_v2 = request.imds_support == "v2.0"
        self.snapshot_mode = request.snapshot_mode
        # the state of the source instance as this task last saw it (after stopping it: stopped)
        self.source_state: str | None = None
        # terminate_instance left to the caller (terminated()), to run beside the copies
        self.terminate_later = terminate_later

    # -- lookups --------------------------------------------------------------------------------

    def find_by_name(self) -> dict | None:
        images = _aws.describe_images(
            self.client,
            Owners=["self"],
            Filters=[{"Name": "name", "Values": [self.request.name]}],
            IncludeDeprecated=True,
        )
        images = [image for image in images if image.get("Name") == self.request.name]
        return images[0] if images else None

    def owned_by_this_build(self, image: dict) -> bool:
        return image_tags(image).get(BUILD_ID_TAG) == self.build_id

    def name_taken_error(self, image: dict) -> CreateError:
        theirs = image_tags(image).get(BUILD_ID_TAG)
        theirs_text = f"bakery:build-id '{theirs}'" if theirs is not None else "no bakery:build-id tag"
        ours = f"'{self.build_id}'" if self.build_id is not None else "not set"
        return CreateError(
            f"name: '{self.request.name}' is already used by image {image['ImageId']} in {self.region} "
            f"({theirs_text}); this task's build_id is {ours}. Use another name, or the build_id of that image "
            "to adopt it."
        )

    def check_source(self) -> dict | None:
        """The instance (or snapshot) must exist in a state an image can be made from; returns the instance."""
        if not self.snapshot_mode:
            return self.check_instance()
        snapshot_id = self.request.snapshot_id
        snapshots = _aws.describe_snapshots(self.client, SnapshotIds=[snapshot_id])
        if not snapshots:
            raise CreateError(f"snapshot_id: snapshot {snapshot_id} does not exist in {self.region}")
        state = snapshots[0].get("State")
        if state != "completed":
            raise CreateError(f"snapshot_id: snapshot {snapshot_id} is '{state}'; an image needs a completed snapshot")
        # RegisterImage does not tag the snapshot: the task adds its tags to the ones it has
        have = image_tags(snapshots[0])
        wanted = dict(self.snapshot_tags, **self.pending_tags)
        self._check_total(f"snapshot {snapshot_id}", have, {k: v for k, v in wanted.items() if have.get(k) != v})
        return None

    def check_instance(self) -> dict:
        """The instance must exist in a state an image can be made from; returns it."""
        instance_id = self.request.instance_id
        instances = _aws.describe_instances(self.client, InstanceIds=[instance_id])
        if not instances:
            raise CreateError(f"instance_id: instance {instance_id} does not exist in {self.region}")
        state = (instances[0].get("State") or {}).get("Name")
        allowed = SOURCE_STATES + (("pending", "stopping") if self.request.stop_instance else ())
        if state not in allowed:
            raise CreateError(f"instance_id: instance {instance_id} is '{state}'; it must be stopped or running")
        self.source_state = state
        return instances[0]

    def stop_source(self) -> None:
        """stop_instance: stop the builder and wait until it is stopped, for a consistent image without a reboot.

        StopInstances comes first: it answers with the state (an instance already stopped stays so),
        and only an instance it cannot stop (pending, gone, terminated) is described.
        """
        instance_id = self.request.instance_id
        timeout = self.request.wait_timeout or 3600
        try:
            try:
                states = _aws.stop_instances(self.client, [instance_id])
            except _aws.BakeryAWSError as exc:
                if exc.code != "IncorrectInstanceState":
                    raise
                states = None
            if states is None or states is False:
                # missing or in a state StopInstances refuses: the source check says which
                instance = self.check_instance()
                if (instance.get("State") or {}).get("Name") == "pending":
                    _waiter.wait_for_instances(self.client, [instance_id], "running", timeout, **self._timing)
                states = _aws.stop_instances(self.client, [instance_id])
            if not isinstance(states, dict) or states.get(instance_id) != "stopped":
                _waiter.wait_for_instances(self.client, [instance_id], "stopped", timeout, **self._timing)
        except _waiter.WaitTimeout as exc:
            raise CreateError(f"stop_instance: {exc}") from None
        self.source_state = "stopped"

    def terminate_source(self) -> bool:
        """terminate_instance: the instance ends as soon as its image is available, without waiting
        for it to be terminated, so that its termination (and the release of its security group)
        runs while the copies are made instead of after them. True when it was running or stopped
        (terminated now, or in check mode would be); an instance already gone changes nothing.
        """
        instance_id = self.request.instance_id
        state = self.source_state
        if state is None:
            instances = _aws.describe_instances(self.client, InstanceIds=[instance_id])
            state = (instances[0].get("State") or {}).get("Name") if instances else None
        if state in (None, "shutting-down", "terminated"):
            return False
        if not self.check_mode and not _aws.terminate_instances(self.client, [instance_id]):
            return False  # gone meanwhile
        self.source_state = "shutting-down"
        return True

    # -- create ---------------------------------------------------------------------------------

    def create_request(self) -> tuple:
        asked = self.request
        mappings = asked.block_device_mappings
        request: dict = {"Name": asked.name}
        if asked.description:
            request["Description"] = asked.description
        if not self.snapshot_mode:
            request["InstanceId"] = asked.instance_id
            request["NoReboot"] = not asked.reboot
            api_mappings = []
            for mapping in mappings:
                item: dict = {"DeviceName": mapping.device_name}
                ebs = _ebs(mapping)
                if ebs:
                    item["Ebs"] = ebs
                api_mappings.append(item)
            if api_mappings:
                request["BlockDeviceMappings"] = api_mappings
            specs = []
            if self.image_tags or self.pending_tags:
                specs.append(_tag_spec("image", dict(self.image_tags, **self.pending_tags)))
            if self.snapshot_tags or self.pending_tags:
                specs.append(_tag_spec("snapshot", dict(self.snapshot_tags, **self.pending_tags)))
            if specs:
                request["TagSpecifications"] = specs
            return "create_image", request
        root = asked.root_device
        root_ebs = {"SnapshotId": asked.snapshot_id, "DeleteOnTermination": True}
        api_mappings = []
        for mapping in mappings:
            if mapping.device_name == root:
                root_ebs.update(_ebs(mapping))
            else:
                api_mappings.append({"DeviceName": mapping.device_name, "Ebs": _ebs(mapping)})
        api_mappings.insert(0, {"DeviceName": root, "Ebs": root_ebs})
        request.update(
            Architecture=asked.architecture or "x86_64",
            RootDeviceName=root,
            VirtualizationType="hvm",
            BlockDeviceMappings=api_mappings,
            EnaSupport=True if asked.ena_support is None else asked.ena_support,
        )
        if asked.boot_mode:
            request["BootMode"] = asked.boot_mode
        if self.imds_v2:
            request["ImdsSupport"] = "v2.0"
        if self.image_tags or self.pending_tags:
            # RegisterImage tags the image only; the snapshots are tagged afterwards.
            request["TagSpecifications"] = [_tag_spec("image", dict(self.image_tags, **self.pending_tags))]
        return "register_image", request

    def _create(self) -> tuple:
        """Create the image; returns (image_id, adopted_after_duplicate)."""
        operation, request = self.create_request()
        try:
            return getattr(_aws, operation)(self.client, **request)["ImageId"], False
        except _aws.BakeryAWSError as e:
            if _aws.error_code(e) != DUPLICATE_NAME:
                raise
        # The name exists although it did not a moment ago: most likely our own first attempt
        # was served and its answer lost. Find the image that holds the name.
        found = {}

        def check() -> bool:
            image = self.find_by_name()
            if image is not None:
                found["image"] = image
            return image is not None

        try:
            _waiter.poll(check, VISIBLE_TIMEOUT, lambda: {"name": self.request.name}, "the image holding the name", **self._timing)
        except _waiter.WaitTimeout:
            raise CreateError(
                f"name: '{self.request.name}' is already in use in {self.region} (InvalidAMIName.Duplicate) "
                "but the image holding it did not become visible; rerun the task"
            ) from None
        image = found["image"]
        if not self.owned_by_this_build(image):
            raise self.name_taken_error(image)
        return image["ImageId"], True

    def _describe(self, image_id: str) -> dict | None:
        images = _aws.describe_images(
            self.client, Filters=[{"Name": "image-id", "Values": [image_id]}], IncludeDeprecated=True
        )
        return images[0] if images else None

    def _wait_visible(self, image_id: str, timing: dict) -> dict:
        found = {}

        def check() -> bool:
            image = self._describe(image_id)
            if image is not None:
                found["image"] = image
            return image is not None

        timeout = min(VISIBLE_TIMEOUT, self.request.wait_timeout or VISIBLE_TIMEOUT)
        _waiter.poll(check, timeout, lambda: {self.region: [image_id]}, f"image {image_id} to become visible", **timing)
        return found["image"]

    def _wait(self, image_id: str, just_created: bool = False) -> dict:
        timing = self._timing
        if just_created and self._while_creating is not None:
            timing = dict(timing, sleep=_waiter.working_sleep(
                self._work_while_creating, timing.get("sleep", time.sleep), timing.get("clock", time.monotonic)))
        if self.request.wait:
            done = _waiter.wait_for_images(
                {self.region: (self.client, [image_id])},
                self.request.wait_timeout or 3600,
                # the finer rhythm of a new image, which every copy waits on (_waiter says why); an image
                # CreateImage has just started cannot be available at once
                min_delay=_waiter.IMAGE_MIN_DELAY,
                first_delay=_waiter.IMAGE_MIN_DELAY if just_created else 0.0,
                **timing,
            )
            return done[self.region][image_id]
        return self._wait_visible(image_id, timing)

    def _work_while_creating(self) -> None:
        try:
            self._while_creating()
        except BakeryError:
            pass  # what needed the work meets the error itself, when it runs

    # -- converge -------------------------------------------------------------------------------

    def plan_updates(
        self, image: dict, extra_snapshot_ids: t.Iterable = (), snapshots_tagged: bool = False, new: bool = False
    ) -> dict:
        """What an image (new or adopted) lacks compared with the options; nothing is changed.

        snapshots_tagged: CreateImage has just tagged the snapshots (tag specification): not read.
        new: the image was just made here, so it is also owed the pending tags.
        """
        updates: dict = {}
        current = image_tags(image)
        wanted_image_tags = dict(self.image_tags, **self.pending_tags) if new else self.image_tags
        wanted_snapshot_tags = dict(self.snapshot_tags, **self.pending_tags) if new else self.snapshot_tags
        missing = {k: v for k, v in wanted_image_tags.items() if current.get(k) != v}
        if missing:
            updates["image_tags"] = missing
            self._check_total(f"image {image.get('ImageId')}", current, missing)
        snapshot_ids = image_snapshot_ids(image)
        for snapshot_id in extra_snapshot_ids:
            if snapshot_id not in snapshot_ids:
                snapshot_ids.append(snapshot_id)
        if snapshot_ids and wanted_snapshot_tags and not snapshots_tagged:
            snapshots = _aws.describe_snapshots(self.client, SnapshotIds=snapshot_ids)
            by_id = {snapshot["SnapshotId"]: snapshot for snapshot in snapshots}
            untagged = {}
            for snapshot_id in snapshot_ids:
                have = image_tags(by_id.get(snapshot_id) or {})
                lacking = {k: v for k, v in wanted_snapshot_tags.items() if have.get(k) != v}
                if lacking and snapshot_id in by_id:
                    untagged[snapshot_id] = lacking
                    self._check_total(f"snapshot {snapshot_id}", have, lacking)
            if untagged:
                updates["snapshot_tags"] = untagged
        if self.deprecate_at is not None:
            have_time = None
            if image.get("DeprecationTime"):
                parsed = _time.parse(image["DeprecationTime"])
                have_time = _time.round_to_minute(parsed) if parsed else None
            if have_time != self.deprecate_at:
                updates["deprecate_at"] = self.deprecate_at
        if self.imds_v2 and image.get("ImdsSupport") != "v2.0":
            updates["imds_support"] = "v2.0"
        protection = _protect.needed(image, wanted_protection(self.request))
        if protection is not None:
            updates["protection"] = protection
        return updates

    @staticmethod
    def _check_total(resource: str, current: dict, adding: dict) -> None:
        """A resource that already has tags (an adopted image) takes at most 50 with the ones added."""
        error = _validate.tag_total("tags", resource, [("its current tags", current), ("this task", adding)])
        if error:
            raise CreateError(error)

    def check_updates_allowed(self, updates: dict, now: datetime.datetime | None = None) -> None:
        """EC2 refuses a deprecation time in the past: say so before anything is created."""
        if "deprecate_at" in updates:
            now = now or _time.now()
            parsed, error = _validate.future_time("deprecate_at", self.request.deprecate_at, now=now)
            if error:
                raise CreateError(error)
            if parsed > _time.ten_years_after(now):
                raise CreateError(
                    f"deprecate_at: '{self.request.deprecate_at}' is more than 10 years ahead; EC2 takes a deprecation "
                    "time of at most 10 years from now"
                )

    def _pending_on(self, image: dict, updates: dict) -> list:
        """The pending tags an image carries (or is getting with updates)."""
        have = set(image_tags(image)) | set(updates.get("image_tags") or {})
        return sorted(key for key in self.pending_tags if key in have)

    def release(self, image: dict, updates: dict, extra_snapshot_ids: t.Iterable = ()) -> None:
        """Take the pending tags off an available image and its snapshots, in one DeleteTags.

        An image without them has none on its snapshots either (they come off together), so only the
        image's tags are looked at. Recorded in updates as "pending_tags" (also in check mode).
        """
        keys = self._pending_on(image, updates) if self.release_pending else []
        if not keys:
            return
        if image.get("State") != _waiter.IMAGE_DONE and not self.check_mode:
            if self._warn is not None:
                self._warn(
                    f"pending_tags stay on image {image.get('ImageId')} until it is available; "
                    "run the task again with wait=true to take them off"
                )
            return
        if not self.check_mode:
            resources = [image["ImageId"]] + image_snapshot_ids(image)
            for snapshot_id in list(extra_snapshot_ids) + sorted(updates.get("snapshot_tags") or {}):
                if snapshot_id not in resources:
                    resources.append(snapshot_id)
            _aws.delete_tags(self.client, resources, [{"Key": key} for key in keys])
        updates["pending_tags"] = keys

    def apply_updates(self, image_id: str, updates: dict) -> None:
        if "image_tags" in updates:
            _aws.create_tags(self.client, [image_id], tag_list(updates["image_tags"]))
        for snapshot_id, tags in sorted((updates.get("snapshot_tags") or {}).items()):
            _aws.create_tags(self.client, [snapshot_id], tag_list(tags))
        if "imds_support" in updates:
            _aws.modify_image_attribute(self.client, image_id, ImdsSupport={"Value": "v2.0"})
        if "deprecate_at" in updates:
            _aws.enable_image_deprecation(self.client, image_id, updates["deprecate_at"])
        if "protection" in updates:
            _aws.enable_image_deregistration_protection(self.client, image_id, _protect.with_cooldown(updates["protection"]))

    # -- the task -------------------------------------------------------------------------------

    def result(self, image: dict | None, changed: bool, adopted: bool, updates: dict) -> dict:
        self.image = image
        image = image or {}
        tags = image_tags(image) if image else dict(self.image_tags, **self.pending_tags)
        tags.update(updates.get("image_tags") or {})
        predicted_release = not image and self.release_pending and self.request.wait
        if "pending_tags" in updates or predicted_release:
            for key in self.pending_tags:
                tags.pop(key, None)
        snapshot_ids = image_snapshot_ids(image)
        if self.snapshot_mode and self.request.snapshot_id not in snapshot_ids:
            snapshot_ids.insert(0, self.request.snapshot_id)
        deprecation = None
        if "deprecate_at" in updates:
            deprecation = _time.iso(updates["deprecate_at"])
        elif image.get("DeprecationTime"):
            parsed = _time.parse(image["DeprecationTime"])
            deprecation = _time.iso(parsed) if parsed else image["DeprecationTime"]
        imds = "v2.0" if "imds_support" in updates else image.get("ImdsSupport")
        protection = updates.get("protection") or image.get("DeregistrationProtection")
        if not image:
            protection = wanted_protection(self.request) or _protect.OFF
        return {
            "changed": changed,
            "adopted": adopted,
            "image_id": image.get("ImageId"),
            "name": self.request.name,
            "state": image.get("State"),
            "snapshot_ids": snapshot_ids,
            "tags": tags,
            "snapshot_tags": self.snapshot_tags,
            "deprecation_time": deprecation,
            "imds_support": imds,
            "deregistration_protection": protection,
            "updates": sorted(updates),
        }

    def run(self) -> dict:
        existing = self.find_by_name()
        if existing is not None:
            if not self.owned_by_this_build(existing):
                raise self.name_taken_error(existing)
            return self._adopt(existing)
        stopping = self.request.stop_instance and not self.snapshot_mode and not self.check_mode
        if not stopping:
            # (stop_source checks the instance itself, with the StopInstances call)
            self.check_source()
        if self.deprecate_at is not None:
            self.check_updates_allowed({"deprecate_at": self.deprecate_at})
        if self.check_mode:
            return self._terminated(self.result(None, True, False, {}))
        if stopping:
            self.stop_source()
        image_id, adopted = self._create()
        image = self._wait(image_id, just_created=not adopted)
        extra = [self.request.snapshot_id] if self.snapshot_mode else []
        # CreateImage tags the snapshots itself; RegisterImage (snapshot mode) does not
        updates = self.plan_updates(image, extra, snapshots_tagged=not self.snapshot_mode and not adopted, new=not adopted)
        self.check_updates_allowed(updates)
        self.apply_updates(image_id, updates)
        self.release(image, updates, extra)
        return self._terminated(self.result(image, True, adopted, updates))

    def _terminated(self, result: dict) -> dict:
        return result if self.terminate_later else self.terminated(result)

    def terminated(self, result: dict) -> dict:
        """terminate_instance, once the image is available (or predicted, in check mode)."""
        if not self.request.terminate_instance or self.snapshot_mode:
            return result
        available = result.get("state") == _waiter.IMAGE_DONE or (self.check_mode and result.get("image_id") is None)
        try:
            terminated = available and self.terminate_source()
        except _aws.BakeryAWSError as exc:
            # the image is made: an instance left running is its cleanup's to remove, not a failure here
            if self._warn is not None:
                self._warn(f"terminate_instance: {self.request.instance_id} is left for its cleanup: {exc}")
            terminated = False
        return dict(result, instance_terminated=terminated, changed=result["changed"] or terminated)

    def _adopt(self, image: dict) -> dict:
        if image.get("State") in _waiter.IMAGE_FAILED:
            raise CreateError(
                f"name: image {image['ImageId']} of this build holds the name but is '{image.get('State')}': "
                f"{_waiter.image_state_reason(image) or 'no reason given'}; deregister it and rerun"
            )
        updates = self.plan_updates(image)
        self.check_updates_allowed(updates)
        if self.check_mode:
            # an adopted image that still carries pending tags (its run was killed) would lose them
            self.release(image, updates)
            return self._terminated(self.result(image, bool(updates), True, updates))
        if image.get("State") != _waiter.IMAGE_DONE and self.request.wait:
            image = self._wait(image["ImageId"])
        self.apply_updates(image["ImageId"], updates)
        self.release(image, updates)
        return self._terminated(self.result(image, bool(updates), True, updates))


# ---------------------------------------------------------------------------------------------
# Sharing the image in its own region


def beside_termination(creator: ImageCreator, result: dict, work: t.Callable[[dict], dict]) -> dict:
    """work(result) (the copies) while terminate_instance ends the instance on a thread of its own, so
    that the first copy does not wait for the termination. Returns work's result with the termination
    in it (instance_terminated, changed); a BakeryError of work carries it in its result too."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        ending = pool.submit(creator.terminated, result)
        try:
            done = work(result)
        except BakeryError as exc:
            exc.result.update(_termination_of(ending.result(), exc.result))
            raise
        return dict(done, **_termination_of(ending.result(), done))


def _termination_of(ended: dict, result: dict) -> dict:
    if "instance_terminated" not in ended:
        return {}
    return {"instance_terminated": ended["instance_terminated"],
            "changed": bool(result.get("changed")) or ended["instance_terminated"]}


def share_image(client, result: dict, request: CreateRequest, check_mode: bool, warn: t.Callable[[str], None]) -> dict:
    """launch_permissions and share_snapshots on the image in its own region, with the copies' code, and the
    record of whom it is shared with (bakery:shared-with)."""
    permissions, share_user_ids = request.launch_permissions, request.share_user_ids
    added: dict = {"launch_permissions": [], "snapshot_permissions": {}, "sharing_record": {}}
    if not permissions and not share_user_ids:
        return dict(result, sharing=added)
    if result["image_id"] is None:
        # check mode, image not made yet: all of it would be added, and recorded
        added["launch_permissions"] = list(permissions)
        added["sharing_record"] = _share.record_tags(permissions, share_user_ids if result["snapshot_ids"] else ())
    elif result["state"] != "available" and not check_mode:
        warn(
            f"launch_permissions: image {result['image_id']} is '{result['state']}'; it is shared once available: "
            "run the task again with wait=true"
        )
        return dict(result, sharing=added)
    else:
        added = _share.converge(
            client, result["image_id"], result["snapshot_ids"], permissions, share_user_ids, act=not check_mode,
            tags=result["tags"],
        )
    updates = list(result.get("updates") or [])
    for key in ("launch_permissions", "snapshot_permissions", "sharing_record"):
        if added[key] and key not in updates:
            updates.append(key)
    tags = dict(result["tags"], **added["sharing_record"])
    tags = {key: value for key, value in tags.items() if value or not _share.is_record_key(key)}
    return dict(result, tags=tags, sharing=added, updates=sorted(updates),
                changed=result["changed"] or _share.changed(added))
