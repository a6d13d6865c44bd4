"""The respondent's page: open the personal link, tap a score, maybe say why."""

import logging

from flask import Blueprint
from flask import current_app
from flask import render_template
from flask import request

from feedback import invitations
from feedback import metrics
from feedback import responses
from feedback.models import Response
from feedback.models import db
from feedback.models import utcnow

logger = logging.getLogger(__name__)

bp = Blueprint("survey_page", __name__)

ANSWERABLE = ("scheduled", "sent", "opened", "answered")
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
        " base-uri 'none'; frame-ancestors 'none'"
    ),
}


@bp.after_request
def _headers(response):
    response.headers.update(SECURITY_HEADERS)
    return response


def _open_invitation(token: str):
    invitation = invitations.find_by_token(token)
    now = utcnow()
    if invitation is None or invitation.current_status(now) not in ANSWERABLE:
        return None
    # An answer can change only while the link is valid, answered or not.
    if now >= invitation.expires_at:
        return None
    return invitation


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
            scale=scale,
            selected=selected,
            comment=comment or "",
            errors=errors,
            max_comment=current_app.config["COMMENT_MAX_LENGTH"],
        ),
        status,
    )


@bp.get("/s/<token>")
def show(token):
    """Show the question; ?score=N pre-selects N. Nothing is recorded."""
    invitation = _open_invitation(token)
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
    invitation = _open_invitation(token)
    if invitation is None:
        return _unavailable()
    scale = metrics.SCALES[invitation.survey.kind]
    raw_score = request.form.get("score")
    comment = responses.clean_comment(request.form.get("comment"))
    errors = {}
    score = _parse_score(raw_score, scale)
    if score is None:
        errors["score"] = (
            f"Choose a score from {scale.low} to {scale.high}."
            if raw_score
            else "Choose a score before sending."
        )
    limit = current_app.config["COMMENT_MAX_LENGTH"]
    if comment is not None and len(comment) > limit:
        errors["comment"] = (
            f"Your comment has {len(comment)} characters; the limit is {limit}."
        )
    if errors:
        return _render_form(invitation, score, comment, errors, 400)

    responses.record(invitation, score, comment, "web")
    return render_template(
        "survey/thanks.html",
        survey=invitation.survey,
        token=token,
        expires_at=invitation.expires_at,
    )
