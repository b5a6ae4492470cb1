"""Jobs through the API: the list's filters and keyset paging, a job's timeline, and the actions."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduler.models import Job, State
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_the_list_pages_by_cursor_newest_first_without_losing_or_repeating_a_job(api):
    ids = [JobFactory().pk for _ in range(7)]
    seen, after = [], ""
    while True:
        page = api.get(f"/api/v1/jobs/?page_size=3&after={after}").json()
        seen += [job["id"] for job in page["results"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == sorted(ids, reverse=True)


def test_the_list_filters_like_the_job_pages(api):
    JobFactory(state=State.FAILED, task_name="tests.fail")
    JobFactory(state=State.SUCCEEDED)
    page = api.get("/api/v1/jobs/?state=failed").json()
    assert [job["task_name"] for job in page["results"]] == ["tests.fail"]
    assert api.get("/api/v1/jobs/?task=tests.fail&state=final").json()["results"][0]["state"] == "failed"


@pytest.mark.parametrize("query", ["state=nope", "target=nothing", "after=garbage", "changed_from=2030-13-01"])
def test_an_invalid_filter_is_a_field_keyed_400(api, query):
    response = api.get(f"/api/v1/jobs/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_a_range_to_the_last_day_of_the_calendar_has_no_upper_bound(api):
    job = JobFactory()
    response = api.get("/api/v1/jobs/?changed_to=9999-12-31")
    assert response.status_code == 200
    assert [found["id"] for found in response.json()["results"]] == [job.pk]


def test_a_list_page_costs_the_same_queries_at_any_size(api):
    JobFactory.create_batch(3)
    api.get("/api/v1/jobs/")  # the token's first use writes its last_used_at
    with CaptureQueriesContext(connection) as few:
        api.get("/api/v1/jobs/")
    JobFactory.create_batch(60)
    with CaptureQueriesContext(connection) as many:
        api.get("/api/v1/jobs/?page_size=60")
    assert len(many) == len(few)


def test_a_job_shows_its_timeline_and_errors(api):
    job = JobFactory(state=State.FAILED, errors=[{"type": "ProviderDown", "message": "503", "attempt": 1}])
    job.events.create(kind="failed", message="503")
    body = api.get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["errors"][0]["type"] == "ProviderDown"
    assert [event["kind"] for event in body["timeline"]] == ["failed"]
    Job.objects.filter(pk=job.pk, seen=False).get()  # reading through the API does not mark it seen


def test_cancel_then_delete_and_the_conflicts_in_between(api):
    job = JobFactory()
    assert api.delete(f"/api/v1/jobs/{job.pk}/").status_code == 409
    assert api.post(f"/api/v1/jobs/{job.pk}/cancel/").json()["changed"] is True
    assert api.post(f"/api/v1/jobs/{job.pk}/cancel/").json()["changed"] is False
    assert api.delete(f"/api/v1/jobs/{job.pk}/").status_code == 204
    assert api.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 404
    assert api.get(f"/api/v1/jobs/{job.pk}/").status_code == 404


@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/api/v1/jobs/abc/"),
        ("get", "/api/v1/jobs/1e3/"),
        ("delete", "/api/v1/jobs/abc/"),
        ("post", "/api/v1/jobs/abc/cancel/"),
        ("post", "/api/v1/jobs/abc/run-now/"),
    ],
)
def test_an_id_that_is_not_a_number_is_an_unknown_job(api, method, url):
    JobFactory()
    response = getattr(api, method)(url)
    assert response.status_code == 404
    assert "no job" in response.json()["detail"]


def test_cancel_all_needs_the_confirmation(api):
    JobFactory.create_batch(2)
    JobFactory(state=State.SUCCEEDED)
    refused = api.post("/api/v1/jobs/cancel-all/", {}, format="json")
    assert refused.status_code == 400 and "confirm" in refused.json()
    assert api.post("/api/v1/jobs/cancel-all/", {"confirm": False}, format="json").status_code == 400
    assert Job.objects.filter(state=State.CANCELLED).count() == 0
    assert api.post("/api/v1/jobs/cancel-all/", {"confirm": True}, format="json").json() == {"cancelled": 2}
