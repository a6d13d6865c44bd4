"""Score queries: count answers per bucket, group and score in SQL, then summarise."""

import itertools
import logging
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select

from feedback import metrics
from feedback import periods
from feedback import properties
from feedback import score_counts
from feedback.errors import ApiError
from feedback.models import SCORE_COLUMNS
from feedback.models import Invitation
from feedback.models import Message
from feedback.models import Response
from feedback.models import ScoreCount
from feedback.models import Survey
from feedback.models import UTCDateTime
from feedback.models import db

logger = logging.getLogger(__name__)

SURVEY_GROUPS = ("survey", "touchpoint", "stage")
PROPERTY_PREFIX = "property."
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Past this many leftover hours, one range over the hour rows is the better query.
MAX_LISTED_HOURS = 2000
MAX_LISTED_DAYS = 2000


@dataclass
class Selection:
    """Which answers a request is about, and how to slice them."""

    kind: str
    surveys: list[Survey]
    tz: ZoneInfo
    start: datetime | None = None
    end: datetime | None = None
    channels: list[str] = field(default_factory=list)
    filters: dict[str, list[str]] = field(default_factory=dict)
    interval: str | None = None
    group_by: str | None = None
    limit: int | None = None
    compare: bool = False

    @property
    def group_property(self) -> str | None:
        if self.group_by and self.group_by.startswith(PROPERTY_PREFIX):
            return self.group_by.removeprefix(PROPERTY_PREFIX)
        return None


def choose_surveys(
    keys, kind, touchpoint, stage, allow_mixed: bool = False
) -> tuple[str | None, list[Survey]]:
    """The surveys a request names, and their one kind; 4xx when that is unclear."""
    if keys is not None and not keys:
        # survey= with nothing after it names a survey, the one with an empty key.
        raise ApiError(404, "There is no survey with key ''.", {"survey": ["Empty."]})
    if not (keys or kind or touchpoint or stage):
        raise ApiError(
            422,
            "Say which answers: give survey (one or several keys), or kind with"
            " touchpoint and/or stage.",
            {"survey": ["Missing."]},
        )
    statement = select(Survey).order_by(Survey.key)
    if keys:
        statement = statement.where(Survey.key.in_(keys))
    if kind:
        statement = statement.where(Survey.kind == kind)
    if touchpoint:
        statement = statement.where(Survey.touchpoint == touchpoint)
    if stage:
        statement = statement.where(Survey.stage == stage)
    surveys = list(db.session.scalars(statement))

    if keys:
        found = {survey.key for survey in surveys}
        missing = [key for key in keys if key not in found]
        narrowed = kind or touchpoint or stage
        if missing and not narrowed:
            raise ApiError(
                404,
                f"There is no survey with key {missing[0]!r}.",
                {"survey": [f"Unknown: {', '.join(missing)}."]},
            )
        if missing:
            raise ApiError(
                422,
                f"Survey {missing[0]!r} does not exist or does not match the kind,"
                " touchpoint or stage asked for.",
                {"survey": [f"Not found with those filters: {', '.join(missing)}."]},
            )
    kinds = sorted({survey.kind for survey in surveys})
    if allow_mixed:
        return None, surveys
    if len(kinds) > 1:
        raise ApiError(
            422,
            "These surveys ask different kinds of question"
            f" ({', '.join(kinds)}); their scores cannot be added together."
            " Ask for one kind at a time, for example kind=nps.",
            {"kind": [f"Mixed kinds: {', '.join(kinds)}."]},
        )
    if not surveys and not kind:
        raise ApiError(
            404,
            "No survey matches that touchpoint and stage; add kind to get an empty"
            " score of that kind.",
            {"survey": ["No match."]},
        )
    return (kinds[0] if kinds else kind), surveys


def edges_of(selection: Selection) -> tuple[list[datetime | None], list]:
    """Contiguous range edges: the previous period first, if asked, then the buckets."""
    if selection.interval:
        series = periods.buckets(
            selection.start, selection.end, selection.interval, selection.tz
        )
        edges = [series[0].start, *(bucket.end for bucket in series)]
    else:
        series = []
        edges = [selection.start, selection.end]
    if selection.compare:
        edges.insert(0, selection.start - (selection.end - selection.start))
    return edges, series


def uses_hourly_counts(selection: Selection, edges: list) -> bool:
    """Whether the hourly counts answer this exactly; otherwise count raw answers."""
    if not all(edge is None or periods.on_the_hour(edge) for edge in edges):
        return False
    names = set(selection.filters)
    if selection.group_property:
        names.add(selection.group_property)
    if len(names) > 1:
        return False
    return all(
        name in (survey.segments or [])
        for name in names
        for survey in selection.surveys
    )


