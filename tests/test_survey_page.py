"""The respondent's page: what a GET shows, what a POST stores, and what it refuses."""

import hashlib
import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy
from sqlalchemy import func
from sqlalchemy import select

from feedback.models import Invitation
from feedback.models import Response
from feedback.models import db
from feedback.models import utcnow
from tests.conftest import BASE_URL
from tests.conftest import answer_page
from tests.conftest import create_survey
from tests.conftest import csrf_from
from tests.conftest import set_columns
from tests.conftest import token_from
from tests.conftest import trigger_link


@pytest.fixture
def invitation(api):
    create_survey(api)
    return trigger_link(api, "post-stay-nps", "guest-1")


def path_of(invitation) -> str:
    return invitation["url"].removeprefix(BASE_URL)


def responses(app) -> list[tuple]:
    with app.app_context():
        return db.session.execute(
            select(Response.invitation_id, Response.score, Response.comment)
        ).all()


def invitation_row(app, invitation_id: int) -> dict:
    with app.app_context():
        row = db.session.execute(
            sqlalchemy.text("SELECT * FROM invitations WHERE id = :id"),
            {"id": invitation_id},
        )
        return dict(row.mappings().one())


def checked(html: str) -> list[str]:
    return re.findall(
        r'<input type="radio" name="score" id="score-(\d+)"[^>]* checked', html
    )


def test_get_records_nothing(app, client, invitation):
    before = invitation_row(app, invitation["id"])

    for query in ("", "?score=9", "?score=0", "?score=11"):
        page = client.get(path_of(invitation) + query)
        assert page.status_code == 200

    assert responses(app) == []
    assert invitation_row(app, invitation["id"]) == before


@pytest.mark.parametrize(
    ("query", "selected"),
    [("?score=9", ["9"]), ("?score=0", ["0"]), ("?score=11", []), ("?score=x", [])],
)
def test_score_in_the_link_preselects(client, invitation, query, selected):
    page = client.get(path_of(invitation) + query)

    assert checked(page.text) == selected


def test_page_shows_the_scale_with_its_labels(client, invitation):
    html = client.get(path_of(invitation)).text

    values = re.findall(r'<label for="score-(\d+)">(\d+)</label>', html)
    assert values == [(str(value), str(value)) for value in range(11)]
    assert "Not at all likely" in html and "Extremely likely" in html
    assert "<script" not in html


def test_post_stores_and_a_second_post_changes_it(app, client, invitation):
    first = answer_page(client, invitation["url"], 0, "Cold room")

    assert first.status_code == 200
    assert "Thank you" in first.text
    assert responses(app) == [(invitation["id"], 0, "Cold room")]
    with app.app_context():
        stored = db.session.get(Invitation, invitation["id"])
        assert stored.status == "answered"
        first_answered = stored.answered_at

    second = answer_page(client, invitation["url"], 7, "Better after the move")

    assert second.status_code == 200
    assert responses(app) == [(invitation["id"], 7, "Better after the move")]
    # The page shows the stored answer when opened again.
    assert checked(client.get(path_of(invitation)).text) == ["7"]
    with app.app_context():
        assert db.session.get(Invitation, invitation["id"]).answered_at == (
            first_answered
        )


def test_racing_posts_leave_one_row(app, invitation):
    clients = [app.test_client() for _ in range(4)]
    tokens = [csrf_from(client.get(path_of(invitation)).text) for client in clients]
    barrier = threading.Barrier(len(clients))
    statuses = [None] * len(clients)

    def post(index):
        barrier.wait()
        statuses[index] = (
            clients[index]
            .post(
                path_of(invitation),
                data={"score": str(index + 5), "csrf_token": tokens[index]},
            )
            .status_code
        )

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert statuses == [200] * len(clients)
    rows = responses(app)
    assert len(rows) == 1
    assert rows[0][1] in {5, 6, 7, 8}


