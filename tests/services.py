"""Where the real services are, whether they answer, and what to do when one does not."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/alerting"
BROKER_URLS = {
    "rabbitmq": os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    "redis": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "embedded": "filesystem://",
}
DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "amqp": 5672, "redis": 6379}


def unreachable_reason(url: str) -> str | None:
    """Why the server behind ``url`` cannot be reached, or ``None`` if it answers (or needs no server)."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        return None
    host = parts.hostname or "127.0.0.1"
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as exc:
        return f"nothing answers at {host}:{port} ({exc.strerror or exc})"
