# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_builder: the run's key file, who may reach the builder, and what a run's tags may say.

The account holds the builder of another run (instance, security group and key pair tagged
bakery:run-id=other-run-1), which no case may touch. Every case has its own run ID.
"""
from __future__ import annotations

import os
import stat

from tests.reliability.hostile.corpus import HUGE, NOT_YAML, Case, Link, accept, many_tags, refuse

MODULE = "ami_builder"
IMAGE = "ami-0f175555209074f2e"  # Debian 12 in the local catalog
DECOY_KEY = "{outside}/home/alice/.ssh/id_ed25519"


def prepare(endpoint, work) -> dict:
    ec2 = endpoint.client("ec2", "us-east-1")
    tags = [{"Key": "bakery:run-id", "Value": "other-run-1"}]
    group = ec2.create_security_group(GroupName="bakery-other-run-1", Description="another run",
                                      TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])
    ec2.create_key_pair(KeyName="bakery-other-run-1", TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}])
    ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, SecurityGroupIds=[group["GroupId"]],
                      TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    return {}


def running(run: str, **extra) -> dict:
    return dict({"run_id": "rel-hostile-%s" % run, "image_id": IMAGE, "wait_timeout": 60}, **extra)


def _public_key_returned(result, ctx):
    problems = []
    lines = [v for v in result.values() if isinstance(v, str) and v.startswith("ssh-ed25519 AAAA")]
    if not lines:
        problems.append("the public key (an OpenSSH ssh-ed25519 line) is not in the result (item 8)")
    key = ctx.dir / "keys" / "id_bakery"
    if not key.is_file() or stat.S_IMODE(os.lstat(key).st_mode) != 0o600:
        problems.append("the private key is not a 0600 file at key_file")
    return problems


OPEN_V4 = ["0.0.0.0/1", "128.0.0.0/1"]
OPEN_V6 = ["::/1", "8000::/1"]

CASES = [
    # careless input
    Case("run-id-empty", {"run_id": "", "image_id": IMAGE}, refuse("run_id")),
    Case("run-id-traversal", {"run_id": "../../etc/passwd", "image_id": IMAGE}, refuse("run_id")),
    Case("run-id-huge", {"run_id": HUGE, "image_id": IMAGE}, refuse("run_id")),
    Case("image-id-missing", {"run_id": "rel-hostile-image-missing"}, refuse("image_id")),
    Case("image-id-malformed", running("image-bad", image_id="ami-zz!"), refuse("image_id")),
    Case("ssh-open-to-all", running("open-0", ssh_cidrs=["0.0.0.0/0"]), refuse("ssh_cidrs")),
    Case("ssh-not-a-cidr", running("not-cidr", ssh_cidrs=["not a cidr"]), refuse("ssh_cidrs")),
    Case("key-file-dir-missing", running("key-dir", key_file="{case}/no/such/dir/id_ed25519"), refuse("key_file")),
    Case("subnet-id-traversal", running("subnet", subnet_id="subnet-../../x"), refuse("subnet_id")),
    Case("volume-size-huge", running("volume", volume_size=10 ** 9), refuse("volume_size")),
    Case("volume-type-not-a-choice", running("volume-type", volume_type="ssd"), refuse("volume_type")),
    Case("expires-at-not-a-time", running("expires", expires_at="soonish"), refuse("expires_at")),
    Case("tags-not-yaml", running("tags-yaml", tags=NOT_YAML), refuse("tags")),
    Case("wait-timeout-wrong-type", running("wait", wait_timeout="forever"), refuse("wait_timeout")),
    Case("state-not-a-choice", {"run_id": "rel-hostile-state", "state": "gone"}, refuse("state")),
    # key files: never over a file that is not the run's (issue 17, item 4)
    Case("key-file-is-users-private-key", running("key-decoy", key_file=DECOY_KEY), refuse("key_file"), item=4),
    Case("key-file-is-users-authorized-keys", running("key-authkeys", key_file="{outside}/home/alice/.ssh/authorized_keys"),
         refuse("key_file"), item=4),
    Case("key-file-link-to-users-key", running("key-link", key_file="{case}/keys/id_bakery"), refuse("key_file"),
         item=4, plants=(Link("{case}/keys/id_bakery", DECOY_KEY),)),
    Case("key-file-dangling-link-outside", running("key-dangling", key_file="{case}/keys/id_bakery"),
         refuse("key_file"), item=4, plants=(Link("{case}/keys/id_bakery", "{outside}/home/alice/.ssh/id_new"),)),
    Case("key-file-through-proc-self-root", running("key-proc", key_file="/proc/self/root" + DECOY_KEY),
         refuse("key_file"), item=4),
    Case("key-file-through-dir-link", running("key-dirlink", key_file="{case}/keys/ssh/id_ed25519"),
         refuse("key_file"), item=4, plants=(Link("{case}/keys/ssh", "{up}outside/home/alice/.ssh"),)),
    Case("key-file-newline", running("key-newline", key_file="{case}/keys/id\n"), refuse("key_file")),
    # the run's public key comes back for generalize_bake_authorized_key (issue 17, item 8)
    Case("key-file-fresh-returns-public-key", running("key-fresh", key_file="{case}/keys/id_bakery"),
         accept("the key pair is made, the private key written 0600 at key_file and the public key returned",
                _public_key_returned, mutating=True), item=8),
    # SSH open to the world by a union of prefixes (issue 17, item 7)
    Case("ssh-two-halves-ipv4", running("open-v4", ssh_cidrs=OPEN_V4), refuse("ssh_cidrs"), item=7),
    Case("ssh-two-halves-ipv6", running("open-v6", ssh_cidrs=OPEN_V6), refuse("ssh_cidrs"), item=7),
    Case("ssh-four-quarters-ipv4", running("open-quarters", ssh_cidrs=["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2",
                                                                       "192.0.0.0/2"]), refuse("ssh_cidrs"), item=7),
    Case("ssh-uneven-cover-ipv4", running("open-uneven", ssh_cidrs=["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3",
                                                                    "224.0.0.0/3"]), refuse("ssh_cidrs"), item=7),
    Case("ssh-zero-prefix-spelled-00", running("open-00", ssh_cidrs=["0.0.0.0/00"]), refuse("ssh_cidrs"), item=7),
    Case("ssh-cidr-trailing-newline", running("cidr-newline", ssh_cidrs=["203.0.113.0/24\n"]), refuse("ssh_cidrs"),
         item=10),
    Case("ssh-cidr-fullwidth-digits", running("cidr-fullwidth", ssh_cidrs=["２０３.0.113.0/24"]), refuse("ssh_cidrs")),
    # run IDs name every resource and drive cleanup (issue 17, item 10)
    Case("run-id-trailing-newline", running("newline\n"), refuse("run_id"), item=10),
    Case("run-id-arabic-indic-digit", running("digit-٣"), refuse("run_id"), item=10),
    Case("absent-run-id-wildcard", {"run_id": "*", "state": "absent"}, refuse("run_id")),
    Case("absent-run-id-other-run-newline", {"run_id": "other-run-1\n", "state": "absent"}, refuse("run_id"), item=10),
    Case("image-id-trailing-newline", running("image-newline", image_id=IMAGE + "\n"), refuse("image_id"), item=10),
    Case("subnet-id-trailing-newline", running("subnet-newline", subnet_id="subnet-0123456789abcdef0\n"),
         refuse("subnet_id"), item=10),
    # tags: 50 per resource counting the module's own, no aws: prefix (issue 17, item 11)
    Case("tags-51", running("tags-51", tags=many_tags(51)), refuse("tags"), item=11),
    Case("tags-48-plus-module-tags", running("tags-48", tags=many_tags(48), expires_at="2099-01-01T00:00:00Z"),
         refuse("tags"), item=11),
    Case("tags-aws-prefix", running("tags-aws", tags={"aws:cloudformation:stack-name": "x"}), refuse("tags"), item=11),
    Case("tags-key-129", running("tags-key", tags={"k" * 129: "v"}), refuse("tags"), item=11),
    Case("tags-value-257", running("tags-value", tags={"team": "v" * 257}), refuse("tags"), item=11),
    Case("tags-override-run-id", running("tags-runid", tags={"bakery:run-id": "other-run-1"}), refuse("tags")),
    # instance_types: 1-20 valid names, each once; not with instance_type
    Case("instance-types-empty", running("types-empty", instance_types=[]), refuse("instance_types")),
    Case("instance-types-21", running("types-21", instance_types=["m5.%dxlarge" % i for i in range(21)]),
         refuse("instance_types")),
    Case("instance-types-bad-name", running("types-bad", instance_types=["t3.micro", "t3.micro; rm -rf /"]),
         refuse("instance_types")),
    Case("instance-types-trailing-newline", running("types-newline", instance_types=["t3.micro\n"]),
         refuse("instance_types")),
    Case("instance-types-duplicates", running("types-twice", instance_types=["t3.micro", "t3.small", "t3.micro"]),
         refuse("instance_types")),
    Case("instance-types-and-instance-type", running("types-both", instance_types=["t3.micro"], instance_type="t3.small"),
         refuse("instance_types", "instance_type")),
    # purpose (builder or test) and user_data: the test instance of the bake's image test stage
    Case("purpose-not-a-choice", running("purpose", purpose="tester"), refuse("purpose")),
    Case("user-data-over-ec2-limit", running("user-data", user_data="x" * 16385), refuse("user_data")),
    Case("user-data-huge", running("user-data-huge", user_data=HUGE), refuse("user_data")),
    Case("absent-test-spares-another-runs-builder", {"run_id": "other-run-1", "state": "absent", "purpose": "test"},
         accept("only test instances are looked for: the builder of other-run-1 (no bakery:purpose tag) is not touched")),
    # a builder any sweep removes at once (issue 17, item 13)
    Case("expires-at-past", running("expires-past", expires_at="2001-01-01T00:00:00Z"), refuse("expires_at"), item=13),
    Case("expires-at-arabic-indic-digits", running("expires-digits", expires_at="2099-٠١-01T00:00:00Z"),
         refuse("expires_at"), item=12),
]
