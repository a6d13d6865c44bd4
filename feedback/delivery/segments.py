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
        units = sum(2 if char in GSM7_EXTENDED else 1 for char in text)
        return Segments("GSM-7", units, _parts(units, GSM7_SINGLE, GSM7_PART))
    # UCS-2 counts UTF-16 code units: an emoji outside the BMP takes two.
    units = len(text.encode("utf-16-le")) // 2
    return Segments("UCS-2", units, _parts(units, UCS2_SINGLE, UCS2_PART))


def _parts(units: int, single: int, part: int) -> int:
    if units <= single:
        return 1
    return -(-units // part)
