"""Settings from FEEDBACK_* variables, and a clear stop when one is wrong."""

import os
import subprocess
import sys

import pytest

from feedback import ROOT
from feedback import create_app
from feedback.config import ConfigError

TWILIO = {
    "FEEDBACK_SMS_BACKEND": "twilio",
    "FEEDBACK_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "FEEDBACK_TWILIO_AUTH_TOKEN": "token",
    "FEEDBACK_TWILIO_FROM": "+15005550006",
    "FEEDBACK_TWILIO_API_URL": "http://127.0.0.1:9",
}


@pytest.fixture
def environ(monkeypatch, tmp_path):
    """A clean FEEDBACK_* environment with a scratch database and secret."""
    for name in list(os.environ):
        if name.startswith("FEEDBACK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FEEDBACK_DATABASE_URL", f"sqlite:///{tmp_path}/config.db")
    monkeypatch.setenv("FEEDBACK_SECRET_KEY", "config-secret")
    monkeypatch.setenv("FEEDBACK_OUTBOX_DIR", str(tmp_path / "outbox"))

    def set_all(values: dict) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    return set_all


def test_settings_come_from_the_environment(environ, tmp_path):
    environ(
        {
            "FEEDBACK_BASE_URL": "https://feedback.example.com/",
            "FEEDBACK_EMAIL_BACKEND": "smtp",
            "FEEDBACK_SMTP_HOST": "127.0.0.1",
            "FEEDBACK_SMTP_PORT": "2525",
            "FEEDBACK_SMTP_STARTTLS": "yes",
            "FEEDBACK_SMTP_USERNAME": "mailer",
            "FEEDBACK_EMAIL_FROM": "Hotel <feedback@hotel.example.com>",
            **TWILIO,
        }
    )

    config = create_app().config

    assert config["BASE_URL"] == "https://feedback.example.com"
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/config.db"
    assert config["SECRET_KEY"] == "config-secret"
    assert config["SMTP_PORT"] == 2525
    assert config["SMTP_STARTTLS"] is True
    assert config["SMTP_USERNAME"] == "mailer"
    assert config["TWILIO_FROM"] == "+15005550006"
    assert config["TWILIO_API_URL"] == "http://127.0.0.1:9"
    assert config["OUTBOX_DIR"] == str(tmp_path / "outbox")
    assert config["SESSION_COOKIE_SECURE"] is True


def test_defaults(environ):
    config = create_app().config

    assert config["BASE_URL"] == "http://127.0.0.1:5000"
    assert config["EMAIL_BACKEND"] == "outbox"
    assert config["SMS_BACKEND"] == "outbox"
    assert config["SMTP_PORT"] == 25
    assert config["SMTP_STARTTLS"] is False
    assert config["COMMENT_MAX_LENGTH"] == 2000


def test_messaging_service_instead_of_a_number(environ):
    environ(
        {
            **TWILIO,
            "FEEDBACK_TWILIO_FROM": None,
            "FEEDBACK_TWILIO_MESSAGING_SERVICE_SID": "MG" + "1" * 32,
        }
    )

    assert create_app().config["TWILIO_MESSAGING_SERVICE_SID"] == "MG" + "1" * 32