@pytest.mark.parametrize("score", ["11", "-1", "9.5", "abc", "", " ", "²", "١", "007"])
def test_bad_score_shows_the_form_again(app, client, invitation, score):
    page = client.get(path_of(invitation))

    result = client.post(
        path_of(invitation),
        data={"score": score, "comment": "kept", "csrf_token": csrf_from(page.text)},
    )

    assert result.status_code == 400
    assert '<form method="post"' in result.text
    assert 'role="alert"' in result.text
    assert "Choose a score" in result.text
    # One newline after the tag, which HTML parsers drop, keeps a leading one.
    assert ">\nkept</textarea>" in result.text
    assert responses(app) == []


def test_missing_score_is_400(app, client, invitation):
    page = client.get(path_of(invitation))

    result = client.post(path_of(invitation), data={"csrf_token": csrf_from(page.text)})

    assert result.status_code == 400
    assert "Choose a score before sending." in result.text
    assert responses(app) == []


def test_comment_limit_is_stated_and_counted_in_characters(app, client, invitation):
    page = client.get(path_of(invitation))
    # The browser stops where the server would refuse (never later: it counts
    # UTF-16 units, so an emoji takes two of its places).
    assert 'maxlength="2000"' in page.text
    assert "Optional, up to 2,000 characters." in page.text
    token = csrf_from(page.text)

    too_long = client.post(
        path_of(invitation),
        data={"score": "8", "comment": "é" * 2001, "csrf_token": token},
    )
    assert too_long.status_code == 400
    assert "Your comment has 2,001 characters; the limit is 2,000 characters." in (
        too_long.text
    )
    assert responses(app) == []

    at_limit = client.post(
        path_of(invitation),
        data={"score": "8", "comment": "é" * 2000, "csrf_token": token},
    )
    assert at_limit.status_code == 200
    assert responses(app) == [(invitation["id"], 8, "é" * 2000)]


def test_unknown_expired_and_cancelled_links_look_the_same(app, api, client):
    create_survey(api)
    expired = trigger_link(api, "post-stay-nps", "guest-1")
    cancelled = trigger_link(api, "post-stay-nps", "guest-2")
    answered = trigger_link(api, "post-stay-nps", "guest-3")
    assert answer_page(client, answered["url"], 9).status_code == 200
    past = utcnow() - timedelta(seconds=1)
    set_columns(app, Invitation, expired["id"], expires_at=past)
    set_columns(app, Invitation, answered["id"], expires_at=past)
    set_columns(app, Invitation, cancelled["id"], status="cancelled")
    unknown = "/s/" + "A" * 22

    pages = [
        client.get(path)
        for path in (
            unknown,
            "/s/short",
            path_of(expired),
            path_of(cancelled),
            path_of(answered),
        )
    ]

    assert {page.status_code for page in pages} == {404}
    assert len({page.text for page in pages}) == 1
    assert "not available" in pages[0].text
    assert 'name="score"' not in pages[0].text


def test_a_closed_link_takes_no_answer(app, api, client):
    create_survey(api)
    invitation = trigger_link(api, "post-stay-nps", "guest-1")
    assert answer_page(client, invitation["url"], 9).status_code == 200
    token = csrf_from(client.get(path_of(invitation)).text)
    set_columns(app, Invitation, invitation["id"], expires_at=utcnow())

    result = client.post(path_of(invitation), data={"score": "2", "csrf_token": token})

    assert result.status_code == 404
    assert responses(app) == [(invitation["id"], 9, None)]


@pytest.mark.parametrize("csrf", [None, "", "forged"])
def test_post_without_csrf_token_is_refused(app, client, invitation, csrf):
    client.get(path_of(invitation))
    data = {"score": "9"}
    if csrf is not None:
        data["csrf_token"] = csrf

    result = client.post(path_of(invitation), data=data)

    assert result.status_code == 400
    assert result.mimetype == "text/html"
    assert result.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in result.headers["Cache-Control"]
    assert responses(app) == []


