# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_cloud_config: the one reader of cloud-init's configuration files in an image."""

from __future__ import annotations

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _cloud_config
from ansible_collections.bakery.ami.plugins.module_utils import _image_root


@pytest.fixture
def image(tmp_path):
    drop_ins = tmp_path / "etc/cloud/cloud.cfg.d"
    drop_ins.mkdir(parents=True)
    (tmp_path / "etc/cloud/cloud.cfg").write_text("datasource_list: [Ec2]\n")
    (drop_ins / "90_b.cfg").write_text("network: {config: disabled}\n")
    (drop_ins / "10_a.cfg").write_text("preserve_hostname: true\n")
    (drop_ins / "README").write_text("not: read\n")
    (drop_ins / "50_dir.cfg").mkdir()
    return _image_root.ImageRoot(str(tmp_path))


def test_drop_ins_are_the_cfg_files_in_string_order(image):
    assert _cloud_config.dropin_names(image) == ["10_a.cfg", "50_dir.cfg", "90_b.cfg"]


def test_load_parses_cloud_cfg_then_each_regular_drop_in_leaving_out_the_callers_own(image):
    files = _cloud_config.load(image, skip_name="90_b.cfg")
    assert [(item.name, item.display, item.config) for item in files] == [
        ("cloud.cfg", "/etc/cloud/cloud.cfg", {"datasource_list": ["Ec2"]}),
        ("10_a.cfg", "/etc/cloud/cloud.cfg.d/10_a.cfg", {"preserve_hostname": True}),
    ]


def test_a_file_cloud_init_could_not_use_is_refused_with_its_name_and_line():
    with pytest.raises(_cloud_config.ConfigError, match=r"^/etc/cloud/x\.cfg: line 1: the top level must be a mapping"):
        _cloud_config.parse("- a\n", "/etc/cloud/x.cfg")


@pytest.mark.parametrize("texts,disabled", [
    (["network: {config: disabled}\n"], True),
    (["network: {config: disabled}\n", "network:\n  version: 2\n"], False),
    (["network: {config: disabled}\n", "datasource_list: [Ec2]\n"], True),
    (["network: [unclosed\n"], False),
])
def test_network_disabled_is_decided_by_the_last_file_that_sets_network(texts, disabled):
    assert _cloud_config.network_disabled(texts) is disabled


@pytest.mark.parametrize("text, value", [
    ("repo_upgrade: security\n", "security"),                      # plain
    ("repo_upgrade:security", "security"),                         # no space, no line end
    ("repo_upgrade \t:\t security \t\n", "security"),               # spaces and tabs around the colon
    ("repo_upgrade: 'security'\n", "security"),                     # single quotes
    ('repo_upgrade: "security"\n', "security"),                     # double quotes
    ("repo_upgrade: 'security\"\n", "'security\""),                 # unmatched quotes stay
    ("repo_upgrade: security # bakery\n", "security"),            # trailing comment
    ("repo_upgrade: security\r\n", "security"),                     # CRLF
    ("repo_upgrade:\n", ""),                                        # set to nothing
    ("a: 1\nrepo_upgrade: none\nrepo_upgrade: all\n", "none"),      # the first line counts
    ("repo_releasever: '2018.03'\n", None),                         # another key
    ("repo_upgrade_x: all\n", None),                                # a longer key
    ("  repo_upgrade: all\n", None),                                # not at the top level
    ("# repo_upgrade: all\n", None),                                # commented out
    ("", None),
])
def test_top_level_scalar_reads_one_key_from_the_text(text, value):
    assert _cloud_config.top_level_scalar(text, "repo_upgrade") == value


def test_top_level_scalar_escapes_the_key():
    assert _cloud_config.top_level_scalar("aXb: 1\n", "a.b") is None
    assert _cloud_config.top_level_scalar("a.b: 1\n", "a.b") == "1"
