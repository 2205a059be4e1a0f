#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bake_plan
short_description: Validate a bake's variables once and derive its plan (names, tags, paths, customize plan)
version_added: 0.2.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - Reads every C(bake_*) variable of the play (the interface of C(playbooks/bake.yml), documented
    in C(examples/al2023-base.yml)), checks each against its rule in a fixed order, and fails with
    the first rule broken, naming the variable and the rule, before anything exists.
  - Booleans accept Ansible's usual spellings (V(true)/V(false), V(yes)/V(no), V(on)/V(off), V(1)/V(0))
    and whole numbers may be given as strings, so C(-e bake_customize=false) works as written.
  - On success returns RV(bake), every value the bake derives from its variables, computed once -
    run ID, version, image name, build ID, expiry, regions, the tags of images, copies and pending
    tags, copy and share settings, the customize plan (what is baked and what is applied at launch,
    with the launch user-data), the builder settings and the output paths.
  - Runs in the controller's process; nothing runs on any host and nothing is written.
  - A C(bake_*) variable the bake does not know is reported as a warning, with the closest known name.
options: {}
attributes:
  action:
    description: The whole task runs in an action plugin on the controller.
    support: full
  async:
    description: Runs in the controller, not as an asynchronous task.
    support: none
  check_mode:
    description: Nothing is changed in either mode; the plan is the same.
    support: full
  diff_mode:
    description: Writes nothing, so there is nothing to compare.
    support: none
  idempotent:
    description: Always C(changed=false).
    support: full
notes:
  - The run ID, the version made from the clock and the expiry are taken from the time the task
    runs; pin C(bake_version), C(bake_build_id) or C(bake_run_id) for reruns that adopt
    what an earlier run made.
  - Templates named by C(bake_files) and C(bake_launch_config.files) are rendered here, on the
    controller, as C(lookup('ansible.builtin.template', name)) renders them.
seealso:
  - module: bakery.ami.bake_outputs
"""

EXAMPLES = r"""
- name: Validate the bake variables and derive the plan
  bakery.ami.bake_plan:
  register: __bake_plan

- name: Use a value of the plan
  ansible.builtin.debug:
    msg: "{{ __bake_plan.bake.name }} in {{ __bake_plan.bake.regions | join(', ') }}"
"""

RETURN = r"""
started:
  description: When the task began, in seconds since the epoch (the bake's first moment, its report's C(marks.start)).
  returned: always
  type: float
  sample: 1796643630.657
bake:
  description:
    - The plan of the bake. Its main keys are listed here; C(docs/architecture.md) describes each.
  returned: success
  type: dict
  contains:
    run_id:
      description: Identifies this run (tag C(bakery:run-id) on every temporary resource).
      type: str
      sample: 20261205100000-k3j9x0aa
    version:
      description: The version of the bake (C(bake_version), or the UTC time as C(YYYYMMDDhhmmss)).
      type: str
    name:
      description: The image name from C(bake_name_template).
      type: str
    build_id:
      description: The value of C(bakery:build-id) (C(bake_build_id), or the image name).
      type: str
    expires_at:
      description: When C(sweep.yml) may remove what this run left (C(bakery:expires-at)).
      type: str
    regions:
      description: Every region of the image, the build region first.
      type: list
      elements: str
    tags:
      description:
        - The tags of the images (C(image)), of their copies (C(copy)) and those that stay on the images until
          the bake finished with them (C(pending)).
      type: dict
    customize:
      description:
        - What is baked (C(baked)), what is applied at launch (C(launch)), the launch user-data (C(user_data)) and
          the rendered image files (C(image_files)).
      type: dict
    builder:
      description:
        - The builder settings (mode, whether the controller connects and over SSH, instance, network, volume, key directory).
        - C(ssh_cidrs) are those the builder's security group admits SSH from, none when nothing is run on the builder
          (C(bake_customize=false)).
      type: dict
    test:
      description:
        - The image test stage (enabled, roles, whether a test instance is made, its connection, whether that is SSH).
        - C(ssh_cidrs) are those the test instance admits SSH from, none when the stage does not reach it over SSH.
      type: dict
    paths:
      description: The output files (C(manifest), C(report), C(user_data)), the output directory and the cache directory.
      type: dict
"""
