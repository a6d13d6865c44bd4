"""Message bodies: the survey email and text, rendered in the contact's language."""

from flask import render_template

from feedback import i18n
from feedback import invitations
from feedback import metrics
from feedback.delivery import email
from feedback.models import Message


def email_message(config: dict, message: Message):
    """The survey email: the question, a row of score buttons and the plain link."""
    invitation = message.invitation
    survey = invitation.survey
    url = invitations.survey_url(invitation)
    candidates = i18n.invitation_candidates(invitation)
    with i18n.respondent_locale(invitation):
        context = {
            "survey": survey,
            "question": i18n.survey_text(survey, "question", candidates),
            "contact": invitation.contact,
            "url": url,
            "scale": metrics.SCALES[survey.kind],
            "reminder": message.purpose == "reminder",
        }
        # A header is one line, whatever the question's text holds.
        subject = " ".join(render_template("email/subject.txt", **context).split())
        text = render_template("email/invitation.txt", **context)
        html = render_template("email/invitation.html", **context)
    return email.build(
        config, message.to_address, invitation.contact.name, subject, text, html
    )


def sms_body(message: Message) -> str:
    """The survey text: in English, short enough for one GSM-7 segment with its link."""
    url = invitations.survey_url(message.invitation)
    with i18n.respondent_locale(message.invitation):
        return render_template(
            "sms/invitation.txt", url=url, reminder=message.purpose == "reminder"
        ).strip()
