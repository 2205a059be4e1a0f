# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Private to bakery.ami: not a public API; may change without notice.
#
# Times, in one place: the clock, the one ISO-8601 parser (user options and EC2's own fields
# alike), the forms the collection writes (tags, names) and EC2's rounding of deprecation times.
# Every time is an aware datetime in UTC.

from __future__ import annotations

import datetime
import re
import typing as t

UTC = datetime.timezone.utc
# The form of every time the collection writes (tags, deprecation times, reports).
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# A time as one word, for versions and run IDs taken from the clock.
STAMP_FORMAT = "%Y%m%d%H%M%S"

# ISO-8601 times: a date, optionally a time (seconds and fraction optional) and a zone; without a
# zone the time is UTC. Applied with fullmatch: no surrounding spaces or newline.
_TIME = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"(?:[Tt ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<zone>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def iso(moment: datetime.datetime) -> str:
    """2027-01-31T00:00:00Z: the form of the tags and deprecation times the collection writes."""
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


def stamp(moment: datetime.datetime) -> str:
    """20270131000000: a version or run ID taken from the clock."""
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def parse(value: t.Any) -> datetime.datetime | None:
    """An ISO-8601 time (or a datetime) as an aware datetime in UTC; None when it is not one.

    The whole string must be the time, with ASCII digits; without a zone it is UTC. Parsed here
    rather than by datetime.fromisoformat, whose accepted forms differ between the Python versions
    the modules run on. _validate.parse_time wraps it with the message for a user's option.
    """
    if isinstance(value, datetime.datetime):
        parsed = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    if not isinstance(value, str):
        return None
    match = _TIME.fullmatch(value)
    if match is None:
        return None
    part = match.groupdict()
    zone = UTC
    if part["zone"] and part["zone"] not in ("Z", "z"):
        digits = part["zone"][1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            return None
        offset = datetime.timedelta(hours=hours, minutes=minutes)
        zone = datetime.timezone(-offset if part["zone"][0] == "-" else offset)
    fraction = (part["fraction"] or "")[:6].ljust(6, "0")
    try:
        parsed = datetime.datetime(
            int(part["year"]), int(part["month"]), int(part["day"]),
            int(part["hour"] or 0), int(part["minute"] or 0), int(part["second"] or 0), int(fraction),
            tzinfo=zone,
        )
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def round_to_minute(moment: datetime.datetime) -> datetime.datetime:
    """EC2 rounds a deprecation time to the nearest minute."""
    rounded = moment.replace(second=0, microsecond=0)
    if moment.second >= 30:
        rounded += datetime.timedelta(minutes=1)
    return rounded


def next_minute(moment: datetime.datetime) -> datetime.datetime:
    """The start of the minute after moment's."""
    return moment.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)


def ten_years_after(moment: datetime.datetime) -> datetime.datetime:
    """EC2's limit for a deprecation time (29 February becomes 28 February)."""
    try:
        return moment.replace(year=moment.year + 10)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + 10, day=28)