def test_the_test_mapping_wins_over_the_environment(environ):
    environ({"FEEDBACK_BASE_URL": "https://from-env.example.com"})

    app = create_app({"BASE_URL": "https://from-mapping.example.com"})

    assert app.config["BASE_URL"] == "https://from-mapping.example.com"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"FEEDBACK_BASE_URL": "feedback.example.com"}, "FEEDBACK_BASE_URL"),
        ({"FEEDBACK_BASE_URL": "ftp://feedback.example.com"}, "FEEDBACK_BASE_URL"),
        ({"FEEDBACK_BASE_URL": "https://example.com/app"}, "FEEDBACK_BASE_URL"),
        ({"FEEDBACK_BASE_URL": "https://"}, "FEEDBACK_BASE_URL"),
        ({"FEEDBACK_EMAIL_BACKEND": "sendgrid"}, "FEEDBACK_EMAIL_BACKEND"),
        ({"FEEDBACK_EMAIL_BACKEND": "smtp"}, "FEEDBACK_SMTP_HOST"),
        (
            {
                "FEEDBACK_EMAIL_BACKEND": "smtp",
                "FEEDBACK_SMTP_HOST": "127.0.0.1",
                "FEEDBACK_EMAIL_FROM": "",
            },
            "FEEDBACK_EMAIL_FROM",
        ),
        ({"FEEDBACK_SMS_BACKEND": "carrier-pigeon"}, "FEEDBACK_SMS_BACKEND"),
        (
            {**TWILIO, "FEEDBACK_TWILIO_ACCOUNT_SID": None},
            "FEEDBACK_TWILIO_ACCOUNT_SID",
        ),
        ({**TWILIO, "FEEDBACK_TWILIO_AUTH_TOKEN": ""}, "FEEDBACK_TWILIO_AUTH_TOKEN"),
        ({**TWILIO, "FEEDBACK_TWILIO_FROM": None}, "FEEDBACK_TWILIO_FROM"),
        ({**TWILIO, "FEEDBACK_TWILIO_API_URL": "localhost:8080"}, "TWILIO_API_URL"),
        ({"FEEDBACK_SMTP_PORT": "twenty-five"}, "FEEDBACK_SMTP_PORT"),
        ({"FEEDBACK_SMTP_PORT": "0"}, "FEEDBACK_SMTP_PORT"),
        ({"FEEDBACK_SMTP_PORT": "70000"}, "FEEDBACK_SMTP_PORT"),
        ({"FEEDBACK_SMTP_STARTTLS": "maybe"}, "FEEDBACK_SMTP_STARTTLS"),
        ({"FEEDBACK_WORKER_BATCH_SIZE": "-3"}, "FEEDBACK_WORKER_BATCH_SIZE"),
        ({"FEEDBACK_LOG_LEVEL": "loud"}, "FEEDBACK_LOG_LEVEL"),
        ({"FEEDBACK_DATABASE_URL": "not a url"}, "FEEDBACK_DATABASE_URL"),
        ({"FEEDBACK_DATABASE_URL": "nosuchdb://h/db"}, "FEEDBACK_DATABASE_URL"),
    ],
)
def test_a_bad_setting_stops_start_up_and_is_named(environ, values, named):
    environ(values)

    with pytest.raises(ConfigError) as raised:
        create_app()

    assert named in str(raised.value)


def test_the_database_password_is_not_repeated(environ):
    environ({"FEEDBACK_DATABASE_URL": "nosuchdb://feedback:s3cret-pw@db/feedback"})

    with pytest.raises(ConfigError) as raised:
        create_app()

    assert "s3cret-pw" not in str(raised.value)


def run_app_import(tmp_path, **values) -> subprocess.CompletedProcess:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("FEEDBACK_")
    }
    env.update(
        FEEDBACK_DATABASE_URL=f"sqlite:///{tmp_path}/import.db",
        FEEDBACK_SECRET_KEY="import-secret",
        FEEDBACK_OUTBOX_DIR=str(tmp_path / "outbox"),
    )
    env.update(values)
    return subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_starting_with_a_bad_setting_exits_with_a_clean_message(tmp_path):
    result = run_app_import(tmp_path, FEEDBACK_EMAIL_BACKEND="smtp")

    assert result.returncode == 1
    assert result.stderr == (
        "feedback: cannot start: FEEDBACK_SMTP_HOST is required when"
        " FEEDBACK_EMAIL_BACKEND is smtp\n"
    )
    assert result.stdout == ""


def test_starting_with_good_settings_works(tmp_path):
    result = run_app_import(tmp_path, FEEDBACK_BASE_URL="https://feedback.example.com")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
