"""A local HTTP server speaking enough of Twilio's Messages API for the official SDK, with scripted failures.

In tests: ``with FakeTwilio() as fake: ...`` (or ``start()``/``stop()``), point TWILIO_API_BASE_URL at
``fake.url``, then assert on ``fake.messages``. As a process (benchmarks), standard library only:

    python -m tests.fakes.twilio_server --port 8081 [--latency-ms 250] [--account-sid AC... --auth-token ...]

serves until SIGTERM or SIGINT, then prints how many messages it received. Another process reads what it
received with ``GET /_fake/messages?after=N`` (JSON: ``count``, and the messages from index ``N`` on, each
with its ``received_at``, ``time.time()`` when the request was accepted) or ``GET /_fake/count``, and
changes the provider's latency with ``POST /_fake/latency`` (form field ``ms``).

Latency: each message request is answered that long after it arrived (Twilio's API takes about 100-400
ms), like a real provider: each request has a thread of its own, so a slow answer holds back no other.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import secrets
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "fake-auth-token"
MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
# Not Twilio's: how another process (the benchmark) reads what the fake received.
RECEIVED_PATH = "/_fake/messages"
COUNT_PATH = "/_fake/count"
LATENCY_PATH = "/_fake/latency"
# Twilio's code and wording for the errors the fake produces; a scripted failure may override them.
ERRORS = {
    400: (21211, "The 'To' number is not a valid phone number."),
    401: (20003, "Authenticate"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    503: (20503, "Service unavailable"),
}
# The fields of a freshly queued message that do not depend on the request.
MESSAGE_CONSTANTS = {"api_version": "2010-04-01", "status": "queued", "direction": "outbound-api", "num_media": "0"}
MESSAGE_CONSTANTS |= {"price_unit": "USD"} | dict.fromkeys(("date_sent", "error_code", "error_message", "price"))
CODE_MESSAGES = {
    21211: ERRORS[400][1],
    21614: "'To' number is not a valid mobile number",
    20429: ERRORS[429][1],
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    30001: "Queue overflow",
    21610: "Attempt to send to unsubscribed recipient",
}


@dataclass(frozen=True)
class ReceivedMessage:
    sid: str
    to: str
    from_: str
    body: str
    status_callback: str
    received_at: float
    validity_period: str = ""  # as sent (Twilio's ValidityPeriod, seconds); empty when not sent


@dataclass(frozen=True)
class Scripted:
    status: int
    code: int | None = None
    message: str = ""
    delay: float = 0.0
    accept: bool = False  # after the delay, accept anyway: Twilio took the message, the client never heard


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: with dozens of senders connecting at once, the kernel drops SYNs
    # beyond it and the client retries a second later, which a benchmark would measure as provider latency.
    request_queue_size = 256


class FakeTwilio:
    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.latency = latency  # seconds before each message request is answered
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._script: deque[Scripted] = deque()
        self._refused: dict[str, int] = {}
        self._failed = 0
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        # A short poll interval: shutdown() waits for the loop's next poll, 0.5 s by default, in every test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-twilio", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def messages(self) -> list[ReceivedMessage]:
        """The accepted messages, oldest first (a copy)."""
        with self._lock:
            return list(self._messages)

    def messages_since(self, index: int) -> tuple[int, list[ReceivedMessage]]:
        """How many messages were accepted in all, and those from ``index`` on (oldest first)."""
        with self._lock:
            return len(self._messages), self._messages[max(index, 0) :]

    @property
    def failed_count(self) -> int:
        """Requests answered with an error (scripted, unauthenticated, malformed)."""
        with self._lock:
            return self._failed

    def fail_next(self, *, status: int = 500, code: int | None = None, message: str = "", times: int = 1) -> None:
        """Answer the next ``times`` message requests with this error, in Twilio's error JSON."""
        with self._lock:
            self._script.extend(Scripted(status, code, message) for _ in range(times))

    def refuse_number(self, number: str, *, code: int = 21610) -> None:
        """Refuse every message to ``number`` from now on with HTTP 400 and ``code`` (21610: it replied STOP)."""
        with self._lock:
            self._refused[number] = code

    def accept_number(self, number: str) -> None:
        """Stop refusing ``number`` (it replied START)."""
        with self._lock:
            self._refused.pop(number, None)

    def _refusal(self, number: str) -> int | None:
        with self._lock:
            return self._refused.get(number)

    def hang_next(self, seconds: float, *, accept: bool = False) -> None:
        """Answer the next request only after ``seconds`` (make it longer than the client's timeout)."""
        with self._lock:
            self._script.append(Scripted(504, delay=seconds, accept=accept))

    def start(self) -> FakeTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes hanging requests, so nothing outlives the fake for long
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _authorized(self, header: str, account: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = f"{self.account_sid}:{self.auth_token}"
        return scheme.lower() == "basic" and secrets.compare_digest(given, expected) and account == self.account_sid

    def _take_script(self) -> Scripted | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _count_failure(self) -> None:
        with self._lock:
            self._failed += 1

    def _accept(self, form: dict[str, str]) -> ReceivedMessage:
        message = ReceivedMessage(
            sid="SM" + secrets.token_hex(16),
            to=form.get("To", ""),
            from_=form.get("From", ""),
            body=form.get("Body", ""),
            status_callback=form.get("StatusCallback", ""),
            received_at=time.time(),
            validity_period=form.get("ValidityPeriod", ""),
        )
        with self._lock:
            self._messages.append(message)
        return message


def _resource(fake: FakeTwilio, message: ReceivedMessage) -> dict[str, object]:
    """A message as Twilio's API shows it."""
    now = formatdate(message.received_at, usegmt=True)  # Twilio's dates are RFC 2822, in GMT
    base = f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{message.sid}"
    return {
        **MESSAGE_CONSTANTS,
        "sid": message.sid,
        "account_sid": fake.account_sid,
        "to": message.to,
        "from": message.from_,
        "body": message.body,
        "num_segments": str(1 if len(message.body) <= 160 else -(-len(message.body) // 153)),
        "date_created": now,
        "date_updated": now,
        "uri": f"{base}.json",
        "subresource_uris": {"media": f"{base}/Media.json"},
    }


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeTwilio/1.0"
    # Keep-alive, as Twilio's API: a client sends message after message over one connection, instead of
    # paying a TCP connect per message (HTTP/1.0, http.server's default). Every answer has a Content-Length.
    protocol_version = "HTTP/1.1"
    # An answer goes out in two writes (headers, body): without TCP_NODELAY the body waits for the client's
    # delayed ACK of the headers, 40 ms per message on a kept-alive connection.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # the name http.server dispatches to
        fake: FakeTwilio = self.server.fake  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        form = {key: values[0] for key, values in parse_qs(raw).items()}
        if urlsplit(self.path).path == LATENCY_PATH:
            fake.latency = float(form.get("ms", "0")) / 1000
            return self._json(200, {"latency_ms": fake.latency * 1000})
        match = MESSAGES_PATH.match(urlsplit(self.path).path)
        if not match:
            return self._error(fake, 404)
        if not fake._authorized(self.headers.get("Authorization", ""), match["account"]):
            return self._error(fake, 401)
        if fake.latency:
            fake._stopping.wait(fake.latency)
        script = fake._take_script()
        if script and script.delay:
            fake._stopping.wait(script.delay)
        if script and not script.accept:
            return self._error(fake, script.status, script.code, script.message)
        if not form.get("To") or not form.get("From") or not form.get("Body"):
            return self._error(fake, 400, 21604, "'To', 'From' and 'Body' are required.")
        refusal = fake._refusal(form["To"])
        if refusal is not None:
            return self._error(fake, 400, refusal)
        self._json(201, _resource(fake, fake._accept(form)))

    def _list_messages(self, fake: FakeTwilio, account: str, query: str) -> None:
        """Twilio's message list, filtered by To and From (the one page the client asks for)."""
        if not fake._authorized(self.headers.get("Authorization", ""), account):
            return self._error(fake, 401)
        wanted = {key: values[0] for key, values in parse_qs(query).items()}
        rows = [
            _resource(fake, m)
            for m in reversed(fake.messages)
            if wanted.get("To", m.to) == m.to and wanted.get("From", m.from_) == m.from_
        ]
        uri = f"/2010-04-01/Accounts/{account}/Messages.json"
        page = {"page": 0, "page_size": len(rows), "start": 0, "end": len(rows), "uri": uri}
        self._json(200, {"messages": rows, **page, "first_page_uri": uri, "next_page_uri": None})

    def do_GET(self) -> None:  # the received messages, for a benchmark in another process
        fake: FakeTwilio = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        listing = MESSAGES_PATH.match(parts.path)
        if listing:
            return self._list_messages(fake, listing["account"], parts.query)
        if parts.path == COUNT_PATH:
            return self._json(200, {"count": fake.messages_since(1 << 62)[0], "failed": fake.failed_count})
        if parts.path != RECEIVED_PATH:
            return self._error(fake, 404)
        after = parse_qs(parts.query).get("after", ["0"])[0]
        count, messages = fake.messages_since(int(after) if after.isdigit() else 0)
        rows = [{"sid": m.sid, "to": m.to, "body": m.body, "received_at": m.received_at} for m in messages]
        self._json(200, {"count": count, "failed": fake.failed_count, "messages": rows})

    def _error(self, fake: FakeTwilio, status: int, code: int | None = None, message: str = "") -> None:
        fake._count_failure()
        default_code, default_message = ERRORS.get(status, (status, "Error"))
        code = code or default_code
        message = message or CODE_MESSAGES.get(code, default_message)
        info = f"https://www.twilio.com/docs/errors/{code}"
        self._json(status, {"code": code, "message": message, "more_info": info, "status": status})

    def _json(self, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the hang scripts): nobody is left to answer

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests and benchmarks assert on what was received, not on an access log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake Twilio Messages API, until SIGTERM.")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="answer each message this much later")
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    args = parser.parse_args(argv)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    fake = FakeTwilio(
        account_sid=args.account_sid, auth_token=args.auth_token, port=args.port, latency=args.latency_ms / 1000
    ).start()
    print(f"fake Twilio listening on {fake.url} (account {fake.account_sid})", flush=True)
    while not done.wait(0.5):
        pass
    fake.stop()
    print(f"received {len(fake.messages)} messages, refused {fake.failed_count} requests", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
