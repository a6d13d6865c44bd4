"""The API's blueprint class: strict JSON bodies, the one error shape, no caching."""

import json
import math

import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser
from webargs.flaskparser import is_json_request

from feedback.auth import require_api_key
from feedback.errors import ApiError


def _no_duplicates(pairs):
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"the key {key!r} appears twice in one object")
    return dict(pairs)


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # 1e400 reads as infinity, which no JSON column or client can hold.
        raise ValueError(f"{text} is too large a number")
    return value


def parse_json_body(data: bytes):
    """Parse a body as strict JSON: only finite numbers, no key given twice."""
    try:
        return json.loads(
            data,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite,
        )
    except RecursionError:
        raise ApiError(
            400, "The JSON body is nested too deeply.", {"json": ["Nested too deeply."]}
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(
            400,
            f"The body is not valid JSON: {error}.",
            {"json": ["Invalid JSON body."]},
        ) from None


class JsonParser(FlaskParser):
    def _raw_load_json(self, req):
        if not is_json_request(req):
            if req.get_data(cache=True):
                raise ApiError(
                    415,
                    "Send the body as JSON with 'Content-Type: application/json'.",
                    {"content_type": [f"Got {req.mimetype or 'none'}."]},
                )
            return core.missing
        data = req.get_data(cache=True)
        # An empty body is no body: the schema then names each missing field.
        return parse_json_body(data) if data.strip() else core.missing


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest blueprint behind an API key, parsing bodies strictly."""

    ARGUMENTS_PARSER = JsonParser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.before_request(require_api_key)
        self.after_request(_no_store)


def _no_store(response):
    # Answers may carry personal survey links; no cache should keep them.
    response.headers.setdefault("Cache-Control", "no-store")
    return response
