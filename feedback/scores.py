"""Score queries: count answers per bucket, group and score in SQL, then summarise."""

import functools
import itertools
import logging
import operator
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy import type_coerce
from sqlalchemy.dialects.postgresql import ARRAY

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
# Groups times their periods: about 17 MB of JSON at the most.
MAX_RESULTS = 50_000
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


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
        edges.insert(0, previous_start(selection.start, selection.end, selection.tz))
    return edges, series


def previous_start(start: datetime, end: datetime, tz: ZoneInfo) -> datetime:
    """Where the period of equal length right before [start, end) begins.

    A range of whole local days is compared with as many whole local days, so
    March against February ends at midnight even across a clock change; any
    other range with the same length in time.
    """
    first, last = start.astimezone(tz), end.astimezone(tz)
    if periods.local_midnight(first.date(), tz) == start and (
        periods.local_midnight(last.date(), tz) == end
    ):
        days = last.date() - first.date()
        return periods.local_midnight(first.date() - days, tz)
    return start - (end - start)


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
    """Spans of whole UTC days inside one range each, and spans of the hours left.

    Each span is (start, end), with touching spans joined, so a weekly series
    over a year is about a hundred spans rather than a thousand listed hours.
    """
    days, hours = [], []
    for low, high in itertools.pairwise(edges):
        first = _day(low) if _day(low) == low else _day(low) + DAY
        last = _day(high)
        if first >= last:
            _extend(hours, low, high)
            continue
        _extend(hours, low, first)
        _extend(days, first, last)
        _extend(hours, last, high)
    return days, hours


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _extend(spans: list, start: datetime, end: datetime) -> None:
    if start >= end:
        return
    if spans and spans[-1][1] == start:
        spans[-1] = (spans[-1][0], end)
    else:
        spans.append((start, end))


def _within(column, spans: list):
    """Whether the column falls in one of the spans, the ORs nested by halves.

    SQLite refuses an expression nested 1000 deep, and a flat chain of ORs nests
    one level per span: a weekly series over 1000 weeks in Berlin has that many.
    """
    if len(spans) == 1:
        start, end = spans[0]
        return and_(
            column >= bindparam(None, start, type_=UTCDateTime()),
            column < bindparam(None, end, type_=UTCDateTime()),
        )
    middle = len(spans) // 2
    halves = (_within(column, spans[:middle]), _within(column, spans[middle:]))
    # or_ would flatten nested ORs back into one chain; a coerced half keeps its
    # parentheses, and SQLite still splits the whole into index ranges.
    return or_(*(type_coerce(half, Boolean).self_group() for half in halves))


def _span_conditions(edges: list) -> list:
    """Which day and hour rows cover the ranges: days where they fit, else hours."""
    if edges[0] is None and edges[-1] is None:
        return [ScoreCount.hours == score_counts.DAY]
    if edges[0] is None or edges[-1] is None:
        return [
            ScoreCount.hours == score_counts.HOUR,
            *_time_range(ScoreCount.starts_at, edges),
        ]
    days, hours = split_by_day(edges)
    parts = []
    for size, spans in ((score_counts.DAY, days), (score_counts.HOUR, hours)):
        if spans:
            parts.append(
                and_(ScoreCount.hours == size, _within(ScoreCount.starts_at, spans))
            )
    return [or_(*parts)]


def _sized_spans(edges: list) -> list[tuple[datetime, datetime, int]]:
    days, hours = split_by_day(edges)
    return [(*span, score_counts.DAY) for span in days] + [
        (*span, score_counts.HOUR) for span in hours
    ]


