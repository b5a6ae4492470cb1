"""/jobs/<id>: everything about one run, its timeline and errors, live while active; viewing marks it seen."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType

from scheduler.models import EventKind, Job, JobEvent, State
from tests.pages.conftest import T0, TEMPLATES_DIR, page_text

pytestmark = pytest.mark.django_db

TRACEBACK = 'Traceback (most recent call last):\n  File "tasks.py", line 3, in deliver\nValueError: invalid number\n'


@pytest.fixture
def failed_job(make_job) -> Job:
    job = make_job(
        State.FAILED,
        label="Water the plants · sms · 1 recipient",
        task_name="tests.flaky",
        args=[12],
        kwargs={"channel": "sms"},
        queue="sms",
        attempts=2,
        max_attempts=2,
        celery_task_id="5d9b7c1e-0000-4000-8000-000000000001",
        status_message="ValueError: invalid number",
        worker="celery@worker-7",
        errors=[
            {
                "attempt": 1,
                "type": "tests.ProviderDown",
                "message": "503",
                "traceback": "tb one",
                "retryable": True,
                "at": (T0 - timedelta(hours=1)).isoformat(),
            },
            {
                "attempt": 2,
                "type": "builtins.ValueError",
                "message": "invalid number",
                "traceback": TRACEBACK,
                "retryable": False,
                "at": T0.isoformat(),
            },
        ],
    )
    for minutes, kind, host, message in [
        (70, EventKind.SENT, "", "to queue sms"),
        (69, EventKind.STARTED, "celery@worker-7", ""),
        (60, EventKind.RETRIED, "celery@worker-7", "attempt 1 of 2 failed"),
        (1, EventKind.FAILED, "celery@worker-7", "permanent error: ValueError: invalid number"),
    ]:
        JobEvent.objects.create(job=job, kind=kind, at=T0 - timedelta(minutes=minutes), hostname=host, message=message)
    return job


def test_the_page_shows_what_the_job_is_and_how_it_ran(staff_client, failed_job):
    html = page_text(staff_client.get(f"/jobs/{failed_job.pk}/"))
    for text in [
        "Water the plants · sms · 1 recipient",
        'class="badge state-failed">failed<',
        "<code>tests.flaky</code>",
        "<dt>Queue</dt><dd>sms</dd>",
        "2 of 2",
        "ValueError: invalid number",
        "celery@worker-7",
        "5d9b7c1e-0000-4000-8000-000000000001",
        f'<time datetime="{failed_job.eta.isoformat()}"',
        f'<time datetime="{failed_job.started_at.isoformat()}"',
        f'<time datetime="{failed_job.finished_at.isoformat()}"',
        "3.0 s",
        "&quot;channel&quot;: &quot;sms&quot;",
        "12",
        f'href="/admin/scheduler/job/{failed_job.pk}/change/"',
    ]:
        assert text in html, text


def test_the_timeline_lists_the_events_in_order_with_times_and_hosts(staff_client, failed_job):
    html = page_text(staff_client.get(f"/jobs/{failed_job.pk}/"))
    timeline = html.split('class="timeline"')[1].split("</table>")[0]
    kinds = [part.split('"')[0] for part in timeline.split('<tr class="event-')[1:]]
    assert kinds == ["sent", "started", "retried", "failed"]
    assert "celery@worker-7" in timeline and "permanent error: ValueError: invalid number" in timeline
    assert f'datetime="{(T0 - timedelta(minutes=70)).isoformat()}"' in timeline


def test_every_error_is_shown_with_its_traceback_collapsed(staff_client, failed_job):
    html = page_text(staff_client.get(f"/jobs/{failed_job.pk}/"))
    errors = html.split("<h2>Errors")[1]
    assert errors.count('<details class="error"') == 2
    assert "<details open" not in errors
    assert "tests.ProviderDown" in errors and "retryable" in errors
    assert "builtins.ValueError" in errors and "permanent" in errors
    assert "ValueError: invalid number\n</pre>" in errors and "File &quot;tasks.py&quot;, line 3" in errors


@pytest.mark.parametrize("state", [State.SUCCEEDED, State.FAILED, State.CANCELLED, State.ABORTED])
def test_viewing_a_job_that_is_over_marks_it_seen_without_moving_it_in_the_list(staff_client, make_job, state):
    job = make_job(state)
    staff_client.get(f"/jobs/{job.pk}/")
    job_after = Job.objects.get(pk=job.pk)
    assert job_after.seen is True
    assert job_after.modified_at == job.modified_at


@pytest.mark.parametrize("state", [State.SCHEDULED, State.QUEUED, State.RETRYING, State.RUNNING])
def test_viewing_a_job_that_is_not_over_leaves_it_unseen(staff_client, make_job, state):
    job = make_job(state)
    staff_client.get(f"/jobs/{job.pk}/")
    staff_client.get(f"/jobs/{job.pk}/live/")
    assert Job.objects.get(pk=job.pk).seen is False


def test_a_job_that_ends_while_its_page_is_watched_is_seen(staff_client, make_job):
    job = make_job(State.RUNNING)
    staff_client.get(f"/jobs/{job.pk}/")
    Job.objects.filter(pk=job.pk).update(state=State.SUCCEEDED)
    staff_client.get(f"/jobs/{job.pk}/live/")
    assert Job.objects.get(pk=job.pk).seen is True


def test_an_active_job_page_polls_itself_and_shows_progress_and_a_running_clock(staff_client, make_job):
    job = make_job(State.RUNNING, progress=0.25, status_message="step 5")
    html = page_text(staff_client.get(f"/jobs/{job.pk}/"))
    assert f'hx-get="/jobs/{job.pk}/live/" hx-trigger="every 1s"' in html
    assert '<progress max="1" value="0.250"' in html and "25%" in html and "step 5" in html
    assert "data-elapsed=" in html


def test_the_page_of_a_job_that_is_over_does_not_poll(staff_client, make_job):
    job = make_job(State.SUCCEEDED)
    assert "hx-trigger" not in page_text(staff_client.get(f"/jobs/{job.pk}/"))
    assert "hx-trigger" not in page_text(staff_client.get(f"/jobs/{job.pk}/live/"))


def test_the_live_fragment_is_the_job_and_the_counters(staff_client, make_job):
    job = make_job(State.RUNNING)
    fragment = page_text(staff_client.get(f"/jobs/{job.pk}/live/"))
    assert fragment.lstrip().startswith('<article id="job-body"')
    assert 'id="job-counters" aria-label="Jobs" hx-swap-oob="true"' in fragment
    assert "<html" not in fragment


def test_polling_a_deleted_job_tells_htmx_to_stop(staff_client):
    assert staff_client.get("/jobs/999999/live/").status_code == 286


def test_a_job_that_does_not_exist_is_not_found(staff_client):
    assert staff_client.get("/jobs/999999/").status_code == 404


@pytest.fixture
def panel_templates(settings):
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = [*templates[0]["DIRS"], TEMPLATES_DIR]
    settings.TEMPLATES = templates


def test_the_targets_app_can_add_a_panel_to_the_page_of_its_jobs(staff_client, make_job, staff, panel_templates):
    job = make_job(State.SUCCEEDED, target_type=ContentType.objects.get_for_model(staff), target_id=str(staff.pk))
    html = page_text(staff_client.get(f"/jobs/{job.pk}/"))
    assert f'<div class="test-panel">Panel for ops and job #{job.pk}</div>' in html
    assert f'href="/admin/auth/user/{staff.pk}/change/">ops</a>' in html
    assert f'href="/jobs/?target=auth.user:{staff.pk}">its jobs</a>' in html


def test_without_a_panel_template_the_page_shows_the_target_alone(staff_client, make_job, staff):
    job = make_job(State.SUCCEEDED, target_type=ContentType.objects.get_for_model(staff), target_id=str(staff.pk))
    html = page_text(staff_client.get(f"/jobs/{job.pk}/"))
    assert "test-panel" not in html
    assert f'href="/admin/auth/user/{staff.pk}/change/">ops</a>' in html


def test_a_deleted_target_is_named_deleted(staff_client, make_job, staff, panel_templates):
    job = make_job(State.SUCCEEDED, target_type=ContentType.objects.get_for_model(staff), target_id="424242")
    html = page_text(staff_client.get(f"/jobs/{job.pk}/"))
    assert "(deleted)" in html and "auth.user:424242" in html
    assert "Panel for  and job" in html  # the panel decides what to show without its target


def test_a_panel_that_fails_is_replaced_by_a_note_and_the_page_still_shows(
    staff_client, make_job, panel_templates, caplog
):
    content_type = ContentType.objects.get_for_model(ContentType)
    job = make_job(State.FAILED, target_type=content_type, target_id=str(content_type.pk))
    html = page_text(staff_client.get(f"/jobs/{job.pk}/"))
    assert "The panel of contenttypes.contenttype could not be shown." in html
    assert "<h2>Timeline</h2>" in html
    assert "the job panel contenttypes/contenttype_job_panel.html failed" in caplog.text
