"""Periods in a time zone: local days, ISO weeks and months as UTC instants."""

import functools
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError
from zoneinfo import available_timezones

INTERVALS = ("day", "week", "month")
MAX_BUCKETS = 1000


@dataclass(frozen=True)
class Bucket:
    label: datetime
    start: datetime
    end: datetime


@functools.cache
def zone_names() -> frozenset:
    """IANA zone names, without those that mean the host's own or no zone."""
    return frozenset(available_timezones() - {"localtime", "Factory"})


def zone(name: str) -> ZoneInfo:
    """The IANA zone of that name, or ValueError with a message a person can use."""
    if name not in zone_names():
        raise ValueError(f"{name!r} is not an IANA time zone such as Europe/Berlin.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not an IANA time zone such as Europe/Berlin."
        ) from None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local day, in UTC."""
    # Where midnight falls in a gap, zoneinfo reads it with the offset before the
    # change, which lands on the first instant the clocks show that day.
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def instant(value: date | datetime, tz: ZoneInfo) -> datetime:
    """A date read as local midnight in tz, or an aware time, as UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return local_midnight(value, tz)


def bucket_day(day: date, interval: str) -> date:
    """The first day of the bucket that contains the day."""
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_day(day: date, interval: str) -> date:
    """The first day of the bucket after the one that starts on day."""
    if interval == "day":
        return day + timedelta(days=1)
    if interval == "week":
        return day + timedelta(days=7)
    if day.month == 12:
        return date(day.year + 1, 1, 1)
    return date(day.year, day.month + 1, 1)


def buckets(start: datetime, end: datetime, interval: str, tz: ZoneInfo) -> list:
    """The calendar buckets that cover [start, end), the first and last cut to it."""
    day = bucket_day(start.astimezone(tz).date(), interval)
    result = []
    while True:
        following = next_day(day, interval)
        bucket_start = local_midnight(day, tz)
        bucket_end = local_midnight(following, tz)
        result.append(
            Bucket(
                label=bucket_start.astimezone(tz),
                start=max(start, bucket_start),
                end=min(end, bucket_end),
            )
        )
        if bucket_end >= end:
            return result
        if len(result) >= MAX_BUCKETS:
            raise ValueError(
                f"That is more than {MAX_BUCKETS} {interval} buckets; choose a"
                " shorter range or a longer interval."
            )
        day = following


def on_the_hour(moment: datetime) -> bool:
    """Whether a UTC instant is a whole hour, so hourly counts can serve it."""
    moment = moment.astimezone(UTC)
    return moment.minute == 0 and moment.second == 0 and moment.microsecond == 0
