# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options of every module that waits for images, using the collection's shared waiter.
    DOCUMENTATION = r"""
options:
  wait:
    description:
      - Wait until every image the task made or found is C(available).
      - The wait polls every 3 seconds at first (every 2 seconds for an image M(bakery.ami.ami_create)
        has just started, which every copy waits on), then every 10 % of the time already waited, at most
        every 15 seconds.
        An image that is not visible yet right after it was requested counts as pending
        (EC2 is eventually consistent); an image that goes to C(failed) fails the task at once
        with its state reason.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds, before the task fails.
    type: int
    default: 3600
"""
