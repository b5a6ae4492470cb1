"""The header's three counters: active jobs, and successes and failures not yet seen; capped, one query."""

from __future__ import annotations

import pytest

from scheduler.models import Job, State
from scheduler.selectors import COUNTER_CAP, JobCounters, job_counters
from tests.factories import JobFactory
from tests.pages.conftest import page_text

pytestmark = pytest.mark.django_db


def counters_html(html: str) -> str:
    return html.split('id="job-counters"', 1)[1].split("</nav>", 1)[0]


def test_waiting_and_running_jobs_count_as_active_and_only_unseen_results_count(make_job):
    for state in (State.SCHEDULED, State.QUEUED, State.RETRYING, State.RUNNING, State.RUNNING):
        make_job(state)
    make_job(State.SUCCEEDED)
    make_job(State.SUCCEEDED, seen=True)
    make_job(State.FAILED)
    make_job(State.FAILED)
    make_job(State.FAILED, seen=True)
    make_job(State.CANCELLED)
    make_job(State.ABORTED)
    assert job_counters() == JobCounters(active=5, succeeded=1, failed=2)


def test_counters_stop_counting_past_the_cap():
    JobFactory.create_batch(COUNTER_CAP + 5, state=State.FAILED)
    counters = job_counters()
    assert counters.failed == COUNTER_CAP + 1
    assert counters.failed_shown == "999+"
    assert job_counters(cap=3).failed_shown == "3+" and job_counters(cap=3).active_shown == "0"


def test_the_counters_are_one_query(django_assert_num_queries, make_job):
    make_job(State.RUNNING)
    with django_assert_num_queries(1):
        job_counters()


def test_the_counters_are_in_the_header_and_link_to_the_filtered_list(staff_client, make_job):
    make_job(State.RUNNING)
    make_job(State.FAILED)
    header = counters_html(page_text(staff_client.get("/jobs/")))
    assert '<a class="counter counter-active"\n     href="/jobs/?state=active"' in header
    assert "<strong>1</strong> active" in header
    assert 'href="/jobs/?state=succeeded&amp;unseen=on"' in header and "<strong>0</strong> succeeded" in header
    assert 'href="/jobs/?state=failed&amp;unseen=on"' in header and "<strong>1</strong> failed" in header


def test_the_counters_links_list_what_they_count(staff_client, make_job):
    failed = make_job(State.FAILED)
    make_job(State.FAILED, seen=True)
    response = staff_client.get("/jobs/?state=failed&unseen=on")
    assert [job.pk for job in response.context["page"].jobs] == [failed.pk]


def test_the_admin_shows_the_counters_and_a_link_to_the_jobs(staff_client, make_job, staff):
    staff.is_superuser = True
    staff.save()
    make_job(State.FAILED)
    html = page_text(staff_client.get("/admin/"))
    assert '<a class="jobs-link" href="/jobs/">Jobs</a>' in html
    assert "<strong>1</strong> failed" in counters_html(html)


def test_nobody_logged_out_sees_the_counters_and_they_cost_no_query(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        html = page_text(client.get("/admin/login/"))
    assert "job-counters" not in html


def test_viewing_a_failed_job_takes_it_out_of_the_counter(staff_client, make_job):
    job = make_job(State.FAILED)
    assert job_counters().failed == 1
    staff_client.get(f"/jobs/{job.pk}/")
    assert job_counters().failed == 0
    assert Job.objects.get(pk=job.pk).seen


def test_jobs_that_need_attention_are_counted_until_settled_and_listed(staff_client, make_job):
    unsure = make_job(State.ATTENTION, seen=True)
    make_job(State.SUCCEEDED, seen=True)
    assert job_counters().attention == 1
    header = counters_html(page_text(staff_client.get("/jobs/")))
    assert 'href="/jobs/?state=attention"' in header and "<strong>1</strong> need attention" in header
    response = staff_client.get("/jobs/?state=attention")
    assert [job.pk for job in response.context["page"].jobs] == [unsure.pk]
