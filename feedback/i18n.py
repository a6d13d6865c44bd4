"""Languages: which one a respondent reads, and a survey's own text in it."""

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytz
from flask import g
from flask import has_request_context
from flask import request
from flask_babel import Babel
from flask_babel import force_locale
from flask_babel import get_locale
from flask_babel import gettext
from markupsafe import Markup
from markupsafe import escape

logger = logging.getLogger(__name__)

# The languages with a message catalog; English is the source language.
LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "ar")
DEFAULT = "en"

babel = Babel()


def normalise(tag: str | None) -> str | None:
    """A language tag in one spelling: de_CH and DE-ch both become de-ch."""
    if not tag or not isinstance(tag, str):
        return None
    tag = tag.strip().replace("_", "-").lower()
    return tag or None


def match(tag: str | None, available) -> str | None:
    """The available tag for this one: itself, its language (es-MX: es), a variant."""
    wanted = normalise(tag)
    if wanted is None:
        return None
    spelled = {normalise(item): item for item in available}
    if wanted in spelled:
        return spelled[wanted]
    language = wanted.split("-")[0]
    if language in spelled:
        return spelled[language]
    for normalised, item in spelled.items():
        if normalised.split("-")[0] == language:
            return item
    return None


def first_match(candidates, available) -> str | None:
    """The first candidate that matches an available tag, in the candidates' order."""
    for tag in candidates:
        found = match(tag, available)
        if found is not None:
            return found
    return None


def invitation_candidates(invitation) -> list[str]:
    """The contact's language, then the survey's: all the worker knows of a person."""
    return [tag for tag in (invitation.contact.locale, invitation.survey.locale) if tag]


def request_candidates() -> list[str]:
    """?lang=, the contact's and the survey's language, then Accept-Language."""
    candidates = [request.args.get("lang", "")]
    invitation = g.get("invitation")
    if invitation is not None:
        candidates.extend(invitation_candidates(invitation))
    # Werkzeug keeps the header's values best first; q=0 means "not this one".
    candidates.extend(
        value
        for value, quality in request.accept_languages
        if quality > 0 and value != "*"
    )
    return [tag for tag in candidates if tag]


def select_locale() -> str:
    """Flask-Babel's choice of language for the page being rendered."""
    if not has_request_context():
        return DEFAULT
    return first_match(request_candidates(), LANGUAGES) or DEFAULT


def requested_language() -> str | None:
    """The supported language asked for with ?lang=, to keep it on the next link."""
    return match(request.args.get("lang"), LANGUAGES)


def select_timezone() -> str | None:
    """Dates on the page in the contact's time zone, when it is one pytz knows."""
    invitation = g.get("invitation") if has_request_context() else None
    zone = invitation.contact.timezone if invitation is not None else None
    if zone and zone in pytz.all_timezones_set:
        return zone
    return None


@contextmanager
def respondent_locale(invitation):
    """Render messages outside a request in the language of the invitation's contact."""
    language = first_match(invitation_candidates(invitation), LANGUAGES) or DEFAULT
    with force_locale(language):
        yield language


def direction() -> str:
    """rtl for Arabic and any other right-to-left language, else ltr."""
    locale = get_locale()
    if locale is not None and locale.character_order == "right-to-left":
        return "rtl"
    return "ltr"


def current_language() -> str:
    locale = get_locale()
    return str(locale).replace("_", "-") if locale is not None else DEFAULT


def scale_labels(kind: str) -> tuple[str, str]:
    """What the lowest and the highest score mean, in the current language."""
    if kind == "nps":
        return gettext("Not at all likely"), gettext("Extremely likely")
    if kind == "csat":
        return gettext("Very dissatisfied"), gettext("Very satisfied")
    return gettext("Very difficult"), gettext("Very easy")


@dataclass(frozen=True)
class Text:
    """A survey's question or follow-up in one language, with that language's tag."""

    text: str
    lang: str


def survey_text(survey, field: str, candidates) -> Text | None:
    """The survey's question or follow-up in the best language the survey has it in."""
    default = getattr(survey, field)
    if default is None:
        return None
    translations = getattr(survey, f"{field}_translations") or {}
    chain = [*candidates, survey.locale, DEFAULT]
    found = first_match(chain, translations)
    if found is None:
        return Text(default, survey.locale)
    return Text(translations[found], found)


def default_text(translations: dict, locale: str) -> str:
    """The plain text to keep: the survey's language, else English, else the first."""
    found = first_match([locale, DEFAULT], translations)
    return translations[found] if found else next(iter(translations.values()))


def store_text(survey, field: str, value) -> None:
    """Set a question or follow-up given as one string or as {language: text}."""
    if isinstance(value, dict):
        setattr(survey, f"{field}_translations", dict(value))
        setattr(survey, field, default_text(value, survey.locale or DEFAULT))
    else:
        setattr(survey, f"{field}_translations", None)
        setattr(survey, field, value)


def refresh_default_texts(survey) -> None:
    """After the survey's language changes, keep its plain texts in that language."""
    for field in ("question", "follow_up"):
        translations = getattr(survey, f"{field}_translations")
        if translations:
            setattr(survey, field, default_text(translations, survey.locale))


def _check_catalogs(folder: Path) -> None:
    # A catalog that was never compiled leaves its language silently in English.
    for language in LANGUAGES:
        if language == DEFAULT:
            continue
        source = folder / language / "LC_MESSAGES" / "messages.po"
        compiled = source.with_suffix(".mo")
        if not compiled.exists():
            logger.warning(
                "no compiled catalog for language=%s: run 'make translations'",
                language,
            )
        elif source.exists() and source.stat().st_mtime > compiled.stat().st_mtime:
            logger.warning(
                "compiled catalog older than its source language=%s: run"
                " 'make translations'",
                language,
            )


def init_app(app, folder: Path) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(folder))
    babel.init_app(
        app,
        default_locale=DEFAULT,
        locale_selector=select_locale,
        timezone_selector=select_timezone,
    )
    _check_catalogs(Path(app.config["BABEL_TRANSLATION_DIRECTORIES"]))

    @app.context_processor
    def _language():
        return {"lang": current_language(), "dir": direction()}

    app.jinja_env.globals["lang_attr"] = _lang_attr
    app.jinja_env.globals["scale_labels"] = scale_labels


def _lang_attr(text: Text | None) -> Markup:
    """A lang attribute for a text that is not in the page's language, else nothing."""
    if text is None:
        return Markup("")
    page = current_language().split("-")[0]
    if normalise(text.lang).split("-")[0] == page:
        return Markup("")
    return Markup(' lang="{}"').format(escape(text.lang))
