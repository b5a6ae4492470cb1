"""``Idempotency-Key`` on POST /alerts/ and send-now: a retry gets the first answer and creates nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection

from alerts.models import Alert, Occurrence
from tests.alerts.factories import AlertFactory
from tests.api.conftest import client_for
from tests.api.test_alerts import alert_body

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_a_retried_create_returns_the_first_alert_and_creates_no_other(api):
    body = alert_body()
    first = api.post("/api/v1/alerts/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/v1/alerts/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Alert.objects.count() == 1


@time_machine.travel(NOW, tick=False)
def test_another_key_creates_another_alert_and_no_key_always_creates(api):
    body = alert_body()
    api.post("/api/v1/alerts/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    api.post("/api/v1/alerts/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    api.post("/api/v1/alerts/", body, format="json")
    api.post("/api/v1/alerts/", body, format="json")
    assert Alert.objects.count() == 4


@time_machine.travel(NOW, tick=False)
def test_the_same_key_with_another_body_is_refused(api):
    api.post("/api/v1/alerts/", alert_body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    response = api.post("/api/v1/alerts/", alert_body(name="Other"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 422
    assert Alert.objects.count() == 1


@time_machine.travel(NOW, tick=False)
def test_a_refused_request_does_not_use_up_its_key(api):
    bad = api.post("/api/v1/alerts/", alert_body(send_at="2020-01-01T00:00"), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert bad.status_code == 400
    good = api.post("/api/v1/alerts/", alert_body(), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert good.status_code == 201
    assert Alert.objects.count() == 1


@time_machine.travel(NOW, tick=False)
def test_keys_belong_to_their_user(api, django_user_model, operator):
    other = django_user_model.objects.create_superuser("other", password="pw-for-tests-only")
    body = alert_body()
    api.post("/api/v1/alerts/", body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    client_for(other).post("/api/v1/alerts/", body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert Alert.objects.count() == 2


@time_machine.travel(NOW, tick=False)
def test_a_retried_send_now_sends_one_occurrence(api):
    alert = AlertFactory(send_at=datetime(2030, 4, 1, tzinfo=UTC))
    first = api.post(f"/api/v1/alerts/{alert.pk}/send-now/", HTTP_IDEMPOTENCY_KEY="page-42")
    with time_machine.travel(NOW.replace(minute=5), tick=False):
        again = api.post(f"/api/v1/alerts/{alert.pk}/send-now/", HTTP_IDEMPOTENCY_KEY="page-42")
        third = api.post(f"/api/v1/alerts/{alert.pk}/send-now/", HTTP_IDEMPOTENCY_KEY="page-43")
    assert first.status_code == again.status_code == third.status_code == 201
    assert again.json() == first.json()
    assert Occurrence.objects.filter(alert=alert, scheduled_for__lt=datetime(2030, 4, 1, tzinfo=UTC)).count() == 2


def test_an_unusable_key_is_refused(api):
    response = api.post("/api/v1/alerts/", alert_body(), format="json", HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert not Alert.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_create_one_alert(operator):
    """The second insert of the key waits for the first request's transaction, then replays its answer."""
    body = alert_body(send_at="2099-03-02T09:00")
    start = threading.Barrier(2)
    answers = []

    def post() -> None:
        try:
            client = client_for(operator)
            start.wait()
            answers.append(client.post("/api/v1/alerts/", body, format="json", HTTP_IDEMPOTENCY_KEY="race"))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(a.status_code for a in answers) == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert Alert.objects.count() == 1
