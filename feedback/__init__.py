"""feedback: survey links by email and SMS, answers on a phone, scores over an API."""

import logging
from pathlib import Path

from flask import Flask

from feedback import config
from feedback.json_answers import AnswerJSONProvider

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: defaults, then FEEDBACK_* variables, then the test mapping."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping(config.load(app.instance_path, overrides=test_config))
    app.config.update(
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(
            app.config["SQLALCHEMY_DATABASE_URI"]
        ),
        API_TITLE="feedback",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=app.config["BASE_URL"].startswith("https://"),
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.json = AnswerJSONProvider(app)
    app.json.sort_keys = False
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    _configure_logging(app.config["LOG_LEVEL"])

    from feedback import api
    from feedback import assets
    from feedback import cli
    from feedback import i18n
    from feedback import score_counts
    from feedback import survey_page
    from feedback import unsubscribe
    from feedback import webhooks
    from feedback.extensions import MIGRATE_OPTIONS
    from feedback.extensions import migrate
    from feedback.models import db

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), **MIGRATE_OPTIONS)
    i18n.init_app(app, ROOT / "translations")
    assets.init_app(app)
    api.init_app(app)
    app.register_blueprint(survey_page.bp)
    app.register_blueprint(unsubscribe.bp)
    app.register_blueprint(webhooks.bp)
    cli.init_app(app)
    score_counts.init_app(app)
    return app


def _configure_logging(level: str) -> None:
    """Log our own events at the chosen level; other libraries only their warnings."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("feedback").setLevel(level)


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        # Writers wait for each other instead of failing at once with "locked".
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}
