"""Only staff see the job pages and act on jobs; every action is a POST that needs the CSRF token."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client

from scheduler.models import EventKind, Job, State
from tests.pages.conftest import PASSWORD, staff_user

pytestmark = pytest.mark.django_db

PAGES = ["/jobs/", "/jobs/rows/", "/jobs/cancel-all/", "/jobs/{pk}/", "/jobs/{pk}/live/", "/jobs/{pk}/cancel/"]
ACTIONS = [
    "/jobs/{pk}/cancel/",
    "/jobs/{pk}/run-now/",
    "/jobs/{pk}/settle/",
    "/jobs/{pk}/delete/",
    "/jobs/cancel-all/",
    "/jobs/bulk/",
]


@pytest.fixture
def job(make_job) -> Job:
    return make_job(State.SCHEDULED)


@pytest.fixture
def member_client(client: Client, django_user_model) -> Client:
    client.force_login(django_user_model.objects.create_user("visitor", password=PASSWORD))
    return client


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_the_admin_login_and_back(client, job, url):
    response = client.get(url.format(pk=job.pk))
    assert response.status_code == 302
    assert response.url == f"/admin/login/?next={url.format(pk=job.pk)}"


@pytest.mark.parametrize("url", ACTIONS)
def test_anonymous_visitors_cannot_act(client, job, url):
    response = client.post(url.format(pk=job.pk), {"action": "cancel", "ids": [job.pk], "confirmed": "on"})
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
    assert Job.objects.get(pk=job.pk).state == State.SCHEDULED


@pytest.mark.parametrize("url", PAGES)
def test_logged_in_users_who_are_not_staff_are_forbidden(member_client, job, url):
    assert member_client.get(url.format(pk=job.pk)).status_code == 403


@pytest.mark.parametrize("url", ACTIONS)
def test_logged_in_users_who_are_not_staff_cannot_act(member_client, job, url):
    response = member_client.post(url.format(pk=job.pk), {"action": "cancel", "ids": [job.pk], "confirmed": "on"})
    assert response.status_code == 403
    assert Job.objects.get(pk=job.pk).state == State.SCHEDULED


@pytest.mark.parametrize("url", ACTIONS)
@pytest.mark.parametrize("action", ["cancel", "delete"])
def test_staff_allowed_only_to_view_jobs_cannot_act(viewer_client, make_job, url, action):
    waiting, over = make_job(State.SCHEDULED), make_job(State.FAILED)
    for job in (waiting, over):
        data = {"action": action, "ids": [waiting.pk, over.pk], "confirmed": "on"}
        response = viewer_client.post(url.format(pk=job.pk), data)
        assert response.status_code == 403
    assert {job.pk: job.state for job in Job.objects.all()} == {waiting.pk: State.SCHEDULED, over.pk: State.FAILED}


def test_staff_allowed_only_to_view_jobs_cannot_mark_a_job_that_needs_attention_settled(viewer_client, make_job):
    job = make_job(State.ATTENTION)
    assert viewer_client.post(f"/jobs/{job.pk}/settle/").status_code == 403
    assert Job.objects.get(pk=job.pk).state == State.ATTENTION
    assert not job.events.filter(kind=EventKind.SETTLED).exists()


@pytest.mark.parametrize("url", ["/jobs/{pk}/cancel/", "/jobs/{pk}/delete/", "/jobs/cancel-all/"])
def test_staff_allowed_only_to_view_jobs_get_no_confirmation_page(viewer_client, make_job, url):
    job = make_job(State.SCHEDULED)
    assert viewer_client.get(url.format(pk=job.pk)).status_code == 403


def test_staff_allowed_only_to_view_jobs_see_no_action_buttons(django_user_model, staff, make_job):
    failed = make_job(State.FAILED)
    viewer, operator = Client(), Client()
    viewer.force_login(staff_user(django_user_model, "viewer", "view_job"))
    operator.force_login(staff)
    for client, shown in ((viewer, False), (operator, True)):
        page = client.get(f"/jobs/{failed.pk}/").content.decode() + client.get("/jobs/").content.decode()
        for button in ("Retry now", "Delete…", "Cancel all…", "Cancel selected…", "Delete selected…"):
            assert (button in page) is shown, (client, button)


def test_a_staff_user_may_cancel_but_not_delete_with_the_change_permission_only(client, django_user_model, make_job):
    client.force_login(staff_user(django_user_model, "canceller", "view_job", "change_job"))
    waiting, over = make_job(State.SCHEDULED), make_job(State.FAILED)
    assert client.post(f"/jobs/{over.pk}/delete/").status_code == 403
    assert client.post("/jobs/bulk/", {"action": "delete", "ids": [over.pk], "confirmed": "on"}).status_code == 403
    assert client.post(f"/jobs/{waiting.pk}/cancel/").status_code == 302
    assert {job.pk: job.state for job in Job.objects.all()} == {waiting.pk: State.CANCELLED, over.pk: State.FAILED}


def test_a_poll_after_the_session_ended_sends_the_whole_page_to_the_login(client, job):
    response = client.get(
        "/jobs/rows/?state=active",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/jobs/?state=active"},
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/admin/login/?next=/jobs/%3Fstate%3Dactive"
    assert response.content == b""


def test_the_pages_are_never_cached(staff_client, job):
    for url in ("/jobs/", f"/jobs/{job.pk}/", "/jobs/rows/"):
        assert "no-cache" in staff_client.get(url).headers["Cache-Control"]


@pytest.mark.parametrize("url", ACTIONS)
def test_every_action_refuses_a_post_without_the_csrf_token(staff, job, url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    response = client.post(url.format(pk=job.pk), {"action": "cancel", "ids": [job.pk], "confirmed": "on"})
    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert Job.objects.get(pk=job.pk).state == State.SCHEDULED


def test_an_action_with_the_csrf_token_of_the_confirmation_page_goes_through(staff, job):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    confirmation = client.get(f"/jobs/{job.pk}/cancel/")
    token = confirmation.context["csrf_token"]
    response = client.post(f"/jobs/{job.pk}/cancel/", {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    assert Job.objects.get(pk=job.pk).state == State.CANCELLED


@pytest.mark.parametrize("url", ["/jobs/{pk}/run-now/", "/jobs/bulk/"])
def test_actions_without_a_confirmation_page_refuse_get(staff_client, job, url):
    assert staff_client.get(url.format(pk=job.pk)).status_code == 405


def test_the_list_and_the_job_pages_refuse_post(staff_client, job):
    assert staff_client.post("/jobs/").status_code == 405
    assert staff_client.post(f"/jobs/{job.pk}/").status_code == 405


def test_the_bare_address_and_the_admins_view_site_lead_to_the_job_list(client):
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/jobs/")
    assert admin.site.site_url == "/jobs/"
