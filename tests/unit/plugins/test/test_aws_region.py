# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.bakery.ami.plugins.test import aws_region as plugin


@pytest.mark.parametrize("value", ["us-east-1", "eu-central-1", "cn-north-1", "us-gov-west-1", "ap-southeast-2"])
def test_known_regions_pass(value):
    assert plugin.TestModule().tests()["aws_region"](value) is True


@pytest.mark.parametrize("value", ["mars-north-1", "us-east-1 ", "US-EAST-1", "", None, 5, ["us-east-1"]])
def test_anything_else_fails(value):
    assert plugin.TestModule().tests()["aws_region"](value) is False
