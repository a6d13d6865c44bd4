"""SMS: through the Twilio Messages API with the twilio SDK, or the file outbox."""

import logging

import requests
import urllib3
from twilio.base.exceptions import TwilioRestException
from twilio.base.exceptions import TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from feedback.delivery import DeliveryError
from feedback.delivery import Sent
from feedback.delivery import outbox

logger = logging.getLogger(__name__)

# Twilio error codes: too many requests, unreachable handset, queue overflow.
TRANSIENT_CODES = {20429, 30003, 30008}
# Invalid 'To' number, region not enabled, unsubscribed recipient, unknown
# destination, landline, carrier violation.
PERMANENT_CODES = {21211, 21408, 21610, 30005, 30006, 30007}
# Too many requests, and the account's own credentials refused: neither says
# anything of the message, and a fixed setting should not lose the queue.
RETRY_STATUSES = {401, 403, 429}
INVALID_ADDRESS_CODES = {21211, 30005, 30006}
OPTED_OUT_CODE = 21610


def client(config: dict) -> Client:
    """A twilio client aimed at TWILIO_API_URL, where a compatible API may stand."""
    http_client = TwilioHttpClient(timeout=config["TWILIO_TIMEOUT"])
    twilio = Client(
        config["TWILIO_ACCOUNT_SID"],
        config["TWILIO_AUTH_TOKEN"],
        http_client=http_client,
    )
    twilio.api.base_url = config["TWILIO_API_URL"].rstrip("/")
    return twilio


def send(
    config: dict,
    message_id: int,
    to: str,
    body: str,
    status_callback: str | None = None,
) -> Sent:
    """Send one text and return the provider's id and status."""
    if config["SMS_BACKEND"] == "outbox":
        content = f"To: {to}\n\n{body}\n".encode()
        return outbox.write(config["OUTBOX_DIR"], message_id, "sms.txt", content)

    options = {"to": to, "body": body}
    if config["TWILIO_MESSAGING_SERVICE_SID"]:
        options["messaging_service_sid"] = config["TWILIO_MESSAGING_SERVICE_SID"]
    else:
        options["from_"] = config["TWILIO_FROM"]
    if status_callback:
        options["status_callback"] = status_callback
    try:
        created = client(config).messages.create(**options)
    except (TwilioRestException, TwilioServiceException) as error:
        raise classify(
            error.status,
            error.code,
            str(getattr(error, "msg", "") or getattr(error, "detail", "") or error),
        ) from error
    except requests.exceptions.ConnectTimeout as error:
        raise DeliveryError("transient", f"cannot reach Twilio: {error}") from error
    except requests.ConnectionError as error:
        if _never_connected(error):
            raise DeliveryError("transient", f"cannot reach Twilio: {error}") from error
        raise DeliveryError("unknown", f"Twilio dropped the line: {error}") from error
    except requests.RequestException as error:
        # The request may have reached Twilio: sending again could text twice.
        raise DeliveryError("unknown", f"no answer from Twilio: {error}") from error
    return Sent(provider_id=created.sid, status=_status(created.status))


def _never_connected(error: requests.ConnectionError) -> bool:
    """True when the connection was refused or the name did not resolve."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def classify(status: int | None, code: int | None, text: str) -> DeliveryError:
    """Map a Twilio error to retry or not, and to what it says of the address."""
    label = str(code) if code else (str(status) if status else None)
    described = f"Twilio error {code or status}: {text}"
    if code in PERMANENT_CODES:
        return DeliveryError(
            "permanent",
            described,
            label,
            invalid_address=code in INVALID_ADDRESS_CODES,
            opted_out=code == OPTED_OUT_CODE,
        )
    if code in TRANSIENT_CODES or status in RETRY_STATUSES or (status or 0) >= 500:
        return DeliveryError("transient", described, label)
    return DeliveryError("permanent", described, label)


def _status(provider_status: str | None) -> str:
    # Twilio answers queued or accepted; the status callback moves it on from there.
    if provider_status in ("queued", "accepted", "scheduled", "sending"):
        return "queued"
    return provider_status or "queued"
