# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible_collections.bakery.ami.plugins.module_utils import _images


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
