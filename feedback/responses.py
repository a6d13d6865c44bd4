"""Storing an answer: one response per invitation, changed while the link is valid."""

import logging
import unicodedata

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from feedback import reminders
from feedback.models import Invitation
from feedback.models import Response
from feedback.models import Survey
from feedback.models import db
from feedback.models import utcnow

logger = logging.getLogger(__name__)

KEPT_CONTROLS = {"\n", "\t"}


def clean_comment(text: str | None) -> str | None:
    """Drop control characters but newline and tab; keep emoji and RTL text as is."""
    if text is None:
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = "".join(
        char
        for char in text
        if char in KEPT_CONTROLS or unicodedata.category(char) != "Cc"
    )
    return kept if kept.strip() else None


def record(invitation: Invitation, score: int, comment: str | None, channel: str):
    """Store or change the answer and commit; return (response, created)."""
    # Locks first, the clock after: an answer that waited for a lock must not carry
    # a time from before the wait, or a feed read meanwhile would page past it.
    db.session.execute(
        select(Survey.id)
        .where(Survey.id == invitation.survey_id)
        .with_for_update(read=True)
    )
    response = _locked_response(invitation.id)
    now = utcnow()
    created = response is None
    if created:
        try:
            with db.session.begin_nested():
                response = _new_response(invitation, score, comment, channel, now)
        except IntegrityError:
            # A concurrent answer to the same link was stored first: change that one.
            created = False
            response = _locked_response(invitation.id)
    if not created:
        response.score = score
        response.comment = comment
        response.channel = channel
        response.updated_at = now

    invitation.status = "answered"
    invitation.answered_at = invitation.answered_at or now
    # The flush moves the answer in the score counts, in this same transaction.
    reminders.cancel_open(invitation, "answered", now, purpose="reminder")
    db.session.commit()
    logger.info(
        "response %s invitation=%s survey=%s channel=%s",
        "stored" if created else "changed",
        invitation.id,
        invitation.survey.key,
        channel,
    )
    return response, created


def _locked_response(invitation_id: int) -> Response | None:
    return db.session.scalar(
        select(Response)
        .where(Response.invitation_id == invitation_id)
        .with_for_update(of=Response)
        # The row as it is now, under the lock, not as this session last saw it.
        .execution_options(populate_existing=True)
    )


def _new_response(invitation, score, comment, channel, now) -> Response:
    response = Response(
        invitation_id=invitation.id,
        survey_id=invitation.survey_id,
        contact_id=invitation.contact_id,
        score=score,
        comment=comment,
        channel=channel,
        properties=dict(invitation.properties or {}),
        answered_at=now,
        updated_at=now,
    )
    db.session.add(response)
    db.session.flush()
    return response
