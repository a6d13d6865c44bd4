"""Responses: the answers in pages, oldest change first, for sync and export."""

import base64
import binascii
import json
from datetime import UTC
from datetime import datetime

from flask.views import MethodView
from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select

from feedback.api.blueprint import Blueprint
from feedback.api.schemas import ResponsePageSchema
from feedback.api.schemas import ResponseQuerySchema
from feedback.api.surveys import get_survey
from feedback.errors import ApiError
from feedback.models import MAX_ID
from feedback.models import Response
from feedback.models import db

blp = Blueprint("responses", __name__, description="Survey responses")


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


@blp.route("/responses")
class Responses(MethodView):
    @blp.arguments(ResponseQuerySchema, location="query")
    @blp.response(200, ResponsePageSchema)
    def get(self, query):
        """List responses, oldest change first, with a cursor for the next page."""
        statement = select(Response).order_by(Response.updated_at, Response.id)
        if "survey" in query:
            survey = get_survey(query["survey"])
            statement = statement.where(Response.survey_id == survey.id)
        if query.get("since"):
            statement = statement.where(Response.updated_at >= query["since"])
        if query.get("cursor"):
            stamp, last_id = decode_cursor(query["cursor"])
            statement = statement.where(
                or_(
                    Response.updated_at > stamp,
                    and_(Response.updated_at == stamp, Response.id > last_id),
                )
            )
        limit = query["limit"]
        rows = db.session.scalars(statement.limit(limit + 1)).all()
        items = rows[:limit]
        next_cursor = encode_cursor(items[-1]) if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}
