"""The command line: API keys, the worker's single pass, the local key."""

import hashlib
import re
import stat

import pytest
import sqlalchemy
from sqlalchemy import select

from feedback.models import ApiKey
from feedback.models import db
from tests.conftest import ApiClient
from tests.conftest import create_survey


def stored_keys(app) -> list:
    with app.app_context():
        return db.session.execute(
            sqlalchemy.text("SELECT * FROM api_keys ORDER BY id")
        ).all()


def test_create_api_key_prints_it_once_and_stores_its_hash(app):
    runner = app.test_cli_runner()

    result = runner.invoke(args=["feedback", "create-api-key", "crm"])

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    key = lines[0].strip()
    assert len(key) >= 32
    (row,) = stored_keys(app)
    assert row.name == "crm"
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert all(key not in str(value) for value in row)

    client = app.test_client()
    allowed = client.get("/api/v1/surveys", headers={"Authorization": f"Bearer {key}"})
    assert allowed.status_code == 200
    wrong = client.get("/api/v1/surveys", headers={"Authorization": f"Bearer {key}x"})
    assert wrong.status_code == 401

    second = runner.invoke(args=["feedback", "create-api-key", "crm"]).output.strip()
    assert second != key
    assert len(stored_keys(app)) == 2


def test_create_api_key_needs_a_name(app):
    result = app.test_cli_runner().invoke(args=["feedback", "create-api-key"])

    assert result.exit_code != 0
    assert "NAME" in result.output
    assert stored_keys(app) == []


def test_worker_once_sends_what_is_due(app, api, tmp_path):
    create_survey(api)
    for number, (channel, delay) in enumerate(
        [("email", 0), ("sms", 0), ("email", 60), ("link", 0)]
    ):
        created = api.post(
            "/api/v1/invitations",
            json={
                "survey": "post-stay-nps",
                "channel": channel,
                "delay_minutes": delay,
                "contact": {
                    "external_id": f"guest-{number}",
                    "email": f"guest{number}@example.com",
                    "phone": "+442079460000",
                },
            },
        )
        assert created.status_code == 201
    runner = app.test_cli_runner()

    first = runner.invoke(args=["feedback", "worker", "--once"])
    second = runner.invoke(args=["feedback", "worker", "--once"])

    assert first.exit_code == 0, first.output
    assert first.output.strip() == "2 message(s) handled."
    assert second.output.strip() == "0 message(s) handled."
    names = sorted(path.name for path in (tmp_path / "outbox").iterdir())
    assert len(names) == 2
    assert [name.rsplit("-", 1)[1] for name in names] == sorted(["1.eml", "2.sms.txt"])


def test_local_api_key_is_made_once(app, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    runner = app.test_cli_runner()

    first = runner.invoke(args=["feedback", "local-api-key"])
    second = runner.invoke(args=["feedback", "local-api-key"])

    assert first.exit_code == 0, first.output
    path = tmp_path / "local_api_key"
    key = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for result in (first, second):
        assert re.findall(r"fbk_[A-Za-z0-9_-]+", result.output) == [key, key]
        assert "http://" in result.output or "https://" in result.output
    with app.app_context():
        names = db.session.scalars(select(ApiKey.name)).all()
    assert names == ["local"]
    listed = ApiClient(app.test_client(), key).get("/api/v1/surveys")
    assert listed.status_code == 200


def test_local_api_key_is_replaced_when_the_database_lost_it(
    app, tmp_path, monkeypatch
):
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    (tmp_path / "local_api_key").write_text("fbk_from-another-database\n")

    result = app.test_cli_runner().invoke(args=["feedback", "local-api-key"])

    assert result.exit_code == 0, result.output
    key = (tmp_path / "local_api_key").read_text().strip()
    assert key != "fbk_from-another-database"
    assert key in result.output
    assert ApiClient(app.test_client(), key).get("/api/v1/surveys").status_code == 200


def test_a_revoked_api_key_gets_401_at_once(app):
    runner = app.test_cli_runner()
    crm = runner.invoke(args=["feedback", "create-api-key", "crm"]).output.strip()
    bi = runner.invoke(args=["feedback", "create-api-key", "bi"]).output.strip()
    client = app.test_client()

    result = runner.invoke(args=["feedback", "revoke-api-key", "crm"])

    assert result.exit_code == 0, result.output
    assert "Revoked 1 API key called 'crm'." in result.output
    refused = client.get("/api/v1/surveys", headers={"Authorization": f"Bearer {crm}"})
    assert refused.status_code == 401
    kept = client.get("/api/v1/surveys", headers={"Authorization": f"Bearer {bi}"})
    assert kept.status_code == 200
    assert [row.name for row in stored_keys(app)] == ["bi"]


def test_revoking_an_unknown_name_fails_and_changes_nothing(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["feedback", "create-api-key", "crm"])

    result = runner.invoke(args=["feedback", "revoke-api-key", "pms"])

    assert result.exit_code == 1
    assert "There is no API key called 'pms'." in result.output
    assert [row.name for row in stored_keys(app)] == ["crm"]


def test_listing_api_keys_shows_names_never_keys(app):
    runner = app.test_cli_runner()
    assert "No API keys yet" in runner.invoke(args=["feedback", "list-api-keys"]).output
    keys = [
        runner.invoke(args=["feedback", "create-api-key", name]).output.strip()
        for name in ("crm", "bi")
    ]

    result = runner.invoke(args=["feedback", "list-api-keys"])

    assert result.exit_code == 0, result.output
    names = [line.split("\t")[0] for line in result.output.strip().splitlines()]
    assert names == ["bi", "crm"]
    hashes = [row.key_hash for row in stored_keys(app)]
    assert all(secret not in result.output for secret in keys + hashes)


@pytest.mark.parametrize("name", ["", "   ", "k" * 101, "crm\x00", "tab\tbed"])
def test_an_api_key_needs_a_short_printable_name(app, name):
    result = app.test_cli_runner().invoke(args=["feedback", "create-api-key", name])

    assert result.exit_code == 2
    assert "printable characters" in result.output
    assert stored_keys(app) == []


def test_an_api_key_name_of_100_characters_is_kept(app):
    result = app.test_cli_runner().invoke(
        args=["feedback", "create-api-key", "k" * 100]
    )

    assert result.exit_code == 0, result.output
    assert [row.name for row in stored_keys(app)] == ["k" * 100]
