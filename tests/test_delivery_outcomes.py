"""How a message's outcome shows: status reports in any order, failed and unknown
invitations, and the reminder of a first message that did not arrive."""

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import sqlalchemy

from feedback.delivery import statuses
from feedback.delivery import worker
from feedback.models import EarlyStatus
from feedback.models import Message
from feedback.models import db
from tests.conftest import ApiClient
from tests.conftest import answer_page
from tests.conftest import post_invitation
from tests.conftest import post_survey
from tests.conftest import set_columns
from tests.servers import post_status

PHONE = "+447911123456"


@pytest.fixture
def api(twilio_app):
    return ApiClient.for_app(twilio_app)


def run(app, hours=None):
    """One worker pass, now or so many hours from now."""
    now = datetime.now(UTC) + timedelta(hours=hours) if hours else None
    with app.app_context():
        return worker.run_once(now=now)


def early_reports(app):
    with app.app_context():
        return db.session.scalars(
            sqlalchemy.select(EarlyStatus.provider_id).order_by(EarlyStatus.id)
        ).all()


# Twilio's reports for one text, and what they must leave behind: the message's
# status, error code and history after "queued", the invitation's status, and
# whether the reminder is still to go out.
REPORTS = [
    pytest.param(
        [("sent", None), ("delivered", None)],
        ("delivered", None, ["sent", "delivered"], "sent", True),
        id="delivered",
    ),
    pytest.param(
        [("delivered", None), ("sent", None)],
        ("delivered", None, ["delivered"], "sent", True),
        id="delivered-then-late-sent",
    ),
    pytest.param(
        [("sent", None), ("undelivered", "30003")],
        ("undelivered", "30003", ["sent", "undelivered"], "failed", False),
        id="undelivered",
    ),
    pytest.param(
        [("failed", "30007")],
        ("failed", "30007", ["failed"], "failed", False),
        id="failed",
    ),
]


@pytest.mark.parametrize(("reports", "expected"), REPORTS)
@pytest.mark.parametrize("early", ["none", "first", "all"])
def test_a_report_counts_whether_it_comes_before_or_after_the_sid_is_stored(
    twilio_app, api, survey_data, twilio_api, reports, expected, early
):
    status, code, moves, invitation_status, reminded = expected
    post_survey(api, survey_data, reminder_after_hours=24)
    created = post_invitation(api, {"phone": PHONE}, channel="sms")
    cut = {"none": 0, "first": 1, "all": len(reports)}[early]
    answers = []

    def report(sid, provider_status, code):
        answers.append(post_status(api.client, sid, provider_status, code).status_code)

    # The stand-in calls back before its answer reaches the worker, so these
    # reports arrive while the message row has no sid yet.
    twilio_api.before_answer = lambda sid, _form: [
        report(sid, *item) for item in reports[:cut]
    ]
    assert run(twilio_app) == 1
    (sent,) = twilio_api.sent
    for item in reports[cut:]:
        report(sent["sid"], *item)

    assert twilio_api.errors == []
    assert answers == [204] * len(reports)
    assert early_reports(twilio_app) == []
    invitation = api.get(f"/api/v1/invitations/{created['id']}").json
    first, reminder = invitation["messages"]
    assert (first["status"], first["error_code"], first["provider_id"]) == (
        status,
        code,
        sent["sid"],
    )
    assert [entry["status"] for entry in first["status_history"]] == [
        "pending",
        "sending",
        "queued",
        *moves,
    ]
    if code:
        assert code in first["last_error"]
    assert invitation["status"] == invitation_status
    assert reminder["status"] == ("pending" if reminded else "cancelled")

    assert run(twilio_app, hours=25) == (1 if reminded else 0)
    assert len(twilio_api.sent) == (2 if reminded else 1)


def test_reports_kept_for_a_message_are_applied_once(
    twilio_app, api, survey_data, twilio_api
):
    post_survey(api, survey_data)
    created = post_invitation(api, {"phone": PHONE}, channel="sms")
    assert run(twilio_app) == 1
    sid = twilio_api.sent[0]["sid"]

    # As when the webhook and the worker both find the report and the stored sid.
    with twilio_app.app_context():
        db.session.add_all(
            [
                EarlyStatus(provider_id=sid, provider_status="sent"),
                EarlyStatus(provider_id=sid, provider_status="delivered"),
            ]
        )
        db.session.commit()
        message = db.session.scalar(sqlalchemy.select(Message))
        assert statuses.apply_early(message) == 2
        assert statuses.apply_early(message) == 0

    (message,) = api.get(f"/api/v1/invitations/{created['id']}").json["messages"]
    assert [entry["status"] for entry in message["status_history"]] == [
        "pending",
        "sending",
        "queued",
        "sent",
        "delivered",
    ]
    assert early_reports(twilio_app) == []


