"""The responses feed: pages, the since filter, the cursor, and time offsets."""

import base64
import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from feedback.models import Response
from feedback.models import db
from tests.conftest import answer_page
from tests.conftest import assert_error
from tests.conftest import create_survey
from tests.conftest import set_columns
from tests.conftest import trigger_link

START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def answered(app, api):
    """Seven answers, changed one minute apart, in a known order."""
    create_survey(api)
    invitations = []
    for number in range(7):
        invitation = trigger_link(
            api,
            "post-stay-nps",
            f"guest-{number}",
            properties={"hotel": "berlin-mitte"},
        )
        assert answer_page(api.client, invitation["url"], number, f"c{number}")
        invitations.append(invitation)
    with app.app_context():
        ids = db.session.scalars(
            select(Response.id).order_by(Response.invitation_id)
        ).all()
    for number, response_id in enumerate(ids):
        stamp = START + timedelta(minutes=number)
        set_columns(app, Response, response_id, answered_at=stamp, updated_at=stamp)
    return invitations


def pages(api, query: str = "", limit: int = 3) -> list[list[dict]]:
    """Follow next_cursor to the end and return every page."""
    found = []
    cursor = None
    while True:
        url = f"/api/v1/responses?limit={limit}{query}"
        if cursor:
            url += f"&cursor={cursor}"
        result = api.get(url)
        assert result.status_code == 200, result.json
        found.append(result.json["items"])
        cursor = result.json["next_cursor"]
        if cursor is None:
            return found


def test_pages_cover_every_response_once(api, answered):
    found = pages(api, limit=3)

    assert [len(page) for page in found] == [3, 3, 1]
    items = [item for page in found for item in page]
    assert [item["comment"] for item in items] == [f"c{n}" for n in range(7)]
    assert [item["invitation_id"] for item in items] == [i["id"] for i in answered]
    assert len({item["id"] for item in items}) == 7


def test_a_page_has_the_response_fields(api, answered):
    item = api.get("/api/v1/responses?survey=post-stay-nps&limit=1").json["items"][0]

    assert item == {
        "id": item["id"],
        "survey": "post-stay-nps",
        "invitation_id": answered[0]["id"],
        "external_id": "guest-0",
        "score": 0,
        "comment": "c0",
        "channel": "web",
        "properties": {"hotel": "berlin-mitte"},
        "answered_at": "2024-03-01T12:00:00+00:00",
        "updated_at": "2024-03-01T12:00:00+00:00",
    }


def test_exact_page_size_ends_with_no_cursor(api, answered):
    result = api.get("/api/v1/responses?limit=7").json

    assert len(result["items"]) == 7
    assert result["next_cursor"] is None


def test_since_filters_by_updated_at(api, answered):
    since = (START + timedelta(minutes=4)).isoformat()

    result = api.get("/api/v1/responses", query_string={"since": since}).json

    assert [item["comment"] for item in result["items"]] == ["c4", "c5", "c6"]
    later = api.get(
        "/api/v1/responses", query_string={"since": "2024-03-01T13:06:00+01:00"}
    ).json
    assert [item["comment"] for item in later["items"]] == ["c6"]


def test_a_changed_answer_moves_after_the_cursor(app, api, answered):
    first = api.get("/api/v1/responses?limit=4").json
    assert [item["comment"] for item in first["items"]] == ["c0", "c1", "c2", "c3"]

    changed = answer_page(api.client, answered[1]["url"], 10, "changed")
    assert changed.status_code == 200

    rest = api.get(f"/api/v1/responses?limit=10&cursor={first['next_cursor']}").json
    assert [item["comment"] for item in rest["items"]] == ["c4", "c5", "c6", "changed"]
    moved = rest["items"][-1]
    assert moved["invitation_id"] == answered[1]["id"]
    assert moved["score"] == 10
    assert moved["answered_at"] == "2024-03-01T12:01:00+00:00"
    assert datetime.fromisoformat(moved["updated_at"]) > START + timedelta(days=1)


def cursor_of(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "e30",
        cursor_of(["2024-03-01T12:00:00", 1]),
        cursor_of(["2024-03-01T12:00:00+00:00", 10**30]),
        cursor_of(["2024-03-01T12:00:00+00:00", "1"]),
        cursor_of(["yesterday", 1]),
        cursor_of([1, 2]),
        cursor_of({"id": 1}),
        cursor_of(["2024-03-01T12:00:00+00:00", 1, 2]),
    ],
)
def test_garbage_cursor_is_400(api, answered, cursor):
    result = api.get(f"/api/v1/responses?cursor={cursor}")

    error = assert_error(result, 400, "bad_request")
    assert "cursor" in error["details"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=many", "limit"),
        ("since=2024-03-01T12:00:00", "since"),
        ("since=soon", "since"),
    ],
)
def test_bad_query_is_422(api, query, field):
    error = assert_error(api.get(f"/api/v1/responses?{query}"), 422, "invalid")

    assert list(error["details"]) == [field]


def test_unknown_survey_is_404(api):
    assert_error(api.get("/api/v1/responses?survey=nope"), 404, "not_found")


def test_every_time_has_an_explicit_offset(api, answered):
    items = api.get("/api/v1/responses").json["items"]
    invitation = api.get(f"/api/v1/invitations/{answered[0]['id']}").json
    survey = api.get("/api/v1/surveys/post-stay-nps").json

    stamps = [item[name] for item in items for name in ("answered_at", "updated_at")]
    stamps += [invitation[name] for name in ("send_at", "expires_at", "created_at")]
    stamps += [invitation["answered_at"], survey["created_at"], survey["updated_at"]]
    for stamp in stamps:
        assert stamp.endswith("+00:00"), stamp
        assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0)
