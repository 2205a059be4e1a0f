#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ami_find
short_description: Pick the right source AMI in every region
version_added: 0.1.0
description:
  - Finds the image to build on, by distribution name, owners and filters, tags, an SSM parameter
    or image IDs, in one region or several at once, and returns the newest match with its release.
  - Every criterion is sent to EC2 as a C(DescribeImages) filter; results are read page by page and
    only the best O(limit) candidates are kept, so a broad query over a large catalog stays cheap.
  - Broad queries (owners and attributes only), O(distro) queries, and O(name) wildcards over a
    publisher's images (O(owners) given, none of them V(self), every name with V(*) or V(?)), when
    ordered by creation date, are read newest first, in C(creation-date) windows (the two newest
    calendar months, then the rest), and the search stops once O(limit) candidates are found; the count
    in RV(images_by_region) then covers only the windows read. A line such as
    V(al2023-ami-2023.*-x86_64), with hundreds of images, is then answered with the few of the last two
    months. Queries by image ID or tag, exact names, and names among this account's or shared images
    are read in one pass. For the newest image alone, O(limit=1) keeps the first window small.
  - The defaults (O(architecture=x86_64), O(virtualization_type=hvm), O(root_device_type=ebs)) encode
    that modern deployments use 64-bit EBS-backed HVM images. When the chosen image is 32-bit,
    paravirtual or instance-store because a non-default value allowed it, RV(warnings) says so.
  - An open-ended search across every owner is refused, because anyone can publish an image named like an
    official one. Give O(owners), or O(distro), O(image_ids), O(ssm_parameter) or O(executable_by_me).
  - Read-only; C(changed) is always V(false).