def bucket_sql(column, edges: list):
    """The index of the range a time falls in, by halving: a few comparisons a row."""

    def node(low: int, high: int):
        if high - low == 1:
            return literal(low, Integer)
        middle = (low + high) // 2
        edge = bindparam(None, edges[middle], type_=UTCDateTime())
        return case((column < edge, node(low, middle)), else_=node(middle, high))

    return node(0, len(edges) - 1)


def _time_range(column, edges: list):
    conditions = []
    if edges[0] is not None:
        conditions.append(column >= bindparam(None, edges[0], type_=UTCDateTime()))
    if edges[-1] is not None:
        conditions.append(column < bindparam(None, edges[-1], type_=UTCDateTime()))
    return conditions


def split_by_day(edges: list[datetime]) -> tuple[list, list]:
    """UTC days that lie wholly inside one range, and the hours left over."""
    days, hours = [], []
    for low, high in itertools.pairwise(edges):
        first = _day(low) if _day(low) == low else _day(low) + DAY
        last = _day(high)
        if first >= last:
            hours.extend(_steps(low, high, HOUR))
            continue
        hours.extend(_steps(low, first, HOUR))
        days.extend(_steps(first, last, DAY))
        hours.extend(_steps(last, high, HOUR))
    return days, hours


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _steps(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    moments = []
    while start < end:
        moments.append(start)
        start += step
    return moments


def _span_conditions(edges: list) -> list:
    """Which day and hour rows cover the ranges: days where they fit, else hours."""
    if edges[0] is None and edges[-1] is None:
        return [ScoreCount.hours == score_counts.DAY]
    hourly = [
        ScoreCount.hours == score_counts.HOUR,
        *_time_range(ScoreCount.starts_at, edges),
    ]
    if edges[0] is None or edges[-1] is None:
        return hourly
    days, hours = split_by_day(edges)
    if not days or len(hours) > MAX_LISTED_HOURS or len(days) > MAX_LISTED_DAYS:
        # Too long a list for one statement's parameters: a range test instead.
        return hourly
    by_day = and_(ScoreCount.hours == score_counts.DAY, ScoreCount.starts_at.in_(days))
    if not hours:
        return [by_day]
    by_hour = and_(
        ScoreCount.hours == score_counts.HOUR, ScoreCount.starts_at.in_(hours)
    )
    return [or_(by_day, by_hour)]


def _hourly_rows(selection: Selection, edges: list) -> list:
    """(range, group, counts) from the hour and day counts."""
    segment = selection.group_property or next(iter(selection.filters), "")
    conditions = [
        ScoreCount.survey_id.in_([survey.id for survey in selection.surveys]),
        ScoreCount.segment == segment,
        *_span_conditions(edges),
    ]
    if selection.channels:
        conditions.append(ScoreCount.channel.in_(selection.channels))
    for values in selection.filters.values():
        conditions.append(
            ScoreCount.value.in_([score_counts.encode_value(v) for v in values])
        )
    group = _group_column(selection, ScoreCount.survey_id, ScoreCount.channel)
    if selection.group_property:
        group = ScoreCount.value
    inner = select(
        bucket_sql(ScoreCount.starts_at, edges).label("bucket"),
        group.label("grp"),
        *(getattr(ScoreCount, name).label(name) for name in SCORE_COLUMNS),
    ).where(*conditions)
    inner = inner.subquery()
    statement = select(
        inner.c.bucket,
        inner.c.grp,
        *(func.sum(inner.c[name]) for name in SCORE_COLUMNS),
    ).group_by(inner.c.bucket, inner.c.grp)

    rows = []
    for bucket, group_value, *sums in db.session.execute(statement):
        if selection.group_property:
            group_value = score_counts.decode_value(group_value)
        counts = {score: int(count or 0) for score, count in enumerate(sums)}
        rows.append((bucket, group_value, counts))
    return rows


def _raw_rows(selection: Selection, edges: list) -> list:
    """(range, group, counts) counted from the responses themselves."""
    dialect = db.session.get_bind().dialect.name
    conditions = [
        Response.survey_id.in_([survey.id for survey in selection.surveys]),
        *_time_range(Response.answered_at, edges),
    ]
    if selection.channels:
        conditions.append(Response.channel.in_(selection.channels))
    for name, values in selection.filters.items():
        conditions.append(
            properties.sql_text(Response.properties, name, dialect).in_(values)
        )
    group = _group_column(selection, Response.survey_id, Response.channel)
    if selection.group_property:
        group = properties.sql_text(
            Response.properties, selection.group_property, dialect
        )
    inner = select(
        bucket_sql(Response.answered_at, edges).label("bucket"),
        group.label("grp"),
        Response.score.label("score"),
    ).where(*conditions)
    inner = inner.subquery()
    statement = select(
        inner.c.bucket, inner.c.grp, inner.c.score, func.count()
    ).group_by(inner.c.bucket, inner.c.grp, inner.c.score)

    merged: dict[tuple, dict[int, int]] = {}
    for bucket, group_value, score, count in db.session.execute(statement):
        merged.setdefault((bucket, group_value), {})[score] = count
    return [(bucket, group, counts) for (bucket, group), counts in merged.items()]


def _group_column(selection: Selection, survey_column, channel_column):
    if selection.group_by in SURVEY_GROUPS:
        return survey_column
    if selection.group_by == "channel":
        return channel_column
    return literal(None, String)


def _add(target: dict[int, int], counts: dict[int, int]) -> None:
    for score, count in counts.items():
        target[score] = target.get(score, 0) + count


def aggregate(selection: Selection, low_sample: int) -> dict:
    """The score over the range, with its series, groups and comparison if asked."""
    edges, series = edges_of(selection)
    hourly = uses_hourly_counts(selection, edges)
    rows = (_hourly_rows if hourly else _raw_rows)(selection, edges)
    logger.debug("scores from %s counts", "hourly" if hourly else "raw")

    offset = 1 if selection.compare else 0
    labels = {
        survey.id: _survey_label(survey, selection.group_by)
        for survey in selection.surveys
    }
    per_group: dict = {}
    for bucket, group_value, counts in rows:
        if selection.group_by in SURVEY_GROUPS:
            group_value = labels[group_value]
        ranges = per_group.setdefault(group_value, {})
        _add(ranges.setdefault(bucket, {}), counts)
    # Hourly rows can hold zeros after a changed answer; raw rows never do.
    per_group = {
        value: ranges
        for value, ranges in per_group.items()
        if any(sum(counts.values()) for counts in ranges.values())
    }

    def figures(ranges: dict) -> dict:
        current: dict[int, int] = {}
        for index in range(offset, len(edges) - 1):
            _add(current, ranges.get(index, {}))
        result = metrics.summarise(selection.kind, current, low_sample)
        if series:
            result["series"] = [
                {
                    "start": bucket.label.isoformat(),
                    "from": bucket.start.astimezone(selection.tz).isoformat(),
                    "to": bucket.end.astimezone(selection.tz).isoformat(),
                    **metrics.summarise(
                        selection.kind, ranges.get(index + offset, {}), low_sample
                    ),
                }
                for index, bucket in enumerate(series)
            ]
        if selection.compare:
            previous = ranges.get(0, {})
            result["previous"] = {
                "from": edges[0].astimezone(selection.tz).isoformat(),
                "to": edges[1].astimezone(selection.tz).isoformat(),
                **metrics.summarise(selection.kind, previous, low_sample),
            }
            result.update(metrics.compare(selection.kind, current, previous))
        return result

    everything: dict = {}
    for ranges in per_group.values():
        for index, counts in ranges.items():
            _add(everything.setdefault(index, {}), counts)
    result = figures(everything)
    if selection.group_by:
        groups = [
            {"value": value, **figures(ranges)} for value, ranges in per_group.items()
        ]
        if selection.group_by in SURVEY_GROUPS:
            seen = {group["value"] for group in groups}
            groups.extend(
                {"value": label, **figures({})}
                for label in sorted(set(labels.values()) - seen)
            )
        groups.sort(
            key=lambda group: (-group["n"], group["value"] is None, str(group["value"]))
        )
        if selection.limit:
            groups = groups[: selection.limit]
        result["groups"] = groups
    return result


def _survey_label(survey: Survey, group_by: str | None) -> str:
    if group_by == "touchpoint":
        return survey.touchpoint
    if group_by == "stage":
        return survey.stage
    return survey.key


def response_rate(selection: Selection) -> dict:
    """Invitations whose first message went out in the range, and how many answered."""
    dialect = db.session.get_bind().dialect.name
    first_message = (
        select(func.min(Message.sent_at))
        .where(Message.invitation_id == Invitation.id)
        .scalar_subquery()
    )
    # A link the calling system hands out itself counts from its send time.
    first_sent = func.coalesce(
        first_message, case((Invitation.channel == "link", Invitation.send_at))
    )
    conditions = [
        Invitation.survey_id.in_([survey.id for survey in selection.surveys]),
        *_time_range(first_sent, [selection.start, selection.end]),
    ]
    if selection.start is None and selection.end is None:
        conditions.append(first_sent.is_not(None))
    for name, values in selection.filters.items():
        conditions.append(
            properties.sql_text(Invitation.properties, name, dialect).in_(values)
        )
    statement = (
        select(func.count(), func.count(Response.id))
        .select_from(Invitation)
        .outerjoin(Response, Response.invitation_id == Invitation.id)
        .where(and_(*conditions))
    )
    sent, answered = db.session.execute(statement).one()
    rate = None
    if sent:
        rate = metrics.round_half_away(Fraction(100 * answered, sent))
    return {"invitations_sent": sent, "responses": answered, "response_rate": rate}
