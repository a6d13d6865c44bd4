"""Which language a respondent reads: the fallback chain, per-language survey text."""

import re
from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta

import pytest

from feedback import i18n
from tests.conftest import csrf_from
from tests.conftest import new_invitation
from tests.conftest import page_path


def html_lang(page: str) -> tuple[str, str]:
    match = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', page)
    assert match, page[:200]
    return match.group(1), match.group(2)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("de", "de"),
        ("DE", "de"),
        ("es-MX", "es"),
        ("es_MX", "es"),
        ("pt-BR", "pt"),
        ("ar-EG", "ar"),
        ("zh-Hant-TW", None),
        ("zh-CN", None),
        ("", None),
        (None, None),
    ],
)
def test_a_tag_falls_back_to_its_language_alone(tag, expected):
    assert i18n.match(tag, i18n.LANGUAGES) == expected


def test_an_exact_tag_wins_over_its_language():
    assert i18n.match("es-MX", {"es": "", "es-MX": ""}) == "es-MX"
    assert i18n.match("es-AR", {"es": "", "es-MX": ""}) == "es"
    assert i18n.match("es", {"en": "", "es-MX": ""}) == "es-MX"


CHAIN_CASES = [
    # (query, contact locale, survey locale, Accept-Language, expected)
    ("?lang=it", "de", "fr", "nl", "it"),
    ("", "de", "fr", "nl", "de"),
    ("", None, "fr", "nl", "fr"),
    ("", None, "zh", "nl", "nl"),
    ("", None, "zh", "", "en"),
    ("", "es-MX", "en", "", "es"),
    ("?lang=xx", "pt-BR", "en", "", "pt"),
    ("", None, "zh", "fr-CH, de;q=0.9", "fr"),
    ("", None, "zh", "ja, de;q=0.5, nl;q=0.8", "nl"),
    ("", None, "zh", "ar;q=0, it;q=0.2", "it"),
    ("", None, "zh", "*", "en"),
]


@pytest.mark.parametrize(
    ("query", "contact", "survey", "accept", "expected"), CHAIN_CASES
)
def test_the_page_language_follows_the_chain(
    api, client, survey_data, query, contact, survey, accept, expected
):
    invitation = new_invitation(
        api,
        {**survey_data, "locale": survey},
        {"email": "guest@example.com", "locale": contact},
    )

    page = client.get(
        page_path(invitation) + query, headers={"Accept-Language": accept}
    )

    assert page.status_code == 200
    assert html_lang(page.text) == (expected, "rtl" if expected == "ar" else "ltr")


def test_an_unknown_link_speaks_the_browser_language(client):
    page = client.get("/s/" + "A" * 22, headers={"Accept-Language": "nl-BE"})

    assert page.status_code == 404
    assert html_lang(page.text) == ("nl", "ltr")
    assert "Deze enquête is niet beschikbaar" in page.text


def test_the_language_carries_over_to_the_thank_you_page(api, client, survey_data):
    invitation = new_invitation(api, survey_data)
    path = page_path(invitation)
    form = client.get(path + "?lang=fr")
    done = client.post(
        path + "?lang=fr", data={"csrf_token": csrf_from(form.text), "score": "9"}
    )

    assert done.status_code == 200
    assert html_lang(done.text) == ("fr", "ltr")
    assert "<h1>Merci</h1>" in done.text
    assert f'href="{path}?lang=fr"' in done.text


GERMAN_MONTHS = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
]


def test_dates_follow_the_locale_and_the_contact_time_zone(api, client, survey_data):
    send_at = datetime.combine(
        datetime.now(UTC).date() + timedelta(days=30), time(11, 30), UTC
    )
    invitation = new_invitation(
        api,
        {**survey_data, "link_ttl_days": 14},
        {
            "email": "guest@example.com",
            "locale": "de",
            "timezone": "Pacific/Kiritimati",
        },
        send_at=send_at.isoformat(),
    )
    path = page_path(invitation)

    form = client.get(path)
    done = client.post(path, data={"csrf_token": csrf_from(form.text), "score": "4"})

    # The link expires at 11:30 UTC, which is already the next day at UTC+14.
    day = (send_at + timedelta(days=15)).date()
    expected = f"{day.day}. {GERMAN_MONTHS[day.month - 1]} {day.year}"
    assert f"bis zum {expected} ändern" in done.text


