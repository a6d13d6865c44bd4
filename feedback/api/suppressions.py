"""Suppressions: the addresses nothing is sent to, for other systems to manage."""

from flask.views import MethodView
from sqlalchemy import select

from feedback import suppressions
from feedback.api.blueprint import Blueprint
from feedback.api.schemas import SuppressionKeySchema
from feedback.api.schemas import SuppressionPageSchema
from feedback.api.schemas import SuppressionQuerySchema
from feedback.api.schemas import SuppressionSchema
from feedback.errors import ApiError
from feedback.models import Suppression
from feedback.models import db

blp = Blueprint("suppressions", __name__, description="Opt-outs and bad addresses")


@blp.route("/suppressions")
class Suppressions(MethodView):
    @blp.arguments(SuppressionQuerySchema, location="query")
    @blp.response(200, SuppressionPageSchema)
    def get(self, query):
        """List suppressed addresses, newest first."""
        statement = select(Suppression).order_by(Suppression.id.desc())
        if query.get("channel"):
            statement = statement.where(Suppression.channel == query["channel"])
            if query.get("address"):
                address = suppressions.normalise(query["channel"], query["address"])
                statement = statement.where(Suppression.address == address)
        elif query.get("address"):
            raise ApiError(
                422,
                "Give the channel with the address: email or sms.",
                {"channel": ["Required with address."]},
            )
        if query.get("cursor"):
            statement = statement.where(Suppression.id < query["cursor"])
        limit = query["limit"]
        rows = db.session.scalars(statement.limit(limit + 1)).all()
        items = rows[:limit]
        next_cursor = items[-1].id if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}

    @blp.arguments(SuppressionSchema)
    @blp.response(201, SuppressionSchema)
    @blp.alt_response(200, schema=SuppressionSchema, description="Already listed.")
    def post(self, data):
        """Stop all sends to an address on a channel."""
        entry, created = suppressions.add(
            data["channel"], data["address"], data["reason"], "api"
        )
        db.session.commit()
        return entry, 201 if created else 200

    @blp.arguments(SuppressionKeySchema, location="query")
    @blp.response(204)
    def delete(self, query):
        """Lift the suppression of an address, so it can be sent to again."""
        if not suppressions.remove(query["channel"], query["address"]):
            raise ApiError(
                404, "That address is not suppressed on that channel.", query
            )
        db.session.commit()
