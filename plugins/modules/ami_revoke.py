#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ami_revoke
short_description: Revoke a version of an image family and move every channel on it back to the previous good image
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - Takes a version of an image family out of service in every region named. Its images (the
    images of this account tagged C(bakery:family) and C(bakery:version) with these values) are
    tagged C(bakery:revoked=true) and deprecated as soon as EC2 allows (the start of the minute at
    least 30 seconds ahead; EC2 refuses a deprecation time in the past).
  - Every image channel of the family (the SSM parameters directly under C(/<prefix>/<family>/), see
    M(bakery.ami.ami_channel)) that names one of these images is moved back to its previous good
    image, the latest earlier value of the parameter's history that still exists, is C(available),
    is not deprecated, is not tagged C(bakery:revoked), belongs to the family and is not an image of
    the version revoked. The change is tagged C(bakery:previous-image) with the revoked image.
  - A channel is never left empty or on the revoked image. When a channel has no previous good
    image in some region, the module fails naming the channel and the region, and changes nothing
    in any region.
  - Every region is read first, at once; only then are the regions that need it changed, at once.
    Every option is checked before any AWS call.
  - A separate module rather than a state of M(bakery.ami.ami_channel) because a revoke acts on a
    version and on every channel of the family at once, not on one named channel.
options:
  prefix:
    description:
      - The first part of the channels' parameter path, as for M(bakery.ami.ami_channel).
    type: str
    default: bakery
  family:
    description:
      - The image family (the C(bakery:family) tag).
    type: str
    required: true
  version:
    description:
      - The version to revoke (the C(bakery:version) tag), matched literally; V(*), V(?) and V(\\) are
        refused. Each region named must hold at least one image of this account with this version.
    type: str
    required: true
  regions:
    description:
      - The regions to revoke the version in. Defaults to the module's region.
    type: list
    elements: str
notes:
  - The AWS credentials must be allowed to call C(ec2:DescribeImages), C(ec2:CreateTags),
    C(ec2:EnableImageDeprecation), C(ssm:GetParametersByPath), C(ssm:GetParameterHistory),
    C(ssm:PutParameter) and C(ssm:AddTagsToResource) in every region named.
  - Revoking does not deregister anything; M(bakery.ami.ami_prune) removes deprecated images later.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - bakery.ami.attributes
attributes:
  check_mode:
    description: Runs the same reads and returns the same plan as a real run, refusal included; changes nothing.
    support: full
  diff_mode:
    description: Shows each channel moved, by region, before and after.
    support: full
  idempotent:
    description: >-
      A rerun changes nothing and reports C(changed=false); the images are already tagged and
      deprecated and no channel names them any more.
    support: full
seealso:
  - module: bakery.ami.ami_channel
    description: Points a channel at a version (playbooks/promote.yml).
"""

EXAMPLES = r"""
- name: Revoke version 2026.12.01 and move every channel on it back, in three regions
  bakery.ami.ami_revoke:
    family: web-base
    version: "2026.12.01"
    regions: [us-east-1, eu-west-1, ap-southeast-2]
  register: revoked

- name: Show where each channel went
  ansible.builtin.debug:
    msg: "{{ revoked.diff_channels }}"

- name: Revoke under a team prefix, only to see what would happen
  bakery.ami.ami_revoke:
    prefix: teams/payments/images
    family: web-base
    version: "7"
    regions: [us-east-1]
  check_mode: true
  diff: true
"""

RETURN = r"""
family:
  description: The family.
  returned: always
  type: str
  sample: web-base
version:
  description: The version revoked.
  returned: always
  type: str
  sample: "2026.12.01"
regions:
  description: What the revoke did (or in check mode, would do) in each region, by region.
  returned: always
  type: dict
  contains:
    images:
      description: The images of the version in the region.
      type: list
      elements: dict
      contains:
        image_id:
          description: The image ID.
          type: str
        tag:
          description: Whether the image was (or would be) tagged C(bakery:revoked=true); V(false) when it already was.
          type: bool
        deprecate:
          description: Whether the image was (or would be) deprecated; V(false) when it already was by then.
          type: bool
        deprecation_time:
          description: The image's deprecation time after the revoke, in ISO 8601 UTC.
          type: str
    channels:
      description: The channels that named an image of the version, by parameter name.
      type: dict
      contains:
        before:
          description: The revoked image the channel named.
          type: str
        after:
          description: The previous good image it names after the revoke.
          type: str
        changed:
          description: Always V(true) for a channel listed here.
          type: bool
        version:
          description: The parameter version the change made.
          type: int
          returned: outside check mode
    changed:
      description: Whether anything in the region was (or would be) changed.
      type: bool
    error:
      description: Why the change of this region failed.
      type: str
      returned: when it failed
  sample:
    us-east-1:
      images:
        - image_id: ami-0fedcba9876543210
          tag: true
          deprecate: true
          deprecation_time: "2026-12-06T10:15:00Z"
      channels:
        /bakery/web-base/stable:
          before: ami-0fedcba9876543210
          after: ami-0123456789abcdef0
          changed: true
          version: 3
      changed: true
diff_channels:
  description: Each channel moved, by region, as C(before) and C(after) image IDs (what diff mode shows).
  returned: always
  type: dict
  sample:
    before:
      us-east-1:
        /bakery/web-base/stable: ami-0fedcba9876543210
    after:
      us-east-1:
        /bakery/web-base/stable: ami-0123456789abcdef0
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _channel
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._validate import known_regions


def main():
    argument_spec = dict(
        prefix=dict(type="str", default=_channel.DEFAULT_PREFIX),
        family=dict(type="str", required=True),
        version=dict(type="str", required=True),
        regions=dict(type="list", elements="str"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        request = _channel.build_revoke_request(module.params, module.region, known_regions())
        # Clients are made here, in the main thread; the worker threads only use them.
        ssm = _aws.regional_clients(module, "ssm", request.regions)
        ec2 = _aws.regional_clients(module, "ec2", request.regions)
        result = _channel.Revoke(request, ssm, ec2, check_mode=module.check_mode).run()
    except BakeryError as e:  # ChannelError, and BakeryAWSError from the AWS calls
        module.fail_json(msg=e.msg, **_shape(e.result, module))
    module.exit_json(**_shape(result, module))


def _shape(result: dict, module) -> dict:
    result = dict(result)
    diff = result.pop("diff", None)
    if diff is not None:
        result["diff_channels"] = diff
        if module._diff:
            result["diff"] = diff
    return result


if __name__ == "__main__":
    main()
