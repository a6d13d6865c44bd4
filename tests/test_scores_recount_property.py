"""Property-based: every score answer equals a recount in Python of the stored answers.

Each answer is stored twice, in a survey that declares the property `hotel` as a
segment and in a twin that declares nothing, so the same question is answered once
from the hourly and daily counts (where the shape allows) and once from the
responses themselves. Both answers must equal the recount, and each other.
"""

import math
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

import sqlalchemy
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from feedback import scores
from feedback.models import Contact
from feedback.models import Invitation
from feedback.models import Message
from feedback.models import Response
from feedback.models import ScoreCount
from feedback.models import Survey
from feedback.models import db
from tests.conftest import make_survey

SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
# Two surveys per kind at different touchpoints and stages, each with a twin that
# declares no segment: the twin is always counted from the responses.
SURVEYS = {
    "stay": {"touchpoint": "post-stay", "stage": "retention"},
    "hire": {"touchpoint": "post-interview", "stage": "onboarding"},
}
RAW = "-raw"
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "America/Havana",
]
# Zones whose offsets are whole hours in 2023 and 2024 (Lord Howe in summer only).
WHOLE_HOUR_ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/Los_Angeles",
    "America/Santiago",
    "America/Havana",
    "Australia/Lord_Howe",
]
OFFSETS = ["Z", "+00:00", "+01:00", "-08:00", "+05:30", "+10:30", "+13:45", "-03:30"]
FIRST = datetime(2023, 1, 1, tzinfo=UTC)
LAST = datetime(2025, 1, 1, tzinfo=UTC)
# Clock changes of the zones above in 2023 and 2024, in UTC: answers cluster here.
CLOCK_CHANGES = [
    datetime.fromisoformat(text)
    for text in (
        "2023-03-26T01:00Z",
        "2023-10-29T01:00Z",
        "2024-03-31T01:00Z",
        "2024-10-27T01:00Z",
        "2023-03-12T10:00Z",
        "2023-11-05T09:00Z",
        "2024-03-10T10:00Z",
        "2024-11-03T09:00Z",
        "2023-04-01T15:00Z",
        "2023-09-30T15:30Z",
        "2024-04-06T15:00Z",
        "2024-10-05T15:30Z",
        "2023-04-01T14:00Z",
        "2023-09-23T14:00Z",
        "2024-04-06T14:00Z",
        "2024-09-28T14:00Z",
        # Santiago and Havana move their clocks at midnight: some days start at
        # 01:00, and in Havana some days see midnight twice.
        "2023-04-02T03:00Z",
        "2023-09-03T04:00Z",
        "2024-04-07T03:00Z",
        "2024-09-08T04:00Z",
        "2023-03-12T05:00Z",
        "2023-11-05T05:00Z",
        "2024-03-10T05:00Z",
        "2024-11-03T05:00Z",
    )
]
MISSING = object()
HOTELS = ["berlin-mitte", "köln", "東京", "", "h" * 500, 12, 1.5, True, None, MISSING]
ROOMS = ["single", "double", MISSING]
CHANNELS = ["web", "sms", "api"]
# Bounds snap to whole days, hours (most often), half and quarter hours, minutes
# or seconds.
STEPS = [
    timedelta(seconds=seconds)
    for seconds in (86400, 3600, 3600, 3600, 1800, 900, 60, 1)
]
Z95 = 1.96
EITHER = object()

