from __future__ import annotations

from django.core.management.base import BaseCommand

from scheduler.recovery import jobs_sweep


class Command(BaseCommand):
    help = "Run the recovery sweep once: republish lost messages, recover jobs whose worker died."

    def handle(self, *args, **options) -> None:
        report = jobs_sweep()
        self.stdout.write(str(report))
