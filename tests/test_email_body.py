"""Survey emails: RFC 8058 unsubscribe, footer link, encoding and line length."""

import email
import email.policy
import re

import sqlalchemy

from feedback.delivery import email as email_channel
from feedback.delivery import worker
from feedback.models import Suppression
from feedback.models import db
from tests.conftest import BASE_URL
from tests.conftest import ApiClient

UNSUBSCRIBE = re.compile(re.escape(BASE_URL) + r"/u/([A-Za-z0-9]{22})")


def send_one(make_app, smtp_server, survey_data, contact=None):
    app = make_app(**smtp_server.settings(), EMAIL_RATE=1000)
    api = ApiClient.for_app(app)
    assert api.post("/api/v1/surveys", json=survey_data).status_code == 201
    trigger = api.post(
        "/api/v1/invitations",
        json={
            "survey": survey_data["key"],
            "channel": "email",
            "contact": contact or {"name": "Zoë Müller", "email": "zoe@example.org"},
        },
    )
    assert trigger.status_code == 201, trigger.json
    with app.app_context():
        assert worker.run_once() == 1
    (received,) = smtp_server.wait_for(1)
    return app, api, trigger.json, received


def suppression(app, address):
    with app.app_context():
        row = db.session.scalar(
            sqlalchemy.select(Suppression).where(Suppression.address == address)
        )
        return (row.reason, row.source) if row else None


def test_rfc_8058_headers_and_the_footer_link(make_app, smtp_server, survey_data):
    _, _, invitation, received = send_one(make_app, smtp_server, survey_data)
    message = received["message"]
    header = str(message["List-Unsubscribe"])
    match = re.fullmatch(r"<(https://[^>]+)>", header)
    assert match, header
    link = match.group(1)
    assert UNSUBSCRIBE.fullmatch(link)
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    # Not the survey's token: opening the survey and opting out are apart.
    assert link.rsplit("/", 1)[1] != invitation["url"].rsplit("/", 1)[1]

    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert UNSUBSCRIBE.findall(text) == [link.rsplit("/", 1)[1]]
    assert f'href="{link}"' in html


def test_get_confirms_and_post_records_the_opt_out(make_app, smtp_server, survey_data):
    app, api, _, received = send_one(make_app, smtp_server, survey_data)
    link = str(received["message"]["List-Unsubscribe"]).strip("<>")
    path = link.removeprefix(BASE_URL)
    client = app.test_client()

    page = client.get(path)
    assert page.status_code == 200
    assert 'method="post"' in page.text
    assert "Set-Cookie" not in page.headers
    assert suppression(app, "zoe@example.org") is None

    # The one-click POST of a mail client: no cookie, no CSRF token, no login.
    fresh = app.test_client(use_cookies=False)
    done = fresh.post(
        path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert done.status_code == 200
    assert "Location" not in done.headers
    assert "Set-Cookie" not in done.headers
    assert suppression(app, "zoe@example.org") == ("opted_out", "unsubscribe_link")
    assert fresh.post(path).status_code == 200

    again = api.post(
        "/api/v1/invitations",
        json={
            "survey": survey_data["key"],
            "channel": "email",
            "contact": {"email": "Zoe@Example.org", "external_id": "someone-new"},
        },
    )
    assert (again.json["status"], again.json["suppression_reason"]) == (
        "suppressed",
        "opted_out",
    )


def test_an_unknown_unsubscribe_link_is_not_found(app, client):
    for path in ("/u/" + "A" * 22, "/u/short"):
        assert client.get(path).status_code == 404
        reply = client.post(path)
        assert reply.status_code == 404
        assert reply.mimetype == "text/html"


def test_every_raw_line_fits_78_and_a_300_character_link_survives(app):
    link = "https://feedback.example.com/s/" + "x" * 260 + "?score=10&utm=ab"
    assert len(link) >= 300
    subject = (
        "Wie war Ihr Aufenthalt im Hôtel Zürich? ★ Ihre Meinung zählt für uns sehr"
    )
    with app.app_context():
        config = {
            **app.config,
            "EMAIL_FROM": "Hôtel Zürich <feedback@hotel.example.com>",
        }
        built = email_channel.build(
            config,
            "zoe@example.org",
            "Zoë Müller-Lüdenscheidt",
            subject,
            f"Please answer here:\n{link}\n",
            f'<p><a href="{link}">Answer</a> {link}</p>',
            {"List-Unsubscribe": "<https://feedback.example.com/u/abc>"},
        )
    raw = built.as_bytes()
    lines = raw.split(b"\n")
    assert max(len(line.rstrip(b"\r")) for line in lines) <= 78
    assert raw.isascii()

    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["Subject"]) == subject
    assert parsed["To"].addresses[0].display_name == "Zoë Müller-Lüdenscheidt"
    assert parsed["From"].addresses[0].display_name == "Hôtel Zürich"
    assert link in parsed.get_body(("plain",)).get_content()
    assert f'href="{link}"' in parsed.get_body(("html",)).get_content()


def test_the_sent_email_keeps_to_78_columns(make_app, smtp_server, survey_data):
    survey_data["question"] = (
        "Wie wahrscheinlich ist es, dass Sie unser Hotel in Zürich einem Freund "
        "oder Kollegen empfehlen würden? Bitte antworten Sie ehrlich."
    )
    _, _, _, received = send_one(make_app, smtp_server, survey_data)
    lines = received["raw"].split(b"\n")
    assert max(len(line.rstrip(b"\r")) for line in lines) <= 78
    assert str(received["message"]["Subject"]) == survey_data["question"]


def test_an_invitation_older_than_opt_out_links_gets_one_that_works(
    make_app, smtp_server, survey_data
):
    from feedback.models import Invitation

    app = make_app(**smtp_server.settings(), EMAIL_RATE=1000)
    api = ApiClient.for_app(app)
    api.post("/api/v1/surveys", json=survey_data)
    api.post(
        "/api/v1/invitations",
        json={
            "survey": survey_data["key"],
            "channel": "email",
            "contact": {"email": "old@example.org"},
        },
    )
    with app.app_context():
        db.session.execute(sqlalchemy.update(Invitation).values(unsubscribe_hash=None))
        db.session.commit()
        assert worker.run_once() == 1
    (received,) = smtp_server.wait_for(1)
    link = str(received["message"]["List-Unsubscribe"]).strip("<>")
    assert app.test_client().post(link.removeprefix(BASE_URL)).status_code == 200
    assert suppression(app, "old@example.org") == ("opted_out", "unsubscribe_link")


def test_the_opt_out_speaks_the_contact_language(make_app, smtp_server, survey_data):
    app, _, _, received = send_one(
        make_app,
        smtp_server,
        survey_data,
        contact={"email": "jonas@example.de", "locale": "de"},
    )
    message = received["message"]
    assert "Diese E-Mails abbestellen:" in message.get_body(("plain",)).get_content()
    assert "Diese E-Mails abbestellen</a>" in message.get_body(("html",)).get_content()

    path = str(message["List-Unsubscribe"]).strip("<>").removeprefix(BASE_URL)
    client = app.test_client()
    page = client.get(path)
    assert "<h1>Umfrage-E-Mails abbestellen?</h1>" in page.text
    assert 'lang="de"' in page.text
    done = client.post(path)
    assert "<h1>Sie haben die E-Mails abbestellt</h1>" in done.text
