#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ami_launch_template
short_description: Add a launch template version that launches a new image, in every region; or remove such versions
version_added: 0.1.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - Adds to an existing launch template, in each region, a new version that launches the image of
    that region (O(images), as the publish role returns it in C(publish_result.images), or one
    O(image_id) in every region of O(regions)). The new version is made from O(source_version) with
    only C(ImageId) changed, and is optionally made the default version (O(set_default)).
  - Idempotent by image ID. A region whose latest version (with O(set_default), whose default
    version) already launches the image is left alone. With O(set_default), when the latest version
    already launches the image only the default version moves to it.
  - Launch template versions carry no tags, so each version this module makes ends its description
    with a marker, C([bakery.ami image=<image ID> run=<run ID> default-was=<number>]), which records the
    image, the bake run (O(run_id), when given) and the template's default version at that moment.
    O(state=absent) removes only versions with that marker, selected by image (O(image_id) or
    O(images)), by run (O(run_id)) or both, and when the default version is one of them first puts
    the default back on the version its marker names (or on the newest version left). Versions made
    by anyone else are never touched.
  - The template must exist in every region named; the module never creates or deletes a template.
  - Every region is read first, at once; only when every region was read without a problem are the
    regions that need it changed, at once. Every option is checked before any AWS call, and a
    template missing in a region fails the task before anything changes anywhere.
options:
  launch_template:
    description:
      - The launch template, by name (3-128 letters, digits and C(\( \) . - / _)) or by ID (V(lt-) and 17 hex
        digits). A name must name a template in every region; an ID exists in one region only.
    type: str
    required: true
  image_id:
    description:
      - The image the new version launches, in every region of O(regions).
      - With O(state=absent), selects the versions made for this image.
      - Mutually exclusive with O(images).
    type: str
  images:
    description:
      - The image ID of each region, as a dictionary of region to image ID (C(publish_result.images) of
        the publish role), or as a list of dictionaries with the keys C(region) and C(image_id), as
        M(bakery.ami.ami_channel) takes them. The regions are those named here.
      - Mutually exclusive with O(image_id) and O(regions).
    type: raw
  regions:
    description:
      - The regions with O(image_id), or with O(state=absent) and O(run_id) alone. Defaults to the module's region.
    type: list
    elements: str
  set_default:
    description:
      - Make the version that launches the image the template's default version.
    type: bool
    default: false
  source_version:
    description:
      - The version the new version is made from (every setting of it, with C(ImageId) replaced), one of
        V($Latest), V($Default) or a version number that exists in every region.
    type: str
    default: $Latest
  description:
    description:
      - The start of the new version's description, at most 100 characters; the marker follows it.
    type: str
  run_id:
    description:
      - The bake run, 6-64 letters, digits and C(-), recorded in the marker of the new version.
      - With O(state=absent), selects the versions that run made (the rollback of a failed bake).
    type: str
  state:
    description:
      - V(present) adds the version where needed; V(absent) removes the versions this module made for
        O(image_id)/O(images) and/or O(run_id).
    type: str
    choices: [present, absent]
    default: present
notes:
  - The AWS credentials must be allowed to call C(ec2:DescribeLaunchTemplates),
    C(ec2:DescribeLaunchTemplateVersions), C(ec2:CreateLaunchTemplateVersion),
    C(ec2:ModifyLaunchTemplate) and (for O(state=absent)) C(ec2:DeleteLaunchTemplateVersions) in every region named.
  - M(bakery.ami.ami_cleanup) removes the versions of a run as well (its option C(launch_templates)); the
    bake's rollback uses it.
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
    description: Shows each region's latest and default version and image before and after.
    support: full
  idempotent:
    description: A rerun with the same images changes nothing and reports C(changed=false).
    support: full
seealso:
  - module: bakery.ami.ami_channel
    description: Image channels, which a launch template can name as C(resolve:ssm:<channel>) instead.
"""

EXAMPLES = r"""
- name: Launch the images the bake just published from the web launch template, by default
  bakery.ami.ami_launch_template:
    launch_template: web
    images: "{{ publish_result.images }}"
    set_default: true
    run_id: "{{ bake.run_id }}"

