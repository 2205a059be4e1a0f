#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: customize_plan
short_description: Split a bake level between what is baked into the image and what is applied at launch
version_added: 0.2.0
author: "bakery.ami contributors (@bakery-ami)"
description:
  - The plan of the C(bakery.ami.customize) role when it is used on its own; the bake computes the
    same plan with M(bakery.ami.bake_plan).
  - V(full) bakes packages, files and services; V(standard) bakes packages and applies files and
    services at launch; V(minimal) does everything at launch. What is not baked is returned as
    cloud-config user-data (RV(plan.user_data)).
  - O(launch_config) values are never baked. They are written at launch to C(values_path) as
    C(NAME=value) lines, quoted so that C(sh) sourcing the file gets back exactly each value.
  - Runs in the controller's process; templates are rendered on the controller.
options:
  level:
    description: How much to bake.
    type: str
    choices: [full, standard, minimal]
    default: full
  packages:
    description: Package names.
    type: list
    elements: str
    default: []
  files:
    description: Files, each C({path, content | template, mode, owner, group}); C(path) absolute.
    type: list
    elements: dict
    default: []
  services:
    description: Services to enable.
    type: list
    elements: str
    default: []
  launch_config:
    description:
      - C({files, values, values_path}) applied at every launch. C(values) keys must be shell
        variable names; values strings, numbers, booleans (written V(true)/V(false)) or null (empty).
    type: dict
    default: {}
  option_prefix:
    description: The prefix of the option names in error messages (the bake uses V(bake_)).
    type: str
    default: customize_
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
"""

EXAMPLES = r"""
- name: Plan a standard bake
  bakery.ami.customize_plan:
    level: standard
    packages: [nginx]
    files:
      - path: /etc/nginx/conf.d/app.conf
        template: app.conf.j2
    services: [nginx]
    launch_config:
      values: {APP_ENV: production}
      values_path: /etc/default/app
  register: plan
"""

RETURN = r"""
plan:
  description: The split of the bake.
  returned: success
  type: dict
  contains:
    baked:
      description: C(packages), C(files) (path, sha256, mode, owner, group) and C(services) that go into the image.
      type: dict
    launch:
      description: C(packages), C(files) (paths), C(services), C(values) and C(values_path) applied at launch.
      type: dict
    user_data:
      description: The cloud-config settings that apply the launch part.
      type: dict
    image_files:
      description: The rendered files baked into the image (path, content, mode, owner, group).
      type: list
      elements: dict
"""
