"""The one JSON error shape, and the handlers that produce it."""

import logging

from flask import jsonify
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError

from feedback.models import db

logger = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "internal_error",
}


class ApiError(HTTPException):
    """An error raised by our own code, with a code a program can switch on."""

    def __init__(self, status: int, message: str, details=None, code: str = ""):
        super().__init__(message)
        self.code = status
        self.error_code = code or CODES.get(status, "error")
        self.details = details


def error_response(status: int, message: str, details=None, code: str = ""):
    body = {
        "error": {
            "code": code or CODES.get(status, "error"),
            "message": message,
            "details": details,
        }
    }
    return jsonify(body), status


def wants_html() -> bool:
    """Pages for people answer errors in HTML; everything else gets JSON."""
    return request.blueprint == "survey_page" or request.path.startswith("/s/")


def handle_http_exception(error: HTTPException):
    if wants_html() and error.code < 500:
        from flask import render_template

        return render_template("survey/error.html"), error.code
    if isinstance(error, ApiError):
        return error_response(
            error.code, error.description, error.details, error.error_code
        )
    if error.code == 422 or (error.code == 400 and getattr(error, "data", None)):
        # webargs puts the marshmallow messages here, keyed by location.
        messages = getattr(error, "data", {}).get("messages", {})
        details = _flatten_locations(messages)
        return error_response(error.code, _summary(details), details)
    if error.code >= 500:
        return handle_unexpected(error)
    return error_response(error.code, error.description or error.name)


def handle_unexpected(error: Exception):
    original = getattr(error, "original_exception", None) or error
    logger.error(
        "unhandled error on %s %s", request.method, request.path, exc_info=original
    )
    db.session.rollback()
    if wants_html():
        from flask import render_template

        return render_template("survey/error.html"), 500
    return error_response(500, "Something went wrong on our side; it has been logged.")


def _flatten_locations(messages: dict) -> dict:
    """Merge the per-location messages (json, query, headers) into one mapping."""
    flat = {}
    for location, location_messages in messages.items():
        if isinstance(location_messages, dict):
            flat.update(location_messages)
        else:
            # A body that is not JSON at all: the problem is the whole location.
            flat[location] = location_messages
    return flat


def _summary(details: dict) -> str:
    if not details:
        return "The request is not valid."
    parts = [f"{field}: {text}" for field, text in _first_problems(details)]
    return "Invalid request. " + "; ".join(parts)


def _first_problems(details: dict, prefix: str = ""):
    """Yield (dotted field, first message), down into nested objects."""
    for field, problems in details.items():
        name = f"{prefix}{field}"
        if isinstance(problems, dict):
            yield from _first_problems(problems, f"{name}.")
            continue
        text = problems[0] if isinstance(problems, list) and problems else problems
        yield name, text


def register(app) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InternalServerError, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
