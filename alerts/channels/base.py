"""What a delivery channel is: its declaration (``DeliveryChannel``), the interface of its provider
(``Transport``) and the one error type transports raise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

# Widens, on both sides, the time in which an interrupted attempt can have handed its message to the
# provider: the provider's clock is not ours, and it may write the message a moment after the request
# reached it (even after our client gave up waiting).
PROVIDER_CLOCK_MARGIN = timedelta(minutes=1)


class DeliveryError(Exception):
    """A message could not be handed to the provider.

    ``permanent`` says whether a retry can help: an invalid number stays invalid (permanent), a provider
    that is down or rate limiting us may answer in an hour (temporary). ``code`` is the provider's own code
    (Twilio's error code, the SMTP reply code) or a short word for failures below the protocol
    ("read-timeout", "connection-error"), kept for the delivery record. ``retry_after`` (seconds) says
    that the trouble passes in seconds, not hours (a full queue, too many requests): the next attempt
    comes that soon instead of after the alert's retry delay.
    """

    def __init__(
        self, message: str, *, permanent: bool, code: str | int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"DeliveryError({self.message!r}, permanent={self.permanent}, code={self.code!r}, "
            f"retry_after={self.retry_after!r})"
        )


@dataclass(frozen=True)
class Envelope:
    """What a delivery knows about its message besides the text: what a receiver that files alerts (the
    webhook) needs, and the text channels ignore.

    ``delivery_id`` is the same on every attempt of one delivery, so that a receiver can drop a repeat.
    """

    delivery_id: str
    alert_id: int
    alert_name: str
    urgent: bool
    occurrence_id: int
    scheduled_for: datetime
    contact_id: int
    contact_name: str
    text: str  # the message, without the acknowledgement link the body ends with
    acknowledge_url: str
    signing_secret: str


@dataclass(frozen=True)
class SentMessage:
    """What the provider accepted: its id for the message (Twilio's SID, the email's Message-ID)."""

    provider_id: str
    # True when the message went to a local sink instead of a real provider, so the job page can say so.
    via_sink: bool = False
    note: str = ""


class Transport:
    """A way to hand a message to a provider: one subclass per provider, each in its channel's module.

    ``send`` returns once the provider has accepted the message, or raises ``DeliveryError``. It must be
    called outside any transaction that records the outcome: if that commit failed after the provider
    accepted, a retry would deliver twice. ``body`` is the text as a person reads it (with the
    acknowledgement link); ``envelope`` carries what a structured channel sends besides it.
    """

    name: ClassVar[str] = ""
    # Whether ``find_sent`` can tell "not sent" from "cannot tell": only then may a send that was cut short
    # be sent again once the provider says it does not have it.
    can_find_sent: ClassVar[bool] = False

    def send(self, *, to: str, body: str, subject: str = "", envelope: Envelope | None = None) -> SentMessage:
        raise NotImplementedError

    def reserve(self, *, body: str) -> float:
        """Reserve this message's slot in the channel's own sending rate; return the seconds until it.

        0 for a channel without a rate of its own. The caller never waits for it: it sends when the slot
        has come, keeping the reservation meanwhile.
        """
        return 0.0

    def find_sent(self, *, to: str, body_start: str, attempt_started: datetime) -> list[str]:
        """The provider's ids of the messages to ``to`` beginning with ``body_start`` that the attempt begun
        at ``attempt_started`` can have handed it, newest first.

        Asked before resending after an answer that never came, or after a worker died while sending: the
        provider may have accepted the message anyway. Only messages from that attempt's own time count
        (from ``PROVIDER_CLOCK_MARGIN`` before it to the end of its last request, and that margin): the same
        text to the same number an hour later is the next occurrence's message, not this one. Empty when
        nothing was found, or when the provider cannot be asked.
        """
        return []


@dataclass(frozen=True)
class DeliveryChannel:
    """A channel as the rest of the app sees it, declared once in the channel's module.

    ``name`` is the value of ``Delivery.channel`` and names the delivery task (``alerts.deliver_<name>``);
    ``contact_field`` is the ``Contact`` field holding the address; ``queue`` is the ``JOB_QUEUES`` queue its
    jobs run on; ``transport`` builds the ``Transport`` the settings ask for.
    """

    name: str
    contact_field: str
    queue: str
    transport: Callable[[], Transport]

    def address(self, contact: Any) -> str:
        return getattr(contact, self.contact_field) or ""