def test_a_report_no_message_takes_is_dropped_after_a_day(twilio_app, api):
    kept, dropped = "SM" + "a" * 32, "SM" + "b" * 32
    for sid in (dropped, kept):
        assert post_status(api.client, sid, "delivered").status_code == 204
    assert early_reports(twilio_app) == [dropped, kept]

    now = datetime.now(UTC)
    with twilio_app.app_context():
        ids = dict(
            db.session.execute(
                sqlalchemy.select(EarlyStatus.provider_id, EarlyStatus.id)
            ).all()
        )
    for sid, hours in ((dropped, 25), (kept, 23)):
        received = now - timedelta(hours=hours)
        set_columns(twilio_app, EarlyStatus, ids[sid], received_at=received)
    assert run(twilio_app) == 0
    assert early_reports(twilio_app) == [kept]


def test_failed_and_unknown_invitations_are_listed_by_status(
    make_app, twilio_api, survey_data
):
    app = make_app(**twilio_api.settings(), SMS_RATE=1000, TWILIO_TIMEOUT=0.5)
    api = ApiClient.for_app(app)
    post_survey(api, survey_data)
    failed, unknown, sent = (
        post_invitation(api, {"external_id": name, "phone": phone}, channel="sms")
        for name, phone in (
            ("a", "+447911123451"),
            ("b", "+447911123452"),
            ("c", "+447911123453"),
        )
    )
    twilio_api.fail_next(400, 30007, "Message filtered")
    twilio_api.script.append("drop")
    assert run(app) == 3

    def ids(status):
        response = api.get(f"/api/v1/invitations?status={status}")
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["items"]]

    assert ids("failed") == [failed["id"]]
    assert ids("unknown") == [unknown["id"]]
    assert ids("sent") == [sent["id"]]
    assert ids("scheduled") == []
    shown = api.get(f"/api/v1/invitations/{failed['id']}").json
    (message,) = shown["messages"]
    assert (message["status"], message["error_code"]) == ("failed", "30007")
    assert "Message filtered" in message["last_error"]
    (message,) = api.get(f"/api/v1/invitations/{unknown['id']}").json["messages"]
    assert (message["status"], message["sent_at"]) == ("unknown", None)


@pytest.mark.parametrize(
    ("reply", "status", "reason"),
    [
        ("554 5.7.1 Rejected", "failed", None),
        ("552 5.2.2 Mailbox full", "failed", None),
        ("550 5.1.1 No such user", "suppressed", "invalid_address"),
    ],
)
def test_a_refused_email_ends_the_invitation(
    make_app, smtp_server, survey_data, reply, status, reason
):
    app = make_app(**smtp_server.settings())
    api = ApiClient.for_app(app)
    post_survey(api, survey_data, reminder_after_hours=24)
    smtp_server.refuse["zoe@example.org"] = reply
    created = post_invitation(api, {"email": "zoe@example.org"})
    assert run(app) == 1

    invitation = api.get(f"/api/v1/invitations/{created['id']}").json
    assert (invitation["status"], invitation["suppression_reason"]) == (status, reason)
    (message,) = invitation["messages"]
    assert (message["status"], message["error_code"]) == ("failed", reply[:3])
    assert reply[4:] in message["last_error"]
    assert run(app, hours=25) == 0


def test_a_failed_invitation_still_takes_an_answer(
    twilio_app, api, survey_data, twilio_api
):
    post_survey(api, survey_data)
    created = post_invitation(api, {"phone": PHONE}, channel="sms")
    assert run(twilio_app) == 1
    post_status(api.client, twilio_api.sent[0]["sid"], "undelivered", "30005")
    assert api.get(f"/api/v1/invitations/{created['id']}").json["status"] == "failed"

    # The caller may hand the link over another way: its answer still counts.
    thanks = answer_page(api.client, created["url"], 9)
    assert thanks.status_code == 200
    assert api.get(f"/api/v1/invitations/{created['id']}").json["status"] == "answered"


def test_the_openapi_document_lists_every_invitation_status(client):
    document = client.get("/api/v1/openapi.json").json
    (status,) = [
        parameter
        for parameter in document["paths"]["/api/v1/invitations"]["get"]["parameters"]
        if parameter["name"] == "status"
    ]
    listed = [
        "scheduled",
        "sent",
        "opened",
        "answered",
        "expired",
        "cancelled",
        "suppressed",
        "failed",
        "unknown",
    ]
    assert status["schema"]["enum"] == listed
    shown = document["components"]["schemas"]["InvitationOut"]["properties"]["status"]
    assert shown["enum"] == listed
