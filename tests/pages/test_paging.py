"""Keyset paging: exact boundaries, ties on the time, both directions, and a constant number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler import selectors
from scheduler.models import Job, State
from scheduler.selectors import PAGE_SIZE, Cursor, JobFilters, jobs_page
from tests.factories import JobFactory
from tests.pages.conftest import T0, page_text

pytestmark = pytest.mark.django_db


def make_jobs(count: int, *, same_time: bool = False, **fields) -> list[Job]:
    """``count`` jobs, newest first as the list orders them; with ``same_time`` all changed at one instant."""
    jobs = JobFactory.create_batch(count, **fields)
    for index, job in enumerate(jobs):
        job.modified_at = T0 if same_time else T0 + timedelta(milliseconds=index)
    Job.objects.bulk_update(jobs, ["modified_at"])
    return sorted(jobs, key=lambda job: (job.modified_at, job.pk), reverse=True)


def ids(page) -> list[int]:
    return [job.pk for job in page.jobs]


@pytest.mark.parametrize("count", [0, 1, PAGE_SIZE - 1, PAGE_SIZE])
def test_a_list_that_fits_on_one_page_has_no_other_page(count):
    jobs = make_jobs(count)
    page = jobs_page(JobFilters())
    assert ids(page) == [job.pk for job in jobs]
    assert page.is_first and page.next_cursor is None and page.previous_cursor is None


def test_one_job_more_than_a_page_makes_a_second_page_of_one():
    jobs = make_jobs(PAGE_SIZE + 1)
    first = jobs_page(JobFilters())
    assert ids(first) == [job.pk for job in jobs[:PAGE_SIZE]]
    assert first.next_cursor == Cursor.of(jobs[PAGE_SIZE - 1])
    second = jobs_page(JobFilters(), after=first.next_cursor)
    assert ids(second) == [jobs[-1].pk]
    assert second.next_cursor is None and not second.is_first


@pytest.mark.parametrize("same_time", [False, True], ids=["distinct times", "one time for all"])
def test_walking_older_then_newer_visits_every_job_once_in_order(same_time):
    jobs = make_jobs(2 * PAGE_SIZE + 7, same_time=same_time)
    seen, pages, page = [], [], jobs_page(JobFilters())
    while True:
        pages.append(ids(page))
        seen += ids(page)
        if page.next_cursor is None:
            break
        page = jobs_page(JobFilters(), after=page.next_cursor)
    assert seen == [job.pk for job in jobs]
    assert [len(p) for p in pages] == [PAGE_SIZE, PAGE_SIZE, 7]

    back = jobs_page(JobFilters(), before=page.previous_cursor)
    assert ids(back) == pages[1] and not back.is_first
    top = jobs_page(JobFilters(), before=back.previous_cursor)
    assert ids(top) == pages[0] and top.is_first and top.previous_cursor is None


def test_going_back_past_the_top_shows_the_full_first_page():
    jobs = make_jobs(PAGE_SIZE + 10)
    # A cursor inside the first page, as after new jobs pushed the older ones down.
    page = jobs_page(JobFilters(), before=Cursor.of(jobs[5]))
    assert ids(page) == [job.pk for job in jobs[:PAGE_SIZE]]
    assert page.is_first


def test_paging_keeps_to_the_filters():
    failed = make_jobs(PAGE_SIZE + 2, state=State.FAILED)
    make_jobs(30, state=State.SUCCEEDED)
    first = jobs_page(JobFilters(state="failed"))
    second = jobs_page(JobFilters(state="failed"), after=first.next_cursor)
    assert ids(first) + ids(second) == [job.pk for job in failed]


def test_a_cursor_round_trips_to_the_microsecond():
    cursor = Cursor(T0 + timedelta(microseconds=123457), 42)
    assert str(cursor) == "1906545600123457.42"
    assert Cursor.parse(str(cursor)) == cursor


@pytest.mark.parametrize("text", ["", "abc", "12", "12.", ".3", "1.2.3", "9" * 40 + ".1", "1.-2"])
def test_a_malformed_cursor_is_refused(text):
    with pytest.raises(ValueError):
        Cursor.parse(text)


def test_a_malformed_page_link_shows_the_newest_jobs_with_a_note(staff_client):
    jobs = make_jobs(3)
    response = staff_client.get("/jobs/?after=not-a-cursor")
    assert "This page link is not valid; showing the newest jobs." in page_text(response)
    assert ids(response.context["page"]) == [job.pk for job in jobs]


def test_the_page_links_carry_the_cursors(staff_client):
    jobs = make_jobs(PAGE_SIZE + 1)
    html = page_text(staff_client.get("/jobs/?state=scheduled"))
    assert f'href="?state=scheduled&amp;after={Cursor.of(jobs[PAGE_SIZE - 1])}" rel="next"' in html
    second = page_text(staff_client.get(f"/jobs/?state=scheduled&after={Cursor.of(jobs[PAGE_SIZE - 1])}"))
    assert f'href="?state=scheduled&amp;before={Cursor.of(jobs[PAGE_SIZE])}" rel="prev"' in second
    assert 'href="?state=scheduled">« Newest</a>' in second


@pytest.mark.parametrize("url", ["/jobs/", "/jobs/rows/", "/jobs/?state=failed&unseen=on&q=x&task=tests.echo"])
def test_the_list_runs_the_same_number_of_queries_whatever_the_number_of_jobs(
    staff_client, django_assert_num_queries, url
):
    selectors.task_names()  # imports the task modules once per process, like the first request would
    # session, user, the page of jobs, the counters, and on the full list the user's permissions (own and
    # groups', for the action buttons): nothing per row, nothing that grows with the table
    queries = 4 if url == "/jobs/rows/" else 6
    with django_assert_num_queries(queries):
        page_text(staff_client.get(url))
    make_jobs(3 * PAGE_SIZE, state=State.FAILED, task_name="tests.echo", label="x")
    make_jobs(2 * PAGE_SIZE, state=State.RUNNING)
    with django_assert_num_queries(queries):
        page_text(staff_client.get(url))


def test_the_second_page_costs_what_the_first_does(staff_client, django_assert_num_queries):
    jobs = make_jobs(3 * PAGE_SIZE)
    with django_assert_num_queries(6):
        page_text(staff_client.get(f"/jobs/?after={Cursor.of(jobs[PAGE_SIZE - 1])}"))
