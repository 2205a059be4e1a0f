# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The one removal engine of the collection (bakery.ami.ami_cleanup; ami_builder state=absent is
# the same engine in one region without images): what a bake run made, in every region given,
# selected either by run ID (the tag bakery:run-id) or by expiry (bakery:expires-at before a time).
#
# - Selection: the tag goes to EC2 as a filter (tag:bakery:run-id=<id>, or tag-key
#   bakery:expires-at), and every resource EC2 returns is checked again here: its run ID must be
#   the one asked for, literally, or its expiry must parse and lie before the time. A run ID is
#   6-64 ASCII letters, digits and '-', so it never reaches EC2 as a wildcard.
# - Order in a region: instances are terminated, then images deregistered, then security groups
#   deleted (asked again while a terminating instance of the selection still holds one), key
#   pairs, volumes that are `available`, and last the snapshots (of the images deregistered, and
#   those of the selection that no image kept here uses). Regions run concurrently.
# - With a run ID, key pairs and leftover volumes are only looked for when an instance of the run
#   used a key pair or kept a volume at termination, or when no instance of the run is left to
#   tell (a builder without key on volumes deleted with it costs two describes, not four).
# - Images: `none` (the default) leaves images and snapshots alone; `unfinished` removes those
#   still carrying bakery:expires-at (a bake takes it off the images it finished), `all` every
#   image of the selection. Images tagged bakery:keep=true are never removed.
# - Every failure is recorded and the next removal still runs; CleanupError lists them all at the
#   end with what was removed. A deletion answered "not found" counts as removed: the resource
#   was listed a moment before, and an earlier attempt whose answer was lost removed it.
# - Check mode makes the same describe calls and lists what would go; nothing that changes the
#   account is called and nothing on the controller is touched.
# - On the controller, the run's key directory (key_dir, named after the run ID) or, by expiry,
#   every run's key directory under key_root older than key_ttl_minutes before the time, is
#   removed through the root-confined file layer: only real directories, never through a link.

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import stat
import threading
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _fanout
from ansible_collections.bakery.ami.plugins.module_utils import _tags
from ansible_collections.bakery.ami.plugins.module_utils import _time
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils import _waiter
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._image_root import ImageRoot
from ansible_collections.bakery.ami.plugins.module_utils._image_root import RootError
from ansible_collections.bakery.ami.plugins.module_utils._images import snapshot_ids
from ansible_collections.bakery.ami.plugins.module_utils._images import tags_of

IMAGE_CHOICES = ("none", "unfinished", "all")
# The kinds of resources removed, in the order a region removes them.
KINDS = ("instances", "images", "security_groups", "key_pairs", "volumes", "snapshots")
BUILDER_KINDS = ("instances", "security_groups", "key_pairs", "volumes")
# Instances that still exist; an instance already shutting down is waited for as well.
REMOVABLE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
# Instances of the run that EC2 still lists after their termination (about an hour): never acted
# on, but they tell whether the run used a key pair or kept a volume (ami_create's
# terminate_instance ends the builder before its cleanup runs).
LISTED_STATES = REMOVABLE_STATES + ("terminated",)
GONE_IMAGE_STATES = ("deregistered",)
# TerminateInstances takes at most 1000 IDs; stay well below.
TERMINATE_BATCH = 100
MAX_WORKERS = 16
MAX_WAIT = 86400
MAX_TTL_MINUTES = 9999999


class InputError(BakeryError):
    """The options break a rule; ``errors`` lists every problem (each names its option)."""

    def __init__(self, errors: list):
        super().__init__("; ".join(errors), {"errors": list(errors)})
        self.errors = list(errors)


class CleanupError(BakeryError):
    """Not everything could be removed; ``errors`` lists each failure, ``result`` what was done."""

    def __init__(self, errors: list, result: dict):
        count = len(errors)
        super().__init__(
            f"could not remove everything of the run ({count} error{'s' if count != 1 else ''}): " + "; ".join(errors),
            dict(result, errors=list(errors)),
        )
        self.errors = list(errors)


