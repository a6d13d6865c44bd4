"""API keys: created once from the CLI, stored as hashes, sent as Bearer tokens."""

import hmac

from flask import request

from feedback import tokens
from feedback.errors import ApiError
from feedback.models import ApiKey
from feedback.models import db


def create_key(name: str) -> str:
    """Store a new key's hash and return the key; it is never shown again."""
    key = tokens.new_api_key()
    db.session.add(ApiKey(name=name, key_hash=tokens.digest(key)))
    db.session.commit()
    return key


def key_exists(key: str) -> bool:
    return (
        db.session.query(ApiKey.id).filter_by(key_hash=tokens.digest(key)).first()
        is not None
    )


def require_api_key() -> None:
    """Refuse the request with 401 unless it carries a known API key."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if not hmac.compare_digest(scheme.lower(), "bearer") or not key.strip():
        raise ApiError(401, "Send an API key as 'Authorization: Bearer <key>'.")
    found = (
        db.session.query(ApiKey.id)
        .filter_by(key_hash=tokens.digest(key.strip()))
        .first()
    )
    if found is None:
        raise ApiError(
            401,
            "That API key is not known. Create one with "
            "'.venv/bin/flask --app app feedback create-api-key NAME'.",
        )
