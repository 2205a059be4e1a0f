# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import datetime

from ansible_collections.bakery.ami.plugins.module_utils import _images
from ansible_collections.bakery.ami.plugins.module_utils import _paths


def test_tags_of_tolerates_missing_values_and_tags():
    assert _images.tags_of({"Tags": [{"Key": "a", "Value": "1"}, {"Key": "b"}]}) == {"a": "1", "b": ""}
    assert _images.tags_of({}) == {}


def test_snapshot_ids_in_order_without_repeats_or_ephemerals():
    image = {"BlockDeviceMappings": [
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-1"}},
        {"DeviceName": "/dev/xvdb", "VirtualName": "ephemeral0"},
        {"DeviceName": "/dev/xvdc", "Ebs": {"SnapshotId": "snap-2"}},
        {"DeviceName": "/dev/xvdd", "Ebs": {"SnapshotId": "snap-1"}},
    ]}
    assert _images.snapshot_ids(image) == ["snap-1", "snap-2"]


def test_round_to_minute_rounds_half_up():
    moment = datetime.datetime(2030, 1, 1, 10, 0, 30, tzinfo=datetime.timezone.utc)
    assert _images.round_to_minute(moment).minute == 1
    assert _images.round_to_minute(moment.replace(second=29)).minute == 0


def test_resolve_in_root_keeps_links_inside_root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").symlink_to("/usr/lib/os-release")
    (tmp_path / "etc" / "escape").symlink_to("../../../../outside")
    assert _paths.resolve_in_root(str(tmp_path), "etc/os-release") == str(tmp_path / "usr/lib/os-release")
    assert _paths.resolve_in_root(str(tmp_path), "etc/escape") == str(tmp_path / "outside")


def test_resolve_in_root_refuses_link_loops(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    try:
        _paths.resolve_in_root(str(tmp_path), "a", error=RuntimeError)
    except RuntimeError as exc:
        assert "root: too many levels of symbolic links" in str(exc)
    else:
        raise AssertionError("a link loop was followed without end")
