"""Make sure an admin account exists, without ever using a well-known password."""

from __future__ import annotations

import os
import secrets
import shlex

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the superuser ADMIN_USERNAME (default 'admin') if no superuser exists yet."

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin account exists already; leaving it as it is.")
            return
        username = os.environ.get("ADMIN_USERNAME", "admin")
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if os.environ.get("ADMIN_PASSWORD"):
            self.stdout.write(f"Created admin account {username!r} with the password from ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin account {username!r} with password {password}\n"
                    "It is shown only this once: write it down, or change it with:\n"
                    f"    {_change_command(username)}"
                )
            )


def _change_command(username: str) -> str:
    """A command that works as typed where this one ran.

    Locally (``make run``, DEBUG on) a bare ``manage.py`` lacks the environment ``make`` gives it (DEBUG, so
    no SECRET_KEY is needed); ``make manage`` supplies the same. Deployed, the settings live in the
    service's environment, so the command must run inside it.
    """
    quoted = shlex.quote(username)
    if settings.DEBUG:
        return f'make manage ARGS="changepassword {quoted}"'
    return (
        f"python manage.py changepassword {quoted}   (in the service's environment, e.g. "
        f"docker-compose run --rm web python manage.py changepassword {quoted})"
    )
