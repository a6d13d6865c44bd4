"""The survey email: a one-tap score row for each kind, in the contact's language."""

import email
import re
from email import policy
from html.parser import HTMLParser
from pathlib import Path

import pytest

from feedback.delivery import worker
from feedback.models import Response
from feedback.models import db
from tests.conftest import new_invitation
from tests.conftest import token_from

KINDS = {"nps": list(range(0, 11)), "csat": list(range(1, 6)), "ces": list(range(1, 8))}


class ScoreRow(HTMLParser):
    """The links of the score row, in source order, with their text."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.links = []
        self._href = None
        self.row_dir = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "score-row" in (attrs.get("class") or ""):
            self.depth = 1
            self.row_dir = attrs.get("dir")
        elif tag == "table" and self.depth:
            self.depth += 1
        if tag == "a" and self.depth:
            self._href = attrs["href"]

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        if tag == "a":
            self._href = None

    def handle_data(self, data):
        if self._href and data.strip():
            self.links.append((self._href, data.strip()))


def sent_email(app, outbox: Path):
    with app.app_context():
        assert worker.run_once() == 1
    (path,) = outbox.glob("*.eml")
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def parts(message):
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    return html, text


@pytest.mark.parametrize("kind", KINDS)
def test_the_html_email_carries_the_whole_scale(app, api, survey_data, tmp_path, kind):
    invitation = new_invitation(
        api,
        {**survey_data, "kind": kind},
        {"email": "guest@example.com", "name": "Ana"},
        channel="email",
    )
    url = invitation["url"]

    html, text = parts(sent_email(app, tmp_path / "outbox"))

    row = ScoreRow()
    row.feed(html)
    expected = [(f"{url}?score={value}", str(value)) for value in KINDS[kind]]
    assert row.links == expected
    # Outlook draws the same buttons from VML, each linking to the same page.
    vml = re.findall(
        r'<v:roundrect [^>]*href="([^"]+)"[^>]*>.*?<center[^>]*>(\d+)<', html
    )
    assert vml == expected
    assert html.count("<!--[if mso]>") == len(KINDS[kind]) + 1
    assert html.count("<!--[if !mso]><!-->") == len(KINDS[kind])
    assert 'xmlns:v="urn:schemas-microsoft-com:vml"' in html
    # Table-based with inline styles: no style sheet for a client to drop.
    assert "<style" not in html
    assert "<link" not in html
    # The text part has the plain link and no score links.
    assert url in text.split()
    assert "?score=" not in text
    assert "Hello Ana," in text
    assert "Hello <bdi>Ana</bdi>," in html


def test_the_arabic_email_runs_right_to_left_with_the_row_mirrored(
    app, api, survey_data, tmp_path
):
    invitation = new_invitation(
        api,
        {**survey_data, "question": {"en": "How likely?", "ar": "ما مدى احتمال؟"}},
        {"email": "guest@example.com", "locale": "ar"},
        channel="email",
    )

    message = sent_email(app, tmp_path / "outbox")
    html, text = parts(message)

    assert '<html lang="ar" dir="rtl"' in html
    row = ScoreRow()
    row.feed(html)
    assert row.row_dir == "ltr"
    assert [label for _, label in row.links] == [str(v) for v in range(10, -1, -1)]
    assert message["Subject"] == "ما مدى احتمال؟"
    assert "مرحبًا،" in text
    assert "أجب في ثوانٍ قليلة من هنا:" in text
    assert invitation["url"] in text


@pytest.mark.parametrize(
    ("locale", "greeting", "subject"),
    [
        ("de", "Hallo Ana,", "Erinnerung: How likely are you"),
        ("es-MX", "Hola, Ana:", "Recordatorio: How likely are you"),
        ("nl", "Beste Ana,", "Herinnering: How likely are you"),
        ("zh", "Hello Ana,", "Reminder: How likely are you"),
    ],
)
def test_the_worker_writes_in_the_contact_language(
    app, api, survey_data, tmp_path, locale, greeting, subject
):
    new_invitation(
        api,
        survey_data,
        {"email": "guest@example.com", "name": "Ana", "locale": locale},
        channel="email",
    )
    with app.app_context():
        from feedback.models import Message

        db.session.query(Message).update({"purpose": "reminder"})
        db.session.commit()

    message = sent_email(app, tmp_path / "outbox")
    html, text = parts(message)

    assert text.startswith(greeting)
    assert message["Subject"].startswith(subject)
    # The name is isolated, so a Latin name keeps its place in Arabic and back.
    assert greeting.replace("Ana", "<bdi>Ana</bdi>") in html


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("de", "Wie waren wir? Antworten Sie in 10 Sekunden: {url} Abmelden mit STOP"),
        (
            "ar",
            "كيف كانت تجربتك؟ أجب في 10 ثوانٍ: {url} أرسل STOP لإلغاء الاشتراك",
        ),
        (
            None,
            "How did we do? Tap to answer in 10 seconds: {url} Reply STOP to opt out",
        ),
    ],
)
def test_the_sms_is_in_the_contact_language(
    app, api, survey_data, tmp_path, locale, expected
):
    invitation = new_invitation(
        api,
        survey_data,
        {"phone": "+4915123456789", "locale": locale},
        channel="sms",
    )

    with app.app_context():
        assert worker.run_once() == 1
    (path,) = (tmp_path / "outbox").glob("*.sms.txt")

    body = path.read_text().split("\n\n", 1)[1].strip()
    assert body == expected.format(url=invitation["url"])


def test_opening_a_score_link_records_nothing(app, api, client, survey_data):
    invitation = new_invitation(api, survey_data)
    path = "/s/" + token_from(invitation["url"])

    page = client.get(path + "?score=7")

    assert page.status_code == 200
    assert re.search(r'id="score-7" value="7" checked', page.text)
    assert len(re.findall(r"checked", page.text)) == 1
    assert '<textarea id="comment"' in page.text
    assert '<button type="submit">Send</button>' in page.text
    with app.app_context():
        assert db.session.query(Response).count() == 0
    shown = api.get(f"/api/v1/invitations/{invitation['id']}").json
    assert shown["status"] == "sent"
    assert shown["answered_at"] is None


@pytest.mark.parametrize("raw", ["11", "-1", "seven", "7.5", ""])
def test_a_score_link_out_of_range_preselects_nothing(api, client, survey_data, raw):
    invitation = new_invitation(api, survey_data)

    page = client.get("/s/" + token_from(invitation["url"]) + f"?score={raw}")

    assert page.status_code == 200
    assert "checked" not in page.text


def test_a_name_with_markup_is_escaped_in_the_email(app, api, survey_data, tmp_path):
    new_invitation(
        api,
        survey_data,
        {"email": "guest@example.com", "name": "<b>Ana</b> & co"},
        channel="email",
    )

    html, text = parts(sent_email(app, tmp_path / "outbox"))

    assert "Hello <bdi>&lt;b&gt;Ana&lt;/b&gt; &amp; co</bdi>," in html
    assert "<b>Ana</b>" not in html
    assert text.startswith("Hello <b>Ana</b> & co,")
