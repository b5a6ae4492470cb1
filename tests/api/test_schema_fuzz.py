"""Schemathesis against the live schema, with a token: no server error, no answer outside the schema.

Every operation gets ``MAX_EXAMPLES`` generated requests (valid and invalid ones), sent through the WSGI
application into the test database, where a few contacts, alerts and jobs exist so that some ids hit.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from api.tokens import api_token_create
from scheduler.models import State
from tests.alerts.factories import AlertFactory, ContactFactory
from tests.factories import JobFactory

MAX_EXAMPLES = 25


@pytest.fixture
def keep_the_test_connection():
    """Django closes its connection at the end of a request, which would end the test's transaction; its
    test client turns that off around each request, as here around the whole test."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, operator, keep_the_test_connection):
    ContactFactory.create_batch(2)
    AlertFactory.create_batch(2)
    AlertFactory(schedule_kind="crontab", crontab="*/5 * * * *", send_at=None)
    JobFactory(state=State.FAILED)
    JobFactory(state=State.SUCCEEDED)
    JobFactory()
    return schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())


@pytest.fixture
def token_header(operator) -> dict[str, str]:
    _, token = api_token_create(user=operator, name="schemathesis")
    return {"Authorization": f"Bearer {token}"}


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _fuzz(operation, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def each(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    each()


# One test over every operation, not schemathesis' pytest plugin: its `from_fixture` does not run under
# pytest 9 (it reads a private attribute pytest no longer has).
def test_the_api_answers_every_generated_request_within_its_schema(api_schema, token_header):
    headers = token_header
    operations = [result.ok() for result in api_schema.get_all_operations()]
    failures = []
    for operation in operations:
        try:
            _fuzz(operation, headers)
        except (Exception, BaseExceptionGroup) as exc:  # every operation is tried, all failures reported
            failures.append(f"{operation.label}: {exc}")
    assert len(operations) >= 25
    assert not failures, "\n\n".join(failures)
