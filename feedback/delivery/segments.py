"""SMS segments: how many parts a text is billed as, in GSM-7 or UCS-2."""

from dataclasses import dataclass

# The GSM 03.38 default alphabet, and the extension table whose characters take
# an escape character first and so count twice.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "^{}\\[~]|€\f"

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67


@dataclass(frozen=True)
class Segments:
    encoding: str
    units: int
    count: int


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in text)


def count(text: str) -> Segments:
    """Count the segments of a text as a handset network would."""
    if is_gsm7(text):
        weights = [2 if char in GSM7_EXTENDED else 1 for char in text]
        return _packed("GSM-7", weights, GSM7_SINGLE, GSM7_PART)
    # UCS-2 counts UTF-16 code units: an emoji outside the BMP takes two.
    weights = [len(char.encode("utf-16-le")) // 2 for char in text]
    return _packed("UCS-2", weights, UCS2_SINGLE, UCS2_PART)


def _packed(encoding: str, weights: list[int], single: int, part: int) -> Segments:
    """Fill the parts in order: an escaped character or an emoji is never split."""
    units = sum(weights)
    if units <= single:
        return Segments(encoding, units, 1)
    parts, used = 1, 0
    for weight in weights:
        if used + weight > part:
            parts += 1
            used = 0
        used += weight
    return Segments(encoding, units, parts)