author: "bakery.ami contributors (@bakery-ami)"
options:
  distro:
    description:
      - A distribution from the collection's catalog. It supplies the trusted owner account IDs and the
        name pattern for O(architecture) (all architectures with O(architecture=any)).
      - Known names are V(al2023), V(al2023-minimal), V(al2), V(amzn) (the Amazon Linux AMI 2018.03),
        V(ubuntu-24.04), V(ubuntu-22.04), V(ubuntu-20.04), V(debian-12), V(debian-11), V(rhel-9) and V(rhel-8).
        An unknown name fails, listing the known ones.
      - O(owners) and O(name), when given, replace the catalog's owners and name pattern.
      - The catalog holds the owner IDs of the commercial partition; in China or GovCloud regions give O(owners).
    type: str
  owners:
    description:
      - Account IDs, or the aliases V(self), V(amazon) and V(aws-marketplace), whose images may match.
      - Required unless O(distro), O(image_ids), O(ssm_parameter) or O(executable_by_me) is given. An empty list fails.
      - Sent as an C(owner-id) filter when all are account IDs, an C(owner-alias) filter when all are
        aliases, and otherwise (or with V(self)) as the C(Owners) parameter.
    type: list
    elements: str
  name:
    description:
      - A glob on the image name (V(*) any characters, V(?) one character).
    type: str
  filters:
    description:
      - Raw C(DescribeImages) filters (see the EC2 API reference), merged with those the other options produce.
        A key given here replaces the one an option produces (for example C(architecture)).
      - Values are strings or lists of strings.
    type: dict
    default: {}
  tags:
    description:
      - Tags a matching image must carry, as a dictionary of tag names to string values. This is how a
        service bake finds the newest base image of its own family.
      - Values are matched literally, so a value may not hold V(*), V(?) or V(\\) (EC2 filters read them as
        wildcards and escapes). For a glob on a tag, use O(filters) (C(tag:NAME)).
    type: dict
    default: {}
  architecture:
    description:
      - The architecture of the image; V(any) for every one.
    type: str
    choices: [x86_64, arm64, i386, any]
    default: x86_64
  virtualization_type:
    description:
      - The virtualization type of the image; V(any) for both.
    type: str
    choices: [hvm, paravirtual, any]
    default: hvm
  root_device_type:
    description:
      - The root device type of the image; V(any) for both.
    type: str
    choices: [ebs, instance-store, any]
    default: ebs
  ssm_parameter:
    description:
      - The name of an SSM parameter whose value is an AMI ID, with or without the C(resolve:ssm:) prefix,
        for example the public C(/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64).
      - It is read in every region searched; the image it names is then described and checked against
        the other criteria. A parameter that does not exist or whose value is not an AMI ID fails.
      - Mutually exclusive with O(image_ids).
    type: str
  channel:
    description:
      - An image channel of M(bakery.ami.ami_channel), read in every region searched like O(ssm_parameter)
        (the parameter C(/<prefix>/<family>/<channel>)); the image it names is checked against the other criteria.
      - V(family/channel) under the prefix V(bakery), or a dictionary with the keys C(family), C(channel) and
        optionally C(prefix). The names follow M(bakery.ami.ami_channel)'s rules; a channel that does not exist
        in a region fails.
      - Mutually exclusive with O(ssm_parameter) and O(image_ids).
    type: raw
  image_ids:
    description:
      - Describe exactly these images, checked against the other criteria.
    type: list
    elements: str
  executable_by_me:
    description:
      - Find private images shared with this account (C(ExecutableUsers=self) and C(is-public=false)),
        such as Red Hat Cloud Access Gold Images.
    type: bool
    default: false
  include_deprecated:
    description:
      - Also accept deprecated images (their deprecation time has passed).
    type: bool
    default: false
  include_disabled:
    description:
      - Also accept disabled images.
    type: bool
    default: false
  sort_by:
    description:
      - How candidates are ordered, newest first.
      - V(creation_date) orders by creation time; V(name) orders by name in natural version order, so
        C(...-2023.10...) comes after C(...-2023.9...).
    type: str
    choices: [creation_date, name]
    default: creation_date
  most_recent:
    description:
      - Return the first candidate as RV(image).
      - With V(false) and more than one match, RV(image) is absent (and the task fails only when O(unique=true)).
    type: bool
    default: true
  unique:
    description:
      - Fail when more than one image matches in a region.
    type: bool
    default: false
  required:
    description:
      - Fail when no image matches (in any of the regions). The message shows the effective query
        (owners and filters) and, when there is one, the nearest miss, for example
        "3 images matched the owners and the name but none is x86_64".
    type: bool
    default: true
  regions:
    description:
      - Run the same query in each of these regions, concurrently; RV(images_by_region) maps each region
        to its result. RV(image) and RV(images) are those of the first region listed.
      - Defaults to the module's O(region).
    type: list
    elements: str
  limit:
    description:
      - How many candidates to return in RV(images) (1 to 1000).
    type: int
    default: 10
notes:
  - AMIs are per region, so the same release has a different image ID in every region; use O(regions)
    to find it everywhere in one task.
  - Deprecated images are hidden unless O(include_deprecated=true), also the account's own
    (which C(DescribeImages) would otherwise show to their owner).
seealso:
  - module: amazon.aws.ec2_ami_info
    description: Lists images without sorting or choosing.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - bakery.ami.attributes
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
  idempotent:
    support: full
    description: Read-only; reruns give the same answer until images are published or retired.
"""

EXAMPLES = r"""
- name: Newest Amazon Linux 2023 for x86_64 in the module's region
  bakery.ami.ami_find:
    distro: al2023
  register: source

- name: Debian 12 for arm64 in three regions at once
  bakery.ami.ami_find:
    distro: debian-12
    architecture: arm64
    regions: [eu-west-1, eu-central-1, us-east-1]
  register: debian

- name: Use the per-region image IDs
  ansible.builtin.debug:
    msg: "{{ debian.images_by_region | dict2items | map(attribute='value.image.image_id') }}"

- name: The image a public SSM parameter names, checked against the defaults
  bakery.ami.ami_find:
    ssm_parameter: resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64

- name: The image the stable channel of our web-base family names, in two regions
  bakery.ami.ami_find:
    channel: web-base/stable
    regions: [us-east-1, eu-west-1]
  register: stable

- name: Newest base image of our own family (service bake on a base bake)
  bakery.ami.ami_find:
    owners: [self]
    tags:
      bakery:family: web-base
      bakery:stage: base
  register: base

