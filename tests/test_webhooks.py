"""Twilio webhooks: signed inbound texts (STOP, START, HELP, scores) and statuses."""

import pytest
import sqlalchemy
from twilio.request_validator import RequestValidator

from feedback.delivery import worker
from feedback.models import InboundMessage
from feedback.models import Suppression
from feedback.models import db
from tests.conftest import BASE_URL
from tests.conftest import ApiClient
from tests.servers import post_signed
from tests.servers import post_status

PHONE = "+447911123456"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


@pytest.fixture
def api(twilio_app):
    return ApiClient.for_app(twilio_app)


def inbound(client, body, sid="SM" + "1" * 32, sender=PHONE):
    params = {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
    }
    return post_signed(client, "/webhooks/twilio/sms", params)


def sent_sms_invitation(api, survey_data, twilio_app, phone=PHONE):
    api.post("/api/v1/surveys", json=survey_data)
    created = api.post(
        "/api/v1/invitations",
        json={
            "survey": survey_data["key"],
            "channel": "sms",
            "contact": {"phone": phone},
        },
    )
    assert created.status_code == 201, created.json
    with twilio_app.app_context():
        assert worker.run_once() == 1
    return api.get(f"/api/v1/invitations/{created.json['id']}").json


def suppressed(app, address=PHONE):
    with app.app_context():
        row = db.session.scalar(
            sqlalchemy.select(Suppression).where(Suppression.address == address)
        )
        return row.reason if row else None


def responses(api, survey_key):
    return api.get(f"/api/v1/responses?survey={survey_key}").json["items"]


@pytest.mark.parametrize(
    "word",
    [
        "STOP",
        " stop ",
        "StopAll",
        "UNSUBSCRIBE",
        "cancel",
        "End",
        "QUIT",
        "revoke",
        "optout\n",
    ],
)
def test_stop_words_record_an_opt_out(twilio_app, api, word):
    reply = inbound(api.client, word)
    assert reply.status_code == 200
    assert reply.mimetype == "application/xml"
    assert reply.text == EMPTY_TWIML
    assert suppressed(twilio_app) == "opted_out"


def test_stop_inside_a_sentence_is_not_an_opt_out(twilio_app, api):
    reply = inbound(api.client, "please stop")
    assert reply.status_code == 200
    assert suppressed(twilio_app) is None


@pytest.mark.parametrize("word", ["START", "yes", "Unstop"])
def test_start_words_lift_the_opt_out(twilio_app, api, word):
    inbound(api.client, "STOP", sid="SM" + "a" * 32)
    assert suppressed(twilio_app) == "opted_out"
    reply = inbound(api.client, word, sid="SM" + "b" * 32)
    assert reply.status_code == 200
    assert "<Message>" in reply.text
    assert suppressed(twilio_app) is None


def test_start_does_not_lift_an_invalid_number(twilio_app, api):
    api.post(
        "/api/v1/suppressions",
        json={"channel": "sms", "address": PHONE, "reason": "invalid_address"},
    )
    inbound(api.client, "START")
    assert suppressed(twilio_app) == "invalid_address"


@pytest.mark.parametrize("word", ["HELP", "info"])
def test_help_answers_in_twiml(twilio_app, api, word):
    reply = inbound(api.client, word)
    assert reply.status_code == 200
    assert reply.text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>')
    assert "<Message>" in reply.text and "STOP" in reply.text
    assert suppressed(twilio_app) is None


def test_a_score_reply_records_the_response(twilio_app, api, survey_data):
    invitation = sent_sms_invitation(api, survey_data, twilio_app)
    reply = inbound(api.client, "9 great stay")
    assert reply.status_code == 200
    assert "Thank you" in reply.text
    (response,) = responses(api, survey_data["key"])
    assert (response["score"], response["comment"], response["channel"]) == (
        9,
        "great stay",
        "sms",
    )
    assert response["invitation_id"] == invitation["id"]

    changed = inbound(api.client, " 10 ", sid="SM" + "2" * 32)
    assert changed.status_code == 200
    (response,) = responses(api, survey_data["key"])
    assert (response["score"], response["comment"]) == (10, None)


