# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# The core of bakery.ami.ami_builder: the temporary builder instance of one bake run, with its
# security group and key pair, made and removed with as few EC2 calls as possible.
#
# Everything of a run carries the tag bakery:run-id and the name bakery-<run_id>, so:
# - state=running looks for the run's instance with one DescribeInstances. Found: nothing is
#   changed (at most a wait for `running`). Not found: the security group and key pair are
#   created directly (a Duplicate answer means an earlier attempt made them: reuse), then
#   RunInstances with a ClientToken, then the wait. Fresh without key or SSH ranges that is
#   DescribeInstances, CreateSecurityGroup, RunInstances, DescribeInstances.
# - instance_types is an ordered fallback: RunInstances is tried with each type in turn; a refusal
#   that says this type cannot be had here now (FALLBACK_CODES: no capacity, not offered in the
#   zone, a quota of the type's class) moves on to the next type, any other error fails at once.
#   Each attempt has its own ClientToken (run ID, group, type), so a lost answer of any attempt is
#   answered with that attempt's launch and never launches twice.
# - every mutating call survives a lost answer (EC2 acted, the answer never came, the retry meets
#   what the first attempt made): a duplicate security group or ingress rule is the run's own and
#   is used; RunInstances carries a ClientToken; CreateTags is idempotent; and a key pair whose
#   private key we do not hold (EC2 hands it out only once) is deleted and created again.
# - the private key goes to key_file and its public key, with the comment bakery-<run_id>, to
#   key_file.pub: that pair of files marks the key as the run's. A file at either path that is
#   not the run's (or a link) is never written over: refused before any API call.
# - state=absent is the collection's one removal engine (_cleanup, bakery.ami.ami_cleanup) for
#   this run in this region, without images or key directory.
# - purpose=test is the run's test instance (the image test stage): another instance of the same
#   run, sharing its security group and key pair, told apart from the builder by the tag
#   bakery:purpose=test (its lookup, its Name bakery-<run_id>-test) and by its ClientToken (the
#   purpose and the image in it). The builder's lookup skips test instances. state=absent with
#   purpose=test terminates only the run's test instances (and waits until they are terminated);
#   the security group and key pair stay for the builder's cleanup.

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import hashlib
import ipaddress
import os
import re
import stat
import typing as t

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _cleanup
from ansible_collections.bakery.ami.plugins.module_utils import _tags
from ansible_collections.bakery.ami.plugins.module_utils import _time
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._validate import internet_covering_families
from ansible_collections.bakery.ami.plugins.module_utils import _waiter
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._images import tag_list
from ansible_collections.bakery.ami.plugins.module_utils._images import tag_spec as _tag_spec
from ansible_collections.bakery.ami.plugins.module_utils._images import tags_of
from ansible_collections.bakery.ami.plugins.module_utils._paths import write_atomically

RUN_ID_TAG = _tags.RUN_ID
PURPOSE_TAG = _tags.PURPOSE
PURPOSES = ("builder", "test")
# EC2's limit on the user data of an instance (before base64)
MAX_USER_DATA_BYTES = 16384
EXPIRES_TAG = _tags.EXPIRES_AT
NAME_PREFIX = "bakery-"
VOLUME_SIZE_RANGE = (1, 16384)
# States of a builder that still exists; shutting-down and terminated ones are gone for good.
LIVE_STATES = ("pending", "running", "stopping", "stopped")
# Preference when (against the rules) several live instances carry the run's tag.
STATE_PREFERENCE = {"running": 0, "pending": 1, "stopping": 2, "stopped": 3}
SSH_PORT = 22
# The module adds bakery:run-id, Name and bakery:expires-at to the tags EC2 allows per resource.
MAX_TAGS = _tags.MAX_TAGS
OWN_TAGS = 3
# A private or public key file larger than this is not one the module wrote.
KEY_FILE_MAX_BYTES = 64 * 1024
PUBLIC_SUFFIX = ".pub"

# Full-string patterns with ASCII classes only (fullmatch: a trailing newline is not accepted).
_IMAGE_REF = re.compile(_validate.IMAGE_ID + r"|resolve:ssm:[A-Za-z0-9_.\-/:]{1,2048}")
DEFAULT_INSTANCE_TYPE = "t3.micro"
MAX_INSTANCE_TYPES = _validate.MAX_INSTANCE_TYPES
# RunInstances refusals that concern the instance type asked for, so that another type may launch
# (EC2 API error codes): InsufficientInstanceCapacity (no capacity for the type in the zone now),
# Unsupported (the type is not offered in the subnet's zone), InstanceLimitExceeded and
# VcpuLimitExceeded (the account's quota of the type, or of its class of types, is used up; a type
# of another class may fit). Anything else (a bad image, a missing subnet, permissions, ...) would
# refuse every type alike: it fails at once.
FALLBACK_CODES = ("InsufficientInstanceCapacity", "Unsupported", "InstanceLimitExceeded", "VcpuLimitExceeded")
_DEVICE = re.compile(r"/dev/[a-z0-9]+")
_PUBLIC_LINE = re.compile(r"(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+) ([A-Za-z0-9+/]+={0,2})(?: ([\x21-\x7e]+))?\n?")
_OPENSSH_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_END = "-----END OPENSSH PRIVATE KEY-----"
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


