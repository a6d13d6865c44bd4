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

from feedback.delivery import DeliveryError
from feedback.delivery import compose
from feedback.delivery import email
from feedback.delivery import sms
from feedback.models import Message
from feedback.models import db
from feedback.models import utcnow

logger = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 30
RETRY_CAP_SECONDS = 3600
MAX_ATTEMPTS = 6
STOPPED_INVITATIONS = ("cancelled", "suppressed", "expired")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(worker: str, batch_size: int, lease_seconds: int) -> list[int]:
    """Take up to batch_size due messages for this worker, and commit the claim."""
    now = utcnow()
    _give_up_on_lost_sends(now)
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
        logger.warning(
            "message outcome unknown message=%s worker=%s",
            message.id,
            message.claimed_by,
        )


def deliver(message_id: int, worker: str) -> str:
    """Send one claimed message; return the status it ends in."""
    config = current_app.config
    message = db.session.get(Message, message_id, with_for_update=True)
    if message is None or message.status != "claimed" or message.claimed_by != worker:
        db.session.rollback()
        return "skipped"
    invitation = message.invitation
    now = utcnow()
    if invitation.current_status(now) in STOPPED_INVITATIONS or (
        message.purpose == "reminder" and invitation.status == "answered"
    ):
        message.move_to("cancelled", now, reason=invitation.current_status(now))
        db.session.commit()
        return "cancelled"

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
    # Committed before the request goes out: if this process dies now, nobody
    # sends the message again on a guess.
    message.attempts += 1
    message.lease_until = now + timedelta(seconds=config["WORKER_LEASE_SECONDS"])
    message.move_to("sending", now, attempt=message.attempts)
    db.session.commit()

    try:
        if message.channel == "email":
            sent = email.send(config, message.id, payload)
        else:
            sent = sms.send(config, message.id, message.to_address, payload)
    except DeliveryError as error:
        return _failed(message, error)

    now = utcnow()
    message.provider_id = sent.provider_id
    message.sent_at = now
    message.last_error = None
    message.move_to(sent.status, now, provider_id=sent.provider_id)
    if invitation.status == "scheduled":
        invitation.status = "sent"
    db.session.commit()
    logger.info(
        "message sent message=%s channel=%s purpose=%s",
        message.id,
        message.channel,
        message.purpose,
    )
    return message.status


def _failed(message: Message, error: DeliveryError) -> str:
    now = utcnow()
    message.last_error = str(error)
    message.error_code = error.code
    if error.outcome == "transient" and message.attempts < MAX_ATTEMPTS:
        delay = backoff(message.attempts)
        message.due_at = now + timedelta(seconds=delay)
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


def run_once(worker: str | None = None) -> int:
    """Send everything that is due now; return how many messages were handled."""
    worker = worker or worker_id()
    config = current_app.config
    handled = 0
    while True:
        ids = claim(worker, config["WORKER_BATCH_SIZE"], config["WORKER_LEASE_SECONDS"])
        if not ids:
            return handled
        for message_id in ids:
            try:
                deliver(message_id, worker)
            except Exception:
                # The claim lapses and another pass decides; the rest still go out.
                db.session.rollback()
                logger.exception("message delivery failed message=%s", message_id)
            handled += 1


def run_forever(stop=lambda: False) -> None:
    """Poll for due messages until stop() says so."""
    worker = worker_id()
    logger.info("worker started worker=%s", worker)
    while not stop():
        try:
            handled = run_once(worker)
        except Exception:
            db.session.rollback()
            logger.exception("worker pass failed; trying again")
            handled = 0
        finally:
            db.session.remove()
        if not handled:
            time.sleep(current_app.config["WORKER_POLL_SECONDS"])
