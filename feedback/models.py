"""Database models: surveys, contacts, invitations, messages, responses, API keys,
suppressions, inbound texts, early status reports and the per-channel send rate."""

from datetime import UTC
from datetime import datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON
from sqlalchemy import DateTime
from sqlalchemy import Engine
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import LargeBinary
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import TypeDecorator
from sqlalchemy import UniqueConstraint
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import registry
from sqlalchemy.orm import relationship

KINDS = ("nps", "csat", "ces")
STAGES = ("acquisition", "onboarding", "activation", "retention", "expansion")
CHANNELS = ("email", "sms", "link")
RESPONSE_CHANNELS = ("web", "sms", "api")
# The largest id an INTEGER primary key holds on PostgreSQL; larger ones exist nowhere.
MAX_ID = 2**31 - 1

# Invitation statuses, in the order an invitation can move through them. failed:
# the first message did not arrive; unknown: nobody knows whether it did, as the
# send broke off after the request went out.
INVITATION_STATUSES = (
    "scheduled",
    "sent",
    "opened",
    "answered",
    "expired",
    "cancelled",
    "suppressed",
    "failed",
    "unknown",
)
SUPPRESSION_REASONS = (
    "throttled",
    "opted_out",
    "invalid_address",
    "no_address_for_channel",
)
# Why an address is on the suppression list; each stops every send to it.
SUPPRESSION_KINDS = ("opted_out", "invalid_address")
# pending: waiting for its time; claimed: a worker holds it; sending: the request
# to the provider is under way, so a crash now leaves the outcome unknown.
MESSAGE_STATUSES = (
    "pending",
    "claimed",
    "sending",
    "queued",
    "sent",
    "delivered",
    "failed",
    "undelivered",
    "unknown",
    "cancelled",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        # SQLite keeps text; without the offset, every value compares as the same kind.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, _record):
    """On SQLite: write-ahead log, foreign keys, and transactions we begin ourselves."""
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection):
    # A deferred transaction that reads and then writes fails at once when another
    # writer got there first; taking the write lock up front makes it wait instead.
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(
            naming_convention={
                "ix": "ix_%(column_0_label)s",
                "uq": "uq_%(table_name)s_%(column_0_name)s",
                "ck": "ck_%(table_name)s_%(constraint_name)s",
                "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
                "pk": "pk_%(table_name)s",
            }
        ),
        type_annotation_map={datetime: UTCDateTime, dict: JSON, list: JSON},
    )


db = SQLAlchemy(model_class=Base)


