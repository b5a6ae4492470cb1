"""Failed admin logins slow the next attempts down: per username and per client address.

A sliding window: once ``LOGIN_FAILURES_PER_USERNAME`` failures for one username, or
``LOGIN_FAILURES_PER_ADDRESS`` from one address, fall within ``LOGIN_THROTTLE_WINDOW``, further attempts
are refused without checking the password until enough of them have aged out. A refused attempt is not
counted, so the wait never grows while someone keeps trying.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone

from config.models import LoginFailure


def client_address(request: HttpRequest | None) -> str:
    # REMOTE_ADDR, not X-Forwarded-For: a header any client can write would let it pick its own address.
    return (request.META.get("REMOTE_ADDR", "") if request else "")[:45]


def _window() -> timedelta:
    return timedelta(seconds=settings.LOGIN_THROTTLE_WINDOW)


def _free_at(failures, limit: int, now: datetime) -> datetime | None:
    """When the ``limit``-th most recent failure of the window ages out, if that many are within it."""
    times = list(failures.filter(at__gt=now - _window()).order_by("-at").values_list("at", flat=True)[:limit])
    return times[-1] + _window() if len(times) >= limit else None


def login_throttle_wait(*, username: str, address: str, now: datetime | None = None) -> tuple[str, timedelta] | None:
    """What is throttled ("account" or "address") and for how long, or ``None`` if the attempt may go ahead."""
    now = now or timezone.now()
    for what, failures, limit in (
        ("account", LoginFailure.objects.filter(username=username), settings.LOGIN_FAILURES_PER_USERNAME),
        ("address", LoginFailure.objects.filter(address=address), settings.LOGIN_FAILURES_PER_ADDRESS),
    ):
        free_at = _free_at(failures, limit, now)
        if free_at is not None and free_at > now:
            return what, free_at - now
    return None


def login_failure_record(*, username: str, address: str) -> None:
    now = timezone.now()
    LoginFailure.objects.filter(at__lte=now - _window()).delete()  # nothing older counts any more
    LoginFailure.objects.create(username=username, address=address, at=now)


def login_failures_clear(*, username: str, address: str) -> None:
    """After a success: the user's own typos from this address no longer count (others' still do)."""
    LoginFailure.objects.filter(username=username, address=address).delete()


class ThrottledAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, refusing attempts while the username or the address is throttled."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": "Too many failed logins %(whom)s. Try again in %(minutes)s minute%(plural)s.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        throttled = login_throttle_wait(username=username, address=address)
        if throttled:
            what, wait = throttled
            minutes = max(1, math.ceil(wait.total_seconds() / 60))
            whom = "for this account" if what == "account" else "from your address"
            raise ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"whom": whom, "minutes": minutes, "plural": "" if minutes == 1 else "s"},
            )
        try:
            cleaned = super().clean()
        except ValidationError as exc:
            if any(error.code == "invalid_login" for error in exc.error_list):
                login_failure_record(username=username, address=address)
            raise
        login_failures_clear(username=username, address=address)
        return cleaned
