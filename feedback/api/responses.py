"""Responses: the answers in pages, oldest change first, for sync and export."""

import base64
import binascii
import csv
import io
import json
from datetime import UTC
from datetime import datetime

from flask import Response as HttpResponse
from flask import request
from flask import stream_with_context
from flask.views import MethodView
from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select

from feedback import properties
from feedback import scores
from feedback.api.blueprint import Blueprint
from feedback.api.schemas import ResponsePageSchema
from feedback.api.schemas import ResponseQuerySchema
from feedback.api.scores import property_filters
from feedback.api.scores import selection_range
from feedback.errors import ApiError
from feedback.models import MAX_ID
from feedback.models import Response
from feedback.models import db

blp = Blueprint("responses", __name__, description="Survey responses")

CSV_COLUMNS = (
    "id",
    "survey",
    "invitation_id",
    "external_id",
    "score",
    "comment",
    "channel",
    "properties",
    "answered_at",
    "updated_at",
)
CSV_PAGE = 500
# Spreadsheets run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def encode_cursor(response: Response) -> str:
    raw = json.dumps([response.updated_at.isoformat(), response.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, last_id = json.loads(base64.urlsafe_b64decode(padded))
        stamp = datetime.fromisoformat(stamp)
        # Only cursors we made pass: an aware time and an id the database can hold.
        if stamp.tzinfo is None or type(last_id) is not int:
            raise ValueError("not a cursor of ours")
        stamp = stamp.astimezone(UTC)
        if not 0 < last_id <= MAX_ID:
            raise ValueError("not a cursor of ours")
        return stamp, last_id
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error):
        raise ApiError(
            400,
            "The cursor is not one this API gave out; start again without it.",
            {"cursor": ["Not a valid cursor."]},
        ) from None


def filtered(query: dict):
    """The responses the filters choose, oldest change first."""
    statement = select(Response).order_by(Response.updated_at, Response.id)
    if any(name in query for name in ("survey", "kind", "touchpoint", "stage")):
        _, surveys = scores.choose_surveys(
            query.get("survey"),
            query.get("kind"),
            query.get("touchpoint"),
            query.get("stage"),
            allow_mixed=True,
        )
        statement = statement.where(
            Response.survey_id.in_([survey.id for survey in surveys])
        )

    start, end = selection_range(query)[1:]
    if start is not None:
        statement = statement.where(Response.answered_at >= start)
    if end is not None:
        statement = statement.where(Response.answered_at < end)
    if query.get("channel"):
        statement = statement.where(Response.channel.in_(query["channel"]))
    dialect = db.session.get_bind().dialect.name
    for name, values in property_filters(request.args).items():
        statement = statement.where(
            properties.sql_text(Response.properties, name, dialect).in_(values)
        )
    since = query.get("updated_since") or query.get("since")
    if since is not None:
        statement = statement.where(Response.updated_at >= since)
    return statement


def after(statement, stamp: datetime, last_id: int):
    return statement.where(
        or_(
            Response.updated_at > stamp,
            and_(Response.updated_at == stamp, Response.id > last_id),
        )
    )


@blp.route("/responses")
class Responses(MethodView):
    @blp.arguments(ResponseQuerySchema, location="query")
    @blp.response(200, ResponsePageSchema)
    def get(self, query):
        """List responses, oldest change first, with a cursor for the next page."""
        statement = filtered(query)
        if query.get("cursor"):
            statement = after(statement, *decode_cursor(query["cursor"]))
        limit = query["limit"]
        rows = db.session.scalars(statement.limit(limit + 1)).all()
        items = rows[:limit]
        next_cursor = encode_cursor(items[-1]) if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}


def neutralise(cell) -> str:
    """Text for a CSV cell that a spreadsheet shows, never runs."""
    text = "" if cell is None else str(cell)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_row(response: Response) -> list[str]:
    values = (
        response.id,
        response.survey.key,
        response.invitation_id,
        response.contact.external_id,
        response.score,
        response.comment,
        response.channel,
        json.dumps(response.properties or {}, ensure_ascii=False, sort_keys=True),
        response.answered_at.isoformat(),
        response.updated_at.isoformat(),
    )
    return [neutralise(value) for value in values]


@blp.route("/responses.csv")
class ResponsesCsv(MethodView):
    @blp.arguments(ResponseQuerySchema, location="query")
    @blp.response(200, content_type="text/csv")
    def get(self, query):
        """All the chosen responses as CSV, streamed, oldest change first."""
        statement = filtered(query)
        if query.get("cursor"):
            statement = after(statement, *decode_cursor(query["cursor"]))

        def lines():
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(CSV_COLUMNS)
            yield buffer.getvalue()
            page = statement
            while True:
                rows = db.session.scalars(page.limit(CSV_PAGE)).all()
                if not rows:
                    return
                buffer.seek(0)
                buffer.truncate()
                for response in rows:
                    writer.writerow(csv_row(response))
                yield buffer.getvalue()
                last = rows[-1]
                page = after(statement, last.updated_at, last.id)
                db.session.expunge_all()

        return HttpResponse(
            stream_with_context(lines()),
            headers={
                "Content-Disposition": 'attachment; filename="responses.csv"',
                "Cache-Control": "no-store",
            },
            content_type="text/csv; charset=utf-8",
        )
