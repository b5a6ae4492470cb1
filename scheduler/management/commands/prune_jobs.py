from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scheduler.retention import Policy, prune


def day_count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a whole number of days") from None
    if number < 0:
        raise CommandError(f"{number} days: a number of days cannot be negative")
    return number


class Command(BaseCommand):
    help = (
        "Delete finished jobs, their events and the apps' records of them older than JOB_RETENTION_DAYS "
        "(failed jobs and those needing attention: JOB_FAILED_RETENTION_DAYS), in batches. Waiting and running "
        "jobs are never deleted."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
        parser.add_argument("--days", type=day_count, help="keep finished jobs this many days (default: the setting)")
        parser.add_argument(
            "--failed-days",
            type=day_count,
            help="keep failed jobs and those needing attention this many days (default: the setting)",
        )

    def handle(self, *args, dry_run: bool, days: int | None, failed_days: int | None, **options) -> None:
        policy = Policy.from_settings(days=days, failed_days=failed_days)
        report = prune(policy=policy, dry_run=dry_run)
        self.stdout.write(
            f"{report} (finished jobs older than {policy.retention.days} days, "
            f"failed ones and those needing attention older than {policy.failed_retention.days} days)"
        )
