#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ami_copy
short_description: Distribute an AMI to many regions and accounts in one idempotent task
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - Copies one Amazon Machine Image to every region in O(regions), concurrently, waits for the copies
    together, tags each copy and its EBS snapshots, shares them with accounts, organizations or
    organizational units, and schedules their deprecation.
  - Idempotent. Every copy carries the tags C(bakery:source-image) (C(<source_region>/<source_image_id>))
    and C(bakery:source-name). Before copying to a region the module looks for an image this account
    owns (C(Owners=self)) with that C(bakery:source-image) tag in state C(pending) or C(available); when
    one exists it is reused and that region reports C(changed=false), unless its tags, permissions or
    deprecation time had to be brought up to the request. A rerun of the same task makes no C(CopyImage)
    call.
  - Each C(CopyImage) request carries a C(ClientToken) derived from the source image, the destination
    region and the name, so a request retried after a lost answer never makes a second copy.
  - When any region fails and O(rollback_on_failure=true), the copies this run started are deregistered
    and their snapshots deleted; copies that existed before the run are never touched.
  - Every option is checked, and the source image looked up, before any copy starts.
options:
  source_image_id:
    description:
      - The image to copy.
      - It must be C(available); a C(pending) source is waited for when O(wait=true) and is an error otherwise.
    type: str
    required: true
  source_region:
    description:
      - The region of O(source_image_id). Defaults to the module's region (O(region)).
    type: str
  regions:
    description:
      - The destination regions.
      - Each item is a region name, or a dictionary with the key C(region) and the optional keys
        C(kms_key_id), C(name) and C(description) that override O(kms_key_id), O(name) and
        O(description) for that region.
      - O(source_region), when listed, is reported with the source image and not copied; the source image gets
        the same O(launch_permissions) and snapshot sharing (O(share_snapshots)) as the copies.
      - A region may be listed only once.
    type: list
    elements: raw
    required: true
  name:
    description:
      - The name of every copy. Defaults to the source image's name.
      - Names are unique per account and region; a region where another image already holds the name fails.
    type: str
  description:
    description:
      - The description of every copy, at most 255 characters. Defaults to the source image's description.
    type: str
  encrypted:
    description:
      - Encrypt the copies' snapshots, with O(kms_key_id) or the region's default EBS key.
    type: bool
    default: false
  kms_key_id:
    description:
      - The KMS key for the copies' snapshots in every region without its own C(kms_key_id) in O(regions).
      - A key ID, C(mrk-) multi-Region key ID, C(alias/NAME), or a key or alias ARN. Needs O(encrypted=true).
    type: str
  copy_tags:
    description:
      - Give every copy the source image's tags (C(CopyImageTags)); tags missing on a copy that arrives
        without them are added afterwards.
    type: bool
    default: true
  tags:
    description:
      - Extra tags for every copy, applied after the source's tags.
      - Every copy's EBS snapshots get the same tags as the copy.
      - C(bakery:source-image) and C(bakery:source-name) are set by the module and cannot be given.
      - Tag names are 1-128 letters, digits, spaces and C(_.:/=+-@) and may not start with C(aws:);
        values are strings of at most 256 characters without control characters or line breaks. A
        C(bakery:expires-at) value must be an ISO-8601 time in the future.
      - A copy may carry at most 50 tags, counting the source's tags (O(copy_tags)), these, O(pending_tags),
        the module's two C(bakery:source-*) tags and, on a copy made by an earlier run, the tags it already
        has. More fail before any copy starts.
    type: dict
  pending_tags:
    description:
      - Tags that mark the copies as unfinished while the copy runs, for example an expiry time that a
        clean-up job honours (C(bakery:expires-at) in this collection's bake).
      - Every new copy and its snapshots get them when the copy starts. Once every copy is available,
        they are removed from the copies, their snapshots, and the source image and its snapshots, with
        one C(DeleteTags) call per region. If any region fails, or O(wait=false), they stay.
      - They are never added back to an available image, so a rerun does not undo their removal.
      - A key cannot be both in O(tags) and here. The rules of O(tags) apply.
    type: dict
  launch_permissions:
    description:
      - Who may launch the copies. Permissions are added; existing ones are left alone.
      - A public share (V(all) in O(launch_permissions.group_names)) fails before anything is copied when image
        block public access is V(block-new-sharing) in the source region or any destination region.
    type: dict
    suboptions:
      user_ids:
        description: AWS account IDs (12 digits).
        type: list
        elements: str
      group_names:
        description: Launch permission groups; only V(all) (public) exists.
        type: list
        elements: str
      org_arns:
        description: AWS Organizations organization ARNs.
        type: list
        elements: str
      org_unit_arns:
        description: AWS Organizations organizational unit ARNs.
        type: list
        elements: str
  share_snapshots:
    description:
      - Give the accounts in O(launch_permissions.user_ids) C(createVolumePermission) on each copy's
        snapshots, which they need to launch encrypted copies.
      - Defaults to V(true) when O(launch_permissions.user_ids) is given.
    type: bool
  deprecate_at:
    description:
      - When the copies are deprecated, as an ISO-8601 time in the future (for example V(2027-01-31T00:00:00Z)).
        EC2 rounds it to the minute.
    type: str
  protect:
    description:
      - Turn on deregistration protection (EnableImageDeregistrationProtection) of every copy, and of the source
        image when O(source_region) is listed in O(regions), so that it cannot be deregistered until the protection
        is lifted. M(bakery.ami.ami_prune) deregisters a protected image only with its
        O(bakery.ami.ami_prune#module:lift_protection=true).
      - Turned on once every copy is available and the pending tags are off (the last step, so a rolled-back run
        never leaves a protected copy behind); a copy that already shows the protection is not called again.
      - Not given or V(false) leaves each image's protection as it is (the module never lifts a protection).
      - The same option, with the same rules, as O(bakery.ami.ami_create#module:protect).
    type: bool
  protect_cooldown:
    description:
      - With O(protect=true), protect with a cooldown; once the protection is lifted, the image stays protected
        for 24 hours more. Needs O(protect=true).
      - A copy protected without a cooldown gets it (and one with a cooldown loses it) by a new
        EnableImageDeregistrationProtection call.
    type: bool
  max_concurrency:
    description:
      - How many regions are copied at once. Defaults to all of them.
      - A region's slot is held until its copy is available and post-processed, so this also bounds the
        copies in flight.
      - Without it every copy starts at once and all of them are waited for together; each poll asks one
        region until a copy is available, then every region still pending.
    type: int
  rollback_on_failure:
    description:
      - When any region fails, deregister the copies this run started in every region and delete their snapshots.
      - Copies that existed before the run are never touched.
      - With V(false) the other regions run to completion and keep their copies.
    type: bool
    default: true
notes:
  - With O(wait=false), launch permissions, snapshot permissions and deprecation are applied only to copies
    that are already available; run the task again once they are (tags are set when each copy starts).
  - The AWS credentials must be allowed to call C(ec2:CopyImage), C(ec2:DescribeImages), C(ec2:CreateTags),
    C(ec2:DescribeSnapshots), C(ec2:Describe/ModifyImageAttribute), C(ec2:Describe/ModifySnapshotAttribute),
    C(ec2:EnableImageDeprecation), with O(protect) C(ec2:EnableImageDeregistrationProtection), and, for the
    rollback, C(ec2:DeregisterImage) and C(ec2:DeleteSnapshot) in every region involved.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - bakery.ami.attributes
  - bakery.ami.wait
attributes:
  check_mode:
    description: Looks up the source and every region's copies; predicts C(changed) and starts nothing.
    support: full
  diff_mode:
    description: Shows which regions hold a copy before and after.
    support: full
  idempotent:
    description: A rerun reuses the copies and reports C(changed=false).
    support: full
seealso:
  - module: amazon.aws.ec2_ami_info
  - module: bakery.ami.ami_create
"""

EXAMPLES = r"""
- name: Distribute the new image to three regions and share it with two accounts
  bakery.ami.ami_copy:
    source_image_id: "{{ ami.image_id }}"
    source_region: us-east-1
    regions:
      - us-east-1
      - us-west-2
      - eu-west-1
      - region: eu-central-1
        kms_key_id: alias/images-eu
    encrypted: true
    kms_key_id: alias/images
    tags:
      bakery:family: web-base
    launch_permissions:
      user_ids:
        - "111122223333"
        - "444455556666"
    deprecate_at: "2027-01-31T00:00:00Z"
  register: copies

- name: Use the copy in us-west-2
  ansible.builtin.debug:
    msg: "{{ copies.images['us-west-2'].image_id }}"

- name: Mark the copies as temporary until all of them are available (a sweep removes expired ones)
  bakery.ami.ami_copy:
    source_image_id: "{{ ami.image_id }}"
    regions: [us-west-2, eu-west-1, ap-southeast-2]
    tags:
      bakery:run-id: "{{ run_id }}"
    pending_tags:
      bakery:expires-at: "2026-12-01T12:00:00Z"

- name: Start the copies, two regions at a time, and do not wait
  bakery.ami.ami_copy:
    source_image_id: ami-0123456789abcdef0
    regions: [us-west-1, us-west-2, ca-central-1, sa-east-1]
    max_concurrency: 2
    wait: false

- name: Publish a release to two regions; no copy can be deregistered by mistake (24-hour cooldown once lifted)
  bakery.ami.ami_copy:
    source_image_id: "{{ ami.image_id }}"
    source_region: us-east-1
    regions: [us-east-1, eu-west-1, ap-southeast-2]
    protect: true
    protect_cooldown: true

- name: Keep whatever copies succeeded when one region fails
  bakery.ami.ami_copy:
    source_image_id: ami-0123456789abcdef0
    regions: [us-west-2, eu-west-1]
    rollback_on_failure: false
"""

RETURN = r"""
images:
  description:
    - The image in each region of O(regions), by region.
    - For O(source_region), the source image itself.
  returned: always
  type: dict
  contains:
    image_id:
      description: The copy's ID; V(null) in check mode when the copy would be started.
      type: str
      sample: ami-0abcdef1234567890
    name:
      description: The copy's name.
      type: str
    state:
      description:
        - V(available) or V(pending); V(predicted) in check mode for a copy that would be started;
          V(failed), V(stopped), V(not started) or V(deregistered) (rolled back) after a failure.
      type: str
      sample: available
    changed:
      description: Whether this region was copied or its copy changed.
      type: bool
    snapshot_ids:
      description: The copy's EBS snapshots.
      type: list
      elements: str
    tags:
      description: The copy's tags.
      type: dict
    deregistration_protection:
      description:
        - The copy's deregistration protection (V(disabled), V(enabled-without-cooldown), V(enabled-with-cooldown),
          or V(disabled-after-<time>) while a lifted protection cools down); in check mode what O(protect) would
          make it. V(null) for a region that failed.
      type: str
      sample: enabled-without-cooldown
  sample:
    us-west-2:
      image_id: ami-0abcdef1234567890
      name: web-base-1.4.0
      state: available
      changed: true
      snapshot_ids: [snap-0abcdef1234567890]
      tags: {"bakery:source-image": "us-east-1/ami-0123456789abcdef0", "bakery:source-name": "web-base-1.4.0"}
      deregistration_protection: enabled-without-cooldown
failed_regions:
  description:
    - The error of each region that failed, by region; empty on success.
    - The keys V(pending_tags) and V(protect) name the last steps (taking the pending tags off, turning on
      deregistration protection) when they failed after every copy was made; the copies stay.
  returned: always
  type: dict
  sample: {"eu-west-1": "CopyImage failed: ... InvalidAMIName.Duplicate ..."}
rolled_back:
  description: The copies deregistered after a failure (their snapshots deleted), by region.
  returned: on failure
  type: dict
  sample: {"us-west-2": "ami-0abcdef1234567890"}
rollback_errors:
  description: Copies the rollback could not remove, by region.
  returned: on failure, when the rollback was incomplete
  type: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bakery.ami.plugins.module_utils import _result
from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _copy
from ansible_collections.bakery.ami.plugins.module_utils import _copy_request
from ansible_collections.bakery.ami.plugins.module_utils import _share
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError


def main():
    argument_spec = dict(
        source_image_id=dict(type="str", required=True),
        source_region=dict(type="str"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=3600),
        **_copy_request.copy_suboptions(),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)

    copier = None
    try:
        request = _copy_request.build_request(module.params, module.region, _validate.known_regions())
        # Clients are made here, in the main thread; the backend's worker threads only use them.
        regions = [request.source_region] + [spec.region for spec in request.regions]
        clients = _aws.regional_clients(module, "ec2", regions)
        if _share.is_public(request.launch_permissions):
            _share.check_public_share(clients, regions)
        copier = _copy.AmiCopier(request, clients, check_mode=module.check_mode)
        result = copier.run()
    except BakeryError as e:  # InputError, CopyFailed, a refused public share, BakeryAWSError
        for warning in copier.warnings if copier else ():
            module.warn(warning)
        module.fail_json(msg=e.msg, **_result.diff_if_asked(e.result, module._diff))
    for warning in copier.warnings:
        module.warn(warning)
    module.exit_json(**_result.diff_if_asked(result, module._diff))


if __name__ == "__main__":
    main()
