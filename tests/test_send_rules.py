"""Send rules in time: windows, throttling, reminders, opt-outs and cancelling."""

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import sqlalchemy

from feedback.delivery import worker
from feedback.models import Message
from feedback.models import db
from tests.conftest import BASE_URL
from tests.conftest import csrf_from
from tests.conftest import post_invitation
from tests.conftest import post_survey


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sent_files(tmp_path) -> list:
    folder = tmp_path / "outbox"
    return sorted(folder.iterdir()) if folder.exists() else []


def run(app, now=None) -> int:
    with app.app_context():
        return worker.run_once(now=now)


def message_rows(app, invitation_id):
    with app.app_context():
        rows = db.session.scalars(
            sqlalchemy.select(Message)
            .where(Message.invitation_id == invitation_id)
            .order_by(Message.id)
        ).all()
        db.session.expunge_all()
        return rows


def set_sent_at(app, invitation_id, when):
    with app.app_context():
        db.session.execute(
            sqlalchemy.update(Message)
            .where(Message.invitation_id == invitation_id)
            .values(sent_at=when)
        )
        db.session.commit()


def test_throttled_from_the_last_message_sent(app, api, survey_data, tmp_path):
    post_survey(api, survey_data)
    guest = {"external_id": "guest-1", "email": "guest1@example.com"}
    first = post_invitation(api, guest)
    assert run(app) == 1

    second = post_invitation(api, guest)
    assert (second["status"], second["suppression_reason"]) == (
        "suppressed",
        "throttled",
    )
    assert second["messages"] == []

    # The default is 30 days: 29 days after the send is too soon, 31 is not.
    now = datetime.now(UTC)
    set_sent_at(app, first["id"], now - timedelta(days=29, hours=23))
    assert post_invitation(api, guest)["status"] == "suppressed"
    set_sent_at(app, first["id"], now - timedelta(days=30, minutes=1))
    third = post_invitation(api, guest)
    assert (third["status"], third["suppression_reason"]) == ("scheduled", None)
    assert len(sent_files(tmp_path)) == 1


def test_an_unsent_invitation_does_not_throttle_but_is_checked_at_send(
    app, api, survey_data, tmp_path
):
    post_survey(api, survey_data)
    guest = {"external_id": "guest-2", "email": "guest2@example.com"}
    first = post_invitation(api, guest)
    second = post_invitation(api, guest)
    assert first["status"] == second["status"] == "scheduled"

    assert run(app) == 2
    assert len(sent_files(tmp_path)) == 1
    after = api.get(f"/api/v1/invitations/{second['id']}").json
    assert (after["status"], after["suppression_reason"]) == ("suppressed", "throttled")
    assert after["messages"][0]["status"] == "cancelled"
    assert api.get(f"/api/v1/invitations/{first['id']}").json["status"] == "sent"


@pytest.mark.parametrize(
    ("survey_days", "global_days", "days_ago", "throttled"),
    [
        (None, 7, 6, True),
        (None, 7, 8, False),
        (0, 30, 0, False),
        (90, 7, 60, True),
        (90, 7, 91, False),
        (None, 0, 0, False),
    ],
)
def test_throttle_days_per_survey_else_global(
    make_app, survey_data, survey_days, global_days, days_ago, throttled
):
    from tests.conftest import ApiClient

    app = make_app(THROTTLE_DAYS=global_days)
    api = ApiClient.for_app(app)
    post_survey(api, survey_data, throttle_days=survey_days)
    guest = {"external_id": "guest-3", "email": "guest3@example.com"}
    first = post_invitation(api, guest)
    assert run(app) == 1
    set_sent_at(app, first["id"], datetime.now(UTC) - timedelta(days=days_ago))
    second = post_invitation(api, guest)
    assert (second["status"] == "suppressed") is throttled


def test_a_message_due_before_the_window_waits_for_it(app, api, survey_data, tmp_path):
    post_survey(api, survey_data, timezone="Europe/Berlin")
    # 07:00 in Berlin in January: the window opens at 09:00 CET, 08:00 UTC.
    invitation = post_invitation(
        api, {"email": "early@example.com"}, send_at="2027-01-15T06:00:00Z"
    )
    (message,) = invitation["messages"]
    assert utc(message["due_at"][:19]) == utc("2027-01-15T08:00:00")

    assert run(app, now=utc("2027-01-15T07:59:00")) == 0
    assert run(app, now=utc("2027-01-15T08:00:00")) == 1
    assert len(sent_files(tmp_path)) == 1


