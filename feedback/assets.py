"""Static files under versioned URLs, so browsers keep them for a year."""

import hashlib
from pathlib import Path

from flask import current_app
from flask import request
from flask import url_for

YEAR_SECONDS = 365 * 24 * 3600


def version(filename: str) -> str:
    """A short hash of the file's content: a change gives the file a new URL."""
    path = Path(current_app.static_folder) / filename
    stamp = path.stat().st_mtime_ns
    versions = current_app.extensions.setdefault("asset_versions", {})
    known = versions.get(filename)
    if known is None or known[0] != stamp:
        known = (stamp, hashlib.sha256(path.read_bytes()).hexdigest()[:12])
        versions[filename] = known
    return known[1]


def asset_url(filename: str) -> str:
    return url_for("static", filename=filename, v=version(filename))


def _cache_headers(response):
    if request.endpoint != "static" or response.status_code not in (200, 304):
        return response
    filename = (request.view_args or {}).get("filename", "")
    try:
        current = version(filename)
    except OSError:
        return response
    if request.args.get("v") == current:
        response.headers["Cache-Control"] = f"public, max-age={YEAR_SECONDS}, immutable"
    else:
        # An old or missing version must not be kept: check again each time.
        response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def init_app(app) -> None:
    app.jinja_env.globals["asset_url"] = asset_url
    app.after_request(_cache_headers)
