"""Email: a multipart text and HTML message, through SMTP or the file outbox."""

import smtplib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from email.utils import make_msgid
from email.utils import parseaddr

from feedback.delivery import DeliveryError
from feedback.delivery import Sent
from feedback.delivery import outbox


def build(
    config: dict,
    to_address: str,
    to_name: str | None,
    subject: str,
    text: str,
    html: str,
    headers: dict | None = None,
) -> EmailMessage:
    """Build the message; the policy folds headers and encodes non-ASCII correctly."""
    message = EmailMessage()
    from_name, from_address = parseaddr(config["EMAIL_FROM"])
    message["From"] = Address(display_name=from_name, addr_spec=from_address)
    message["To"] = Address(
        display_name=to_name or "", addr_spec=ascii_address(to_address)
    )
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or None)
    for name, value in (headers or {}).items():
        message[name] = value
    # Quoted-printable keeps every line within 78 characters, long links included.
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def ascii_address(address: str) -> str:
    """The address with its domain in IDNA form, as every SMTP server takes it."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def send(config: dict, message_id: int, message: EmailMessage) -> Sent:
    """Hand the message to the configured backend."""
    if config["EMAIL_BACKEND"] == "outbox":
        return outbox.write(config["OUTBOX_DIR"], message_id, "eml", message.as_bytes())
    return _send_smtp(config, message)


def _send_smtp(config: dict, message: EmailMessage) -> Sent:
    try:
        smtp = smtplib.SMTP(
            config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT"]
        )
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryError(
            "transient", f"cannot reach the SMTP server: {error}"
        ) from error
    try:
        with smtp:
            if config["SMTP_STARTTLS"]:
                smtp.starttls()
            if config["SMTP_USERNAME"]:
                smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        code, reply = next(iter(error.recipients.values()))
        raise _from_reply(code, reply) from error
    except smtplib.SMTPResponseException as error:
        raise _from_reply(error.smtp_code, error.smtp_error) from error
    except (smtplib.SMTPServerDisconnected, TimeoutError) as error:
        # The server may have taken the message before the line went quiet.
        raise DeliveryError(
            "unknown", f"no answer from the SMTP server: {error}"
        ) from error
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryError("transient", f"SMTP error: {error}") from error
    if refused:
        code, reply = next(iter(refused.values()))
        raise _from_reply(code, reply)
    return Sent(provider_id=message["Message-ID"].strip("<>"))


def _from_reply(code: int, reply) -> DeliveryError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    if 400 <= code < 500:
        return DeliveryError("transient", f"SMTP {code}: {text}", str(code))
    # 550, 551 and 553 say the mailbox does not exist or is not allowed.
    invalid = code in (550, 551, 553)
    return DeliveryError(
        "permanent", f"SMTP {code}: {text}", str(code), invalid_address=invalid
    )
