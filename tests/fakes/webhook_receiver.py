"""A local HTTP server receiving the webhook channel's POSTs: it checks each signature as the README tells
receivers to, records what it got, and answers with scripted statuses.

In tests: ``with WebhookReceiver(secret) as receiver: ...``, give a contact ``receiver.url`` (or a path
under it) and that secret, then assert on ``receiver.requests``. ``answer_next(status, ...)`` scripts the
next answers (a status, headers, a body, a delay before answering); without a script it answers 204.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The replay window the README suggests: a signature older than this is refused.
TOLERANCE_SECONDS = 300


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """The README's verification, restated with the standard library only (tests/alerts/test_webhook_channel.py
    checks that the README's own snippet agrees with it)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", "")) and abs(now - timestamp) <= tolerance


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool
    received_at: float
    answered: int

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, secret: str, *, host: str = "127.0.0.1") -> None:
        self.secret = secret
        self.requests: list[Received] = []
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answer_next(self, status: int, *, headers: dict[str, str] | None = None, body: bytes = b"",
                    delay: float = 0.0, times: int = 1) -> None:  # fmt: skip
        with self._lock:
            self._script.extend([Answer(status, headers or {}, body, delay)] * times)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._script.popleft() if self._script else Answer(204)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = time.time()
                answer = receiver._next_answer()
                valid = verify(receiver.secret, self.headers.get("X-Alerting-Signature", ""), body, now=now)
                if answer.delay:
                    time.sleep(answer.delay)
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body, valid, now, answer.status))
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (a read timeout): what it sent is recorded

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
