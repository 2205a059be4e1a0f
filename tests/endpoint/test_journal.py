# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BAKERY_LOCAL_AWS_JOURNAL: every AWS request the endpoint serves, with its time and region."""
from __future__ import annotations

import time

from tools.local_aws.control import LocalAws


def test_the_journal_lists_each_request_in_order_with_its_time_and_region(tmp_path, monkeypatch):
    journal = tmp_path / "journal"
    monkeypatch.setenv("BAKERY_LOCAL_AWS_JOURNAL", str(journal))
    with LocalAws.start(port=0) as aws:
        aws.reset_counts()
        before = time.time()
        aws.client("ec2", "us-east-1").describe_key_pairs()
        aws.client("ec2", "eu-west-1").describe_security_groups()
        after = time.time()
        aws.counts()  # a control request: not in the journal

    entries = [line.split() for line in journal.read_text().splitlines()]
    ours = [entry for entry in entries if before - 0.5 <= float(entry[0]) <= after + 0.5]
    assert [entry[1:] for entry in ours] == [["us-east-1", "DescribeKeyPairs"], ["eu-west-1", "DescribeSecurityGroups"]]
    assert float(ours[0][0]) <= float(ours[1][0])
    assert all(len(entry) == 3 for entry in entries)