SLOW = settings(
    max_examples=30,
    # Explaining a failure reruns it hundreds of times: minutes here, so skip it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _moment(start: datetime, minutes: int, seconds: int) -> datetime:
    return start + timedelta(minutes=minutes, seconds=seconds)


SECONDS = st.sampled_from([0, 0, 1, 59, 59.999999])
MOMENTS = st.one_of(
    st.builds(
        _moment,
        st.just(FIRST),
        st.integers(0, int((LAST - FIRST).total_seconds() // 60) - 1),
        SECONDS,
    ),
    # Whole hours, where a bucket edge may fall.
    st.builds(
        _moment,
        st.just(FIRST),
        st.integers(0, int((LAST - FIRST).total_seconds() // 3600) - 1).map(
            lambda hours: hours * 60
        ),
        st.just(0),
    ),
    st.builds(
        _moment,
        st.sampled_from(CLOCK_CHANGES),
        st.integers(-36 * 60, 36 * 60),
        SECONDS,
    ),
)
ANSWERS = st.lists(
    st.fixed_dictionaries(
        {
            "survey": st.sampled_from(sorted(SURVEYS)),
            "score": st.integers(0, 10),
            "at": MOMENTS,
            "channel": st.sampled_from(CHANNELS),
            "hotel": st.sampled_from(HOTELS),
            "room": st.sampled_from(ROOMS),
        }
    ),
    max_size=24,
)
CHANGES = st.lists(
    st.tuples(st.integers(0, 23), st.integers(0, 10), st.sampled_from(CHANNELS)),
    max_size=6,
)


@st.composite
def bounds(draw, zone: str, aligned: bool):
    """A from or a to: a local date, or a time with an offset, on or off the hour."""
    moment = draw(MOMENTS)
    if draw(st.booleans()):
        return moment.astimezone(ZoneInfo(zone)).date().isoformat()
    step = draw(st.sampled_from(STEPS[:2] if aligned else STEPS))
    moment = FIRST + (moment - FIRST) // step * step
    if not aligned and draw(st.integers(0, 3)) == 0:
        moment += timedelta(microseconds=draw(st.integers(1, 999_999)))
    return _written(moment, draw(st.sampled_from(OFFSETS)))


def _written(moment: datetime, offset: str) -> str:
    """The instant as ISO 8601 with that offset (or Z)."""
    if offset == "Z":
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    sign = 1 if offset[0] == "+" else -1
    shift = sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    return moment.astimezone(timezone(shift)).isoformat()


@st.composite
def queries(draw) -> dict:
    """One query string of the scores endpoint, as a dict of parameter lists."""
    # Most queries fit the hourly counts, so both ways of counting are compared.
    aligned = draw(st.integers(0, 9)) < 6
    zone = draw(st.sampled_from(WHOLE_HOUR_ZONES if aligned else ZONES))
    interval = draw(st.sampled_from([None, "day", "week", "month"]))
    compare = draw(st.booleans())
    query = {
        "survey": draw(st.sampled_from([["stay"], ["hire"], ["hire", "stay"]])),
        "tz": [zone],
    }
    if zone == "UTC" and draw(st.booleans()):
        del query["tz"]

    start = draw(bounds(zone, aligned))
    end = draw(bounds(zone, aligned))
    if _instant(start, zone) == _instant(end, zone):
        end = _written(_instant(start, zone) + timedelta(hours=1), "Z")
    if _instant(start, zone) > _instant(end, zone):
        start, end = end, start
    if interval or compare or draw(st.booleans()):
        query["from"], query["to"] = [start], [end]
    else:
        kept = draw(st.sampled_from(["from", "to", None]))
        if kept:
            query[kept] = [start if kept == "from" else end]
    if interval and "from" in query:
        query["interval"] = [interval]
    if compare and "from" in query:
        query["compare"] = ["previous"]

    group_by = draw(
        st.sampled_from(
            [
                None,
                "survey",
                "touchpoint",
                "stage",
                "channel",
                "property.hotel",
                "property.room",
            ]
        )
    )
    if group_by:
        query["group_by"] = [group_by]
        if draw(st.booleans()):
            query["limit"] = [str(draw(st.integers(1, 3)))]
    for name, pool in (("hotel", HOTELS), ("room", ROOMS)):
        texts = sorted({_text(value) for value in pool} - {None})
        if draw(st.integers(0, 3)) == 0:
            query[f"property.{name}"] = draw(
                st.lists(st.sampled_from(texts), min_size=1, max_size=3)
            )
    if draw(st.integers(0, 3)) == 0:
        query["channel"] = draw(
            st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=2, unique=True)
        )
    elif draw(st.integers(0, 3)) == 0:
        query["response_rate"] = ["true"]
    return query


def _text(value) -> str | None:
    """A property value as text, the way the README says values compare."""
    if value is None or value is MISSING:
        return None
    if value is True:
        return "true"
    return str(value)


def _instant(bound: str, zone: str) -> datetime:
    """A date is local midnight in the zone; a time carries its own offset."""
    if len(bound) == 10:
        day = date.fromisoformat(bound)
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(
            UTC
        )
    return datetime.fromisoformat(bound.replace("Z", "+00:00")).astimezone(UTC)


def _round(value: Fraction) -> float:
    """Half away from zero, to one decimal, from the exact value."""
    magnitude = math.floor(abs(value) * 10 + Fraction(1, 2))
    return math.copysign(magnitude / 10, value)


def _estimate(kind: str, values: list[int]) -> tuple[Fraction, float | None]:
    """The exact score over the answers and its standard error (None below two)."""
    n = len(values)
    if kind == "nps":
        share = Fraction(sum(v >= 9 for v in values) - sum(v <= 6 for v in values), n)
        spread = Fraction(sum(v >= 9 or v <= 6 for v in values), n) - share**2
        error = 100 * math.sqrt(spread / n)
        exact = 100 * share
    elif kind == "csat":
        share = Fraction(sum(v >= 4 for v in values), n)
        error = 100 * math.sqrt(share * (1 - share) / n)
        exact = 100 * share
    else:
        exact = Fraction(sum(values), n)
        error = None
        if n > 1:
            deviations = sum((v - exact) ** 2 for v in values)
            error = math.sqrt(deviations / (n - 1) / n)
    return exact, error if n > 1 else None


def _interval(kind: str, values: list[int]) -> tuple[float, float, float] | None:
    """The 95% margin and interval as the README defines them, unrounded."""
    n = len(values)
    if n < 2:
        return None
    exact, error = _estimate(kind, values)
    if kind == "csat":
        p = sum(v >= 4 for v in values) / n
        z2 = Z95 * Z95
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = Z95 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
        return 100 * half, 100 * (centre - half), 100 * (centre + half)
    margin = Z95 * error
    low, high = (-100, 100) if kind == "nps" else (1, 7)
    return margin, max(low, float(exact) - margin), min(high, float(exact) + margin)


def _figures(kind: str, values: list[int], low_sample: int) -> dict:
    """What the README promises for a set of answers, margins left unrounded."""
    low, high = SCALES[kind]
    n = len(values)
    result = {"metric": kind, "n": n, "score": None}
    if kind == "nps":
        result["promoters"] = sum(v >= 9 for v in values)
        result["passives"] = sum(7 <= v <= 8 for v in values)
        result["detractors"] = sum(v <= 6 for v in values)
    else:
        result["mean"] = _round(Fraction(sum(values), n)) if n else None
        if kind == "csat":
            result["satisfied"] = sum(v >= 4 for v in values)
        else:
            result["easy"] = sum(v >= 5 for v in values)
    if n:
        result["score"] = _round(_estimate(kind, values)[0])
    result["distribution"] = {
        str(value): values.count(value) for value in range(low, high + 1)
    }
    interval = _interval(kind, values)
    result["margin_of_error"], result["ci_low"], result["ci_high"] = interval or (
        None,
        None,
        None,
    )
    result["low_sample"] = n < low_sample
    return result


def _compared(kind: str, now: list[int], before: list[int]) -> dict:
    if not now or not before:
        return {"delta": None, "significant": None}
    (exact_now, error_now), (exact_before, error_before) = (
        _estimate(kind, now),
        _estimate(kind, before),
    )
    delta = exact_now - exact_before
    result = {"delta": _round(delta), "significant": None}
    if error_now and error_before:
        reach = abs(float(delta)) - Z95 * math.hypot(error_now, error_before)
        # So close to the line that float rounding may fall either side.
        result["significant"] = EITHER if abs(reach) < 1e-9 else reach > 0
    return result


def _bucket_of(day: date, interval: str) -> date:
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _after(day: date, interval: str) -> date:
    if interval == "day":
        return day + timedelta(days=1)
    if interval == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def expected_answer(kind: str, stored: list[dict], query: dict, low_sample: int):
    """The scores endpoint's answer, recounted from the stored answers.

    Each answer is placed by the local calendar date it was given on, rather than
    by comparing it with bucket edges, so the recount shares no step with the code.
    """
    zone = query.get("tz", ["UTC"])[0]
    tz = ZoneInfo(zone)
    start = _instant(query["from"][0], zone) if "from" in query else None
    end = _instant(query["to"][0], zone) if "to" in query else None
    interval = query.get("interval", [None])[0]
    compare = "compare" in query
    group_by = query.get("group_by", [None])[0]
    keys = sorted(set(query["survey"]))
    filters = {
        name.removeprefix("property."): set(values)
        for name, values in query.items()
        if name.startswith("property.")
    }
    chosen = [
        answer
        for answer in stored
        if answer["survey"] in keys
        and (not query.get("channel") or answer["channel"] in query["channel"])
        and all(
            _text(answer["properties"].get(name)) in values
            for name, values in filters.items()
        )
    ]
    earliest = start
    if compare:
        first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
        whole_days = _midnight(first, tz) == start and _midnight(last, tz) == end
        # Whole local days are compared with as many local days before them.
        earliest = (
            _midnight(first - (last - first), tz)
            if whole_days
            else start - (end - start)
        )

    def within(answer, low, high) -> bool:
        moment = answer["answered_at"]
        return (low is None or moment >= low) and (high is None or moment < high)

    buckets = []
    if interval:
        day = _bucket_of(start.astimezone(tz).date(), interval)
        while _midnight(day, tz) < end:
            buckets.append(day)
            day = _after(day, interval)

    def figures(answers: list[dict]) -> dict:
        current = [a["score"] for a in answers if within(a, start, end)]
        result = _figures(kind, current, low_sample)
        if interval:
            result["series"] = []
            for day in buckets:
                following = _after(day, interval)
                low = max(start, _midnight(day, tz))
                high = min(end, _midnight(following, tz))
                values = [
                    a["score"]
                    for a in answers
                    if within(a, start, end)
                    and _bucket_of(a["answered_at"].astimezone(tz).date(), interval)
                    == day
                ]
                result["series"].append(
                    {
                        "start": _midnight(day, tz).astimezone(tz).isoformat(),
                        "from": low.astimezone(tz).isoformat(),
                        "to": high.astimezone(tz).isoformat(),
                        **_figures(kind, values, low_sample),
                    }
                )
        if compare:
            before = [a["score"] for a in answers if within(a, earliest, start)]
            result["previous"] = {
                "from": earliest.astimezone(tz).isoformat(),
                "to": start.astimezone(tz).isoformat(),
                **_figures(kind, before, low_sample),
            }
            result.update(_compared(kind, current, before))
        return result

    answer = {
        "surveys": keys,
        "kind": kind,
        "tz": zone,
        "from": start.astimezone(tz).isoformat() if start else None,
        "to": end.astimezone(tz).isoformat() if end else None,
        "interval": interval,
        "group_by": group_by,
        **figures(chosen),
    }
    if len(keys) == 1:
        answer["survey"] = keys[0]
    if group_by:
        answer["groups"] = _groups(group_by, keys, chosen, earliest, end, figures)
        if "limit" in query:
            answer["groups"] = answer["groups"][: int(query["limit"][0])]
    if "response_rate" in query:
        sent = [
            answer
            for answer in chosen
            if within({"answered_at": answer["send_at"]}, start, end)
        ]
        answer.update(
            invitations_sent=len(sent),
            responses=len(sent),
            response_rate=100.0 if sent else None,
        )
    return answer


def _groups(group_by, keys, chosen, earliest, end, figures) -> list[dict]:
    """One group per value met in the range or the previous period, largest first."""
    if group_by.startswith("property."):
        name = group_by.removeprefix("property.")

        def value_of(answer):
            return _text(answer["properties"].get(name))
    else:

        def value_of(answer):
            return answer[group_by]

    members = {}
    if group_by in ("survey", "touchpoint", "stage"):
        # Every survey asked for has its group, answered or not.
        for key in keys:
            label = key if group_by == "survey" else SURVEYS[_base(key)][group_by]
            members.setdefault(label, [])
    for answer in chosen:
        moment = answer["answered_at"]
        if (earliest is None or moment >= earliest) and (end is None or moment < end):
            members.setdefault(value_of(answer), []).append(answer)
    groups = [
        {"value": value, **figures(answers)} for value, answers in members.items()
    ]
    groups.sort(key=lambda g: (-g["n"], g["value"] is None, str(g["value"])))
    return groups


MARGINS = ("margin_of_error", "ci_low", "ci_high")


def assert_matches(actual, expected, path="answer") -> None:
    """Equal, but for margins (rounded once to 0.1) and a significance on the edge."""
    if expected is EITHER:
        assert actual in (True, False), path
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert set(actual) == set(expected), (path, set(actual) ^ set(expected))
        for name, value in expected.items():
            where = f"{path}.{name}"
            if name in MARGINS and value is not None:
                assert actual[name] is not None, where
                assert abs(actual[name] - value) <= 0.05 + 1e-9, (where, actual, value)
            else:
                assert_matches(actual[name], value, where)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (
            path,
            len(actual),
            len(expected),
        )
        for index, (one, other) in enumerate(zip(actual, expected, strict=True)):
            assert_matches(one, other, f"{path}[{index}]")
    else:
        assert actual == expected, (path, actual, expected)


def _as_twin(value):
    """The answer about the twin surveys, with the keys of the declared ones."""
    if isinstance(value, dict):
        return {name: _as_twin(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_as_twin(item) for item in value]
    if isinstance(value, str) and value.endswith(RAW):
        return value.removesuffix(RAW)
    return value


def _base(key: str) -> str:
    """stay or hire, from a key such as nps-stay-raw."""
    return key.split("-")[1]


def _twin_query(query: dict) -> dict:
    return {**query, "survey": [key + RAW for key in query["survey"]]}


def _empty_answers() -> None:
    for model in (ScoreCount, Response, Message, Invitation, Contact):
        db.session.execute(sqlalchemy.delete(model))
    db.session.commit()


def _stored(app) -> list[dict]:
    """The answers as the database holds them, with their survey and invitation."""
    with app.app_context():
        rows = db.session.execute(
            sqlalchemy.select(Response, Survey.key, Invitation.send_at)
            .join(Survey, Survey.id == Response.survey_id)
            .join(Invitation, Invitation.id == Response.invitation_id)
        ).all()
        return [
            {
                "survey": key,
                "touchpoint": SURVEYS[_base(key)]["touchpoint"],
                "stage": SURVEYS[_base(key)]["stage"],
                "score": response.score,
                "channel": response.channel,
                "properties": dict(response.properties or {}),
                "answered_at": response.answered_at,
                "send_at": send_at,
            }
            for response, key, send_at in rows
        ]


def _raw_for_twins(monkeypatch) -> list[bool]:
    """Count the twins' answers from the responses, whatever the query's shape.

    A query without a property reads the hourly counts of any survey, so the twins
    alone do not guarantee it; the declared surveys go the way the code chooses.
    Returns the list of the choices made, True for the hourly counts.
    """
    original = scores.uses_hourly_counts
    if hasattr(original, "chosen"):
        return original.chosen

    def choose(selection, edges):
        twins = all(survey.key.endswith(RAW) for survey in selection.surveys)
        used = not twins and original(selection, edges)
        choose.chosen.append(used)
        return used

    choose.chosen = []
    monkeypatch.setattr(scores, "uses_hourly_counts", choose)
    return choose.chosen


@SLOW
@given(data=st.data(), answers=ANSWERS, changes=CHANGES)
def test_scores_equal_a_recount_from_the_hourly_counts_and_from_the_answers(
    app, api, answer, change, monkeypatch, data, answers, changes
):
    kind = data.draw(st.sampled_from(sorted(SCALES)), label="kind")
    low, high = SCALES[kind]
    with app.app_context():
        _empty_answers()
    for name, survey in SURVEYS.items():
        for key, segments in (
            (f"{kind}-{name}", ["hotel"]),
            (f"{kind}-{name}{RAW}", []),
        ):
            if api.get(f"/api/v1/surveys/{key}").status_code == 404:
                make_survey(api, key, kind=kind, segments=segments, **survey)
    paths = _raw_for_twins(monkeypatch)

    made = []
    for item in answers:
        score = low + item["score"] % (high - low + 1)
        properties = {
            name: item[name] for name in ("hotel", "room") if item[name] is not MISSING
        }
        made.append(
            [
                answer(key, score, item["at"], properties, item["channel"])
                for key in (f"{kind}-{item['survey']}", f"{kind}-{item['survey']}{RAW}")
            ]
        )
    for index, score, channel in changes:
        if index < len(made):
            for invitation_id in made[index]:
                moment = LAST + timedelta(days=index)
                change(invitation_id, low + score % (high - low + 1), moment, channel)
    declared = [item for item in _stored(app) if not item["survey"].endswith(RAW)]

    for query in data.draw(st.lists(queries(), min_size=1, max_size=3)):
        query["survey"] = [f"{kind}-{key}" for key in query["survey"]]
        hourly = api.get("/api/v1/scores", query_string=query)
        raw = api.get("/api/v1/scores", query_string=_twin_query(query))

        assert hourly.status_code == 200, (query, hourly.get_json())
        assert raw.status_code == 200, (query, raw.get_json())
        event("hourly counts" if paths[-2] else "raw answers")
        expected = expected_answer(kind, declared, query, app.config["LOW_SAMPLE"])
        assert_matches(hourly.get_json(), expected)
        assert _as_twin(raw.get_json()) == hourly.get_json()
