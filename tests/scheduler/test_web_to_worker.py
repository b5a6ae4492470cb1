"""End to end: a web request enqueues work that a real worker, on each broker, executes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from scheduler.models import Job, State
from tests.testapp.tasks import echo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def test_running_a_job_from_the_admin_has_a_worker_execute_it(client):
    admin = get_user_model().objects.create_superuser("ops", password="pw-for-tests-only")
    client.force_login(admin)
    job = echo.enqueue_with(args=["from the admin"], eta=timezone.now() + timedelta(days=7))

    response = client.post("/admin/scheduler/job/", {"action": "run_now", "_selected_action": [job.pk]}, follow=True)

    assert response.status_code == 200
    assert "1 job(s) will run now." in response.content.decode()
    job.wait(timeout=20)
    assert job.state == State.SUCCEEDED
    assert job.result["echo"] == "from the admin"
    assert Job.objects.get(pk=job.pk).worker
