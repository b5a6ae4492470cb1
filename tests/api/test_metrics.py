"""/metrics: who may scrape it, what it says, and that a scrape costs the same whatever the table holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import Delivery, Occurrence
from api.metrics import broker, reads
from scheduler.models import State
from tests.alerts.factories import AlertFactory
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
TOKEN = "metrics-token-for-tests"


@pytest.fixture(autouse=True)
def metrics_settings(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_ADDRESSES = []
    broker.forget()
    yield settings
    broker.forget()


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_without_the_token_or_an_allowed_address_nothing_is_shown(client, metrics_settings):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 401
    metrics_settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_an_allowed_address_scrapes_without_a_token(client, metrics_settings):
    metrics_settings.METRICS_ALLOWED_ADDRESSES = ["10.0.0.0/8", "127.0.0.1"]
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.9").status_code == 401


@time_machine.travel(NOW, tick=False)
def test_the_metrics_count_jobs_deliveries_lateness_waiting_and_workers(client):
    JobFactory.create_batch(2, state=State.SCHEDULED, eta=NOW + timedelta(hours=1))
    JobFactory(state=State.QUEUED, eta=NOW - timedelta(seconds=40), queue="sms", task_name="alerts.deliver_sms")
    JobFactory(state=State.RETRYING, eta=NOW + timedelta(hours=1))
    JobFactory(state=State.FAILED, modified_at=NOW - timedelta(minutes=2), worker="celery@w1")
    JobFactory(state=State.FAILED, modified_at=NOW - timedelta(hours=1))  # outside the window
    alert = AlertFactory()
    due = NOW - timedelta(minutes=2)
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=due)
    sent = JobFactory(
        state=State.SUCCEEDED, modified_at=due + timedelta(seconds=3), finished_at=due + timedelta(seconds=3),
        worker="celery@w2", task_name="alerts.deliver_sms",
    )  # fmt: skip
    Delivery.objects.create(
        occurrence=occurrence, contact=alert.recipients.get(), channel="sms", state="sent", job=sent
    )
    refused = JobFactory(state=State.FAILED, modified_at=due, task_name="alerts.deliver_sms")
    other = Occurrence.objects.create(alert=alert, scheduled_for=due - timedelta(minutes=1))
    Delivery.objects.create(
        occurrence=other,
        contact=alert.recipients.get(),
        channel="sms",
        state="failed",
        job=refused,
        error="Twilio error 21211 (HTTP 400): invalid",
        error_code="21211",
    )

    metrics = scrape(client)

    assert metrics[("alerting_jobs", (("state", "scheduled"),))] == 2
    assert metrics[("alerting_jobs", (("state", "running"),))] == 0
    assert metrics[("alerting_jobs_by_task", (("state", "scheduled"), ("task", "tests.echo")))] == 2
    assert metrics[("alerting_jobs_by_task", (("state", "queued"), ("task", "alerts.deliver_sms")))] == 1
    assert metrics[("alerting_jobs_capped", ())] == metrics[("alerting_jobs_breakdown_capped", ())] == 0
    assert metrics[("alerting_queue_jobs", (("queue", "sms"), ("state", "queued")))] == 1
    assert metrics[("alerting_retries_scheduled", ())] == 1
    assert metrics[("alerting_jobs_finished_recent", (("state", "failed"), ("task", "tests.echo")))] == 1
    assert metrics[("alerting_provider_errors_recent", (("channel", "sms"), ("code", "21211")))] == 1
    assert metrics[("alerting_jobs_finished_recent", (("state", "succeeded"), ("task", "alerts.deliver_sms")))] == 1
    assert metrics[("alerting_deliveries_recent", (("channel", "sms"), ("state", "sent")))] == 1
    assert metrics[("alerting_delivery_lateness_seconds_bucket", (("le", "2.0"),))] == 0
    assert metrics[("alerting_delivery_lateness_seconds_bucket", (("le", "5.0"),))] == 1
    assert metrics[("alerting_delivery_lateness_seconds_gsum", ())] == 3
    assert metrics[("alerting_oldest_waiting_job_age_seconds", ())] == 40
    assert metrics[("alerting_workers_seen", ())] == 0  # w1 and w2 were a minute and more ago
    assert ("alerting_broker_up", ()) in metrics


def test_counts_beyond_their_caps_say_so():
    JobFactory.create_batch(3, state=State.SCHEDULED)
    JobFactory(state=State.QUEUED, task_name="alerts.deliver_sms")
    totals = reads.active_jobs_by_state(cap=2)
    assert totals.counts[(State.SCHEDULED,)] == 3  # counted up to cap + 1
    assert totals.capped
    assert not reads.active_jobs_by_state(cap=3).capped
    breakdown = reads.active_jobs_by_state_task_queue(cap=3)
    assert breakdown.capped and sum(breakdown.counts.values()) == 4
    assert not reads.active_jobs_by_state_task_queue(cap=4).capped


@time_machine.travel(NOW, tick=False)
def test_workers_that_touched_a_job_in_the_last_minute_are_seen(client):
    JobFactory(state=State.RUNNING, modified_at=NOW - timedelta(seconds=20), worker="celery@w1")
    JobFactory(state=State.SUCCEEDED, modified_at=NOW - timedelta(seconds=50), worker="celery@w2")
    JobFactory(state=State.SUCCEEDED, modified_at=NOW - timedelta(seconds=10), worker="celery@w2")
    assert scrape(client)[("alerting_workers_seen", ())] == 2


@time_machine.travel(NOW, tick=False)
def test_a_scrape_costs_the_same_queries_with_more_jobs(client):
    JobFactory(state=State.SCHEDULED)
    scrape(client)
    with CaptureQueriesContext(connection) as few:
        scrape(client)
    for state in (State.SCHEDULED, State.QUEUED, State.SUCCEEDED, State.FAILED):
        JobFactory.create_batch(20, state=state, modified_at=NOW - timedelta(seconds=30), worker="celery@w")
    with CaptureQueriesContext(connection) as many:
        scrape(client)
    assert len(many) == len(few)
