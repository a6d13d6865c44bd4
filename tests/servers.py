"""Real servers on loopback for the tests: an SMTP server and a Twilio API stand-in."""

import email
import email.policy
import json
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from aiosmtpd.controller import Controller
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token"
TWILIO_FROM = "+15005550006"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpInbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        self.refuse = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "raw": envelope.content,
                    "message": parsed,
                }
            )
        return "250 Message accepted"

    def wait_for(self, count: int, timeout: float = 10) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        return list(self.messages)


class TwilioHandler(BaseHTTPRequestHandler):
    """Answers the Messages API like Twilio does, and records what it was sent."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        stand_in = self.server.stand_in
        length = int(self.headers.get("Content-Length") or 0)
        form = {
            key: values[0]
            for key, values in parse_qs(self.rfile.read(length).decode()).items()
        }
        request = {
            "path": self.path,
            "form": form,
            "authorization": self.headers.get("Authorization"),
            "user_agent": self.headers.get("User-Agent"),
        }
        request["at"] = time.monotonic()
        with stand_in.lock:
            stand_in.requests.append(request)
            scripted = stand_in.script.pop(0) if stand_in.script else None
        if scripted == "hang":
            time.sleep(stand_in.hang_seconds)
            return
        if scripted == "drop":
            # The request arrived; the line goes dead before any answer.
            self.close_connection = True
            return
        if stand_in.delay_seconds:
            time.sleep(stand_in.delay_seconds)
        if scripted is not None:
            status, body = scripted
            return self._answer(status, body)
        expected = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        if self.path != expected:
            return self._answer(404, {"code": 20404, "message": "Not found"})
        sid = "SM" + uuid.uuid4().hex
        with stand_in.lock:
            stand_in.sent.append({"sid": sid, **form})
        if stand_in.before_answer is not None:
            # Twilio may call back before its answer reaches the sender.
            try:
                stand_in.before_answer(sid, form)
            except Exception as error:
                stand_in.errors.append(error)
        self._answer(
            201,
            {
                "sid": sid,
                "account_sid": ACCOUNT_SID,
                "to": form.get("To"),
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form.get("Body"),
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
            },
        )

    def _answer(self, status: int, body: dict):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class QuietServer(ThreadingHTTPServer):
    """Leaves out the traceback of a client that hung up, as a killed worker does."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class TwilioStandIn:
    """A local HTTP server in place of api.twilio.com."""

    def __init__(self):
        self.requests = []
        self.sent = []
        self.script = []
        self.hang_seconds = 3
        self.delay_seconds = 0.0
        # Called with the new sid and the form once a message is taken, before the
        # answer goes back; what it raises is kept in errors.
        self.before_answer = None
        self.errors = []
        self.lock = threading.Lock()
        self.server = QuietServer(("127.0.0.1", 0), TwilioHandler)
        self.server.daemon_threads = True
        self.server.stand_in = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )

    def fail_next(self, status: int, code: int, message: str = "error") -> None:
        """Answer the next request with a Twilio error."""
        body = {"code": code, "message": message, "status": status}
        self.script.append((status, body))

    def settings(self) -> dict:
        return {
            "SMS_BACKEND": "twilio",
            "TWILIO_API_URL": self.url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM": TWILIO_FROM,
        }


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback; .messages holds what it received."""
    inbox = SmtpInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.port = port
    inbox.settings = lambda: {
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "EMAIL_FROM": "Hotel Adlon <feedback@hotel.example.com>",
        "SMTP_TIMEOUT": 5,
    }
    yield inbox
    controller.stop()


@pytest.fixture
def twilio_api():
    """A Twilio Messages API stand-in on loopback; .requests holds what it got."""
    stand_in = TwilioStandIn()
    stand_in.thread.start()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


@pytest.fixture
def twilio_app(make_app, twilio_api):
    """The app sending texts through the stand-in, fast enough not to wait."""
    return make_app(**twilio_api.settings(), SMS_RATE=1000)


def post_signed(client, path, params, url=None, token=AUTH_TOKEN, tamper=None):
    """Post as Twilio does: form fields, signed for the app's public URL."""
    public = client.application.config["BASE_URL"] + path
    signature = RequestValidator(token).compute_signature(url or public, params)
    sent = {**params, **(tamper or {})}
    return client.post(path, data=sent, headers={"X-Twilio-Signature": signature})


def post_status(client, sid, provider_status, code=None, query=""):
    """A signed status callback for a text, as Twilio sends it."""
    params = {"MessageSid": sid, "MessageStatus": provider_status}
    if code:
        params["ErrorCode"] = code
    return post_signed(client, "/webhooks/twilio/status" + query, params)
