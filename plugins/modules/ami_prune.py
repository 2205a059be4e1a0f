#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ami_prune
short_description: Keep-N, age and deprecation lifecycle of an image family across regions
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - Selects this account's images of one family (the tag C(bakery:family)) or with given tags in
    one or more regions, and retires the old ones (sets their deprecation time, deregisters them
    and deletes their snapshots).
  - Tags select images literally. DescribeImages is asked for the exact values, and every image
    it returns is compared again with the selected tags before anything is decided; an image that
    does not carry them exactly is reported under RV(regions.ignored) and never touched. Tag values
    holding V(*), V(?) or V(\\) are refused, since an EC2 filter reads them as wildcards and escapes
    (C(bakery:family=*) would select every family).
  - Keep rules apply per family. The selected images of a region are grouped by their
    C(bakery:family) value and each family is ranked on its own, newest first by creation date, so
    O(keep_latest=2) keeps two images of every family the selection holds. An image without a
    C(bakery:family) tag is never touched unless O(prune_without_family=true).
  - In each family an image is kept, with the reason reported, when it is the newest available
    image of the family, is tagged C(bakery:keep=true), is in use by an instance
    (O(protect_in_use)), is among the O(keep_latest) newest, or is not C(available) (still
    pending, or failed).
  - Every other image is superseded. A superseded image older than O(keep_days) (any superseded
    image without O(keep_days)) is deregistered when O(deregister=true), and its snapshots
    deleted when O(delete_snapshots=true) and no other image of the account uses them.
    With O(deprecate_after_days) alone (neither O(keep_latest) nor O(keep_days)) nothing is
    deregistered; every image but the newest is only deprecated.
  - A superseded image that stays gets a deprecation time of its creation date plus
    O(deprecate_after_days), or the next minute when that lies in the past, unless it already
    has an earlier one.
  - Deletion limits. Without O(max_deletions) a run deregisters at most 10 images in all (every
    region and family together) and at most half of the images of any family in a region. A run
    that would deregister more fails before any change, in check mode too, and lists the images
    it would deregister; set O(max_deletions) to the number it names to allow it.
  - Only images owned by this account are ever selected. The newest image of every family is
    always kept, whatever the policy says.
  - All regions are read first, then changed, each region in its own thread. Check mode is the
    dry run; it reports what the real run would do, and fails where the real run would fail.
options:
  family:
    description:
      - The image family, the value of the tag C(bakery:family).
      - 1-64 characters, letters, digits, C(.), C(_) or C(-), starting with a letter or digit (the
        rule the bake applies to family names, since they become part of AMI names).
      - At least one of O(family) and O(tags) is required; given both, an image must match both.
    type: str
  tags:
    description:
      - Select images that carry all these tags, with exactly these values.
      - Values may not hold V(*), V(?) or V(\\), nor control characters. Tag names are 1-128 letters,
        digits, spaces and C(_.:/=+-@) and may not start with C(aws:).
      - Without O(family), every family among the selected images is pruned on its own.
    type: dict
  regions:
    description:
      - The regions to prune in. Defaults to the module's region (O(region)).
    type: list
    elements: str
  keep_latest:
    description:
      - How many of the newest images to keep in each region; at least 1.
      - At least one of O(keep_latest), O(keep_days) and O(deprecate_after_days) is required.
        Without O(keep_latest) the newest image is still kept.
    type: int
  keep_days:
    description:
      - Keep superseded images younger than this many days (by creation date) from being
        deregistered. They can still be deprecated (O(deprecate_after_days)).
      - From V(0) to V(36500).
    type: int
  deprecate_after_days:
    description:
      - Give every superseded image that is not deregistered a deprecation time of its creation
        date plus this many days (V(0) deprecates it now). Deprecated images are hidden from
        DescribeImages unless asked for, but can still be launched by ID.
      - From V(0) to V(36500).
      - With O(deregister=false) this retires images by deprecation instead of deleting them.
    type: int
  deregister:
    description:
      - Deregister superseded images older than O(keep_days).
    type: bool
    default: true
  delete_snapshots:
    description:
      - Delete the snapshots of deregistered images, unless another image of the account uses them.
    type: bool
    default: true
  protect_in_use:
    description:
      - Never touch an image that a pending, running, stopping or stopped instance in the same
        region was launched from.
    type: bool
    default: true
  required:
    description:
      - Fail when the selection matches no image in any of the regions, before anything is changed.
    type: bool
    default: false
  max_deletions:
    description:
      - The most images this run may deregister, over every region and family together. A run that
        would deregister more fails before any change and lists them.
      - Without it, a run deregisters at most 10 images, and at most half of the images of any
        family in a region (a safeguard against a selection or keep rule that is wider than meant).
        Given, it replaces both limits.
      - V(0) lets a run deprecate but never deregister.
      - From V(0) to V(100000).
    type: int
  prune_without_family:
    description:
      - Also prune selected images that carry no C(bakery:family) tag. They are ranked as one group
        of their own, under the same keep rules.
      - By default they are kept, with the reason reported.
    type: bool
    default: false
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - bakery.ami.attributes
attributes:
  check_mode:
    description: The dry run; reports what would be deprecated, deregistered and deleted.
    support: full
  diff_mode:
    description: The module reports its changes in its result, not as a diff.
    support: none
  idempotent:
    description: A rerun finds nothing more to do and reports no change.
    support: full