def _hourly_rows(selection: Selection, edges: list) -> list:
    """(range, group, counts) from the hour and day counts."""
    params = {
        "survey_ids": [survey.id for survey in selection.surveys],
        "segment": selection.group_property or next(iter(selection.filters), ""),
    }
    if selection.channels:
        params["channels"] = selection.channels
    for values in selection.filters.values():
        params["filter_values"] = [score_counts.encode_value(v) for v in values]
    shape = (
        "value" if selection.group_property else _grouping(selection),
        bool(selection.channels),
        bool(selection.filters),
    )
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql" and edges[0] is not None and edges[-1] is not None:
        spans = _sized_spans(edges)
        params.update(
            span_starts=[low for low, _, _ in spans],
            span_ends=[high for _, high, _ in spans],
            span_hours=[size for _, _, size in spans],
            edges=edges,
        )
        statement = _spans_statement(*shape)
    else:
        columns, conditions = _count_columns(*shape)
        inner = (
            select(bucket_sql(ScoreCount.starts_at, edges).label("bucket"), *columns)
            .where(*conditions, *_span_conditions(edges))
            .subquery()
        )
        statement = _summed(inner, inner)

    decode = score_counts.decode_value if selection.group_property else None
    rows = []
    for bucket, group_value, *sums in db.session.execute(statement, params):
        if decode:
            group_value = decode(group_value)
        rows.append((bucket, group_value, [int(count or 0) for count in sums]))
    return rows


def _grouping(selection: Selection) -> str | None:
    if selection.group_by in SURVEY_GROUPS:
        return "survey"
    if selection.group_by == "channel":
        return "channel"
    return None


def _count_columns(grouping: str | None, channels: bool, values: bool):
    """The group and score columns of the count rows, and the filters on them."""
    conditions = [
        ScoreCount.survey_id.in_(bindparam("survey_ids", expanding=True)),
        ScoreCount.segment == bindparam("segment"),
    ]
    if channels:
        conditions.append(ScoreCount.channel.in_(bindparam("channels", expanding=True)))
    if values:
        conditions.append(
            ScoreCount.value.in_(bindparam("filter_values", expanding=True))
        )
    group = {
        "survey": ScoreCount.survey_id,
        "channel": ScoreCount.channel,
        "value": ScoreCount.value,
    }.get(grouping, literal(None, String))
    columns = (
        group.label("grp"),
        *(getattr(ScoreCount, name).label(name) for name in SCORE_COLUMNS),
    )
    return columns, conditions


def _summed(source, inner):
    return (
        select(
            inner.c.bucket,
            inner.c.grp,
            *(func.sum(inner.c[name]) for name in SCORE_COLUMNS),
        )
        .select_from(source)
        .group_by(inner.c.bucket, inner.c.grp)
    )


@functools.cache
def _spans_statement(grouping: str | None, channels: bool, values: bool):
    """On PostgreSQL: the spans as arrays, each read by its own index range scan.

    Arrays keep the statement the same whatever the number of buckets, so it is
    built once, plans in well under a millisecond, and width_bucket finds each
    row's range in one call.
    """
    columns, conditions = _count_columns(grouping, channels, values)
    stamps = ARRAY(UTCDateTime())
    span = (
        func.unnest(
            bindparam("span_starts", type_=stamps),
            bindparam("span_ends", type_=stamps),
            bindparam("span_hours", type_=ARRAY(Integer)),
        )
        .table_valued("low", "high", "size")
        .render_derived(name="span")
    )
    bucket = func.width_bucket(
        ScoreCount.starts_at, bindparam("edges", type_=stamps), type_=Integer
    )
    inner = (
        select((bucket - 1).label("bucket"), *columns)
        .where(
            *conditions,
            ScoreCount.hours == span.c.size,
            ScoreCount.starts_at >= span.c.low,
            ScoreCount.starts_at < span.c.high,
        )
        # OFFSET 0 keeps the planner from flattening this into one hash join
        # that reads every row of the survey and filters by span afterwards.
        .offset(0)
        .lateral("counted")
    )
    return _summed(span.join(inner, true()), inner)


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

    merged: dict[tuple, list[int]] = {}
    for bucket, group_value, score, count in db.session.execute(statement):
        merged.setdefault((bucket, group_value), _tally())[score] = count
    return [(bucket, group, counts) for (bucket, group), counts in merged.items()]


def _group_column(selection: Selection, survey_column, channel_column):
    columns = {"survey": survey_column, "channel": channel_column}
    return columns.get(_grouping(selection), literal(None, String))


