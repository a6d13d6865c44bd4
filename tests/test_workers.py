"""Worker processes sharing one database: no duplicate, a killed worker, the rate."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy

from feedback import tokens
from feedback.delivery import rate
from feedback.models import Contact
from feedback.models import Invitation
from feedback.models import Message
from feedback.models import Survey
from feedback.models import db
from tests.conftest import BASE_URL

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).parent / "flask")
OPEN = ("pending", "claimed", "sending")


def seed(app, survey_data, emails: int, texts: int, per_contact: int = 1) -> None:
    """Put due messages straight into the outbox table, per_contact to each address."""
    now = datetime.now(UTC)
    secret = app.config["SECRET_KEY"]
    with app.app_context():
        survey = Survey(
            **survey_data, send_window_start="00:00", send_window_end="23:59"
        )
        db.session.add(survey)
        rows = []
        for number in range(emails + texts):
            channel = "email" if number < emails else "sms"
            address = (
                f"guest{number}@example.com"
                if channel == "email"
                else f"+4479{number:08d}"
            )
            if number % per_contact == 0:
                contact = Contact(
                    email=address if channel == "email" else None,
                    phone=address if channel == "sms" else None,
                    properties={},
                )
            address = contact.email or contact.phone
            nonce = tokens.new_nonce()
            invitation = Invitation(
                survey=survey,
                contact=contact,
                channel=channel,
                properties={},
                token_nonce=nonce,
                token_hash=tokens.digest(tokens.derive(secret, nonce)),
                unsubscribe_hash=tokens.digest(
                    tokens.derive(secret, nonce, "unsubscribe")
                ),
                send_at=now,
                expires_at=now + timedelta(days=14),
            )
            rows.append(
                Message(
                    invitation=invitation,
                    channel=channel,
                    to_address=address,
                    due_at=now,
                    status="pending",
                    status_history=[],
                )
            )
        db.session.add_all(rows)
        db.session.commit()


def worker_env(database_url, smtp_server, twilio_api, **settings) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FEEDBACK_")
    }
    values = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "BASE_URL": BASE_URL,
        "WORKER_POLL_SECONDS": "0.1",
        **{key: str(value) for key, value in smtp_server.settings().items()},
        **{key: str(value) for key, value in twilio_api.settings().items()},
        **{key: str(value) for key, value in settings.items()},
    }
    env.update({f"FEEDBACK_{key}": value for key, value in values.items()})
    return env


def start_worker(env, log_path) -> subprocess.Popen:
    log = open(log_path, "wb")  # noqa: SIM115 - closed when the process is reaped
    process = subprocess.Popen(
        [FLASK, "--app", "app", "feedback", "worker"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    process.log = log
    return process


def stop(processes, sig=signal.SIGTERM) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.log.close()


def open_count(app) -> int:
    with app.app_context():
        count = db.session.scalar(
            sqlalchemy.select(sqlalchemy.func.count(Message.id)).where(
                Message.status.in_(OPEN)
            )
        )
        db.session.remove()
        return count


def wait_until_drained(app, processes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if open_count(app) == 0:
            return
        dead = [p.args for p in processes if p.poll() is not None]
        assert not dead, f"a worker exited early: {dead}"
        time.sleep(0.2)
    raise AssertionError(f"{open_count(app)} messages still open after {timeout}s")


def messages(app) -> list:
    with app.app_context():
        rows = db.session.scalars(sqlalchemy.select(Message).order_by(Message.id)).all()
        db.session.expunge_all()
        return rows


@pytest.mark.postgresql_only
def test_four_workers_send_2000_messages_exactly_once(
    make_app, database_url, smtp_server, twilio_api, survey_data, tmp_path
):
    app = make_app()
    seed(app, survey_data, emails=1000, texts=1000)
    env = worker_env(
        database_url,
        smtp_server,
        twilio_api,
        SMS_RATE=5000,
        EMAIL_RATE=5000,
        WORKER_BATCH_SIZE=10,
    )
    workers = [start_worker(env, tmp_path / f"worker{n}.log") for n in range(4)]
    started = time.monotonic()
    try:
        wait_until_drained(app, workers, timeout=300)
    finally:
        stop(workers)
    elapsed = time.monotonic() - started

    received = Counter(address for m in smtp_server.messages for address in m["to"])
    texted = Counter(request["form"]["To"] for request in twilio_api.requests)
    assert len(received) == 1000 and set(received.values()) == {1}
    assert len(texted) == 1000 and set(texted.values()) == {1}
    assert set(received) == {f"guest{n}@example.com" for n in range(1000)}
    assert set(texted) == {f"+4479{n:08d}" for n in range(1000, 2000)}

    rows = messages(app)
    assert Counter(row.status for row in rows) == {"sent": 1000, "queued": 1000}
    assert {row.attempts for row in rows} == {1}
    assert len({row.claimed_by for row in rows}) == 4
    print(f"2000 messages by 4 workers in {elapsed:.1f}s")


@pytest.mark.postgresql_only
def test_the_sms_rate_holds_across_four_workers(
    make_app, database_url, smtp_server, twilio_api, survey_data, tmp_path
):
    app = make_app()
    seed(app, survey_data, emails=0, texts=60)
    per_second = 20
    env = worker_env(
        database_url,
        smtp_server,
        twilio_api,
        SMS_RATE=per_second,
        WORKER_BATCH_SIZE=5,
    )
    workers = [start_worker(env, tmp_path / f"worker{n}.log") for n in range(4)]
    try:
        wait_until_drained(app, workers, timeout=120)
    finally:
        stop(workers)

    arrivals = sorted(request["at"] for request in twilio_api.requests)
    assert len(arrivals) == 60
    # The n-th text can arrive no sooner than n-1 slots after the first; a little
    # slack for the first request's own latency.
    for index, arrived in enumerate(arrivals):
        assert arrived - arrivals[0] >= index / per_second - 0.15, index
    assert len({row.claimed_by for row in messages(app)}) > 1


def test_a_worker_killed_mid_batch_leaves_no_duplicate(
    make_app, database_url, smtp_server, twilio_api, survey_data, tmp_path
):
    app = make_app()
    seed(app, survey_data, emails=0, texts=30)
    twilio_api.delay_seconds = 0.3
    env = worker_env(
        database_url,
        smtp_server,
        twilio_api,
        SMS_RATE=1000,
        WORKER_BATCH_SIZE=10,
        WORKER_LEASE_SECONDS=3,
    )
    first = start_worker(env, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 60
        while len(twilio_api.requests) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(twilio_api.requests) >= 5
    finally:
        stop([first], signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    reached_before_kill = len(twilio_api.requests)
    assert open_count(app) > 0

    twilio_api.delay_seconds = 0
    second = start_worker(env, tmp_path / "second.log")
    try:
        wait_until_drained(app, [second], timeout=60)
    finally:
        stop([second])

    texted = Counter(request["form"]["To"] for request in twilio_api.requests)
    assert max(texted.values()) == 1
    rows = messages(app)
    statuses = Counter(row.status for row in rows)
    # At most the one text in flight at the kill ends unknown, and it is not resent.
    assert statuses["queued"] + statuses["unknown"] == 30
    assert statuses["unknown"] <= 1
    queued = {row.to_address for row in rows if row.status == "queued"}
    assert queued <= set(texted)
    assert len(texted) == statuses["queued"] + (1 if set(texted) - queued else 0)
    workers = {row.claimed_by for row in rows}
    assert len(workers) == 2
    assert len(twilio_api.requests) > reached_before_kill


def test_rate_slots_are_spaced_by_the_rate(make_app):
    app = make_app(SMS_RATE=4, EMAIL_RATE=10)
    now = datetime.now(UTC)
    with app.app_context():
        slots = [rate.reserve(app.config, "sms", now) for _ in range(5)]
        email = rate.reserve(app.config, "email", now)
        db.session.commit()
        later = rate.reserve(app.config, "sms", now + timedelta(seconds=10))
        db.session.commit()
    assert [(slot - now).total_seconds() for slot in slots] == [0, 0.25, 0.5, 0.75, 1]
    assert email == now
    # An idle channel does not bank slots: ten seconds on, the next one is now.
    assert later == now + timedelta(seconds=10)


def test_sigterm_stops_a_worker_after_its_current_message(
    make_app, database_url, smtp_server, twilio_api, survey_data, tmp_path
):
    app = make_app()
    seed(app, survey_data, emails=0, texts=20)
    twilio_api.delay_seconds = 0.2
    env = worker_env(
        database_url, smtp_server, twilio_api, SMS_RATE=1000, WORKER_BATCH_SIZE=10
    )
    process = start_worker(env, tmp_path / "worker.log")
    deadline = time.monotonic() + 60
    while len(twilio_api.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop([process])
    assert process.returncode == 0

    statuses = Counter(row.status for row in messages(app))
    assert statuses["queued"] == len(twilio_api.requests)
    assert 3 <= statuses["queued"] < 20
    # What it had claimed but not begun is handed back at once, not left to lapse.
    assert statuses["pending"] == 20 - statuses["queued"]


def test_workers_racing_on_one_contact_send_it_one_survey(
    make_app, database_url, smtp_server, twilio_api, survey_data, tmp_path
):
    app = make_app()
    # 40 contacts with two due invitations each, for four workers at once.
    seed(app, survey_data, emails=40, texts=40, per_contact=2)
    env = worker_env(
        database_url,
        smtp_server,
        twilio_api,
        SMS_RATE=5000,
        EMAIL_RATE=5000,
        # One claim at a time, so a contact's two invitations go to two workers.
        WORKER_BATCH_SIZE=1,
    )
    workers = [start_worker(env, tmp_path / f"worker{n}.log") for n in range(4)]
    try:
        wait_until_drained(app, workers, timeout=120)
    finally:
        stop(workers)

    received = Counter(address for m in smtp_server.messages for address in m["to"])
    texted = Counter(request["form"]["To"] for request in twilio_api.requests)
    assert len(received) == 20 and set(received.values()) == {1}
    assert len(texted) == 20 and set(texted.values()) == {1}
    with app.app_context():
        reasons = Counter(
            (invitation.status, invitation.suppression_reason)
            for invitation in db.session.scalars(sqlalchemy.select(Invitation))
        )
    assert reasons == {("sent", None): 40, ("suppressed", "throttled"): 40}
