"""The email opt-out page in a real browser: confirm, then one tap to unsubscribe."""

import sqlalchemy
from playwright.sync_api import expect

from feedback import invitations
from feedback.delivery import worker
from feedback.models import Invitation
from feedback.models import Suppression
from feedback.models import db
from tests.conftest import create_survey
from tests.test_survey_browser import browser  # noqa: F401 - a shared fixture
from tests.test_survey_browser import live  # noqa: F401 - a shared fixture
from tests.test_survey_browser import phone  # noqa: F401 - a shared fixture


def test_a_person_unsubscribes_in_two_steps(live, phone):  # noqa: F811
    create_survey(live.api)
    created = live.api.post(
        "/api/v1/invitations",
        json={
            "survey": "post-stay-nps",
            "channel": "email",
            "contact": {"email": "zoe@example.org"},
        },
    )
    assert created.status_code == 201
    with live.app_context():
        assert worker.run_once() == 1
        link = invitations.unsubscribe_url(
            db.session.get(Invitation, created.json["id"])
        )

    def listed():
        with live.app_context():
            return db.session.scalar(
                sqlalchemy.select(sqlalchemy.func.count(Suppression.id))
            )

    phone.goto(link)
    expect(phone.get_by_role("heading", level=1)).to_have_text(
        "Unsubscribe from survey emails?"
    )
    assert listed() == 0

    phone.get_by_role("button", name="Unsubscribe").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    assert listed() == 1
    assert phone.context.cookies() == []
    assert phone.problems == []
