"""Invitations: trigger a survey for a contact and follow its messages."""

from flask import request
from flask.views import MethodView

from feedback import invitations
from feedback.api.blueprint import Blueprint
from feedback.api.schemas import InvitationOutSchema
from feedback.api.schemas import TriggerSchema
from feedback.errors import ApiError
from feedback.models import MAX_ID
from feedback.models import Invitation
from feedback.models import db

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


@blp.route("/invitations")
class Invitations(MethodView):
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
        invitation = None
        if invitation_id <= MAX_ID:
            invitation = db.session.get(Invitation, invitation_id)
        if invitation is None:
            raise ApiError(404, f"There is no invitation {invitation_id}.")
        return dump(invitation)
