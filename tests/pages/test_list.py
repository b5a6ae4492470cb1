"""/jobs: what each row shows, its colours, the filters (kept in the URL), and the live polling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType

from scheduler.models import Job, State
from tests.pages.conftest import T0, page_text

pytestmark = pytest.mark.django_db


def listed(response) -> list[int]:
    return [job.pk for job in response.context["page"].jobs]


def row_of(html: str, job: Job) -> str:
    start = html.index(f'data-job="{job.pk}"')
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


def test_a_row_shows_the_label_task_state_status_attempts_start_and_runtime(staff_client, make_job):
    job = make_job(
        State.FAILED,
        label="Water the plants · sms, email · 3 recipients",
        task_name="alerts.deliver",
        status_message="ProviderDown: 503 from Twilio",
        attempts=3,
        max_attempts=3,
        runtime=timedelta(seconds=75),
    )
    row = row_of(page_text(staff_client.get("/jobs/")), job)
    assert "Water the plants · sms, email · 3 recipients" in row
    assert "alerts.deliver" in row
    assert 'class="badge state-failed">failed<' in row
    assert "ProviderDown: 503 from Twilio" in row
    assert "3/3" in row
    assert f'datetime="{job.started_at.isoformat()}"' in row
    assert "1 min 15 s" in row
    assert f'href="/jobs/{job.pk}/"' in row


def test_a_job_without_a_label_is_shown_by_its_task_name(staff_client, make_job):
    job = make_job(State.SCHEDULED, label="", task_name="tests.echo")
    row = row_of(page_text(staff_client.get("/jobs/")), job)
    assert ">tests.echo</a>" in row
    assert "due" in row and f'datetime="{job.eta.isoformat()}"' in row


def test_the_newest_change_comes_first(staff_client, make_job):
    older, newer = make_job(), make_job()
    assert listed(staff_client.get("/jobs/")) == [newer.pk, older.pk]


def test_active_jobs_are_blue_and_unseen_results_green_or_red_until_seen(staff_client, make_job):
    jobs = {
        "waiting": make_job(State.QUEUED),
        "running": make_job(State.RUNNING),
        "new success": make_job(State.SUCCEEDED),
        "new failure": make_job(State.FAILED),
        "seen success": make_job(State.SUCCEEDED, seen=True),
        "seen failure": make_job(State.FAILED, seen=True),
        "cancelled": make_job(State.CANCELLED),
    }
    html = page_text(staff_client.get("/jobs/"))
    classes = {name: row_of(html, job).split('class="', 1)[1].split('"', 1)[0] for name, job in jobs.items()}
    assert classes == {
        "waiting": "row-active",
        "running": "row-active",
        "new success": "row-unseen row-unseen-succeeded",
        "new failure": "row-unseen row-unseen-failed",
        "seen success": "",
        "seen failure": "",
        "cancelled": "",
    }


def test_viewing_the_list_marks_nothing_seen(staff_client, make_job):
    job = make_job(State.FAILED)
    staff_client.get("/jobs/")
    staff_client.get("/jobs/rows/")
    assert Job.objects.get(pk=job.pk).seen is False


@pytest.mark.parametrize(
    "query, expected",
    [
        ("state=running", {"running"}),
        ("state=active", {"scheduled", "queued", "retrying", "running"}),
        ("state=waiting", {"scheduled", "queued", "retrying"}),
        ("state=final", {"succeeded", "failed", "cancelled", "aborted", "attention", "seen failure"}),
        ("state=failed", {"failed", "seen failure"}),
        ("state=failed&unseen=on", {"failed"}),
        ("unseen=on", {"succeeded", "failed"}),
    ],
)
def test_the_state_filter_takes_a_state_or_a_group(staff_client, make_job, query, expected):
    jobs = {state.value: make_job(state) for state in State}
    jobs["seen failure"] = make_job(State.FAILED, seen=True)
    names = {job.pk: name for name, job in jobs.items()}
    assert {names[pk] for pk in listed(staff_client.get(f"/jobs/?{query}"))} == expected


def test_the_task_filter_matches_the_task_name(staff_client, make_job):
    echo, flaky = make_job(task_name="tests.echo"), make_job(task_name="tests.flaky")
    assert listed(staff_client.get("/jobs/?task=tests.flaky")) == [flaky.pk]
    assert listed(staff_client.get("/jobs/?task=tests.echo")) == [echo.pk]
    assert listed(staff_client.get("/jobs/?task=tests")) == []


def test_the_task_filter_suggests_the_tracked_tasks(staff_client):
    html = page_text(staff_client.get("/jobs/"))
    assert '<option value="tests.echo">' in html and '<option value="tests.patient">' in html


def test_the_target_filter_shows_the_jobs_of_one_object(staff_client, make_job, staff):
    other = get_user_model().objects.create_user("other")
    user_type = ContentType.objects.get_for_model(staff)
    mine = make_job(target_type=user_type, target_id=str(staff.pk))
    make_job(target_type=user_type, target_id=str(other.pk))
    make_job()
    assert listed(staff_client.get(f"/jobs/?target=auth.user:{staff.pk}")) == [mine.pk]


@pytest.mark.parametrize("target", ["nonsense", "auth.user", "nosuch.model:1", "auth.nosuchmodel:1"])
def test_a_target_that_is_no_model_is_reported_and_ignored(staff_client, make_job, target):
    job = make_job()
    response = staff_client.get(f"/jobs/?target={target}")
    assert listed(response) == [job.pk]
    assert "Not a target of jobs" in page_text(response)


def test_the_search_finds_a_word_anywhere_in_the_label_whatever_its_case(staff_client, make_job):
    plants = make_job(label="Water the plants · sms · 1 recipient")
    make_job(label="Feed the cat · email · 2 recipients")
    make_job(label="")
    assert listed(staff_client.get("/jobs/?q=PLANTS")) == [plants.pk]
    assert listed(staff_client.get("/jobs/?q=water")) == [plants.pk]


def test_the_date_range_covers_whole_utc_days_of_the_last_change(staff_client, make_job):
    day = T0.date()
    before = make_job(modified_at=T0 - timedelta(days=1, seconds=1))
    first = make_job(modified_at=T0.replace(hour=0, minute=0, second=0))
    last = make_job(modified_at=T0.replace(hour=23, minute=59, second=59, microsecond=999999))
    make_job(modified_at=T0 + timedelta(days=1))
    assert listed(staff_client.get(f"/jobs/?changed_from={day}&changed_to={day}")) == [last.pk, first.pk]
    assert listed(staff_client.get(f"/jobs/?changed_to={day - timedelta(days=1)}")) == [before.pk]


def test_a_range_to_the_last_day_of_the_calendar_has_no_upper_bound(staff_client, make_job):
    job = make_job()
    response = staff_client.get("/jobs/?changed_to=9999-12-31")
    assert listed(response) == [job.pk]
    assert listed(staff_client.get(f"/jobs/?changed_from={T0.date()}&changed_to=9999-12-31")) == [job.pk]


def test_a_reversed_date_range_is_reported_and_ignored(staff_client, make_job):
    job = make_job()
    response = staff_client.get("/jobs/?changed_from=2030-06-02&changed_to=2030-06-01")
    assert "The end of the range comes before its start." in page_text(response)
    assert listed(response) == [job.pk]


def test_filters_combine_and_stay_in_the_form_and_the_page_links(staff_client, make_job):
    for _ in range(51):
        make_job(State.FAILED, task_name="tests.flaky", label="Water the plants")
    make_job(State.FAILED, task_name="tests.echo", label="Water the plants")
    response = staff_client.get("/jobs/?state=failed&task=tests.flaky&q=water")
    html = page_text(response)
    assert len(listed(response)) == 50
    assert 'value="tests.flaky"' in html and 'value="water"' in html
    assert '<option value="failed" selected>' in html
    next_link = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert "state=failed" in next_link and "task=tests.flaky" in next_link and "q=water" in next_link
    assert len(listed(staff_client.get(f"/jobs/{next_link.replace('&amp;', '&')}"))) == 1


def test_the_list_polls_itself_while_a_job_is_active(staff_client, make_job):
    make_job(State.SUCCEEDED)
    make_job(State.RUNNING)
    html = page_text(staff_client.get("/jobs/?state=succeeded&q=x"))
    assert 'hx-get="/jobs/rows/?state=succeeded&amp;q=x"' in html
    assert 'hx-trigger="every 2s"' in html


def test_the_list_stops_polling_when_nothing_is_active(staff_client, make_job):
    make_job(State.SUCCEEDED)
    html = page_text(staff_client.get("/jobs/"))
    assert "hx-trigger" not in html.split('id="job-table"')[1].split(">")[0]
    fragment = page_text(staff_client.get("/jobs/rows/"))
    assert "hx-trigger" not in fragment


def test_the_polled_fragment_is_the_table_and_the_counters_only(staff_client, make_job):
    job = make_job(State.RUNNING)
    fragment = page_text(staff_client.get("/jobs/rows/", headers={"HX-Request": "true"}))
    assert fragment.lstrip().startswith('<section id="job-table"')
    assert f'data-job="{job.pk}"' in fragment
    assert '<nav class="counters" id="job-counters" aria-label="Jobs" hx-swap-oob="true">' in fragment
    assert "<html" not in fragment and "<header" not in fragment


def test_an_empty_list_says_so(staff_client, make_job):
    assert "No jobs yet." in page_text(staff_client.get("/jobs/"))
    make_job()
    assert "No job matches these filters." in page_text(staff_client.get("/jobs/?state=failed"))
