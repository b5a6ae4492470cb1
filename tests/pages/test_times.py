"""Every time on the job pages and in the admin is one labelled <time>, which the browser shows in the
viewer's zone: also the times the engine writes into messages, in either of its two formats."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from alerts.models import SmsSinkMessage
from scheduler.models import EventKind, JobEvent, State
from scheduler.templatetags.scheduler_tags import localtimes
from tests.pages.conftest import T0, page_text

pytestmark = pytest.mark.django_db

T0_TAG = f'<time datetime="{T0.isoformat()}" title="2030-06-01 12:00:00 UTC">2030-06-01 12:00:00 UTC</time>'


@pytest.fixture
def job_with_times_in_messages(make_job):
    job = make_job(State.QUEUED, eta=T0, status_message="waiting: due 2030-06-01 12:00:00 UTC")
    JobEvent.objects.create(job=job, kind=EventKind.SCHEDULED, at=T0, message="due 2030-06-01 12:00:00 UTC")
    JobEvent.objects.create(job=job, kind=EventKind.RECEIVED, at=T0, message="held until 2030-06-01T12:00:00+00:00")
    return job


@pytest.mark.parametrize(
    ("text", "before"),
    [
        ("due 2030-06-01 12:00:00 UTC", "due "),  # the engine's own messages
        ("held until 2030-06-01T12:00:00+00:00", "held until "),  # Celery's ETA, as the received event has it
        ("at 2030-06-01T12:00:00.000000Z", "at "),
    ],
)
def test_utc_times_in_a_message_become_the_same_labelled_time_tag(text, before):
    assert localtimes(text) == before + T0_TAG


def test_text_around_the_times_is_escaped_and_times_without_a_zone_are_left_as_written():
    assert localtimes("<b>at</b> 2030-06-01 12:00:00 UTC") == f"&lt;b&gt;at&lt;/b&gt; {T0_TAG}"
    assert localtimes("local 2030-06-01 12:00:00, later") == "local 2030-06-01 12:00:00, later"


def test_the_timeline_and_status_show_the_engines_times_as_time_tags(staff_client, job_with_times_in_messages):
    html = page_text(staff_client.get(f"/jobs/{job_with_times_in_messages.pk}/"))
    timeline = html.split('class="timeline"')[1]
    assert "+00:00</td>" not in timeline and " UTC</td>" not in timeline.replace("UTC</time></td>", "")
    assert timeline.count(T0_TAG) == 4, "two event times and the two times in their messages"
    assert f'<span class="status-message">waiting: due {T0_TAG}</span>' in html
    list_html = page_text(staff_client.get("/jobs/"))
    assert f"waiting: due {T0_TAG}" in list_html


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-for-tests-only"))
    return client


def test_the_admins_job_list_and_job_page_label_their_times(admin_client, job_with_times_in_messages):
    changelist = page_text(admin_client.get("/admin/scheduler/job/"))
    assert T0_TAG in changelist, "the ETA column"
    page = page_text(admin_client.get(f"/admin/scheduler/job/{job_with_times_in_messages.pk}/change/"))
    assert page.count(T0_TAG) >= 5, "the ETA, both event times and both times in the events' messages"
    assert not re.search(r"June 1, 2030|noon", page), "no unlabelled time in the admin's own format"


def test_the_sms_sink_labels_its_times_and_the_admin_loads_the_script_that_localizes_them(admin_client):
    message = SmsSinkMessage.objects.create(to="+14155550100", body="Hi")
    SmsSinkMessage.objects.filter(pk=message.pk).update(created_at=T0)
    page = page_text(admin_client.get("/admin/alerts/smssinkmessage/"))
    assert T0_TAG in page
    assert "scheduler/times.js" in page
