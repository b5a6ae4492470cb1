"""Showing jobs: times (converted to the viewer's timezone in the browser, labelled with it; UTC, labelled,
without JavaScript), durations, states, and the masking of secrets in whatever a job carries (arguments,
results, errors, messages).

Other apps' job panels can use them too: ``{% load scheduler_tags %}``, then ``{{ text|redact }}``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django import template
from django.conf import settings
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from scheduler.models import Job

register = template.Library()

MASK = "********"
# Settings whose values must never appear on a page, wherever a job's data happens to carry them.
SECRET_SETTINGS = ("SECRET_KEY", "TWILIO_AUTH_TOKEN", "EMAIL_HOST_PASSWORD")
# Shorter values would mask ordinary words and numbers everywhere, and guard little.
MIN_SECRET_LENGTH = 6
# Values under keys with such names are masked whatever they are (as Django's error reports do).
# Shown where a time or duration is missing.
NOTHING = mark_safe('<span class="muted">—</span>')
SECRET_KEYS = re.compile(r"pass|secret|token|api_?key|auth|signature|credential|private", re.IGNORECASE)


def _secret_values() -> list[str]:
    """The configured secrets, read at each call so that changed settings count; longest first, so that a
    secret containing another is masked whole."""
    values = [getattr(settings, name, "") for name in SECRET_SETTINGS]
    values += [database.get("PASSWORD", "") for database in settings.DATABASES.values()]
    broker_url = getattr(settings, "CELERY_BROKER_URL", "") or ""
    values.append(urlsplit(broker_url).password or "")
    found: set[str] = set()
    for value in values:
        if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
            # As written, and as it appears inside a repr() or JSON string (in tracebacks, in messages).
            found |= {value, repr(value)[1:-1], json.dumps(value)[1:-1]}
    return sorted(found, key=len, reverse=True)


def redact_text(text: Any) -> str:
    text = "" if text is None else str(text)
    for secret in _secret_values():
        text = text.replace(secret, MASK)
    return text


def redact_value(value: Any) -> Any:
    """A copy of a JSON value with secrets masked: in every string, and under keys named like secrets."""
    if isinstance(value, dict):
        return {
            key: MASK if SECRET_KEYS.search(str(key)) and value[key] not in (None, "") else redact_value(value[key])
            for key in value
        }
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


@register.filter
def redact(text: Any) -> str:
    return redact_text(text)


@register.filter
def as_json(value: Any) -> str:
    """Pretty JSON, secrets masked."""
    return json.dumps(redact_value(value), indent=2, ensure_ascii=False, sort_keys=False)


@register.filter
def timetag(value: datetime | str | None) -> str:
    """A ``<time>`` in UTC; the page's script shows it in the viewer's timezone, keeping UTC on hover."""
    if not value:
        return NOTHING
    if isinstance(value, str):  # e.g. an error's "at", stored as ISO text
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    utc = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}" title="{} UTC">{} UTC</time>',
        utc.isoformat(),
        f"{utc:%Y-%m-%d %H:%M:%S}",
        f"{utc:%Y-%m-%d %H:%M:%S}",
    )


# A UTC time written into a message by the engine, in either of the forms it uses: "2026-11-21 04:35:00 UTC"
# (its own messages) or ISO "2026-11-21T04:35:00.123+00:00" (Celery's ETA). Only times that say they are UTC.
_UTC_IN_TEXT = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)(?: UTC\b|[+-]00:?00\b|Z\b)"
)


@register.filter
def localtimes(text: Any) -> str:
    """Text with the UTC times it mentions turned into ``timetag``s, so that they show in the same zone,
    labelled, as every other time on the page. Escapes the rest; apply after ``redact``."""
    text = "" if text is None else str(text)
    parts: list[str] = []
    position = 0
    for match in _UTC_IN_TEXT.finditer(text):
        try:
            when = datetime.fromisoformat(f"{match['date']}T{match['time']}").replace(tzinfo=UTC)
        except ValueError:
            continue
        parts += [conditional_escape(text[position : match.start()]), timetag(when)]
        position = match.end()
    parts.append(conditional_escape(text[position:]))
    return mark_safe("".join(parts))


def format_duration(seconds: float) -> str:
    """Mirrored by ``formatDuration`` in jobs.js, which keeps running jobs' elapsed times ticking."""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


@register.filter
def duration(value: timedelta | None) -> str:
    if value is None:
        return NOTHING
    return format_duration(value.total_seconds())


@register.filter
def elapsed(job: Job) -> str:
    """The job's runtime; while it runs, the time so far, which the page's script keeps counting."""
    value = job.elapsed
    if value is None:
        return NOTHING
    if job.is_active:
        seconds = value.total_seconds()
        return format_html('<span data-elapsed="{}">{}</span>', f"{seconds:.1f}", format_duration(seconds))
    return format_duration(value.total_seconds())


@register.filter
def state_badge(state: str) -> str:
    return format_html('<span class="badge state-{}">{}</span>', state, state)


@register.filter
def row_class(job: Job) -> str:
    """Active jobs blue; successes and failures nobody has looked at yet green and red."""
    if job.is_active:
        return "row-active"
    if job.is_unseen_result:
        return f"row-unseen row-unseen-{job.state}"
    return ""
