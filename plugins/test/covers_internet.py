# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: covers_internet
author:
  - bakery.ami contributors (@bakery-ami)
version_added: 0.1.0
short_description: Do these CIDR blocks together cover all of IPv4 or all of IPv6
description:
  - True when the list of CIDR blocks covers the whole IPv4 or the whole IPv6 address space, that is
    V(0.0.0.0/0) or V(::/0) alone, or any set of ranges whose union is the whole space (V(0.0.0.0/1)
    with V(128.0.0.0/1), V(::/1) with V(8000::/1), ...).
  - It is the rule M(bakery.ami.ami_builder) applies to O(bakery.ami.ami_builder#module:ssh_cidrs) before
    any API call (the same Python function), so a bake can refuse SSH open to the whole internet on the
    controller, before it makes anything.
  - Entries that are not CIDR strings are ignored (their format is checked elsewhere); a value that is not
    a list is never true.
options:
  _input:
    description: The CIDR blocks.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse SSH open to the whole internet
  ansible.builtin.assert:
    that:
      - bake_allow_open_ssh or not (bake_ssh_cidrs is bakery.ami.covers_internet)
    fail_msg: "bake_ssh_cidrs: {{ bake_ssh_cidrs | join(', ') }} open SSH to the whole internet"
"""

RETURN = r"""
_value:
  description: Whether the blocks together cover all of IPv4 or all of IPv6.
  type: bool
"""

from ansible_collections.bakery.ami.plugins.module_utils._validate import internet_covering_families


def covers_internet(value) -> bool:
    return isinstance(value, (list, tuple)) and bool(internet_covering_families(list(value)))


class TestModule:
    def tests(self):
        return {"covers_internet": covers_internet}
