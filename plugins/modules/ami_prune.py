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
    deleted when O(delete_snapshots=true) and no other image of the account uses them
    (DeregisterImage with C(DeleteAssociatedSnapshots) where the API has it, else DeleteSnapshot).
  - Staged retirement. Superseded images go through deprecation (O(deprecate_after_days),
    O(deprecate_after_count)), disabling (O(disable_after_days), O(disable_after_count)) and
    deregistration (O(deregister_after_days) or O(keep_days), O(deregister_after_count)), each at its
    own age and count (an image passes every one given for a stage). Neither the ages nor the counts
    may contradict that order.
  - In-use checks. Before an image is disabled or deregistered the module looks for its users in
    the region (instances in any state but terminated, the default and latest versions of launch
    templates, SSM parameters whose value is the image ID (DescribeImageReferences where the API has
    it, else DescribeParameters and GetParameters), a launch within O(keep_launched_within_days), and
    (unless O(include_shared=true)) sharing with other accounts, organizations or everyone). An image
    with users is kept (it can still be deprecated), with every user as a reason.
  - Deregistration protection is respected; see O(lift_protection).
    With O(deprecate_after_days) alone (neither O(keep_latest) nor O(keep_days)) nothing is
    deregistered; every image but the newest is only deprecated.
  - A superseded image that stays gets a deprecation time of its creation date plus
    O(deprecate_after_days), or the next minute when that lies in the past, unless it already
    has an earlier one.
  - Deletion limits. Without O(max_deletions) a run deregisters at most 10 images in all (every
    region and family together) and at most half of the images of any family in a region. A run
    that would deregister more fails before any change, in check mode too, and lists the images
    it would deregister; set O(max_deletions) to the number it names to allow it.
  - Disabled images of the selection are read too (C(IncludeDisabled)). They are never the newest
    image of a family; one older than the deregistration age is deregistered.
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
      - With O(state=present), at least one of O(keep_latest), O(keep_days), O(deprecate_after_days),
        O(disable_after_days), O(deregister_after_days) and the three C(*_after_count) options is required.
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
  state:
    description:
      - V(present) retires the old images of the selection (the keep rules and stages below).
      - V(restored) enables again the disabled images of one O(version) of the selection, in every region (EnableImage),
        tags each with C(bakery:restored-at) (the time), and with O(reshare=true) shares it again as its
        C(bakery:shared-with) tags record.
      - Every image of that version must be disabled, or available and tagged C(bakery:restored-at) by an earlier restore
        (a rerun, which only shares again what is missing and otherwise changes nothing); any other image (one never
        disabled, a pending or failed one) fails the run before any change.
    type: str
    choices: [present, restored]
    default: present
  version:
    description:
      - With O(state=restored), the C(bakery:version) tag value of the images to restore.
    type: str
  reshare:
    description:
      - With O(state=restored), give every restored image its launch permissions back, and its snapshots'
        C(createVolumePermission) where the share included them, from its C(bakery:shared-with) tags. EC2 removes an
        image's launch permissions when it is disabled (not its snapshots' permissions).
      - M(bakery.ami.ami_create) and M(bakery.ami.ami_copy) write those tags on every image and copy they share
        (accounts, C(all), organization and OU ARNs; see the README's tag table). An image without them is listed
        under RV(regions.not_recorded) and RV(launch_permissions) says it must be shared again by hand.
      - V(false) only enables the images; RV(launch_permissions) says they must be shared again.
      - Permissions are added, never removed.
    type: bool
    default: true
  disable_after_days:
    description:
      - The second stage of retirement. A superseded image at least this many days old (by creation date) is
        disabled (DisableImage) instead of deregistered until it is old enough for deregistration. A disabled image
        is hidden, cannot be launched, and loses its launch permissions; O(state=restored) brings it back.
      - Must be at least O(deprecate_after_days), and at most O(deregister_after_days) (or O(keep_days)).
      - With this option (or O(disable_after_count)) and none of O(deregister_after_days), O(keep_days) and
        O(deregister_after_count), nothing is deregistered; disabling is the last stage.
      - From V(0) to V(36500).
    type: int
  deregister_after_days:
    description:
      - The last stage of retirement. A superseded image at least this many days old is deregistered (disabled
        or not), with its snapshots when O(delete_snapshots=true).
      - The same age as O(keep_days), named for the staged options; set one of the two.
      - Must be at least O(disable_after_days) and O(deprecate_after_days).
      - From V(0) to V(36500).
    type: int
  deprecate_after_count:
    description:
      - Deprecate only the images beyond this many of the newest of each family (the first stage, by count). With
        O(deprecate_after_days) too, an image must be beyond the count and gets its deprecation time from the age.
      - From V(1) to V(100000).
    type: int
  disable_after_count:
    description:
      - Disable only the images beyond this many of the newest of each family. With O(disable_after_days) too, an
        image must be both beyond the count and old enough.
      - Must be at least O(deprecate_after_count), and at most O(deregister_after_count). From V(1) to V(100000).
    type: int
  deregister_after_count:
    description:
      - Deregister only the images beyond this many of the newest of each family. With
        O(deregister_after_days) (or O(keep_days)) too, an image must be both beyond the count and old enough.
      - Must be at least O(disable_after_count). From V(1) to V(100000).
    type: int
  lift_protection:
    description:
      - Lift the deregistration protection of the images this run deregisters
        (DisableImageDeregistrationProtection, then DeregisterImage).
      - Without it a protected image is never deregistered, and is listed under RV(regions.kept) with the
        protection as its reason.
      - Protection enabled with a cooldown stays in force for the cooldown (24 hours on EC2) after it is lifted; the
        run lifts it, reports the image under RV(regions.protection_lifted), and a later run deregisters it. An
        image still cooling down is listed under RV(regions.protection_cooldowns) with the time the cooldown ends.
    type: bool
    default: false
  keep_launched_within_days:
    description:
      - Keep (from being disabled or deregistered) an image launched within this many days, by its
        C(LastLaunchedTime). EC2 updates that time about 24 hours late, so use at least V(2).
      - From V(0) to V(36500).
    type: int
  include_shared:
    description:
      - Also disable and deregister images shared with other accounts, organizations or organizational units, or
        public. By default such an image is kept, with whom it is shared as the reason.
    type: bool
    default: false
  recycle_bin_check:
    description:
      - Report, in each region, whether a Recycle Bin retention rule for images (resource type C(EC2_IMAGE))
        covers the selected images (RV(regions.recycle_bin)), that is a region-level rule that does not exclude them, or a
        tag-level rule for one of their tags. Deregistered images that a rule covers can be recovered from the
        Recycle Bin until its retention period ends.
      - Where the rules cannot be read (no permission for C(rbin:ListRules)), the report says so and the run goes
        on.
    type: bool
    default: true
  recycle_bin_retention_days:
    description:
      - Create, in each region where no rule covers the family's images, a tag-level retention rule for images
        tagged C(bakery:family=<family>) that keeps them this many days after they are deregistered. The rule is
        made before any image is deregistered, so the images this run deregisters are retained.
      - Needs O(family). From V(1) to V(365).
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

- name: Staged retirement - deprecate after 30 days, disable after 60, deregister after 120
  bakery.ami.ami_prune:
    family: web-base
    regions: [us-east-1, eu-west-1, ap-southeast-2]
    keep_latest: 3
    deprecate_after_days: 30
    disable_after_days: 60
    deregister_after_days: 120
    keep_launched_within_days: 14
    lift_protection: true
    # deregistered images stay recoverable for 30 days where no Recycle Bin rule covers them yet
    recycle_bin_retention_days: 30

- name: Bring back a disabled version, shared again as its bakery:shared-with tags record
  bakery.ami.ami_prune:
    family: web-base
    regions: [us-east-1, eu-west-1]
    state: restored
    version: "20251001120000"

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
launch_permissions:
  description:
    - With O(state=restored), what happened to the launch permissions of the restored images (shared again from
      their C(bakery:shared-with) tags), or what must be done about them (without O(reshare), or for the images
      without the tags, which it names).
  returned: when O(state=restored)
  type: str
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
    disabled:
      description: Images disabled (C(image_id), C(name), C(creation_date), C(family), C(reason)).
      type: list
      elements: dict
    protection_lifted:
      description:
        - Images whose deregistration protection (with a cooldown) this run lifts; a later run deregisters them
          once the cooldown ends (C(image_id), C(name), C(creation_date), C(family), C(protection), C(cooldown)).
      type: list
      elements: dict
    protection_cooldowns:
      description:
        - Images kept because their protection was lifted and its cooldown has not ended (C(image_id), C(name),
          C(creation_date), C(family), C(protection), C(until)).
      type: list
      elements: dict
    recycle_bin:
      description:
        - With O(recycle_bin_check), whether a Recycle Bin retention rule covers the selected images in the region.
        - C(covered) (true, false, or null when the rules could not be read, with C(reason)); C(rules), the
          covering rules (C(identifier), C(retention_days), C(level) V(region) or V(tag), C(description));
          C(create_rule), the rule the run creates (or would create in check mode), and C(created_rule), its
          identifier once made.
      type: dict
    in_use_checked_by:
      description:
        - How instances and SSM parameters were looked up for the images the run would disable or deregister
          (V(DescribeImageReferences) or V(direct queries)); null when there were none.
      type: str
    restored:
      description: With O(state=restored), the images enabled again (empty on a rerun).
      type: list
      elements: dict
    reshared:
      description:
        - With O(state=restored) and O(reshare=true), the images whose sharing was given back, with the
          C(launch_permissions) (LaunchPermission entries) and C(snapshot_permissions) (snapshot ID to account IDs)
          added.
      type: list
      elements: dict
    not_recorded:
      description: With O(state=restored) and O(reshare=true), the images without C(bakery:shared-with) tags.
      type: list
      elements: dict
    deregistered:
      description:
        - Images deregistered (C(image_id), C(name), C(creation_date), C(family), C(snapshot_ids),
          C(lift_protection)). C(lift_protection) says its deregistration protection was lifted first.
      type: list
      elements: dict
    deleted_snapshots:
      description: Snapshot IDs deleted.
      type: list
      elements: str
    kept:
      description:
        - Images left alone (C(image_id), C(name), C(creation_date), C(family), C(reason), C(reasons)).
        - C(reasons) lists every reason (for example each launch template, SSM parameter and share that uses the
          image); C(reason) joins them.
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
          reasons: [newest image]
      disabled: []
      protection_lifted: []
      protection_cooldowns: []
      in_use_checked_by: null
      kept_snapshots: []
      ignored: []
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _prune
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError


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
        state=dict(type="str", choices=["present", "restored"], default="present"),
        version=dict(type="str"),
        reshare=dict(type="bool", default=True),
        disable_after_days=dict(type="int"),
        deregister_after_days=dict(type="int"),
        deprecate_after_count=dict(type="int"),
        disable_after_count=dict(type="int"),
        deregister_after_count=dict(type="int"),
        lift_protection=dict(type="bool", default=False),
        keep_launched_within_days=dict(type="int"),
        include_shared=dict(type="bool", default=False),
        recycle_bin_check=dict(type="bool", default=True),
        recycle_bin_retention_days=dict(type="int"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[("family", "tags")],
    )
    try:
        request = _prune.build_request(module.params, module.region)
        regions = request.regions
        clients = _aws.regional_clients(module, "ec2", regions)
        pruning = not request.restoring
        ssm_clients = _aws.regional_clients(module, "ssm", regions) if pruning else {}
        rbin_clients = _aws.regional_clients(module, "rbin", regions) if pruning and request.recycle_bin_check else {}
        pruner = _prune.Pruner(clients, request, module.check_mode, ssm_clients=ssm_clients, rbin_clients=rbin_clients)
        result = pruner.run()
    except BakeryError as e:  # PruneError (bad input, a rule refused), PartialFailure (a region failed), BakeryAWSError
        module.fail_json(msg=e.msg, **e.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
