"""The suppression list: addresses that opted out or do not work, per channel."""

import logging

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from feedback.models import Suppression
from feedback.models import db

logger = logging.getLogger(__name__)


def normalise(channel: str, address: str) -> str:
    """The form an address is stored and matched in: emails lowercased, E.164."""
    address = address.strip()
    if channel == "email":
        return address.lower()
    try:
        number = phonenumbers.parse(address, None)
    except phonenumbers.NumberParseException:
        return address
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def find(channel: str, address: str | None) -> Suppression | None:
    if not address:
        return None
    return db.session.scalar(
        select(Suppression).where(
            Suppression.channel == channel,
            Suppression.address == normalise(channel, address),
        )
    )


def reason_for(channel: str, address: str | None) -> str | None:
    """Why this address must not be sent to on this channel, or None."""
    found = find(channel, address)
    return found.reason if found is not None else None


def add(channel: str, address: str, reason: str, source: str) -> tuple:
    """Put an address on the list, in the open transaction; (suppression, created).

    An opt-out replaces an invalid-address entry, since it is the person's own word.
    """
    existing = find(channel, address)
    if existing is None:
        entry = Suppression(
            channel=channel,
            address=normalise(channel, address),
            reason=reason,
            source=source,
        )
        try:
            with db.session.begin_nested():
                db.session.add(entry)
        except IntegrityError:
            # Recorded by a concurrent request a moment ago.
            existing = find(channel, address)
        else:
            logger.info(
                "address suppressed channel=%s reason=%s source=%s",
                channel,
                reason,
                source,
            )
            return entry, True
    if reason == "opted_out" and existing.reason != "opted_out":
        existing.reason = reason
        existing.source = source
    return existing, False


def remove(channel: str, address: str, reason: str | None = None) -> bool:
    """Take an address off the list, in the open transaction; False if not on it."""
    existing = find(channel, address)
    if existing is None or (reason and existing.reason != reason):
        return False
    db.session.delete(existing)
    logger.info("suppression lifted channel=%s reason=%s", channel, existing.reason)
    return True
