"""Message bodies: the survey email and text, rendered in the contact's language."""

import logging

from flask import render_template

from feedback import i18n
from feedback import invitations
from feedback import metrics
from feedback.delivery import email
from feedback.delivery import segments
from feedback.models import Message

logger = logging.getLogger(__name__)


def email_message(config: dict, message: Message):
    """The survey email: the question, a row of score buttons and the plain link."""
    invitation = message.invitation
    survey = invitation.survey
    url = invitations.survey_url(invitation)
    unsubscribe = invitations.unsubscribe_url(invitation)
    candidates = i18n.invitation_candidates(invitation)
    with i18n.respondent_locale(invitation):
        context = {
            "survey": survey,
            "question": i18n.survey_text(survey, "question", candidates),
            "contact": invitation.contact,
            "url": url,
            "unsubscribe_url": unsubscribe,
            "scale": metrics.SCALES[survey.kind],
            "reminder": message.purpose == "reminder",
        }
        # A header is one line, whatever the question's text holds.
        subject = " ".join(render_template("email/subject.txt", **context).split())
        text = render_template("email/invitation.txt", **context)
        html = render_template("email/invitation.html", **context)
    # RFC 8058: mail clients offer a one-click unsubscribe that POSTs to the link.
    headers = {
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    return email.build(
        config,
        message.to_address,
        invitation.contact.name,
        subject,
        text,
        html,
        headers,
    )


def sms_body(message: Message) -> str:
    """The survey text: in English, short enough for one GSM-7 segment with its link."""
    url = invitations.survey_url(message.invitation)
    with i18n.respondent_locale(message.invitation):
        body = render_template(
            "sms/invitation.txt", url=url, reminder=message.purpose == "reminder"
        ).strip()
    counted = segments.count(body)
    if counted.encoding != "GSM-7":
        # One character outside GSM-7 more than halves what fits in a segment.
        logger.warning(
            "text needs UCS-2 message=%s segments=%s units=%s",
            message.id,
            counted.count,
            counted.units,
        )
    return body
