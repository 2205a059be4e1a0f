# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.modules import aws_argument_spec

from ansible_collections.bakery.ami.plugins.module_utils import _group


def test_group_default_options_mirror_amazon_aws_common_options():
    theirs = aws_argument_spec()
    ours = _group.GROUP_DEFAULT_OPTIONS
    assert set(ours) == set(theirs)
    for name, option in theirs.items():
        assert sorted(ours[name].get("aliases", [])) == sorted(option.get("aliases", [])), name
        assert ours[name].get("default") == option.get("default"), name
        assert bool(ours[name].get("no_log")) == bool(option.get("no_log")), name


def test_module_options_win_over_group_options():
    spec = _group.accept_group_defaults({"root": dict(type="path", default="/"), "region": dict(type="int")})
    assert spec["root"] == dict(type="path", default="/")
    assert spec["region"] == dict(type="int")
    assert spec["secret_key"]["no_log"] is True
