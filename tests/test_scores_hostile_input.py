"""The scores endpoint under bad and extreme queries: a 2xx or one JSON 4xx, no 500."""

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import assert_error
from tests.conftest import make_survey

BERLIN = ZoneInfo("Europe/Berlin")
NUL = "%00"
LONG = "x" * 100_000
PARAMETERS = [
    "survey",
    "kind",
    "touchpoint",
    "stage",
    "channel",
    "from",
    "to",
    "tz",
    "interval",
    "group_by",
    "limit",
    "compare",
    "response_rate",
    "property.hotel",
]
QUERIES = [
    # Huge ranges and many buckets.
    "from=0001-01-01&to=9999-12-31",
    "from=0001-01-01&to=9999-12-31&tz=Pacific/Kiritimati",
    "from=0001-01-02&to=9999-12-30&tz=Pacific/Chatham&group_by=channel",
    "from=0001-01-01&to=9999-12-31&group_by=property.hotel&property.hotel=berlin",
    "from=0001-01-01&to=9999-12-31&response_rate=true",
    "from=0001-01-01&to=9999-12-31&compare=previous",
    "from=5000-01-01&to=9999-12-31&compare=previous",
    "from=2000-01-01&to=2002-09-27&interval=day",
    "from=2000-01-01&to=2002-09-28&interval=day",
    "from=1000-01-01&to=9000-01-01&interval=month",
    "from=0001-01-01&to=0084-05-01&interval=month&tz=Asia/Kolkata",
    "from=0001-01-01&to=0001-01-09&interval=week&tz=America/Los_Angeles",
    "from=9999-12-01&to=9999-12-31&interval=day&tz=Asia/Tokyo",
    "from=9999-12-30T00:00:00Z&to=9999-12-31T23:59:59Z&interval=day",
    "from=9999-12-31T23:59:59.999999Z",
    "to=0001-01-01T00:00:00.000001Z",
    "from=0001-01-01T00:00:00Z&to=0001-01-01T00:00:00.000001Z&interval=month",
    "from=0001-01-02T00:00:00-14:00",
    "from=9999-12-31T23:59:59.999999-23:59",
    # from == to, and to before from.
    "from=2024-01-01&to=2024-01-01",
    "from=2024-01-01T00:00:00Z&to=2024-01-01T01:00:00%2B01:00",
    "from=2024-01-02&to=2024-01-01&interval=day",
    # Dates that are not dates.
    "from=2024-02-30",
    "from=2024-W01-1",
    "from=20240101",
    "from=%2B2024-01-01",
    "from=2024-01-01T00:00:00%2B99:00",
    "from=2024-01-01T25:00:00Z",
    "from=" + LONG,
    "from=%E2%80%8B",
    "from=%D9%A2%D9%A0%D9%A2%D9%A4-01-01",
    "from=2024-03-01T10:00:00z",
    "from=2024-03-01 10:00:00Z",
    "from=2024-03-01T10:00:00.123456789Z",
    "from=2024-03-01T10:00:00%2B05:30:15&to=2024-03-02&interval=day",
    "from=2024-03-01T10:00:00%2B05:30:15.5&to=2024-03-02&interval=day",
    # Zones.
    "tz=",
    "tz=UTC%20",
    "tz=utc",
    "tz=Europe/Berl%C3%ADn",
    "tz=" + LONG,
    "tz=../../../../etc/localtime",
    "tz=Etc/GMT-14&from=2024-01-01&to=2024-01-03&interval=day",
    "tz=EST5EDT&from=2024-01-01&to=2024-01-03&interval=day",
    "tz=America/Argentina/ComodRivadavia&from=1800-01-01&to=1800-02-01&interval=day",
    "tz=Europe/Berlin&tz=Asia/Kolkata&from=2024-01-01&to=2024-01-03&interval=day",
    # Limits.
    "group_by=channel&limit=0",
    "group_by=channel&limit=-1",
    "group_by=channel&limit=1001",
    "group_by=channel&limit=99999999999999999999999999",
    "group_by=channel&limit=1.5",
    "group_by=channel&limit=",
    "group_by=channel&limit=%EF%BC%91",
    "limit=1000",
    # Repeated and empty parameters.
    "survey=stay&survey=stay&survey=stay,stay",
    "interval=day&interval=week&from=2024-01-01&to=2024-02-01",
    "group_by=channel&group_by=survey",
    "compare=previous&compare=next&from=2024-01-01&to=2024-02-01",
    "channel=web&channel=web&channel=sms,api",
    "channel=",
    "interval=",
    "compare=",
    "group_by=",
    "response_rate=",
    "kind=nps&kind=csat",
    # Property filters and groups.
    "property.hotel=" + LONG,
    "property.hotel=" + LONG + "&group_by=property.hotel",
    "property." + "h" * 64 + "=x",
    "property." + "h" * 65 + "=x",
    "property.=x",
    "property.h%C3%B6tel=x",
    "property.hotel=%F0%9F%98%80&group_by=property.hotel",
    "property.hotel=%ED%A0%80",
    "property.hotel=%FF%FE",
    "&".join(f"property.p{number}=x" for number in range(300)),
    "&".join(f"property.hotel=v{number}" for number in range(100)),
    "&".join(f"property.hotel=v{number}" for number in range(101)),
    "group_by=property.",
    "group_by=property." + "h" * 64,
    "group_by=property." + "h" * 65,
    "group_by=property.h%C3%B6tel",
    "group_by=property.hotel&property.room=a&property.hotel=b",
    # Other unicode and unknown parameters.
    "touchpoint=%F0%9F%98%80",
    "touchpoint=" + "t" * 65,
    "stage=%F0%9F%98%80",
    "kind=NPS",
    "&".join(f"unknown{number}=x" for number in range(2000)),
]


