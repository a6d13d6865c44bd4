"""`feedback serve`: the web server and its worker start, and stop, together."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def children(pid: int) -> list[int]:
    """The processes whose parent is pid, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def wait_until(check, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/s/x", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@pytest.fixture
def serving(tmp_path):
    """`feedback serve` on a free loopback port over a fresh SQLite database."""
    port = free_port()
    env = {
        **os.environ,
        "FEEDBACK_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "FEEDBACK_BASE_URL": f"http://127.0.0.1:{port}",
        "FEEDBACK_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True)
    server = subprocess.Popen(
        [*flask, "feedback", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: answers(port) and children(server.pid))
        yield server, port
    finally:
        for child in children(server.pid):
            os.kill(child, signal.SIGKILL)
        if server.poll() is None:
            server.kill()
        server.communicate(timeout=10)


def test_sigterm_stops_the_server_and_its_worker(serving):
    server, port = serving
    (worker,) = children(server.pid)

    server.send_signal(signal.SIGTERM)

    assert server.wait(timeout=20) == 0
    assert not alive(worker)
    assert not answers(port)


def test_a_dead_worker_stops_the_server_too(serving):
    server, port = serving
    (worker,) = children(server.pid)

    os.kill(worker, signal.SIGKILL)

    assert server.wait(timeout=20) == 1
    assert "the delivery worker stopped" in server.stderr.read()
    assert not answers(port)