def test_post_over_https_without_referer_is_accepted(app, invitation):
    # The page sends Referrer-Policy: no-referrer, so the browser sends no Referer.
    client = app.test_client()
    page = client.get(path_of(invitation), base_url=BASE_URL)

    result = client.post(
        path_of(invitation),
        data={"score": "9", "csrf_token": csrf_from(page.text)},
        base_url=BASE_URL,
    )

    assert result.status_code == 200
    assert responses(app) == [(invitation["id"], 9, None)]


def test_security_headers(client, invitation):
    page = client.get(path_of(invitation))
    token = csrf_from(page.text)
    results = [
        page,
        client.post(path_of(invitation), data={"score": "x", "csrf_token": token}),
        client.post(path_of(invitation), data={"score": "3", "csrf_token": token}),
        client.get("/s/" + "A" * 22),
    ]

    for result in results:
        assert result.headers["Referrer-Policy"] == "no-referrer"
        assert "no-store" in result.headers["Cache-Control"]
        policy = result.headers["Content-Security-Policy"]
        sources = [
            source
            for directive in policy.split(";")
            for source in directive.split()[1:]
        ]
        assert sources
        # data: only for the empty icon, which spares a request for /favicon.ico.
        assert set(sources) <= {"'self'", "'none'", "data:"}, policy
        assert "default-src 'none'" in policy


def test_token_is_22_letters_or_digits_and_only_its_hash_is_stored(app, invitation):
    token = token_from(invitation["url"])
    assert re.fullmatch(r"[A-Za-z0-9]{22}", token)
    assert invitation["url"] == f"{BASE_URL}/s/{token}"

    row = invitation_row(app, invitation["id"])

    for name, value in row.items():
        if isinstance(value, bytes | memoryview):
            text = bytes(value).decode("latin-1")
        else:
            text = str(value)
        assert token not in text, name
        assert token.lower() not in text.lower(), name
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()


def test_tokens_differ_per_invitation(app, api):
    create_survey(api)
    urls = {trigger_link(api, "post-stay-nps", f"guest-{n}")["url"] for n in range(20)}

    assert len(urls) == 20


def test_page_links_ignore_the_host_header(app, client, invitation):
    page = client.get(path_of(invitation), base_url="http://attacker.example")
    thanks = client.post(
        path_of(invitation),
        data={"score": "9", "csrf_token": csrf_from(page.text)},
        base_url="http://attacker.example",
    )

    assert thanks.status_code == 200
    for html in (page.text, thanks.text):
        assert "attacker" not in html
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Response)) == 1


def test_a_phone_that_blocks_cookies_can_answer(app, invitation):
    cookieless = app.test_client(use_cookies=False)
    page = cookieless.get(path_of(invitation))

    result = cookieless.post(
        path_of(invitation),
        data={
            "score": "9",
            "comment": "no cookies",
            "csrf_token": csrf_from(page.text),
        },
    )

    assert "Set-Cookie" not in page.headers
    assert result.status_code == 200
    assert "Set-Cookie" not in result.headers
    assert responses(app) == [(invitation["id"], 9, "no cookies")]


def test_the_form_token_of_another_invitation_is_refused(app, api, client, invitation):
    other = trigger_link(api, "post-stay-nps", "guest-2")
    foreign = csrf_from(client.get(path_of(other)).text)

    result = client.post(
        path_of(invitation), data={"score": "9", "csrf_token": foreign}
    )

    assert result.status_code == 400
    assert responses(app) == []


@pytest.mark.parametrize(
    ("site", "status", "stored"),
    [("cross-site", 400, []), ("same-origin", 200, [9]), ("same-site", 200, [9])],
)
def test_a_post_from_another_site_is_refused(
    app, client, invitation, site, status, stored
):
    token = csrf_from(client.get(path_of(invitation)).text)

    result = client.post(
        path_of(invitation),
        data={"score": "9", "csrf_token": token},
        headers={"Sec-Fetch-Site": site},
    )

    assert result.status_code == status
    assert [score for _, score, _ in responses(app)] == stored