@dataclasses.dataclass(frozen=True)
class Request:
    """What to remove: the selection (run_id or expired_before), where, and how long to wait."""

    regions: list
    run_id: t.Optional[str] = None
    expired_before: t.Optional[datetime.datetime] = None
    images: str = "none"
    key_dir: t.Optional[str] = None
    key_root: t.Optional[str] = None
    key_ttl_minutes: int = 180
    wait_timeout: int = 600
    # launch templates (names or IDs) whose versions made by the run (their description's marker) go
    launch_templates: list = dataclasses.field(default_factory=list)

    def describe(self) -> str:
        if self.run_id is not None:
            return f"{_tags.RUN_ID}={self.run_id}"
        return f"{_tags.EXPIRES_AT} before {_time.iso(self.expiry())}"

    def expiry(self) -> datetime.datetime:
        """The time of a selection by expiry (build_request gives one whenever run_id is None)."""
        if self.expired_before is None:
            raise ValueError("this request selects one run by its ID, not by expiry")
        return self.expired_before


def valid_run_id(value: t.Any) -> bool:
    """6-64 ASCII letters, digits and '-', the whole string (no trailing newline, no wildcard)."""
    return _validate.run_id("run_id", value) is None


# ---------------------------------------------------------------------------------------------
# Input


def _run_id_error(value: t.Any) -> t.Optional[str]:
    error = _validate.run_id("run_id", value)
    if error and isinstance(value, str) and any(ch in value for ch in _validate.FILTER_SPECIAL):
        error += " (a run ID is matched literally: '*', '?' and '\\' are not wildcards here)"
    return error


def normal_path(value: str) -> str:
    """'/a//b/./c/' -> '/a/b/c' (never '..': _path_error refuses it)."""
    return "/" + "/".join(part for part in value.split("/") if part not in ("", "."))


def _path_error(option: str, value: t.Any) -> t.Optional[str]:
    """A controller directory option: absolute, no '..', not '/', no control characters."""
    if not isinstance(value, str) or not value:
        return f"{option}: must be an absolute path, got {_validate.show(value)}"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return f"{option}: must not contain control characters (a newline, NUL, ...), got {_validate.show(value)}"
    if not value.startswith("/"):
        return f"{option}: must be an absolute path, got {_validate.show(value)}"
    if ".." in value.split("/"):
        # resolved by the kernel through links, by name on paper: the two can name different directories
        return f"{option}: must not contain '..', got {_validate.show(value)}; give the directory's own path"
    if normal_path(value) == "/":
        return f"{option}: must not be '/'"
    return None


