"""The Prometheus metrics, computed per scrape from the reads in ``reads.py`` and ``broker.py``.

Windowed values (what finished in the last five minutes) are gauges, and the lateness a gauge histogram:
several web processes answer scrapes, so counters kept in one process's memory would not add up, and the
database already holds the truth.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.utils import timezone
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.metrics import broker, reads
from scheduler.models import State

LATENESS_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
WINDOW = f"{int(reads.WINDOW.total_seconds())}s"


def _buckets(values: list[float]) -> list[tuple[str, float]]:
    cumulative = [(str(bound), float(sum(1 for v in values if v <= bound))) for bound in LATENESS_BUCKETS]
    return [*cumulative, ("+Inf", float(len(values)))]


class AlertingCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()

        totals = reads.active_jobs_by_state()
        jobs = GaugeMetricFamily("alerting_jobs", "Waiting and running jobs.", labels=["state"])
        for (state,), n in sorted(totals.counts.items()):
            jobs.add_metric([state], n)
        yield jobs
        yield GaugeMetricFamily(
            "alerting_jobs_capped",
            f"1 when a state has more than {reads.STATE_CAP} jobs and alerting_jobs stopped counting.",
            value=int(totals.capped),
        )
        yield GaugeMetricFamily(
            "alerting_retries_scheduled", "Jobs waiting for their next attempt.", value=totals.counts[(State.RETRYING,)]
        )

        breakdown = reads.active_jobs_by_state_task_queue()
        by_task = GaugeMetricFamily(
            "alerting_jobs_by_task", "Waiting and running jobs by task.", labels=["state", "task"]
        )
        by_queue = GaugeMetricFamily(
            "alerting_queue_jobs", "Waiting and running jobs per job queue.", labels=["queue", "state"]
        )
        by_state_task: dict[tuple[str, str], int] = {}
        by_queue_state: dict[tuple[str, str], int] = {}
        for (state, task, queue), n in breakdown.counts.items():
            by_state_task[(state, task)] = by_state_task.get((state, task), 0) + n
            by_queue_state[(queue, state)] = by_queue_state.get((queue, state), 0) + n
        for labels, n in sorted(by_state_task.items()):
            by_task.add_metric(list(labels), n)
        for labels, n in sorted(by_queue_state.items()):
            by_queue.add_metric(list(labels), n)
        yield by_task
        yield by_queue
        yield GaugeMetricFamily(
            "alerting_jobs_breakdown_capped",
            f"1 when more than {reads.BREAKDOWN_CAP} jobs are active: alerting_jobs_by_task and "
            f"alerting_queue_jobs then cover the {reads.BREAKDOWN_CAP} most recently changed.",
            value=int(breakdown.capped),
        )

        finished = reads.finished_jobs_by_state_task(now=now)
        ended = GaugeMetricFamily(
            "alerting_jobs_finished_recent", f"Jobs that ended in the last {WINDOW}.", labels=["state", "task"]
        )
        for labels, n in sorted(finished.items()):
            ended.add_metric(list(labels), n)
        yield ended

        deliveries = GaugeMetricFamily(
            "alerting_deliveries_recent",
            f"Deliveries whose job changed in the last {WINDOW}.",
            labels=["state", "channel"],
        )
        for labels, n in sorted(reads.recent_deliveries_by_state_channel(now=now).items()):
            deliveries.add_metric(list(labels), n)
        yield deliveries

        errors = GaugeMetricFamily(
            "alerting_provider_errors_recent",
            f"Deliveries of the last {WINDOW} whose last attempt failed, by the provider's code "
            "(Twilio 21211, an SMTP reply code, read-timeout).",
            labels=["channel", "code"],
        )
        for labels, n in sorted(reads.recent_provider_errors(now=now).items()):
            errors.add_metric(list(labels), n)
        yield errors

        lateness = reads.recent_delivery_lateness(now=now)
        histogram = GaugeHistogramMetricFamily(
            "alerting_delivery_lateness_seconds",
            f"From an occurrence's due time to the provider's acceptance, for deliveries of the last {WINDOW}.",
        )
        histogram.add_metric([], _buckets(lateness), gsum_value=sum(lateness))
        yield histogram

        oldest = reads.oldest_waiting_eta(now=now)
        yield GaugeMetricFamily(
            "alerting_oldest_waiting_job_age_seconds",
            "How long the longest-waiting due job has been due without starting (0: none).",
            value=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "alerting_workers_seen",
            "Workers that ran a job in the last minute.",
            value=len(reads.workers_seen(now=now)),
        )

        depths = broker.queue_depths()
        yield GaugeMetricFamily(
            "alerting_broker_up", "1 when the broker answered the last query.", value=int(bool(depths is not None))
        )
        messages = GaugeMetricFamily(
            "alerting_broker_queue_messages", "Messages ready in each broker queue.", labels=["queue"]
        )
        for name, n in sorted((depths or {}).items()):
            messages.add_metric([name], n)
        yield messages
