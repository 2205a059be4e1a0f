# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Membership of the collection's action group, shared by the modules that call AWS (the only ones in it).
    DOCUMENTATION = r"""
attributes:
  action_group:
    description: Use C(group/bakery.ami.ami) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - bakery.ami.ami
"""
