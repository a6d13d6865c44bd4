"""Errors: one JSON shape, and an unexpected one logged, rolled back and hidden."""

import logging

import pytest
from sqlalchemy import func
from sqlalchemy import select

from feedback.models import ApiKey
from feedback.models import db
from tests.conftest import assert_error


@pytest.fixture
def failing_app(make_app):
    """An app with a view that writes a row, then fails."""
    app = make_app()
    seen = {}

    def fail():
        db.session.add(ApiKey(name="half-written", key_hash="0" * 64))
        db.session.flush()
        raise RuntimeError("the view broke")

    @app.after_request
    def count_rows(response):
        # Runs after the error handler, in the same session.
        seen["rows"] = db.session.scalar(select(func.count()).select_from(ApiKey))
        return response

    app.add_url_rule("/api/v1/failing", "failing", fail)
    app.seen = seen
    return app


def test_unexpected_error_is_logged_rolled_back_and_500(failing_app, caplog):
    client = failing_app.test_client()

    with caplog.at_level(logging.ERROR, logger="feedback.errors"):
        result = client.get("/api/v1/failing")

    error = assert_error(result, 500, "internal_error")
    assert error["details"] is None
    assert "broke" not in result.text
    (record,) = [r for r in caplog.records if r.name == "feedback.errors"]
    assert record.levelno == logging.ERROR
    assert record.exc_info[0] is RuntimeError
    assert "the view broke" in caplog.text
    assert "Traceback" in caplog.text
    assert "/api/v1/failing" in record.getMessage()

    assert failing_app.seen["rows"] == 0
    with failing_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_a_request_after_a_failure_works(failing_app):
    client = failing_app.test_client()

    assert client.get("/api/v1/failing").status_code == 500
    assert client.get("/api/v1/surveys").status_code == 401


@pytest.mark.parametrize("with_key", [True, False])
@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/v1/nothing-here", 404, "not_found"),
        ("get", "/api/v1/", 404, "not_found"),
        ("delete", "/api/v1/surveys", 405, "method_not_allowed"),
        ("put", "/api/v1/surveys/post-stay-nps", 405, "method_not_allowed"),
        ("delete", "/api/v1/invitations", 405, "method_not_allowed"),
        ("post", "/api/v1/scores", 405, "method_not_allowed"),
    ],
)
def test_unknown_routes_and_methods_answer_json(
    api, method, path, status, code, with_key
):
    caller = api if with_key else api.client

    result = getattr(caller, method)(path)

    assert result.mimetype == "application/json"
    assert_error(result, status, code)


def test_too_large_body_answers_json(api):
    result = api.post(
        "/api/v1/surveys",
        data='{"key": "' + "x" * (2 * 1024 * 1024) + '"}',
        content_type="application/json",
    )

    assert_error(result, 413, "too_large")
