"""The score arithmetic, against cases worked out by hand."""

import math
import statistics
from decimal import ROUND_HALF_UP
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from feedback import metrics


def counts(*pairs):
    return dict(pairs)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # 3 promoters, 3 passives, 2 detractors: (3 - 2) / 8 = 12.5 %.
        (
            counts((9, 1), (10, 2), (7, 2), (8, 1), (0, 1), (6, 1)),
            {"n": 8, "promoters": 3, "passives": 3, "detractors": 2, "score": 12.5},
        ),
        # A single 0 is a detractor, and the whole sample: -100.
        (
            counts((0, 1)),
            {"n": 1, "promoters": 0, "passives": 0, "detractors": 1, "score": -100.0},
        ),
        (
            counts((0, 2), (3, 1), (6, 4)),
            {"n": 7, "promoters": 0, "passives": 0, "detractors": 7, "score": -100.0},
        ),
        (
            counts((9, 5), (10, 5)),
            {"n": 10, "promoters": 10, "passives": 0, "detractors": 0, "score": 100.0},
        ),
        # Only passives: 0, not null, because there are answers.
        (
            counts((7, 3), (8, 3)),
            {"n": 6, "promoters": 0, "passives": 6, "detractors": 0, "score": 0.0},
        ),
        # (1 - 2) / 3 = -33.333... -> -33.3.
        (
            counts((10, 1), (5, 2)),
            {"n": 3, "promoters": 1, "passives": 0, "detractors": 2, "score": -33.3},
        ),
        # (2 - 0) / 3 = 66.666... -> 66.7.
        (
            counts((9, 2), (8, 1)),
            {"n": 3, "promoters": 2, "passives": 1, "detractors": 0, "score": 66.7},
        ),
        # 1 / 2000 = 0.05 % exactly: half away from zero gives 0.1.
        (
            counts((10, 1), (8, 1999)),
            {
                "n": 2000,
                "promoters": 1,
                "passives": 1999,
                "detractors": 0,
                "score": 0.1,
            },
        ),
        # (100 - 149) / 400 = -12.25 % exactly: away from zero gives -12.3.
        (
            counts((9, 100), (7, 151), (2, 149)),
            {
                "n": 400,
                "promoters": 100,
                "passives": 151,
                "detractors": 149,
                "score": -12.3,
            },
        ),
        # -1 / 2000 = -0.05 % exactly: -0.1, not -0.0.
        (
            counts((6, 1), (8, 1999)),
            {
                "n": 2000,
                "promoters": 0,
                "passives": 1999,
                "detractors": 1,
                "score": -0.1,
            },
        ),
    ],
)
def test_nps(given, expected):
    result = metrics.summarise("nps", given)

    assert result["metric"] == "nps"
    for key, value in expected.items():
        assert result[key] == value, key


@pytest.mark.parametrize(
    ("given", "score", "mean", "satisfied"),
    [
        # 4 and 5 are satisfied: 3 of 4 = 75 %; mean (5 + 4 + 4 + 1) / 4 = 3.5.
        (counts((5, 1), (4, 2), (1, 1)), 75.0, 3.5, 3),
        # 2 of 3 = 66.666... -> 66.7; mean (4 + 5 + 3) / 3 = 4.0.
        (counts((4, 1), (5, 1), (3, 1)), 66.7, 4.0, 2),
        # 1 of 8 = 12.5 %; mean (4 + 7 * 2) / 8 = 2.25 -> 2.3 (away from zero).
        (counts((4, 1), (2, 7)), 12.5, 2.3, 1),
        # 667 of 2000 = 33.35 % exactly -> 33.4; mean (667 * 4 + 1333) / 2000
        # = 2.0005 -> 2.0.
        (counts((4, 667), (1, 1333)), 33.4, 2.0, 667),
        (counts((1, 3)), 0.0, 1.0, 0),
        (counts((5, 3)), 100.0, 5.0, 3),
    ],
)
def test_csat(given, score, mean, satisfied):
    result = metrics.summarise("csat", given)

    assert result["metric"] == "csat"
    assert result["n"] == sum(given.values())
    assert result["score"] == score
    assert result["mean"] == mean
    assert result["satisfied"] == satisfied


@pytest.mark.parametrize(
    ("given", "score", "easy"),
    [
        # (7 + 5 + 1) / 3 = 4.333... -> 4.3; 5 to 7 are easy.
        (counts((7, 1), (5, 1), (1, 1)), 4.3, 2),
        # 81 / 20 = 4.05 exactly -> 4.1 (a float round() would give 4.0).
        (counts((4, 19), (5, 1)), 4.1, 1),
        # (6 * 3 + 7 * 3) / 6 = 6.5.
        (counts((6, 3), (7, 3)), 6.5, 6),
        (counts((1, 4)), 1.0, 0),
    ],
)
def test_ces(given, score, easy):
    result = metrics.summarise("ces", given)

    assert result["metric"] == "ces"
    assert result["score"] == score
    assert result["mean"] == score
    assert result["easy"] == easy


