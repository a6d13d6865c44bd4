"""Scores in a time zone: series, groups, comparison, hourly counts, errors."""

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest

from feedback import scores
from tests.conftest import make_survey


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def get_scores(api, **params):
    response = api.get("/api/v1/scores", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_daily_series_with_an_empty_day_and_totals_from_all_answers(api, answer):
    make_survey(api, "stay")
    for score in (10, 10, 3):
        answer("stay", score, at("2024-03-04T10:00:00"))
    answer("stay", 9, at("2024-03-06T18:00:00"))

    body = get_scores(
        api, survey="stay", **{"from": "2024-03-04"}, to="2024-03-07", interval="day"
    )

    assert [(b["n"], b["score"]) for b in body["series"]] == [
        (3, 33.3),
        (0, None),
        (1, 100.0),
    ]
    assert body["series"][1]["margin_of_error"] is None
    assert body["series"][1]["distribution"]["10"] == 0
    assert (body["n"], body["score"]) == (4, 50.0)
    assert (body["promoters"], body["passives"], body["detractors"]) == (3, 0, 1)
    assert body["series"][0]["start"] == "2024-03-04T00:00:00+00:00"


def test_csat_and_ces_through_the_endpoint(api, answer):
    make_survey(api, "desk", kind="csat")
    make_survey(api, "checkin", kind="ces")
    for score in (5, 2, 1):
        answer("desk", score, at("2024-05-01T09:00:00"))
    for score in (1, 2):
        answer("checkin", score, at("2024-05-01T09:00:00"))

    assert get_scores(api, survey="desk")["score"] == 33.3
    assert get_scores(api, survey="desk")["satisfied"] == 1
    assert get_scores(api, survey="checkin")["score"] == 1.5


def test_days_across_los_angeles_spring_forward_have_23_hours(api, answer):
    make_survey(api, "stay")
    answer("stay", 10, at("2024-03-10T07:59:00"))  # Sat 23:59 PST
    answer("stay", 9, at("2024-03-11T06:30:00"))  # Sun 23:30 PDT
    answer("stay", 0, at("2024-03-11T07:30:00"))  # Mon 00:30 PDT

    body = get_scores(
        api,
        survey="stay",
        tz="America/Los_Angeles",
        **{"from": "2024-03-09"},
        to="2024-03-12",
        interval="day",
    )

    assert [(b["from"], b["to"], b["n"]) for b in body["series"]] == [
        ("2024-03-09T00:00:00-08:00", "2024-03-10T00:00:00-08:00", 1),
        ("2024-03-10T00:00:00-08:00", "2024-03-11T00:00:00-07:00", 1),
        ("2024-03-11T00:00:00-07:00", "2024-03-12T00:00:00-07:00", 1),
    ]
    assert [b["score"] for b in body["series"]] == [100.0, 100.0, -100.0]


def test_days_across_berlin_changes_have_23_and_25_hours(api, answer):
    make_survey(api, "stay")
    answer("stay", 10, at("2024-03-31T21:30:00"))  # Sun 23:30 CEST
    answer("stay", 0, at("2024-03-31T22:30:00"))  # Mon 00:30 CEST
    answer("stay", 10, at("2024-10-26T21:30:00"))  # Sat 23:30 CEST
    answer("stay", 9, at("2024-10-26T22:30:00"))  # Sun 00:30 CEST
    answer("stay", 8, at("2024-10-27T22:30:00"))  # Sun 23:30 CET

    spring = get_scores(
        api,
        survey="stay",
        tz="Europe/Berlin",
        **{"from": "2024-03-31"},
        to="2024-04-02",
        interval="day",
    )
    autumn = get_scores(
        api,
        survey="stay",
        tz="Europe/Berlin",
        **{"from": "2024-10-26"},
        to="2024-10-28",
        interval="day",
    )

    assert [(b["from"], b["n"]) for b in spring["series"]] == [
        ("2024-03-31T00:00:00+01:00", 1),
        ("2024-04-01T00:00:00+02:00", 1),
    ]
    assert [(b["from"], b["to"], b["n"]) for b in autumn["series"]] == [
        ("2024-10-26T00:00:00+02:00", "2024-10-27T00:00:00+02:00", 1),
        ("2024-10-27T00:00:00+02:00", "2024-10-28T00:00:00+01:00", 2),
    ]


def test_sunday_evening_in_los_angeles_belongs_to_that_week(api, answer):
    make_survey(api, "stay")
    answer("stay", 10, at("2024-03-11T03:00:00"))  # Sun 20:00 PDT, Mon in UTC
    answer("stay", 3, at("2024-11-04T04:00:00"))  # Sun 20:00 PST, after fall back

    def weeks(tz, start, end):
        body = get_scores(
            api, survey="stay", tz=tz, **{"from": start}, to=end, interval="week"
        )
        return [(b["start"], b["n"]) for b in body["series"]]

    assert weeks("America/Los_Angeles", "2024-03-04", "2024-03-18") == [
        ("2024-03-04T00:00:00-08:00", 1),
        ("2024-03-11T00:00:00-07:00", 0),
    ]
    assert weeks("UTC", "2024-03-04", "2024-03-18") == [
        ("2024-03-04T00:00:00+00:00", 0),
        ("2024-03-11T00:00:00+00:00", 1),
    ]
    assert weeks("America/Los_Angeles", "2024-10-28", "2024-11-11") == [
        ("2024-10-28T00:00:00-07:00", 1),
        ("2024-11-04T00:00:00-08:00", 0),
    ]


def test_berlin_weeks_across_the_clock_changes(api, answer):
    make_survey(api, "stay")
    answer("stay", 10, at("2024-03-31T21:30:00"))  # Sun 23:30 CEST
    answer("stay", 0, at("2024-10-27T22:30:00"))  # Sun 23:30 CET

    body = get_scores(
        api,
        survey="stay",
        tz="Europe/Berlin",
        **{"from": "2024-03-25"},
        to="2024-04-08",
        interval="week",
    )
    autumn = get_scores(
        api,
        survey="stay",
        tz="Europe/Berlin",
        **{"from": "2024-10-21"},
        to="2024-11-04",
        interval="week",
    )

    assert [(b["start"], b["n"]) for b in body["series"]] == [
        ("2024-03-25T00:00:00+01:00", 1),
        ("2024-04-01T00:00:00+02:00", 0),
    ]
    assert [(b["start"], b["to"], b["n"]) for b in autumn["series"]] == [
        ("2024-10-21T00:00:00+02:00", "2024-10-28T00:00:00+01:00", 1),
        ("2024-10-28T00:00:00+01:00", "2024-11-04T00:00:00+01:00", 0),
    ]


def test_the_week_of_new_year_starts_on_monday_2020_12_28(api, answer):
    make_survey(api, "stay")
    answer("stay", 10, at("2020-12-30T12:00:00"))
    answer("stay", 0, at("2021-01-02T12:00:00"))
    answer("stay", 9, at("2021-01-05T12:00:00"))

    spanning = get_scores(
        api, survey="stay", **{"from": "2020-12-28"}, to="2021-01-11", interval="week"
    )
    clipped = get_scores(
        api, survey="stay", **{"from": "2021-01-01"}, to="2021-01-11", interval="week"
    )
    months = get_scores(
        api, survey="stay", **{"from": "2020-12-15"}, to="2021-02-01", interval="month"
    )

    assert [(b["start"], b["n"]) for b in spanning["series"]] == [
        ("2020-12-28T00:00:00+00:00", 2),
        ("2021-01-04T00:00:00+00:00", 1),
    ]
    first = clipped["series"][0]
    assert (first["start"], first["from"], first["n"]) == (
        "2020-12-28T00:00:00+00:00",
        "2021-01-01T00:00:00+00:00",
        1,
    )
    assert [(b["start"], b["n"]) for b in months["series"]] == [
        ("2020-12-01T00:00:00+00:00", 1),
        ("2021-01-01T00:00:00+00:00", 2),
    ]


def test_groups_by_property_with_a_missing_value_and_a_limit(api, answer):
    make_survey(api, "stay", segments=["hotel"])
    answer("stay", 10, at("2024-06-01T10:00:00"), {"hotel": "berlin-mitte"})
    answer("stay", 9, at("2024-06-01T11:00:00"), {"hotel": "berlin-mitte"})
    answer("stay", 2, at("2024-06-02T10:00:00"), {"hotel": "hamburg"})
    answer("stay", 8, at("2024-06-02T10:00:00"), {})

    body = get_scores(api, survey="stay", group_by="property.hotel")
    limited = get_scores(api, survey="stay", group_by="property.hotel", limit=2)

    assert [(g["value"], g["n"], g["score"]) for g in body["groups"]] == [
        ("berlin-mitte", 2, 100.0),
        ("hamburg", 1, -100.0),
        (None, 1, 0.0),
    ]
    assert [g["value"] for g in limited["groups"]] == ["berlin-mitte", "hamburg"]
    assert limited["n"] == 4


def test_property_filters_with_several_values_and_channel(api, answer):
    make_survey(api, "stay")
    answer("stay", 10, at("2024-06-01T10:00:00"), {"hotel": "berlin-mitte"})
    answer("stay", 0, at("2024-06-01T10:00:00"), {"hotel": "hamburg"}, "sms")
    answer("stay", 0, at("2024-06-01T10:00:00"), {"hotel": "munich"})

    both = api.get(
        "/api/v1/scores?survey=stay&property.hotel=berlin-mitte&property.hotel=hamburg"
    ).get_json()
    sms = get_scores(api, survey="stay", channel="sms")

    assert (both["n"], both["score"]) == (2, 0.0)
    assert (sms["n"], sms["detractors"]) == (1, 1)


def test_groups_by_survey_touchpoint_channel_and_series_per_group(api, answer):
    make_survey(api, "stay")
    make_survey(api, "viewing", touchpoint="post-viewing")
    answer("stay", 10, at("2024-06-03T10:00:00"), channel="sms")
    answer("stay", 10, at("2024-06-04T10:00:00"))
    answer("viewing", 0, at("2024-06-11T10:00:00"))

    body = get_scores(
        api,
        kind="nps",
        group_by="touchpoint",
        interval="week",
        **{"from": "2024-06-03"},
        to="2024-06-17",
    )
    channels = get_scores(api, survey="stay,viewing", group_by="channel")

    groups = {g["value"]: g for g in body["groups"]}
    assert [b["n"] for b in groups["post-stay"]["series"]] == [2, 0]
    assert [b["n"] for b in groups["post-viewing"]["series"]] == [0, 1]
    assert [b["n"] for b in body["series"]] == [2, 1]
    assert (body["n"], body["score"]) == (3, 33.3)
    assert [(g["value"], g["n"]) for g in channels["groups"]] == [
        ("web", 2),
        ("sms", 1),
    ]


def test_compare_with_the_previous_period(api, answer):
    make_survey(api, "stay")
    for score in [10] * 8 + [0] * 2:
        answer("stay", score, at("2024-06-10T10:00:00"))
    for score in [10] * 2 + [0] * 8:
        answer("stay", score, at("2024-06-05T10:00:00"))

    body = get_scores(
        api,
        survey="stay",
        **{"from": "2024-06-08"},
        to="2024-06-15",
        compare="previous",
    )

    assert body["score"] == 60.0
    assert body["previous"]["score"] == -60.0
    assert body["previous"]["from"] == "2024-06-01T00:00:00+00:00"
    assert body["previous"]["to"] == "2024-06-08T00:00:00+00:00"
    assert body["delta"] == 120.0
    assert body["significant"] is True


def test_the_previous_period_of_whole_days_starts_at_local_midnight(api, answer):
    make_survey(api, "stay")
    # Berlin moves to summer time on 31 March: April's 30 days are 719 hours long.
    answer("stay", 10, at("2024-03-01T23:30:00"))
    answer("stay", 0, at("2024-03-01T22:30:00"))

    body = get_scores(
        api,
        survey="stay",
        tz="Europe/Berlin",
        **{"from": "2024-04-01"},
        to="2024-05-01",
        compare="previous",
    )

    assert body["previous"]["from"] == "2024-03-02T00:00:00+01:00"
    assert body["previous"]["to"] == "2024-04-01T00:00:00+02:00"
    # 1 March 23:30 UTC is 2 March 00:30 in Berlin, inside; 22:30 UTC is not.
    assert (body["previous"]["n"], body["previous"]["score"]) == (1, 100.0)


def test_the_previous_period_of_a_time_range_has_the_same_length(api, answer):
    make_survey(api, "stay")

    body = get_scores(
        api,
        survey="stay",
        tz="Europe/Berlin",
        **{"from": "2024-04-01T09:30:00+02:00"},
        to="2024-04-01T12:00:00+02:00",
        compare="previous",
    )

    assert body["previous"]["from"] == "2024-04-01T07:00:00+02:00"
    assert body["previous"]["to"] == "2024-04-01T09:30:00+02:00"


def test_compare_not_significant(api, answer):
    make_survey(api, "stay")
    for score in [10] * 6 + [0] * 4:
        answer("stay", score, at("2024-06-10T10:00:00"))
    for score in [10] * 4 + [0] * 6:
        answer("stay", score, at("2024-06-05T10:00:00"))

    body = get_scores(
        api,
        survey="stay",
        **{"from": "2024-06-08"},
        to="2024-06-15",
        compare="previous",
    )

    assert (body["delta"], body["significant"]) == (40.0, False)


def test_response_rate_counts_invitations_sent_in_the_range(api, answer, app):
    from feedback.models import Invitation
    from feedback.models import db

    make_survey(api, "stay")
    answer("stay", 10, at("2024-06-10T10:00:00"))
    answer("stay", 0, at("2024-06-11T10:00:00"))
    late = answer("stay", 9, at("2024-06-12T10:00:00"))
    answer("stay", 9, at("2024-07-12T10:00:00"))
    with app.app_context():
        # Sent in the range, never answered.
        invitation = db.session.get(Invitation, late)
        db.session.add(
            Invitation(
                survey_id=invitation.survey_id,
                contact_id=invitation.contact_id,
                channel="link",
                status="sent",
                properties={},
                token_nonce=b"x" * 32,
                token_hash="f" * 64,
                send_at=at("2024-06-13T10:00:00"),
                expires_at=at("2024-06-27T10:00:00"),
            )
        )
        db.session.commit()

    body = get_scores(
        api, survey="stay", **{"from": "2024-06-01"}, to="2024-07-01", response_rate=1
    )

    assert body["invitations_sent"] == 4
    assert body["responses"] == 3
    assert body["response_rate"] == 75.0


def test_hourly_counts_and_raw_answers_give_the_same_result(
    api, answer, change, app, monkeypatch
):
    make_survey(api, "stay", segments=["hotel"])
    hotels = ["berlin-mitte", "hamburg", None]
    made = []
    for day in range(1, 15):
        for hour in (5, 13, 22):
            hotel = hotels[(day + hour) % 3]
            props = {"hotel": hotel} if hotel else {}
            made.append(
                answer(
                    "stay",
                    (day * hour) % 11,
                    at(f"2024-03-{day:02d}T{hour:02d}:15:00"),
                    props,
                    ["web", "sms", "api"][day % 3],
                )
            )
    change(made[0], 10, at("2024-03-20T10:00:00"), channel="api")
    change(made[5], 0, at("2024-03-20T10:00:00"))
    shapes = [
        {"from": "2024-03-01", "to": "2024-03-15", "tz": "Europe/Berlin"},
        {"from": "2024-03-01", "to": "2024-03-16", "interval": "week"},
        {
            "from": "2024-03-03",
            "to": "2024-03-15",
            "interval": "day",
            "tz": "America/Los_Angeles",
            "group_by": "property.hotel",
            "compare": "previous",
        },
        {"group_by": "channel", "property.hotel": "hamburg"},
        {"group_by": "property.hotel", "property.hotel": ["hamburg", "berlin-mitte"]},
    ]
    hourly = [get_scores(api, survey="stay", **shape) for shape in shapes]
    with app.test_request_context():
        for shape in shapes:
            assert _hourly_chosen(app, shape)

    monkeypatch.setattr(scores, "uses_hourly_counts", lambda *args: False)
    raw = [get_scores(api, survey="stay", **shape) for shape in shapes]

    assert hourly == raw
    assert hourly[0]["n"] == 42


def _hourly_chosen(app, shape) -> bool:
    from feedback.api.schemas import ScoreQuerySchema
    from feedback.api.scores import selection_from

    query = ScoreQuerySchema().load(
        {k: v for k, v in shape.items() if not k.startswith("property.")}
        | {"survey": ["stay"]}
    )
    selection = selection_from(query, False)
    selection.interval = query.get("interval")
    selection.group_by = query.get("group_by")
    selection.compare = bool(query.get("compare"))
    selection.filters = {
        k.removeprefix("property."): v if isinstance(v, list) else [v]
        for k, v in shape.items()
        if k.startswith("property.")
    }
    edges, _ = scores.edges_of(selection)
    return scores.uses_hourly_counts(selection, edges)


def test_half_hour_zone_and_undeclared_property_count_raw_answers(api, answer):
    make_survey(api, "stay")
    # 18:20 UTC is 23:50 in Kolkata (+05:30), 18:40 UTC is 00:10 the next day.
    answer("stay", 10, at("2024-03-04T18:20:00"), {"agent": "ana"})
    answer("stay", 0, at("2024-03-04T18:40:00"), {"agent": "ben"})

    body = get_scores(
        api,
        survey="stay",
        tz="Asia/Kolkata",
        **{"from": "2024-03-04"},
        to="2024-03-06",
        interval="day",
        group_by="property.agent",
    )

    assert [(b["from"], b["n"], b["score"]) for b in body["series"]] == [
        ("2024-03-04T00:00:00+05:30", 1, 100.0),
        ("2024-03-05T00:00:00+05:30", 1, -100.0),
    ]
    assert sorted(g["value"] for g in body["groups"]) == ["ana", "ben"]


def test_declaring_a_segment_later_recounts_earlier_answers(api, answer):
    make_survey(api, "stay")
    answer("stay", 10, at("2024-06-01T10:00:00"), {"hotel": "hamburg"})
    answer("stay", 0, at("2024-06-01T10:00:00"), {"hotel": "hamburg"})
    answer("stay", 9, at("2024-06-01T10:00:00"), {"hotel": "bonn"})

    patched = api.patch("/api/v1/surveys/stay", json={"segments": ["hotel"]})
    body = get_scores(api, survey="stay", group_by="property.hotel")

    assert patched.status_code == 200
    assert patched.get_json()["segments"] == ["hotel"]
    assert [(g["value"], g["n"], g["score"]) for g in body["groups"]] == [
        ("hamburg", 2, 0.0),
        ("bonn", 1, 100.0),
    ]


def test_a_segment_declared_again_counts_what_changed_while_it_was_not(api, answer):
    make_survey(api, "stay", segments=["hotel"])
    answer("stay", 10, at("2024-06-01T10:00:00"), {"hotel": "hamburg"})
    api.patch("/api/v1/surveys/stay", json={"segments": []})
    # While undeclared, its rows are left behind and go stale.
    answer("stay", 0, at("2024-06-02T10:00:00"), {"hotel": "hamburg"})
    answer("stay", 9, at("2024-06-02T10:00:00"), {"hotel": "bonn"})

    patched = api.patch("/api/v1/surveys/stay", json={"segments": ["hotel"]})
    body = get_scores(api, survey="stay", group_by="property.hotel")
    filtered = get_scores(api, survey="stay", **{"property.hotel": "hamburg"})

    assert patched.status_code == 200
    assert [(g["value"], g["n"], g["score"]) for g in body["groups"]] == [
        ("hamburg", 2, 0.0),
        ("bonn", 1, 100.0),
    ]
    assert (filtered["n"], filtered["score"]) == (2, 0.0)


def test_mixed_kinds_are_refused(api):
    make_survey(api, "stay")
    make_survey(api, "desk", kind="csat")

    by_key = api.get("/api/v1/scores?survey=stay,desk")
    by_touchpoint = api.get("/api/v1/scores?touchpoint=post-stay")

    assert by_key.status_code == 422
    assert "different kinds" in by_key.get_json()["error"]["message"]
    assert by_touchpoint.status_code == 422
    assert by_touchpoint.get_json()["error"]["details"] == {
        "kind": ["Mixed kinds: csat, nps."]
    }


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("survey=stay&tz=Mars/Olympus", 422, "tz"),
        ("survey=stay&tz=../../etc/passwd", 422, "tz"),
        ("survey=stay&from=2024-13-01", 422, "from"),
        ("survey=stay&from=2024-03-01T10:00:00", 422, "from"),
        ("survey=stay&from=2024-03-02&to=2024-03-01", 422, "to"),
        ("survey=stay&interval=week", 422, "from"),
        ("survey=stay&interval=fortnight", 422, "interval"),
        ("survey=stay&from=2000-01-01&to=2024-01-01&interval=day", 422, "interval"),
        ("survey=stay&group_by=hotel", 422, "group_by"),
        ("survey=stay&property.ho%20tel=x", 422, "property.ho tel"),
        ("survey=nowhere", 404, "survey"),
        ("", 422, "survey"),
        ("survey=stay&limit=0", 422, "limit"),
        ("survey=stay&channel=fax", 422, "channel"),
        ("survey=stay&channel=sms&response_rate=true", 422, "response_rate"),
        ("survey=stay&from=0001-01-01&tz=Asia/Tokyo", 422, "from"),
        ("survey=stay&from=9999-12-01&to=9999-12-31&interval=month", 422, "interval"),
        ("survey=stay&from=0001-01-02&to=0001-02-01&compare=previous", 422, "from"),
    ],
)
def test_malformed_queries_get_the_one_error_shape(api, query, status, field):
    make_survey(api, "stay")

    response = api.get(f"/api/v1/scores?{query}")

    assert response.status_code == status
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["message"]
    assert field in error["details"]


