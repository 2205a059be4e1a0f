# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print {snapshot_id: [account IDs with createVolumePermission]} as JSON.

Usage: snapshot_permissions.py ENDPOINT_URL REGION SNAPSHOT_ID...
(amazon.aws has no module that reads snapshot attributes.)
"""
from __future__ import annotations

import json
import sys

import boto3


def main(argv: list) -> int:
    endpoint, region, snapshot_ids = argv[0], argv[1], argv[2:]
    client = boto3.client(
        "ec2", region_name=region, endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    result = {}
    for snapshot_id in snapshot_ids:
        answer = client.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
        result[snapshot_id] = sorted(entry["UserId"] for entry in answer["CreateVolumePermissions"] if "UserId" in entry)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
