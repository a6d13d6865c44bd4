"""The JSON API under /api/v1: surveys, invitations, scores, responses, suppressions."""

import flask_smorest

from feedback import errors
from feedback.api.schemas import ErrorSchema


class Api(flask_smorest.Api):
    """flask-smorest, answering errors in the service's one JSON shape."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        errors.register(self._app)


BEARER = {"type": "http", "scheme": "bearer"}


def init_app(app) -> Api:
    """Join the API blueprints to the app; they take an API key."""
    from feedback.api import invitations
    from feedback.api import responses
    from feedback.api import scores
    from feedback.api import suppressions
    from feedback.api import surveys

    api = Api(app, spec_kwargs={"security": [{"bearerAuth": []}]})
    api.spec.components.security_scheme("bearerAuth", BEARER)
    blueprints = (
        surveys.blp,
        invitations.blp,
        scores.blp,
        responses.blp,
        suppressions.blp,
    )
    for blueprint in blueprints:
        api.register_blueprint(blueprint, url_prefix="/api/v1")
    return api
