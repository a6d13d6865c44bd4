"""Every string a respondent reads is translated, in every language, and compiled."""

import email
import gettext
import re
from email import policy
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from feedback import i18n
from feedback.delivery import worker
from tests.conftest import csrf_from
from tests.conftest import new_invitation
from tests.conftest import page_path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "translations"
TRANSLATED = [language for language in i18n.LANGUAGES if language != "en"]


def source_messages() -> dict:
    """The marked strings in the code and templates today, extracted afresh."""
    with open(ROOT / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = {}
    for _, _, message, _, _ in extract_from_dir(
        ROOT,
        method_map,
        options_map,
        directory_filter=lambda path: "node_modules" not in path and "/." not in path,
    ):
        key = message if isinstance(message, str) else message[0]
        found[key] = message
    return found


def catalog(language: str):
    with open(FOLDER / language / "LC_MESSAGES" / "messages.po", "rb") as source:
        return read_po(source, locale=language)


def test_the_sources_have_marked_strings():
    messages = source_messages()

    # Spot checks from the page, the email, the SMS and the code.
    assert "Send" in messages
    assert (
        "Tap a number to open the survey with that score chosen, then press Send."
        in messages
    )
    assert (
        "How did we do? Tap to answer in 10 seconds: %(url)s Reply STOP to opt out"
        in messages
    )
    assert "Choose a score before sending." in messages
    assert len(messages) >= 30


@pytest.mark.parametrize("language", TRANSLATED)
def test_no_string_is_left_untranslated(language):
    messages = source_messages()
    translations = catalog(language)

    missing = []
    for key in messages:
        entry = translations.get(key)
        if entry is None or entry.fuzzy:
            missing.append(key)
            continue
        forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        expected_forms = translations.num_plurals if entry.pluralizable else 1
        if len(forms) != expected_forms or not all(form.strip() for form in forms):
            missing.append(key)
    assert missing == []
    assert list(translations.check()) == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalog_matches_its_source(language):
    source = catalog(language)
    path = FOLDER / language / "LC_MESSAGES" / "messages.mo"
    assert path.exists(), "run 'make translations'"
    with open(path, "rb") as compiled_file:
        compiled = gettext.GNUTranslations(compiled_file)

    for entry in source:
        if not entry.id or entry.pluralizable:
            continue
        assert compiled.gettext(entry.id) == entry.string


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_placeholders_and_stop_keyword_survive(language):
    for entry in catalog(language):
        if not entry.id:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        wanted = set(re.findall(r"%\((\w+)\)s", " ".join(ids)))
        for string in strings:
            assert set(re.findall(r"%\((\w+)\)s", string)) <= wanted, entry.id
            if "STOP" in ids[0]:
                assert "STOP" in string


class Text(HTMLParser):
    """The text a person sees or hears on a page, with the title and alt texts."""

    def __init__(self):
        super().__init__()
        self.parts = []
        self.skip = False

    def handle_starttag(self, tag, attrs):
        self.skip = tag in ("style", "script")
        for name, value in attrs:
            if name in ("aria-label", "alt", "title", "placeholder") and value:
                self.parts.append(value)

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)

    def text(self):
        return " ".join(" ".join(self.parts).split())


def visible(html: str) -> str:
    parser = Text()
    parser.feed(html)
    return parser.text()


ARABIC_SURVEY = {
    "question": {
        "en": "How likely are you to recommend us?",
        "ar": "ما مدى احتمال أن توصي بنا؟",
    },
    "follow_up": {"en": "Why?", "ar": "ما السبب؟"},
}


def respondent_texts(app, api, client, survey_data, language, tmp_path) -> list[str]:
    """Everything a respondent of this language reads, rendered for real."""
    survey = {**survey_data, **ARABIC_SURVEY}
    contact = {"email": "guest@example.com", "locale": language}
    invitation = new_invitation(api, survey, contact, channel="email")
    new_invitation(
        api, survey, {"phone": "+4915123456789", "locale": language}, channel="sms"
    )
    with app.app_context():
        assert worker.run_once() == 2
    outbox = tmp_path / "outbox"
    # The SMS file is "To: number", a blank line, then the body.
    texts = [path.read_text().split("\n\n", 1)[1] for path in outbox.glob("*.sms.txt")]
    (eml,) = outbox.glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    texts.append(message["Subject"])
    texts.append(message.get_body(("plain",)).get_content())
    texts.append(visible(message.get_body(("html",)).get_content()))

    path = page_path(invitation)
    form = client.get(path)
    texts.append(visible(form.text))
    refused = client.post(
        path, data={"csrf_token": csrf_from(form.text), "score": "", "comment": ""}
    )
    texts.append(visible(refused.text))
    too_long = client.post(
        path,
        data={"csrf_token": csrf_from(form.text), "score": "5", "comment": "ب" * 3000},
    )
    texts.append(visible(too_long.text))
    done = client.post(path, data={"csrf_token": csrf_from(form.text), "score": "5"})
    texts.append(visible(done.text))
    # An unknown link knows no contact: the browser's language is all there is.
    unknown = client.get("/s/" + "B" * 22, headers={"Accept-Language": language})
    texts.append(visible(unknown.text))
    # A form without its CSRF token still answers in the contact's language.
    texts.append(visible(client.post(path, data={"score": "5"}).text))
    return texts


@pytest.mark.parametrize("language", TRANSLATED)
def test_no_english_reaches_a_respondent(
    app, api, client, survey_data, tmp_path, language
):
    texts = " ".join(
        respondent_texts(app, api, client, survey_data, language, tmp_path)
    )
    translations = catalog(language)

    leaked = []
    for entry in translations:
        if not entry.id or entry.pluralizable or "%" in entry.id:
            continue
        whole = r"(?<!\w)" + re.escape(entry.id) + r"(?!\w)"
        if entry.string != entry.id and re.search(whole, texts):
            leaked.append(entry.id)
    assert leaked == []
    assert "Choose a score" not in texts
    assert "characters" not in texts


def test_arabic_pages_and_messages_have_no_latin_words(
    app, api, client, survey_data, tmp_path
):
    texts = respondent_texts(app, api, client, survey_data, "ar", tmp_path)

    for text in texts:
        without_links = re.sub(r"https?://\S+", "", text)
        latin = set(re.findall(r"[A-Za-z]{2,}", without_links)) - {"STOP"}
        assert latin == set(), text


# GSM 03.38: the basic set, and the extension characters that count twice.
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_TWICE = set("^{}\\[~]|€")
SMS = [
    "How did we do? Tap to answer in 10 seconds: %(url)s Reply STOP to opt out",
    "Reminder: how did we do? Tap to answer in 10 seconds: %(url)s Reply STOP to"
    " opt out",
]


@pytest.mark.parametrize("language", [lang for lang in TRANSLATED if lang != "ar"])
def test_the_sms_stays_one_gsm7_segment(language):
    url = "https://feedback.example.com/s/" + "A" * 22
    translations = catalog(language)

    for key in SMS:
        body = translations[key].string % {"url": url}
        assert set(body) <= GSM7 | GSM7_TWICE, set(body) - GSM7 - GSM7_TWICE
        length = len(body) + sum(char in GSM7_TWICE for char in body)
        assert length <= 160, (key, length)