def test_the_contact_time_zone_wins_over_the_survey(app, api, survey_data):
    post_survey(api, survey_data, timezone="Europe/Berlin")
    invitation = post_invitation(
        api,
        {"email": "ny@example.com", "timezone": "America/New_York"},
        send_at="2027-01-15T12:00:00Z",
    )
    # 07:00 EST; 09:00 EST is 14:00 UTC.
    assert invitation["messages"][0]["due_at"].startswith("2027-01-15T14:00:00")


def test_a_window_opening_across_the_spring_change(app, api, survey_data):
    post_survey(api, survey_data, timezone="Europe/Berlin")
    # Saturday 20:30 CET; the clocks go forward that night, so 09:00 CEST is 07:00.
    invitation = post_invitation(
        api, {"email": "dst@example.com"}, send_at="2027-03-27T19:30:00Z"
    )
    assert invitation["messages"][0]["due_at"].startswith("2027-03-28T07:00:00")


def test_a_worker_outside_the_window_defers_the_message(
    app, api, survey_data, tmp_path
):
    post_survey(api, survey_data, timezone="Europe/Berlin")
    invitation = post_invitation(
        api, {"email": "late@example.com"}, send_at="2027-01-15T18:00:00Z"
    )
    # The worker only gets to it at 20:30 Berlin time, after the window closed.
    assert run(app, now=utc("2027-01-15T19:30:00")) == 1
    assert sent_files(tmp_path) == []
    (message,) = message_rows(app, invitation["id"])
    assert message.status == "pending"
    assert message.due_at == utc("2027-01-16T08:00:00")
    assert message.status_history[-1]["waiting_until"].startswith("2027-01-16T08:00")

    assert run(app, now=utc("2027-01-16T07:59:00")) == 0
    assert run(app, now=utc("2027-01-16T08:00:00")) == 1
    assert len(sent_files(tmp_path)) == 1


def test_texts_wait_for_eight_even_when_the_window_opens_earlier(
    app, api, survey_data, tmp_path
):
    post_survey(
        api,
        survey_data,
        timezone="Asia/Tokyo",
        send_window_start="06:00",
        send_window_end="23:00",
    )
    contact = {"phone": "+819012345678", "email": "tokyo@example.com"}
    sms = post_invitation(api, contact, channel="sms", send_at="2027-01-15T21:30:00Z")
    # 06:30 in Tokyo: inside the survey's window, before 08:00 JST (23:00 UTC).
    assert sms["messages"][0]["due_at"].startswith("2027-01-15T23:00:00")


def first_and_reminder(app, invitation_id):
    first, reminder = message_rows(app, invitation_id)
    assert (first.purpose, reminder.purpose) == ("invitation", "reminder")
    return first, reminder


def test_a_reminder_goes_out_once_when_unanswered(app, api, survey_data, tmp_path):
    post_survey(api, survey_data, reminder_after_hours=48)
    invitation = post_invitation(api, {"email": "remind@example.com"})
    assert [m["purpose"] for m in invitation["messages"]] == ["invitation"]
    assert run(app) == 1

    first, reminder = first_and_reminder(app, invitation["id"])
    assert reminder.status == "pending"
    assert reminder.due_at == first.sent_at + timedelta(hours=48)
    assert reminder.to_address == "remind@example.com"

    assert run(app, now=first.sent_at + timedelta(hours=47, minutes=59)) == 0
    assert run(app, now=first.sent_at + timedelta(hours=48, minutes=1)) == 1
    files = sent_files(tmp_path)
    assert len(files) == 2
    assert b"Reminder" in files[1].read_bytes()
    assert run(app, now=first.sent_at + timedelta(days=6)) == 0
    assert len(message_rows(app, invitation["id"])) == 2


def answer(client, url, score):
    path = url.removeprefix(BASE_URL)
    page = client.get(path)
    return client.post(
        path, data={"score": str(score), "csrf_token": csrf_from(page.text)}
    )