- name: Add a version for one image in two regions, from version 3, without changing the default
  bakery.ami.ami_launch_template:
    launch_template: web
    image_id: ami-0123456789abcdef0
    regions: [us-east-1, eu-west-1]
    source_version: "3"
    description: canary

- name: Remove the versions a failed run made (the default goes back where it was)
  bakery.ami.ami_launch_template:
    launch_template: web
    run_id: 20301231T000000-abcd1234
    regions: [us-east-1, eu-west-1]
    state: absent
"""

RETURN = r"""
launch_template:
  description: The launch template as given.
  returned: always
  type: str
  sample: web
regions:
  description: What the task did (in check mode, would do) in each region, by region.
  returned: always
  type: dict
  contains:
    launch_template_id:
      description: The template's ID in the region.
      type: str
    launch_template_name:
      description: The template's name.
      type: str
    changed:
      description: Whether the region was (or in check mode, would be) changed.
      type: bool
    image_id:
      description: The image of the region.
      type: str
      returned: with O(state=present)
    action:
      description: V(none), V(create) (a new version) or V(set_default) (only the default moves).
      type: str
      returned: with O(state=present)
    version:
      description: The version that launches the image; V(null) for a version not made yet (check mode).
      type: int
      returned: with O(state=present)
    created:
      description: Whether a version was made.
      type: bool
      returned: when a version was made
    before:
      description: The latest and default version numbers and the image of the version watched (the default with O(set_default)).
      type: dict
      returned: with O(state=present)
    source_version:
      description: The number of the version the new version is made from.
      type: int
      returned: with O(state=present)
    version_description:
      description: The description (with its marker) a new version gets.
      type: str
      returned: with O(state=present)
    delete:
      description: The version numbers removed (in check mode, to remove).
      type: list
      elements: int
      returned: with O(state=absent)
    deleted:
      description: The version numbers deleted (or already gone).
      type: list
      elements: int
      returned: with O(state=absent), when versions were deleted
    default_before:
      description: The default version before the task.
      type: int
      returned: with O(state=absent)
    default_after:
      description: The default version after it.
      type: int
      returned: with O(state=absent)
    error:
      description: Why the change of this region failed.
      type: str
      returned: when it failed
  sample:
    us-east-1:
      launch_template_id: lt-0123456789abcdef0
      launch_template_name: web
      image_id: ami-0fedcba9876543210
      action: create
      version: 8
      created: true
      changed: true
      source_version: 7
      before: {latest_version: 7, default_version: 7, image_id: ami-0123456789abcdef0}
      version_description: "[bakery.ami image=ami-0fedcba9876543210 run=20301231T000000-abcd1234 default-was=7]"
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.bakery.ami.plugins.module_utils import _result
from ansible_collections.bakery.ami.plugins.module_utils import _aws
from ansible_collections.bakery.ami.plugins.module_utils import _launch_template
from ansible_collections.bakery.ami.plugins.module_utils._errors import BakeryError
from ansible_collections.bakery.ami.plugins.module_utils._validate import known_regions


def main():
    argument_spec = dict(
        launch_template=dict(type="str", required=True),
        image_id=dict(type="str"),
        images=dict(type="raw"),
        regions=dict(type="list", elements="str"),
        set_default=dict(type="bool", default=False),
        source_version=dict(type="str", default="$Latest"),
        description=dict(type="str"),
        run_id=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        request = _launch_template.build_request(module.params, module.region, known_regions())
        # Clients are made here, in the main thread; the worker threads only use them.
        clients = _aws.regional_clients(module, "ec2", request.regions)
        result = _launch_template.LaunchTemplates(request, clients, check_mode=module.check_mode).run()
    except BakeryError as e:  # LaunchTemplateError, and BakeryAWSError from the AWS calls
        module.fail_json(msg=e.msg, **_result.diff_if_asked(e.result or {}, module._diff))
    module.exit_json(**_result.diff_if_asked(result, module._diff))


if __name__ == "__main__":
    main()
