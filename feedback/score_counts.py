"""Hourly answer counts, kept in the transaction of every stored or changed answer."""

import logging
from datetime import UTC
from datetime import datetime

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from feedback import properties
from feedback.models import SCORE_COLUMNS
from feedback.models import Response
from feedback.models import ScoreCount
from feedback.models import Survey
from feedback.models import db

logger = logging.getLogger(__name__)

WHOLE = ""
ABSENT = ""
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


def record_change(
    response: Response, segments: list, before: tuple | None, after: tuple
) -> None:
    """Move one answer from its old (score, channel) to its new one, in SQL."""
    deltas: dict[tuple, dict[str, int]] = {}
    changes = [(after, 1)] if before is None else [(before, -1), (after, 1)]
    for (score, channel), step in changes:
        for segment, value in segment_keys(segments, response.properties):
            for hours in SPANS:
                column = f"s{score}"
                row = deltas.setdefault((segment, hours, value, channel), {})
                row[column] = row.get(column, 0) + step

    # A fixed order, so two answers changing the same rows never deadlock.
    for (segment, hours, value, channel), columns in sorted(deltas.items()):
        columns = {name: step for name, step in columns.items() if step}
        if columns:
            key = {
                "survey_id": response.survey_id,
                "segment": segment,
                "hours": hours,
                "starts_at": start_of(response.answered_at, hours),
                "value": value,
                "channel": channel,
            }
            _add(key, columns)


def _add(key: dict, columns: dict[str, int]) -> None:
    dialect = db.session.get_bind().dialect.name
    make_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = make_insert(ScoreCount).values(**key, **columns)
    statement = statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={
            name: getattr(ScoreCount, name) + statement.excluded[name]
            for name in columns
        },
    )
    db.session.execute(statement)


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
    """Recount a survey's hourly rows from its responses, in the open transaction."""
    dialect = db.session.get_bind().dialect.name
    db.session.execute(delete(ScoreCount).where(ScoreCount.survey_id == survey.id))
    for segment in [WHOLE, *survey.segments]:
        for hours in SPANS:
            _recount(survey, segment, hours, dialect)
    logger.info("score counts rebuilt survey=%s", survey.key)


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
