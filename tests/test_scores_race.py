"""Scores read on PostgreSQL while answers and segments change: every answer adds up."""

import random
import threading
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from feedback import responses
from feedback import scores
from feedback.models import Invitation
from feedback.models import db
from tests.conftest import ApiClient
from tests.conftest import make_survey

pytestmark = pytest.mark.postgresql_only

ANSWERS = 40
SECONDS = 4
START = datetime(2024, 3, 29, 20, 0, tzinfo=UTC)
# Shapes read from the hourly counts (day rows, hour rows, both) and from the
# responses (a half-hour zone, an undeclared property); each range holds every answer.
SHAPES = [
    {},
    {"group_by": "channel"},
    {
        "from": "2024-03-29",
        "to": "2024-04-03",
        "tz": "Europe/Berlin",
        "interval": "day",
        "group_by": "property.hotel",
    },
    {
        "from": "2024-03-29T20:00:00Z",
        "to": "2024-04-02T20:00:00Z",
        "interval": "week",
        "compare": "previous",
        "property.hotel": ["bonn", "köln"],
    },
    {
        "from": "2024-03-29",
        "to": "2024-04-03",
        "tz": "Asia/Kolkata",
        "interval": "day",
        "group_by": "property.room",
    },
]


def _nps(body: dict) -> float:
    """The score from the answer's own counts, rounded half away from zero."""
    tenths = 1000 * (body["promoters"] - body["detractors"])
    magnitude = (2 * abs(tenths) + body["n"]) // (2 * body["n"])
    return (magnitude if tenths >= 0 else -magnitude) / 10


def _problems(body: dict, expected_n: int) -> list[str]:
    """What does not add up in one answer: n, counts, score, groups and buckets."""
    found = []
    parts = [body, *body.get("series", []), *body.get("groups", [])]
    for group in body.get("groups", []):
        parts.extend(group.get("series", []))
    for part in parts:
        counts = part["promoters"] + part["passives"] + part["detractors"]
        if counts != part["n"] or sum(part["distribution"].values()) != part["n"]:
            found.append(f"counts {counts} for n {part['n']}")
        if part["n"] and part["score"] != _nps(part):
            found.append(f"score {part['score']} for counts of n {part['n']}")
    if body["n"] != expected_n:
        found.append(f"n {body['n']} instead of {expected_n}")
    if "series" in body and sum(b["n"] for b in body["series"]) != body["n"]:
        found.append("buckets do not add up to n")
    if "groups" in body and sum(g["n"] for g in body["groups"]) != body["n"]:
        found.append("groups do not add up to n")
    return found


@pytest.fixture
def answered(app, api, answer):
    """A survey with hotel as its segment and its answers: invitation ids by hotel."""
    make_survey(api, "stay", segments=["hotel"])
    hotels = ["bonn", "köln", None]
    made = []
    for number in range(ANSWERS):
        hotel = hotels[number % 3]
        properties = {"room": f"r{number % 2}", **({"hotel": hotel} if hotel else {})}
        moment = START + timedelta(hours=2 * number, minutes=number)
        made.append(
            answer("stay", number % 11, moment, properties, ["web", "sms"][number % 2])
        )
    return made


def _run(workers: list, seconds: float) -> None:
    threads = [threading.Thread(target=work, args=(seconds,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    assert not any(thread.is_alive() for thread in threads)


def _expected_n(shape: dict) -> int:
    """Every answer, or those at the two hotels the shape filters on."""
    if "property.hotel" in shape:
        return sum(1 for number in range(ANSWERS) if number % 3 != 2)
    return ANSWERS


def _reader(app, failures: list, reads: list, shapes=SHAPES):
    client = ApiClient.for_app(app)

    def read(seconds: float) -> None:
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            for shape in shapes:
                result = client.get(
                    "/api/v1/scores", query_string={"survey": "stay"} | shape
                )
                if result.status_code != 200:
                    failures.append((shape, result.status_code, result.get_json()))
                    continue
                reads.append(1)
                problems = _problems(result.get_json(), _expected_n(shape))
                if problems:
                    failures.append((shape, problems))

    return read


def _changer(app, answered: list, failures: list, changes: list, seed: int):
    chance = random.Random(seed)

    def change(seconds: float) -> None:
        stop = time.monotonic() + seconds
        with app.app_context():
            while time.monotonic() < stop:
                invitation = db.session.get(Invitation, chance.choice(answered))
                channel = chance.choice(["web", "sms", "api"])
                try:
                    responses.record(invitation, chance.randrange(11), None, channel)
                except Exception as error:
                    failures.append(("change", repr(error)))
                    db.session.rollback()
                changes.append(1)

    return change


def test_answers_changed_while_scores_are_read_always_add_up(app, answered):
    failures, reads, changes = [], [], []
    changers = [_changer(app, answered, failures, changes, seed) for seed in range(3)]
    readers = [_reader(app, failures, reads) for _ in range(2)]

    _run([*changers, *readers], SECONDS)

    assert failures == []
    assert len(reads) > 20
    assert len(changes) > 20


def test_segments_changed_while_scores_are_read_always_add_up(app, answered):
    failures, reads, patches = [], [], []
    client = ApiClient.for_app(app)

    def declare(seconds: float) -> None:
        stop = time.monotonic() + seconds
        choices = [["hotel"], ["room"], [], ["hotel", "room"]]
        while time.monotonic() < stop:
            segments = choices[len(patches) % len(choices)]
            result = client.patch("/api/v1/surveys/stay", json={"segments": segments})
            if result.status_code != 200:
                failures.append(("segments", result.status_code, result.get_json()))
            patches.append(1)

    # The shapes that read the hotel segment's counts when it is declared.
    shapes = [shape for shape in SHAPES if "hotel" in str(shape)]
    readers = [_reader(app, failures, reads, shapes) for _ in range(3)]

    _run([declare, *readers], SECONDS)

    assert failures[:5] == [], f"{len(failures)} of {len(reads)} reads went wrong"
    assert len(reads) > 20
    assert len(patches) > 5


def test_a_segment_dropped_after_the_counts_are_chosen_leaves_the_answer_whole(
    app, answered, monkeypatch
):
    reader, editor = ApiClient.for_app(app), ApiClient.for_app(app)
    original = scores.uses_hourly_counts
    patched = {}

    def choose_then_drop(selection, edges):
        """Choose the counts, then let the survey drop its segment before reading."""
        used = original(selection, edges)
        if not patched:
            thread = threading.Thread(
                target=lambda: patched.update(
                    response=editor.patch("/api/v1/surveys/stay", json={"segments": []})
                )
            )
            patched["thread"] = thread
            thread.start()
            # A change that waits for this read is fine too: go on after a while.
            thread.join(timeout=3)
        return used

    monkeypatch.setattr(scores, "uses_hourly_counts", choose_then_drop)
    result = reader.get(
        "/api/v1/scores", query_string={"survey": "stay", "group_by": "property.hotel"}
    )
    patched["thread"].join(timeout=30)

    assert patched["response"].status_code == 200
    body = result.get_json()
    assert body["n"] == ANSWERS
    assert [(group["value"], group["n"]) for group in body["groups"]] == [
        ("bonn", 14),
        ("köln", 13),
        (None, 13),
    ]