@pytest.mark.parametrize("kind", ["nps", "csat", "ces"])
def test_no_answers_is_no_score(kind):
    result = metrics.summarise(kind, {})

    assert result["n"] == 0
    assert result["score"] is None
    if kind != "nps":
        assert result["mean"] is None
    else:
        assert (result["promoters"], result["passives"], result["detractors"]) == (
            0,
            0,
            0,
        )


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("nps", [str(value) for value in range(0, 11)]),
        ("csat", ["1", "2", "3", "4", "5"]),
        ("ces", ["1", "2", "3", "4", "5", "6", "7"]),
    ],
)
def test_distribution_has_every_scale_value(kind, values):
    first = int(values[0])
    result = metrics.summarise(kind, {first: 2})

    assert list(result["distribution"]) == values
    assert result["distribution"][values[0]] == 2
    assert sum(result["distribution"].values()) == 2
    assert all(result["distribution"][value] == 0 for value in values[1:])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(25, 2), 12.5),
        (Fraction(5, 100), 0.1),
        (Fraction(-5, 100), -0.1),
        (Fraction(1225, 100), 12.3),
        (Fraction(-1225, 100), -12.3),
        (Fraction(1224999, 100000), 12.2),
        (Fraction(-1, 3), -0.3),
        (Fraction(0), 0.0),
    ],
)
def test_round_half_away_from_zero(value, expected):
    assert metrics.round_half_away(value) == expected


@pytest.mark.parametrize(
    ("kind", "low", "high"), [("nps", 0, 10), ("csat", 1, 5), ("ces", 1, 7)]
)
def test_scales(kind, low, high):
    scale = metrics.SCALES[kind]

    assert scale.accepts(low) and scale.accepts(high)
    assert not scale.accepts(low - 1) and not scale.accepts(high + 1)


def _reference_round(value) -> float:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _reference(kind: str, answers: list[int]) -> dict:
    """The figures straight from the definitions, answer by answer."""
    n = len(answers)
    if kind == "nps":
        coded = [1 if a >= 9 else -1 if a <= 6 else 0 for a in answers]
        score = Fraction(100 * sum(coded), n)
        p, d = coded.count(1) / n, coded.count(-1) / n
        margin = 1.96 * 100 * math.sqrt((p + d - (p - d) ** 2) / n) if n > 1 else None
    elif kind == "csat":
        satisfied = sum(1 for a in answers if a >= 4)
        score = Fraction(100 * satisfied, n)
        p, z = satisfied / n, 1.96
        margin = (
            100 * z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
            if n > 1
            else None
        )
    else:
        score = Fraction(sum(answers), n)
        margin = 1.96 * statistics.stdev(answers) / math.sqrt(n) if n > 1 else None
    return {"score": score, "margin": margin}


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["nps", "csat", "ces"]),
    raw=st.lists(st.integers(min_value=0, max_value=40), min_size=11, max_size=11),
)
def test_summary_matches_the_definitions(kind, raw):
    scale = metrics.SCALES[kind]
    counts = dict(zip(scale.values, raw, strict=False))
    answers = [value for value, count in counts.items() for _ in range(count)]

    result = metrics.summarise(kind, counts)

    assert result["n"] == len(answers)
    if not answers:
        assert result["score"] is None and result["margin_of_error"] is None
        return
    expected = _reference(kind, answers)
    assert result["score"] == _reference_round(expected["score"])
    if kind != "nps":
        assert result["mean"] == _reference_round(Fraction(sum(answers), len(answers)))
    unrounded = metrics.interval(kind, counts)
    if expected["margin"] is None:
        assert unrounded is None and result["margin_of_error"] is None
    else:
        assert math.isclose(
            unrounded[0], expected["margin"], rel_tol=1e-9, abs_tol=1e-9
        )
        assert result["margin_of_error"] == _reference_round(Fraction(unrounded[0]))
        assert result["ci_low"] == _reference_round(Fraction(unrounded[1]))
        assert result["ci_high"] == _reference_round(Fraction(unrounded[2]))


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=-1000, max_value=1000, allow_nan=False))
def test_margins_round_half_away_from_zero_on_the_exact_value(value):
    exact = Decimal(value).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

    assert metrics._round_float(value) == float(exact)


@pytest.mark.parametrize("value", [0.25, -0.25, 12.75, 0.05, 0.15, 99.95, -33.35])
def test_margins_round_ties_on_the_exact_value(value):
    exact = Decimal(value).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

    assert metrics._round_float(value) == float(exact)
