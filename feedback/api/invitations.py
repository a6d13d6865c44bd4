"""Invitations: trigger a survey for a contact, follow its messages, cancel it."""

import logging

from flask import request
from flask.views import MethodView
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from feedback import invitations
from feedback import reminders
from feedback.api.blueprint import Blueprint
from feedback.api.schemas import InvitationOutSchema
from feedback.api.schemas import InvitationPageSchema
from feedback.api.schemas import InvitationQuerySchema
from feedback.api.schemas import TriggerSchema
from feedback.api.surveys import get_survey
from feedback.errors import ApiError
from feedback.models import MAX_ID
from feedback.models import Contact
from feedback.models import Invitation
from feedback.models import db
from feedback.models import utcnow

logger = logging.getLogger(__name__)

# Stored statuses that read as expired once the link's lifetime has passed.
LIVE_STATUSES = ("scheduled", "sent", "opened")

blp = Blueprint("invitations", __name__, description="Personal survey invitations")


IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "schema": {"type": "string", "maxLength": 200},
    "description": "Makes a retry safe: the same key and body answer the same "
    "invitation and send nothing again; the same key with another body is a 409.",
}


def dump(invitation: Invitation) -> Invitation:
    invitation.url = invitations.survey_url(invitation)
    return invitation


def get_invitation(invitation_id: int) -> Invitation:
    invitation = None
    if invitation_id <= MAX_ID:
        invitation = db.session.get(Invitation, invitation_id)
    if invitation is None:
        raise ApiError(404, f"There is no invitation {invitation_id}.")
    return invitation


def _filtered(statement, query: dict, now):
    if query.get("survey"):
        statement = statement.where(
            Invitation.survey_id == get_survey(query["survey"]).id
        )
    if query.get("contact"):
        value = query["contact"]
        statement = statement.join(Contact, Invitation.contact_id == Contact.id).where(
            or_(
                Contact.external_id == value,
                Contact.email == value,
                Contact.phone == value,
            )
        )
    status = query.get("status")
    if status == "expired":
        statement = statement.where(
            Invitation.status.in_(LIVE_STATUSES), Invitation.expires_at <= now
        )
    elif status in LIVE_STATUSES:
        statement = statement.where(
            Invitation.status == status, Invitation.expires_at > now
        )
    elif status:
        statement = statement.where(Invitation.status == status)
    return statement


@blp.route("/invitations")
class Invitations(MethodView):
    @blp.arguments(InvitationQuerySchema, location="query")
    @blp.response(200, InvitationPageSchema)
    def get(self, query):
        """List invitations, newest first, by status, survey and contact."""
        statement = _filtered(select(Invitation), query, utcnow())
        if query.get("cursor"):
            statement = statement.where(Invitation.id < query["cursor"])
        limit = query["limit"]
        rows = db.session.scalars(
            statement.options(selectinload(Invitation.messages))
            .order_by(Invitation.id.desc())
            .limit(limit + 1)
        ).all()
        items = [dump(invitation) for invitation in rows[:limit]]
        next_cursor = items[-1].id if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}

    @blp.doc(parameters=[IDEMPOTENCY_HEADER])
    @blp.arguments(TriggerSchema)
    @blp.response(201, InvitationOutSchema)
    @blp.alt_response(
        200,
        schema=InvitationOutSchema,
        description="A replay of an earlier request with the same key.",
    )
    def post(self, data):
        """Trigger a survey: email, SMS, or a link the caller delivers."""
        header_key = request.headers.get("Idempotency-Key", "").strip() or None
        body_key = data.get("idempotency_key")
        if header_key and body_key and header_key != body_key:
            raise ApiError(
                422,
                "The Idempotency-Key header and idempotency_key differ.",
                {"idempotency_key": ["Differs from the header."]},
            )
        key = body_key or header_key
        if key is not None and len(key) > 200:
            raise ApiError(422, "The idempotency key is longer than 200 characters.")
        invitation, created = invitations.trigger(
            data, key, invitations.fingerprint(request.get_json())
        )
        return dump(invitation), 201 if created else 200


@blp.route("/invitations/<int:invitation_id>")
class InvitationItem(MethodView):
    @blp.response(200, InvitationOutSchema)
    def get(self, invitation_id):
        """Show an invitation with its messages and their statuses."""
        return dump(get_invitation(invitation_id))

    @blp.response(200, InvitationOutSchema)
    def delete(self, invitation_id):
        """Cancel every message of the invitation that has not gone out yet."""
        invitation = None
        if invitation_id <= MAX_ID:
            invitation = db.session.scalar(
                select(Invitation)
                .where(Invitation.id == invitation_id)
                .with_for_update(of=Invitation)
            )
        if invitation is None:
            raise ApiError(404, f"There is no invitation {invitation_id}.")
        now = utcnow()
        cancelled = reminders.cancel_open(invitation, "cancelled", now)
        if invitation.current_status(now) in LIVE_STATUSES:
            invitation.status = "cancelled"
        db.session.commit()
        logger.info("invitation cancelled id=%s messages=%s", invitation.id, cancelled)
        return dump(invitation)
