"""The email opt-out link: GET asks to confirm, POST records it (RFC 8058)."""

import logging

from flask import Blueprint
from flask import render_template
from flask import request

from feedback import i18n
from feedback import invitations
from feedback import reminders
from feedback import suppressions
from feedback.models import db
from feedback.models import utcnow
from feedback.survey_page import SECURITY_HEADERS

logger = logging.getLogger(__name__)

bp = Blueprint("unsubscribe", __name__)


@bp.after_request
def _headers(response):
    response.headers.update(SECURITY_HEADERS)
    return response


def _address(invitation) -> str | None:
    """The address the invitation's emails went to, else the contact's."""
    for message in invitation.messages:
        if message.channel == "email":
            return message.to_address
    return invitation.contact.email


@bp.get("/u/<token>")
def confirm(token):
    """Ask to confirm; a GET changes nothing, since mail scanners follow links."""
    invitation = invitations.find_by_unsubscribe_token(token)
    if invitation is None or not _address(invitation):
        return render_template("survey/unavailable.html"), 404
    with i18n.respondent_locale(invitation):
        return render_template("unsubscribe/confirm.html", action=request.path)


@bp.post("/u/<token>")
def unsubscribe(token):
    """Record the opt-out and answer 200: the one-click POST of RFC 8058."""
    invitation = invitations.find_by_unsubscribe_token(token)
    address = _address(invitation) if invitation is not None else None
    if not address:
        return render_template("survey/unavailable.html"), 404
    suppressions.add("email", address, "opted_out", "unsubscribe_link")
    reminders.cancel_open(invitation, "opted_out", utcnow())
    db.session.commit()
    logger.info("email opt-out recorded invitation=%s", invitation.id)
    with i18n.respondent_locale(invitation):
        return render_template("unsubscribe/done.html")
