"""Send windows in local time, across time zones and daylight saving changes."""

from datetime import UTC
from datetime import datetime
from datetime import time
from zoneinfo import ZoneInfo

import pytest

from feedback.delivery import windows

NINE = time(9, 0)
EIGHT_PM = time(20, 0)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "due", "opening"),
    [
        # Saturday 21:00 CET, the night the clocks go forward: Sunday 09:00 is
        # already summer time, UTC+2, so 07:00 UTC and not 08:00.
        ("Europe/Berlin", "2026-03-28T20:00", "2026-03-29T07:00"),
        # The day before, still winter time: 09:00 CET is 08:00 UTC.
        ("Europe/Berlin", "2026-03-27T20:00", "2026-03-28T08:00"),
        # Saturday 22:00 CEST, the night the clocks go back: 09:00 CET, 08:00 UTC.
        ("Europe/Berlin", "2026-10-24T20:00", "2026-10-25T08:00"),
        # Midnight EST on the day New York springs forward: 09:00 EDT is 13:00 UTC.
        ("America/New_York", "2026-03-08T05:00", "2026-03-08T13:00"),
        # 01:30 EDT on the day it falls back: 09:00 EST is 14:00 UTC.
        ("America/New_York", "2026-11-01T05:30", "2026-11-01T14:00"),
        # Southern hemisphere: Sydney leaves summer time on 5 April 2026.
        ("Australia/Sydney", "2026-04-04T12:00", "2026-04-04T23:00"),
        # UTC+14: 08:59 local is 18:59 UTC the day before; it opens a minute later.
        ("Pacific/Kiritimati", "2026-06-01T18:59", "2026-06-01T19:00"),
        # Inside the window: no wait at all.
        ("Pacific/Kiritimati", "2026-06-01T19:00", "2026-06-01T19:00"),
        ("Asia/Kolkata", "2026-06-01T10:00", "2026-06-01T10:00"),
        # 20:00 in Kolkata (UTC+5:30) is closed: the next day at 09:00, 03:30 UTC.
        ("Asia/Kolkata", "2026-06-01T14:30", "2026-06-02T03:30"),
        ("UTC", "2026-06-01T19:59", "2026-06-01T19:59"),
        ("UTC", "2026-06-01T20:00", "2026-06-02T09:00"),
    ],
)
def test_next_opening_follows_the_local_clock(zone, due, opening):
    got = windows.next_opening(utc(due), ZoneInfo(zone), NINE, EIGHT_PM)
    assert got == utc(opening)
    assert got.tzinfo is not None


def test_a_window_keeps_its_local_hours_on_both_sides_of_a_change():
    zone = ZoneInfo("Europe/London")
    before = windows.next_opening(utc("2026-03-28T21:00"), zone, NINE, EIGHT_PM)
    after = windows.next_opening(utc("2026-03-29T21:00"), zone, NINE, EIGHT_PM)
    assert before == utc("2026-03-29T08:00")
    assert after == utc("2026-03-30T08:00")
    assert before.astimezone(zone).hour == after.astimezone(zone).hour == 9


@pytest.mark.parametrize(
    ("due", "channel", "opening"),
    [
        # 07:00 in Tokyo (UTC+9) is inside a 06:00-23:00 window for email ...
        ("2026-06-01T22:00", "email", "2026-06-01T22:00"),
        # ... but a text waits for 08:00, 23:00 UTC.
        ("2026-06-01T22:00", "sms", "2026-06-01T23:00"),
        # 21:30 in Tokyo: email still goes, a text waits for 08:00 the next day.
        ("2026-06-01T12:30", "email", "2026-06-01T12:30"),
        ("2026-06-01T12:30", "sms", "2026-06-01T23:00"),
        ("2026-06-01T11:59", "sms", "2026-06-01T11:59"),
    ],
)
def test_texts_keep_to_eight_to_nine_whatever_the_window(due, channel, opening):
    zone = ZoneInfo("Asia/Tokyo")
    got = windows.next_opening(utc(due), zone, time(6, 0), time(23, 0), channel)
    assert got == utc(opening)


def test_a_text_window_outside_the_legal_hours_falls_back_to_them():
    zone = ZoneInfo("UTC")
    got = windows.next_opening(utc("2026-06-01T21:30"), zone, time(22), time(23), "sms")
    assert got == utc("2026-06-02T08:00")


def test_zone_falls_back_from_contact_to_survey_to_utc():
    assert windows.zone_for("Asia/Tokyo", "Europe/Berlin") == ZoneInfo("Asia/Tokyo")
    assert windows.zone_for(None, "Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert windows.zone_for("Not/AZone", None) == ZoneInfo("UTC")
    assert windows.zone_for(None, None) == ZoneInfo("UTC")


def test_is_open():
    zone = ZoneInfo("Europe/Berlin")
    assert windows.is_open(utc("2026-07-01T07:00"), zone, NINE, EIGHT_PM)
    assert not windows.is_open(utc("2026-07-01T06:59"), zone, NINE, EIGHT_PM)
    assert not windows.is_open(utc("2026-07-01T18:00"), zone, NINE, EIGHT_PM)
