"""Migrations: one head, so every database upgrades along one line."""

from alembic.script import ScriptDirectory


def test_one_head(app):
    with app.app_context():
        state = app.extensions["migrate"]
        config = state.migrate.get_config(state.directory)
        heads = ScriptDirectory.from_config(config).get_heads()

    assert len(heads) == 1


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