@pytest.mark.parametrize("text", ["55", "5a", "maybe", "-1", "9.5", ""])
def test_anything_else_gets_told_what_to_send(twilio_app, api, survey_data, text):
    sent_sms_invitation(api, survey_data, twilio_app)
    reply = inbound(api.client, text)
    assert reply.status_code == 200
    assert "one number from 0 to 10" in reply.text
    assert responses(api, survey_data["key"]) == []


def test_a_number_without_an_open_survey_is_told_so(twilio_app, api, survey_data):
    sent_sms_invitation(api, survey_data, twilio_app)
    reply = inbound(api.client, "9", sender="+447911654321")
    assert "no open survey" in reply.text
    assert responses(api, survey_data["key"]) == []


def test_the_same_message_sid_twice_records_once(twilio_app, api, survey_data):
    sent_sms_invitation(api, survey_data, twilio_app)
    sid = "SM" + "d" * 32
    assert inbound(api.client, "8", sid=sid).status_code == 200
    again = inbound(api.client, "3", sid=sid)
    assert again.status_code == 200
    assert again.text == EMPTY_TWIML
    (response,) = responses(api, survey_data["key"])
    assert response["score"] == 8
    with twilio_app.app_context():
        count = db.session.scalar(
            sqlalchemy.select(sqlalchemy.func.count(InboundMessage.id))
        )
    assert count == 1


def test_stop_cancels_a_pending_reminder(twilio_app, api, survey_data):
    survey_data["reminder_after_hours"] = 24
    invitation = sent_sms_invitation(api, survey_data, twilio_app)
    inbound(api.client, "STOP")
    after = api.get(f"/api/v1/invitations/{invitation['id']}").json
    assert [(m["purpose"], m["status"]) for m in after["messages"]] == [
        ("invitation", "queued"),
        ("reminder", "cancelled"),
    ]


def assert_refused(reply):
    assert reply.status_code == 403
    assert reply.json["error"]["code"] == "forbidden"
    assert set(reply.json["error"]) == {"code", "message", "details"}


def test_a_tampered_body_is_refused(twilio_app, api):
    params = {"MessageSid": "SM" + "e" * 32, "From": PHONE, "Body": "9"}
    reply = post_signed(
        api.client, "/webhooks/twilio/sms", params, tamper={"Body": "STOP"}
    )
    assert_refused(reply)
    assert suppressed(twilio_app) is None


def test_a_signature_for_the_internal_url_is_refused(twilio_app, api):
    params = {"MessageSid": "SM" + "e" * 32, "From": PHONE, "Body": "STOP"}
    # What Flask sees behind a proxy is not the URL Twilio signed.
    internal = "http://localhost/webhooks/twilio/sms"
    assert_refused(
        post_signed(api.client, "/webhooks/twilio/sms", params, url=internal)
    )
    assert_refused(
        post_signed(api.client, "/webhooks/twilio/sms", params, token="another-token")
    )
    assert_refused(api.client.post("/webhooks/twilio/sms", data=params))
    assert_refused(api.client.post("/webhooks/twilio/status", data=params))
    assert suppressed(twilio_app) is None


def test_without_an_auth_token_every_request_is_refused(make_app):
    app = make_app(TWILIO_AUTH_TOKEN="")
    client = app.test_client()
    params = {"MessageSid": "SM" + "e" * 32, "From": PHONE, "Body": "STOP"}
    signature = RequestValidator("").compute_signature(
        BASE_URL + "/webhooks/twilio/sms", params
    )
    reply = client.post(
        "/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
    )
    assert_refused(reply)


