#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ami_create
short_description: Make a versioned AMI from an instance or an EBS snapshot, idempotent by name
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - Creates an Amazon Machine Image from an EC2 instance (CreateImage) or registers one from an
    EBS snapshot (RegisterImage), tags the image and its snapshots, requires IMDSv2 for instances
    launched from it and can schedule its deprecation.
  - Idempotent by name. When this account already owns an image of O(name) in the region and its
    C(bakery:build-id) tag equals O(build_id), that image is adopted and the task reports
    C(changed=false) unless something it lacks (tags, snapshot tags, deprecation time, IMDSv2) had
    to be added. When another build holds the name the task fails and names that image.
  - A create whose first attempt was served by EC2 but whose answer was lost, and which the retry
    then finds already taken (C(InvalidAMIName.Duplicate)), ends in the adopted image.
  - With O(pending_tags) (for example C(bakery:expires-at)), the new image and its snapshots are
    born with tags that mark them as unfinished, so that a sweep removes what a killed run left, and
    the task takes them off the image and its snapshots, in one C(DeleteTags), once the image is
    available (with O(copy), once every copy is, and off the copies too). A rerun that adopts the
    image takes off any it still carries and otherwise changes nothing.
  - Every option is checked before any API call; the source instance or snapshot is checked before
    anything is created.
