"""Twilio webhooks: inbound texts (opt-outs, help, scores) and delivery status."""

import logging
import re

from flask import Blueprint
from flask import Response as HttpResponse
from flask import current_app
from flask import request
from flask_babel import force_locale
from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from feedback import i18n
from feedback import metrics
from feedback import reminders
from feedback import responses
from feedback import suppressions
from feedback.api.schemas import text_problem
from feedback.delivery import statuses
from feedback.errors import ApiError
from feedback.models import Contact
from feedback.models import InboundMessage
from feedback.models import Invitation
from feedback.models import Message
from feedback.models import db
from feedback.models import utcnow

logger = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")

STOP_WORDS = {
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
}
START_WORDS = {"start", "yes", "unstop"}
HELP_WORDS = {"help", "info"}
SCORE_REPLY = re.compile(r"(\d+)(?:\s+(.*))?", re.DOTALL)
OPEN_STATUSES = ("sent", "opened", "answered")


@bp.before_request
def _check_signature():
    """Refuse any request that Twilio did not sign for our public URL."""
    token = current_app.config["TWILIO_AUTH_TOKEN"]
    signature = request.headers.get("X-Twilio-Signature", "")
    # The URL Twilio called is the public one; behind a proxy Flask sees another.
    url = current_app.config["BASE_URL"] + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    if not token or not signature:
        logger.warning("webhook refused path=%s reason=unsigned", request.path)
        raise ApiError(403, "This webhook only takes requests signed by Twilio.")
    if not RequestValidator(token).validate(url, request.form, signature):
        logger.warning("webhook refused path=%s reason=bad_signature", request.path)
        raise ApiError(403, "The X-Twilio-Signature does not match this request.")


# The longest value each field may have; Twilio's own are far shorter.
FIELD_LIMITS = {"MessageSid": 64, "From": 32, "ErrorCode": 32, "MessageStatus": 32}


def _required(*names: str) -> list[str]:
    """The named form fields, present and storable, else a 400 that names them."""
    problems = {
        name: ["Missing."] for name in names if not request.form.get(name, "").strip()
    }
    for name, value in request.form.items():
        problem = text_problem(value)
        if problem is None and len(value) > FIELD_LIMITS.get(name, 1600):
            problem = "is too long"
        if problem:
            problems[name] = [f"{name} {problem}."]
    if problems:
        raise ApiError(
            400,
            "The form cannot be used: " + ", ".join(sorted(problems)) + ".",
            problems,
        )
    return [request.form[name].strip() for name in names]


def _twiml(text: str | None = None) -> HttpResponse:
    reply = MessagingResponse()
    if text:
        reply.message(text)
    return HttpResponse(str(reply), mimetype="application/xml")


@bp.post("/sms")
def inbound():
    """A text from a respondent: an opt-out, a request for help, or a score."""
    sid, sender = _required("MessageSid", "From")
    body = request.form.get("Body", "")
    folded = body.strip().casefold()
    sender = suppressions.normalise("sms", sender)
    invitation = _latest_open_invitation(sender)
    kind = _kind(folded)

    record = InboundMessage(
        provider_id=sid,
        from_address=sender,
        kind=kind,
        invitation_id=invitation.id if invitation else None,
    )
    try:
        with db.session.begin_nested():
            db.session.add(record)
    except IntegrityError:
        db.session.rollback()
        logger.info("inbound text seen before sid=%s", sid)
        return _twiml()

    with force_locale(_language(sender, invitation)):
        return _answer(kind, sender, invitation, body)


def _language(sender: str, invitation: Invitation | None) -> str:
    """The language of the person texting: their invitation's, else their contact's."""
    if invitation is not None:
        return (
            i18n.first_match(i18n.invitation_candidates(invitation), i18n.LANGUAGES)
            or i18n.DEFAULT
        )
    locale = db.session.scalar(
        select(Contact.locale)
        .where(Contact.phone == sender, Contact.locale.is_not(None))
        .order_by(Contact.id.desc())
        .limit(1)
    )
    return i18n.match(locale, i18n.LANGUAGES) or i18n.DEFAULT


def _answer(kind: str, sender: str, invitation: Invitation | None, body: str):
    if kind == "stop":
        suppressions.add("sms", sender, "opted_out", "sms_reply")
        if invitation is not None:
            reminders.cancel_open(invitation, "opted_out", utcnow())
        db.session.commit()
        return _twiml()
    if kind == "start":
        suppressions.remove("sms", sender, "opted_out")
        db.session.commit()
        return _twiml(
            gettext("You will receive our survey texts again. Reply STOP to stop.")
        )
    if kind == "help":
        db.session.commit()
        return _twiml(
            gettext(
                "Feedback surveys: reply with your score to answer, STOP to opt out,"
                " START to opt in again."
            )
        )
    return _score_reply(invitation, body.strip())


def _kind(folded: str) -> str:
    if folded in STOP_WORDS:
        return "stop"
    if folded in START_WORDS:
        return "start"
    if folded in HELP_WORDS:
        return "help"
    return "reply"


def _latest_open_invitation(sender: str) -> Invitation | None:
    """The newest unexpired SMS invitation whose text went to this number."""
    now = utcnow()
    return db.session.scalar(
        select(Invitation)
        .join(Message, Message.invitation_id == Invitation.id)
        .where(
            Message.channel == "sms",
            Message.to_address == sender,
            Message.sent_at.is_not(None),
            Invitation.status.in_(OPEN_STATUSES),
            Invitation.expires_at > now,
        )
        .order_by(Message.sent_at.desc(), Invitation.id.desc())
        .limit(1)
    )


def _score_reply(invitation: Invitation | None, text: str) -> HttpResponse:
    if invitation is None:
        db.session.commit()
        return _twiml(
            gettext(
                "We have no open survey for this number. Reply HELP for help or STOP"
                " to opt out."
            )
        )
    scale = metrics.SCALES[invitation.survey.kind]
    match = SCORE_REPLY.fullmatch(text)
    score = int(match.group(1)) if match else None
    if score is None or not scale.accepts(score):
        db.session.commit()
        return _twiml(
            gettext(
                "To answer, reply with one number from %(low)s to %(high)s, such as"
                ' "%(high)s", and a comment after it if you like.',
                low=scale.low,
                high=scale.high,
            )
        )
    comment = responses.clean_comment(match.group(2))
    if comment is not None:
        comment = comment[: current_app.config["COMMENT_MAX_LENGTH"]]
    responses.record(invitation, score, comment, "sms")
    return _twiml(gettext("Thank you for your answer."))


@bp.post("/status")
def status():
    """Twilio reports how far a text got; a late report never moves it back."""
    sid, provider_status = _required("MessageSid", "MessageStatus")
    code = request.form.get("ErrorCode", "").strip() or None
    if not statuses.known(provider_status):
        raise ApiError(
            422,
            f"{provider_status!r} is not a Twilio message status.",
            {"MessageStatus": ["Unknown status."]},
        )
    message = statuses.receive(sid, provider_status, code)
    if message is None:
        logger.info(
            "status kept until its message is known sid=%s provider_status=%s",
            sid,
            provider_status,
        )
        return HttpResponse(status=204)
    logger.info(
        "message status message=%s provider_status=%s status=%s code=%s",
        message.id,
        provider_status,
        message.status,
        code,
    )
    return HttpResponse(status=204)
