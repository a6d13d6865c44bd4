"""The migrations: one head, a message on each, and the same schema as the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade
from flask_migrate import upgrade
from sqlalchemy import inspect

from feedback import ROOT
from feedback import create_app
from feedback.extensions import MIGRATE_OPTIONS
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
