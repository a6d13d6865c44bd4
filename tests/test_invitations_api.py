"""Triggering invitations: contacts, addresses, idempotency, timing and errors."""

import threading
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from sqlalchemy import func
from sqlalchemy import select

from feedback.models import Contact
from feedback.models import Invitation
from feedback.models import Message
from feedback.models import db
from tests.conftest import BASE_URL
from tests.conftest import ApiClient
from tests.conftest import assert_error
from tests.conftest import create_survey


@pytest.fixture
def survey(api):
    return create_survey(api)


def trigger(api, channel="email", headers=None, **fields):
    body = {
        "survey": "post-stay-nps",
        "channel": channel,
        "contact": {"external_id": "guest-1", "email": "guest@example.com"},
    }
    body.update(fields)
    return api.post("/api/v1/invitations", json=body, headers=headers)


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def parse(stamp: str) -> datetime:
    assert stamp.endswith("+00:00"), stamp
    return datetime.fromisoformat(stamp)


def test_email_trigger_answers_201_with_the_invitation(app, api, survey):
    before = datetime.now(UTC)

    result = trigger(api, properties={"hotel": "berlin-mitte", "room": 12})

    after = datetime.now(UTC)
    assert result.status_code == 201
    body = result.json
    assert body["status"] == "scheduled"
    assert body["url"].startswith(f"{BASE_URL}/s/")
    assert before <= parse(body["send_at"]) <= after
    assert parse(body["expires_at"]) - parse(body["send_at"]) == timedelta(days=14)
    assert body["properties"] == {"hotel": "berlin-mitte", "room": 12}
    (message,) = body["messages"]
    assert (message["channel"], message["status"]) == ("email", "pending")
    assert message["due_at"] == body["send_at"]
    assert count(app, Message) == 1


@pytest.mark.parametrize(
    ("email", "stored"),
    [
        ("Guest@Example.COM", "Guest@example.com"),
        ("zoe@exämple.de", "zoe@exämple.de"),
    ],
)
def test_email_is_validated_and_normalised(api, survey, email, stored):
    result = trigger(api, contact={"email": email})

    assert result.status_code == 201, result.json
    assert result.json["contact"]["email"] == stored


@pytest.mark.parametrize(
    "email",
    [
        "guest",
        "guest@",
        "@example.com",
        "guest@exa mple.com",
        "a@b@c.com",
        # SMTP servers without SMTPUTF8 cannot take it; refused up front, not later.
        "zoë@example.de",
    ],
)
def test_invalid_email_is_422(app, api, survey, email):
    result = trigger(api, contact={"external_id": "guest-1", "email": email})

    error = assert_error(result, 422, "invalid")
    assert "email" in error["details"]["contact"]
    assert "contact.email:" in error["message"]
    assert count(app, Invitation) == 0
    assert count(app, Contact) == 0


@pytest.mark.parametrize(
    ("phone", "region", "stored"),
    [
        ("+49 30 1234567", None, "+49301234567"),
        ("030 1234567", "DE", "+49301234567"),
        ("020 7946 0000", "gb", "+442079460000"),
        ("+1 (201) 555-0123", None, "+12015550123"),
    ],
)
def test_phone_is_normalised_to_e164(api, survey, phone, region, stored):
    contact = {"external_id": "guest-1", "phone": phone}
    if region:
        contact["region"] = region

    result = trigger(api, "sms", contact=contact)

    assert result.status_code == 201, result.json
    assert result.json["contact"]["phone"] == stored
    assert result.json["messages"][0]["channel"] == "sms"


def test_national_number_without_region_says_so(app, api, survey):
    result = trigger(api, "sms", contact={"phone": "030 1234567"})

    error = assert_error(result, 422, "invalid")
    (problem,) = error["details"]["contact"]["phone"]
    assert "national number" in problem
    assert "region" in problem
    assert f"contact.phone: {problem}" in error["message"]
    assert count(app, Contact) == 0


@pytest.mark.parametrize(
    ("phone", "region"),
    [("+49 12", None), ("12345", "DE"), ("call me", "DE"), ("+999 1234567", None)],
)
def test_invalid_phone_is_422(app, api, survey, phone, region):
    contact = {"phone": phone, "region": region}

    error = assert_error(trigger(api, "sms", contact=contact), 422, "invalid")

    assert "phone" in error["details"]["contact"]
    assert count(app, Invitation) == 0


def test_contact_needs_an_identity(api, survey):
    result = trigger(api, contact={"name": "Zoë"})

    error = assert_error(result, 422, "invalid")
    assert "contact" in error["details"]