options:
  name:
    description:
      - The name of the image. Names are unique per account and region.
      - 3-128 characters from letters, digits, spaces and C(\( \) [ ] . / - ' @ _).
    type: str
    required: true
  description:
    description:
      - The description of the image, at most 255 characters.
    type: str
  instance_id:
    description:
      - The instance to make the image from. It must be C(running) or C(stopped).
      - Exactly one of O(instance_id) and O(snapshot_id) is required.
    type: str
  reboot:
    description:
      - Whether EC2 may shut the instance down while it snapshots its volumes (C(NoReboot=false)).
        A consistent filesystem matters more than the seconds saved with V(false).
      - Only with O(instance_id).
    type: bool
    default: true
  stop_instance:
    description:
      - Stop the instance and wait until it is stopped before the image is made, so the image is
        consistent without a reboot (use with O(reboot=false)). A stopped instance is left as it is.
      - Only when the image is created; an image that already exists is adopted without stopping anything.
        In check mode nothing is stopped.
      - Only with O(instance_id).
    type: bool
    default: false
  terminate_instance:
    description:
      - Terminate the instance as soon as its image is available, without waiting for it to be
        terminated. For a temporary builder, its termination (and the release of its security
        group) then runs while the copies of O(copy) are made instead of after them, and the
        builder's cleanup finds nothing left to wait for. With O(copy) it runs beside the first
        CopyImage calls, on a thread of its own, so no copy waits for it.
      - Also when the image is adopted (a rerun), an instance still running or stopped is
        terminated; one already gone changes nothing. In check mode nothing is terminated.
      - Only with O(instance_id), and needs O(wait=true).
    type: bool
    default: false
  snapshot_id:
    description:
      - The EBS snapshot of the root volume to register the image from (the chroot-style flow).
        The snapshot must be C(completed).
    type: str
  architecture:
    description:
      - The architecture of an image registered from O(snapshot_id). Defaults to V(x86_64) then.
    type: str
    choices: [x86_64, arm64, i386]
  root_device_name:
    description:
      - The root device of an image registered from O(snapshot_id). Defaults to V(/dev/xvda) then.
    type: str
  boot_mode:
    description:
      - The boot mode of an image registered from O(snapshot_id). Without it EC2 chooses.
    type: str
    choices: [legacy-bios, uefi, uefi-preferred]
  ena_support:
    description:
      - Whether an image registered from O(snapshot_id) has enhanced networking with ENA.
        Defaults to V(true) then.
    type: bool
  tags:
    description:
      - Tags of the image. O(build_id) adds C(bakery:build-id).
      - Tags the image already has are never removed.
      - Tag names are 1-128 letters, digits, spaces and C(_.:/=+-@) and may not start with C(aws:);
        values are strings of at most 256 characters without control characters or line breaks. A
        C(bakery:expires-at) value must be an ISO-8601 time in the future.
      - The image may carry at most 50 tags, counting O(tags), C(bakery:build-id), O(pending_tags)
        and, on an image that is adopted, the tags it already has. More fail before anything is
        created or tagged.
    type: dict
  pending_tags:
    description:
      - Tags that mark the image and its snapshots as unfinished while the task runs, for example
        C(bakery:expires-at) with the time after which a clean-up job may remove them
        (M(bakery.ami.ami_cleanup), C(playbooks/sweep.yml)).
      - A new image and its snapshots are created with them. Once the image is C(available) (with O(wait)),
        and with O(copy) once every copy is available too, they are taken off the image, its snapshots and
        every copy in one C(DeleteTags) per region, and RV(updates) lists V(pending_tags). When the image
        fails, or a copy does, they stay, so that the clean-up finds what is left.
      - An adopted image that still carries one of them (the task that made it did not finish) loses them the
        same way; an adopted image without them is left as it is and never gets them back.
      - With O(copy), the copies carry them too (O(copy.pending_tags) is the same option; give it once).
      - The rules of O(tags) apply, and a key may not also be in O(tags) or O(snapshot_tags). A
        C(bakery:expires-at) value must lie in the future.
    type: dict
  snapshot_tags:
    description:
      - Tags of the image's snapshots, separate from O(tags). Defaults to O(tags).
      - O(build_id) adds C(bakery:build-id) to them as well.
      - The rules of O(tags) apply; the 50 tags of a snapshot count these, C(bakery:build-id),
        O(pending_tags) and the tags the snapshot already has (O(snapshot_id)).
    type: dict
  build_id:
    description:
      - Identifies this bake; the value of the tag C(bakery:build-id) on the image and its snapshots.
      - An image of O(name) with this build ID is adopted on a rerun; an image of O(name) with
        another build ID (or none, when O(build_id) is set) makes the task fail.
      - Without it, an image of O(name) without a C(bakery:build-id) tag is adopted.
    type: str
  imds_support:
    description:
      - V(v2.0) makes instances launched from the image require IMDSv2 (instance metadata
        with session tokens). EC2 cannot take this back once it is set.
      - V(none) leaves the attribute unset.
    type: str
    choices: [v2.0, none]
    default: v2.0
  deprecate_at:
    description:
      - When the image is deprecated, as an ISO-8601 time such as V(2027-01-31T00:00:00Z)
        (UTC unless an offset is given). EC2 rounds it to the minute; it must lie in the future
        when it is set.
    type: str
  protect:
    description:
      - Turn on deregistration protection of the image (EnableImageDeregistrationProtection) once it is
        available, so that it cannot be deregistered until the protection is lifted. M(bakery.ami.ami_prune)
        deregisters a protected image only with its O(bakery.ami.ami_prune#module:lift_protection=true).
      - V(false) leaves the image's protection as it is (it never lifts a protection).
      - The copies (O(copy)) get the same protection unless O(copy.protect) says otherwise.
    type: bool
    default: false
  protect_cooldown:
    description:
      - With O(protect=true), protect with a cooldown; once the protection is lifted, the image stays protected
        for 24 hours more.
    type: bool
    default: false
  launch_permissions:
    description:
      - Who may launch the image, checked and applied by the same code as O(copy.launch_permissions)
        (and M(bakery.ami.ami_copy)), so the image and its copies are shared alike.
      - Applied once the image is available (with O(wait=false), on the rerun that finds it available).
      - Permissions are added; existing ones are left alone, so a rerun changes nothing.
      - When O(copy) is given without its own O(copy.launch_permissions) and O(copy.share_snapshots),
        the copies get these too.
      - A public share (V(all) in O(launch_permissions.group_names)) fails before anything is made when image
        block public access is V(block-new-sharing) in the image's region (or, for the copies, in theirs).
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
      - Give the accounts in O(launch_permissions.user_ids) C(createVolumePermission) on each of the
        image's snapshots, which they need to launch it when it is encrypted or to copy it.
      - Defaults to V(true) when O(launch_permissions.user_ids) is given.
    type: bool
  block_device_mappings:
    description:
      - Settings of the image's volumes. With O(instance_id) they override the settings of the
        instance's volumes of the same device; with O(snapshot_id) the entry of the root device
        sets the root volume's settings and other entries add empty volumes.
    type: list
    elements: dict
    suboptions:
      device_name:
        description: The device, for example V(/dev/xvda).
        type: str
        required: true
      volume_size:
        description: Size in GiB. Required for an added empty volume.
        type: int
      volume_type:
        description: The EBS volume type.
        type: str
        choices: [gp2, gp3, io1, io2, st1, sc1, standard]
      iops:
        description: Provisioned IOPS (gp3, io1, io2; required for io1 and io2).
        type: int
      throughput:
        description: Throughput in MiB/s (gp3 only).
        type: int
      kms_key_id:
        description:
          - The KMS key (key ID, alias or ARN) to encrypt the volume with; implies O(block_device_mappings[].encrypted=true).
        type: str
      encrypted:
        description: Whether the volume is encrypted.
        type: bool
      delete_on_termination:
        description: Whether the volume is deleted when the instance terminates.
        type: bool
  copy:
    description:
      - Copy the image to other regions in the same task, the moment it is available (and has
        IMDSv2 and its deprecation time), as M(bakery.ami.ami_copy) would with these options. The copies
        start without the second module run and source look-up a separate M(bakery.ami.ami_copy)
        task costs, and with the same idempotency (a rerun reuses the image and its copies).
      - The suboptions mean what the options of the same name of M(bakery.ami.ami_copy) mean; the
        source is this task's image, in O(region). O(wait_timeout) applies to the create and to the
        copies, each.
      - Needs O(wait=true). If copying fails the task fails; the image stays (the result names
        it), and with O(copy.rollback_on_failure=true) the copies this run started are removed.
    type: dict
    suboptions:
      regions:
        description:
          - The destination regions; each a region name or a dictionary with C(region) and the optional
            C(kms_key_id), C(name) and C(description). O(region), when listed, reports the image itself.
        type: list
        elements: raw
        required: true
      name:
        description: The name of every copy. Defaults to O(name).
        type: str
      description:
        description: The description of every copy. Defaults to O(description).
        type: str
      encrypted:
        description: Encrypt the copies' snapshots, with O(copy.kms_key_id) or the region's default EBS key.
        type: bool
        default: false
      kms_key_id:
        description: The KMS key of the copies' snapshots in every region without its own. Needs O(copy.encrypted=true).
        type: str
      copy_tags:
        description: Give every copy the image's tags.
        type: bool
        default: true
      tags:
        description:
          - Extra tags for every copy and its snapshots.
          - A copy may carry at most 50 tags, counting the image's tags (O(copy.copy_tags)), these,
            O(copy.pending_tags) and the two C(bakery:source-*) tags; more fail before the image is made.
        type: dict
      pending_tags:
        description:
          - Tags that mark the image, the copies and all their snapshots as unfinished until every copy
            is available, for example an expiry time a clean-up job honours. A new image is created
            with them; once every copy is available they are removed from all.
          - The same as O(pending_tags), which is the way to give them (the copies get them too); given
            both, they must be equal.
          - An adopted image does not get them back. A key cannot also be in O(tags).
        type: dict
      protect:
        description:
          - Deregistration protection of every copy, as O(bakery.ami.ami_copy#module:protect). Defaults to O(protect)
            (with O(protect_cooldown)); V(false) leaves the copies' protection as it is.
        type: bool
      protect_cooldown:
        description: With O(copy.protect=true), protect the copies with a cooldown. Needs O(copy.protect=true).
        type: bool
      launch_permissions:
        description: Who may launch the copies; permissions are added, existing ones left alone.
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
          - Give the accounts in O(copy.launch_permissions.user_ids) C(createVolumePermission) on each copy's
            snapshots. Defaults to V(true) when O(copy.launch_permissions.user_ids) is given.
        type: bool
      deprecate_at:
        description: When the copies are deprecated, as an ISO-8601 time in the future.
        type: str
      max_concurrency:
        description: How many regions are copied at once. Defaults to all of them.
        type: int
      rollback_on_failure:
        description:
          - When any region fails, deregister the copies this run started and delete their snapshots.
            The image itself stays.
        type: bool
        default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - bakery.ami.attributes
  - bakery.ami.wait
attributes:
  check_mode:
    description: Looks the name and the source up and predicts the result; creates and changes nothing.
    support: full
  diff_mode:
    description: The module reports its changes in its result, not as a diff.
    support: none
  idempotent:
    description: A rerun with the same O(name) and O(build_id) adopts the image and reports no change.
    support: full
notes:
  - Images created from an instance get IMDSv2 and the deprecation time after creation
    (ModifyImageAttribute, EnableImageDeprecation); CreateImage has no parameter for them.
  - RegisterImage tags only the image; the module tags the snapshots of the image itself.
  - With O(copy), the credentials also need the permissions M(bakery.ami.ami_copy) lists, in every
    region of O(copy.regions).
seealso:
  - module: bakery.ami.ami_copy
  - module: bakery.ami.ami_prune
  - module: amazon.aws.ec2_ami
"""

EXAMPLES = r"""
- name: Snapshot the stopped builder into a versioned image
  bakery.ami.ami_create:
    instance_id: "{{ builder.instance_id }}"
    name: "web-base 2025.11.26 (build {{ build_id }})"
    build_id: "{{ build_id }}"
    tags:
      bakery:family: web-base
      bakery:version: "2025.11.26"
    snapshot_tags:
      bakery:family: web-base
      cost-center: images
    deprecate_at: "2026-11-26T00:00:00Z"
    block_device_mappings:
      - device_name: /dev/xvda
        volume_type: gp3
        throughput: 250
        delete_on_termination: true
  register: image

- name: A release image that cannot be deregistered by mistake (protection with a 24-hour cooldown)
  bakery.ami.ami_create:
    instance_id: "{{ builder.instance_id }}"
    name: "web-base 2025.11.26 (build {{ build_id }})"
    build_id: "{{ build_id }}"
    protect: true
    protect_cooldown: true

- name: Register an image from a root-volume snapshot (chroot-style build)
  bakery.ami.ami_create:
    snapshot_id: snap-0123456789abcdef0
    name: "web-base-{{ build_id }}"
    build_id: "{{ build_id }}"
    architecture: arm64
    root_device_name: /dev/xvda
    boot_mode: uefi
    tags:
      bakery:family: web-base

- name: Create the image and copy it to two more regions as soon as it is available
  bakery.ami.ami_create:
    instance_id: "{{ builder.instance_id }}"
    region: us-east-1
    name: "web-base {{ version }}"
    build_id: "{{ build_id }}"
    stop_instance: true
    reboot: false
    tags:
      bakery:family: web-base
    # the image and its copies count as unfinished (a sweep may remove them) until every copy is available
    pending_tags:
      bakery:expires-at: "2026-12-01T12:00:00Z"
    copy:
      regions: [us-west-2, eu-west-1]
  register: image

- name: A single-region image, unfinished until it is available
  bakery.ami.ami_create:
    instance_id: "{{ builder.instance_id }}"
    name: "web-base {{ version }}"
    build_id: "{{ build_id }}"
    stop_instance: true
    reboot: false
    pending_tags:
      bakery:expires-at: "2026-12-01T12:00:00Z"

- name: Use the copy in eu-west-1
  ansible.builtin.debug:
    msg: "{{ image.copies.images['eu-west-1'].image_id }}"
"""

RETURN = r"""
image_id:
  description: The image made or adopted. Null in check mode when it would be created.
  returned: always
  type: str
  sample: ami-0123456789abcdef0
name:
  description: The image name.
  returned: always
  type: str
state:
  description: The state of the image (C(available) after a wait). Null in check mode for a new image.
  returned: always
  type: str
  sample: available
snapshot_ids:
  description: The snapshots backing the image, as far as EC2 lists them yet.
  returned: always
  type: list
  elements: str
tags:
  description: The tags of the image.
  returned: always
  type: dict
snapshot_tags:
  description: The tags the task ensures on the image's snapshots.
  returned: always
  type: dict
adopted:
  description: Whether an image that already held O(name) was adopted instead of creating one.
  returned: always
  type: bool
deprecation_time:
  description: When the image is deprecated, if it is.
  returned: always
  type: str
  sample: "2026-11-26T00:00:00Z"
imds_support:
  description: V(v2.0) when instances launched from the image require IMDSv2.
  returned: always
  type: str
deregistration_protection:
  description:
    - The image's deregistration protection (V(disabled), V(enabled-without-cooldown), V(enabled-with-cooldown), or
      C(disabled-after-<time>) during a cooldown); in check mode for an image not made yet, what it would be.
  returned: always
  type: str
  sample: enabled-without-cooldown
copies:
  description:
    - With O(copy), the copies by region, as M(bakery.ami.ami_copy) returns them (C(images), C(failed_regions),
      and after a failure C(rolled_back)).
  returned: when O(copy) is given
  type: dict
  sample:
    changed: true
    failed_regions: {}
    images:
      us-west-2:
        image_id: ami-0abcdef1234567890
        name: web-base 1.4.0
        state: available
        changed: true
        snapshot_ids: [snap-0abcdef1234567890]
        tags: {"bakery:source-image": "us-east-1/ami-0123456789abcdef0", "bakery:source-name": "web-base 1.4.0"}
sharing:
  description:
    - What the task added (or, in check mode, would add) to the image's sharing; sharing only adds.
    - In check mode for an image not made yet, C(snapshot_permissions) is empty (its snapshots do not exist).
  returned: always
  type: dict
  contains:
    launch_permissions:
      description: The launch permissions added, as EC2 entries (C(UserId), C(Group), C(OrganizationArn), C(OrganizationalUnitArn)).
      type: list
      elements: dict
    snapshot_permissions:
      description: By snapshot ID, the account IDs given C(createVolumePermission).
      type: dict
  sample:
    launch_permissions: [{"UserId": "123456789012"}]
    snapshot_permissions: {"snap-0abcdef1234567890": ["123456789012"]}
updates:
  description: What the task changed on the image after creating or adopting it
    (V(image_tags), V(snapshot_tags), V(deprecate_at), V(imds_support), V(protection), V(launch_permissions),
    V(snapshot_permissions), and V(pending_tags) when it took
    the pending tags off).
  returned: always
  type: list
  elements: str
instance_terminated:
  description: Whether the task terminated the instance (O(terminate_instance)); in check mode, whether it would.
  returned: when O(terminate_instance=true) and O(instance_id) are given
  type: bool
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _copy
from ansible_collections.bakery.ami.plugins.module_utils import _copy_request
from ansible_collections.bakery.ami.plugins.module_utils import _create
from ansible_collections.bakery.ami.plugins.module_utils import _protect
from ansible_collections.bakery.ami.plugins.module_utils import _share
from ansible_collections.bakery.ami.plugins.module_utils import _validate
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        description=dict(type="str"),
        instance_id=dict(type="str"),
        reboot=dict(type="bool", default=True),
        stop_instance=dict(type="bool", default=False),
        terminate_instance=dict(type="bool", default=False),
        snapshot_id=dict(type="str"),
        architecture=dict(type="str", choices=["x86_64", "arm64", "i386"]),
        root_device_name=dict(type="str"),
        boot_mode=dict(type="str", choices=["legacy-bios", "uefi", "uefi-preferred"]),
        ena_support=dict(type="bool"),
        tags=dict(type="dict"),
        snapshot_tags=dict(type="dict"),
        pending_tags=dict(type="dict"),
        build_id=dict(type="str"),
        imds_support=dict(type="str", choices=["v2.0", "none"], default="v2.0"),
        deprecate_at=dict(type="str"),
        **_protect.suboptions(),
        **_share.suboptions(),
        block_device_mappings=dict(
            type="list",
            elements="dict",
            options=dict(
                device_name=dict(type="str", required=True),
                volume_size=dict(type="int"),
                volume_type=dict(type="str", choices=list(_validate.VOLUME_TYPES)),
                iops=dict(type="int"),
                throughput=dict(type="int"),
                kms_key_id=dict(type="str", no_log=False),
                encrypted=dict(type="bool"),
                delete_on_termination=dict(type="bool"),
            ),
        ),
        copy=dict(type="dict", options=_copy_request.copy_suboptions()),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=3600),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("instance_id", "snapshot_id")],
        required_one_of=[("instance_id", "snapshot_id")],
    )
    try:
        request = _create.build_request(module.params, module.region, _validate.known_regions())
        copy_request = request.copy
        # one session for the image's region and every destination
        destinations = [spec.region for spec in copy_request.regions] if copy_request is not None else []
        # the other regions' clients are made in the first pause after CreateImage, not before it
        clients = _aws.regional_clients(module, "ec2", [module.region] + destinations, on_first_use=True)
        _check_public_shares(module.region, clients, request)
        creator = _create.ImageCreator(
            clients[module.region], module.region, request, module.check_mode,
            pending_tags=request.pending_tags,
            # with copies, the copy step takes them off once every copy is available
            release_pending=copy_request is None,
            # with copies, the instance is terminated beside them, not before the first one starts
            terminate_later=copy_request is not None, while_creating=lambda: [clients[r] for r in destinations],
            warn=module.warn,
        )
        result = creator.run()
        result = _create.share_image(clients[module.region], result, request, module.check_mode, module.warn)
        if copy_request is not None:
            result = _create.beside_termination(
                creator, result,
                lambda created: _copy.copy_new_image(copy_request, clients, module.region, created, creator.image,
                                                     module.check_mode, module.warn))
    except BakeryError as e:  # CreateError, the copy step's CopyStepError, a refused share, BakeryAWSError
        module.fail_json(msg=e.msg, **e.result)
    module.exit_json(**result)


def _check_public_shares(region: str, clients: dict, request) -> None:
    """Where a public share is asked for, fail if the image block public access of a region refuses it."""
    regions = [region] if _share.is_public(request.launch_permissions) else []
    if request.copy is not None and _share.is_public(request.copy.launch_permissions):
        regions += [spec.region for spec in request.copy.regions]
    if regions:
        _share.check_public_share(clients, regions)


if __name__ == "__main__":
    main()