def test_answering_cancels_the_reminder(app, api, survey_data, tmp_path):
    post_survey(api, survey_data, reminder_after_hours=24)
    invitation = post_invitation(api, {"email": "answers@example.com"})
    assert run(app) == 1
    assert answer(api.client, invitation["url"], 9).status_code == 200

    first, reminder = first_and_reminder(app, invitation["id"])
    assert reminder.status == "cancelled"
    assert reminder.status_history[-1]["reason"] == "answered"
    assert run(app, now=first.sent_at + timedelta(hours=25)) == 0
    assert len(sent_files(tmp_path)) == 1


@pytest.mark.parametrize("stop", ["expired", "opted_out"])
def test_a_reminder_is_checked_again_when_due(app, api, survey_data, tmp_path, stop):
    post_survey(api, survey_data, reminder_after_hours=48, link_ttl_days=1)
    invitation = post_invitation(api, {"email": "checked@example.com"})
    assert run(app) == 1
    first, _ = first_and_reminder(app, invitation["id"])
    now = first.sent_at + timedelta(hours=48, minutes=1)
    if stop == "opted_out":
        # A link that is still valid, so only the opt-out stops the reminder.
        now = first.sent_at + timedelta(hours=23)
        with app.app_context():
            db.session.execute(
                sqlalchemy.update(Message)
                .where(Message.purpose == "reminder")
                .values(due_at=now)
            )
            db.session.commit()
        added = api.post(
            "/api/v1/suppressions",
            json={"channel": "email", "address": "Checked@Example.com"},
        )
        assert added.status_code == 201, added.json

    assert run(app, now=now) == 1
    _, reminder = first_and_reminder(app, invitation["id"])
    assert reminder.status == "cancelled"
    assert reminder.status_history[-1]["reason"] == stop
    assert len(sent_files(tmp_path)) == 1


def test_delete_cancels_everything_pending(app, api, survey_data, tmp_path):
    post_survey(api, survey_data)
    invitation = post_invitation(api, {"email": "cancel@example.com"}, delay_minutes=60)
    deleted = api.delete(f"/api/v1/invitations/{invitation['id']}")
    assert deleted.status_code == 200
    assert deleted.json["status"] == "cancelled"
    assert [m["status"] for m in deleted.json["messages"]] == ["cancelled"]
    assert run(app, now=datetime.now(UTC) + timedelta(hours=2)) == 0
    assert sent_files(tmp_path) == []

    missing = api.delete("/api/v1/invitations/999999")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"


def test_an_opt_out_is_checked_at_send_and_outlives_the_contact(
    app, api, survey_data, tmp_path
):
    post_survey(api, survey_data)
    phone = "+447911123456"
    invitation = post_invitation(
        api, {"external_id": "c-1", "phone": phone}, channel="sms"
    )
    assert invitation["status"] == "scheduled"
    added = api.post("/api/v1/suppressions", json={"channel": "sms", "address": phone})
    assert added.status_code == 201

    assert run(app) == 1
    assert sent_files(tmp_path) == []
    after = api.get(f"/api/v1/invitations/{invitation['id']}").json
    assert (after["status"], after["suppression_reason"]) == ("suppressed", "opted_out")

    with app.app_context():
        for table in ("messages", "invitations", "contacts"):
            db.session.execute(sqlalchemy.text(f"DELETE FROM {table}"))
        db.session.commit()
    again = post_invitation(api, {"external_id": "c-2", "phone": phone}, channel="sms")
    assert (again["status"], again["suppression_reason"]) == ("suppressed", "opted_out")


def test_a_known_invalid_address_is_suppressed_at_trigger(app, api, survey_data):
    post_survey(api, survey_data)
    api.post(
        "/api/v1/suppressions",
        json={
            "channel": "email",
            "address": "gone@example.com",
            "reason": "invalid_address",
        },
    )
    invitation = post_invitation(api, {"email": "GONE@example.com"})
    assert (invitation["status"], invitation["suppression_reason"]) == (
        "suppressed",
        "invalid_address",
    )
    no_phone = post_invitation(api, {"email": "fine@example.com"}, channel="sms")
    assert no_phone["suppression_reason"] == "no_address_for_channel"