class BuilderError(BakeryError):
    """A user-level failure: the message names the option and the rule."""


def _refusal_text(error: BaseException) -> str:
    """EC2's message of a refused RunInstances, short and on one line."""
    response = getattr(getattr(error, "exception", None), "response", None) or {}
    text = " ".join(str(response.get("Error", {}).get("Message") or "no message").split())
    return text if len(text) <= 200 else text[:200] + "..."


def resource_name(run_id: str) -> str:
    return NAME_PREFIX + run_id


def client_token(run_id: str, group_id: str, instance_type: str, purpose: str = "builder", image_id: str = "") -> str:
    """The RunInstances idempotency token (at most 64 ASCII characters).

    It comes from the run ID, the security group the instance goes into and the instance type
    of the attempt: a retried request (the answer lost) finds the group again and launches
    nothing new, a builder made again after state=absent (a new group) is not answered with the
    terminated one, and each type of instance_types is its own request (EC2 answers a token
    reused with other parameters IdempotentParameterMismatch). A test instance's token also holds
    its purpose and image, so it is never answered with the builder (same group, same type).
    """
    seed = f"{run_id}/{group_id}/{instance_type}" + (f"/{purpose}/{image_id}" if purpose != "builder" else "")
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:40]
    return f"bakery-{digest}"


def _run_filter(run_id: str) -> dict:
    return {"Name": f"tag:{RUN_ID_TAG}", "Values": [run_id]}


def _ssh_ranges(group: dict) -> set:
    """The CIDR blocks a security group admits to TCP port 22 (exactly)."""
    have: set = set()
    for permission in group.get("IpPermissions") or []:
        if permission.get("IpProtocol") == "tcp" and permission.get("FromPort") == SSH_PORT and permission.get("ToPort") == SSH_PORT:
            have.update(r.get("CidrIp") for r in permission.get("IpRanges") or [])
            have.update(r.get("CidrIpv6") for r in permission.get("Ipv6Ranges") or [])
    return have


# ---------------------------------------------------------------------------------------------
# Input


valid_run_id = _cleanup.valid_run_id


def _validate_cidrs(cidrs: t.Any, allow_open: bool) -> list:
    if cidrs is None:
        return []
    if not isinstance(cidrs, list):
        return ["ssh_cidrs: must be a list of IPv4 or IPv6 CIDR blocks"]
    errors = []
    alone = set()
    for index, cidr in enumerate(cidrs):
        where = f"ssh_cidrs[{index}]"
        if not isinstance(cidr, str) or "/" not in cidr:
            errors.append(f"{where}: '{cidr}' is not a CIDR block with a prefix length (for example 203.0.113.10/32)")
            continue
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errors.append(f"{where}: '{cidr}' is not an IPv4 or IPv6 CIDR block (for example 203.0.113.0/24)")
            continue
        if str(network) != cidr:
            errors.append(f"{where}: '{cidr}' has host bits set; write the network, '{network}'")
            continue
        if network.prefixlen == 0 and not allow_open:
            alone.add(network.version)
            errors.append(
                f"{where}: '{cidr}' opens SSH to the whole internet; set allow_open_ssh: true to allow it"
            )
    if not allow_open:
        for family in internet_covering_families(cidrs):
            version = 4 if family == "IPv4" else 6
            if version in alone:
                continue
            members = [c for c in cidrs if isinstance(c, str) and (":" in c) == (version == 6)]
            shown = ", ".join(f"'{c}'" for c in members[:6]) + (f" and {len(members) - 6} more" if len(members) > 6 else "")
            errors.append(
                f"ssh_cidrs: together {shown} cover all of {family} and open SSH to the whole internet; "
                "set allow_open_ssh: true to allow it"
            )
    return errors


def _validate_key_file(path: t.Any, run_id: str | None) -> str | None:
    if not isinstance(path, str) or not path:
        return "key_file: must be a file path"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "key_file: must not contain control characters (a newline, a tab, ...)"
    if path.endswith("/") or (os.path.isdir(path) and not os.path.islink(path)):
        return f"key_file: '{path}' is a directory; give the path of the private key file to write"
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"key_file: the directory of '{path}' ({directory}) does not exist; create it first"
    if run_id is None:
        return None
    try:
        key_files(path, run_id)
    except BuilderError as e:
        return str(e)
    return None


def instance_types(params: dict) -> list:
    """The types to try, in order: instance_types, else instance_type as a one-entry list."""
    if params.get("instance_types") is not None:
        return list(params["instance_types"])
    return [params.get("instance_type") or DEFAULT_INSTANCE_TYPE]


def _validate_instance_types(params: dict) -> list:
    listed = params.get("instance_types")
    if listed is None:
        error = _validate.instance_type("instance_type", params.get("instance_type") or DEFAULT_INSTANCE_TYPE)
        return [error] if error else []
    if params.get("instance_type") is not None:
        return ["instance_types: set either instance_type or instance_types (the types to try in order), not both"]
    return _validate.instance_types("instance_types", listed)


