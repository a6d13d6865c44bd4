"""Comments: what a respondent writes arrives as written, cleaned of control codes."""

import pytest

from tests.conftest import csrf_from
from tests.conftest import new_invitation
from tests.conftest import page_path

ROUND_TRIPS = {
    "emoji": "Great stay 👍🏽 — the 🛏️ was perfect! 👨‍👩‍👧",
    "rtl": "الغرفة كانت نظيفة جدًا، شكرًا! room 12",
    "hebrew": "שירות מצוין",
    "newlines": "First line\nsecond line\n\n\tindented with a tab",
    "html": '<script>alert("x")</script> & <b>bold</b>',
    "combining": "Cafe\u0301 and \u200fmarks\u200e",
}


def answer(client, path, comment, score="9"):
    form = client.get(path)
    return client.post(
        path,
        data={"csrf_token": csrf_from(form.text), "score": score, "comment": comment},
    )


def stored_comment(api):
    items = api.get("/api/v1/responses").json["items"]
    assert len(items) == 1
    return items[0]["comment"]


@pytest.mark.parametrize("case", ROUND_TRIPS)
def test_a_comment_survives_byte_for_byte(api, client, survey_data, case):
    comment = ROUND_TRIPS[case]
    path = page_path(new_invitation(api, survey_data))

    done = answer(client, path, comment)

    assert done.status_code == 200
    assert stored_comment(api).encode() == comment.encode()


def test_carriage_returns_from_the_form_become_newlines(api, client, survey_data):
    path = page_path(new_invitation(api, survey_data))

    answer(client, path, "one\r\ntwo\rthree")

    assert stored_comment(api) == "one\ntwo\nthree"


def test_control_characters_are_removed_but_newline_and_tab(api, client, survey_data):
    path = page_path(new_invitation(api, survey_data))

    answer(client, path, "a\x00b\x07c\x1bd\x7fe\x85f\tg\nh")

    assert stored_comment(api) == "abcdef\tg\nh"


def test_a_comment_of_only_control_characters_is_no_comment(api, client, survey_data):
    path = page_path(new_invitation(api, survey_data))

    answer(client, path, "\x00\x01 \n")

    assert stored_comment(api) is None


def test_the_stored_comment_is_shown_again_escaped(api, client, survey_data):
    path = page_path(new_invitation(api, survey_data))
    answer(client, path, ROUND_TRIPS["html"])

    page = client.get(path)

    assert "<script>" not in page.text
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
        in page.text
    )


def test_the_limit_counts_characters_not_bytes(make_app, api, survey_data):
    app = make_app(COMMENT_MAX_LENGTH=10)
    client = app.test_client()
    path = page_path(new_invitation(api, survey_data))

    # Ten characters, forty bytes in UTF-8: within the limit.
    accepted = answer(client, path, "👍" * 10)
    assert accepted.status_code == 200
    assert stored_comment(api) == "👍" * 10

    refused = answer(client, path, "👍" * 11, score="3")
    assert refused.status_code == 400
    assert "Your comment has 11 characters; the limit is 10 characters." in (
        refused.text
    )
    assert 'aria-invalid="true"' in refused.text
    assert 'aria-describedby="comment-hint comment-error"' in refused.text
    # The form comes back with what was typed, and nothing was changed.
    assert "👍" * 11 + "</textarea>" in refused.text
    assert stored_comment(api) == "👍" * 10


def test_the_limit_error_is_in_the_page_language(make_app, api, survey_data):
    app = make_app(COMMENT_MAX_LENGTH=1000)
    client = app.test_client()
    path = page_path(new_invitation(api, survey_data)) + "?lang=de"

    refused = answer(client, path, "x" * 1234)

    assert refused.status_code == 400
    assert (
        "Ihr Kommentar hat 1.234 Zeichen; erlaubt sind 1.000 Zeichen." in refused.text
    )
    assert "Freiwillig, bis zu 1.000 Zeichen." in refused.text


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ("", "Choose a score before sending."),
        ("11", "Choose a score from 0 to 10."),
        ("<b>", "Choose a score from 0 to 10."),
    ],
)
def test_a_missing_score_is_announced_next_to_the_field_and_on_top(
    api, client, survey_data, score, message
):
    path = page_path(new_invitation(api, survey_data))

    refused = answer(client, path, "kept <i>as typed</i>", score=score)

    assert refused.status_code == 400
    assert f'<p class="error" id="score-error">{message}</p>' in refused.text
    assert f'<li><a href="#score-0">{message}</a></li>' in refused.text
    assert 'role="alert"' in refused.text
    assert 'aria-describedby="score-ends score-error"' in refused.text
    assert "<title>Error: " in refused.text
    assert "kept &lt;i&gt;as typed&lt;/i&gt;</textarea>" in refused.text
    assert api.get("/api/v1/responses").json["items"] == []
