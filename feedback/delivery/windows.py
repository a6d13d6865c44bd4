"""Send windows: when a message may go out, in the contact's local time."""

from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

DEFAULT_START = time(9, 0)
DEFAULT_END = time(20, 0)
# Texts never go out before 08:00 or after 21:00 local, whatever the survey says.
SMS_EARLIEST = time(8, 0)
SMS_LATEST = time(21, 0)


def parse_time(value: str) -> time:
    """Read "HH:MM" as a time of day; raise ValueError when it is not one."""
    hours, sep, minutes = value.partition(":")
    if not sep or len(hours) != 2 or len(minutes) != 2:
        raise ValueError(f"{value!r} is not a time such as 09:00")
    return time(int(hours), int(minutes))


def zone_for(*names: str | None) -> ZoneInfo:
    """The first name that is a known time zone, else UTC."""
    for name in names:
        if not name:
            continue
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def window(channel: str, start: time, end: time) -> tuple[time, time]:
    """The survey's window, narrowed to the hard limits of texts."""
    if channel != "sms":
        return start, end
    narrowed = (max(start, SMS_EARLIEST), min(end, SMS_LATEST))
    if narrowed[0] >= narrowed[1]:
        # The survey's window lies outside the hours a text may be sent at all.
        return SMS_EARLIEST, SMS_LATEST
    return narrowed


def next_opening(
    when: datetime, zone: ZoneInfo, start: time, end: time, channel: str = "email"
) -> datetime:
    """The first moment at or after `when` (UTC) inside the window, in UTC.

    Each day's opening and closing are placed in the zone, so a window follows the
    local clock across daylight saving changes. Comparisons are done in UTC, since
    Python compares two times of one zone by their wall clocks alone.
    """
    start, end = window(channel, start, end)
    when = when.astimezone(UTC)
    day = when.astimezone(zone).date()
    for offset in range(3):
        date = day + timedelta(days=offset)
        opens = datetime.combine(date, start, zone).astimezone(UTC)
        closes = datetime.combine(date, end, zone).astimezone(UTC)
        if when < opens:
            return opens
        if when < closes:
            return when
    raise AssertionError("a daily window opens within three days")


def is_open(
    when: datetime, zone: ZoneInfo, start: time, end: time, channel: str = "email"
) -> bool:
    """Whether a message may go out at `when`."""
    return next_opening(when, zone, start, end, channel) == when.astimezone(UTC)
