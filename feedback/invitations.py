"""Triggering a survey: the contact, the invitation and its first message, at once."""

import hashlib
import json
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from feedback import suppressions
from feedback import throttling
from feedback import tokens
from feedback.delivery import windows
from feedback.errors import ApiError
from feedback.models import Contact
from feedback.models import Invitation
from feedback.models import Message
from feedback.models import Survey
from feedback.models import db
from feedback.models import utcnow

logger = logging.getLogger(__name__)

CONTACT_FIELDS = ("external_id", "name", "email", "phone", "locale", "timezone")


def fingerprint(body: dict) -> str:
    """Hash a trigger's body, without its idempotency key, to spot a changed replay."""
    relevant = {key: value for key, value in body.items() if key != "idempotency_key"}
    canonical = json.dumps(relevant, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def survey_url(invitation: Invitation) -> str:
    """The personal link, always on the configured public origin."""
    token = tokens.derive(current_app.config["SECRET_KEY"], invitation.token_nonce)
    return f"{current_app.config['BASE_URL']}/s/{token}"


def unsubscribe_url(invitation: Invitation) -> str:
    """The one-click opt-out link of an invitation's emails.

    Invitations made before opt-out links existed get their lookup hash now, in
    the caller's transaction, so the link in the email they are about to receive
    works.
    """
    token = tokens.derive(
        current_app.config["SECRET_KEY"], invitation.token_nonce, "unsubscribe"
    )
    if invitation.unsubscribe_hash is None:
        invitation.unsubscribe_hash = tokens.digest(token)
    return f"{current_app.config['BASE_URL']}/u/{token}"


def find_by_token(token: str) -> Invitation | None:
    if not tokens.looks_like_token(token):
        return None
    return db.session.scalar(
        select(Invitation).where(Invitation.token_hash == tokens.digest(token))
    )


def find_by_unsubscribe_token(token: str) -> Invitation | None:
    if not tokens.looks_like_token(token):
        return None
    return db.session.scalar(
        select(Invitation).where(Invitation.unsubscribe_hash == tokens.digest(token))
    )


def send_zone(invitation: Invitation):
    """The time zone of the send window: the contact's, else the survey's, else UTC."""
    return windows.zone_for(invitation.contact.timezone, invitation.survey.timezone)


def next_send_time(invitation: Invitation, channel: str, when):
    """The first moment at or after `when` inside the survey's send window."""
    survey = invitation.survey
    return windows.next_opening(
        when,
        send_zone(invitation),
        windows.parse_time(survey.send_window_start),
        windows.parse_time(survey.send_window_end),
        channel,
    )


def suppression_reason(invitation: Invitation, address: str, now) -> str | None:
    """Why this invitation must not be sent now, or None."""
    reason = suppressions.reason_for(invitation.channel, address)
    if reason:
        return reason
    if throttling.is_throttled(
        invitation.survey,
        invitation.contact_id,
        current_app.config,
        now,
        exclude_invitation=invitation.id,
    ):
        return "throttled"
    return None


def trigger(data: dict, idempotency_key: str | None, print_: str) -> tuple:
    """Create the invitation, or return the one this key made; (invitation, created)."""
    if idempotency_key:
        existing = _replay(idempotency_key, print_)
        if existing is not None:
            return existing, False
    try:
        invitation = _create(data, idempotency_key, print_)
        db.session.commit()
    except IntegrityError:
        # Another request with the same key, or for the same new contact, won the
        # race; what it wrote is now visible, so look again.
        db.session.rollback()
        if idempotency_key:
            existing = _replay(idempotency_key, print_)
            if existing is not None:
                return existing, False
        invitation = _create(data, idempotency_key, print_)
        db.session.commit()
    logger.info(
        "invitation created id=%s survey=%s channel=%s status=%s",
        invitation.id,
        invitation.survey.key,
        invitation.channel,
        invitation.status,
    )
    return invitation, True


def _replay(idempotency_key: str, print_: str) -> Invitation | None:
    existing = db.session.scalar(
        select(Invitation).where(Invitation.idempotency_key == idempotency_key)
    )
    if existing is not None and existing.request_fingerprint != print_:
        raise ApiError(
            409,
            "This idempotency key was already used with a different request body.",
            {"idempotency_key": idempotency_key, "invitation_id": existing.id},
        )
    return existing


def _create(data: dict, idempotency_key: str | None, print_: str) -> Invitation:
    survey = db.session.scalar(select(Survey).where(Survey.key == data["survey"]))
    if survey is None:
        raise ApiError(
            422,
            f"There is no survey with key {data['survey']!r}.",
            {"survey": ["Unknown survey."]},
        )
    contact = upsert_contact(data["contact"])
    now = utcnow()
    if "send_at" in data:
        send_at = max(data["send_at"], now)
    else:
        send_at = now + timedelta(minutes=data.get("delay_minutes", 0))

    invitation = Invitation(
        survey=survey,
        contact=contact,
        channel=data["channel"],
        properties=data.get("properties") or {},
        token_nonce=tokens.new_nonce(),
        idempotency_key=idempotency_key,
        request_fingerprint=print_,
        send_at=send_at,
        expires_at=send_at + timedelta(days=survey.link_ttl_days),
    )
    secret = current_app.config["SECRET_KEY"]
    invitation.token_hash = tokens.digest(tokens.derive(secret, invitation.token_nonce))
    invitation.unsubscribe_hash = tokens.digest(
        tokens.derive(secret, invitation.token_nonce, "unsubscribe")
    )
    db.session.add(invitation)
    db.session.flush()

    address = {"email": contact.email, "sms": contact.phone}.get(invitation.channel)
    reason = None
    if invitation.channel != "link":
        reason = (
            suppression_reason(invitation, address, now)
            if address
            else "no_address_for_channel"
        )
    if invitation.channel == "link":
        invitation.status = "sent"
    elif reason:
        invitation.status = "suppressed"
        invitation.suppression_reason = reason
    else:
        message = Message(
            invitation=invitation,
            channel=invitation.channel,
            to_address=address,
            due_at=next_send_time(invitation, invitation.channel, send_at),
        )
        message.move_to("pending", now)
        db.session.add(message)
    db.session.flush()
    return invitation


def upsert_contact(data: dict) -> Contact:
    """Find the contact by external id, else by email or phone; update what is given."""
    contact = None
    if data.get("external_id"):
        contact = db.session.scalar(
            select(Contact).where(Contact.external_id == data["external_id"])
        )
    else:
        matches = [
            column == data[key]
            for key, column in (("email", Contact.email), ("phone", Contact.phone))
            if data.get(key)
        ]
        contact = db.session.scalar(
            select(Contact).where(or_(*matches)).order_by(Contact.id).limit(1)
        )
    if contact is None:
        contact = Contact(properties={})
        db.session.add(contact)
    for key in CONTACT_FIELDS:
        if data.get(key) is not None:
            setattr(contact, key, data[key])
    if data.get("properties"):
        contact.properties = {**(contact.properties or {}), **data["properties"]}
    return contact