@dataclasses.dataclass(frozen=True)
class BuilderRequest:
    """A checked ami_builder request: build_request held every rule before it was made."""

    run_id: str
    state: str = "running"
    image_id: str | None = None
    instance_types: tuple[str, ...] = (DEFAULT_INSTANCE_TYPE,)
    subnet_id: str | None = None
    vpc_id: str | None = None
    ssh_cidrs: tuple[str, ...] = ()
    allow_open_ssh: bool = False
    key_file: str | None = None
    associate_public_ip: bool | None = None
    root_device_name: str = "/dev/xvda"
    volume_size: int = 8
    volume_type: str = "gp3"
    kms_key_id: str | None = None
    expires_at: str | None = None
    tags: dict = dataclasses.field(default_factory=dict)
    wait: bool = True
    wait_timeout: int = 600
    purpose: str = "builder"
    user_data: str | None = None

    @property
    def absent(self) -> bool:
        return self.state == "absent"


def build_request(params: dict, now: datetime.datetime | None = None) -> BuilderRequest:
    """Check every option of ami_builder and return the request; raises BuilderError listing every problem
    validate() finds (``errors`` in its result), before any API call and any change on disk."""
    errors = validate(params, now)
    if errors:
        raise BuilderError("; ".join(errors), {"errors": errors})
    given = {name: params[name] for name in ("state", "wait", "wait_timeout", "purpose") if params.get(name) is not None}
    if params.get("state", "running") == "absent":
        # the options of a builder to make are neither checked nor used when removing one
        return BuilderRequest(run_id=params["run_id"], **given)
    given.update({name: params[name] for name in (
        "image_id", "subnet_id", "vpc_id", "key_file", "associate_public_ip", "root_device_name",
        "volume_size", "volume_type", "kms_key_id", "expires_at", "user_data",
    ) if params.get(name) is not None})
    return BuilderRequest(
        run_id=params["run_id"],
        instance_types=tuple(instance_types(params)),
        ssh_cidrs=tuple(params.get("ssh_cidrs") or ()),
        allow_open_ssh=bool(params.get("allow_open_ssh")),
        tags=dict(params.get("tags") or {}),
        **given,
    )


def validate(params: dict, now: datetime.datetime | None = None) -> list:
    """Every problem with the options, found without any API call (nor any change on disk)."""
    errors: list[str | None] = []  # the checks return None when they pass: filtered at the end
    run_id = params.get("run_id")
    if not valid_run_id(run_id):
        shown = run_id if not isinstance(run_id, str) or len(run_id) <= 80 else run_id[:80] + "..."
        errors.append(f"run_id: must be 6-64 characters of letters, digits and '-', got {shown!r}")
        run_id = None
    errors.append(_validate.tags("tags", params.get("tags")))
    if isinstance(params.get("tags"), dict):
        for key in params["tags"]:
            if key in (RUN_ID_TAG, EXPIRES_TAG, "Name"):
                errors.append(f"tags: '{key}' is set by the module (from run_id / expires_at); leave it out of tags")
        if len(params["tags"]) > MAX_TAGS - OWN_TAGS:
            errors.append(
                f"tags: at most {MAX_TAGS - OWN_TAGS} tags (EC2 allows {MAX_TAGS} per resource and the module adds "
                f"{RUN_ID_TAG}, Name and {EXPIRES_TAG}), got {len(params['tags'])}"
            )
    timeout = params.get("wait_timeout")
    if timeout is not None and not 1 <= timeout <= 86400:
        errors.append(f"wait_timeout: must be 1-86400 seconds, got {timeout}")
    purpose = params.get("purpose")
    if purpose is not None and purpose not in PURPOSES:
        errors.append(f"purpose: must be one of {', '.join(PURPOSES)}, got {str(purpose)[:80]!r}")
    if params.get("state", "running") == "absent":
        return [error for error in errors if error]

    image_id = params.get("image_id")
    if image_id is None:
        errors.append("image_id: required when state is running")
    elif not isinstance(image_id, str) or not _IMAGE_REF.fullmatch(image_id):
        errors.append(
            f"image_id: {str(image_id)[:80]!r} is neither an image ID (ami- followed by 8 or 17 hex digits) "
            "nor resolve:ssm:<parameter name>"
        )
    errors.extend(_validate_instance_types(params))
    if params.get("subnet_id") is not None:
        errors.append(_validate.resource_id("subnet_id", params["subnet_id"], "subnet"))
    if params.get("vpc_id") is not None:
        errors.append(_validate.resource_id("vpc_id", params["vpc_id"], "vpc"))
    errors.extend(_validate_cidrs(params.get("ssh_cidrs"), bool(params.get("allow_open_ssh"))))
    if params.get("key_file") is not None:
        errors.append(_validate_key_file(params["key_file"], run_id))
    user_data = params.get("user_data")
    if user_data is not None:
        if not isinstance(user_data, str):
            errors.append("user_data: must be a string (the text given to the instance at launch)")
        elif len(user_data.encode("utf-8")) > MAX_USER_DATA_BYTES:
            errors.append(
                f"user_data: must be at most {MAX_USER_DATA_BYTES} bytes (EC2's limit), got {len(user_data.encode('utf-8'))}"
            )
    root = params.get("root_device_name")
    if not isinstance(root, str) or not _DEVICE.fullmatch(root):
        errors.append(f"root_device_name: must be a device path such as /dev/xvda, got {str(root)[:80]!r}")
    size = params.get("volume_size")
    low, high = VOLUME_SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
        errors.append(f"volume_size: must be {low}-{high} GiB, got {size!r}")
    if params.get("volume_type") not in _validate.VOLUME_TYPES:
        errors.append(f"volume_type: must be one of {', '.join(_validate.VOLUME_TYPES)}, got '{params.get('volume_type')}'")
    if params.get("kms_key_id") is not None:
        errors.append(_validate.kms_key("kms_key_id", params["kms_key_id"]))
    if params.get("expires_at") is not None:
        parsed, error = _validate.parse_time("expires_at", params["expires_at"])
        if error is None and parsed <= (now or _time.now()):
            # a builder that expired already is one any sweep removes at once
            error = f"expires_at: '{params['expires_at']}' is in the past; sweep.yml would remove the builder at once"
        errors.append(error)
    return [error for error in errors if error]


