from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scheduler.models import ACTIVE_STATES, Job
from scheduler.services import jobs_cancel_all


class Command(BaseCommand):
    help = "Cancel every waiting and running job."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument(
            "--terminate",
            action="store_true",
            help="Emergency only: also send SIGTERM to the processes running jobs.",
        )

    def handle(self, *args, yes: bool, terminate: bool, **options) -> None:
        active = Job.objects.filter(state__in=ACTIVE_STATES).count()
        if not active:
            self.stdout.write("No waiting or running jobs.")
            return
        if not yes:
            answer = input(f"Cancel {active} waiting or running job(s)? Type 'yes' to confirm: ")
            if answer.strip().lower() != "yes":
                raise CommandError("Nothing cancelled.")
        cancelled = jobs_cancel_all(terminate=terminate, reason="cancelled by cancel_all_jobs")
        self.stdout.write(self.style.SUCCESS(f"Cancelled {cancelled} job(s)."))
