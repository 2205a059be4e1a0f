#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ami_channel
short_description: Publish an image family's images to a named channel (SSM parameters) in every region
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - Manages an image channel, the consumer interface of the images a bake publishes. A channel is one
    SSM parameter per region, named C(/<prefix>/<family>/<channel>), of data type C(aws:ec2:image); its
    value is the image ID of that region. EC2 checks the value is an image of the region, and a launch
    template or C(run-instances) names the channel as C(resolve:ssm:/bakery/web-base/stable).
  - The image of each region is given (O(images), as the publish role returns it in
    C(publish_result.images)) or found by O(version) (the image of this account that carries the tags
    C(bakery:family) and C(bakery:version) with exactly these values).
  - Idempotent. A region whose parameter already holds the image is left alone (no C(PutParameter)).
    A change overwrites the parameter (SSM keeps every earlier value in the parameter's history) and
    tags it with C(bakery:previous-image), the image ID it replaced.
  - Every region is read first, at once; only when every region was read without a problem are the
    regions that need it changed, at once. Every option is checked before any AWS call.
options:
  prefix:
    description:
      - The first part of the parameter path, without a leading or trailing C(/); one or more components
        of letters, digits, C(.), C(_) and C(-), separated by C(/). It may not start with C(aws) or C(ssm).
    type: str
    default: bakery
  family:
    description:
      - The image family (the C(bakery:family) tag), 1-64 letters, digits, C(.), C(_) or C(-), starting with
        a letter or digit.
    type: str
    required: true
  channel:
    description:
      - The channel name, 1-64 lowercase letters, digits, C(-) or C(_), for example V(latest) or V(stable).
    type: str
    required: true
  images:
    description:
      - The image ID of each region, as a dictionary of region to image ID (C(publish_result.images) of
        the publish role), or as a list of dictionaries with the keys C(region) and C(image_id).
      - A region may be named only once. Each image must exist in its region, be C(available) and not
        deprecated (a retired or revoked image); an image that carries a C(bakery:family) tag must carry O(family).
      - The regions are those named here. Mutually exclusive with O(version) and O(regions).
    type: raw
  version:
    description:
      - Find the image of each region in O(regions) by its tags, C(bakery:family=<family>) and
        C(bakery:version=<version>), among this account's images. Exactly one image must match in each
        region, available and not deprecated.
      - Matched literally; V(*), V(?) and V(\\) are refused.
    type: str
  regions:
    description:
      - The regions of the channel with O(version) or O(state=absent). Defaults to the module's region.
    type: list
    elements: str
  state:
    description:
      - V(present) points the channel at the images; V(absent) deletes its parameter in O(regions).
    type: str
    choices: [present, absent]
    default: present
  allow_empty:
    description:
      - O(state=absent) leaves consumers of the channel without an image, so it is refused unless this is V(true).
    type: bool
    default: false
notes:
  - The AWS credentials must be allowed to call C(ssm:GetParameter), C(ssm:PutParameter),
    C(ssm:AddTagsToResource), C(ssm:DeleteParameter) (for O(state=absent)) and C(ec2:DescribeImages)
    in every region named.
  - The earlier values of a channel are in its history, C(aws ssm get-parameter-history --name /bakery/web-base/stable).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - bakery.ami.attributes
attributes:
  check_mode:
    description: Runs the same reads and returns the same plan as a real run; changes nothing.
    support: full
  diff_mode:
    description: Shows the image ID of each region before and after.
    support: full
  idempotent:
    description: A rerun with the same images changes nothing and reports C(changed=false).
    support: full
seealso:
  - module: bakery.ami.ami_find
    description: Resolves a channel to its image (its option C(channel)).
"""

EXAMPLES = r"""
- name: Point the latest channel at the images the bake just published
  bakery.ami.ami_channel:
    family: web-base
    channel: latest
    images: "{{ publish_result.images }}"

- name: Promote version 2026.12.01 to the stable channel in three regions
  bakery.ami.ami_channel:
    family: web-base
    channel: stable
    version: "2026.12.01"
    regions: [us-east-1, eu-west-1, ap-southeast-2]
  register: promoted

- name: Show what stable held before
  ansible.builtin.debug:
    msg: "{{ promoted.channels | dict2items | map(attribute='value.before') }}"

- name: Give two images explicitly, under a team prefix
  bakery.ami.ami_channel:
    prefix: teams/payments/images
    family: web-base
    channel: canary
    images:
      - region: us-east-1
        image_id: ami-0123456789abcdef0
      - region: eu-west-1
        image_id: ami-0fedcba9876543210

- name: Remove a channel nobody uses any more
  bakery.ami.ami_channel:
    family: web-base
    channel: beta
    regions: [us-east-1, eu-west-1]
    state: absent
    allow_empty: true
"""

RETURN = r"""
name:
  description: The channel's parameter name.
  returned: always
  type: str
  sample: /bakery/web-base/stable
channels:
  description: The channel in each region, by region.
  returned: always
  type: dict
  contains:
    name:
      description: The parameter name.
      type: str
    before:
      description: The image ID the parameter held before the task; V(null) when it did not exist.
      type: str
    after:
      description: The image ID it holds after the task; V(null) for O(state=absent).
      type: str
    changed:
      description: Whether the region's parameter was (or in check mode, would be) changed.
      type: bool
    version:
      description: The parameter version the change made.
      type: int
      returned: when the region was changed, outside check mode
    error:
      description: Why the change of this region failed.
      type: str
      returned: when it failed
  sample:
    us-east-1:
      name: /bakery/web-base/stable
      before: ami-0123456789abcdef0
      after: ami-0fedcba9876543210
      changed: true
      version: 4
    eu-west-1:
      name: /bakery/web-base/stable
      before: ami-0aaaabbbbccccdddd
      after: ami-0aaaabbbbccccdddd
      changed: false
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bakery.ami.plugins.module_utils import _result
from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _channel
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._validate import known_regions


def main():
    argument_spec = dict(
        prefix=dict(type="str", default=_channel.DEFAULT_PREFIX),
        family=dict(type="str", required=True),
        channel=dict(type="str", required=True),
        images=dict(type="raw"),
        version=dict(type="str"),
        regions=dict(type="list", elements="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        allow_empty=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        request = _channel.build_request(module.params, module.region, known_regions())
        # Clients are made here, in the main thread; the worker threads only use them.
        ssm = _aws.regional_clients(module, "ssm", request.regions)
        ec2 = _aws.regional_clients(module, "ec2", request.regions) if request.state == "present" else {}
        result = _channel.Channel(request, ssm, ec2, check_mode=module.check_mode).run()
    except BakeryError as e:  # ChannelError, and BakeryAWSError from the AWS calls
        module.fail_json(msg=e.msg, **_result.diff_if_asked(e.result, module._diff))
    module.exit_json(**_result.diff_if_asked(result, module._diff))


if __name__ == "__main__":
    main()
