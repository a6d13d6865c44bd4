"""Delivery: the channels that carry a message, and how their failures are judged."""

from dataclasses import dataclass


class DeliveryError(Exception):
    """A send that did not succeed, with what to do about it.

    outcome is "transient" (try again later), "permanent" (never retry) or
    "unknown" (the request went out and no answer came back: never retry, since a
    second try could reach the person twice).
    """

    def __init__(
        self,
        outcome: str,
        message: str,
        code: str | None = None,
        invalid_address: bool = False,
        opted_out: bool = False,
    ):
        super().__init__(message)
        self.outcome = outcome
        self.code = code
        self.invalid_address = invalid_address
        self.opted_out = opted_out


@dataclass
class Sent:
    """What a channel reports back after handing a message over."""

    provider_id: str
    status: str = "sent"
