"""Fixtures: an app on a fresh SQLite or PostgreSQL database, a client, an API key."""

import os
import re
import shutil
from datetime import UTC
from datetime import datetime

import pytest
import sqlalchemy
from flask_migrate import upgrade

from feedback import auth
from feedback import create_app
from feedback.models import db

pytest_plugins = ["tests.servers"]

POSTGRES_URL = os.environ.get(
    "FEEDBACK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("FEEDBACK_REQUIRE_POSTGRES") == "1"
CHROMIUM = os.environ.get("FEEDBACK_TEST_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("FEEDBACK_REQUIRE_BROWSER") == "1"
# Chromium reaches for its vendor's services at start; these keep it on loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BASE_URL = "https://feedback.example.com"


def _postgres_unavailable() -> str | None:
    engine = sqlalchemy.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return None
    except sqlalchemy.exc.OperationalError as error:
        return str(error.orig).strip().splitlines()[0]
    finally:
        engine.dispose()


def _reset_postgres() -> None:
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def pytest_collection_modifyitems(config, items):
    """Tests marked postgresql_only never run on SQLite: they are deselected there."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec else None
        if item.get_closest_marker("postgresql_only") and backend != "postgresql":
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    """A migrated database per backend, made once per run; tests empty it."""
    if request.param == "postgresql":
        problem = _postgres_unavailable()
        if problem:
            reason = f"PostgreSQL at {POSTGRES_URL} is not reachable: {problem}"
            if REQUIRE_POSTGRES:
                pytest.fail(reason)
            pytest.skip(reason)
        _reset_postgres()
        url = POSTGRES_URL
    else:
        url = "sqlite:///" + str(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "migrations"})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


def browser_missing(reason: str) -> None:
    """Skip a browser test that cannot run, or fail it where it must run."""
    if REQUIRE_BROWSER:
        pytest.fail(f"browser tests are required but cannot run: {reason}")
    pytest.skip(f"{reason}; FEEDBACK_REQUIRE_BROWSER=1 makes this a failure")


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for every browser test; Playwright runs one at a time."""
    if not shutil.which(CHROMIUM):
        browser_missing(
            f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        browser_missing("the playwright package is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def make_app(database_url, tmp_path):
    """Build an app on the test database with extra settings."""
    apps = []

    def build(**settings):
        config = {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "BASE_URL": BASE_URL,
            "OUTBOX_DIR": str(tmp_path / "outbox"),
            "WORKER_POLL_SECONDS": 0.05,
        }
        config.update(settings)
        app = create_app(config)
        if not apps:
            with app.app_context():
                _empty_tables()
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


def _empty_tables() -> None:
    tables = [table.name for table in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(
            sqlalchemy.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        )
    else:
        for table in tables:
            db.session.execute(sqlalchemy.text(f"DELETE FROM {table}"))
    db.session.commit()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api_key(app):
    with app.app_context():
        return auth.create_key("tests")


@pytest.fixture
def api(client, api_key):
    """The test client with the API key in every request."""
    return ApiClient(client, api_key)


class ApiClient:
    """A test client that sends an API key with every request."""

    def __init__(self, client, key):
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    @classmethod
    def for_app(cls, app):
        with app.app_context():
            key = auth.create_key("tests")
        return cls(app.test_client(), key)

    def __getattr__(self, method):
        def call(path, headers=None, **kwargs):
            return getattr(self.client, method)(
                path, headers={**self.headers, **(headers or {})}, **kwargs
            )

        return call


def midday_zone(now: datetime | None = None) -> str:
    """A fixed-offset zone where it is about noon now, inside every send window."""
    hour = (now or datetime.now(UTC)).hour
    offset = 12 - hour
    if offset == 0:
        return "Etc/GMT"
    # The Etc zones count the other way round: Etc/GMT-3 is three hours ahead.
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@pytest.fixture
def survey_data():
    return {
        "key": "post-stay-nps",
        "kind": "nps",
        "question": "How likely are you to recommend our hotel to a friend?",
        "follow_up": "What is the main reason for your score?",
        "touchpoint": "post-stay",
        "stage": "retention",
        # Tests send at any hour of the day; windows have tests of their own.
        "timezone": midday_zone(),
    }


def token_from(url: str) -> str:
    match = re.search(r"/s/([A-Za-z0-9]+)", url)
    assert match, url
    return match.group(1)


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def new_invitation(api, survey: dict, contact: dict | None = None, **trigger):
    """Create the survey unless it exists, then a link invitation; return its JSON."""
    if api.get(f"/api/v1/surveys/{survey['key']}").status_code == 404:
        created = api.post("/api/v1/surveys", json=survey)
        assert created.status_code == 201, created.json
    body = {
        "survey": survey["key"],
        "contact": contact or {"email": "guest@example.com"},
        "channel": "link",
        **trigger,
    }
    response = api.post("/api/v1/invitations", json=body)
    assert response.status_code == 201, response.json
    return response.json


def page_path(invitation: dict) -> str:
    return "/s/" + token_from(invitation["url"])


def create_survey(api, **changes) -> dict:
    """Create a survey through the API and return its JSON."""
    data = {
        "key": "post-stay-nps",
        "kind": "nps",
        "question": "How likely are you to recommend our hotel to a friend?",
        "touchpoint": "post-stay",
        "stage": "retention",
        # Messages go out whatever the hour the tests run at.
        "timezone": midday_zone(),
    }
    data.update(changes)
    created = api.post("/api/v1/surveys", json=data)
    assert created.status_code == 201, created.json
    return created.json


def trigger_link(api, survey: str, external_id: str, **fields) -> dict:
    """Trigger a link invitation (nothing is sent) and return its JSON."""
    body = {
        "survey": survey,
        "channel": "link",
        "contact": {"external_id": external_id},
    }
    body.update(fields)
    created = api.post("/api/v1/invitations", json=body)
    assert created.status_code == 201, created.json
    return created.json


def answer_page(client, url: str, score, comment: str = ""):
    """Open the personal link as a respondent and send the form."""
    path = url.removeprefix(BASE_URL)
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(
        path,
        data={
            "score": str(score),
            "comment": comment,
            "csrf_token": csrf_from(page.text),
        },
    )


def set_columns(app, model, row_id: int, **values) -> None:
    """Change stored columns directly, as time passing or an operator would."""
    with app.app_context():
        row = db.session.get(model, row_id)
        for name, value in values.items():
            setattr(row, name, value)
        db.session.commit()


def assert_error(response, status: int, code: str | None = None) -> dict:
    """Check the one JSON error shape (and its code, when given); return the error."""
    assert response.status_code == status, response.json
    assert set(response.json) == {"error"}
    error = response.json["error"]
    assert set(error) == {"code", "message", "details"}
    if code is not None:
        assert error["code"] == code
    assert error["message"]
    return error


def post_survey(api, survey_data: dict, **rules) -> dict:
    """Create a survey from the fixture's data with changed fields; return its JSON."""
    response = api.post("/api/v1/surveys", json={**survey_data, **rules})
    assert response.status_code == 201, response.json
    return response.json


def post_invitation(api, contact, channel="email", survey="post-stay-nps", **extra):
    """Trigger an invitation for a contact and return its JSON."""
    response = api.post(
        "/api/v1/invitations",
        json={"survey": survey, "channel": channel, "contact": contact, **extra},
    )
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def answer(app, monkeypatch):
    """Store an answer at a given time through the real storing code."""
    from datetime import timedelta

    from feedback import responses
    from feedback import tokens
    from feedback.models import Contact
    from feedback.models import Invitation
    from feedback.models import Survey

    made = []

    def store(survey_key, score, at, properties=None, channel="web", contact=None):
        monkeypatch.setattr(responses, "utcnow", lambda: at)
        with app.app_context():
            survey = db.session.scalar(
                sqlalchemy.select(Survey).where(Survey.key == survey_key)
            )
            person = Contact(
                external_id=contact or f"guest-{len(made)}",
                email=f"guest{len(made)}@example.com",
                phone="+4915112345678",
                properties={},
            )
            nonce = tokens.new_nonce()
            invitation = Invitation(
                survey=survey,
                contact=person,
                channel="link",
                status="sent",
                properties=properties or {},
                token_nonce=nonce,
                token_hash=tokens.digest(tokens.derive("test-secret", nonce)),
                send_at=at - timedelta(minutes=5),
                expires_at=at + timedelta(days=14),
            )
            db.session.add(invitation)
            db.session.commit()
            response, _ = responses.record(invitation, score, None, channel)
            made.append(response.id)
            return invitation.id

    return store


@pytest.fixture
def change(app, monkeypatch):
    """Change the answer to an invitation at a given time."""
    from feedback import responses
    from feedback.models import Invitation

    def store(invitation_id, score, at, channel="web", comment=None):
        monkeypatch.setattr(responses, "utcnow", lambda: at)
        with app.app_context():
            invitation = db.session.get(Invitation, invitation_id)
            responses.record(invitation, score, comment, channel)

    return store


def make_survey(api, key, kind="nps", **extra):
    body = {
        "key": key,
        "kind": kind,
        "question": "How likely are you to recommend us?",
        "touchpoint": "post-stay",
        "stage": "retention",
        **extra,
    }
    response = api.post("/api/v1/surveys", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()
