"""The survey page in a real browser: a phone-sized Chromium without JavaScript."""

import threading

import pytest
from playwright.sync_api import expect
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.serving import make_server

from feedback import invitations
from feedback.delivery import worker
from feedback.models import Invitation
from feedback.models import Response
from feedback.models import Suppression
from feedback.models import db
from tests.conftest import ApiClient
from tests.conftest import create_survey
from tests.conftest import trigger_link
from tests.servers import free_port

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "java_script_enabled": False,
}
SELECTED_BLUE = "rgb(11, 83, 148)"


@pytest.fixture
def live(make_app):
    """The app served over real HTTP on loopback, its links on that origin."""
    port = free_port()
    app = make_app(BASE_URL=f"http://127.0.0.1:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.api = ApiClient.for_app(app)
    yield app
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def phone(browser):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda entry: page.problems.append(entry.text))
    page.on("requestfailed", lambda request: page.problems.append(request.url))
    # The page has no icon; the browser's own request for one is not a problem.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    yield page
    context.close()


def stored(app) -> list[tuple]:
    with app.app_context():
        return db.session.execute(select(Response.score, Response.comment)).all()


def test_answer_on_a_phone(live, phone):
    create_survey(live.api)
    invitation = trigger_link(live.api, "post-stay-nps", "guest-1")

    phone.goto(invitation["url"])

    labels = phone.locator(".options label")
    assert labels.all_inner_texts() == [str(value) for value in range(11)]
    for label in labels.all():
        box = label.bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44, box
    expect(phone.get_by_text("0 = Not at all likely")).to_be_visible()
    expect(phone.get_by_text("10 = Extremely likely")).to_be_visible()

    phone.locator("label[for=score-9]").tap()
    assert phone.is_checked("#score-9")
    # The stylesheet loads under the page's CSP: the chosen score turns blue.
    colour = phone.locator("label[for=score-9]").evaluate(
        "label => getComputedStyle(label).backgroundColor"
    )
    assert colour == SELECTED_BLUE
    phone.fill("#comment", "Schönes Zimmer 😀")
    phone.get_by_role("button", name="Send").tap()

    expect(phone.get_by_role("heading", name="Thank you")).to_be_visible()
    assert stored(live) == [(9, "Schönes Zimmer 😀")]
    # Nothing is kept on the phone: no cookie to consent to, none to block.
    assert phone.context.cookies() == []
    assert phone.problems == []


def test_score_from_the_link_is_chosen_and_only_sent_on_tap(live, phone):
    create_survey(live.api, key="interview-csat", kind="csat", stage="onboarding")
    invitation = trigger_link(live.api, "interview-csat", "cand-1")

    phone.goto(invitation["url"] + "?score=2")

    assert phone.is_checked("#score-2")
    assert phone.locator(".options label").all_inner_texts() == list("12345")
    assert stored(live) == []
    with live.app_context():
        assert db.session.get(Invitation, invitation["id"]).answered_at is None

    phone.get_by_role("button", name="Send").tap()

    expect(phone.get_by_role("heading", name="Thank you")).to_be_visible()
    assert stored(live) == [(2, None)]
    assert phone.problems == []


def test_change_the_answer_from_the_thank_you_page(live, phone):
    create_survey(live.api)
    invitation = trigger_link(live.api, "post-stay-nps", "guest-1")
    phone.goto(invitation["url"])
    phone.locator("label[for=score-4]").tap()
    phone.get_by_role("button", name="Send").tap()

    phone.get_by_role("link", name="change your answer").tap()

    assert phone.is_checked("#score-4")
    phone.locator("label[for=score-8]").tap()
    phone.get_by_role("button", name="Send").tap()
    expect(phone.get_by_role("heading", name="Thank you")).to_be_visible()
    assert stored(live) == [(8, None)]


def test_sending_without_a_score_explains_what_to_do(live, phone):
    create_survey(live.api)
    invitation = trigger_link(live.api, "post-stay-nps", "guest-1")
    phone.goto(invitation["url"])
    phone.fill("#comment", "No score yet")

    phone.get_by_role("button", name="Send").tap()

    alert = phone.get_by_role("alert")
    expect(alert).to_contain_text("Choose a score before sending.")
    assert phone.input_value("#comment") == "No score yet"
    assert stored(live) == []


def test_a_closed_link_shows_the_friendly_page(live, phone):
    answer = phone.goto(f"{live.config['BASE_URL']}/s/{'A' * 22}")

    assert answer.status == 404
    heading = phone.get_by_role("heading", name="This survey is not available")
    expect(heading).to_be_visible()
    assert phone.locator("input").count() == 0


def test_a_person_unsubscribes_from_emails_in_two_steps(live, phone):
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
            return db.session.scalar(select(func.count(Suppression.id)))

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