- name: By owner and name glob, natural version order of the names
  bakery.ami.ami_find:
    owners: ["099720109477"]
    name: ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*
    sort_by: name
    limit: 3

- name: Raw DescribeImages filters merged with the rest
  bakery.ami.ami_find:
    owners: [amazon]
    name: al2023-ami-2023.*
    filters:
      ena-support: "true"
      boot-mode: uefi-preferred

- name: Check given image IDs against the criteria (fails if none is 64-bit EBS HVM)
  bakery.ami.ami_find:
    image_ids: [ami-0123456789abcdef0, ami-0fedcba9876543210]

- name: RHEL Gold Images shared with this account through Cloud Access
  bakery.ami.ami_find:
    executable_by_me: true
    name: RHEL-9.*_HVM-*-x86_64-*Access*

- name: Every 2018.03 image, deprecated ones too, without choosing one
  bakery.ami.ami_find:
    distro: amzn
    include_deprecated: true
    most_recent: false
    required: false
    limit: 50
  register: legacy

- name: Assert that exactly one image carries this build ID
  bakery.ami.ami_find:
    owners: [self]
    tags:
      bakery:build-id: "{{ build_id }}"
    unique: true
"""

RETURN = r"""
image:
  description:
    - The chosen image of the first region (the newest candidate by O(sort_by)).
    - Absent when nothing matched, or with O(most_recent=false) and more than one match.
    - Keys as M(amazon.aws.ec2_ami_info) returns them, plus RV(image.release) and RV(image.distro).
  returned: when an image was chosen
  type: dict
  contains:
    image_id:
      description: The image ID.
      type: str
      sample: ami-0123456789abcdef0
    name:
      description: The image name.
      type: str
      sample: al2023-ami-2023.6.20241010.0-kernel-6.1-x86_64
    owner_id:
      description: The account that owns the image.
      type: str
      sample: "137112412989"
    creation_date:
      description: When the image was created.
      type: str
      sample: "2024-10-10T20:10:55.000Z"
    architecture:
      description: The architecture.
      type: str
      sample: x86_64
    virtualization_type:
      description: The virtualization type.
      type: str
      sample: hvm
    root_device_type:
      description: The root device type.
      type: str
      sample: ebs
    state:
      description: The image state.
      type: str
      sample: available
    tags:
      description: The image's tags as a dictionary.
      type: dict
      sample: {"bakery:family": "web-base"}
    release:
      description:
        - The distribution release read from the name, for example V(2023.6.20241010) for Amazon Linux 2023
          or the Canonical serial V(20240801); V(null) when the name is not one the collection knows.
      type: str
      sample: 2023.6.20241010
    distro:
      description: The distribution read from the name, named like O(distro); V(null) when unknown.
      type: str
      sample: al2023
images:
  description: The candidates of the first region, newest first, at most O(limit), in the format of RV(image).
  returned: always
  type: list
  elements: dict
images_by_region:
  description:
    - For each region searched, its RV(image) (when chosen), RV(images), the number of images that
      C(matched), C(complete) (V(false) when a newest-first search stopped early, so C(matched) counts
      only the creation-date windows read), its C(query), and C(ssm_parameter_value) (the AMI ID the SSM
      parameter held there).
  returned: always
  type: dict
  sample:
    eu-west-1:
      image: {image_id: ami-0123456789abcdef0, name: debian-12-arm64-20240717-1811, release: 20240717-1811}
      images: []
      matched: 4
      query: {owners: [], filters: {owner-id: ["136693071363"]}}
channel:
  description: The parameter of O(channel).
  returned: when O(channel) is given
  type: str
  sample: /bakery/web-base/stable
