"""Property-based: groups add up to n, and hourly counts equal a recount."""

from collections import Counter
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import sqlalchemy
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from feedback import metrics
from feedback.models import Contact
from feedback.models import Invitation
from feedback.models import Response
from feedback.models import ScoreCount
from feedback.models import db
from tests.conftest import make_survey

START = datetime(2024, 3, 30, 20, 0, tzinfo=UTC)
HOTELS = st.sampled_from([None, "hamburg", "bonn", "köln"])
STEPS = st.lists(
    st.tuples(
        st.integers(0, 5),
        st.integers(0, 10),
        st.sampled_from(["web", "sms", "api"]),
        st.integers(0, 60 * 48),
    ),
    min_size=1,
    max_size=25,
)
SLOW = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@given(counts=st.dictionaries(st.integers(0, 10), st.integers(0, 10_000)))
def test_promoters_passives_and_detractors_add_up_to_n(counts):
    result = metrics.summarise("nps", counts)

    assert (
        result["promoters"] + result["passives"] + result["detractors"] == result["n"]
    )
    assert result["n"] == sum(counts.values())
    assert sum(result["distribution"].values()) == result["n"]


def _recount() -> Counter:
    """Count every response by hand, the way the hourly table should."""
    expected = Counter()
    for response in db.session.scalars(sqlalchemy.select(Response)):
        hour = response.answered_at.replace(minute=0, second=0, microsecond=0)
        day = hour.replace(hour=0)
        hotel = (response.properties or {}).get("hotel")
        stored_hotel = "" if hotel is None else "=" + hotel
        for segment, value in (("", ""), ("hotel", stored_hotel)):
            for hours, start in ((1, hour), (24, day)):
                key = (response.survey_id, segment, hours, start, value)
                expected[(*key, response.channel), response.score] += 1
    return expected


def _table() -> Counter:
    found = Counter()
    for row in db.session.scalars(sqlalchemy.select(ScoreCount)):
        key = (
            row.survey_id,
            row.segment,
            row.hours,
            row.starts_at,
            row.value,
            row.channel,
        )
        for score in range(11):
            if getattr(row, f"s{score}"):
                found[key, score] = getattr(row, f"s{score}")
    return found


def _empty_answers() -> None:
    for model in (ScoreCount, Response, Invitation, Contact):
        db.session.execute(sqlalchemy.delete(model))
    db.session.commit()


@SLOW
@given(hotels=st.lists(HOTELS, min_size=6, max_size=6), steps=STEPS)
def test_hourly_counts_equal_a_recount_after_answers_and_changes(
    app, api, answer, change, hotels, steps
):
    with app.app_context():
        _empty_answers()
    if api.get("/api/v1/surveys/stay").status_code == 404:
        make_survey(api, "stay", segments=["hotel"])

    made = {}
    for slot, score, channel, minutes in steps:
        moment = START + timedelta(minutes=minutes)
        if slot in made:
            change(made[slot], score, moment, channel=channel)
        else:
            props = {"hotel": hotels[slot]} if hotels[slot] else {}
            made[slot] = answer("stay", score, moment, props, channel)

    with app.app_context():
        assert _table() == _recount()
    body = api.get(
        "/api/v1/scores",
        query_string={
            "survey": "stay",
            "from": "2024-03-30",
            "to": "2024-04-02",
            "tz": "Europe/Berlin",
            "interval": "day",
            "group_by": "property.hotel",
        },
    ).get_json()
    assert body["n"] == len(made)
    for part in [body, *body["series"], *body["groups"]]:
        assert part["promoters"] + part["passives"] + part["detractors"] == part["n"]
    assert sum(group["n"] for group in body["groups"]) == body["n"]


def test_concurrent_answers_to_one_link_keep_the_counts_exact(app, api):
    import threading

    from feedback import responses
    from feedback import tokens

    make_survey(api, "stay", segments=["hotel"])
    with app.app_context():
        survey_id = db.session.scalar(sqlalchemy.text("SELECT id FROM surveys"))
        contact = Contact(external_id="guest", properties={})
        db.session.add(contact)
        ids = []
        for number in range(2):
            nonce = tokens.new_nonce()
            invitation = Invitation(
                survey_id=survey_id,
                contact=contact,
                channel="link",
                status="sent",
                properties={"hotel": f"hotel-{number}"},
                token_nonce=nonce,
                token_hash=tokens.digest(tokens.derive("test-secret", nonce)),
                send_at=START,
                expires_at=START + timedelta(days=3650),
            )
            db.session.add(invitation)
            db.session.flush()
            ids.append(invitation.id)
        db.session.commit()

    barrier = threading.Barrier(8)
    failures = []

    def answer_once(number: int) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                invitation = db.session.get(Invitation, ids[number % 2])
                responses.record(invitation, number, None, ["web", "sms"][number % 2])
        except Exception as error:
            failures.append(error)

    threads = [threading.Thread(target=answer_once, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    with app.app_context():
        assert db.session.scalar(sqlalchemy.text("SELECT count(*) FROM responses")) == 2
        assert _table() == _recount()


def test_recount_command_repairs_counts_after_a_change_by_hand(app, api, answer):
    make_survey(api, "stay", segments=["hotel"])
    answer("stay", 10, START, {"hotel": "bonn"})
    answer("stay", 3, START + timedelta(hours=5), {"hotel": "hamburg"})
    with app.app_context():
        # An operator's SQL, outside the service: the counts do not follow it.
        db.session.execute(sqlalchemy.text("UPDATE responses SET score = 7"))
        db.session.commit()
        assert _table() != _recount()

    result = app.test_cli_runner().invoke(args=["feedback", "recount-scores", "stay"])
    unknown = app.test_cli_runner().invoke(args=["feedback", "recount-scores", "nope"])

    assert result.exit_code == 0, result.output
    assert "stay: recounted." in result.output
    assert unknown.exit_code != 0
    assert "No survey with key nope." in unknown.output
    with app.app_context():
        assert _table() == _recount()
