"""Corner cases of scores and sending: long ranges, alike answers, odd zones."""

import pytest

from feedback import metrics
from feedback import throttling
from feedback.models import Contact
from feedback.models import Invitation
from feedback.models import Message
from feedback.models import db
from feedback.models import utcnow
from tests.conftest import answer_page
from tests.conftest import assert_error
from tests.conftest import create_survey
from tests.conftest import trigger_link


@pytest.mark.parametrize(
    ("start", "end"),
    [("1800-01-01", "2100-01-01"), ("0001-01-02", "9999-12-30")],
)
def test_a_range_of_centuries_is_answered(api, client, start, end):
    create_survey(api)
    answer_page(client, trigger_link(api, "post-stay-nps", "g1")["url"], 9)

    result = api.get(f"/api/v1/scores?survey=post-stay-nps&from={start}&to={end}")

    assert result.status_code == 200, result.json
    assert (result.json["n"], result.json["score"]) == (1, 100.0)


def test_comparison_of_samples_without_spread_says_nothing():
    # Two passives, then two promoters: each period has every answer alike.
    compared = metrics.compare("nps", {10: 2}, {8: 2})

    assert compared == {"delta": 100.0, "significant": None}


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "right/UTC"])
def test_host_dependent_zones_are_refused(api, zone):
    result = api.get(f"/api/v1/scores?survey=post-stay-nps&tz={zone}")

    assert_error(result, 422, "invalid")


def test_a_send_of_unknown_outcome_counts_for_throttling(app, api):
    create_survey(api)
    invitation = trigger_link(api, "post-stay-nps", "g1")
    stamp = utcnow()
    with app.app_context():
        message = Message(
            invitation_id=invitation["id"],
            channel="sms",
            to_address="+447911123456",
            due_at=stamp,
        )
        message.move_to("unknown", stamp)
        db.session.add(message)
        db.session.commit()
        contact_id = db.session.get(Invitation, invitation["id"]).contact_id

        assert db.session.get(Contact, contact_id) is not None
        assert throttling.last_sent_at(contact_id) == message.updated_at


@pytest.mark.parametrize("value", [1e20, 0.30000000000000004, -0.0, 2**63, 12, 1.5])
def test_a_numeric_property_groups_the_same_declared_or_not(api, client, value):
    create_survey(api, key="declared", segments=["p"])
    create_survey(api, key="undeclared")
    for survey in ("declared", "undeclared"):
        invitation = trigger_link(api, survey, f"g-{survey}", properties={"p": value})
        answer_page(client, invitation["url"], 9)

    groups = {
        survey: api.get(f"/api/v1/scores?survey={survey}&group_by=property.p").json[
            "groups"
        ]
        for survey in ("declared", "undeclared")
    }

    assert [group["value"] for group in groups["declared"]] == [str(value)]
    assert [group["value"] for group in groups["undeclared"]] == [str(value)]
