"""Provider status reports: a message only moves forward, whenever a report comes."""

import logging
from datetime import datetime
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy import select

from feedback import reminders
from feedback import suppressions
from feedback.delivery import sms
from feedback.models import EarlyStatus
from feedback.models import Message
from feedback.models import db
from feedback.models import utcnow

logger = logging.getLogger(__name__)

# Twilio calls back within milliseconds of taking a text, often before the worker
# has stored its sid, and never sends a report again. So a report for a sid that no
# message has yet is kept and applied when the sid is stored, and the outcome is the
# same in either order. One that no message takes in this time never will be.
KEEP_UNMATCHED = timedelta(days=1)

# Twilio's statuses mapped to ours, with how far along each one is; a report only
# ever moves a message further.
PROVIDER_STATUSES = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "cancelled",
}
PROGRESS = {
    "queued": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "cancelled": 3,
    "unknown": 0,
}
NOT_DELIVERED = ("failed", "undelivered")


def known(provider_status: str) -> bool:
    """Whether this is one of Twilio's message statuses."""
    return provider_status.lower() in PROVIDER_STATUSES


def receive(sid: str, provider_status: str, code: str | None) -> Message | None:
    """Apply a report to its message and commit; keep it if no message has the sid."""
    message = _locked(sid)
    if message is not None:
        apply(message, provider_status, code, utcnow())
        db.session.commit()
        return message

    db.session.add(
        EarlyStatus(provider_id=sid, provider_status=provider_status, error_code=code)
    )
    db.session.commit()
    # The worker looks for kept reports after committing a sid, and this looks for
    # the sid after committing the report, so one of the two finds the other.
    message = _locked(sid)
    if message is None:
        db.session.rollback()
        return None
    apply_early(message)
    return message


def apply_early(message: Message) -> int:
    """Apply the reports kept for the message's sid, once, and commit."""
    message = db.session.get(
        Message, message.id, with_for_update=True, populate_existing=True
    )
    reports = db.session.scalars(
        select(EarlyStatus)
        .where(EarlyStatus.provider_id == message.provider_id)
        .order_by(EarlyStatus.id)
    ).all()
    now = utcnow()
    for report in reports:
        apply(
            message,
            report.provider_status,
            report.error_code,
            now,
            reported_at=report.received_at,
        )
    if reports:
        db.session.execute(
            delete(EarlyStatus).where(
                EarlyStatus.id.in_([report.id for report in reports])
            )
        )
        logger.info(
            "early status reports applied message=%s count=%s status=%s",
            message.id,
            len(reports),
            message.status,
        )
    db.session.commit()
    return len(reports)


def apply(
    message: Message,
    provider_status: str,
    code: str | None,
    now: datetime,
    reported_at: datetime | None = None,
) -> None:
    """Move the message on as the report says, never back, in the open transaction."""
    status = PROVIDER_STATUSES[provider_status.lower()]
    moved = PROGRESS.get(status, 0) > PROGRESS.get(message.status, 0)
    if moved:
        message.move_to(
            status,
            now,
            provider_status=provider_status,
            error=code,
            reported_at=reported_at.isoformat() if reported_at else None,
        )
    if status not in NOT_DELIVERED or message.status != status:
        return
    # A second report of the same failure may bring the code the first lacked.
    if code:
        message.error_code = code
        message.last_error = f"Twilio error {code}: reported {provider_status}"
        _suppress_for(message, code)
    elif moved:
        message.last_error = f"Twilio reported {provider_status}, with no error code"
    if moved:
        end_invitation(message, "failed", now)


def end_invitation(message: Message, status: str, now: datetime) -> None:
    """Mark the invitation failed or unknown after its first message's outcome."""
    if message.purpose != "invitation":
        return
    invitation = message.invitation
    if status == "failed":
        # The number or address does not work: a reminder would not arrive either.
        reminders.cancel_open(
            invitation, "first_message_failed", now, purpose="reminder"
        )
    # An answer, a cancel or a suppression already says more than this; and only a
    # send that was never confirmed can have an unknown outcome.
    ending = ("scheduled", "sent") if status == "failed" else ("scheduled",)
    if invitation.status in ending:
        invitation.status = status
        logger.info(
            "invitation ended id=%s status=%s message=%s",
            invitation.id,
            status,
            message.id,
        )


def drop_unmatched(now: datetime) -> int:
    """Forget the reports that no message took within KEEP_UNMATCHED."""
    dropped = db.session.execute(
        delete(EarlyStatus).where(EarlyStatus.received_at < now - KEEP_UNMATCHED)
    ).rowcount
    if dropped:
        logger.warning("early status reports dropped unmatched count=%s", dropped)
    return dropped


def _locked(sid: str) -> Message | None:
    return db.session.scalar(
        select(Message).where(Message.provider_id == sid).with_for_update()
    )


def _suppress_for(message: Message, code: str) -> None:
    """An opt-out or a dead number reported after the send goes on the list too."""
    if not code.isdigit():
        return
    judged = sms.classify(None, int(code), "")
    if judged.opted_out or judged.invalid_address:
        reason = "opted_out" if judged.opted_out else "invalid_address"
        suppressions.add("sms", message.to_address, reason, "provider")
