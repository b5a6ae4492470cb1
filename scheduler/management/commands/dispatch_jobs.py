from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from scheduler.publishing import dispatch_due


class Command(BaseCommand):
    help = "Publish jobs that have come within the ETA horizon, once or in a loop (instead of beat)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--loop", action="store_true", help="Keep dispatching every interval.")

    def handle(self, *args, loop: bool, **options) -> None:
        interval = settings.JOB_DISPATCH_INTERVAL.total_seconds()
        while True:
            self.stdout.write(f"dispatched {dispatch_due()}")
            if not loop:
                return
            time.sleep(interval)
