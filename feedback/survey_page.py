"""The respondent's page: open the personal link, tap a score, maybe say why."""

import logging

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import g
from flask import render_template
from flask import request
from flask_babel import format_number
from flask_babel import gettext
from flask_babel import ngettext
from itsdangerous import BadSignature
from itsdangerous import URLSafeSerializer

from feedback import i18n
from feedback import invitations
from feedback import metrics
from feedback import responses
from feedback.models import Response
from feedback.models import db
from feedback.models import utcnow

logger = logging.getLogger(__name__)

bp = Blueprint("survey_page", __name__)
PREFIX = "/s/"

# A failed first message does not close the link, which the caller may hand over
# another way; one whose outcome is unknown may well have arrived.
ANSWERABLE = ("scheduled", "sent", "opened", "answered", "failed", "unknown")
FORM_SALT = "survey-answer-form"
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:;"
        " form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


@bp.after_app_request
def _headers(response):
    # Also on the error pages of paths under /s/ that match no route.
    if request.path.startswith(PREFIX):
        response.headers.update(SECURITY_HEADERS)
    return response


@bp.url_value_preprocessor
def _open_invitation(_endpoint, values):
    # Found first, so that every page from here on, error pages included, speaks
    # the contact's language and time zone.
    invitation = invitations.find_by_token((values or {}).get("token", ""))
    now = utcnow()
    if invitation is None or invitation.current_status(now) not in ANSWERABLE:
        return
    # An answer can change only while the link is valid, answered or not.
    if now >= invitation.expires_at:
        return
    g.invitation = invitation


def _texts(survey) -> dict:
    candidates = i18n.request_candidates()
    return {
        "question": i18n.survey_text(survey, "question", candidates),
        "follow_up": i18n.survey_text(survey, "follow_up", candidates),
    }


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=FORM_SALT)


def _form_token(invitation) -> str:
    """The answer form's CSRF token, signed over the invitation: no cookie needed.

    A session token would fail on phones that block cookies, losing the answer.
    """
    return _signer().dumps(invitation.id)


def _form_is_ours(invitation) -> bool:
    # Browsers say where a post comes from; one from another site is refused
    # whatever it carries.
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return False
    try:
        return _signer().loads(request.form.get("csrf_token", "")) == invitation.id
    except BadSignature:
        return False


def _unavailable():
    # Unknown, expired and cancelled links look the same, so a link says nothing.
    return render_template("survey/unavailable.html"), 404


def _parse_score(raw: str | None, scale: metrics.Scale) -> int | None:
    raw = (raw or "").strip()
    # isdigit() alone lets through superscripts and other scripts' digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 2:
        return None
    value = int(raw)
    return value if scale.accepts(value) else None


def _render_form(invitation, selected, comment, errors, status=200):
    scale = metrics.SCALES[invitation.survey.kind]
    return (
        render_template(
            "survey/page.html",
            survey=invitation.survey,
            **_texts(invitation.survey),
            scale=scale,
            selected=selected,
            comment=comment or "",
            errors=errors,
            max_comment=current_app.config["COMMENT_MAX_LENGTH"],
            form_token=_form_token(invitation),
        ),
        status,
    )


@bp.get("/s/<token>")
def show(token):
    """Show the question; ?score=N pre-selects N. Nothing is recorded."""
    invitation = g.get("invitation")
    if invitation is None:
        return _unavailable()
    scale = metrics.SCALES[invitation.survey.kind]
    previous = db.session.query(Response).filter_by(invitation_id=invitation.id).first()
    selected = _parse_score(request.args.get("score"), scale)
    if selected is None and previous is not None:
        selected = previous.score
    comment = previous.comment if previous is not None else ""
    return _render_form(invitation, selected, comment, {})


@bp.post("/s/<token>")
def answer(token):
    """Store the answer, or show the form again with what is wrong."""
    invitation = g.get("invitation")
    if invitation is None:
        return _unavailable()
    if not _form_is_ours(invitation):
        logger.info("answer form refused invitation=%s", invitation.id)
        abort(400)
    scale = metrics.SCALES[invitation.survey.kind]
    given = request.form.getlist("score")
    # One score a form: a doctored form with two is not one answer.
    raw_score = given[0] if len(given) == 1 else ("" if not given else "?")
    comment = responses.clean_comment(request.form.get("comment"))
    errors = {}
    score = _parse_score(raw_score, scale)
    if score is None:
        errors["score"] = (
            gettext(
                "Choose a score from %(low)s to %(high)s.",
                low=scale.low,
                high=scale.high,
            )
            if raw_score
            else gettext("Choose a score before sending.")
        )
    limit = current_app.config["COMMENT_MAX_LENGTH"]
    # Counted in characters (Unicode code points), the unit the error names, not in
    # bytes or in the UTF-16 units a browser's maxlength would count.
    if comment is not None and len(comment) > limit:
        errors["comment"] = ngettext(
            "Your comment has %(count)s characters; the limit is %(limit)s"
            " character. Please shorten it.",
            "Your comment has %(count)s characters; the limit is %(limit)s"
            " characters. Please shorten it.",
            limit,
            count=format_number(len(comment)),
            limit=format_number(limit),
        )
    if errors:
        return _render_form(invitation, score, comment, errors, 400)

    responses.record(invitation, score, comment, "web")
    return render_template(
        "survey/thanks.html",
        survey=invitation.survey,
        **_texts(invitation.survey),
        score=score,
        token=token,
        lang_query=i18n.requested_language(),
        expires_at=invitation.expires_at,
    )
