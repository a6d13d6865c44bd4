"""Input no client should send, and what the service does with it."""

import pytest

from feedback import config
from feedback.cli import TOKEN_SEGMENT
from feedback.delivery import worker
from feedback.models import Contact
from feedback.models import Message
from feedback.models import Survey
from feedback.models import db
from tests.conftest import assert_error
from tests.conftest import create_survey
from tests.conftest import csrf_from
from tests.conftest import token_from
from tests.conftest import trigger_link


def count(app, model) -> int:
    with app.app_context():
        return db.session.query(model).count()


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("question", "How was it?\x00", "NUL"),
        ("follow_up", "Why\ud800", "surrogate"),
        ("touchpoint", "post\x00stay", "NUL"),
    ],
)
def test_unstorable_text_is_422_on_both_databases(app, api, field, value, problem):
    data = {
        "key": "post-stay-nps",
        "kind": "nps",
        "question": "How likely are you to recommend us?",
        "touchpoint": "post-stay",
        "stage": "retention",
        field: value,
    }

    error = assert_error(api.post("/api/v1/surveys", json=data), 422, "invalid")

    assert problem in error["message"]
    assert count(app, Survey) == 0


@pytest.mark.parametrize(
    "contact",
    [
        {"external_id": "guest\x00"},
        {"external_id": "guest-1", "name": "Ana\r\nBcc: everyone@example.com"},
        {"external_id": "guest-1", "properties": {"hotel\x00": "x"}},
    ],
)
def test_unstorable_contact_is_422(app, api, contact):
    create_survey(api)

    result = api.post(
        "/api/v1/invitations",
        json={"survey": "post-stay-nps", "channel": "link", "contact": contact},
    )

    assert_error(result, 422, "invalid")
    assert count(app, Contact) == 0


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/surveys/a%00b", 404, "not_found"),
        ("/api/v1/scores?survey=a%00b", 422, "invalid"),
        ("/api/v1/responses?survey=a%00b", 422, "invalid"),
        ("/api/v1/responses?survey=", 404, "not_found"),
    ],
)
def test_unstorable_survey_keys_in_paths_and_queries(api, path, status, code):
    assert_error(api.get(path), status, code)


def test_api_answers_are_not_cached(api):
    create_survey(api)

    invitation = trigger_link(api, "post-stay-nps", "guest-1")
    shown = api.get(f"/api/v1/invitations/{invitation['id']}")

    assert shown.headers["Cache-Control"] == "no-store"


def test_a_form_with_two_scores_is_refused(app, api, client):
    create_survey(api)
    invitation = trigger_link(api, "post-stay-nps", "guest-1")
    path = f"/s/{token_from(invitation['url'])}"
    page = client.get(path)

    sent = client.post(
        path,
        data={"score": ["3", "9"], "csrf_token": csrf_from(page.text)},
    )

    assert sent.status_code == 400
    assert "Choose a score" in sent.text


@pytest.mark.parametrize("path", ["/s/", "/s/a/b", "/s/abc/"])
def test_paths_under_the_page_answer_html_with_its_headers(client, path):
    shown = client.get(path)

    assert shown.status_code == 404
    assert shown.mimetype == "text/html"
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    assert shown.headers["Cache-Control"] == "no-store"


def test_a_message_that_cannot_be_built_fails_alone(app, api):
    create_survey(api)
    for number in (1, 2):
        created = api.post(
            "/api/v1/invitations",
            json={
                "survey": "post-stay-nps",
                "channel": "email",
                "contact": {"external_id": f"g{number}", "email": f"g{number}@ex.com"},
            },
        )
        assert created.status_code == 201
    # A name that slipped in before names were checked: no header can carry it.
    with app.app_context():
        contact = db.session.query(Contact).filter_by(external_id="g1").one()
        contact.name = "Ana\r\nBcc: x@example.com"
        db.session.commit()

    with app.app_context():
        worker.run_once()
        statuses = {
            message.invitation.contact.external_id: message.status
            for message in db.session.query(Message)
        }
        failed = db.session.query(Message).filter_by(status="failed").one()
        assert "cannot compose" in failed.last_error

    assert statuses == {"g1": "failed", "g2": "sent"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FEEDBACK_WORKER_POLL_SECONDS", "-1"),
        ("FEEDBACK_WORKER_POLL_SECONDS", "nan"),
        ("FEEDBACK_WORKER_LEASE_SECONDS", "-5"),
        ("FEEDBACK_SMTP_TIMEOUT", "0"),
    ],
)
def test_non_positive_worker_settings_stop_start_up(tmp_path, name, value):
    with pytest.raises(config.ConfigError, match=name):
        config.load(str(tmp_path), environ={name: value})


def test_secret_key_made_once_is_read_by_everyone(tmp_path):
    first = config.load(str(tmp_path), environ={})["SECRET_KEY"]
    second = config.load(str(tmp_path), environ={})["SECRET_KEY"]

    assert first == second
    assert [path.name for path in tmp_path.iterdir()] == ["secret_key"]


def test_development_log_lines_hide_tokens():
    line = "GET /s/QmaLTRZxBMghxmM6rij9wf?score=10 HTTP/1.1"

    assert TOKEN_SEGMENT.sub("/<token>", line) == "GET /s/<token>?score=10 HTTP/1.1"
