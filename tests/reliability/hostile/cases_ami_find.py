# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_find: who may own the image the bake builds on, and what a search may match.

The account holds a look-alike of the Debian catalog's image, owned by someone the catalog does not
trust (here the endpoint's own account), and an image of the family rel-web.
"""
from __future__ import annotations

from tests.reliability.hostile.corpus import HUGE, NOT_YAML, Case, either, refuse

MODULE = "ami_find"
DEBIAN_OWNER = "136693071363"


def prepare(endpoint, work) -> dict:
    ec2 = endpoint.client("ec2", "us-east-1")
    snap = ec2.create_snapshot(VolumeId=ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"])
    for name, tags in (("debian-12-amd64-20991231-0000", {}), ("rel-web 1", {"bakery:family": "rel-web"})):
        ec2.register_image(
            Name=name, RootDeviceName="/dev/xvda", Architecture="x86_64", VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap["SnapshotId"]}}],
            TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
            if tags else [])
    return {}


def _trusted_owner(result, ctx):
    image = result.get("image") or {}
    owner = image.get("owner_id")
    return [] if owner in (None, DEBIAN_OWNER) else ["chose %s (%s) of owner %s, whom the catalog does not trust"
                                                     % (image.get("image_id"), image.get("name"), owner)]


def _nothing_found(result, ctx):
    return ["matched %s although no image carries the tag value literally" % result["image"].get("name")] \
        if result.get("image") else []


LITERAL = "matched literally: no image carries that value, nothing is found"

CASES = [
    # careless input
    Case("arch-not-a-choice", {"distro": "debian-12", "architecture": "sparc"}, refuse("architecture")),
    Case("owner-empty", {"owners": [""]}, refuse("owners")),
    Case("image-id-malformed", {"image_ids": ["ami-zz!"]}, refuse("image_ids")),
    Case("region-unknown", {"distro": "debian-12", "regions": ["moon-1"]}, refuse("regions")),
    Case("limit-wrong-type", {"distro": "debian-12", "limit": "lots"}, refuse("limit")),
    Case("limit-huge", {"distro": "debian-12", "limit": 10 ** 12}, refuse("limit")),
    Case("name-empty", {"owners": ["self"], "name": ""}, refuse("name")),
    Case("filters-not-yaml", {"owners": ["self"], "filters": NOT_YAML}, refuse("filters")),
    Case("tags-not-a-dict", {"owners": ["self"], "tags": "nope"}, refuse("tags")),
    Case("distro-huge", {"distro": HUGE}, refuse("distro")),
    Case("distro-traversal", {"distro": "../../etc/passwd"}, refuse("distro")),
    Case("bool-wrong-type", {"distro": "debian-12", "include_deprecated": "maybe"}, refuse("include_deprecated")),
    # trust: whose images may match
    Case("owner-wildcard", {"owners": ["*"]}, refuse("owners")),
    Case("owner-comma-wildcard", {"owners": "self,*"}, refuse("owners")),
    Case("filters-owner-id-wildcard", {"distro": "debian-12", "filters": {"owner-id": ["*"]}},
         either("filters", safe="the catalog's owner is kept: the Debian image, not the look-alike",
                check=_trusted_owner)),
    Case("filters-owner-alias-wildcard", {"owners": [DEBIAN_OWNER], "name": "debian-12-amd64-*",
                                          "filters": {"owner-id": "*", "owner-alias": "*"}},
         either("filters", safe="the owner given is kept: the Debian image, not the look-alike",
                check=_trusted_owner)),
    # trailing newlines, non-ASCII digits and look-alikes (issue 17, item 10)
    Case("owner-trailing-newline", {"owners": ["%s\n" % DEBIAN_OWNER]}, refuse("owners"), item=10),
    Case("owner-alias-trailing-newline", {"owners": ["self\n"]}, refuse("owners"), item=10),
    Case("owner-fullwidth-digits", {"owners": ["１３６６９３０７１３６３"]}, refuse("owners"), item=10),
    Case("owner-arabic-indic-digit", {"owners": ["13669307136٣"]}, refuse("owners"), item=10),
    Case("image-id-trailing-newline", {"image_ids": ["ami-0f175555209074f2e\n"]}, refuse("image_ids"), item=10),
    Case("image-id-wildcard", {"image_ids": ["ami-*"]}, refuse("image_ids")),
    Case("region-trailing-newline", {"distro": "debian-12", "regions": ["us-east-1\n"]}, refuse("regions"), item=10),
    Case("region-arabic-indic-digit", {"distro": "debian-12", "regions": ["us-east-١"]}, refuse("regions"), item=10),
    Case("region-zero-width-space", {"distro": "debian-12", "regions": ["us-east-1\u200b"]}, refuse("regions")),
    Case("distro-trailing-newline", {"distro": "debian-12\n"}, refuse("distro"), item=10),
    Case("distro-fullwidth-letter", {"distro": "ｄebian-12"}, refuse("distro")),
    Case("ssm-parameter-newline", {"ssm_parameter": "/aws/service/debian/release/12/latest/amd64\n"},
         refuse("ssm_parameter"), item=10),
    Case("architecture-trailing-newline", {"distro": "debian-12", "architecture": "x86_64\n"}, refuse("architecture")),
    # tag values go into EC2 filters, where * and ? are wildcards (issue 17, item 3)
    Case("tag-value-wildcard", {"owners": ["self"], "tags": {"bakery:family": "*"}, "required": False},
         either("tags", safe=LITERAL, check=_nothing_found), item=3),
    Case("tag-value-question-mark", {"owners": ["self"], "tags": {"bakery:family": "rel-we?"}, "required": False},
         either("tags", safe=LITERAL, check=_nothing_found), item=3),
]
