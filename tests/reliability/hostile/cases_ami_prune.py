# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ami_prune: selections that would retire images of other families, or too many at once.

Every region a case names holds the families rel-web (3 images), rel-db (2 images) and, in
us-east-1, rel-many (6 images), each image with its own snapshot, the tag bakery:stage=base and its
number as bakery:version (no image is disabled).
Cases whose answer depends on what the account holds run in a region of their own, so one case
accepted by mistake (which deregisters images) does not change what the next one sees.
"""
from __future__ import annotations

from tests.reliability.hostile.corpus import NOT_YAML, Case, either, refuse

MODULE = "ami_prune"
FAMILIES = {"rel-web": 3, "rel-db": 2}
# Regions of their own for the cases whose answer depends on the images there.
OWN_REGIONS = ("us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-central-1", "ap-southeast-1",
               "ap-southeast-2", "ap-northeast-1", "ca-central-1", "sa-east-1")


def _seed(ec2, region: str, families: dict) -> None:
    for family, count in families.items():
        for n in range(count):
            volume = ec2.create_volume(AvailabilityZone=region + "a", Size=8)["VolumeId"]
            snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
            ec2.register_image(
                Name="%s %d" % (family, n), RootDeviceName="/dev/xvda", Architecture="x86_64",
                VirtualizationType="hvm", BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}],
                TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "bakery:family", "Value": family},
                                                                      {"Key": "bakery:stage", "Value": "base"},
                                                                      {"Key": "bakery:version", "Value": str(n)}]}])


def prepare(endpoint, work) -> dict:
    _seed(endpoint.client("ec2", "us-east-1"), "us-east-1", dict(FAMILIES, **{"rel-many": 6}))
    for region in OWN_REGIONS:
        _seed(endpoint.client("ec2", region), region, FAMILIES)
    return {}


def _nothing_retired(result, ctx):
    problems = []
    for region, done in (result.get("regions") or {}).items():
        for kind in ("deregistered", "deprecated"):
            for image in done.get(kind) or []:
                problems.append("%s: %s %s (%s), which no image carries literally"
                                % (region, kind, image.get("image_id"), image.get("name")))
    return problems


LITERAL = "matched literally: no image carries that value, nothing is retired"
_own = iter(OWN_REGIONS)


def wildcard(case_id: str, tags: dict, item: int = 3) -> Case:
    """A tag value EC2 would read as a wildcard, in a region of its own."""
    return Case(case_id, {"tags": tags, "keep_latest": 1, "regions": [next(_own)]},
                either("tags", safe=LITERAL, check=_nothing_retired), item=item)


CASES = [
    # careless input
    Case("family-empty", {"family": "", "keep_latest": 1}, refuse("family")),
    Case("family-bad-chars", {"family": "bad family!", "keep_latest": 1}, refuse("family")),
    Case("keep-latest-negative", {"family": "rel-web", "keep_latest": -1}, refuse("keep_latest")),
    Case("keep-latest-wrong-type", {"family": "rel-web", "keep_latest": "three"}, refuse("keep_latest")),
    Case("keep-days-negative", {"family": "rel-web", "keep_days": -10}, refuse("keep_days")),
    Case("keep-days-huge", {"family": "rel-web", "keep_days": 10 ** 15}, refuse("keep_days")),
    Case("region-unknown", {"family": "rel-web", "keep_latest": 1, "regions": ["moon-1"]}, refuse("regions")),
    Case("region-empty", {"family": "rel-web", "keep_latest": 1, "regions": [""]}, refuse("regions")),
    Case("tags-not-yaml", {"tags": NOT_YAML, "keep_latest": 1}, refuse("tags")),
    Case("deprecate-after-negative", {"family": "rel-web", "keep_latest": 1, "deprecate_after_days": -1},
         refuse("deprecate_after_days")),
    Case("bool-wrong-type", {"family": "rel-web", "keep_latest": 1, "deregister": "perhaps"}, refuse("deregister")),
    # wildcards in tag values select every family (issue 17, item 3)
    wildcard("tag-family-star", {"bakery:family": "*"}),
    wildcard("tag-family-prefix-star", {"bakery:family": "rel-*"}),
    wildcard("tag-family-question-marks", {"bakery:family": "rel-???"}),
    wildcard("tag-family-star-in-middle", {"bakery:family": "rel*web"}),
    wildcard("tag-other-key-star", {"bakery:family": "rel-web", "bakery:stage": "*"}),
    wildcard("tag-family-trailing-newline", {"bakery:family": "rel-web\n"}, item=10),
    Case("tags-empty-selects-everything", {"tags": {}, "keep_latest": 1, "regions": [next(_own)]}, refuse("tags")),
    # family names (issue 17, item 10: families with a trailing newline passed)
    Case("family-trailing-newline", {"family": "rel-web\n", "keep_latest": 1}, refuse("family"), item=10),
    Case("family-star", {"family": "*", "keep_latest": 1}, refuse("family")),
    Case("family-cyrillic-look-alike", {"family": "rel-w\u0435b", "keep_latest": 1}, refuse("family")),
    Case("family-arabic-indic-digit", {"family": "rel-web-٣", "keep_latest": 1}, refuse("family"), item=12),
    Case("region-trailing-newline", {"family": "rel-web", "keep_latest": 1, "regions": ["us-east-1\n"]},
         refuse("regions"), item=10),
    # keep rules per family, and a stop before deleting most of one
    Case("keep-latest-zero", {"family": "rel-web", "keep_latest": 0}, refuse("keep_latest")),
    Case("most-of-a-family-without-max-deletions", {"family": "rel-many", "keep_latest": 1},
         refuse("max_deletions"), item=3),
    Case("max-deletions-negative", {"family": "rel-web", "keep_latest": 1, "max_deletions": -1},
         refuse("max_deletions")),
    Case("max-deletions-wrong-type", {"family": "rel-web", "keep_latest": 1, "max_deletions": "lots"},
         refuse("max_deletions")),
    Case("deprecate-after-huge", {"family": "rel-web", "deprecate_after_days": 10 ** 9}, refuse("deprecate_after_days")),
    # state=restored (issue 20): only a disabled version (or one an earlier restore enabled) comes back
    Case("restore-not-disabled", {"family": "rel-web", "state": "restored", "version": "0"}, refuse("state=restored")),
    Case("restore-without-version", {"family": "rel-web", "state": "restored"}, refuse("version")),
    Case("restore-with-retirement-options", {"family": "rel-web", "state": "restored", "version": "0", "keep_latest": 1},
         refuse("keep_latest")),
    Case("restore-reshare-wrong-type", {"family": "rel-web", "state": "restored", "version": "0", "reshare": "perhaps"},
         refuse("reshare")),
]
