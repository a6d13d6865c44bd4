"""The whole loop over HTTP: trigger, deliver by email or SMS, answer, score."""

import base64
import re

import pytest

from feedback.delivery import worker
from tests.conftest import BASE_URL
from tests.conftest import ApiClient
from tests.conftest import answer_page
from tests.servers import ACCOUNT_SID
from tests.servers import AUTH_TOKEN
from tests.servers import TWILIO_FROM


def test_email_loop(make_app, smtp_server, survey_data):
    app = make_app(**smtp_server.settings())
    api = ApiClient.for_app(app)
    client = api.client

    assert api.post("/api/v1/surveys", json=survey_data).status_code == 201
    trigger = api.post(
        "/api/v1/invitations",
        json={
            "survey": survey_data["key"],
            "channel": "email",
            "contact": {
                "external_id": "guest-17",
                "name": "Zoë Müller",
                "email": "zoe@example.org",
            },
            "properties": {"hotel": "berlin-mitte", "room_type": "suite"},
        },
    )
    assert trigger.status_code == 201

    with app.app_context():
        assert worker.run_once() == 1
    (received,) = smtp_server.wait_for(1)
    assert received["to"] == ["zoe@example.org"]
    message = received["message"]
    assert message.is_multipart()
    assert message.get_content_type() == "multipart/alternative"
    types = [part.get_content_type() for part in message.iter_parts()]
    assert types == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    links = re.findall(re.escape(BASE_URL) + r"/s/[A-Za-z0-9]+", text)
    assert links == [trigger.json["url"]]
    assert "Zoë Müller" in str(message["To"])

    assert answer_page(client, links[0], 10, "Lovely breakfast").status_code == 200
    score = api.get(f"/api/v1/scores?survey={survey_data['key']}").json
    assert (score["n"], score["promoters"], score["score"]) == (1, 1, 100.0)
    feed = api.get(f"/api/v1/responses?survey={survey_data['key']}").json
    (response,) = feed["items"]
    assert response["external_id"] == "guest-17"
    assert response["comment"] == "Lovely breakfast"
    assert response["channel"] == "web"
    assert response["properties"] == {"hotel": "berlin-mitte", "room_type": "suite"}


def test_sms_loop(make_app, twilio_api, survey_data):
    app = make_app(**twilio_api.settings())
    api = ApiClient.for_app(app)
    client = api.client

    survey_data.update(
        key="interview-csat",
        kind="csat",
        touchpoint="post-interview",
        stage="onboarding",
    )
    assert api.post("/api/v1/surveys", json=survey_data).status_code == 201
    trigger = api.post(
        "/api/v1/invitations",
        json={
            "survey": "interview-csat",
            "channel": "sms",
            "contact": {
                "external_id": "cand-9",
                "phone": "030 1234567",
                "region": "DE",
            },
        },
    )
    assert trigger.status_code == 201, trigger.json
    assert trigger.json["contact"]["phone"] == "+49301234567"

    with app.app_context():
        assert worker.run_once() == 1
    (request,) = twilio_api.requests
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    expected_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request["authorization"] == f"Basic {expected_auth}"
    assert request["form"]["To"] == "+49301234567"
    assert request["form"]["From"] == TWILIO_FROM
    body = request["form"]["Body"]
    assert trigger.json["url"] in body
    assert len(body) <= 160 and body.isascii()

    invitation = api.get(f"/api/v1/invitations/{trigger.json['id']}").json
    (message,) = invitation["messages"]
    assert message["provider_id"] == twilio_api.sent[0]["sid"]
    assert message["status"] == "queued"
    assert invitation["status"] == "sent"

    assert answer_page(client, trigger.json["url"], 4).status_code == 200
    score = api.get("/api/v1/scores?survey=interview-csat").json
    assert (score["n"], score["satisfied"], score["score"]) == (1, 1, 100.0)


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_worker_sends_a_message_once(app, api, survey_data, channel, tmp_path):
    api.post("/api/v1/surveys", json=survey_data)
    api.post(
        "/api/v1/invitations",
        json={
            "survey": survey_data["key"],
            "channel": channel,
            "contact": {"email": "a@example.com", "phone": "+442079460000"},
        },
    )
    with app.app_context():
        assert worker.run_once() == 1
        assert worker.run_once() == 0
    files = list((tmp_path / "outbox").iterdir())
    assert len(files) == 1
