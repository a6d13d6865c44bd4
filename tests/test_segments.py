"""SMS segment counting in GSM-7 and UCS-2, and the warning for costly templates."""

import logging

import pytest
from jinja2 import ChoiceLoader
from jinja2 import DictLoader

from feedback.delivery import compose
from feedback.delivery import segments
from feedback.invitations import trigger


@pytest.mark.parametrize(
    ("text", "encoding", "units", "count"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        # Each of ^{}\[~]|€ takes an escape and counts twice.
        ("^{}\\[~]|€", "GSM-7", 18, 1),
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 159 + "^", "GSM-7", 161, 2),
        # An escaped character does not straddle two parts: 152 + (2 + 152).
        ("a" * 152 + "€" + "a" * 151, "GSM-7", 305, 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        # Accented letters of the GSM alphabet keep GSM-7.
        ("Grüße aus Köln, señor Åke! @£$¥", "GSM-7", 31, 1),
        ("Zoë", "UCS-2", 3, 1),
        ("a" * 70 + "ê", "UCS-2", 71, 2),
        ("a" * 69 + "’", "UCS-2", 70, 1),
        ("a" * 134 + "’", "UCS-2", 135, 3),
        ("a" * 134, "GSM-7", 134, 1),
        # An emoji is two UTF-16 units.
        ("a" * 68 + "😀", "UCS-2", 70, 1),
        ("a" * 69 + "😀", "UCS-2", 71, 2),
        # Nor does an emoji's surrogate pair: 66, then 2 + 66.
        ("a" * 66 + "😀" + "a" * 65, "UCS-2", 133, 2),
        ("a" * 66 + "😀" + "a" * 66, "UCS-2", 134, 3),
    ],
)
def test_segment_counts(text, encoding, units, count):
    assert segments.count(text) == segments.Segments(encoding, units, count)


def _sms_message(app, survey_data):
    from feedback.models import Survey
    from feedback.models import db

    with app.app_context():
        db.session.add(Survey(**{**survey_data, "key": "sms-nps"}))
        db.session.commit()
        invitation, _ = trigger(
            {
                "survey": "sms-nps",
                "channel": "sms",
                "contact": {"phone": "+447700900123"},
            },
            None,
            "print",
        )
        return invitation.id


def test_the_default_text_with_its_link_fits_one_gsm7_segment(app, survey_data):
    invitation_id = _sms_message(app, survey_data)
    from feedback.models import Invitation
    from feedback.models import db

    with app.test_request_context():
        message = db.session.get(Invitation, invitation_id).messages[0]
        for purpose in ("invitation", "reminder"):
            message.purpose = purpose
            body = compose.sms_body(message)
            assert "https://feedback.example.com/s/" in body
            assert all(ord(char) < 128 and char not in "^{}\\[~]|" for char in body)
            assert len(body) <= 160
            assert segments.count(body).count == 1


def test_a_template_that_forces_ucs2_is_logged(app, survey_data, caplog):
    invitation_id = _sms_message(app, survey_data)
    from feedback.models import Invitation
    from feedback.models import db

    app.jinja_loader = ChoiceLoader(
        [
            DictLoader({"sms/invitation.txt": "Wie war’s? 😀 {{ url }}"}),
            app.jinja_loader,
        ]
    )
    with app.test_request_context(), caplog.at_level(logging.WARNING):
        message = db.session.get(Invitation, invitation_id).messages[0]
        body = compose.sms_body(message)
    assert body.startswith("Wie war’s?")
    warnings = [r for r in caplog.records if r.name == "feedback.delivery.compose"]
    assert len(warnings) == 1
    assert "UCS-2" in warnings[0].getMessage()
    assert "+44" not in warnings[0].getMessage()
