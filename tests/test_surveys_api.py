"""Surveys over the API: create, list, show, change, and the errors on the way."""

import pytest

from tests.conftest import answer_page
from tests.conftest import assert_error
from tests.conftest import create_survey
from tests.conftest import trigger_link


def test_create_list_show(api, survey_data):
    created = api.post("/api/v1/surveys", json=survey_data)

    assert created.status_code == 201
    body = created.json
    for name, value in survey_data.items():
        assert body[name] == value
    assert body["locale"] == "en"
    assert body["link_ttl_days"] == 14
    assert body["created_at"].endswith("+00:00")

    create_survey(api, key="interview-csat", kind="csat", stage="onboarding")
    listed = api.get("/api/v1/surveys")
    assert listed.status_code == 200
    assert [item["key"] for item in listed.json["items"]] == [
        "interview-csat",
        "post-stay-nps",
    ]

    shown = api.get("/api/v1/surveys/post-stay-nps")
    assert shown.status_code == 200
    assert shown.json == body


def test_patch_changes_only_what_is_given(api, survey_data):
    survey_data.update(locale="de", follow_up="Warum?")
    api.post("/api/v1/surveys", json=survey_data)

    changed = api.patch(
        "/api/v1/surveys/post-stay-nps",
        json={"question": "Would you recommend us?", "link_ttl_days": 7},
    )

    assert changed.status_code == 200
    assert changed.json["question"] == "Would you recommend us?"
    assert changed.json["link_ttl_days"] == 7
    # Fields left out keep their values instead of falling back to defaults.
    assert changed.json["touchpoint"] == survey_data["touchpoint"]
    assert changed.json["locale"] == "de"
    assert changed.json["follow_up"] == "Warum?"
    again = api.get("/api/v1/surveys/post-stay-nps").json
    assert again["question"] == "Would you recommend us?"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "stars"}, "kind"),
        ({"stage": "delight"}, "stage"),
        ({"key": "Post Stay!"}, "key"),
        ({"key": "-post-stay"}, "key"),
        ({"key": "x" * 65}, "key"),
        ({"question": ""}, "question"),
        ({"touchpoint": "post stay"}, "touchpoint"),
        ({"locale": "english!"}, "locale"),
        ({"link_ttl_days": 0}, "link_ttl_days"),
        ({"link_ttl_days": "two weeks"}, "link_ttl_days"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_survey_is_422_with_details(api, survey_data, change, field):
    survey_data.update(change)

    result = api.post("/api/v1/surveys", json=survey_data)

    error = assert_error(result, 422, "invalid")
    assert list(error["details"]) == [field]
    assert field in error["message"]
    assert api.get("/api/v1/surveys").json["items"] == []


@pytest.mark.parametrize("missing", ["key", "kind", "question", "touchpoint", "stage"])
def test_missing_field_is_422(api, survey_data, missing):
    del survey_data[missing]

    error = assert_error(api.post("/api/v1/surveys", json=survey_data), 422, "invalid")

    assert error["details"] == {missing: ["Missing data for required field."]}


def test_duplicate_key_is_409(api, survey_data):
    assert api.post("/api/v1/surveys", json=survey_data).status_code == 201

    error = assert_error(api.post("/api/v1/surveys", json=survey_data), 409, "conflict")

    assert error["details"] == {"key": ["Already taken."]}
    assert len(api.get("/api/v1/surveys").json["items"]) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"key": "renamed"}, "key"),
        ({"kind": "stars"}, "kind"),
    ],
)
def test_invalid_patch_is_422(api, survey_data, change, field):
    api.post("/api/v1/surveys", json=survey_data)

    result = api.patch("/api/v1/surveys/post-stay-nps", json=change)

    error = assert_error(result, 422, "invalid")
    assert list(error["details"]) == [field]
    assert api.get("/api/v1/surveys/post-stay-nps").json["kind"] == "nps"


def test_unknown_survey_is_404(api):
    assert_error(api.get("/api/v1/surveys/nope"), 404, "not_found")
    assert_error(
        api.patch("/api/v1/surveys/nope", json={"question": "Why?"}), 404, "not_found"
    )


def test_kind_changes_before_responses(api, survey_data):
    api.post("/api/v1/surveys", json=survey_data)
    trigger_link(api, "post-stay-nps", "guest-1")

    changed = api.patch("/api/v1/surveys/post-stay-nps", json={"kind": "csat"})

    assert changed.status_code == 200
    assert changed.json["kind"] == "csat"


def test_kind_is_fixed_once_answered(api, survey_data):
    api.post("/api/v1/surveys", json=survey_data)
    invitation = trigger_link(api, "post-stay-nps", "guest-1")
    assert answer_page(api.client, invitation["url"], 9).status_code == 200

    refused = api.patch("/api/v1/surveys/post-stay-nps", json={"kind": "csat"})

    error = assert_error(refused, 409, "conflict")
    assert "kind" in error["details"]
    assert api.get("/api/v1/surveys/post-stay-nps").json["kind"] == "nps"
    # The same kind again, and other fields, still change.
    same = api.patch(
        "/api/v1/surveys/post-stay-nps", json={"kind": "nps", "locale": "de"}
    )
    assert same.status_code == 200
    assert same.json["locale"] == "de"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer fbk_not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
)
def test_api_key_is_required(client, api_key, headers, survey_data):
    for method, path in (
        ("get", "/api/v1/surveys"),
        ("post", "/api/v1/surveys"),
        ("get", "/api/v1/surveys/post-stay-nps"),
        ("get", "/api/v1/scores?survey=post-stay-nps"),
        ("get", "/api/v1/responses"),
        ("post", "/api/v1/invitations"),
        ("get", "/api/v1/invitations/1"),
    ):
        result = getattr(client, method)(path, headers=headers, json=survey_data)
        assert_error(result, 401, "unauthorized")

    authorised = client.get(
        "/api/v1/surveys", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert authorised.status_code == 200


def test_openapi_document_is_generated(client):
    result = client.get("/api/v1/openapi.json")

    assert result.status_code == 200
    document = result.json
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) >= {
        "/api/v1/surveys",
        "/api/v1/surveys/{key}",
        "/api/v1/invitations",
        "/api/v1/invitations/{invitation_id}",
        "/api/v1/scores",
        "/api/v1/responses",
    }
    schemas = document["components"]["schemas"]
    # The schema of a marshmallow class, with its fields and required list.
    survey = schemas["Survey"]
    assert set(survey["required"]) == {"key", "kind", "question", "touchpoint", "stage"}
    assert survey["properties"]["kind"]["enum"] == ["nps", "csat", "ces"]
    trigger = schemas["Trigger"]
    assert {"survey", "contact", "channel", "idempotency_key"} <= set(
        trigger["properties"]
    )
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == (
        "bearer"
    )
    post = document["paths"]["/api/v1/invitations"]["post"]
    assert {"200", "201", "422"} <= set(post["responses"])
