"""The project's own rows: failed admin logins, which throttle the next attempts."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class LoginFailure(models.Model):
    """One failed login; kept in the database so that every web process counts the same failures."""

    username = models.CharField(max_length=150, blank=True)
    address = models.CharField(max_length=45, blank=True, help_text="The client's IP address (REMOTE_ADDR).")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["username", "at"], name="login_failure_username"),
            models.Index(fields=["address", "at"], name="login_failure_address"),
            models.Index(fields=["at"], name="login_failure_at"),
        ]

    def __str__(self) -> str:
        return f"{self.username!r} from {self.address} at {self.at:%Y-%m-%d %H:%M:%S} UTC"
