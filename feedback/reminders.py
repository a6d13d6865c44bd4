"""Reminders: one more message for an unanswered invitation, and its cancelling."""

import logging
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select

from feedback.models import Invitation
from feedback.models import Message
from feedback.models import db

logger = logging.getLogger(__name__)

OPEN_MESSAGE_STATUSES = ("pending", "claimed")


def schedule(invitation: Invitation, first: Message, sent_at: datetime) -> None:
    """Add the reminder, due the survey's hours after the first send, if it has one."""
    hours = invitation.survey.reminder_after_hours
    if not hours or invitation.status == "answered":
        return
    exists = db.session.scalar(
        select(Message.id).where(
            Message.invitation_id == invitation.id, Message.purpose == "reminder"
        )
    )
    if exists is not None:
        return
    reminder = Message(
        invitation=invitation,
        channel=first.channel,
        purpose="reminder",
        to_address=first.to_address,
        due_at=sent_at + timedelta(hours=hours),
    )
    reminder.move_to("pending", sent_at)
    db.session.add(reminder)


def cancel_open(
    invitation: Invitation, reason: str, now: datetime, purpose: str | None = None
) -> int:
    """Cancel the invitation's messages that have not gone out; return how many."""
    statement = (
        select(Message)
        .where(
            Message.invitation_id == invitation.id,
            Message.status.in_(OPEN_MESSAGE_STATUSES),
        )
        .with_for_update()
    )
    if purpose:
        statement = statement.where(Message.purpose == purpose)
    cancelled = 0
    for message in db.session.scalars(statement):
        message.move_to("cancelled", now, reason=reason)
        message.claimed_by = None
        message.lease_until = None
        cancelled += 1
    if cancelled:
        logger.info(
            "messages cancelled invitation=%s count=%s reason=%s",
            invitation.id,
            cancelled,
            reason,
        )
    return cancelled
