"""Command-line tasks under `flask --app app feedback ...`."""

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import delete
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import run_simple

from feedback import auth
from feedback import score_counts
from feedback.delivery import worker as delivery_worker
from feedback.models import ApiKey
from feedback.models import Survey
from feedback.models import db

logger = logging.getLogger(__name__)
# The api_keys.name column's length.
NAME_MAX = 100

# A path segment of a token's length and alphabet: survey and opt-out links.
TOKEN_SEGMENT = re.compile(r"/[A-Za-z0-9]{22}(?=[/?\s]|$)")


class RedactingRequestHandler(WSGIRequestHandler):
    """The development server's access log, without personal link tokens."""

    def log_request(self, code="-", size="-"):
        self.requestline = TOKEN_SEGMENT.sub("/<token>", self.requestline)
        super().log_request(code, size)


group = AppGroup("feedback", help="Run the delivery worker and manage API keys.")


@group.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
def worker_command(once):
    """Claim due messages and send them, until stopped (or once with --once)."""
    if once:
        handled = delivery_worker.run_once()
        click.echo(f"{handled} message(s) handled.")
        return
    stopping = []

    def stop(*_):
        stopping.append(True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delivery_worker.run_forever(stop=lambda: bool(stopping))


@group.command("recount-scores")
@click.argument("survey_keys", nargs=-1)
def recount_scores(survey_keys):
    """Recount the score counts of the surveys named (all when none) from responses."""
    statement = select(Survey).order_by(Survey.key)
    if survey_keys:
        statement = statement.where(Survey.key.in_(survey_keys))
    surveys = db.session.scalars(statement).all()
    missing = sorted(set(survey_keys) - {survey.key for survey in surveys})
    if missing:
        raise click.ClickException(f"No survey with key {', '.join(missing)}.")
    for survey in surveys:
        # One survey per transaction: answers to the others keep flowing meanwhile.
        db.session.scalar(
            select(Survey.id).where(Survey.id == survey.id).with_for_update()
        )
        score_counts.rebuild(survey)
        db.session.commit()
        click.echo(f"{survey.key}: recounted.")


@group.command("create-api-key")
@click.argument("name")
def create_api_key(name):
    """Create an API key called NAME and print it; it is not shown again."""
    name = name.strip()
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise click.BadParameter(
            f"give the key a name of 1 to {NAME_MAX} printable characters, such as crm",
            param_hint="NAME",
        )
    click.echo(auth.create_key(name))


@group.command("list-api-keys")
def list_api_keys():
    """List the API keys by name and creation time; the keys themselves are not kept."""
    keys = db.session.scalars(select(ApiKey).order_by(ApiKey.name, ApiKey.id)).all()
    for key in keys:
        click.echo(
            f"{key.name}\tcreated {key.created_at.isoformat(timespec='seconds')}"
        )
    if not keys:
        click.echo("No API keys yet; create one with: feedback create-api-key NAME")


@group.command("revoke-api-key")
@click.argument("name")
def revoke_api_key(name):
    """Delete every API key called NAME: requests that carry one get 401 from now on."""
    revoked = db.session.execute(delete(ApiKey).where(ApiKey.name == name)).rowcount
    db.session.commit()
    if not revoked:
        raise click.ClickException(f"There is no API key called {name!r}.")
    click.echo(
        f"Revoked {revoked} API key{'s' if revoked > 1 else ''} called {name!r}."
    )


@group.command("local-api-key")
def local_api_key():
    """Make sure this machine's local API key exists, then print how to use it."""
    path = Path(current_app.instance_path) / "local_api_key"
    key = path.read_text().strip() if path.exists() else ""
    if not key or not auth.key_exists(key):
        key = auth.create_key("local")
        path.write_text(key)
        path.chmod(0o600)
    base = current_app.config["BASE_URL"]
    click.echo(f"""
  feedback is starting on {base}
  API key (kept in {path}):
    {key}

  Try it (the README's examples use $KEY):
    export KEY={key}
    curl -s {base}/api/v1/surveys -H "Authorization: Bearer $KEY"
  Messages go to {current_app.config["OUTBOX_DIR"]} unless SMTP or Twilio is set.
""")


@group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def serve(host, port):
    """Run the web server and the delivery worker together; Ctrl-C stops both."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "feedback", "worker"]
    )
    stopping = threading.Event()
    died = []

    def watch():
        # A server without its worker would take triggers and never send them.
        code = worker.wait()
        if not stopping.is_set():
            died.append(code)
            logger.error(
                "the delivery worker stopped (exit code %s); stopping the web server",
                code,
            )
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()
    # SIGTERM too unwinds to the finally below, so the worker is never left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1 if died else 0))
    try:
        run_simple(
            host,
            port,
            current_app._get_current_object(),
            threaded=True,
            request_handler=RedactingRequestHandler,
        )
    finally:
        stopping.set()
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()


def init_app(app) -> None:
    app.cli.add_command(group)
