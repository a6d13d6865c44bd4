"""The delivery worker: claim due messages from the outbox table and send them."""

import logging
import os
import random
import socket
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from feedback import invitations
from feedback import reminders
from feedback import suppressions
from feedback import throttling
from feedback.delivery import DeliveryError
from feedback.delivery import compose
from feedback.delivery import email
from feedback.delivery import rate
from feedback.delivery import sms
from feedback.delivery import statuses
from feedback.models import SUPPRESSION_REASONS
from feedback.models import Contact
from feedback.models import Message
from feedback.models import db
from feedback.models import utcnow

logger = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 30
RETRY_CAP_SECONDS = 3600
MAX_ATTEMPTS = 6
STOPPED_INVITATIONS = ("cancelled", "suppressed", "expired", "failed")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(worker: str, batch_size: int, lease_seconds: int, now=None) -> list[int]:
    """Take up to batch_size due messages for this worker, and commit the claim."""
    now = now or utcnow()
    _give_up_on_lost_sends(now)
    statuses.drop_unmatched(now)
    due = (
        select(Message.id)
        .where(
            or_(
                and_(Message.status == "pending", Message.due_at <= now),
                # A worker that died before sending leaves its claims to lapse.
                and_(Message.status == "claimed", Message.lease_until < now),
            )
        )
        .order_by(Message.due_at, Message.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    ids = list(db.session.scalars(due))
    if ids:
        db.session.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(
                status="claimed",
                claimed_by=worker,
                lease_until=now + timedelta(seconds=lease_seconds),
            )
        )
    db.session.commit()
    return ids


def _give_up_on_lost_sends(now) -> None:
    """A send that was under way when its worker died may have reached the person."""
    lost = db.session.scalars(
        select(Message)
        .where(Message.status == "sending", Message.lease_until < now)
        .with_for_update(skip_locked=True)
    ).all()
    for message in lost:
        message.move_to("unknown", now, error="the worker stopped during the send")
        message.last_error = "The worker stopped while sending; not retried."
        statuses.end_invitation(message, "unknown", now)
        logger.warning(
            "message outcome unknown message=%s worker=%s",
            message.id,
            message.claimed_by,
        )


def deliver(message_id: int, worker: str, now=None) -> str:
    """Send one claimed message; return the status it ends in.

    `now` stands in for the clock of the send rules, so they can be checked at any
    moment; the rate and the recorded times follow the real clock.
    """
    config = current_app.config
    message = _locked_claim(message_id, worker)
    if message is None:
        return "skipped"
    invitation = message.invitation
    clock_given = now is not None
    now = now or utcnow()

    stopped = _why_not_send(message, now)
    if stopped:
        return _stop(message, stopped, now)
    opening = invitations.next_send_time(invitation, message.channel, now)
    if opening > now:
        return _defer(message, opening, now)

    try:
        if message.channel == "email":
            payload = compose.email_message(config, message)
        else:
            payload = compose.sms_body(message)
    except Exception as error:
        # A message that cannot be built never will be: fail it, keep the batch going.
        logger.exception("message could not be composed message=%s", message.id)
        message.attempts += 1
        return _failed(message, DeliveryError("permanent", f"cannot compose: {error}"))
    # The rate runs on the real clock, whatever `now` says.
    slot = rate.reserve(config, message.channel, utcnow())
    message.lease_until = slot + timedelta(seconds=config["WORKER_LEASE_SECONDS"])
    db.session.commit()
    _wait_until(slot)

    # Checked again after the wait. Two workers may hold two invitations for one
    # contact: the contact's row lock puts their throttle checks in turn, and the
    # one that goes second sees the first one's send under way.
    message = _locked_claim(message_id, worker)
    if message is None:
        return "skipped"
    if message.purpose == "invitation":
        _lock_contact(message.invitation.contact_id)
    if not clock_given:
        now = utcnow()
    stopped = _why_not_send(message, now)
    if stopped:
        return _stop(message, stopped, now)
    # The wait for a rate slot may have run past the window's end, or 21:00 local.
    opening = invitations.next_send_time(message.invitation, message.channel, now)
    if opening > now:
        return _defer(message, opening, now)

    # Committed before the request goes out: if this process dies now, nobody
    # sends the message again on a guess.
    started = utcnow()
    message.attempts += 1
    message.lease_until = started + timedelta(seconds=config["WORKER_LEASE_SECONDS"])
    message.move_to("sending", started, attempt=message.attempts)
    channel, to_address = message.channel, message.to_address
    db.session.commit()

    # No read of the message until the provider has answered: after the commit a
    # read opens a transaction, which on SQLite holds the write lock through the
    # call and keeps the status webhook, and every answer, waiting for it.
    try:
        if channel == "email":
            sent = email.send(config, message_id, payload)
        else:
            sent = sms.send(
                config,
                message_id,
                to_address,
                payload,
                status_callback=_status_callback(config),
            )
    except DeliveryError as error:
        return _failed(message, error)

    finished = utcnow()
    message.provider_id = sent.provider_id
    message.sent_at = finished
    message.last_error = None
    message.move_to(sent.status, finished, provider_id=sent.provider_id)
    if invitation.status == "scheduled":
        invitation.status = "sent"
    if message.purpose == "invitation":
        reminders.schedule(invitation, message, finished)
    db.session.commit()
    logger.info(
        "message sent message=%s channel=%s purpose=%s",
        message.id,
        message.channel,
        message.purpose,
    )
    if channel == "sms":
        # Committed first, so that a report stored meanwhile finds the sid.
        statuses.apply_early(message)
    return message.status


def _locked_claim(message_id: int, worker: str) -> Message | None:
    """The message, locked, if this worker still holds its claim."""
    message = db.session.get(
        Message, message_id, with_for_update=True, populate_existing=True
    )
    if message is None or message.status != "claimed" or message.claimed_by != worker:
        db.session.rollback()
        return None
    return message


def _lock_contact(contact_id: int) -> None:
    db.session.execute(
        select(Contact.id).where(Contact.id == contact_id).with_for_update()
    )


def _why_not_send(message: Message, now) -> str | None:
    """The reason this message must not go out at all, or None."""
    invitation = message.invitation
    status = invitation.current_status(now)
    if status in STOPPED_INVITATIONS:
        return status
    if message.purpose == "reminder" and status == "answered":
        return "answered"
    reason = suppressions.reason_for(message.channel, message.to_address)
    if reason:
        return reason
    if message.purpose == "invitation" and throttling.is_throttled(
        invitation.survey,
        invitation.contact_id,
        current_app.config,
        now,
        exclude_invitation=invitation.id,
    ):
        return "throttled"
    return None


def _stop(message: Message, reason: str, now) -> str:
    invitation = message.invitation
    message.move_to("cancelled", now, reason=reason)
    if message.purpose == "invitation" and reason in SUPPRESSION_REASONS:
        invitation.status = "suppressed"
        invitation.suppression_reason = reason
    db.session.commit()
    logger.info(
        "message not sent message=%s purpose=%s reason=%s",
        message.id,
        message.purpose,
        reason,
    )
    return "cancelled"


def _defer(message: Message, opening, now) -> str:
    """Outside the send window: give the message back, due when the window opens."""
    message.status = "pending"
    message.claimed_by = None
    message.lease_until = None
    message.due_at = opening
    message.move_to("pending", now, waiting_until=opening.isoformat())
    db.session.commit()
    logger.info(
        "message waits for its send window message=%s until=%s",
        message.id,
        opening.isoformat(),
    )
    return "pending"


def _wait_until(slot) -> None:
    seconds = (slot - utcnow()).total_seconds()
    if seconds > 0:
        time.sleep(seconds)


def _status_callback(config: dict) -> str | None:
    if config["SMS_BACKEND"] != "twilio":
        return None
    return config["BASE_URL"] + "/webhooks/twilio/status"


def _failed(message: Message, error: DeliveryError) -> str:
    now = utcnow()
    message.last_error = str(error)
    message.error_code = error.code
    if error.opted_out or error.invalid_address:
        reason = "opted_out" if error.opted_out else "invalid_address"
        suppressions.add(message.channel, message.to_address, reason, "provider")
        if message.invitation.status == "scheduled":
            message.invitation.status = "suppressed"
            message.invitation.suppression_reason = reason
    if error.outcome == "transient" and message.attempts < MAX_ATTEMPTS:
        delay = backoff(message.attempts)
        message.due_at = now + timedelta(seconds=delay)
        message.claimed_by = None
        message.lease_until = None
        message.move_to(
            "pending", now, error=error.code or "transient", retry_in=round(delay)
        )
        logger.warning(
            "message send failed, retry scheduled message=%s code=%s "
            "attempt=%s retry_in=%.0fs",
            message.id,
            error.code,
            message.attempts,
            delay,
        )
    else:
        status = "unknown" if error.outcome == "unknown" else "failed"
        message.move_to(status, now, error=error.code or error.outcome)
        statuses.end_invitation(message, status, now)
        logger.error(
            "message send %s message=%s code=%s outcome=%s",
            status,
            message.id,
            error.code,
            error.outcome,
        )
    db.session.commit()
    return message.status


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter, capped."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def run_once(worker: str | None = None, now=None, stop=lambda: False) -> int:
    """Send everything that is due now; return how many messages were handled."""
    worker = worker or worker_id()
    config = current_app.config
    handled = 0
    while not stop():
        ids = claim(
            worker, config["WORKER_BATCH_SIZE"], config["WORKER_LEASE_SECONDS"], now
        )
        if not ids:
            break
        for position, message_id in enumerate(ids):
            if stop():
                release(ids[position:], worker)
                return handled
            try:
                deliver(message_id, worker, now)
            except Exception:
                # The claim lapses and another pass decides; the rest still go out.
                db.session.rollback()
                logger.exception("message delivery failed message=%s", message_id)
            handled += 1
    return handled


def release(ids: list[int], worker: str) -> None:
    """Hand back claims this worker will not get to, so others need not wait."""
    db.session.execute(
        update(Message)
        .where(
            Message.id.in_(ids),
            Message.status == "claimed",
            Message.claimed_by == worker,
        )
        .values(status="pending", claimed_by=None, lease_until=None)
    )
    db.session.commit()


def run_forever(stop=lambda: False) -> None:
    """Poll for due messages until stop() says so."""
    worker = worker_id()
    logger.info("worker started worker=%s", worker)
    while not stop():
        try:
            handled = run_once(worker, stop=stop)
        except Exception:
            db.session.rollback()
            logger.exception("worker pass failed; trying again")
            handled = 0
        finally:
            db.session.remove()
        if not handled:
            time.sleep(current_app.config["WORKER_POLL_SECONDS"])