seealso:
  - module: bakery.ami.ami_create
"""

EXAMPLES = r"""
- name: Keep the three newest web-base images in every bake region; delete the rest
  bakery.ami.ami_prune:
    family: web-base
    regions: [us-east-1, eu-west-1, ap-southeast-2]
    keep_latest: 3
    required: true
  register: pruned

- name: Dry run of a gentler policy - deprecate after 30 days, delete only after 90
  bakery.ami.ami_prune:
    family: web-base
    keep_latest: 2
    keep_days: 90
    deprecate_after_days: 30
  check_mode: true

- name: First prune of a family with many old images - allow the run to deregister up to 40
  bakery.ami.ami_prune:
    family: web-base
    keep_latest: 3
    max_deletions: 40

- name: Keep the two newest images of every base family (each family on its own)
  bakery.ami.ami_prune:
    tags:
      bakery:stage: base
    keep_latest: 2

- name: Retire by deprecation only
  bakery.ami.ami_prune:
    tags:
      bakery:family: web-base
      bakery:stage: service
    keep_latest: 5
    deprecate_after_days: 0
    deregister: false
"""

RETURN = r"""
dry_run:
  description: Whether this was a check-mode run that changed nothing.
  returned: always
  type: bool
would_deregister:
  description: How many images the run would have deregistered when it stopped at the deletion limits.
  returned: when the deletion limits stopped the run
  type: int
regions:
  description: What was done (in check mode, would be done) in each region.
  returned: always
  type: dict
  contains:
    images:
      description: How many images carry the selected tags (the ignored ones not counted).
      type: int
    deprecated:
      description:
        - Images given a deprecation time (C(image_id), C(name), C(creation_date), C(family), C(deprecation_time),
          C(reason)).
        - C(family) is the image's C(bakery:family) value, or null.
      type: list
      elements: dict
    deregistered:
      description: Images deregistered (C(image_id), C(name), C(creation_date), C(family), C(snapshot_ids)).
      type: list
      elements: dict
    deleted_snapshots:
      description: Snapshot IDs deleted.
      type: list
      elements: str
    kept:
      description: Images left alone (C(image_id), C(name), C(creation_date), C(family), C(reason)).
      type: list
      elements: dict
    ignored:
      description:
        - Images DescribeImages returned that do not carry the selected tags with exactly these values; never
          touched (C(image_id), C(name), C(creation_date), C(family), C(reason)).
      type: list
      elements: dict
    kept_snapshots:
      description: Snapshots of deregistered images left because other images use them (C(snapshot_id), C(reason)).
      type: list
      elements: dict
  sample:
    us-east-1:
      images: 3
      deprecated: []
      deregistered:
        - image_id: ami-0123456789abcdef0
          name: web-base 2025.10.01
          creation_date: "2025-10-01T10:00:00.000Z"
          family: web-base
          snapshot_ids: [snap-0123456789abcdef0]
      deleted_snapshots: [snap-0123456789abcdef0]
      kept:
        - image_id: ami-0fedcba9876543210
          name: web-base 2025.11.26
          creation_date: "2025-11-26T10:00:00.000Z"
          family: web-base
          reason: newest image
      kept_snapshots: []
      ignored: []
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _prune


def main():
    argument_spec = dict(
        family=dict(type="str"),
        tags=dict(type="dict"),
        regions=dict(type="list", elements="str"),
        keep_latest=dict(type="int"),
        keep_days=dict(type="int"),
        deprecate_after_days=dict(type="int"),
        deregister=dict(type="bool", default=True),
        delete_snapshots=dict(type="bool", default=True),
        protect_in_use=dict(type="bool", default=True),
        required=dict(type="bool", default=False),
        max_deletions=dict(type="int"),
        prune_without_family=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[("family", "tags"), ("keep_latest", "keep_days", "deprecate_after_days")],
    )
    errors = _prune.validate(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)

    regions = module.params["regions"] or [module.region]
    if not regions or not regions[0]:
        module.fail_json(msg="regions: give the regions to prune in, or set the module's region")
    clients = _aws.regional_clients(module, "ec2", regions)
    pruner = _prune.Pruner(clients, module.params, module.check_mode)
    try:
        result = pruner.run()
    except _prune.PruneError as e:
        module.fail_json(msg=e.msg, **e.result)
    except _prune.PartialFailure as e:
        module.fail_json(msg=str(e), **e.result)
    except _aws.BakeryAWSError as e:
        module.fail_json_aws_error(e)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
