"""The responses feed: filters like scores, updated_since, cursor, CSV export."""

import csv
import io
from datetime import UTC
from datetime import datetime

from tests.conftest import make_survey


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_updated_since_picks_up_an_edited_answer(api, answer, change):
    make_survey(api, "stay")
    first = answer("stay", 3, at("2024-06-01T10:00:00"))
    answer("stay", 9, at("2024-06-01T11:00:00"))

    synced = api.get("/api/v1/responses?survey=stay").get_json()
    change(first, 10, at("2024-06-02T08:00:00"), comment="Changed my mind")
    later = api.get(
        "/api/v1/responses?updated_since=2024-06-01T12:00:00Z&survey=stay"
    ).get_json()

    assert [item["score"] for item in synced["items"]] == [3, 9]
    assert [(item["invitation_id"], item["score"]) for item in later["items"]] == [
        (first, 10)
    ]
    assert later["items"][0]["comment"] == "Changed my mind"
    assert later["items"][0]["answered_at"] == "2024-06-01T10:00:00+00:00"


def test_pages_with_an_opaque_cursor_in_change_order(api, answer):
    make_survey(api, "stay")
    for hour in range(5):
        answer("stay", hour, at(f"2024-06-01T1{hour}:00:00"))

    first = api.get("/api/v1/responses?limit=2").get_json()
    second = api.get(f"/api/v1/responses?limit=2&cursor={first['next_cursor']}")
    third = api.get(
        f"/api/v1/responses?limit=2&cursor={second.get_json()['next_cursor']}"
    ).get_json()

    assert [item["score"] for item in first["items"]] == [0, 1]
    assert [item["score"] for item in second.get_json()["items"]] == [2, 3]
    assert [item["score"] for item in third["items"]] == [4]
    assert third["next_cursor"] is None


def test_feed_filters_like_scores(api, answer):
    make_survey(api, "stay")
    make_survey(api, "desk", kind="csat")
    answer("stay", 10, at("2024-06-01T10:00:00"), {"hotel": "hamburg"})
    answer("stay", 0, at("2024-06-01T10:00:00"), {"hotel": "bonn"}, "sms")
    answer("stay", 7, at("2024-07-01T10:00:00"), {"hotel": "hamburg"})
    answer("desk", 5, at("2024-06-01T10:00:00"), {"hotel": "hamburg"})

    def scores_of(query):
        response = api.get(f"/api/v1/responses?{query}")
        assert response.status_code == 200, response.get_json()
        return sorted(item["score"] for item in response.get_json()["items"])

    assert scores_of("property.hotel=hamburg") == [5, 7, 10]
    assert scores_of("survey=stay&property.hotel=hamburg") == [7, 10]
    assert scores_of("survey=stay&from=2024-06-01&to=2024-07-01") == [0, 10]
    assert scores_of("channel=sms") == [0]
    assert scores_of("kind=csat") == [5]
    assert scores_of("touchpoint=post-stay") == [0, 5, 7, 10]


def test_feed_refuses_a_bad_cursor_and_bad_filters(api):
    make_survey(api, "stay")

    for query, status in [
        ("cursor=not-a-cursor", 400),
        ("updated_since=yesterday", 422),
        ("survey=nowhere", 404),
        ("tz=Nowhere/City", 422),
        ("limit=5000", 422),
    ]:
        response = api.get(f"/api/v1/responses?{query}")
        assert response.status_code == status, query
        assert set(response.get_json()["error"]) == {"code", "message", "details"}


def test_csv_streams_neutralised_cells_and_the_external_id_only(api, answer, change):
    make_survey(api, "stay")
    comments = [
        '=HYPERLINK("http://evil.example")',
        "+49 call me",
        "-2 for the breakfast",
        "@SUM(A1)",
        "\tindented",
        "\rreturn",
        'Très bien 👍, "merci"',
    ]
    for index, comment in enumerate(comments):
        invitation = answer(
            "stay",
            index,
            at(f"2024-06-01T1{index}:00:00"),
            {"hotel": "=cmd"},
            contact=f"ext-{index}",
        )
        change(invitation, index, at(f"2024-06-02T1{index}:00:00"), comment=comment)

    response = api.get("/api/v1/responses.csv?survey=stay")
    streamed = response.is_streamed
    text = response.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))

    assert response.status_code == 200
    assert streamed
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert rows[0] == [
        "id",
        "survey",
        "invitation_id",
        "external_id",
        "score",
        "comment",
        "channel",
        "properties",
        "answered_at",
        "updated_at",
    ]
    assert len(rows) == 1 + len(comments)
    assert [row[5] for row in rows[1:]] == [
        '\'=HYPERLINK("http://evil.example")',
        "'+49 call me",
        "'-2 for the breakfast",
        "'@SUM(A1)",
        "'\tindented",
        "'\rreturn",
        'Très bien 👍, "merci"',
    ]
    assert [row[3] for row in rows[1:]] == [f"ext-{i}" for i in range(len(comments))]
    assert rows[1][7] == '{"hotel": "=cmd"}'
    assert "example.com" not in text
    assert "+4915112345678" not in text


def test_csv_streams_more_than_one_page(api, answer, monkeypatch):
    from feedback.api import responses

    monkeypatch.setattr(responses, "CSV_PAGE", 2)
    make_survey(api, "stay")
    for minute in range(5):
        answer("stay", 8, at(f"2024-06-01T10:0{minute}:00"))

    rows = list(
        csv.reader(io.StringIO(api.get("/api/v1/responses.csv").get_data(as_text=True)))
    )

    assert len(rows) == 6
    assert len({row[0] for row in rows[1:]}) == 5
