"""Score queries: count answers per score value in SQL, then apply the arithmetic."""

from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select

from feedback import metrics
from feedback.models import Response
from feedback.models import Survey
from feedback.models import db


def score_counts(survey_ids: list[int], start: datetime | None, end: datetime | None):
    """Return {score value: count} for the surveys' answers in [start, end)."""
    query = (
        select(Response.score, func.count())
        .where(Response.survey_id.in_(survey_ids))
        .group_by(Response.score)
    )
    if start is not None:
        query = query.where(Response.answered_at >= start)
    if end is not None:
        query = query.where(Response.answered_at < end)
    return dict(db.session.execute(query).all())


def survey_score(survey: Survey, start: datetime | None, end: datetime | None):
    """The survey's metric over [start, end), with its counts and distribution."""
    result = metrics.summarise(survey.kind, score_counts([survey.id], start, end))
    result.update(survey=survey.key, kind=survey.kind, from_=start, to=end)
    return result
