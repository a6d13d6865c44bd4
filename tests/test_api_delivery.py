"""The API around delivery: invitation lists, suppressions, survey send rules."""

import pytest

from feedback.delivery import worker
from tests.conftest import assert_error
from tests.conftest import post_invitation
from tests.conftest import post_survey


def test_survey_send_rules_round_trip(api, survey_data):
    created = post_survey(
        api,
        survey_data,
        send_window_start="08:30",
        send_window_end="19:00",
        throttle_days=60,
        reminder_after_hours=72,
        timezone="Europe/Berlin",
    )
    assert (
        created["send_window_start"],
        created["send_window_end"],
        created["throttle_days"],
        created["reminder_after_hours"],
        created["timezone"],
    ) == ("08:30", "19:00", 60, 72, "Europe/Berlin")

    defaults = post_survey(api, {**survey_data, "key": "defaults"}, timezone=None)
    assert (defaults["send_window_start"], defaults["send_window_end"]) == (
        "09:00",
        "20:00",
    )
    assert defaults["throttle_days"] is None


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"send_window_start": "9am"}, "send_window_start"),
        ({"send_window_end": "24:00"}, "send_window_end"),
        ({"send_window_start": "20:00", "send_window_end": "09:00"}, "send_window_end"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"throttle_days": -1}, "throttle_days"),
        ({"reminder_after_hours": 0}, "reminder_after_hours"),
    ],
)
def test_bad_send_rules_are_refused(api, survey_data, rules, field):
    response = api.post("/api/v1/surveys", json={**survey_data, **rules})
    assert_error(response, 422)
    assert field in response.json["error"]["details"]


def test_a_patch_cannot_close_the_window_before_it_opens(api, survey_data):
    post_survey(api, survey_data)
    response = api.patch(
        f"/api/v1/surveys/{survey_data['key']}", json={"send_window_start": "21:00"}
    )
    assert_error(response, 422)
    assert "send_window_end" in response.json["error"]["details"]
    fine = api.patch(
        f"/api/v1/surveys/{survey_data['key']}", json={"send_window_start": "07:00"}
    )
    assert fine.status_code == 200
    assert fine.json["send_window_start"] == "07:00"


def test_invitations_list_by_status_survey_and_contact(app, api, survey_data):
    post_survey(api, survey_data)
    post_survey(api, {**survey_data, "key": "other"})
    sent = post_invitation(api, {"external_id": "a", "email": "a@example.com"})
    with app.app_context():
        assert worker.run_once() == 1
    throttled = post_invitation(api, {"external_id": "a"})
    later = post_invitation(
        api,
        {"external_id": "b", "email": "b@example.com"},
        "email",
        "other",
        delay_minutes=60,
    )
    linked = post_invitation(api, {"external_id": "c"}, "link")

    def ids(query=""):
        response = api.get("/api/v1/invitations" + query)
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["items"]]

    assert ids() == [linked["id"], later["id"], throttled["id"], sent["id"]]
    assert ids("?status=suppressed") == [throttled["id"]]
    assert ids("?status=sent") == [linked["id"], sent["id"]]
    assert ids("?status=scheduled") == [later["id"]]
    assert ids("?survey=other") == [later["id"]]
    assert ids("?contact=a") == [throttled["id"], sent["id"]]
    assert ids("?contact=a&status=sent") == [sent["id"]]
    assert ids("?contact=nobody") == []
    assert ids("?contact=b@example.com") == [later["id"]]

    page = api.get("/api/v1/invitations?limit=3").json
    assert len(page["items"]) == 3
    rest = api.get(f"/api/v1/invitations?limit=3&cursor={page['next_cursor']}").json
    assert [item["id"] for item in rest["items"]] == [sent["id"]]
    assert rest["next_cursor"] is None

    items = {item["id"]: item for item in api.get("/api/v1/invitations").json["items"]}
    assert items[throttled["id"]]["suppression_reason"] == "throttled"
    (message,) = items[sent["id"]]["messages"]
    assert message["attempts"] == 1
    assert message["provider_id"].startswith("outbox:")
    assert [entry["status"] for entry in message["status_history"]] == [
        "pending",
        "sending",
        "sent",
    ]
    assert "last_error" in message


@pytest.mark.parametrize(
    "query",
    [
        "?status=lost",
        "?limit=0",
        "?limit=5000",
        "?cursor=abc",
        "?cursor=99999999999",
        "?survey=missing",
    ],
)
def test_bad_invitation_queries_get_a_4xx(api, query):
    response = api.get("/api/v1/invitations" + query)
    assert 400 <= response.status_code < 500
    assert set(response.json["error"]) == {"code", "message", "details"}


def test_suppressions_are_listed_added_and_lifted(api):
    added = api.post(
        "/api/v1/suppressions", json={"channel": "email", "address": "Zoe@Example.org"}
    )
    assert added.status_code == 201
    assert (added.json["address"], added.json["reason"], added.json["source"]) == (
        "zoe@example.org",
        "opted_out",
        "api",
    )
    again = api.post(
        "/api/v1/suppressions", json={"channel": "email", "address": "zoe@example.org"}
    )
    assert again.status_code == 200
    api.post(
        "/api/v1/suppressions",
        json={
            "channel": "sms",
            "address": "+447911123456",
            "reason": "invalid_address",
        },
    )

    listed = api.get("/api/v1/suppressions").json
    assert [(item["channel"], item["address"]) for item in listed["items"]] == [
        ("sms", "+447911123456"),
        ("email", "zoe@example.org"),
    ]
    one = api.get("/api/v1/suppressions?channel=email&address=ZOE@example.org").json
    assert [item["address"] for item in one["items"]] == ["zoe@example.org"]

    lifted = api.delete("/api/v1/suppressions?channel=email&address=zoe@example.org")
    assert lifted.status_code == 204
    assert_error(
        api.delete("/api/v1/suppressions?channel=email&address=zoe@example.org"), 404
    )
    assert len(api.get("/api/v1/suppressions").json["items"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "email", "address": "not an address"},
        {"channel": "sms", "address": "0301234567"},
        {"channel": "fax", "address": "+447911123456"},
        {"channel": "email", "address": "a@example.org", "reason": "bored"},
        {"channel": "email"},
        {"channel": "email", "address": "a@example.org", "extra": 1},
    ],
)
def test_bad_suppressions_are_refused(api, body):
    assert_error(api.post("/api/v1/suppressions", json=body), 422)


def test_suppression_queries_need_what_they_name(api, client):
    assert_error(api.get("/api/v1/suppressions?address=a@example.org"), 422)
    assert_error(api.delete("/api/v1/suppressions?channel=email"), 422)
    assert_error(api.get("/api/v1/suppressions?cursor=99999999999"), 422)
    assert_error(api.delete("/api/v1/invitations/99999999999"), 404)
    assert_error(client.get("/api/v1/suppressions"), 401)
    broken = api.post("/api/v1/suppressions", data="{", content_type="application/json")
    assert 400 <= broken.status_code < 500
    assert set(broken.json["error"]) == {"code", "message", "details"}


def test_the_openapi_document_lists_the_delivery_endpoints(client):
    document = client.get("/api/v1/openapi.json").json
    assert {"get", "post", "delete"} <= set(document["paths"]["/api/v1/suppressions"])
    assert {"get", "post"} <= set(document["paths"]["/api/v1/invitations"])
    assert "delete" in document["paths"]["/api/v1/invitations/{invitation_id}"]
