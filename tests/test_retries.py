"""Every failure class mapped to its retry decision, through the real clients."""

import socket
import threading
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import sqlalchemy
from twilio.base.exceptions import TwilioRestException
from twilio.base.exceptions import TwilioServiceException

from feedback.delivery import DeliveryError
from feedback.delivery import email as email_channel
from feedback.delivery import sms
from feedback.delivery import worker
from feedback.models import Message
from feedback.models import Suppression
from feedback.models import db
from tests.conftest import ApiClient
from tests.servers import free_port

PHONE = "+447911123456"


def legacy(status, code):
    return status, {"code": code, "message": f"error {code}", "status": status}


def problem(status, code):
    """An RFC 9457 problem document, which the SDK raises as TwilioServiceException."""
    return status, {
        "type": f"https://www.twilio.com/docs/errors/{code}",
        "title": "Problem",
        "status": status,
        "code": code,
        "detail": f"problem {code}",
    }


@pytest.mark.parametrize(
    ("answer", "outcome", "invalid", "opted_out", "family"),
    [
        (legacy(429, 20429), "transient", False, False, TwilioRestException),
        (problem(429, 20429), "transient", False, False, TwilioServiceException),
        (legacy(400, 30003), "transient", False, False, TwilioRestException),
        (legacy(400, 30008), "transient", False, False, TwilioRestException),
        (
            (500, {"message": "Internal"}),
            "transient",
            False,
            False,
            TwilioRestException,
        ),
        (problem(503, 20503), "transient", False, False, TwilioServiceException),
        (legacy(400, 21211), "permanent", True, False, TwilioRestException),
        (legacy(400, 21408), "permanent", False, False, TwilioRestException),
        (legacy(400, 21610), "permanent", False, True, TwilioRestException),
        (problem(400, 21610), "permanent", False, True, TwilioServiceException),
        (legacy(400, 30005), "permanent", True, False, TwilioRestException),
        (legacy(400, 30006), "permanent", True, False, TwilioRestException),
        (legacy(400, 30007), "permanent", False, False, TwilioRestException),
        # Refused credentials say nothing of the message: retried once they are fixed.
        (legacy(401, 20003), "transient", False, False, TwilioRestException),
        (
            (429, {"message": "Too Many Requests"}),
            "transient",
            False,
            False,
            TwilioRestException,
        ),
    ],
)
def test_twilio_answers(app, twilio_api, answer, outcome, invalid, opted_out, family):
    twilio_api.script.append(answer)
    config = {**app.config, **twilio_api.settings()}
    with pytest.raises(DeliveryError) as raised:
        sms.send(config, 1, PHONE, "How did we do?")
    error = raised.value
    assert isinstance(error.__cause__, family)
    assert (error.outcome, error.invalid_address, error.opted_out) == (
        outcome,
        invalid,
        opted_out,
    )
    assert len(twilio_api.requests) == 1


@pytest.mark.parametrize(
    ("script", "outcome"),
    [
        ("refused", "transient"),
        ("drop", "unknown"),
        ("hang", "unknown"),
    ],
)
def test_twilio_connection_failures(app, twilio_api, script, outcome):
    config = {**app.config, **twilio_api.settings(), "TWILIO_TIMEOUT": 0.5}
    if script == "refused":
        config["TWILIO_API_URL"] = f"http://127.0.0.1:{free_port()}"
    else:
        twilio_api.hang_seconds = 1.5
        twilio_api.script.append(script)
    with pytest.raises(DeliveryError) as raised:
        sms.send(config, 1, PHONE, "How did we do?")
    assert raised.value.outcome == outcome
    assert "requests" in type(raised.value.__cause__).__module__


@pytest.mark.parametrize(
    ("reply", "outcome", "invalid"),
    [
        ("450 4.2.1 Mailbox busy", "transient", False),
        ("451 4.3.0 Try again later", "transient", False),
        ("550 5.1.1 No such user", "permanent", True),
        ("553 5.1.3 Bad address syntax", "permanent", True),
        ("552 5.2.2 Mailbox full", "permanent", False),
        ("554 5.7.1 Rejected", "permanent", False),
    ],
)
def test_smtp_replies(app, smtp_server, reply, outcome, invalid):
    smtp_server.refuse["zoe@example.org"] = reply
    config = {**app.config, **smtp_server.settings()}
    built = email_channel.build(config, "zoe@example.org", None, "Hi", "text", "<p>")
    with pytest.raises(DeliveryError) as raised:
        email_channel.send(config, 1, built)
    assert (raised.value.outcome, raised.value.invalid_address) == (outcome, invalid)
    assert raised.value.code == reply[:3]


def test_smtp_refused_connection_is_transient(app):
    config = {
        **app.config,
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": free_port(),
        "SMTP_TIMEOUT": 2,
    }
    built = email_channel.build(config, "zoe@example.org", None, "Hi", "text", "<p>")
    with pytest.raises(DeliveryError) as raised:
        email_channel.send(config, 1, built)
    assert raised.value.outcome == "transient"