def test_scores_need_an_api_key(client):
    response = client.get("/api/v1/scores?survey=stay")

    assert response.status_code == 401


def test_whole_utc_days_come_from_day_rows_and_the_rest_from_hours():
    berlin_weeks = [
        at("2024-03-03T23:00:00"),
        at("2024-03-10T23:00:00"),
        at("2024-03-17T23:00:00"),
    ]

    days, hours = scores.split_by_day(berlin_weeks)

    # The UTC day holding each edge is read by the hour, and touching spans join.
    assert days == [
        (at("2024-03-04T00:00:00"), at("2024-03-10T00:00:00")),
        (at("2024-03-11T00:00:00"), at("2024-03-17T00:00:00")),
    ]
    assert hours == [
        (at("2024-03-03T23:00:00"), at("2024-03-04T00:00:00")),
        (at("2024-03-10T00:00:00"), at("2024-03-11T00:00:00")),
        (at("2024-03-17T00:00:00"), at("2024-03-17T23:00:00")),
    ]


@pytest.mark.parametrize(("limit", "status"), [(None, 422), (50, 200)])
def test_an_answer_holds_at_most_50000_results(api, answer, limit, status):
    make_survey(api, "stay", segments=["hotel"])
    for number in range(51):
        answer("stay", 9, at("2024-01-01T10:00:00"), {"hotel": f"h{number:02d}"})
    start = date(2024, 1, 1)
    query = {
        "survey": "stay",
        "from": start.isoformat(),
        # 999 days: each of the 51 hotels over 1,000 periods with the whole range.
        "to": (start + timedelta(days=999)).isoformat(),
        "interval": "day",
        "group_by": "property.hotel",
    }
    if limit:
        query["limit"] = limit

    result = api.get("/api/v1/scores", query_string=query)

    assert result.status_code == status
    if status == 422:
        error = result.get_json()["error"]
        assert "51,000 results" in error["message"]
        assert set(error["details"]) == {"limit"}
    else:
        groups = result.get_json()["groups"]
        assert len(groups) == 50
        assert all(len(group["series"]) == 999 for group in groups)