def test_contact_is_upserted_by_external_id(app, api, survey):
    trigger(api, contact={"external_id": "guest-1", "email": "old@example.com"})
    second = trigger(
        api,
        contact={"external_id": "guest-1", "email": "new@example.com", "name": "Zoë"},
    )

    assert second.json["contact"]["email"] == "new@example.com"
    assert count(app, Contact) == 1
    with app.app_context():
        contact = db.session.scalar(select(Contact))
        assert (contact.email, contact.name) == ("new@example.com", "Zoë")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"email": "guest@example.com"}, {"email": "guest@example.com"}),
        ({"phone": "+442079460000"}, {"phone": "020 7946 0000", "region": "GB"}),
        (
            {"email": "guest@example.com"},
            {"email": "guest@example.com", "phone": "+442079460000"},
        ),
    ],
)
def test_contact_is_upserted_by_email_or_phone(app, api, survey, first, second):
    one = trigger(api, "link", contact=first)
    two = trigger(api, "link", contact=second)

    assert (one.status_code, two.status_code) == (201, 201)
    assert count(app, Contact) == 1
    assert count(app, Invitation) == 2


def test_same_key_and_body_replays_the_invitation(app, api, survey):
    first = trigger(api, idempotency_key="stay-881")
    second = trigger(api, idempotency_key="stay-881")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json["id"] == first.json["id"]
    assert second.json["url"] == first.json["url"]
    assert count(app, Invitation) == 1
    assert count(app, Message) == 1


def test_same_key_with_another_body_is_409(app, api, survey):
    trigger(api, idempotency_key="stay-881")

    result = trigger(api, idempotency_key="stay-881", properties={"hotel": "other"})

    error = assert_error(result, 409, "conflict")
    assert error["details"]["idempotency_key"] == "stay-881"
    assert count(app, Invitation) == 1
    assert count(app, Message) == 1


def test_idempotency_key_header(app, api, survey):
    headers = {"Idempotency-Key": "stay-882"}
    first = trigger(api, headers=headers)
    second = trigger(api, headers=headers)
    body_key = trigger(api, idempotency_key="stay-882")
    changed = trigger(api, headers=headers, channel="link")

    assert (first.status_code, second.status_code, body_key.status_code) == (
        201,
        200,
        200,
    )
    assert second.json["id"] == first.json["id"] == body_key.json["id"]
    assert_error(changed, 409, "conflict")
    assert count(app, Message) == 1


def test_header_and_body_keys_must_agree(app, api, survey):
    result = trigger(api, headers={"Idempotency-Key": "a"}, idempotency_key="b")

    error = assert_error(result, 422, "invalid")
    assert "idempotency_key" in error["details"]
    assert count(app, Invitation) == 0


def test_racing_triggers_with_one_key_make_one_invitation(app, api, survey):
    key = api.headers["Authorization"].removeprefix("Bearer ")
    # Each thread has its own client, so each request has its own app context.
    clients = [ApiClient(app.test_client(), key) for _ in range(2)]
    barrier = threading.Barrier(len(clients))
    results = [None] * len(clients)

    def run(index):
        barrier.wait()
        results[index] = trigger(
            clients[index],
            contact={"external_id": "guest-race", "email": "race@example.com"},
            idempotency_key="stay-race",
        )

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(result.status_code for result in results) == [200, 201]
    assert results[0].json["id"] == results[1].json["id"]
    assert count(app, Invitation) == 1
    assert count(app, Message) == 1
    assert count(app, Contact) == 1


def test_link_channel_sends_nothing(app, api, survey):
    result = trigger(api, "link")

    assert result.status_code == 201
    assert result.json["status"] == "sent"
    assert result.json["messages"] == []
    assert count(app, Message) == 0


@pytest.mark.parametrize(
    ("channel", "contact"),
    [
        ("email", {"external_id": "guest-1", "phone": "+442079460000"}),
        ("sms", {"external_id": "guest-1", "email": "guest@example.com"}),
    ],
)
def test_channel_without_address_is_suppressed(app, api, survey, channel, contact):
    result = trigger(api, channel, contact=contact)

    assert result.status_code == 201
    assert result.json["status"] == "suppressed"
    assert result.json["suppression_reason"] == "no_address_for_channel"
    assert result.json["messages"] == []
    assert count(app, Message) == 0


def test_delay_minutes_schedules_the_message(api, survey):
    before = datetime.now(UTC)

    result = trigger(api, delay_minutes=90)

    after = datetime.now(UTC)
    send_at = parse(result.json["send_at"])
    assert before + timedelta(minutes=90) <= send_at <= after + timedelta(minutes=90)
    assert result.json["messages"][0]["due_at"] == result.json["send_at"]
    assert parse(result.json["expires_at"]) == send_at + timedelta(days=14)


