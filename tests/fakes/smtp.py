"""A local SMTP server (aiosmtpd) that records what it receives and can refuse the next recipient."""

from __future__ import annotations

import email
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller

# aiosmtpd logs every SMTP command at INFO: it would bury the output of a failing test.
logging.getLogger("mail.log").setLevel(logging.WARNING)

DEFAULT_REPLIES = {550: "550 5.1.1 No such user here", 451: "451 4.3.0 Try again later"}


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick), for servers that cannot bind port 0."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ReceivedEmail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    received_at: float


class FakeSmtp:
    """``with FakeSmtp() as smtp: ...``; then ``smtp.messages``, and ``smtp.refuse_next_recipient(451)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[ReceivedEmail] = []
        self._rcpt_replies: deque[str] = deque()
        self.host = "127.0.0.1"
        # aiosmtpd's start() connects to the port it was given to check the server is up, so port 0 (any
        # free port) would not work: take a free port first.
        self.port = free_port()
        # An explicit server name: aiosmtpd would otherwise call socket.getfqdn(), a DNS lookup.
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, server_hostname="fake-smtp")

    @property
    def messages(self) -> list[ReceivedEmail]:
        with self._lock:
            return list(self._messages)

    def refuse_next_recipient(self, code: int = 550, reply: str = "") -> None:
        """Answer the next RCPT TO with ``code``: 550 (permanent) or 451 (temporary), or any full reply."""
        with self._lock:
            self._rcpt_replies.append(reply or DEFAULT_REPLIES.get(code, f"{code} Refused"))

    def start(self) -> FakeSmtp:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> FakeSmtp:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _take_rcpt_reply(self) -> str | None:
        with self._lock:
            return self._rcpt_replies.popleft() if self._rcpt_replies else None

    def _record(self, envelope: Any) -> None:
        # CRLF is the wire's line ending; a mailbox (and the test's expectations) use "\n".
        content = envelope.content.replace(b"\r\n", b"\n")
        message = email.message_from_bytes(content, policy=default_policy)
        received = ReceivedEmail(envelope.mail_from, list(envelope.rcpt_tos), message, time.time())
        with self._lock:
            self._messages.append(received)


class _Handler:
    """aiosmtpd's handler hooks (it finds them by name)."""

    def __init__(self, fake: FakeSmtp) -> None:
        self.fake = fake

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list) -> str:
        reply = self.fake._take_rcpt_reply()
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.fake._record(envelope)
        return "250 Message accepted for delivery"