# ---------------------------------------------------------------------------------------------
# Key files: key_file (private, 0600) and key_file.pub (public, comment bakery-<run_id>)


def _read_string(data: bytes, pos: int) -> tuple:
    """One SSH wire-format string (uint32 length, bytes) at pos: (bytes, next pos)."""
    if pos + 4 > len(data):
        raise ValueError("truncated")
    size = int.from_bytes(data[pos:pos + 4], "big")
    end = pos + 4 + size
    if end > len(data):
        raise ValueError("truncated")
    return data[pos + 4:end], end


def public_blob_of_private(text: str) -> bytes | None:
    """The public key blob an OpenSSH private key (openssh-key-v1, as EC2 hands out ed25519 keys)
    carries in clear, or None when the text is not such a key. No cryptography needed."""
    text = text.strip()
    if not (text.startswith(_OPENSSH_BEGIN) and text.endswith(_OPENSSH_END)):
        return None
    body = "".join(text[len(_OPENSSH_BEGIN):-len(_OPENSSH_END)].split())
    try:
        data = base64.b64decode(body, validate=True)
        if not data.startswith(_OPENSSH_MAGIC):
            return None
        pos = len(_OPENSSH_MAGIC)
        for _field in ("cipher", "kdf", "kdf options"):
            _value, pos = _read_string(data, pos)
        if pos + 4 > len(data) or int.from_bytes(data[pos:pos + 4], "big") < 1:
            return None
        blob, _pos = _read_string(data, pos + 4)
        _read_string(blob, 0)  # the key type
    except (ValueError, binascii.Error):
        return None
    return blob


def public_line(blob: bytes, comment: str) -> str:
    """The OpenSSH public key line of a key blob: '<type> <base64> <comment>'."""
    key_type, _pos = _read_string(blob, 0)
    return f"{key_type.decode('ascii')} {base64.b64encode(blob).decode('ascii')} {comment}"


def parse_public_line(text: str) -> tuple | None:
    """(blob, comment) of an OpenSSH public key line, or None."""
    match = _PUBLIC_LINE.fullmatch(text)
    if not match:
        return None
    try:
        blob = base64.b64decode(match.group(2), validate=True)
        key_type, _pos = _read_string(blob, 0)
    except (ValueError, binascii.Error):
        return None
    if key_type != match.group(1).encode("ascii"):
        return None
    return blob, match.group(3) or ""


