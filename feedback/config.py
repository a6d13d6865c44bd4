"""Settings: defaults, then FEEDBACK_* environment variables, then checks."""

import math
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import NoSuchModuleError

DEFAULTS = {
    "BASE_URL": "http://127.0.0.1:5000",
    "EMAIL_BACKEND": "outbox",
    "SMTP_HOST": "",
    "SMTP_PORT": 25,
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": False,
    "SMTP_TIMEOUT": 30,
    "EMAIL_FROM": "Feedback <feedback@localhost>",
    "SMS_BACKEND": "outbox",
    "TWILIO_ACCOUNT_SID": "",
    "TWILIO_AUTH_TOKEN": "",
    "TWILIO_FROM": "",
    "TWILIO_MESSAGING_SERVICE_SID": "",
    "TWILIO_API_URL": "https://api.twilio.com",
    "TWILIO_TIMEOUT": 15.0,
    "OUTBOX_DIR": "",
    "WORKER_BATCH_SIZE": 20,
    "WORKER_POLL_SECONDS": 2.0,
    "WORKER_LEASE_SECONDS": 120,
    "COMMENT_MAX_LENGTH": 2000,
    "THROTTLE_DAYS": 30,
    "SMS_RATE": 1.0,
    "EMAIL_RATE": 10.0,
    "LOW_SAMPLE": 30,
    "LOG_LEVEL": "INFO",
}

# Settings whose values are parsed as JSON (numbers, true/false); the rest stay text.
TYPED = {
    "SMTP_PORT": int,
    "SMTP_STARTTLS": bool,
    "SMTP_TIMEOUT": float,
    "WORKER_BATCH_SIZE": int,
    "WORKER_POLL_SECONDS": float,
    "WORKER_LEASE_SECONDS": int,
    "COMMENT_MAX_LENGTH": int,
    "TWILIO_TIMEOUT": float,
    "THROTTLE_DAYS": int,
    "SMS_RATE": float,
    "EMAIL_RATE": float,
    "LOW_SAMPLE": int,
}

PREFIX = "FEEDBACK_"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


def load(instance_path: str, environ=None, overrides=None) -> dict:
    """Return the settings from defaults, the environment and overrides, checked."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    settings["OUTBOX_DIR"] = str(Path(instance_path) / "outbox")
    settings["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(
        Path(instance_path) / "feedback.sqlite3"
    )

    for name, raw in environ.items():
        if not name.startswith(PREFIX):
            continue
        key = name.removeprefix(PREFIX)
        if key == "DATABASE_URL":
            settings["SQLALCHEMY_DATABASE_URI"] = raw
        else:
            settings[key] = _parse(name, key, raw)

    overrides = dict(overrides or {})
    if "DATABASE_URL" in overrides:
        settings["SQLALCHEMY_DATABASE_URI"] = overrides.pop("DATABASE_URL")
    settings.update(overrides)
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = _local_secret_key(instance_path)
    _check(settings)
    return settings


def _parse(name: str, key: str, raw: str):
    kind = TYPED.get(key)
    if kind is None:
        return raw
    if kind is bool:
        folded = raw.strip().lower()
        if folded in ("1", "true", "yes", "on"):
            return True
        if folded in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name} must be true or false, not {raw!r}")
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None


def _local_secret_key(instance_path: str) -> str:
    """Keep a generated key in the instance folder so local links survive restarts."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then linked into place: when several processes start at once,
    # one key wins and all of them read it.
    draft = path.with_name(f".secret_key.{os.getpid()}")
    draft.write_text(secrets.token_urlsafe(32))
    draft.chmod(0o600)
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


def _check(settings: dict) -> None:
    base = urlsplit(settings["BASE_URL"])
    if (
        base.scheme not in ("http", "https")
        or not base.netloc
        or base.path
        not in (
            "",
            "/",
        )
    ):
        raise ConfigError(
            "FEEDBACK_BASE_URL must be an origin such as https://feedback.example.com,"
            f" not {settings['BASE_URL']!r}"
        )
    settings["BASE_URL"] = settings["BASE_URL"].rstrip("/")

    try:
        make_url(settings["SQLALCHEMY_DATABASE_URI"]).get_dialect()
    except (ArgumentError, NoSuchModuleError):
        # The value is left out of the message: it may hold a password.
        raise ConfigError(
            "FEEDBACK_DATABASE_URL must be a database URL such as"
            " sqlite:////path/feedback.sqlite3 or postgresql+psycopg://host/db"
        ) from None

    settings["LOG_LEVEL"] = str(settings["LOG_LEVEL"]).upper()
    _one_of(settings, "LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"))
    _one_of(settings, "EMAIL_BACKEND", ("smtp", "outbox"))
    _one_of(settings, "SMS_BACKEND", ("twilio", "outbox"))
    if settings["EMAIL_BACKEND"] == "smtp":
        _require(settings, "SMTP_HOST", "FEEDBACK_EMAIL_BACKEND is smtp")
        _require(settings, "EMAIL_FROM", "FEEDBACK_EMAIL_BACKEND is smtp")
    if settings["SMS_BACKEND"] == "twilio":
        reason = "FEEDBACK_SMS_BACKEND is twilio"
        _require(settings, "TWILIO_ACCOUNT_SID", reason)
        _require(settings, "TWILIO_AUTH_TOKEN", reason)
        if not (settings["TWILIO_FROM"] or settings["TWILIO_MESSAGING_SERVICE_SID"]):
            raise ConfigError(
                "FEEDBACK_TWILIO_FROM or FEEDBACK_TWILIO_MESSAGING_SERVICE_SID is"
                f" required when {reason}"
            )
    api = urlsplit(settings["TWILIO_API_URL"])
    if api.scheme not in ("http", "https") or not api.netloc:
        raise ConfigError(
            "FEEDBACK_TWILIO_API_URL must be an http(s) URL, not"
            f" {settings['TWILIO_API_URL']!r}"
        )
    for key, kind in TYPED.items():
        if key == "THROTTLE_DAYS":
            # Zero is allowed: it turns throttling off.
            if settings[key] < 0:
                raise ConfigError(f"{PREFIX}{key} must be 0 or more")
        elif kind is not bool and not 0 < settings[key] < math.inf:
            raise ConfigError(f"{PREFIX}{key} must be a positive number")
    if settings["SMTP_PORT"] > 65535:
        raise ConfigError(f"{PREFIX}SMTP_PORT must be a port from 1 to 65535")
    if settings["THROTTLE_DAYS"] < 0:
        raise ConfigError(f"{PREFIX}THROTTLE_DAYS must be 0 (off) or more days")


def _one_of(settings: dict, key: str, choices: tuple) -> None:
    if settings[key] not in choices:
        raise ConfigError(
            f"{PREFIX}{key} must be one of {', '.join(choices)}, not {settings[key]!r}"
        )


def _require(settings: dict, key: str, reason: str) -> None:
    if not settings.get(key):
        raise ConfigError(f"{PREFIX}{key} is required when {reason}")