def test_signed_but_incomplete_forms_get_a_400(twilio_app, api):
    reply = post_signed(api.client, "/webhooks/twilio/sms", {"Body": "STOP"})
    assert reply.status_code == 400
    assert set(reply.json["error"]["details"]) == {"MessageSid", "From"}
    status = post_signed(
        api.client,
        "/webhooks/twilio/status",
        {"MessageSid": "SM1", "MessageStatus": "exploded"},
    )
    assert status.status_code == 422
    assert "MessageStatus" in status.json["error"]["details"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (
            "/webhooks/twilio/sms",
            {"MessageSid": "SM" + "9" * 80, "From": PHONE},
            "MessageSid",
        ),
        ("/webhooks/twilio/sms", {"MessageSid": "SM1", "From": "+44\x00"}, "From"),
        (
            "/webhooks/twilio/sms",
            {"MessageSid": "SM1", "From": PHONE, "Body": "x" * 2000},
            "Body",
        ),
        (
            "/webhooks/twilio/status",
            {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "3" * 40},
            "ErrorCode",
        ),
    ],
)
def test_signed_values_that_cannot_be_stored_get_a_400(
    twilio_app, api, path, params, field
):
    reply = post_signed(api.client, path, params)
    assert reply.status_code == 400
    assert field in reply.json["error"]["details"]
    with twilio_app.app_context():
        assert (
            db.session.scalar(
                sqlalchemy.select(sqlalchemy.func.count(InboundMessage.id))
            )
            == 0
        )


def test_sends_ask_for_status_callbacks(twilio_app, api, survey_data, twilio_api):
    sent_sms_invitation(api, survey_data, twilio_app)
    (request,) = twilio_api.requests
    assert request["form"]["StatusCallback"] == BASE_URL + "/webhooks/twilio/status"


def test_status_only_moves_forward(twilio_app, api, survey_data, twilio_api):
    invitation = sent_sms_invitation(api, survey_data, twilio_app)
    sid = twilio_api.sent[0]["sid"]
    for provider_status in ("sending", "sent", "delivered", "sent", "queued"):
        assert post_status(api.client, sid, provider_status).status_code == 204
    (message,) = api.get(f"/api/v1/invitations/{invitation['id']}").json["messages"]
    assert message["status"] == "delivered"
    assert [entry["status"] for entry in message["status_history"]] == [
        "pending",
        "sending",
        "queued",
        "sent",
        "delivered",
    ]


@pytest.mark.parametrize(
    ("final", "code", "listed"),
    [
        ("failed", "30006", "invalid_address"),
        ("undelivered", "30003", None),
        ("undelivered", "21610", "opted_out"),
    ],
)
def test_failures_keep_their_error_code(
    twilio_app, api, survey_data, twilio_api, final, code, listed
):
    invitation = sent_sms_invitation(api, survey_data, twilio_app)
    sid = twilio_api.sent[0]["sid"]
    assert post_status(api.client, sid, "sent").status_code == 204
    assert post_status(api.client, sid, final, code).status_code == 204
    assert post_status(api.client, sid, "sent").status_code == 204
    assert post_status(api.client, sid, "delivered").status_code == 204
    (message,) = api.get(f"/api/v1/invitations/{invitation['id']}").json["messages"]
    assert (message["status"], message["error_code"]) == (final, code)
    assert code in message["last_error"]
    assert suppressed(twilio_app) == listed


def test_status_of_an_unknown_message_and_a_signed_query(twilio_app, api):
    reply = post_status(api.client, "SM" + "f" * 32, "delivered", query="?attempt=2")
    assert reply.status_code == 204


def test_replies_speak_the_contacts_language(twilio_app, api, survey_data):
    api.post("/api/v1/surveys", json=survey_data)
    created = api.post(
        "/api/v1/invitations",
        json={
            "survey": survey_data["key"],
            "channel": "link",
            "contact": {"external_id": "gast-1", "phone": PHONE, "locale": "de-AT"},
        },
    )
    assert created.status_code == 201, created.json

    reply = inbound(api.client, "HELP")

    assert "Antworten Sie mit Ihrer Bewertung" in reply.text
    assert "STOP" in reply.text