@pytest.fixture
def stay(api, answer):
    """A survey with hotel as its segment and one answer in 2024."""
    make_survey(api, "stay", segments=["hotel"])
    answer("stay", 9, datetime(2024, 3, 1, 10, tzinfo=UTC), {"hotel": "berlin"})
    return "stay"


def assert_answered(response) -> dict:
    """A 2xx, or a 4xx in the one error shape; never a 500."""
    assert response.status_code < 500, response.get_json()
    if response.status_code >= 400:
        assert_error(response, response.status_code)
    return response.get_json()


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: query[:60])
def test_a_hostile_query_is_answered_or_refused_in_the_error_shape(api, stay, query):
    assert_answered(api.get(f"/api/v1/scores?survey=stay&{query}"))


@pytest.mark.parametrize("value", [NUL, f"web{NUL}", f"{NUL}{LONG}"])
def test_a_nul_in_any_parameter_is_422(api, stay, value):
    for parameter in PARAMETERS:
        result = api.get(f"/api/v1/scores?survey=stay&{parameter}={value}")

        assert_error(result, 422, "invalid")


@pytest.mark.parametrize("value", ["%ED%A0%80", "%FF%FE", "%C3", "%F0%9F%98%80"])
def test_bytes_that_are_not_text_in_any_parameter_are_no_500(api, stay, value):
    for parameter in PARAMETERS:
        assert_answered(api.get(f"/api/v1/scores?survey=stay&{parameter}={value}"))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=9999-12-31T23:00:00Z&tz=Asia/Tokyo", "to"),
        ("from=0001-01-01T00:00:00Z&tz=America/Los_Angeles", "from"),
        (
            "from=9999-12-30T00:00:00Z&to=9999-12-31T23:59:59Z&tz=Pacific/Kiritimati",
            "to",
        ),
    ],
)
def test_a_bound_that_reads_past_year_9999_in_the_zone_is_422(api, stay, query, field):
    result = api.get(f"/api/v1/scores?survey=stay&{query}")

    error = assert_error(result, 422, "invalid")
    assert field in error["details"]


@pytest.mark.parametrize(
    ("interval", "start", "middle", "end"),
    [
        ("week", date(2000, 1, 3), date(2010, 6, 15), date(2019, 3, 4)),
        ("month", date(1900, 1, 1), date(1950, 6, 15), date(1983, 5, 1)),
    ],
)
@pytest.mark.parametrize("group_by", [None, "property.hotel"])
def test_a_thousand_weeks_or_months_in_berlin_are_answered(
    api, answer, interval, start, middle, end, group_by
):
    make_survey(api, "stay", segments=["hotel"])
    first, last = (
        datetime(day.year, day.month, day.day, tzinfo=BERLIN).astimezone(UTC)
        for day in (start, end)
    )
    # The first instant of the first bucket, one in the middle, the last minute of
    # the last bucket, and the first instant after it.
    answer("stay", 0, first, {"hotel": "berlin"})
    answer("stay", 10, datetime.combine(middle, time(12), UTC), {"hotel": "bonn"})
    answer("stay", 9, last - timedelta(minutes=1), {"hotel": "berlin"})
    answer("stay", 10, last, {"hotel": "berlin"})
    query = {
        "survey": "stay",
        "tz": "Europe/Berlin",
        "from": start.isoformat(),
        "to": end.isoformat(),
        "interval": interval,
    }
    if group_by:
        query["group_by"] = group_by

    result = api.get("/api/v1/scores", query_string=query)

    body = assert_answered(result)
    assert result.status_code == 200
    assert len(body["series"]) == 1000
    assert (body["n"], body["promoters"], body["detractors"]) == (3, 2, 1)
    assert (body["series"][0]["n"], body["series"][-1]["n"]) == (1, 1)
    assert sum(bucket["n"] for bucket in body["series"]) == 3
    if group_by:
        assert [(g["value"], g["n"]) for g in body["groups"]] == [
            ("berlin", 2),
            ("bonn", 1),
        ]


def test_a_hundred_surveys_by_survey_over_a_year_of_weeks(api, answer):
    keys = [f"survey-{number:03d}" for number in range(100)]
    for key in keys:
        make_survey(api, key, segments=["hotel"])
    for number, key in enumerate(keys[:10]):
        moment = datetime(2024, 1, 1, 12, tzinfo=UTC) + timedelta(days=number * 30)
        answer(key, number, moment, {"hotel": "berlin"})

    result = api.get(
        "/api/v1/scores",
        query_string={
            "survey": ",".join(keys),
            "tz": "Europe/Berlin",
            "from": "2024-01-01",
            "to": "2025-01-01",
            "interval": "week",
            "group_by": "survey",
            "property.hotel": "berlin",
        },
    )
    too_many = api.get("/api/v1/scores", query_string={"survey": [*keys, "one-more"]})

    body = assert_answered(result)
    assert result.status_code == 200
    assert body["n"] == 10
    assert len(body["groups"]) == 100
    assert [group["n"] for group in body["groups"][:11]] == [1] * 10 + [0]
    assert_error(too_many, 422, "invalid")


@pytest.mark.parametrize("path", ["/api/v1/responses", "/api/v1/responses.csv"])
def test_the_feed_takes_bounds_that_read_past_year_9999_in_the_zone(api, stay, path):
    # The feed shows no bound in the zone, so these ranges are fine for it.
    result = api.get(f"{path}?survey=stay&to=9999-12-31T23:00:00Z&tz=Asia/Tokyo")

    assert result.status_code == 200
    assert "berlin" in result.get_data(as_text=True)