def _tally() -> list[int]:
    """Answers per score value, 0 to 10, whatever the kind's scale."""
    return [0] * metrics.TALLY_SIZE


def _add(target: list[int], counts: list[int]) -> None:
    target[:] = map(operator.add, target, counts)


def _counts(tally: list[int]) -> dict[int, int]:
    return dict(enumerate(tally))


def aggregate(selection: Selection, low_sample: int) -> dict:
    """The score over the range, with its series, groups and comparison if asked."""
    edges, series = edges_of(selection)
    hourly = uses_hourly_counts(selection, edges)
    rows = (_hourly_rows if hourly else _raw_rows)(selection, edges)
    logger.debug("scores from %s counts", "hourly" if hourly else "raw")

    offset = 1 if selection.compare else 0
    ranges_count = len(edges) - 1
    labels = {
        survey.id: _survey_label(survey, selection.group_by)
        for survey in selection.surveys
    }
    by_survey = selection.group_by in SURVEY_GROUPS
    per_group: dict = {}
    for bucket, group_value, counts in rows:
        if by_survey:
            group_value = labels[group_value]
        ranges = per_group.get(group_value)
        if ranges is None:
            ranges = per_group[group_value] = [_tally() for _ in range(ranges_count)]
        _add(ranges[bucket], counts)
    # Hourly rows can hold zeros after a changed answer; raw rows never do.
    per_group = {
        value: ranges
        for value, ranges in per_group.items()
        if any(any(counts) for counts in ranges)
    }
    # The same for every group: worked out once.
    bucket_times = [
        {
            "start": bucket.label.isoformat(),
            "from": bucket.start.astimezone(selection.tz).isoformat(),
            "to": bucket.end.astimezone(selection.tz).isoformat(),
        }
        for bucket in series
    ]

    def figures(ranges: list[list[int]]) -> dict:
        current = _tally()
        for counts in ranges[offset:]:
            _add(current, counts)
        result = metrics.summarise_tally(selection.kind, current, low_sample)
        if series:
            result["series"] = [
                {
                    **times,
                    **metrics.summarise_tally(
                        selection.kind, ranges[index + offset], low_sample
                    ),
                }
                for index, times in enumerate(bucket_times)
            ]
        if selection.compare:
            previous = ranges[0]
            result["previous"] = {
                "from": edges[0].astimezone(selection.tz).isoformat(),
                "to": edges[1].astimezone(selection.tz).isoformat(),
                **metrics.summarise_tally(selection.kind, previous, low_sample),
            }
            result.update(
                metrics.compare(selection.kind, _counts(current), _counts(previous))
            )
        return result

    everything = [_tally() for _ in range(ranges_count)]
    for ranges in per_group.values():
        for total, counts in zip(everything, ranges, strict=True):
            _add(total, counts)
    result = figures(everything)
    if selection.group_by:
        candidates = dict(per_group)
        if selection.group_by in SURVEY_GROUPS:
            nothing = [_tally() for _ in range(ranges_count)]
            for label in sorted(set(labels.values()) - set(per_group)):
                candidates[label] = nothing
        scale = metrics.SCALES[selection.kind]

        def order(item) -> tuple:
            value, ranges = item
            answered = sum(
                sum(counts[scale.low : scale.high + 1]) for counts in ranges[offset:]
            )
            return -answered, value is None, str(value)

        # Ordered and cut before they are summarised: limit saves the work too.
        chosen = sorted(candidates.items(), key=order)[: selection.limit or None]
        _check_size(len(chosen), len(series))
        result["groups"] = [
            {"value": value, **figures(ranges)} for value, ranges in chosen
        ]
    return result


def _check_size(groups: int, buckets: int) -> None:
    results = groups * (buckets + 1)
    if results > MAX_RESULTS:
        message = (
            f"That is {results:,} results ({groups:,} groups, each over"
            f" {buckets + 1:,} periods); the most one answer holds is"
            f" {MAX_RESULTS:,}. Set limit, choose a longer interval or a shorter range."
        )
        raise ApiError(422, message, {"limit": [message]})


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