class Survey(db.Model):
    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    # question and follow_up hold the text in the survey's own language; a survey
    # given in several languages also keeps them all, as {language tag: text}.
    question: Mapped[str] = mapped_column(Text)
    question_translations: Mapped[dict | None]
    follow_up: Mapped[str | None] = mapped_column(Text)
    follow_up_translations: Mapped[dict | None]
    touchpoint: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))
    # The language of the survey's plain texts; none leaves it to the respondent.
    locale: Mapped[str | None] = mapped_column(String(16))
    link_ttl_days: Mapped[int] = mapped_column(default=14)
    # Local times "HH:MM" in the contact's zone, else this one, else UTC.
    timezone: Mapped[str | None] = mapped_column(String(64))
    send_window_start: Mapped[str] = mapped_column(String(5), default="09:00")
    send_window_end: Mapped[str] = mapped_column(String(5), default="20:00")
    # None: the global FEEDBACK_THROTTLE_DAYS; 0: no throttling for this survey.
    throttle_days: Mapped[int | None]
    reminder_after_hours: Mapped[int | None]
    # Property names (such as hotel) whose hourly counts are kept for grouping.
    segments: Mapped[list] = mapped_column(default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Contact(db.Model):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    locale: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    properties: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Invitation(db.Model):
    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    suppression_reason: Mapped[str | None] = mapped_column(String(32))
    properties: Mapped[dict] = mapped_column(default=dict)
    # The link's token is derived from this nonce and the secret key; only its
    # hash is stored, so a copy of the database alone opens no survey.
    token_nonce: Mapped[bytes] = mapped_column(LargeBinary(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    unsubscribe_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    send_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    opened_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    survey: Mapped[Survey] = relationship(lazy="joined")
    contact: Mapped[Contact] = relationship(lazy="joined")
    messages: Mapped[list["Message"]] = relationship(
        back_populates="invitation", order_by="Message.id"
    )

    def current_status(self, now: datetime | None = None) -> str:
        """The stored status, or expired once the link's lifetime has passed."""
        now = now or utcnow()
        if self.status in ("scheduled", "sent", "opened") and now >= self.expires_at:
            return "expired"
        return self.status


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitations.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(String(16), default="invitation")
    to_address: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    due_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    provider_id: Mapped[str | None] = mapped_column(String(128), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(32))
    status_history: Mapped[list] = mapped_column(default=list)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    invitation: Mapped[Invitation] = relationship(back_populates="messages")

    def move_to(self, status: str, now: datetime | None = None, **detail) -> None:
        """Set the status and append it to the history."""
        now = now or utcnow()
        self.status = status
        entry = {"status": status, "at": now.isoformat()}
        entry.update({key: value for key, value in detail.items() if value})
        # A new list, so SQLAlchemy sees the change to the JSON column.
        self.status_history = [*(self.status_history or []), entry]


class Response(db.Model):
    __tablename__ = "responses"
    __table_args__ = (
        Index("ix_responses_survey_id_answered_at", "survey_id", "answered_at"),
        Index("ix_responses_updated_at_id", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("invitations.id"), unique=True
    )
    # Active history keeps the old value of what places an answer in the score
    # counts, so a change moves it out of the right row.
    survey_id: Mapped[int] = mapped_column(
        ForeignKey("surveys.id"), active_history=True
    )
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    score: Mapped[int] = mapped_column(active_history=True)
    comment: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(8), active_history=True)
    properties: Mapped[dict] = mapped_column(default=dict, active_history=True)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow, active_history=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    survey: Mapped[Survey] = relationship(lazy="joined")
    contact: Mapped[Contact] = relationship(lazy="joined")


SCORE_COLUMNS = tuple(f"s{value}" for value in range(11))


class ScoreCount(db.Model):
    """Answers per survey, UTC hour or day, channel and score, whole and by segment.

    Each answer counts in an hour row (hours 1) and a UTC day row (hours 24). The
    rows with segment "" count every answer once; for each property a survey
    declares as a segment there are more rows, where value is "" for an answer
    without that property and "=" followed by its text otherwise.
    """

    __tablename__ = "score_counts"

    # The key's order serves the queries: a survey, a segment, a span, its starts.
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), primary_key=True)
    segment: Mapped[str] = mapped_column(String(64), primary_key=True)
    hours: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    starts_at: Mapped[datetime] = mapped_column(primary_key=True)
    value: Mapped[str] = mapped_column(String(501), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    s0: Mapped[int] = mapped_column(default=0, server_default="0")
    s1: Mapped[int] = mapped_column(default=0, server_default="0")
    s2: Mapped[int] = mapped_column(default=0, server_default="0")
    s3: Mapped[int] = mapped_column(default=0, server_default="0")
    s4: Mapped[int] = mapped_column(default=0, server_default="0")
    s5: Mapped[int] = mapped_column(default=0, server_default="0")
    s6: Mapped[int] = mapped_column(default=0, server_default="0")
    s7: Mapped[int] = mapped_column(default=0, server_default="0")
    s8: Mapped[int] = mapped_column(default=0, server_default="0")
    s9: Mapped[int] = mapped_column(default=0, server_default="0")
    s10: Mapped[int] = mapped_column(default=0, server_default="0")


class ApiKey(db.Model):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]


class Suppression(db.Model):
    """An address that must not be sent to: opted out, or known not to work.

    Kept apart from contacts, so deleting or changing a contact never lifts it.
    """

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    # Emails lowercased, phone numbers in E.164.
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboundMessage(db.Model):
    """A text received from a respondent, recorded once per provider id."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(64), unique=True)
    from_address: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class EarlyStatus(db.Model):
    """A provider's status report that came before its message's id was stored."""

    __tablename__ = "early_statuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(64), index=True)
    provider_status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class DeliveryRate(db.Model):
    """The next free send slot of a channel, shared by every worker."""

    __tablename__ = "delivery_rates"

    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    next_slot: Mapped[datetime]
