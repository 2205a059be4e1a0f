# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The filesystem root of modules that act on an image's files rather than on AWS.
    DOCUMENTATION = r"""
options:
  root:
    description:
      - The root of the filesystem to act on.
      - V(/) acts on the running system (a live builder). Any other path acts on the tree below
        it, such as a mounted volume, a chroot, or a test fixture tree. Every file the module reads or writes
        is resolved under O(root); symbolic links are never followed out of it.
    type: path
    default: /
"""
