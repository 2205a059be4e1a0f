# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: aws_region
author:
  - bakery.ami contributors (@bakery-ami)
version_added: 0.1.0
short_description: Is the value the name of an AWS region
description:
  - True when the value names an EC2 region of the commercial, China or GovCloud partition, as the
    installed botocore knows them (the same list the modules of this collection check C(region) and
    C(regions) against).
  - It runs on the controller without any AWS call, so a bake can refuse a mistyped region before it
    makes anything. Whether an opt-in region is enabled for the account is not checked.
  - Needs botocore on the controller; without it every value is refused.
options:
  _input:
    description: The value to check.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Refuse unknown regions before anything is made
  ansible.builtin.assert:
    that:
      - bake_regions | reject('bakery.ami.aws_region') | list | length == 0
    fail_msg: "bake_regions: unknown region(s) {{ bake_regions | reject('bakery.ami.aws_region') | join(', ') }}"
"""

RETURN = r"""
_value:
  description: Whether the value is a known AWS region name.
  type: bool
"""

from ansible_collections.bakery.ami.plugins.module_utils._validate import known_regions

_KNOWN: list = []


def aws_region(value) -> bool:
    if not _KNOWN:
        _KNOWN.extend(known_regions())
    return isinstance(value, str) and value in _KNOWN


class TestModule:
    def tests(self):
        return {"aws_region": aws_region}
