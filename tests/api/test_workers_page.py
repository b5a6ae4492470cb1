"""/jobs/workers: who may see it, the workers Celery's inspect finds (a real worker), queues and the chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission

from api import workers
from scheduler.models import State
from tests.conftest import wait_until
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 3, 1, 12, 0, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_snapshot():
    workers.forget()
    yield
    wait_until(lambda: not workers._refreshing, what="the background inspect to finish")
    workers.forget()


@pytest.fixture
def ops_client(client, django_user_model, settings):
    settings.SESSION_COOKIE_AGE = 10 * 365 * 24 * 3600  # the session outlives the tests' travel to 2030
    user = django_user_model.objects.create_user("ops", password="pw-for-tests-only", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(user)
    return client


def test_anonymous_visitors_go_to_the_login_and_others_without_the_permission_get_403(client, django_user_model):
    assert client.get("/jobs/workers/")["Location"].startswith("/admin/login/")
    client.force_login(django_user_model.objects.create_user("staff", is_staff=True))
    assert client.get("/jobs/workers/").status_code == 403


def test_a_first_view_answers_at_once_and_asks_the_workers_in_the_background(ops_client):
    page = ops_client.get("/jobs/workers/").content.decode()
    assert "Asking the workers" in page
    wait_until(workers.cached_snapshot, what="the background snapshot")


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_a_real_worker_is_shown_with_its_queues_pool_and_concurrency(ops_client, worker, broker):
    def answered():
        # A worker busy starting up may answer one of the two broadcasts late; the page shows what it has.
        snapshot = workers.take_snapshot()
        found = [w for w in snapshot.workers if w.name == worker.hostname and w.pool]
        return (snapshot, found[0]) if found else None

    snapshot, info = wait_until(answered, what="the worker's answer to inspect")
    assert info.queues == sorted(["default", "sms", "email", "webhook", "maintenance"])
    assert info.pool == "TaskPool"
    assert info.concurrency == 2
    assert snapshot.queue_depths == {"default": 0, "email": 0, "maintenance": 0, "sms": 0, "webhook": 0}
    page = ops_client.get("/jobs/workers/").content.decode()
    assert worker.hostname in page
    assert 'class="queue-depth">0<' in page


@time_machine.travel(NOW, tick=False)
def test_the_chart_stacks_failures_on_successes_per_minute_over_the_last_hour(ops_client):
    minute = NOW.replace(second=0) - timedelta(minutes=3)
    JobFactory.create_batch(3, state=State.SUCCEEDED, modified_at=minute + timedelta(seconds=5))
    JobFactory(state=State.FAILED, modified_at=minute + timedelta(seconds=50))
    JobFactory(state=State.SUCCEEDED, modified_at=NOW - timedelta(minutes=61))  # outside the hour
    bars = workers.jobs_per_minute(now=NOW)
    assert len(bars) == 60
    assert [(b.succeeded, b.failed) for b in bars if b.succeeded or b.failed] == [(3, 1)]
    assert bars[-1].minute == NOW.replace(second=0)
    page = ops_client.get("/jobs/workers/").content.decode()
    assert "11:57 UTC: 3 succeeded, 1 failed" in page
    assert page.count('<rect class="succeeded"') == 1
    assert page.count('<rect class="failed"') == 1
    assert "3 succeeded, 1 failed in the last hour" in page


@time_machine.travel(NOW, tick=False)
def test_workers_seen_in_recent_jobs_but_not_answering_are_listed_apart(ops_client):
    JobFactory(state=State.RUNNING, worker="celery@gone", modified_at=NOW - timedelta(minutes=5))
    activity = workers.worker_activity(now=NOW)
    assert activity["celery@gone"].running_jobs == 1
    workers.take_snapshot()
    page = ops_client.get("/jobs/workers/").content.decode()
    assert "not answering now" in page and "celery@gone" in page
