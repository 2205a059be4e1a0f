# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reliability properties as functions: each returns the list of violations it finds.

Both the real tests and the planted tests (which put a violation in a scratch copy and expect
the check to report it) call these, so a check that cannot fail is itself caught.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

# Actions that only read: every other action changes the account (or may: a new API verb counts
# as mutating until it is listed here).
READ_PREFIXES = ("Describe", "Get", "List")
TRACEBACK = "Traceback (most recent call last)"
UNHANDLED = "Task failed: Module failed:"
# The longest message a clear refusal needs (it quotes an excerpt of a bad value, not all of it).
MAX_MESSAGE = 4000
PRIVATE_KEY_MARKERS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"b3BlbnNzaC1rZXktdjE"),  # base64 of "openssh-key-v1", the body of an OpenSSH private key
)


def mutating_calls(counts: dict) -> dict:
    """The actions in endpoint counts that change something, with their numbers."""
    return {action: n for action, n in counts.items() if n and not action.startswith(READ_PREFIXES)}


def _strings(value):
    """Every string inside a (nested) module result."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def idempotency_problems(module: str, second: dict, second_counts: dict) -> list:
    """A second run with the same arguments must report changed: false and mutate nothing."""
    problems = []
    if second.get("failed"):
        problems.append("%s: second run failed: %s" % (module, second.get("msg")))
    if second.get("changed") is not False:
        problems.append("%s: second run reported changed=%r" % (module, second.get("changed")))
    mutating = mutating_calls(second_counts)
    if mutating:
        problems.append("%s: second run made mutating calls %s" % (module, mutating))
    return problems


def clean_failure_problems(case: str, result: dict) -> list:
    """No Python traceback and no unhandled exception, whether the task failed or not."""
    problems = []
    msg = str(result.get("msg", ""))
    if any(TRACEBACK in text for text in _strings(result)):
        problems.append("%s: Python traceback in the output" % case)
    if msg.startswith(UNHANDLED) or "MODULE FAILURE" in msg:
        # ansible-core 2.19 hides the traceback of an unhandled exception below -vvv and reports
        # it as "Task failed: Module failed: <exception text>"; fail_json messages come as given
        problems.append("%s: unhandled exception (Python traceback with -vvv): %r" % (case, msg[:200]))
    # ansible-core 2.19 puts exception: "(traceback unavailable)" in every fail_json result;
    # a crash shows as module_stderr or a traceback text, which the line above catches
    if result.get("module_stderr"):
        problems.append("%s: module_stderr in the result: %r" % (case, str(result["module_stderr"])[:200]))
    if 'File "' in str(result.get("exception", "")):
        problems.append("%s: exception with a traceback in the result" % case)
    return problems


def refusal_problems(case: str, result: dict, options=()) -> list:
    """A refusal: failed, with a clear message naming one of options (when any is given), no
    traceback, no change reported. A clear message quotes a value, not all 100 kB of it."""
    if isinstance(options, str):
        options = (options,)
    problems = []
    if not result.get("failed"):
        problems.append("%s: did not fail (changed=%r)" % (case, result.get("changed")))
    msg = str(result.get("msg", ""))
    if options and not any(option in msg for option in options):
        problems.append("%s: message does not name %s: %r" % (case, " or ".join(map(repr, options)), msg[:300]))
    if len(msg) > MAX_MESSAGE:
        problems.append("%s: message of %d characters (a clear one quotes at most an excerpt of the value)"
                        % (case, len(msg)))
    problems += clean_failure_problems(case, result)
    if result.get("changed"):
        problems.append("%s: reported changed" % case)
    return problems


def bad_input_problems(case: str, result: dict, option: str) -> list:
    """A malformed input must fail with a message naming the option and without a traceback."""
    return refusal_problems(case, result, (option,))


def fingerprint(tree) -> dict:
    """Every entry under tree (and tree itself): type, inode, mode, owner, times, and the content
    hash or link target; two fingerprints are equal only if nothing was written, replaced,
    re-created, chmod-ed or chown-ed. Reading changes none of it (atime is left out)."""
    tree = Path(tree)
    found = {}
    if not os.path.lexists(tree):
        return found
    paths = [tree]
    for dirpath, dirnames, filenames in os.walk(tree):
        paths += [Path(dirpath) / name for name in dirnames + filenames]
    for path in paths:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            content = "-> " + os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = ""
        found[str(path.relative_to(tree))] = (st.st_ino, "%o" % st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                              st.st_mtime_ns, st.st_ctime_ns, content)
    return found


_FIELDS = ("inode", "mode", "uid", "gid", "size", "mtime", "ctime", "content")


def fingerprint_changes(before: dict, after: dict) -> list:
    """What differs between two fingerprints, entry by entry."""
    changes = ["%s was removed" % path for path in sorted(set(before) - set(after))]
    changes += ["%s appeared" % path for path in sorted(set(after) - set(before))]
    for path in sorted(set(before) & set(after)):
        diff = [name for name, old, new in zip(_FIELDS, before[path], after[path], strict=True) if old != new]
        if diff:
            changes.append("%s: %s changed" % (path, ", ".join(diff)))
    return changes


def tree_digest(root) -> str:
    """A digest of every path, mode, link target and file content under root."""
    digest = hashlib.sha256()
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            st = path.lstat()
            digest.update(("%s %o\n" % (path.relative_to(root), st.st_mode)).encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


def secret_leaks(text: str, secrets: dict) -> list:
    """Private keys or secret values (name -> value) that appear in a log."""
    problems = []
    for pattern in PRIVATE_KEY_MARKERS:
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            problems.append("private key material (%s) on line %d" % (pattern.pattern, line))
    for name, value in secrets.items():
        if value and value in text:
            line = text.count("\n", 0, text.index(value)) + 1
            problems.append("%s appears in the log (first on line %d)" % (name, line))
    return problems


def _tags(resource: dict) -> dict:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", []) or []}


def account_inventory(aws, regions: list) -> dict:
    """Everything the account holds in regions that a bake could have made (self-owned)."""
    inventory = {}
    for region in regions:
        ec2 = aws.client("ec2", region)
        images = ec2.describe_images(Owners=["self"], IncludeDeprecated=True)["Images"]
        instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        inventory[region] = {
            "images": images,
            "snapshots": ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"],
            "instances": [i for i in instances if i["State"]["Name"] != "terminated"],
            "key_pairs": ec2.describe_key_pairs()["KeyPairs"],
            "security_groups": [g for g in ec2.describe_security_groups()["SecurityGroups"]
                                if g["GroupName"] != "default"],
            "volumes": ec2.describe_volumes()["Volumes"],
        }
    return inventory


def account_problems(aws, regions: list, expected_images: dict) -> list:
    """The account holds exactly expected_images (region -> image ID), their snapshots, and nothing else."""
    problems = []
    inventory = account_inventory(aws, regions)
    for region, held in inventory.items():
        expected = expected_images.get(region)
        image_ids = [i["ImageId"] for i in held["images"]]
        if expected and expected not in image_ids:
            problems.append("%s: expected image %s is missing" % (region, expected))
        keep_snapshots = set()
        for image in held["images"]:
            if image["ImageId"] == expected:
                if image["State"] != "available":
                    problems.append("%s: image %s is %s" % (region, expected, image["State"]))
                keep_snapshots |= {m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", [])
                                   if m.get("Ebs", {}).get("SnapshotId")}
            else:
                problems.append("%s: extra image %s (%s)" % (region, image["ImageId"], image.get("Name")))
        problems += ["%s: extra snapshot %s" % (region, s["SnapshotId"])
                     for s in held["snapshots"] if s["SnapshotId"] not in keep_snapshots]
        problems += ["%s: instance %s left %s" % (region, i["InstanceId"], i["State"]["Name"])
                     for i in held["instances"]]
        problems += ["%s: key pair %s left" % (region, k["KeyName"]) for k in held["key_pairs"]]
        problems += ["%s: security group %s (%s) left" % (region, g["GroupId"], g["GroupName"])
                     for g in held["security_groups"]]
        problems += ["%s: volume %s left (%s)" % (region, v["VolumeId"], v["State"]) for v in held["volumes"]]
    return problems


def run_leftovers(aws, regions: list, run_id: str) -> list:
    """Anything of one bake run (tag bakery:run-id, or the run's key pair name) still in the account."""
    problems = []
    for region, held in account_inventory(aws, regions).items():
        for kind, id_key in (("images", "ImageId"), ("snapshots", "SnapshotId"), ("instances", "InstanceId"),
                             ("security_groups", "GroupId"), ("volumes", "VolumeId"), ("key_pairs", "KeyName")):
            for resource in held[kind]:
                if _tags(resource).get("bakery:run-id") == run_id or (
                        kind == "key_pairs" and resource["KeyName"] == "bakery-%s" % run_id):
                    problems.append("%s: %s %s of run %s left" % (region, kind[:-1], resource[id_key], run_id))
    return problems
