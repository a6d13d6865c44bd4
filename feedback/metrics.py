"""Score arithmetic for NPS, CSAT and CES: scales, groups and rounding, from counts."""

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


def round_half_away(value: Fraction, places: int = 1) -> float:
    """Round an exact fraction once, half away from zero, to a float for JSON."""
    quantum = Decimal(1).scaleb(-places)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(quantum, rounding=ROUND_HALF_UP))


def summarise(kind: str, counts: dict[int, int]) -> dict:
    """Return the metric for a kind from its count per score value."""
    scale = SCALES[kind]
    distribution = {str(value): int(counts.get(value, 0)) for value in scale.values}
    n = sum(distribution.values())
    result = {"metric": kind, "n": n, "score": None, "distribution": distribution}

    def share(low: int, high: int) -> int:
        return sum(counts.get(value, 0) for value in range(low, high + 1))

    if kind == "nps":
        promoters = share(PROMOTER_MIN, 10)
        passives = share(PASSIVE_MIN, PROMOTER_MIN - 1)
        detractors = share(0, PASSIVE_MIN - 1)
        result.update(promoters=promoters, passives=passives, detractors=detractors)
        if n:
            result["score"] = round_half_away(
                Fraction(100 * (promoters - detractors), n)
            )
        return result

    total = sum(value * count for value, count in counts.items())
    mean = round_half_away(Fraction(total, n)) if n else None
    if kind == "csat":
        satisfied = share(SATISFIED_MIN, scale.high)
        result.update(satisfied=satisfied, mean=mean)
        if n:
            result["score"] = round_half_away(Fraction(100 * satisfied, n))
        return result

    result.update(easy=share(EASY_MIN, scale.high), mean=mean)
    if n:
        result["score"] = round_half_away(Fraction(total, n))
    return result