class SilentAfterData:
    """An SMTP server that takes the whole message and hangs up without a reply."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        connection, _ = self.listener.accept()
        with connection, connection.makefile("rb") as lines:
            connection.sendall(b"220 test ESMTP\r\n")
            in_data = False
            for line in lines:
                if in_data:
                    if line == b".\r\n":
                        self.received.set()
                        return
                    continue
                verb = line[:4].upper()
                if verb == b"DATA":
                    in_data = True
                    connection.sendall(b"354 go ahead\r\n")
                else:
                    connection.sendall(b"250 OK\r\n")

    def close(self):
        self.listener.close()


def test_smtp_silence_after_data_is_unknown(app):
    server = SilentAfterData()
    config = {
        **app.config,
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": server.port,
        "SMTP_TIMEOUT": 2,
    }
    built = email_channel.build(config, "zoe@example.org", None, "Hi", "text", "<p>")
    try:
        with pytest.raises(DeliveryError) as raised:
            email_channel.send(config, 1, built)
    finally:
        server.close()
    assert server.received.is_set()
    assert raised.value.outcome == "unknown"


def test_backoff_grows_exponentially_with_jitter_up_to_a_cap():
    for attempt in range(1, 13):
        ceiling = min(3600, 30 * 2 ** (attempt - 1))
        delays = {worker.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1


@pytest.fixture
def sms_api(make_app, twilio_api, survey_data):
    app = make_app(**twilio_api.settings(), SMS_RATE=1000)
    api = ApiClient.for_app(app)
    api.post("/api/v1/surveys", json=survey_data)
    created = api.post(
        "/api/v1/invitations",
        json={
            "survey": survey_data["key"],
            "channel": "sms",
            "contact": {"phone": PHONE},
        },
    )
    assert created.status_code == 201
    return app, api, created.json["id"]


def run_later(app, hours=2):
    with app.app_context():
        return worker.run_once(now=datetime.now(UTC) + timedelta(hours=hours))


def the_message(api, invitation_id):
    invitation = api.get(f"/api/v1/invitations/{invitation_id}").json
    return invitation, invitation["messages"][0]


def test_transient_failures_retry_then_fail_at_the_cap(sms_api, twilio_api):
    app, api, invitation_id = sms_api
    for _ in range(worker.MAX_ATTEMPTS):
        twilio_api.fail_next(429, 20429)

    started = datetime.now(UTC)
    with app.app_context():
        assert worker.run_once() == 1
    _, message = the_message(api, invitation_id)
    assert (message["status"], message["attempts"], message["error_code"]) == (
        "pending",
        1,
        "20429",
    )
    due = datetime.fromisoformat(message["due_at"])
    assert (
        started + timedelta(seconds=15)
        <= due
        <= datetime.now(UTC) + timedelta(seconds=30)
    )

    # Two hours on, every retry has fallen due, one after the other.
    assert run_later(app) == worker.MAX_ATTEMPTS - 1
    invitation, message = the_message(api, invitation_id)
    assert (message["status"], message["attempts"]) == ("failed", worker.MAX_ATTEMPTS)
    assert invitation["status"] == "failed"
    assert run_later(app, hours=10) == 0
    assert len(twilio_api.requests) == worker.MAX_ATTEMPTS


def test_a_transient_failure_then_success(sms_api, twilio_api):
    app, api, invitation_id = sms_api
    twilio_api.script.append(problem(503, 20503))
    with app.app_context():
        assert worker.run_once() == 1
    assert run_later(app) == 1
    invitation, message = the_message(api, invitation_id)
    assert (message["status"], message["attempts"]) == ("queued", 2)
    assert message["provider_id"] == twilio_api.sent[0]["sid"]
    assert message["last_error"] is None
    assert invitation["status"] == "sent"


@pytest.mark.parametrize(
    ("code", "listed"),
    [(21211, "invalid_address"), (21610, "opted_out"), (30007, None)],
)
def test_permanent_failures_are_not_retried(sms_api, twilio_api, code, listed):
    app, api, invitation_id = sms_api
    twilio_api.fail_next(400, code)
    with app.app_context():
        assert worker.run_once() == 1
    assert run_later(app) == 0
    invitation, message = the_message(api, invitation_id)
    assert (message["status"], message["error_code"]) == ("failed", str(code))
    assert len(twilio_api.requests) == 1
    with app.app_context():
        row = db.session.scalar(sqlalchemy.select(Suppression))
        assert (row.reason if row else None) == listed
    # A number that does not work, or said stop, is a suppression; anything else
    # ends the invitation as failed.
    assert (invitation["status"], invitation["suppression_reason"]) == (
        ("suppressed", listed) if listed else ("failed", None)
    )


@pytest.mark.parametrize("script", ["drop", "hang"])
def test_an_unknown_outcome_is_never_retried(make_app, twilio_api, survey_data, script):
    app = make_app(**twilio_api.settings(), SMS_RATE=1000, TWILIO_TIMEOUT=0.5)
    api = ApiClient.for_app(app)
    api.post("/api/v1/surveys", json=survey_data)
    created = api.post(
        "/api/v1/invitations",
        json={
            "survey": survey_data["key"],
            "channel": "sms",
            "contact": {"phone": PHONE},
        },
    ).json
    twilio_api.hang_seconds = 1.5
    twilio_api.script.append(script)
    with app.app_context():
        assert worker.run_once() == 1
    assert run_later(app, hours=24) == 0
    invitation, message = the_message(api, created["id"])
    assert message["status"] == "unknown"
    assert message["attempts"] == 1
    # Perhaps sent, perhaps not: the invitation claims neither.
    assert invitation["status"] == "unknown"
    assert len(twilio_api.requests) == 1


def test_a_send_lost_with_its_worker_becomes_unknown(sms_api, twilio_api):
    app, api, invitation_id = sms_api
    with app.app_context():
        message = db.session.scalar(sqlalchemy.select(Message))
        message.status = "sending"
        message.claimed_by = "gone:1"
        message.lease_until = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
        assert worker.run_once() == 0
    invitation, message = the_message(api, invitation_id)
    assert message["status"] == "unknown"
    assert invitation["status"] == "unknown"
    assert twilio_api.requests == []
