"""Hourly and daily answer counts, kept in the transaction of every answer change."""

import logging
from datetime import UTC
from datetime import datetime

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import inspect
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from feedback import properties
from feedback.models import SCORE_COLUMNS
from feedback.models import Response
from feedback.models import ScoreCount
from feedback.models import Survey
from feedback.models import db

logger = logging.getLogger(__name__)

WHOLE = ""
ABSENT = ""
# What places an answer in the counts; a change to any of them moves it.
TRACKED = ("survey_id", "answered_at", "properties", "score", "channel")
KEY_COLUMNS = ("survey_id", "segment", "hours", "starts_at", "value", "channel")
HOUR = 1
DAY = 24
SPANS = (HOUR, DAY)


def encode_value(value) -> str:
    """The stored form of a segment value: "" when absent, else "=" and its text."""
    text = properties.text(value)
    return ABSENT if text is None else "=" + text


def decode_value(stored: str) -> str | None:
    return None if stored == ABSENT else stored[1:]


def start_of(moment: datetime, hours: int) -> datetime:
    """The UTC hour or UTC day an instant falls in."""
    start = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if hours == DAY else start


def segment_keys(segments: list, answer_properties: dict) -> list[tuple[str, str]]:
    """The (segment, value) rows one answer counts in: the whole, then each segment."""
    answer_properties = answer_properties or {}
    keys = [(WHOLE, ABSENT)]
    keys.extend((name, encode_value(answer_properties.get(name))) for name in segments)
    return keys


def init_app(app) -> None:
    """Count every response change the ORM flushes, in the flush's transaction."""
    if not event.contains(Session, "after_flush", _count_flushed):
        event.listen(Session, "after_flush", _count_flushed)


def _answer_state(response: Response, old: bool) -> tuple:
    """(survey, answered at, properties, score, channel), before or after the flush."""
    values = []
    for name in TRACKED:
        history = inspect(response).attrs[name].history
        if old and history.deleted:
            values.append(history.deleted[0])
        else:
            values.append(getattr(response, name))
    return tuple(values)


def _count_flushed(session, _flush_context) -> None:
    changes = []
    for item in session.new:
        if isinstance(item, Response):
            changes.append((None, _answer_state(item, old=False)))
    for item in session.dirty:
        if isinstance(item, Response) and session.is_modified(item):
            before = _answer_state(item, old=True)
            after = _answer_state(item, old=False)
            if before != after:
                changes.append((before, after))
    for item in session.deleted:
        if isinstance(item, Response):
            changes.append((_answer_state(item, old=True), None))
    if changes:
        record_changes(session.connection(), changes)


def record_changes(connection, changes: list[tuple]) -> None:
    """Move answers from their old state to their new one in the counts."""
    survey_ids = sorted(
        {state[0] for change in changes for state in change if state is not None}
    )
    # The shared lock waits for a change of segments, which recounts them all.
    segments = dict(
        connection.execute(
            select(Survey.id, Survey.segments)
            .where(Survey.id.in_(survey_ids))
            .with_for_update(read=True)
        ).all()
    )
    deltas: dict[tuple, dict[str, int]] = {}
    for before, after in changes:
        for state, step in ((before, -1), (after, 1)):
            if state is None:
                continue
            survey_id, answered_at, answer_properties, score, channel = state
            names = segments.get(survey_id) or []
            for segment, value in segment_keys(names, answer_properties):
                for hours in SPANS:
                    start = start_of(answered_at, hours)
                    key = (survey_id, segment, hours, start, value, channel)
                    row = deltas.setdefault(key, {})
                    row[f"s{score}"] = row.get(f"s{score}", 0) + step

    # A fixed order, so two answers changing the same rows never deadlock.
    for key, columns in sorted(deltas.items()):
        columns = {name: step for name, step in columns.items() if step}
        if columns:
            _add(connection, dict(zip(KEY_COLUMNS, key, strict=True)), columns)


def _add(connection, key: dict, columns: dict[str, int]) -> None:
    dialect = connection.dialect.name
    make_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = make_insert(ScoreCount).values(**key, **columns)
    statement = statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={
            name: getattr(ScoreCount, name) + statement.excluded[name]
            for name in columns
        },
    )
    connection.execute(statement)


def start_sql(column, hours: int, dialect: str):
    """SQL for the UTC hour or day an instant falls in, stored like any timestamp."""
    if dialect == "postgresql":
        unit = "day" if hours == DAY else "hour"
        utc = func.timezone("UTC", column)
        return func.timezone("UTC", func.date_trunc(unit, utc))
    # SQLAlchemy keeps SQLite timestamps as text in exactly this form.
    if hours == DAY:
        return func.strftime("%Y-%m-%d 00:00:00.000000", column)
    return func.strftime("%Y-%m-%d %H:00:00.000000", column)


def rebuild(survey: Survey) -> None:
    """Recount a survey's hour and day rows from its responses, in the transaction."""
    dialect = db.session.get_bind().dialect.name
    db.session.execute(delete(ScoreCount).where(ScoreCount.survey_id == survey.id))
    for segment in [WHOLE, *survey.segments]:
        for hours in SPANS:
            _recount(survey, segment, hours, dialect)
    logger.info("score counts rebuilt survey=%s", survey.key)


def recount_segments(survey: Survey, segments: list[str]) -> None:
    """Recount the rows of newly declared segments, in the transaction.

    The rows of a segment no longer declared are left as they are: a score read
    that chose them a moment before the change then still finds them whole,
    without any lock. They are never read again, and `feedback recount-scores`
    clears them.
    """
    dialect = db.session.get_bind().dialect.name
    db.session.execute(
        delete(ScoreCount).where(
            ScoreCount.survey_id == survey.id, ScoreCount.segment.in_(segments)
        )
    )
    for segment in segments:
        for hours in SPANS:
            _recount(survey, segment, hours, dialect)
    logger.info("score counts of new segments counted survey=%s", survey.key)


def _recount(survey: Survey, segment: str, hours: int, dialect: str) -> None:
    if segment == WHOLE:
        value = literal(ABSENT, String)
    else:
        text = properties.sql_text(Response.properties, segment, dialect)
        value = func.coalesce(
            literal("=", String).concat(text), literal(ABSENT, String)
        )
    answers = (
        select(
            Response.survey_id.label("survey_id"),
            value.label("value"),
            start_sql(Response.answered_at, hours, dialect).label("starts_at"),
            Response.channel.label("channel"),
            Response.score.label("score"),
        )
        .where(Response.survey_id == survey.id)
        .subquery()
    )
    sums = [
        func.sum(case((answers.c.score == score, 1), else_=0)).cast(Integer)
        for score in range(len(SCORE_COLUMNS))
    ]
    grouped = select(
        answers.c.survey_id,
        literal(segment, String),
        literal(hours, Integer),
        answers.c.starts_at,
        answers.c.value,
        answers.c.channel,
        *sums,
    ).group_by(
        answers.c.survey_id,
        answers.c.starts_at,
        answers.c.value,
        answers.c.channel,
    )
    db.session.execute(
        insert(ScoreCount).from_select([*KEY_COLUMNS, *SCORE_COLUMNS], grouped)
    )
