"""Every write of the API: anonymous gets 401, a view-only user 403 (and nothing changes), an operator succeeds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, Contact
from scheduler.models import Job, JobEvent, State
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.api.conftest import client_for
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def _contact_body() -> dict:
    return {"name": "Ada", "phone": "+44 20 7946 0958", "timezone": "Europe/London"}


def _alert_body() -> dict:
    send_at = (timezone.now() + timedelta(days=1)).replace(tzinfo=None).isoformat(timespec="minutes")
    return {
        "name": "Disk full",
        "message": "Hi {{ contact.name }}",
        "recipients": [ContactFactory().pk],
        "schedule_kind": "once",
        "send_at": send_at,
    }


def _alert() -> int:
    return AlertFactory().pk


def _paused_alert() -> int:
    return AlertFactory(state="paused").pk


def _job(state: str = State.SCHEDULED) -> int:
    return JobFactory(state=state).pk


def _snapshot() -> tuple:
    """Everything a write could change."""
    return (
        list(Contact.objects.order_by("pk").values()),
        list(Alert.objects.order_by("pk").values()),
        list(Job.objects.order_by("pk").values("pk", "state", "eta", "modified_at")),
        JobEvent.objects.count(),
    )


# (method, path built from a fresh object, body, the operator's expected status)
WRITES: list[tuple[str, Callable[[], str], Callable[[], dict] | None, int]] = [
    ("post", lambda: "/api/v1/contacts/", _contact_body, 201),
    ("put", lambda: f"/api/v1/contacts/{ContactFactory().pk}/", _contact_body, 200),
    ("patch", lambda: f"/api/v1/contacts/{ContactFactory().pk}/", lambda: {"name": "Grace"}, 200),
    ("delete", lambda: f"/api/v1/contacts/{ContactFactory().pk}/", None, 204),
    ("post", lambda: "/api/v1/alerts/", _alert_body, 201),
    ("put", lambda: f"/api/v1/alerts/{_alert()}/", _alert_body, 200),
    ("patch", lambda: f"/api/v1/alerts/{_alert()}/", lambda: {"name": "Renamed"}, 200),
    ("delete", lambda: f"/api/v1/alerts/{_alert()}/", None, 204),
    ("post", lambda: f"/api/v1/alerts/{_alert()}/send-now/", None, 201),
    ("post", lambda: f"/api/v1/alerts/{_alert()}/pause/", None, 200),
    ("post", lambda: f"/api/v1/alerts/{_paused_alert()}/resume/", None, 200),
    ("post", lambda: f"/api/v1/alerts/{_alert()}/cancel/", None, 200),
    ("post", lambda: f"/api/v1/alerts/{_alert()}/acknowledge/", None, 200),
    ("post", lambda: f"/api/v1/alerts/{_alert()}/duplicate/", None, 201),
    ("post", lambda: f"/api/v1/jobs/{_job()}/cancel/", None, 200),
    ("post", lambda: f"/api/v1/jobs/{_job()}/run-now/", None, 200),
    ("delete", lambda: f"/api/v1/jobs/{_job(State.SUCCEEDED)}/", None, 204),
    ("post", lambda: _job() and "/api/v1/jobs/cancel-all/", lambda: {"confirm": True}, 200),
]


def _send(client, method: str, path: str, body: dict | None):
    return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)


@pytest.fixture(params=WRITES, ids=[f"{w[0]}-{i}" for i, w in enumerate(WRITES)])
def write(request):
    method, path, body, expected = request.param
    return method, path(), body() if body else None, expected


def test_anonymous_writes_get_401_and_change_nothing(anonymous_api, write):
    method, path, body, _ = write
    before = _snapshot()
    response = _send(anonymous_api, method, path, body)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert _snapshot() == before


def test_view_only_writes_get_403_and_change_nothing(viewer_api, write):
    method, path, body, _ = write
    before = _snapshot()
    response = _send(viewer_api, method, path, body)
    assert response.status_code == 403
    assert _snapshot() == before


def test_operators_writes_succeed(api, write):
    method, path, body, expected = write
    before = _snapshot()
    response = _send(api, method, path, body)
    assert response.status_code == expected, response.content
    assert _snapshot() != before


@pytest.mark.parametrize(
    "path",
    ["/api/v1/contacts/", "/api/v1/alerts/", "/api/v1/occurrences/", "/api/v1/deliveries/", "/api/v1/jobs/"],
)
def test_view_only_users_read_and_anonymous_users_do_not(viewer_api, anonymous_api, path):
    assert viewer_api.get(path).status_code == 200
    assert anonymous_api.get(path).status_code == 401


def test_a_user_without_the_view_permission_cannot_read(django_user_model):
    nobody = django_user_model.objects.create_user("nobody", password="pw-for-tests-only")
    assert client_for(nobody).get("/api/v1/alerts/").status_code == 403