def test_send_at_is_kept_in_utc(api, survey):
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    berlin = later.astimezone(timezone(timedelta(hours=2)))
    assert berlin.isoformat().endswith("+02:00")

    result = trigger(api, send_at=berlin.isoformat())

    assert result.status_code == 201, result.json
    assert result.json["send_at"] == later.isoformat()
    assert result.json["expires_at"] == (later + timedelta(days=14)).isoformat()
    assert result.json["messages"][0]["due_at"] == later.isoformat()


def test_send_at_in_the_past_sends_now(api, survey):
    before = datetime.now(UTC)

    result = trigger(api, send_at="2020-01-01T00:00:00+00:00")

    assert result.status_code == 201
    assert parse(result.json["send_at"]) >= before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"send_at": "2030-05-01T09:30:00"}, "send_at"),
        ({"send_at": "next tuesday"}, "send_at"),
        ({"send_at": "9999-12-31T23:00:00+00:00"}, "send_at"),
        ({"send_at": "9999-12-31T23:00:00-05:00"}, "send_at"),
        ({"send_at": "2030-05-01T09:30:00+00:00", "delay_minutes": 5}, "send_at"),
        ({"delay_minutes": -1}, "delay_minutes"),
        ({"delay_minutes": "soon"}, "delay_minutes"),
        ({"channel": "fax"}, "channel"),
        ({"survey": "nope"}, "survey"),
        ({"colour": "blue"}, "colour"),
        ({"properties": {"hotel": {"nested": True}}}, "properties"),
    ],
)
def test_invalid_trigger_is_422(app, api, survey, fields, field):
    error = assert_error(trigger(api, **fields), 422, "invalid")

    assert field in error["details"]
    assert field in error["message"]
    assert count(app, Invitation) == 0
    assert count(app, Contact) == 0


def test_show_invitation_with_messages(app, api, survey):
    created = trigger(api).json

    shown = api.get(f"/api/v1/invitations/{created['id']}")

    assert shown.status_code == 200
    assert shown.json["id"] == created["id"]
    assert shown.json["url"] == created["url"]
    assert shown.json["survey"] == "post-stay-nps"
    (message,) = shown.json["messages"]
    assert message["status"] == "pending"
    assert message["status_history"][0]["status"] == "pending"


def test_unknown_invitation_is_404(api):
    assert_error(api.get("/api/v1/invitations/999"), 404, "not_found")
    assert_error(api.get("/api/v1/invitations/abc"), 404, "not_found")
    assert_error(api.get(f"/api/v1/invitations/{10**30}"), 404, "not_found")
    assert_error(api.get(f"/api/v1/invitations/{2**31}"), 404, "not_found")


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("", "application/json", 422),
        ("survey=post-stay-nps", "application/x-www-form-urlencoded", 415),
        ("survey", "text/plain", 415),
        ('{"survey": 1, "survey": 2}', "application/json", 400),
        ('{"survey": NaN}', "application/json", 400),
        (
            '{"survey": "post-stay-nps", "properties": {"a": 1e400}}',
            "application/json",
            400,
        ),
        (
            '{"survey": "post-stay-nps", "properties": {"a": -1e309}}',
            "application/json",
            400,
        ),
        ("[" * 100_000 + "]" * 100_000, "application/json", 400),
        ('{"delay_minutes": ' + "9" * 5000 + "}", "application/json", 400),
        ("[1, 2]", "application/json", 422),
        ("null", "application/json", 422),
        ('"text"', "application/json", 422),
    ],
)
def test_malformed_body_is_a_json_4xx(app, api, survey, data, content_type, status):
    result = api.post("/api/v1/invitations", data=data, content_type=content_type)

    codes = {400: "bad_request", 415: "unsupported_media_type", 422: "invalid"}
    error = assert_error(result, status, codes[status])
    assert error["details"]
    assert count(app, Invitation) == 0


def test_links_ignore_the_host_header(api, survey):
    result = api.post(
        "/api/v1/invitations",
        json={
            "survey": "post-stay-nps",
            "channel": "link",
            "contact": {"external_id": "guest-1"},
        },
        base_url="http://attacker.example",
        headers={"Host": "attacker.example", "X-Forwarded-Host": "attacker.example"},
    )

    assert result.status_code == 201
    assert result.json["url"].startswith(f"{BASE_URL}/s/")
    assert "attacker" not in result.json["url"]


def test_naive_send_at_says_what_is_missing(api, survey):
    result = trigger(api, send_at="2030-05-01T09:30:00")

    error = assert_error(result, 422, "invalid")
    (problem,) = error["details"]["send_at"]
    assert "offset" in problem
