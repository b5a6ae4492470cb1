"""The header's job counters, on every page of the service (ours and the admin's)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from scheduler import selectors


def job_counters(request: HttpRequest) -> dict[str, object]:
    """``job_counters``: computed on first use only (one query), so a page that does not show them (a
    non-staff user's, the login page) pays nothing."""
    return {"job_counters": SimpleLazyObject(selectors.job_counters)}
