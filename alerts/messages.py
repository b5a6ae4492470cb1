"""Alert messages: Django templates rendered as plain text for each recipient."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import TypeVar

from django.template import Context, Engine
from django.template.base import Lexer, TokenType, tag_re

# Messages are plain text (SMS and text email): no HTML escaping of names like "O'Brien & Sons".
MESSAGE_ENGINE = Engine(autoescape=False)


@lru_cache(maxsize=1024)
def _compiled(template: str):
    # Compiled once per text, not once per message: 10,000 recipients of an alert share one template. A
    # compiled template keeps its per-render state in the Context, so threads can render it together.
    return MESSAGE_ENGINE.from_string(template)


@dataclass(frozen=True, slots=True)
class MessageContact:
    """All a message may read of its recipient: ``{{ contact.name }}``, ``.phone``, ``.email``.

    Not the Contact row: from a model a template walks relations and reads secrets
    (``contact.deliveries.all.0.job.errors``, ``contact.webhook_secret``), and its author may receive what it
    renders, at a webhook contact of their own or in the form's preview. Anything else renders empty.
    """

    name: str
    phone: str
    email: str

    def __str__(self) -> str:
        return self.name  # ``{{ contact }}`` reads as it did with the model


@dataclass(frozen=True, slots=True)
class MessageAlert:
    """All a message may read of its alert: ``{{ alert.name }}`` and ``{{ alert.pk }}``."""

    name: str
    pk: int | None  # None while unsaved, in the form's preview; the benchmarks tell their SMS apart by it

    def __str__(self) -> str:
        return self.name


# What the validator renders a template with, and the preview shows while no recipient is chosen.
SAMPLE_CONTACT = MessageContact(name="Ada Lovelace", phone="+442079460958", email="ada@example.com")
SAMPLE_ALERT = MessageAlert(name="Sample alert", pk=0)


_MessageFields = TypeVar("_MessageFields", MessageContact, MessageAlert)
# Listed once, not asked of the dataclass for each message: this runs for every recipient of every alert.
_FIELD_NAMES = {kind: tuple(field.name for field in fields(kind)) for kind in (MessageContact, MessageAlert)}


def _readable(kind: type[_MessageFields], source: object) -> _MessageFields:
    # Copies columns already loaded: no query, whatever the source (a model, a sample, the unsaved form's alert).
    return kind(*[getattr(source, name) for name in _FIELD_NAMES[kind]])


def render_message(template: str, *, contact: object, alert: object) -> str:
    """``template`` rendered for ``contact``, reading only the fields of MessageContact and MessageAlert."""
    context = {"contact": _readable(MessageContact, contact), "alert": _readable(MessageAlert, alert)}
    # The engine's autoescape=False reaches only contexts the engine makes; one made here escapes by default.
    return _compiled(template).render(Context(context, autoescape=False))


_CLOSERS = {"{{": "}}", "{%": "%}", "{#": "#}"}
EXAMPLES = {"}}": "{{ contact.name }}", "%}": "{% if contact.name %}…{% endif %}", "#}": "{# a note #}"}
_OPENER = re.compile(r"\{\{|\{%|\{#")


def unclosed_tag(template: str) -> tuple[str, str] | None:
    """The first ``{{``, ``{%`` or ``{#`` left open, as (what follows it on its line, the closer it needs).

    Django's lexer reads a tag only when it closes on the same line, and passes anything else through as
    text: ``Hi {{ contact.name`` would be sent as typed.
    """
    for token in Lexer(template).tokenize():
        # A whole tag inside {% verbatim %} comes back as text: it is closed.
        if token.token_type != TokenType.TEXT or tag_re.fullmatch(token.contents):
            continue
        match = _OPENER.search(token.contents)
        if match:
            rest = token.contents[match.start() :].splitlines()[0]
            return rest[:40], _CLOSERS[match.group()]
    return None


def channel_template(alert: object, channel: str) -> str:
    """The template an alert sends on ``channel``: its own text for that channel, or else its message."""
    own = {"sms": "sms_text", "email": "email_body"}.get(channel)
    return (getattr(alert, own, "") if own else "") or alert.message


def channel_text(alert: object, *, contact: object, channel: str) -> str:
    """What ``contact`` reads on ``channel`` (without the acknowledgement link the delivery adds)."""
    return render_message(channel_template(alert, channel), contact=contact, alert=alert).strip()


def email_subject(alert: object, *, contact: object) -> str:
    """The email's subject: the alert's subject template on one line, or else the alert's name."""
    template = getattr(alert, "email_subject", "")
    # A header is one line: Django refuses a subject with a newline (BadHeaderError).
    subject = " ".join(render_message(template, contact=contact, alert=alert).split()) if template else ""
    return subject or alert.name


# GSM 03.38: the characters an SMS carries in 7 bits, and those of its extension table, which take an escape
# septet besides their own and so count double. Anything else makes the whole message UCS-2.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
# (one SMS, each part of a longer one): a multipart SMS spends some of each part on the header joining them.
SEGMENT_SIZES = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True)
class SmsSize:
    characters: int
    units: int  # septets in GSM-7, UTF-16 code units in UCS-2: what the segment sizes count
    encoding: str
    segments: int
    forcing_ucs2: tuple[str, ...]  # the characters outside GSM-7, each once, in order of appearance

    @property
    def per_segment(self) -> int:
        single, multi = SEGMENT_SIZES[self.encoding]
        return single if self.segments <= 1 else multi


def _units(char: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # outside the BMP: a surrogate pair


def _segments(text: str, encoding: str, total: int) -> int:
    single, multi = SEGMENT_SIZES[encoding]
    if total <= single:
        return 1 if text else 0
    # Parts are filled whole character by whole character: an escape pair or a surrogate pair is never split
    # between two parts, so a part may carry one unit less than its size.
    segments, used = 1, 0
    for char in text:
        size = _units(char, encoding)
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return segments


def sms_size(text: str) -> SmsSize:
    """How ``text`` travels as SMS: its encoding, its length in what the segments count, and its segments."""
    outside = tuple(dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION))
    encoding = "UCS-2" if outside else "GSM-7"
    units = sum(_units(c, encoding) for c in text)
    return SmsSize(len(text), units, encoding, _segments(text, encoding, units), outside)


def ucs2_warning(size: SmsSize) -> str:
    """Why the message is UCS-2 and what it costs, naming the characters; empty when it is GSM-7."""
    if not size.forcing_ucs2:
        return ""
    named = ", ".join(f"“{c}” ({unicodedata.name(c, f'U+{ord(c):04X}').lower()})" for c in size.forcing_ucs2[:5])
    more = f" and {len(size.forcing_ucs2) - 5} more" if len(size.forcing_ucs2) > 5 else ""
    return (
        f"{named}{more} cannot be sent in GSM-7, so the whole SMS is UCS-2: 70 characters per SMS instead of 160 "
        f"(67 instead of 153 per part). Replace {'it' if len(size.forcing_ucs2) == 1 else 'them'} "
        "(e.g. a straight quote ' for a curly one) to fit more in each SMS."
    )
