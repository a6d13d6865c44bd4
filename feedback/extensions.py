"""Extensions, created unbound and joined to the app in the factory."""

from flask_migrate import Migrate

from feedback.models import UTCDateTime

migrate = Migrate()


def render_migration_item(type_, obj, autogen_context):
    """Write our UTC type as a plain timestamp, so migrations need no app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


MIGRATE_OPTIONS = {
    "render_as_batch": True,
    "compare_type": True,
    "render_item": render_migration_item,
}
