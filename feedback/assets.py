"""Static files under versioned URLs, so browsers keep them for a year."""

import hashlib
import mimetypes
from pathlib import Path

from flask import abort
from flask import current_app
from flask import request
from flask import url_for
from werkzeug.security import safe_join

YEAR_SECONDS = 365 * 24 * 3600


def _content(filename: str) -> tuple[bytes, str]:
    """The file's bytes and a short hash of them, read again only when it changes."""
    folder = current_app.static_folder
    joined = safe_join(folder, filename) if folder else None
    if joined is None:
        raise FileNotFoundError(filename)
    path = Path(joined)
    stamp = path.stat().st_mtime_ns
    contents = current_app.extensions.setdefault("asset_contents", {})
    known = contents.get(filename)
    if known is None or known[0] != stamp:
        data = path.read_bytes()
        known = (stamp, data, hashlib.sha256(data).hexdigest()[:12])
        contents[filename] = known
    return known[1], known[2]


def version(filename: str) -> str:
    """A short hash of the file's content: a change gives the file a new URL."""
    return _content(filename)[1]


def asset_url(filename: str) -> str:
    return url_for("static", filename=filename, v=version(filename))


def serve(filename: str):
    """Answer from memory: the files are small, and no open file outlives a request.

    A client that hangs up mid-download would otherwise leave the development
    server holding the file until garbage collection.
    """
    try:
        data, current = _content(filename)
    except OSError:
        abort(404)
    mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    response = current_app.response_class(data, mimetype=mimetype)
    response.set_etag(current)
    if request.args.get("v") == current:
        response.headers["Cache-Control"] = f"public, max-age={YEAR_SECONDS}, immutable"
    else:
        # An old or missing version must not be kept: check again each time.
        response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)


def init_app(app) -> None:
    app.jinja_env.globals["asset_url"] = asset_url
    app.view_functions["static"] = serve
