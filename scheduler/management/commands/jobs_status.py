from __future__ import annotations

from django.core.management.base import BaseCommand

from scheduler.selectors import job_counts_by_state


class Command(BaseCommand):
    help = "Print how many jobs are in each state."

    def handle(self, *args, **options) -> None:
        counts = job_counts_by_state()
        width = max(len(state) for state in counts)
        for state, count in counts.items():
            self.stdout.write(f"{state:<{width}}  {count}")
        self.stdout.write(f"{'total':<{width}}  {sum(counts.values())}")
