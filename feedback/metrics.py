"""Score arithmetic for NPS, CSAT and CES: scales, groups, rounding and margins."""

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP
from decimal import Decimal
from fractions import Fraction


@dataclass(frozen=True)
class Scale:
    kind: str
    low: int
    high: int
    metric: str

    @property
    def values(self) -> range:
        return range(self.low, self.high + 1)

    def accepts(self, score: int) -> bool:
        return self.low <= score <= self.high


SCALES = {
    "nps": Scale("nps", 0, 10, "Net Promoter Score"),
    "csat": Scale("csat", 1, 5, "Customer Satisfaction"),
    "ces": Scale("ces", 1, 7, "Customer Effort Score"),
}

PROMOTER_MIN = 9
PASSIVE_MIN = 7
SATISFIED_MIN = 4
EASY_MIN = 5

# Two-sided 95% normal quantile, for every margin of error and comparison.
Z95 = 1.96
LOW_SAMPLE = 30


def round_half_away(value: Fraction, places: int = 1) -> float:
    """Round an exact fraction once, half away from zero, to a float for JSON."""
    quantum = Decimal(1).scaleb(-places)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(quantum, rounding=ROUND_HALF_UP))


def counts_of(kind: str, counts: dict[int, int]) -> dict[int, int]:
    """Keep the values on the kind's scale, as plain ints, zeros included."""
    return {value: int(counts.get(value, 0)) for value in SCALES[kind].values}


def estimate(kind: str, counts: dict[int, int]) -> tuple[Fraction | None, float | None]:
    """The exact score and its standard error; the error needs two answers."""
    counts = counts_of(kind, counts)
    n = sum(counts.values())
    if n == 0:
        return None, None
    if kind == "nps":
        promoters = sum(counts[v] for v in range(PROMOTER_MIN, 11))
        detractors = sum(counts[v] for v in range(0, PASSIVE_MIN))
        value = Fraction(100 * (promoters - detractors), n)
        if n < 2:
            return value, None
        # Each answer coded +1, 0 or -1: the score is their mean, times 100.
        p, d = promoters / n, detractors / n
        variance = (p + d - (p - d) ** 2) / n
        return value, 100 * math.sqrt(max(variance, 0.0))
    if kind == "csat":
        satisfied = sum(counts[v] for v in range(SATISFIED_MIN, 6))
        value = Fraction(100 * satisfied, n)
        if n < 2:
            return value, None
        p = satisfied / n
        return value, 100 * math.sqrt(p * (1 - p) / n)
    total = sum(value * count for value, count in counts.items())
    mean = Fraction(total, n)
    if n < 2:
        return mean, None
    squares = sum(value * value * count for value, count in counts.items())
    # Sum of squared deviations, exact in integers: squares - total^2 / n.
    sample_variance = (squares * n - total * total) / (n * (n - 1))
    return mean, math.sqrt(max(sample_variance, 0.0) / n)


def interval(
    kind: str, counts: dict[int, int], known: tuple | None = None
) -> tuple[float, float, float] | None:
    """The 95% (margin of error, low, high), unrounded; None below two answers."""
    counts = counts_of(kind, counts)
    n = sum(counts.values())
    if n < 2:
        return None
    if kind == "csat":
        # Wilson's interval stays inside 0..100 and is honest near the ends.
        p = sum(counts[v] for v in range(SATISFIED_MIN, 6)) / n
        z2 = Z95 * Z95
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = Z95 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
        return 100 * half, 100 * (centre - half), 100 * (centre + half)
    value, error = known or estimate(kind, counts)
    margin = Z95 * error
    scale = SCALES[kind]
    low, high = (-100, 100) if kind == "nps" else (scale.low, scale.high)
    return margin, max(low, float(value) - margin), min(high, float(value) + margin)


def _round_float(value: float) -> float:
    exact = Decimal(value)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def summarise(kind: str, counts: dict[int, int], low_sample: int = LOW_SAMPLE) -> dict:
    """Return the metric for a kind from its count per score value."""
    scale = SCALES[kind]
    counts = counts_of(kind, counts)
    n = sum(counts.values())
    if n == 0:
        # Series are mostly empty buckets; they all look alike.
        return _empty(kind, low_sample)
    distribution = {str(value): counts[value] for value in scale.values}
    result = {"metric": kind, "n": n, "score": None}

    def share(low: int, high: int) -> int:
        return sum(counts.get(value, 0) for value in range(low, high + 1))

    if kind == "nps":
        result.update(
            promoters=share(PROMOTER_MIN, 10),
            passives=share(PASSIVE_MIN, PROMOTER_MIN - 1),
            detractors=share(0, PASSIVE_MIN - 1),
        )
    else:
        total = sum(value * count for value, count in counts.items())
        result["mean"] = round_half_away(Fraction(total, n)) if n else None
        if kind == "csat":
            result["satisfied"] = share(SATISFIED_MIN, scale.high)
        else:
            result["easy"] = share(EASY_MIN, scale.high)

    known = estimate(kind, counts)
    result["score"] = round_half_away(known[0])
    bounds = interval(kind, counts, known)
    margin, low, high = (None, None, None) if bounds is None else bounds
    result.update(
        distribution=distribution,
        margin_of_error=None if margin is None else _round_float(margin),
        ci_low=None if low is None else _round_float(low),
        ci_high=None if high is None else _round_float(high),
        low_sample=n < low_sample,
    )
    return result


def _empty(kind: str, low_sample: int) -> dict:
    result = {"metric": kind, "n": 0, "score": None}
    if kind == "nps":
        result.update(promoters=0, passives=0, detractors=0)
    else:
        result["mean"] = None
        result["satisfied" if kind == "csat" else "easy"] = 0
    result.update(
        distribution={str(value): 0 for value in SCALES[kind].values},
        margin_of_error=None,
        ci_low=None,
        ci_high=None,
        low_sample=low_sample > 0,
    )
    return result


def compare(kind: str, current: dict[int, int], previous: dict[int, int]) -> dict:
    """Change from the previous period and whether it is beyond noise at 95%."""
    now, now_error = estimate(kind, current)
    before, before_error = estimate(kind, previous)
    if now is None or before is None:
        return {"delta": None, "significant": None}
    delta = now - before
    if now_error is None or before_error is None:
        return {"delta": round_half_away(delta), "significant": None}
    if not now_error or not before_error:
        # A sample with no spread (every answer alike) has no usable normal error:
        # nothing can be said about the difference.
        return {"delta": round_half_away(delta), "significant": None}
    # Independent samples: the error of the difference adds in quadrature.
    spread = math.hypot(now_error, before_error)
    significant = abs(float(delta)) > Z95 * spread
    return {"delta": round_half_away(delta), "significant": bool(significant)}
