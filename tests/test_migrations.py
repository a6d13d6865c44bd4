"""The migrations: one head, a message on each, and the same schema as the models."""

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade
from flask_migrate import upgrade
from sqlalchemy import inspect
from sqlalchemy import select

from feedback import ROOT
from feedback import create_app
from feedback.extensions import MIGRATE_OPTIONS
from feedback.models import Contact
from feedback.models import Invitation
from feedback.models import Message
from feedback.models import Survey
from feedback.models import db


def scripts() -> ScriptDirectory:
    return ScriptDirectory(str(ROOT / "migrations"))


def test_one_head():
    assert len(scripts().get_heads()) == 1


def test_every_revision_has_a_message():
    for revision in scripts().walk_revisions():
        message = (revision.doc or "").strip()
        assert message, revision.revision
        assert len(message) >= 10, (revision.revision, message)


def differences(app) -> list:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": MIGRATE_OPTIONS["compare_type"]}
        )
        return compare_metadata(context, db.metadata)


def test_migrated_schema_matches_the_models(app):
    # The database_url fixture built this database with `upgrade` alone.
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert tables >= {table.name for table in db.metadata.sorted_tables}

    assert differences(app) == []


def test_downgrade_and_upgrade_again(tmp_path):
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/cycle.db", "SECRET_KEY": "cycle"}
    )
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
        upgrade()
        db.engine.dispose()

    assert differences(app) == []
    with app.app_context():
        db.engine.dispose()


def test_upgrade_counts_the_answers_stored_before(tmp_path):
    import sqlalchemy
    from flask_migrate import upgrade

    from feedback import create_app
    from feedback.models import db

    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'old.sqlite3'}", "SECRET_KEY": "x"}
    )
    stamp = "2024-06-01 10:42:00.000000"
    with app.app_context():
        upgrade(revision="f09b3c6e58f0")
        for statement in (
            "INSERT INTO surveys (id, key, kind, question, touchpoint, stage, locale,"
            " link_ttl_days, created_at, updated_at) VALUES (1, 'stay', 'nps', 'Q',"
            f" 'post-stay', 'retention', 'en', 14, '{stamp}', '{stamp}')",
            "INSERT INTO contacts (id, properties, created_at, updated_at)"
            f" VALUES (1, '{{}}', '{stamp}', '{stamp}')",
            "INSERT INTO invitations (id, survey_id, contact_id, channel, status,"
            " properties, token_nonce, token_hash, send_at, expires_at, created_at,"
            f" updated_at) VALUES (1, 1, 1, 'link', 'answered', '{{}}', x'00', 'h',"
            f" '{stamp}', '{stamp}', '{stamp}', '{stamp}')",
            "INSERT INTO responses (id, invitation_id, survey_id, contact_id, score,"
            " channel, properties, answered_at, updated_at) VALUES (1, 1, 1, 1, 9,"
            f" 'web', '{{}}', '{stamp}', '{stamp}')",
        ):
            db.session.execute(sqlalchemy.text(statement))
        db.session.commit()
        upgrade()
        rows = db.session.execute(
            sqlalchemy.text(
                "SELECT hours, starts_at, channel, s9 FROM score_counts ORDER BY hours"
            )
        ).all()
        db.session.remove()
        db.engine.dispose()

    assert [tuple(row) for row in rows] == [
        (1, "2024-06-01 10:00:00.000000", "web", 1),
        (24, "2024-06-01 00:00:00.000000", "web", 1),
    ]


# A first message's status and whether it was sent, its invitation's status before
# the upgrade, and what the upgrade, then a downgrade, make of that invitation.
ENDINGS = [
    ("failed", False, "scheduled", "failed", "scheduled"),
    ("undelivered", True, "sent", "failed", "sent"),
    ("unknown", False, "scheduled", "unknown", "scheduled"),
    ("failed", False, "suppressed", "suppressed", "suppressed"),
    ("delivered", True, "sent", "sent", "sent"),
    ("pending", False, "scheduled", "scheduled", "scheduled"),
]


def invitation_statuses() -> list[str]:
    found = db.session.scalars(select(Invitation.status).order_by(Invitation.id))
    statuses = list(found)
    # Nothing may hold a lock on a table the next migration changes.
    db.session.remove()
    return statuses


def test_upgrade_ends_invitations_whose_first_message_failed(make_app):
    app = make_app()
    now = datetime.now(UTC)
    with app.app_context():
        downgrade(revision="bbc4a22a80d3")
        survey = Survey(
            key="stay", kind="nps", question="Q", touchpoint="t", stage="retention"
        )
        for number, (message_status, sent, status, _, _) in enumerate(ENDINGS):
            invitation = Invitation(
                survey=survey,
                contact=Contact(properties={}),
                channel="sms",
                status=status,
                token_nonce=b"\0",
                token_hash=f"hash-{number}",
                send_at=now,
                expires_at=now + timedelta(days=14),
            )
            message = Message(
                invitation=invitation,
                channel="sms",
                to_address="+447911123456",
                status=message_status,
                due_at=now,
                sent_at=now if sent else None,
            )
            db.session.add(message)
        db.session.commit()
        db.session.remove()

        upgrade()
        upgraded = invitation_statuses()
        downgrade(revision="bbc4a22a80d3")
        downgraded = invitation_statuses()
        upgrade()

    assert upgraded == [ending[3] for ending in ENDINGS]
    assert downgraded == [ending[4] for ending in ENDINGS]