def validate(params: dict, known_regions: t.Optional[t.Iterable[str]] = None) -> list:
    """Every problem with the options, found without any API call and without touching a file."""
    errors: list = []
    run_id = params.get("run_id")
    expired_before = params.get("expired_before")
    if run_id is None and expired_before is None:
        errors.append("run_id or expired_before: give exactly one of them (what to remove: one run, or what has expired)")
    elif run_id is not None and expired_before is not None:
        errors.append("run_id and expired_before: give only one of them")
    if run_id is not None:
        errors.append(_run_id_error(run_id))
    if expired_before is not None:
        errors.append(_validate.parse_time("expired_before", expired_before)[1])

    regions = params.get("regions") or []
    if not isinstance(regions, list):
        errors.append("regions: must be a list of region names")
        regions = []
    known = sorted(known_regions) if known_regions else None
    for index, region in enumerate(regions):
        errors.append(_validate.region_name(f"regions[{index}]", region, known))

    images = params.get("images", "none")
    if images not in IMAGE_CHOICES:
        errors.append(f"images: must be one of {', '.join(IMAGE_CHOICES)}, got {_validate.show(images)}")

    key_dir = params.get("key_dir")
    if key_dir is not None:
        if expired_before is not None:
            errors.append("key_dir: only with run_id (by expiry, give key_root, the directory of every run's key directory)")
        error = _path_error("key_dir", key_dir)
        errors.append(error)
        if error is None and valid_run_id(run_id) and os.path.basename(normal_path(key_dir)) != run_id:
            errors.append(
                f"key_dir: {_validate.show(key_dir)} is not named after the run; the key directory of run "
                f"{run_id} is <cache>/keys/{run_id}"
            )
    key_root = params.get("key_root")
    if key_root is not None:
        if run_id is not None:
            errors.append("key_root: only with expired_before (with run_id, give key_dir, the run's own key directory)")
        errors.append(_path_error("key_root", key_root))
    templates = params.get("launch_templates") or []
    if templates:
        if run_id is None:
            errors.append("launch_templates: only with run_id (launch template versions carry no expiry; a run's "
                          "versions are known by the run ID in their description)")
        if not isinstance(templates, list):
            errors.append("launch_templates: must be a list of launch template names or IDs")
            templates = []
        from ansible_collections.bakery.ami.plugins.module_utils import _launch_template  # pylint: disable=import-outside-toplevel

        for index, template in enumerate(templates):
            errors.append(_launch_template.check_template(f"launch_templates[{index}]", template))
    ttl = params.get("key_ttl_minutes")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL_MINUTES):
        errors.append(f"key_ttl_minutes: must be 0-{MAX_TTL_MINUTES} minutes, got {_validate.show(ttl)}")
    timeout = params.get("wait_timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_WAIT):
        errors.append(f"wait_timeout: must be 1-{MAX_WAIT} seconds, got {_validate.show(timeout)}")
    return [error for error in errors if error]


def build_request(params: dict, default_region: t.Optional[str],
                  known_regions: t.Optional[t.Iterable[str]] = None) -> Request:
    """The request, or InputError listing every problem (before any call or file access)."""
    errors = validate(params, known_regions)
    regions = list(dict.fromkeys(params.get("regions") or ([default_region] if default_region else [])))
    if not errors and not regions:
        errors.append("regions: give the regions to clean up, or set the module's region")
    if errors:
        raise InputError(errors)
    expired_before = None
    if params.get("expired_before") is not None:
        expired_before = _validate.parse_time("expired_before", params["expired_before"])[0]
    return Request(
        regions=regions,
        run_id=params.get("run_id"),
        expired_before=expired_before,
        images=params.get("images") or "none",
        key_dir=None if params.get("key_dir") is None else normal_path(params["key_dir"]),
        key_root=None if params.get("key_root") is None else normal_path(params["key_root"]),
        key_ttl_minutes=180 if params.get("key_ttl_minutes") is None else params["key_ttl_minutes"],
        wait_timeout=params.get("wait_timeout") or 600,
        launch_templates=list(dict.fromkeys(params.get("launch_templates") or [])),
    )


# ---------------------------------------------------------------------------------------------
# Selection


class Selection:
    """The server-side filter of a request and the client-side check of every resource returned."""

    def __init__(self, request: Request, warn: t.Optional[t.Callable[[str], None]] = None):
        self.run_id = request.run_id
        self.expired_before = request.expired_before
        self._warn = warn
        self._warned: set = set()
        self._lock = threading.Lock()

    def filters(self) -> list:
        if self.run_id is not None:
            return [{"Name": f"tag:{_tags.RUN_ID}", "Values": [self.run_id]}]
        return [{"Name": "tag-key", "Values": [_tags.EXPIRES_AT]}]

    def matches(self, resource: dict, resource_id: str) -> bool:
        tags = tags_of(resource)
        if self.run_id is not None:
            # EC2 matched the filter; the value is compared again, literally
            return tags.get(_tags.RUN_ID) == self.run_id
        if _tags.EXPIRES_AT not in tags:
            return False
        expires, error = _validate.parse_time(_tags.EXPIRES_AT, tags[_tags.EXPIRES_AT])
        if error:
            self.warn(resource_id, f"{resource_id}: its tag {_tags.EXPIRES_AT} is not a time "
                                   f"({_validate.show(tags[_tags.EXPIRES_AT])}); it is left alone")
            return False
        return expires < self.expired_before

    def warn(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        if self._warn is not None:
            self._warn(message)


def _groups_of(instance: dict) -> set:
    groups = {g.get("GroupId") for g in instance.get("SecurityGroups") or []}
    for interface in instance.get("NetworkInterfaces") or []:
        groups.update(g.get("GroupId") for g in interface.get("Groups") or [])
    groups.discard(None)
    return groups


def _keeps_volume(instance: dict) -> bool:
    return any(
        not (mapping.get("Ebs") or {}).get("DeleteOnTermination", False)
        for mapping in instance.get("BlockDeviceMappings") or [] if "Ebs" in mapping
    )


def _keep_tagged(tags: dict) -> bool:
    return tags.get(_tags.KEEP, "").lower() == "true"


# ---------------------------------------------------------------------------------------------
# One region


class RegionCleanup:
    """The removals of one region, in order; each failure is recorded and the next still runs."""

    def __init__(self, client, region: str, request: Request, selection: Selection, check_mode: bool = False,
                 *, label: t.Optional[str] = None, sleep=None, clock=None):
        self.client = client
        self.region = region
        self.request = request
        self.selection = selection
        self.check_mode = check_mode
        # prefix of every error ("us-east-1: terminate i-...: ..."); empty for a single-region caller
        self.label = region if label is None else label
        self._timing: dict = {}
        if sleep is not None:
            self._timing["sleep"] = sleep
        if clock is not None:
            self._timing["clock"] = clock
        self.removed: dict = {kind: [] for kind in KINDS}
        self.kept: dict = {}
        self.errors: list = []
        # launch template -> the default version put back (the run's version had been the default)
        self.restored_defaults: dict = {}

    # -- helpers ----------------------------------------------------------------------------------

    def attempt(self, what: str, action: t.Callable[[], t.Any]) -> t.Any:
        """action(); None after a failure (recorded). A deletion's False ("not found") is returned as is."""
        try:
            return action()
        except (_aws.BakeryAWSError, _waiter.WaitTimeout) as e:
            self.errors.append(f"{self.label}: {what}: {e}" if self.label else f"{what}: {e}")
            return None

    def _remove(self, kind: str, resource_id: str, what: str, action: t.Callable[[], t.Any]) -> bool:
        if self.check_mode or self.attempt(what, action) is not None:
            self.removed[kind].append(resource_id)
            return True
        return False

    def _select(self, resources: list, id_key: str) -> list:
        return sorted((r for r in resources if self.selection.matches(r, r.get(id_key, "?"))),
                      key=lambda r: r.get(id_key, ""))

    # -- the steps --------------------------------------------------------------------------------

    def run(self, images: t.Optional[str] = None) -> dict:
        images = self.request.images if images is None else images
        if self.request.launch_templates and self.selection.run_id is not None:
            # first: no version of the run is left launching an image about to go
            self.launch_template_versions(self.request.launch_templates, self.selection.run_id)
        selected, going = self.instances()
        image_snapshots, protected = self.images(images) if images != "none" else ([], set())
        self.security_groups(going)
        self.key_pairs(selected)
        self.volumes(selected, going)
        if images != "none" and protected is not None:
            self.snapshots(images, image_snapshots, protected)
        return self.result()

    def launch_template_versions(self, templates: list, run_id: str) -> None:
        """The versions of each template the run made (the marker of their description), removed; a
        default version among them is first moved back. A template missing in the region is skipped."""
        from ansible_collections.bakery.ami.plugins.module_utils import _launch_template  # pylint: disable=import-outside-toplevel

        removed = self.removed.setdefault("launch_template_versions", [])
        for template in templates:
            try:
                done = _launch_template.remove_run_versions(self.client, template, run_id, self.check_mode)
            except _launch_template.LaunchTemplateError as e:
                self.errors.append(f"{self.label}: launch template {template}: {e.msg}" if self.label else e.msg)
                continue
            except _aws.BakeryAWSError as e:
                what = f"remove the versions of launch template {template}: {e}"
                self.errors.append(f"{self.label}: {what}" if self.label else what)
                continue
            if done is None:
                continue
            removed.extend(f"{template}:{number}" for number in done["deleted"])
            if done["default_after"] != done["default_before"]:
                self.restored_defaults[template] = done["default_after"]

    def instances(self) -> tuple:
        """Terminate the selected instances; returns (the selected, those whose removal is under way).

        The selected are None when they could not be listed (nothing is then known about them).
        """
        filters = self.selection.filters() + [{"Name": "instance-state-name", "Values": list(LISTED_STATES)}]
        found = self.attempt("find instances", lambda: _aws.describe_instances(self.client, Filters=filters))
        if found is None:
            return None, []
        selected = self._select(found, "InstanceId")
        live = [i for i in selected if (i.get("State") or {}).get("Name") in REMOVABLE_STATES]
        going = [i for i in live if (i.get("State") or {}).get("Name") == "shutting-down"]
        running = [i for i in live if i not in going]
        for start in range(0, len(running), TERMINATE_BATCH):
            batch = running[start:start + TERMINATE_BATCH]
            ids = [i["InstanceId"] for i in batch]
            if self.check_mode or self.attempt(
                f"terminate {', '.join(ids)}", functools.partial(_aws.terminate_instances, self.client, ids)
            ) is not None:
                going.extend(batch)
        self.removed["instances"] = sorted(i["InstanceId"] for i in going)
        # an instance that could not be terminated holds its group and volumes: they are not waited for
        return selected, sorted(going, key=lambda i: i["InstanceId"])

    def images(self, choice: str) -> tuple:
        """Deregister the selected images; returns (their snapshots, snapshots that must stay).

        The second value is None when the images could not be listed (no snapshot is then deleted).
        """
        found = self.attempt(
            "find images",
            lambda: _aws.describe_images(self.client, Owners=["self"], Filters=self.selection.filters(), IncludeDeprecated=True),
        )
        if found is None:
            return [], None
        to_snapshots: list = []
        protected: set = set()
        for image in self._select(found, "ImageId"):
            if image.get("State") in GONE_IMAGE_STATES:
                continue
            image_id = image["ImageId"]
            tags = tags_of(image)
            reason = None
            if _keep_tagged(tags):
                reason = f"tagged {_tags.KEEP}=true"
            elif choice == "unfinished" and _tags.EXPIRES_AT not in tags:
                reason = f"finished (no {_tags.EXPIRES_AT} tag)"
            if reason is None and self._remove(
                "images", image_id, f"deregister image {image_id}", functools.partial(_aws.deregister_image, self.client, image_id)
            ):
                to_snapshots.extend(s for s in snapshot_ids(image) if s not in to_snapshots)
                continue
            if reason is not None:
                self.kept[image_id] = reason
            # a kept image (or one that could not be deregistered) keeps its snapshots
            protected.update(snapshot_ids(image))
        return to_snapshots, protected

    def security_groups(self, instances: list) -> None:
        found = self.attempt(
            "find security groups", lambda: _aws.describe_security_groups(self.client, Filters=self.selection.filters())
        )
        for group in self._select(found or [], "GroupId"):
            group_id = group["GroupId"]
            holders = sorted(i["InstanceId"] for i in instances if group_id in _groups_of(i))
            self._remove("security_groups", group_id, f"delete security group {group_id}",
                         functools.partial(self.delete_group, group_id, holders))

    def delete_group(self, group_id: str, instance_ids: list) -> bool:
        """Delete a security group once the terminating instances of the selection release it.

        While they release their network interfaces DeleteSecurityGroup answers DependencyViolation:
        it is asked again on the waiter's schedule (up to wait_timeout), which takes the place of
        waiting for the instances to be `terminated` and rides out the short lag between
        `terminated` and the group being free. With no such instance holding it, a
        DependencyViolation is something else's and fails at once.
        """
        if not instance_ids:
            return _aws.delete_security_group(self.client, group_id)
        outcome: dict = {}

        def settled() -> bool:
            try:
                # False: the group was gone already
                outcome["deleted"] = _aws.delete_security_group(self.client, group_id)
            except _aws.BakeryAWSError as exc:
                if exc.code == "DependencyViolation":
                    return False
                raise
            return True

        _waiter.poll(
            settled,
            self.request.wait_timeout,
            lambda: {"security_groups": [group_id], "instances": list(instance_ids)},
            f"security group {group_id} to be released by {', '.join(instance_ids)}",
            **self._timing,
        )
        return outcome["deleted"]

    def key_pairs(self, selected: t.Optional[list]) -> None:
        # by run ID, a key pair can only be left when an instance of the run used one, or when no
        # instance of the run is left to tell; by expiry, any run's may be left
        if self.selection.run_id is not None and selected and not any(i.get("KeyName") for i in selected):
            return
        found = self.attempt(
            "find key pairs", lambda: _aws.describe_key_pairs(self.client, Filters=self.selection.filters())
        )
        for pair in self._select(found or [], "KeyName"):
            name = pair["KeyName"]
            self._remove("key_pairs", name, f"delete key pair {name}", functools.partial(_aws.delete_key_pair, self.client, name))

    def volumes(self, selected: t.Optional[list], going: list) -> None:
        # by run ID, a volume is only left when an instance of the run kept one at termination, or
        # when no instance of the run is left to tell; a terminated instance cannot tell (EC2 lists
        # it without its block device mappings), a key pair's name it does keep
        tellers = [i for i in selected or [] if (i.get("State") or {}).get("Name") != "terminated"]
        if self.selection.run_id is not None and selected and len(tellers) == len(selected) \
                and not any(_keeps_volume(i) for i in selected):
            return
        keeping = [i["InstanceId"] for i in going if _keeps_volume(i)]
        if keeping and not self.check_mode:
            # a kept volume becomes `available` (and can be deleted) only once its instance is terminated
            self.attempt(
                f"wait for {', '.join(keeping)} to terminate",
                lambda: _waiter.wait_for_instances(self.client, keeping, "terminated", self.request.wait_timeout,
                                                   **self._timing),
            )
        filters = self.selection.filters() + [{"Name": "status", "Values": ["available"]}]
        found = self.attempt("find volumes", lambda: _aws.describe_volumes(self.client, Filters=filters))
        for volume in self._select(found or [], "VolumeId"):
            volume_id = volume["VolumeId"]
            self._remove("volumes", volume_id, f"delete volume {volume_id}",
                         functools.partial(_aws.delete_volume, self.client, volume_id))

    def snapshots(self, choice: str, of_images: list, protected: set) -> None:
        """The snapshots of the images deregistered, then those of the selection no kept image uses."""
        found = self.attempt(
            "find snapshots",
            lambda: _aws.describe_snapshots(self.client, OwnerIds=["self"], Filters=self.selection.filters()),
        )
        orphans = []
        for snapshot in self._select(found or [], "SnapshotId"):
            snapshot_id = snapshot["SnapshotId"]
            if snapshot_id in of_images or snapshot_id in protected:
                continue
            tags = tags_of(snapshot)
            if (choice == "unfinished" and _tags.EXPIRES_AT not in tags) or _keep_tagged(tags):
                continue
            orphans.append(snapshot)
        if orphans and self.selection.run_id is None:
            # by expiry, the images that use these snapshots were not all listed (a finished image has
            # no expiry tag): the images of their runs are read, and what any of them uses stays
            in_use = self._in_use(orphans, protected)
            if in_use is None:
                return
            protected = in_use
        targets = list(of_images) + sorted(s["SnapshotId"] for s in orphans if s["SnapshotId"] not in protected)
        for snapshot_id in targets:
            self._remove("snapshots", snapshot_id, f"delete snapshot {snapshot_id}",
                         functools.partial(_aws.delete_snapshot, self.client, snapshot_id))

    def _in_use(self, orphans: list, protected: set) -> t.Optional[set]:
        runs = sorted({tags_of(s).get(_tags.RUN_ID) for s in orphans} - {None})
        if not runs:
            return protected
        images = self.attempt(
            "find the images of the snapshots' runs",
            lambda: _aws.describe_images(self.client, Owners=["self"], IncludeDeprecated=True,
                                         Filters=[{"Name": f"tag:{_tags.RUN_ID}", "Values": runs}]),
        )
        if images is None:
            return None
        going = set(self.removed["images"])
        in_use = set(protected)
        for image in images:
            if image["ImageId"] not in going and image.get("State") not in GONE_IMAGE_STATES:
                in_use.update(snapshot_ids(image))
        return in_use

    def result(self) -> dict:
        return {
            "removed": {kind: sorted(ids) if kind != "snapshots" else list(ids) for kind, ids in self.removed.items()},
            "kept": dict(sorted(self.kept.items())),
            "errors": list(self.errors),
            "restored_defaults": dict(self.restored_defaults),
        }


# ---------------------------------------------------------------------------------------------
# Key directories on the controller


def remove_key_dir(path: str, check_mode: bool) -> tuple:
    """The run's key directory: removed when it is a real directory (never a link). Returns (removed, errors)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return [], []
    except OSError as e:
        return [], [f"key_dir: cannot look at {path!r}: {e.strerror}"]
    if stat.S_ISLNK(info.st_mode):
        return [], [f"key_dir: {path!r} is a symbolic link; a key directory is never removed through a link (left as it is)"]
    if not stat.S_ISDIR(info.st_mode):
        return [], [f"key_dir: {path!r} is not a directory; only a run's key directory is removed (left as it is)"]
    if check_mode:
        return [path], []
    parent, name = os.path.split(path)
    try:
        # through the root-confined layer: nothing below is followed, a link swapped in is removed itself
        ImageRoot(parent, "key_dir").remove("/" + name)
    except (OSError, RootError) as e:
        return [], [f"key_dir: could not remove {path!r}: {getattr(e, 'strerror', None) or e}"]
    return [path], []


def sweep_key_root(root: str, cutoff: float, check_mode: bool) -> tuple:
    """Every run's key directory under root (a real directory named like a run ID, never a link)
    last changed before cutoff (a POSIX time). Returns (removed, errors)."""
    try:
        info = os.lstat(root)
    except FileNotFoundError:
        return [], []
    except OSError as e:
        return [], [f"key_root: cannot look at {root!r}: {e.strerror}"]
    if stat.S_ISLNK(info.st_mode):
        return [], [f"key_root: {root!r} is a symbolic link; key directories are never removed through a link"]
    if not stat.S_ISDIR(info.st_mode):
        return [], [f"key_root: {root!r} is not a directory"]
    removed: list = []
    errors: list = []
    try:
        layer = ImageRoot(root, "key_root")
        entries = layer.entries("/")
    except (OSError, RootError) as e:
        return [], [f"key_root: cannot list {root!r}: {getattr(e, 'strerror', None) or e}"]
    for entry in entries:
        name = entry.path.rsplit("/", 1)[-1]
        if not valid_run_id(name) or not stat.S_ISDIR(entry.stat.st_mode) or entry.stat.st_mtime >= cutoff:
            continue
        path = os.path.join(root, name)
        if not check_mode:
            try:
                layer.remove("/" + name)
            except (OSError, RootError) as e:
                errors.append(f"key_root: could not remove {path!r}: {getattr(e, 'strerror', None) or e}")
                continue
        removed.append(path)
    return removed, errors


# ---------------------------------------------------------------------------------------------
# The whole cleanup


class Cleanup:
    """Every region of the request concurrently, then the key directories; act only outside check mode."""

    def __init__(self, clients: dict, request: Request, check_mode: bool = False, *, warn=None, sleep=None,
                 clock=None, now=None):
        self.clients = clients
        self.request = request
        self.check_mode = check_mode
        self.selection = Selection(request, warn)
        self._timing = {"sleep": sleep, "clock": clock}
        self._now = now

    def region(self, region: str) -> dict:
        cleanup = RegionCleanup(self.clients[region], region, self.request, self.selection, self.check_mode,
                                **self._timing)
        return cleanup.run()

    def key_dirs(self) -> tuple:
        request = self.request
        if request.key_dir is not None:
            return remove_key_dir(request.key_dir, self.check_mode)
        if request.key_root is not None:
            cutoff = request.expiry().timestamp() - request.key_ttl_minutes * 60
            return sweep_key_root(request.key_root, cutoff, self.check_mode)
        return [], []

    def run(self) -> dict:
        regions = self.request.regions
        results = dict(zip(regions, _fanout.each(self.region, regions, MAX_WORKERS)))
        key_dirs, key_errors = self.key_dirs()
        errors = [error for region in regions for error in results[region]["errors"]] + key_errors
        removed = {region: results[region]["removed"] for region in regions}
        result = {
            "changed": bool(key_dirs) or any(ids for found in removed.values() for ids in found.values()),
            "selection": self.request.describe(),
            "removed": removed,
            "kept": {region: results[region]["kept"] for region in regions if results[region]["kept"]},
            "key_dirs": key_dirs,
        }
        if self.request.launch_templates:
            result["restored_defaults"] = {region: results[region]["restored_defaults"] for region in regions
                                           if results[region]["restored_defaults"]}
        if errors:
            raise CleanupError(errors, result)
        return result


def remove_run(client, run_id: str, check_mode: bool = False, *, wait_timeout: int = 600, sleep=None,
               clock=None) -> dict:
    """ami_builder state=absent: the builder resources of one run in one region (no images, no key
    directory), errors without a region prefix. Raises CleanupError listing every failure."""
    request = Request(regions=[""], run_id=run_id, wait_timeout=wait_timeout)
    cleanup = RegionCleanup(client, "", request, Selection(request), check_mode, label="", sleep=sleep, clock=clock)
    found = cleanup.run(images="none")
    removed = {kind: found["removed"][kind] for kind in BUILDER_KINDS}
    result = {"changed": any(removed.values()), "removed": removed}
    if found["errors"]:
        raise CleanupError(found["errors"], result)
    return result
