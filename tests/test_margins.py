"""Margins of error, intervals and comparison: published and hand-computed cases."""

import math

import pytest

from feedback import metrics


def wilson_by_search(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The proportions whose normal test just fails to reject: found by bisection."""

    def outside(pi: float) -> float:
        p = successes / n
        return abs(p - pi) - z * math.sqrt(pi * (1 - pi) / n)

    def root(low: float, high: float) -> float:
        for _ in range(200):
            middle = (low + high) / 2
            if (outside(low) > 0) == (outside(middle) > 0):
                low = middle
            else:
                high = middle
        return (low + high) / 2

    p = successes / n
    return root(0.0, p), root(p, 1.0)


def test_published_nps_case_with_margin_of_error():
    result = metrics.summarise("nps", {10: 75, 9: 75, 8: 50, 7: 50, 3: 50})

    assert (result["promoters"], result["passives"], result["detractors"]) == (
        150,
        100,
        50,
    )
    assert result["score"] == 33.3
    assert result["margin_of_error"] == 8.4
    # By hand: p = 1/2, d = 1/6, variance (2/3 - 1/9) / 300, times 1.96 and 100.
    assert result["ci_low"] == 24.9
    assert result["ci_high"] == 41.8
    assert result["low_sample"] is False


def test_csat_and_ces_hand_computed():
    csat = metrics.summarise("csat", {5: 1, 2: 1, 1: 1})
    ces = metrics.summarise("ces", {1: 1, 2: 1})

    assert csat["score"] == 33.3
    assert csat["satisfied"] == 1
    low, high = wilson_by_search(1, 3)
    assert csat["ci_low"] == pytest.approx(100 * low, abs=0.051)
    assert csat["ci_high"] == pytest.approx(100 * high, abs=0.051)
    assert ces["score"] == 1.5
    assert ces["easy"] == 0
    # Sample sd of [1, 2] is sqrt(0.5); 1.96 * sqrt(0.5) / sqrt(2) = 0.98.
    assert ces["margin_of_error"] == 1.0
    assert ces["ci_high"] == 2.5
    assert ces["ci_low"] == 1.0


@pytest.mark.parametrize("kind", ["nps", "csat", "ces"])
def test_no_answers_is_null_not_zero(kind):
    result = metrics.summarise(kind, {})

    assert result["n"] == 0
    assert result["score"] is None
    assert result["margin_of_error"] is None
    assert result["ci_low"] is None
    assert result["ci_high"] is None
    assert result["low_sample"] is True


def test_one_answer_has_a_score_but_no_interval():
    result = metrics.summarise("nps", {10: 1})

    assert result["score"] == 100.0
    assert result["margin_of_error"] is None


def test_low_sample_threshold_is_a_setting():
    counts = {9: 10, 3: 10}

    assert metrics.summarise("nps", counts)["low_sample"] is True
    assert metrics.summarise("nps", counts, low_sample=20)["low_sample"] is False


def test_wilson_interval_stays_inside_the_scale():
    result = metrics.summarise("csat", {5: 10})
    low, high = wilson_by_search(10, 10)

    assert result["score"] == 100.0
    assert result["ci_high"] == 100.0
    assert result["ci_low"] == pytest.approx(100 * low, abs=0.051)


def test_comparison_significant_and_not():
    # 8 promoters, 2 detractors: 60, se = 100 * sqrt((1 - 0.36) / 10) = 25.30.
    # Against -60 the difference 120 exceeds 1.96 * sqrt(2) * 25.30 = 70.1.
    assert metrics.compare("nps", {10: 8, 0: 2}, {10: 2, 0: 8}) == {
        "delta": 120.0,
        "significant": True,
    }
    # 20 against -20: se = 100 * sqrt((1 - 0.04) / 10) = 30.98; 40 < 85.9.
    assert metrics.compare("nps", {10: 6, 0: 4}, {10: 4, 0: 6}) == {
        "delta": 40.0,
        "significant": False,
    }
    assert metrics.compare("nps", {10: 1}, {}) == {"delta": None, "significant": None}
