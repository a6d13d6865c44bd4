"""Migrations: one head, so every database upgrades along one line."""

from alembic.script import ScriptDirectory


def test_one_head(app):
    with app.app_context():
        state = app.extensions["migrate"]
        config = state.migrate.get_config(state.directory)
        heads = ScriptDirectory.from_config(config).get_heads()

    assert len(heads) == 1
