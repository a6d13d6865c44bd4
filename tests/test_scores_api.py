"""The scores endpoint over HTTP: periods, empty samples and errors."""

import itertools
from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import select

from feedback.models import Response
from feedback.models import db
from tests.conftest import answer_page
from tests.conftest import assert_error
from tests.conftest import create_survey
from tests.conftest import set_columns
from tests.conftest import trigger_link

GUESTS = itertools.count(1)


def answer(app, api, survey: str, score: int, answered_at=None) -> None:
    """Answer a new link invitation on the page, then move it to answered_at."""
    invitation = trigger_link(api, survey, f"guest-{next(GUESTS)}")
    assert answer_page(api.client, invitation["url"], score).status_code == 200
    if answered_at is not None:
        with app.app_context():
            response_id = db.session.scalar(
                select(Response.id).where(Response.invitation_id == invitation["id"])
            )
        set_columns(app, Response, response_id, answered_at=answered_at)


def test_nps_counts_promoters_passives_and_detractors(app, api):
    create_survey(api)
    for score in (9, 10, 10, 7, 8, 8, 0, 6):
        answer(app, api, "post-stay-nps", score)

    result = api.get("/api/v1/scores?survey=post-stay-nps")

    assert result.status_code == 200
    body = result.json
    assert body["metric"] == "nps"
    assert body["n"] == 8
    assert (body["promoters"], body["passives"], body["detractors"]) == (3, 3, 2)
    assert body["score"] == 12.5
    expected = {str(value): 0 for value in range(11)}
    expected.update({"0": 1, "6": 1, "7": 1, "8": 2, "9": 1, "10": 2})
    assert body["distribution"] == expected


def test_from_is_inclusive_and_to_exclusive(app, api):
    create_survey(api)
    answer(app, api, "post-stay-nps", 10, datetime(2024, 3, 1, 0, 0, 0, tzinfo=UTC))
    answer(
        app,
        api,
        "post-stay-nps",
        0,
        datetime(2024, 3, 31, 23, 59, 59, 999999, tzinfo=UTC),
    )
    answer(app, api, "post-stay-nps", 9, datetime(2024, 4, 1, 0, 0, 0, tzinfo=UTC))
    answer(
        app,
        api,
        "post-stay-nps",
        3,
        datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
    )

    march = api.get("/api/v1/scores?survey=post-stay-nps&from=2024-03-01&to=2024-04-01")
    assert march.status_code == 200
    body = march.json
    assert (body["n"], body["promoters"], body["detractors"]) == (2, 1, 1)
    assert body["score"] == 0.0
    assert body["distribution"]["10"] == 1 and body["distribution"]["0"] == 1
    assert body["from"] == "2024-03-01T00:00:00+00:00"
    assert body["to"] == "2024-04-01T00:00:00+00:00"

    # The same instant written with another offset selects the same answers.
    shifted = api.get(
        "/api/v1/scores",
        query_string={
            "survey": "post-stay-nps",
            "from": "2024-03-01T01:00:00+01:00",
            "to": "2024-04-01T00:00:00Z",
        },
    ).json
    assert shifted["n"] == 2

    april = api.get("/api/v1/scores?survey=post-stay-nps&from=2024-04-01").json
    assert (april["n"], april["score"]) == (1, 100.0)
    february = api.get("/api/v1/scores?survey=post-stay-nps&to=2024-03-01").json
    assert (february["n"], february["score"]) == (1, -100.0)


@pytest.mark.parametrize(
    ("kind", "scores", "score", "mean"),
    [
        # 4 and 5 of 1, 4, 5, 5: 75 %; mean 15 / 4 = 3.75 -> 3.8.
        ("csat", (1, 4, 5, 5), 75.0, 3.8),
        # (2 + 5 + 7) / 3 = 4.666... -> 4.7.
        ("ces", (2, 5, 7), 4.7, 4.7),
    ],
)
def test_csat_and_ces(app, api, kind, scores, score, mean):
    create_survey(api, key=f"visit-{kind}", kind=kind)
    for value in scores:
        answer(app, api, f"visit-{kind}", value)

    body = api.get(f"/api/v1/scores?survey=visit-{kind}").json

    assert body["metric"] == kind
    assert body["n"] == len(scores)
    assert body["score"] == score
    assert body["mean"] == mean


@pytest.mark.parametrize("kind", ["nps", "csat", "ces"])
def test_no_answers_gives_a_null_score(app, api, kind):
    create_survey(api, key="empty", kind=kind)

    result = api.get("/api/v1/scores?survey=empty")

    assert result.status_code == 200
    assert result.json["n"] == 0
    assert result.json["score"] is None
    assert set(result.json["distribution"].values()) == {0}


def test_an_empty_period_gives_a_null_score(app, api):
    create_survey(api)
    answer(app, api, "post-stay-nps", 10, datetime(2024, 5, 2, tzinfo=UTC))

    body = api.get("/api/v1/scores?survey=post-stay-nps&from=2024-06-01").json

    assert (body["n"], body["score"]) == (0, None)


def test_unknown_survey_is_404(api):
    error = assert_error(api.get("/api/v1/scores?survey=nope"), 404, "not_found")

    assert "nope" in error["message"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2024-02-30"}, "from"),
        ({"to": "2024-13-01"}, "to"),
        ({"from": "2024-03-01T09:00:00"}, "from"),
        ({"from": "2024-04-01", "to": "2024-03-01"}, "to"),
        ({"from": "2024-03-01", "to": "2024-03-01"}, "to"),
        ({"from": "9999-12-31T23:59:59-05:00"}, "from"),
        ({"to": "0001-01-01T00:00:00+05:00"}, "to"),
    ],
)
def test_bad_dates_are_422_naming_the_field(api, query, field):
    create_survey(api)

    result = api.get(
        "/api/v1/scores", query_string={"survey": "post-stay-nps", **query}
    )

    error = assert_error(result, 422, "invalid")
    assert list(error["details"]) == [field]
    assert error["message"].startswith("Invalid request.")
    assert f"{field}:" in error["message"]


def test_survey_is_required(api):
    error = assert_error(api.get("/api/v1/scores"), 422, "invalid")

    assert "survey" in error["details"]
