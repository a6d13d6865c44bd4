"""Throttling: a contact is asked at most once per so many days."""

from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select

from feedback.models import Invitation
from feedback.models import Message
from feedback.models import Survey
from feedback.models import db


def throttle_days(survey: Survey, config: dict) -> int:
    """The survey's own number of days, else the global setting; 0 is no limit."""
    if survey.throttle_days is not None:
        return survey.throttle_days
    return config["THROTTLE_DAYS"]


def last_sent_at(contact_id: int, exclude_invitation: int | None = None):
    """When a message was last sent to this contact, on any survey.

    A send under way counts as sent, so that two workers with two invitations for
    one contact do not both go ahead; so does a send whose outcome is unknown, as
    it may well have reached the person.
    """
    sent = func.max(Message.sent_at)
    started = func.max(Message.updated_at).filter(
        Message.status.in_(("sending", "unknown"))
    )
    statement = (
        select(sent, started)
        .join(Invitation, Message.invitation_id == Invitation.id)
        .where(Invitation.contact_id == contact_id)
    )
    if exclude_invitation is not None:
        statement = statement.where(Invitation.id != exclude_invitation)
    times = [value for value in db.session.execute(statement).one() if value]
    return max(times) if times else None


def is_throttled(
    survey: Survey,
    contact_id: int,
    config: dict,
    now: datetime,
    exclude_invitation: int | None = None,
) -> bool:
    """Whether asking this contact now would be too soon after the last send."""
    days = throttle_days(survey, config)
    if days <= 0:
        return False
    last = last_sent_at(contact_id, exclude_invitation)
    if last is None:
        return False
    return now - last < timedelta(days=days)
