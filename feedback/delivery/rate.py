"""The per-channel send rate, held across every worker through one database row."""

from datetime import datetime
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from feedback.models import DeliveryRate
from feedback.models import db

SETTINGS = {"sms": "SMS_RATE", "email": "EMAIL_RATE"}


def interval(config: dict, channel: str) -> timedelta:
    """The time between two sends on a channel."""
    return timedelta(seconds=1 / config[SETTINGS[channel]])


def reserve(config: dict, channel: str, now: datetime) -> datetime:
    """Take the channel's next free slot, at `now` or later, in the open transaction.

    The row is locked until the caller commits (FOR UPDATE on PostgreSQL; SQLite
    transactions here hold the write lock from their start), so two workers never
    take the same slot.
    """
    _ensure_row(channel, now)
    row = db.session.scalar(
        select(DeliveryRate)
        .where(DeliveryRate.channel == channel)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    slot = max(row.next_slot, now)
    row.next_slot = slot + interval(config, channel)
    db.session.flush()
    return slot


def _ensure_row(channel: str, now: datetime) -> None:
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(
        insert(DeliveryRate)
        .values(channel=channel, next_slot=now)
        .on_conflict_do_nothing(index_elements=["channel"])
    )
