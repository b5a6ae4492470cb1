"""System checks for settings that would make the service wrong, not merely slow."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility)
def check_time_zone(app_configs, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    if settings.TIME_ZONE != "UTC":
        errors.append(
            checks.Error(
                f"TIME_ZONE is {settings.TIME_ZONE!r}; it must be 'UTC'.",
                hint="Times are stored in UTC; each alert carries its own timezone for computing occurrences.",
                id="project.E001",
            )
        )
    if not settings.USE_TZ:
        errors.append(checks.Error("USE_TZ must be True: naive datetimes lose the timezone.", id="project.E002"))
    return errors


@checks.register()
def check_queues(app_configs, **kwargs) -> list[checks.CheckMessage]:
    missing = {"default", "maintenance"} - set(settings.JOB_QUEUES)
    if missing:
        return [
            checks.Error(
                f"JOB_QUEUES lacks {', '.join(sorted(missing))}.",
                hint="'default' takes tasks that name no queue; 'maintenance' runs the dispatcher and the sweep.",
                id="project.E003",
            )
        ]
    return []


@checks.register()
def check_twilio(app_configs, **kwargs) -> list[checks.CheckMessage]:
    names = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
    missing = [name for name in names if not getattr(settings, name)]
    if missing and len(missing) < len(names):
        return [
            checks.Warning(
                f"Twilio is partly configured: {', '.join(missing)} missing.",
                hint="Set all three to send SMS through Twilio, or none to use the local SMS sink.",
                id="project.W001",
            )
        ]
    return []
