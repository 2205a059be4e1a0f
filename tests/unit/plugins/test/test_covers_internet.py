# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The covers_internet test is ami_builder's open-SSH rule, for the bake's checks on the controller."""
from __future__ import annotations

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _builder
from ansible_collections.bakery.ami.plugins.test import covers_internet as plugin

TEST = plugin.TestModule().tests()["covers_internet"]


@pytest.mark.parametrize("value", [
    ["0.0.0.0/0"], ["::/0"], ["0.0.0.0/1", "128.0.0.0/1"], ["::/1", "8000::/1"],
    ["10.0.0.0/8", "0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"], ["203.0.113.10/32", "::/0"],
])
def test_ranges_covering_a_family_are_true(value):
    assert TEST(value) is True


@pytest.mark.parametrize("value", [
    [], ["203.0.113.0/24"], ["0.0.0.0/1"], ["0.0.0.0/1", "128.0.0.0/2"], ["::/1", "0.0.0.0/1"],
    "0.0.0.0/0", None, 5, ["junk"], {"0.0.0.0/0": 1},
])
def test_anything_else_is_false(value):
    assert TEST(value) is False


def test_it_is_the_modules_rule():
    for value in (["0.0.0.0/1", "128.0.0.0/1"], ["203.0.113.0/24"]):
        refused = any("open SSH to the whole internet" in e
                      for e in _builder.validate({"run_id": "run-abc123", "image_id": "ami-0123456789abcdef0",
                                                  "instance_type": "t3.micro", "root_device_name": "/dev/xvda",
                                                  "volume_size": 8, "volume_type": "gp3", "ssh_cidrs": value}))
        assert TEST(value) is refused
