# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one time module: the parser every module uses for user options and EC2's fields alike."""
from __future__ import annotations

import datetime

import pytest

from ansible_collections.bakery.ami.plugins.module_utils import _time

UTC = datetime.timezone.utc


@pytest.mark.parametrize("text,expected", [
    ("2027-01-31T00:00:00Z", datetime.datetime(2027, 1, 31, tzinfo=UTC)),
    ("2027-01-31T00:00:00.000Z", datetime.datetime(2027, 1, 31, tzinfo=UTC)),  # EC2's CreationDate form
    ("2027-01-31T02:00:00+02:00", datetime.datetime(2027, 1, 31, tzinfo=UTC)),
    ("2027-01-30T22:30:00-0130", datetime.datetime(2027, 1, 31, tzinfo=UTC)),
    ("2027-01-31", datetime.datetime(2027, 1, 31, tzinfo=UTC)),
    ("2027-01-31 00:00", datetime.datetime(2027, 1, 31, tzinfo=UTC)),
    (datetime.datetime(2027, 1, 31), datetime.datetime(2027, 1, 31, tzinfo=UTC)),  # naive: UTC
    (datetime.datetime(2027, 1, 31, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
     datetime.datetime(2027, 1, 31, tzinfo=UTC)),
])
def test_parse_gives_aware_utc(text, expected):
    parsed = _time.parse(text)
    assert parsed == expected and parsed.tzinfo == UTC


@pytest.mark.parametrize("value", [
    None, "", 5, "tomorrow", "31/01/2027", "2027-01-31T00:00:00Z\n", " 2027-01-31", "2027-02-30",
    "2027-01-31T00:00:00+24:00", "2027-01-31T00:00:00+00:60", "\u0662027-01-31",
])
def test_parse_refuses_what_is_not_one_whole_iso_time(value):
    assert _time.parse(value) is None


def test_iso_and_stamp_write_utc():
    moment = datetime.datetime(2027, 1, 31, 2, 3, 4, 999, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert _time.iso(moment) == "2027-01-31T00:03:04Z"
    assert _time.stamp(moment) == "20270131000304"
    assert _time.parse(_time.iso(moment)) == moment.replace(microsecond=0)


def test_now_is_aware_utc():
    assert _time.now().tzinfo == UTC


def test_round_to_minute_matches_ec2():
    moment = datetime.datetime(2030, 1, 1, 10, 0, 30, tzinfo=UTC)
    assert _time.round_to_minute(moment) == datetime.datetime(2030, 1, 1, 10, 1, tzinfo=UTC)
    assert _time.round_to_minute(moment.replace(second=29)) == moment.replace(second=0)


def test_next_minute():
    assert _time.next_minute(datetime.datetime(2030, 1, 1, 10, 0, 0, 1, tzinfo=UTC)) == \
        datetime.datetime(2030, 1, 1, 10, 1, tzinfo=UTC)


def test_ten_years_after_a_leap_day():
    leap = datetime.datetime(2028, 2, 29, tzinfo=UTC)
    assert _time.ten_years_after(leap) == datetime.datetime(2038, 2, 28, tzinfo=UTC)