query:
  description:
    - The exact query sent to C(DescribeImages) in the first region.
  returned: always
  type: dict
  contains:
    owners:
      description: The C(Owners) parameter (empty when owners went as filters).
      type: list
      elements: str
    executable_users:
      description: The C(ExecutableUsers) parameter.
      type: list
      elements: str
    filters:
      description: The filters, name to list of values.
      type: dict
      sample: {owner-id: ["137112412989"], name: ["al2023-ami-2023.*-kernel-*-x86_64"], architecture: [x86_64],
               virtualization-type: [hvm], root-device-type: [ebs], state: [available]}
    include_deprecated:
      description: The C(IncludeDeprecated) parameter.
      type: bool
    include_disabled:
      description: The C(IncludeDisabled) parameter.
      type: bool
    creation_date_windows:
      description:
        - For a newest-first search, the C(creation-date) filter values of each window read, in order,
          each sent together with RV(query.filters).
      type: list
      elements: list
      returned: for broad and O(distro) queries ordered by creation date
    creation_date_fallback:
      description:
        - V(true) when no window held a match and one more pass without C(creation-date) was made (which
          also covers endpoints that do not support C(creation-date) wildcards).
      type: bool
      returned: when that pass was made
warnings:
  description:
    - Chosen images that are 32-bit, paravirtual, instance-store, deprecated or disabled, which matched
      only because a non-default option value allowed it.
  returned: when there are any
  type: list
  elements: str
  sample: ["us-east-1: ami-0123456789abcdef0 (legacy-pv) is virtualization-type paravirtual: it matched only because
           virtualization_type is any (modern deployments use hvm)"]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _find
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._validate import known_regions


def main():
    argument_spec = dict(
        distro=dict(type="str"),
        owners=dict(type="list", elements="str"),
        name=dict(type="str"),
        filters=dict(type="dict", default={}),
        tags=dict(type="dict", default={}),
        architecture=dict(type="str", default="x86_64", choices=["x86_64", "arm64", "i386", "any"]),
        virtualization_type=dict(type="str", default="hvm", choices=["hvm", "paravirtual", "any"]),
        root_device_type=dict(type="str", default="ebs", choices=["ebs", "instance-store", "any"]),
        ssm_parameter=dict(type="str"),
        image_ids=dict(type="list", elements="str"),
        executable_by_me=dict(type="bool", default=False),
        include_deprecated=dict(type="bool", default=False),
        include_disabled=dict(type="bool", default=False),
        sort_by=dict(type="str", default="creation_date", choices=["creation_date", "name"]),
        most_recent=dict(type="bool", default=True),
        unique=dict(type="bool", default=False),
        required=dict(type="bool", default=True),
        regions=dict(type="list", elements="str"),
        limit=dict(type="int", default=10),
        channel=dict(type="raw"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                              mutually_exclusive=[("channel", "ssm_parameter"), ("channel", "image_ids")])

    channel = None
    try:
        request = _find.build_request(module.params, module.region,
                                      known_regions() if module.params["regions"] is not None else None)
        channel = request.channel
        # Clients are made here, one per region and service, before the worker threads start.
        ec2 = _aws.regional_clients(module, "ec2", request.regions)
        ssm = _aws.regional_clients(module, "ssm", request.regions) if request.ssm_parameter else {}
        ssm_values = _find.resolve_ssm(ssm, request)
        outcomes = _find.search(ec2, request, ssm_values)
    except BakeryError as e:  # FindError, and BakeryAWSError from the AWS calls (or connecting)
        module.fail_json(msg=_as_channel(e.msg, channel), **e.result)

    result, error = _find.assemble(request, outcomes)
    if channel:
        result["channel"] = channel
    for warning in result.pop("warnings"):
        # Straight to AnsibleModule.warn: ansible-core returns these as `warnings` itself, and
        # AnsibleAWSModule.warn would also pass them to exit_json, which 2.19 deprecates.
        module._module.warn(warning)  # pylint: disable=protected-access
    if error:
        module.fail_json(msg=error, **result)
    module.exit_json(**result)


def _as_channel(message: str, channel: str | None) -> str:
    """With a channel, the messages about its parameter name the option the user gave."""
    if channel is None:
        return message
    return message.replace("ssm_parameter: parameter ", "channel: parameter ").replace(
        "ssm_parameter: the value of ", "channel: the value of ")


if __name__ == "__main__":
    main()