def _read_key_file(path: str, option_path: str) -> str | None:
    """The text of a small regular file at path, never through a link; None when nothing is there."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise BuilderError(f"key_file: cannot read '{option_path}': {e.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise BuilderError(
            f"key_file: '{option_path}' is a symbolic link; the module never writes through a link: "
            "give the path of a new file"
        )
    if not stat.S_ISREG(info.st_mode):
        raise BuilderError(f"key_file: '{option_path}' exists and is not a regular file; give the path of a new file")
    if info.st_size > KEY_FILE_MAX_BYTES:
        raise BuilderError(
            f"key_file: '{option_path}' exists and is not this run's key ({info.st_size} bytes, larger than any key "
            "the module writes); the module never writes over a file it did not write: give another path"
        )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            return handle.read(KEY_FILE_MAX_BYTES + 1).decode("utf-8", "replace")
    except OSError as e:
        raise BuilderError(f"key_file: cannot read '{option_path}': {e.strerror}") from None


def key_files(path: str, run_id: str) -> str | None:
    """Whether the files at key_file and key_file.pub are this run's, without changing anything.

    Returns the public key line when both are there and are the run's (the private key holds the
    public key of the .pub, whose comment is bakery-<run_id>), None when the private key is not
    there (nothing, or only the run's .pub from an attempt cut short). Raises BuilderError naming
    key_file for anything else: a link, a directory, a file the module did not write.
    """
    public_path = path + PUBLIC_SUFFIX
    comment = resource_name(run_id)
    foreign = "the module never writes over a file it did not write: give another path, or remove it if it is a leftover"
    public_text = _read_key_file(public_path, public_path)
    private_text = _read_key_file(path, path)
    parsed = None
    if public_text is not None:
        parsed = parse_public_line(public_text)
        if parsed is None or parsed[1] != comment:
            shown = f"comment '{parsed[1]}'" if parsed is not None else "not an OpenSSH public key line"
            raise BuilderError(
                f"key_file: '{public_path}' exists and is not the public key of run {run_id} ({shown}, "
                f"not '{comment}'); {foreign}"
            )
    if private_text is None:
        return None
    if parsed is None:
        raise BuilderError(
            f"key_file: '{path}' exists and is not this run's key (there is no '{public_path}' naming {comment} "
            f"beside it); {foreign}"
        )
    if public_blob_of_private(private_text) != parsed[0]:
        raise BuilderError(
            f"key_file: '{path}' exists and does not hold the key of '{public_path}' (run {run_id}); {foreign}"
        )
    return public_line(parsed[0], comment)


def write_private_key(path: str, material: str) -> None:
    """The private key, written atomically and 0600 from the start (never readable by others)."""
    write_atomically(os.path.abspath(path), material if material.endswith("\n") else material + "\n", mode=0o600)


def write_key_files(path: str, material: str, run_id: str) -> str:
    """Write the run's key: first key_file.pub (the public key, comment bakery-<run_id>, 0644), then
    key_file (0600), each atomically. Returns the public key line. The caller has checked with
    key_files() that neither path holds anything but the run's own files."""
    blob = public_blob_of_private(material)
    if blob is None:
        raise BuilderError(
            f"key_file: the private key EC2 returned for {resource_name(run_id)} is not an OpenSSH key; "
            "its public key cannot be written"
        )
    line = public_line(blob, resource_name(run_id))
    write_atomically(os.path.abspath(path + PUBLIC_SUFFIX), line + "\n", mode=0o644)
    write_private_key(path, material)
    return line


# ---------------------------------------------------------------------------------------------
# The builder


class Builder:
    """Look up, compare, create or remove; act only outside check mode."""

    def __init__(self, client, request: BuilderRequest, check_mode: bool = False, *, warn=None, sleep=None, clock=None,
                 write_key=None):
        self.client = client
        self.request = request
        self.check_mode = check_mode
        self.run_id = request.run_id
        self.name = resource_name(self.run_id)
        self._timing = {}
        if sleep is not None:
            self._timing["sleep"] = sleep
        if clock is not None:
            self._timing["clock"] = clock
        self._write_key = write_key or write_key_files
        self.purpose = request.purpose
        self.tags = dict(request.tags)
        self.tags[RUN_ID_TAG] = self.run_id
        self.tags["Name"] = self.name
        if request.expires_at is not None:
            self.tags[EXPIRES_TAG] = _time.iso(_time.parse(request.expires_at))
        # the instance's own tags: a test instance says so (the security group and key pair are the run's)
        self.instance_tags = dict(self.tags)
        if self.purpose != "builder":
            self.instance_tags[PURPOSE_TAG] = self.purpose
            self.instance_tags["Name"] = f"{self.name}-{self.purpose}"
        self.key_file = request.key_file
        self.public_key: str | None = None
        self.created: list = []
        self.attempts: list = []  # RunInstances per instance type: {instance_type, error_code}
        self.chosen_type: str | None = None
        self.warnings: list = []
        self._warn = warn

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self._warn is not None:
            self._warn(message)

    # -- lookups --------------------------------------------------------------------------------

    def find_instances(self, states: t.Iterable[str]) -> list:
        """The run's instances of this purpose: a test instance by its tag; the builder is any other
        (EC2 filters cannot ask for a tag's absence, so test instances are left out here)."""
        filters = [_run_filter(self.run_id), {"Name": "instance-state-name", "Values": list(states)}]
        if self.purpose != "builder":
            filters.append({"Name": f"tag:{PURPOSE_TAG}", "Values": [self.purpose]})
        found = _aws.describe_instances(self.client, Filters=filters)
        if self.purpose == "builder":
            found = [i for i in found if tags_of(i).get(PURPOSE_TAG, "builder") == "builder"]
        return found

    def pick(self, instances: list) -> dict:
        ordered = sorted(
            instances,
            key=lambda i: (STATE_PREFERENCE.get(i.get("State", {}).get("Name"), 9), str(i.get("LaunchTime", "")), i["InstanceId"]),
        )
        if len(ordered) > 1:
            self.warn(
                f"several instances carry {RUN_ID_TAG}={self.run_id} "
                f"({', '.join(i['InstanceId'] for i in ordered)}); using {ordered[0]['InstanceId']}"
            )
        return ordered[0]

    def find_group_by_name(self, vpc_id: str | None) -> dict | None:
        filters = [{"Name": "group-name", "Values": [self.name]}]
        if vpc_id:
            filters.append({"Name": "vpc-id", "Values": [vpc_id]})
        groups = _aws.describe_security_groups(self.client, Filters=filters)
        groups = [g for g in groups if g.get("GroupName") == self.name]
        if not groups:
            return None
        # without a VPC, the group EC2 just refused is the one in the default VPC; prefer ours
        groups.sort(key=lambda g: (tags_of(g).get(RUN_ID_TAG) != self.run_id, g["GroupId"]))
        return groups[0]

    def find_key_pair(self) -> dict | None:
        """The run's key pair with its public key (to tell whether key_file holds its private key)."""
        pairs = _aws.describe_key_pairs(self.client, KeyNames=[self.name], IncludePublicKey=True)
        return pairs[0] if pairs else None

    def _held(self, pair: dict, line: str | None) -> bool:
        """Whether key_file (public key line `line`) holds the private key of the key pair."""
        if line is None:
            return False
        ours = parse_public_line(line)
        theirs = parse_public_line((pair.get("PublicKey") or "").strip())
        return ours is not None and theirs is not None and ours[0] == theirs[0]

    def resolve_vpc(self) -> str | None:
        """The security group's VPC: vpc_id, else the subnet's (one DescribeSubnets), else the default."""
        if self.request.vpc_id:
            return self.request.vpc_id
        subnet_id = self.request.subnet_id
        if not subnet_id:
            return None
        subnets = _aws.describe_subnets(self.client, SubnetIds=[subnet_id])
        if not subnets:
            raise BuilderError(f"subnet_id: subnet {subnet_id} does not exist")
        return subnets[0]["VpcId"]

    # -- running ----------------------------------------------------------------------------------

    def _key_file_missing_error(self, detail: str) -> BuilderError:
        return BuilderError(
            f"key_file: '{self.key_file}' does not exist, but {detail}; EC2 hands out a private key only "
            f"once, so it cannot be recovered. Remove the builder (state: absent) and run again"
        )

    def _replaceable(self, pair: dict) -> None:
        """Only the run's own key pair (tagged with its run ID) is ever deleted to be made again."""
        if tags_of(pair).get(RUN_ID_TAG) != self.run_id:
            raise BuilderError(
                f"key_file: the key pair {self.name} exists, key_file does not hold its private key, and it is not "
                f"tagged {RUN_ID_TAG}={self.run_id}, so it is not this run's to replace; delete it or use another run_id"
            )

    def ensure_key_pair(self) -> str | None:
        """The run's key pair, its private key in key_file and its public key in key_file.pub.

        CreateKeyPair answered Duplicate means the pair exists: made by an earlier attempt of the
        run, or by this very call when its answer was lost and the retry met what it made. When
        key_file holds the pair's private key it is used; otherwise nobody holds it (EC2 hands it
        out only once), so the run's pair is deleted and made again.
        """
        if self.key_file is None:
            return None
        line = key_files(self.key_file, self.run_id)  # refuses files that are not the run's
        request = {
            "KeyName": self.name,
            "KeyType": "ed25519",
            "TagSpecifications": [_tag_spec("key-pair", self.tags)],
        }
        try:
            answer = _aws.create_key_pair(self.client, **request)
        except _aws.BakeryAWSError as e:
            if _aws.error_code(e) != "InvalidKeyPair.Duplicate":
                raise
            pair = self.find_key_pair()
            if pair is not None and self._held(pair, line):
                self.public_key = line
                return self.name
            if pair is not None:
                self._replaceable(pair)
                _aws.delete_key_pair(self.client, self.name)
                self.warn(
                    f"the key pair {self.name} existed but its private key was not in key_file (an earlier answer "
                    "of CreateKeyPair was lost, or the file was removed): it was deleted and made again"
                )
            answer = _aws.create_key_pair(self.client, **request)
        self.public_key = self._write_key(self.key_file, answer["KeyMaterial"], self.run_id)
        self.created.append("key_pair")
        return self.name

    def ensure_security_group(self, vpc_id: str | None) -> str:
        request = {
            "GroupName": self.name,
            "Description": f"bakery.ami builder of run {self.run_id} (temporary)",
            "TagSpecifications": [_tag_spec("security-group", self.tags)],
        }
        if vpc_id:
            request["VpcId"] = vpc_id
        try:
            group_id = _aws.create_security_group(self.client, **request)["GroupId"]
        except _aws.BakeryAWSError as e:
            if _aws.error_code(e) != "InvalidGroup.Duplicate":
                raise
            group = self.find_group_by_name(vpc_id)
            if group is None:
                raise BuilderError(
                    f"run_id: security group {self.name} exists (InvalidGroup.Duplicate) but could not be found; rerun the task"
                ) from None
            self._adopt_group(group)
            return group["GroupId"]
        self.created.append("security_group")
        self.authorize(group_id, list(self.request.ssh_cidrs))
        return group_id

    def _adopt_group(self, group: dict) -> None:
        missing = {k: v for k, v in self.tags.items() if tags_of(group).get(k) != v}
        if missing:
            # so that state=absent (which finds groups by tag) removes it too
            _aws.create_tags(self.client, [group["GroupId"]], tag_list(missing))
        have = _ssh_ranges(group)
        wanted = [cidr for cidr in self.request.ssh_cidrs if cidr not in have]
        self.authorize(group["GroupId"], wanted)

    def authorize(self, group_id: str, cidrs: list) -> None:
        """Admit SSH from cidrs. InvalidPermission.Duplicate is the group's own rule: on a reused group
        (made by an earlier attempt), or on a new one when the answer of this very call was lost
        and the retry met the rule it made. The group is read back then, and only ranges it does
        not admit yet are asked for again (once)."""
        if not cidrs:
            return
        try:
            self._authorize(group_id, cidrs)
        except _aws.BakeryAWSError as e:
            if _aws.error_code(e) != "InvalidPermission.Duplicate":
                raise
            missing = [c for c in cidrs if c not in self._admitted(group_id)]
            if missing:
                self._authorize(group_id, missing)

    def _admitted(self, group_id: str) -> set:
        groups = _aws.describe_security_groups(self.client, GroupIds=[group_id])
        return _ssh_ranges(groups[0]) if groups else set()

    def _authorize(self, group_id: str, cidrs: list) -> None:
        v4 = [c for c in cidrs if ":" not in c]
        v6 = [c for c in cidrs if ":" in c]
        permission: dict = {"IpProtocol": "tcp", "FromPort": SSH_PORT, "ToPort": SSH_PORT}
        description = f"SSH to the bakery.ami builder of run {self.run_id}"
        if v4:
            permission["IpRanges"] = [{"CidrIp": c, "Description": description} for c in v4]
        if v6:
            permission["Ipv6Ranges"] = [{"CidrIpv6": c, "Description": description} for c in v6]
        _aws.authorize_security_group_ingress(self.client, GroupId=group_id, IpPermissions=[permission])

    def run_request(self, group_id: str, key_name: str | None, instance_type: str | None = None) -> dict:
        wanted = self.request
        instance_type = instance_type or wanted.instance_types[0]
        ebs: dict = {
            "VolumeSize": wanted.volume_size,
            "VolumeType": wanted.volume_type,
            "Encrypted": True,
            "DeleteOnTermination": True,
        }
        if wanted.kms_key_id:
            ebs["KmsKeyId"] = wanted.kms_key_id
        request = {
            "ImageId": wanted.image_id,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": client_token(self.run_id, group_id, instance_type, self.purpose, wanted.image_id or ""),
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"},
            "BlockDeviceMappings": [{"DeviceName": wanted.root_device_name, "Ebs": ebs}],
            "InstanceInitiatedShutdownBehavior": "stop",
            "TagSpecifications": [_tag_spec("instance", self.instance_tags), _tag_spec("volume", self.instance_tags)],
        }
        if wanted.user_data is not None:
            # the SDK encodes it in base64 for RunInstances
            request["UserData"] = wanted.user_data
        if key_name:
            request["KeyName"] = key_name
        if wanted.associate_public_ip is not None:
            interface = {
                "DeviceIndex": 0,
                "AssociatePublicIpAddress": wanted.associate_public_ip,
                "Groups": [group_id],
                "DeleteOnTermination": True,
            }
            if wanted.subnet_id:
                interface["SubnetId"] = wanted.subnet_id
            request["NetworkInterfaces"] = [interface]
        else:
            request["SecurityGroupIds"] = [group_id]
            if wanted.subnet_id:
                request["SubnetId"] = wanted.subnet_id
        return request

    def launch(self, group_id: str, key_name: str | None) -> dict:
        """RunInstances with each of instance_types in order until one launches.

        A refusal in FALLBACK_CODES moves on to the next type; any other error fails at once. Every
        attempt is recorded in self.attempts ({instance_type, error_code}, error_code null for the
        one that launched). When every type is refused, BuilderError lists each with its refusal.
        """
        refusals = []
        for instance_type in self.request.instance_types:
            try:
                instance = _aws.run_instances(self.client, **self.run_request(group_id, key_name, instance_type))[0]
            except _aws.BakeryAWSError as e:
                code = _aws.error_code(e)
                if code not in FALLBACK_CODES:
                    raise
                self.attempts.append({"instance_type": instance_type, "error_code": code})
                refusals.append(f"{instance_type}: {code} ({_refusal_text(e)})")
                continue
            self.attempts.append({"instance_type": instance_type, "error_code": None})
            return instance
        raise BuilderError(
            f"instance_types: EC2 launched none of the {len(refusals)} instance types: " + "; ".join(refusals),
            {"changed": bool(self.created), "instance_type": None, "instance_type_attempts": list(self.attempts),
             "created": list(self.created),
             "security_group_id": group_id, "key_name": key_name},
        )

    def _wait_running(self, instance: dict) -> dict:
        done = _waiter.wait_for_instances(
            self.client, [instance["InstanceId"]], "running", self.request.wait_timeout, **self._timing
        )
        return done[instance["InstanceId"]]

    def _group_of(self, instance: dict) -> str | None:
        groups = list(instance.get("SecurityGroups") or [])
        for interface in instance.get("NetworkInterfaces") or []:
            groups.extend(interface.get("Groups") or [])
        for group in groups:
            if group.get("GroupName") == self.name:
                return group.get("GroupId")
        return groups[0].get("GroupId") if groups else None

    def result(self, instance: dict | None, changed: bool, group_id: str | None, key_name: str | None) -> dict:
        instance = instance or {}
        return {
            "changed": changed,
            "instance_id": instance.get("InstanceId"),
            "state": (instance.get("State") or {}).get("Name"),
            "private_ip": instance.get("PrivateIpAddress"),
            "public_ip": instance.get("PublicIpAddress"),
            "subnet_id": instance.get("SubnetId"),
            "vpc_id": instance.get("VpcId"),
            "security_group_id": group_id,
            "key_name": key_name,
            "key_file": self.key_file,
            "public_key": self.public_key,
            "tags": tags_of(instance) if instance else dict(self.instance_tags),
            "created": list(self.created),
            "instance_type": instance.get("InstanceType") or self.chosen_type,
            "instance_type_attempts": list(self.attempts),
        }

    def _existing(self, instance: dict) -> dict:
        key_name = None
        if self.key_file is not None:
            key_name = instance.get("KeyName")
            if not key_name:
                raise BuilderError(
                    f"key_file: builder {instance['InstanceId']} of run {self.run_id} was launched without a key pair; "
                    "remove it (state: absent) and run again"
                )
            self.public_key = key_files(self.key_file, self.run_id)
            if self.public_key is None:
                raise self._key_file_missing_error(f"builder {instance['InstanceId']} uses the key pair {key_name}")
        state = (instance.get("State") or {}).get("Name")
        if state == "pending" and self.request.wait and not self.check_mode:
            instance = self._wait_running(instance)
        elif state in ("stopping", "stopped"):
            self.warn(f"builder {instance['InstanceId']} is {state}; the module does not start it")
        return self.result(instance, False, self._group_of(instance), key_name)

    def _predict(self) -> dict:
        """Check mode without a builder: what would be made (lookups only)."""
        if self.key_file is not None:
            line = key_files(self.key_file, self.run_id)
            pair = self.find_key_pair()
            if pair is not None and self._held(pair, line):
                self.public_key = line
            else:
                if pair is not None:
                    self._replaceable(pair)  # would be deleted and made again
                self.created.append("key_pair")
        vpc_id = self.resolve_vpc()
        group = self.find_group_by_name(vpc_id)
        if group is None:
            self.created.append("security_group")
        self.created.append("instance")
        self.chosen_type = self.request.instance_types[0]  # the first one it would try
        key_name = self.name if self.key_file is not None else None
        return self.result(None, True, group["GroupId"] if group else None, key_name)

    def ensure_running(self) -> dict:
        found = self.find_instances(LIVE_STATES)
        if found:
            return self._existing(self.pick(found))
        if self.check_mode:
            return self._predict()
        vpc_id = self.resolve_vpc()
        key_name = self.ensure_key_pair()
        group_id = self.ensure_security_group(vpc_id)
        instance = self.launch(group_id, key_name)
        self.chosen_type = self.attempts[-1]["instance_type"]
        self.created.append("instance")
        if self.request.wait:
            instance = self._wait_running(instance)
        return self.result(instance, True, group_id, key_name)

    # -- absent -----------------------------------------------------------------------------------

    def remove(self) -> dict:
        """Everything of the run in this region, by the one removal engine (_cleanup); with a purpose
        other than the builder, only the run's instances of that purpose (remove_purpose)."""
        if self.purpose != "builder":
            return self.remove_purpose()
        return _cleanup.remove_run(
            self.client, self.run_id, self.check_mode, wait_timeout=self.request.wait_timeout, **self._timing
        )

    def remove_purpose(self) -> dict:
        """Terminate the run's instances of this purpose (the test instance) and wait until they are
        terminated; the security group and key pair are the run's and stay (its cleanup removes them)."""
        found = self.find_instances(LIVE_STATES + ("shutting-down",))
        ids = sorted(i["InstanceId"] for i in found)
        removed = {"instances": ids, "security_groups": [], "key_pairs": [], "volumes": []}
        if not ids:
            return {"changed": False, "removed": removed}
        if not self.check_mode:
            live = sorted(i["InstanceId"] for i in found if (i.get("State") or {}).get("Name") != "shutting-down")
            if live:
                _aws.terminate_instances(self.client, live)
            _waiter.wait_for_instances(self.client, ids, "terminated", self.request.wait_timeout, **self._timing)
        changed = any((i.get("State") or {}).get("Name") != "shutting-down" for i in found)
        return {"changed": changed, "removed": removed}

    def run(self) -> dict:
        if self.request.absent:
            return self.remove()
        return self.ensure_running()
