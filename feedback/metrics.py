"""Score arithmetic for NPS, CSAT and CES: scales, groups, rounding and margins."""

import math
from dataclasses import dataclass
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

# Slices of a tally, the answers per score value 0 to 10.
PROMOTERS = slice(PROMOTER_MIN, 11)
PASSIVES = slice(PASSIVE_MIN, PROMOTER_MIN)
SATISFIED = slice(SATISFIED_MIN, 6)
EASY = slice(EASY_MIN, 8)
TALLY_SIZE = 11

# The ends of each score's range, for clipping an interval.
BOUNDS = {"nps": (-100, 100), "csat": (0, 100), "ces": (1, 7)}
LABELS = {
    kind: tuple(str(value) for value in scale.values) for kind, scale in SCALES.items()
}

# Two-sided 95% normal quantile, for every margin of error and comparison.
Z95 = 1.96
LOW_SAMPLE = 30


def round_half_away(value: Fraction, places: int = 1) -> float:
    """Round an exact fraction once, half away from zero, to a float for JSON."""
    return _round_ratio(value.numerator, value.denominator, places)


def _round_ratio(numerator: int, denominator: int, places: int = 1) -> float:
    # Integer arithmetic is exact and much cheaper than Decimal or Fraction.
    scale = 10**places
    scaled = abs(numerator) * scale
    magnitude = (2 * scaled + denominator) // (2 * denominator)
    return math.copysign(magnitude, numerator) / scale


def tally_of(kind: str, counts: dict[int, int]) -> list[int]:
    """Answers per score value 0 to 10, zero off the kind's scale."""
    tally = [0] * TALLY_SIZE
    for value in SCALES[kind].values:
        tally[value] = int(counts.get(value, 0))
    return tally


def estimate(kind: str, counts: dict[int, int]) -> tuple[Fraction | None, float | None]:
    """The exact score and its standard error; the error needs two answers."""
    tally = tally_of(kind, counts)
    n = sum(tally)
    if n == 0:
        return None, None
    numerator, error = _estimate(kind, tally, n)
    return Fraction(numerator, n), error


def _estimate(kind: str, tally: list[int], n: int) -> tuple[int, float | None]:
    """The score as a numerator over n, and its standard error."""
    if kind == "nps":
        promoters = sum(tally[PROMOTERS])
        detractors = n - promoters - sum(tally[PASSIVES])
        numerator = 100 * (promoters - detractors)
        if n < 2:
            return numerator, None
        # Each answer coded +1, 0 or -1: the score is their mean, times 100.
        p, d = promoters / n, detractors / n
        variance = (p + d - (p - d) ** 2) / n
        return numerator, 100 * math.sqrt(max(variance, 0.0))
    if kind == "csat":
        satisfied = sum(tally[SATISFIED])
        numerator = 100 * satisfied
        if n < 2:
            return numerator, None
        p = satisfied / n
        return numerator, 100 * math.sqrt(p * (1 - p) / n)
    total = sum(value * count for value, count in enumerate(tally))
    if n < 2:
        return total, None
    squares = sum(value * value * count for value, count in enumerate(tally))
    # Sum of squared deviations, exact in integers: squares - total^2 / n.
    sample_variance = (squares * n - total * total) / (n * (n - 1))
    return total, math.sqrt(max(sample_variance, 0.0) / n)


def interval(kind: str, counts: dict[int, int]) -> tuple[float, float, float] | None:
    """The 95% (margin of error, low, high), unrounded; None below two answers."""
    tally = tally_of(kind, counts)
    n = sum(tally)
    if n < 2:
        return None
    numerator, error = _estimate(kind, tally, n)
    return _interval(kind, tally, n, numerator / n, error)


def _interval(
    kind: str, tally: list[int], n: int, value: float, error: float
) -> tuple[float, float, float]:
    if kind == "csat":
        # Wilson's interval stays inside 0..100 and is honest near the ends.
        p = sum(tally[SATISFIED]) / n
        z2 = Z95 * Z95
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = Z95 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
        return 100 * half, 100 * (centre - half), 100 * (centre + half)
    margin = Z95 * error
    low, high = BOUNDS[kind]
    return margin, max(low, value - margin), min(high, value + margin)


def _round_float(value: float) -> float:
    """Half away from zero to one place, exact: ties are settled on the exact value."""
    scaled = abs(value) * 10
    whole = math.floor(scaled)
    rest = scaled - whole
    if abs(rest - 0.5) < 1e-6:
        return _round_ratio(*value.as_integer_ratio())
    # Far from a tie, the float product's last-bit error cannot change the digit.
    return math.copysign(whole + (rest > 0.5), value) / 10


def summarise(kind: str, counts: dict[int, int], low_sample: int = LOW_SAMPLE) -> dict:
    """Return the metric for a kind from its count per score value."""
    return summarise_tally(kind, tally_of(kind, counts), low_sample)


def summarise_tally(kind: str, tally: list[int], low_sample: int = LOW_SAMPLE) -> dict:
    """The metric from a tally; what lies off the kind's scale is not counted."""
    scale = SCALES[kind]
    on_scale = tally[scale.low : scale.high + 1]
    n = sum(on_scale)
    if n == 0:
        # Series are mostly empty buckets; they all look alike.
        return _empty(kind, low_sample)
    if len(on_scale) != TALLY_SIZE:
        tally = [0] * scale.low + on_scale + [0] * (TALLY_SIZE - scale.high - 1)
    result = {"metric": kind, "n": n, "score": None}
    if kind == "nps":
        promoters = sum(tally[PROMOTERS])
        passives = sum(tally[PASSIVES])
        result.update(
            promoters=promoters,
            passives=passives,
            detractors=n - promoters - passives,
        )
    else:
        total = sum(value * count for value, count in enumerate(tally))
        result["mean"] = _round_ratio(total, n)
        if kind == "csat":
            result["satisfied"] = sum(tally[SATISFIED])
        else:
            result["easy"] = sum(tally[EASY])

    numerator, error = _estimate(kind, tally, n)
    result["score"] = _round_ratio(numerator, n)
    margin = low = high = None
    if n >= 2:
        margin, low, high = _interval(kind, tally, n, numerator / n, error)
        margin, low, high = _round_float(margin), _round_float(low), _round_float(high)
    result.update(
        distribution=dict(zip(LABELS[kind], on_scale, strict=True)),
        margin_of_error=margin,
        ci_low=low,
        ci_high=high,
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