TRANSLATED = {
    "en": "How likely are you to recommend us?",
    "de": "Wie wahrscheinlich ist es, dass Sie uns empfehlen?",
    "ar": "ما مدى احتمال أن توصي بنا؟",
    "es-MX": "¿Qué tan probable es que nos recomiende?",
}


@pytest.fixture
def translated_survey(survey_data):
    return {
        **survey_data,
        "question": TRANSLATED,
        "follow_up": {"en": "Why?", "de": "Warum?"},
    }


@pytest.mark.parametrize(
    ("contact", "query", "question", "follow_up"),
    [
        ("de", "", ("de", None), ("Warum?", None)),
        ("ar", "", ("ar", None), ("Why?", "en")),
        ("es-MX", "", ("es-MX", None), ("Why?", "en")),
        ("es", "", ("es-MX", None), ("Why?", "en")),
        ("fr", "", ("en", "en"), ("Why?", "en")),
        ("fr", "?lang=de", ("de", None), ("Warum?", None)),
        ("en", "", ("en", None), ("Why?", None)),
    ],
)
def test_the_question_follows_the_same_chain(
    api, client, translated_survey, contact, query, question, follow_up
):
    invitation = new_invitation(
        api, translated_survey, {"email": "guest@example.com", "locale": contact}
    )

    page = client.get(page_path(invitation) + query).text

    # A text in another language than the page's says so, for screen readers.
    legend = re.search(r"<legend([^>]*)><h1>([^<]*)</h1></legend>", page)
    assert legend.group(2) == TRANSLATED[question[0]]
    assert _lang_of(legend.group(1)) == question[1]
    label = re.search(r'<label for="comment"([^>]*)>([^<]*)</label>', page)
    assert label.group(2) == follow_up[0]
    assert _lang_of(label.group(1)) == follow_up[1]


def _lang_of(attributes: str) -> str | None:
    found = re.search(r'lang="([^"]+)"', attributes)
    return found.group(1) if found else None


def test_a_translated_survey_reads_back_as_given(api, translated_survey):
    created = api.post("/api/v1/surveys", json=translated_survey)

    assert created.status_code == 201
    assert created.json["question"] == TRANSLATED
    assert created.json["follow_up"] == {"en": "Why?", "de": "Warum?"}
    assert api.get("/api/v1/surveys/post-stay-nps").json["question"] == TRANSLATED


def test_a_plain_string_question_still_works(api, survey_data):
    created = api.post("/api/v1/surveys", json=survey_data)

    assert created.status_code == 201
    assert created.json["question"] == survey_data["question"]
    assert created.json["follow_up"] == survey_data["follow_up"]


def test_the_plain_column_keeps_the_survey_language(app, api, translated_survey):
    from feedback.models import Survey
    from feedback.models import db

    api.post("/api/v1/surveys", json={**translated_survey, "locale": "de"})
    with app.app_context():
        assert db.session.query(Survey).one().question == TRANSLATED["de"]

    changed = api.patch("/api/v1/surveys/post-stay-nps", json={"locale": "ar"})
    assert changed.status_code == 200
    with app.app_context():
        assert db.session.query(Survey).one().question == TRANSLATED["ar"]

    plain = api.patch("/api/v1/surveys/post-stay-nps", json={"question": "Plain?"})
    assert plain.json["question"] == "Plain?"
    with app.app_context():
        survey = db.session.query(Survey).one()
        assert (survey.question, survey.question_translations) == ("Plain?", None)


@pytest.mark.parametrize(
    ("question", "problem"),
    [
        ({}, "at least one language"),
        ({"english": "Hi?"}, "'english' is not a language tag"),
        ({"de": ""}, "The de text must be a non-empty string"),
        ({"de": 5}, "The de text must be a non-empty string"),
        ({"de": "x" * 501}, "The de text has 501 characters; the limit is 500"),
        ({"de": "Hi?", "DE": "Hallo?"}, "The language de is given twice"),
        (["Hi?"], "The text must be a non-empty string"),
        ("", "The text must be a non-empty string"),
    ],
)
def test_a_malformed_question_is_refused_with_a_reason(
    api, survey_data, question, problem
):
    response = api.post("/api/v1/surveys", json={**survey_data, "question": question})

    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "invalid"
    assert problem in error["details"]["question"][0]
    assert problem in error["message"]
