"""The file outbox: messages written to a folder a person can open, for local use."""

import logging
from datetime import UTC
from datetime import datetime
from pathlib import Path

from feedback.delivery import Sent

logger = logging.getLogger(__name__)


def write(folder: str, message_id: int, suffix: str, content: bytes) -> Sent:
    """Write one message as a file and return its name as the provider id."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = f"{stamp}-message-{message_id}.{suffix}"
    (path / name).write_bytes(content)
    logger.info("message written to the outbox message=%s file=%s", message_id, name)
    return Sent(provider_id=f"outbox:{name}")
