"""The admin: what an admin types is validated with clear errors, and the schedule is previewed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib import admin as django_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from alerts.models import Alert, AlertState, Contact, Occurrence, ScheduleKind
from alerts.planner import alerts_plan_due
from scheduler.models import Job, State
from tests.alerts.admin_forms import alert_form, errors_of
from tests.alerts.factories import AlertFactory
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_a_phone_number_that_does_not_parse_is_a_form_error_naming_the_field(admin_client):
    response = admin_client.post(
        "/admin/alerts/contact/add/", {"name": "Bob", "phone": "12345", "timezone": "UTC", "is_active": "on"}
    )
    assert "Enter the number in international form" in errors_of(response)["phone"][0]
    assert not Contact.objects.exists()


def test_phone_numbers_are_stored_in_e164(admin_client):
    response = admin_client.post(
        "/admin/alerts/contact/add/",
        {"name": "Ada", "phone": "+44 20 7946 0958", "timezone": "Europe/London", "is_active": "on"},
    )
    assert response.status_code == 302
    assert Contact.objects.get().phone == "+442079460958"


def test_a_template_error_in_the_message_is_a_form_error(admin_client):
    response = admin_client.post("/admin/alerts/alert/add/", alert_form(message="Hi {{ contact.name|nosuchfilter }}"))
    assert "The message is not a valid template" in errors_of(response)["message"][0]
    assert not Alert.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_a_once_alert_is_read_in_its_timezone_and_enqueued(admin_client):
    response = admin_client.post("/admin/alerts/alert/add/", alert_form())
    assert response.status_code == 302, errors_of(response)
    alert = Alert.objects.get()
    assert alert.send_at == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # 09:00 in Paris
    [job] = Job.objects.all()
    assert (job.task_name, job.eta, job.state) == ("alerts.deliver_sms", alert.send_at, State.SCHEDULED)
    assert job.label == "Server room too hot · sms · 1 recipient"


@time_machine.travel(NOW, tick=False)
def test_a_time_in_the_past_is_refused_unless_sending_now_is_asked_for(admin_client):
    past = alert_form(send_at_0="2026-11-21", send_at_1="08:00")
    response = admin_client.post("/admin/alerts/alert/add/", past)
    assert "This time has passed (2026-11-21 08:00 in Europe/Paris)" in errors_of(response)["send_at"][0]
    assert not Alert.objects.exists()
    response = admin_client.post("/admin/alerts/alert/add/", {**past, "send_if_past": "on"})
    assert response.status_code == 302
    assert Alert.objects.get().send_at == NOW


@time_machine.travel(NOW, tick=False)
def test_a_relative_spec_is_resolved_from_its_base(admin_client):
    data = alert_form(schedule_kind=ScheduleKind.RELATIVE, relative_spec="+1 month -1 week at 10:00")
    data.update(relative_base_0="2026-11-21", relative_base_1="15:00")
    assert admin_client.post("/admin/alerts/alert/add/", data).status_code == 302
    assert Alert.objects.get().send_at == datetime(2026, 12, 14, 9, 0, tzinfo=UTC)


def test_an_unreadable_relative_spec_says_what_was_expected(admin_client):
    response = admin_client.post(
        "/admin/alerts/alert/add/", alert_form(schedule_kind=ScheduleKind.RELATIVE, relative_spec="next tuesday")
    )
    assert "Could not read “next tuesday”; expected one or more terms" in errors_of(response)["relative_spec"][0]


@pytest.mark.parametrize(
    "crontab, message", [("0 25 * * *", "The hour field “25”"), ("1,,2 * * * *", "The minute field “1,,2”")]
)
def test_an_invalid_crontab_field_is_named(admin_client, crontab, message):
    response = admin_client.post(
        "/admin/alerts/alert/add/", alert_form(schedule_kind=ScheduleKind.CRONTAB, crontab=crontab)
    )
    assert message in errors_of(response)["crontab"][0]
    assert not Alert.objects.exists()


def test_a_crontab_celery_cannot_parse_is_named_when_an_alert_is_changed(admin_client):
    alert = AlertFactory(schedule_kind=ScheduleKind.CRONTAB, send_at=None, crontab="0 9 * * *")
    data = alert_form(schedule_kind=ScheduleKind.CRONTAB, crontab="-5 * * * *")
    response = admin_client.post(f"/admin/alerts/alert/{alert.pk}/change/", data)
    assert "The minute field “-5”" in errors_of(response)["crontab"][0]
    alert.refresh_from_db()
    assert alert.crontab == "0 9 * * *"


def test_a_recurring_alert_is_planned_in_its_timezone_by_the_planner_not_by_a_beat_entry(admin_client):
    with time_machine.travel(NOW, tick=False) as traveller:
        data = alert_form(schedule_kind=ScheduleKind.CRONTAB, crontab="30 8 * * mon-fri", send_email="on")
        assert admin_client.post("/admin/alerts/alert/add/", data).status_code == 302
        alert = Alert.objects.get()
        monday_0830_paris = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
        assert alert.next_due_at == monday_0830_paris
        assert not PeriodicTask.objects.filter(task__startswith="alerts.").exists()
        assert not Job.objects.exists(), "days away: not planned yet"
        traveller.move_to(monday_0830_paris - timedelta(minutes=1))
        alerts_plan_due()
    jobs = Job.objects.order_by("task_name")
    assert [j.task_name for j in jobs] == ["alerts.deliver_email", "alerts.deliver_sms"]
    assert {j.eta for j in jobs} == {monday_0830_paris}
    alert.refresh_from_db()
    assert alert.next_due_at == datetime(2026, 11, 24, 7, 30, tzinfo=UTC), "planning moved on to Tuesday"


@time_machine.travel(NOW, tick=False)
def test_the_change_page_shows_the_next_five_occurrences_in_the_alert_timezone(admin_client):
    alert = AlertFactory(schedule_kind=ScheduleKind.INTERVAL, send_at=None, interval_every=6, interval_unit="hours",
                         starts_at=datetime(2026, 11, 21, 13, 0, tzinfo=UTC), timezone="Europe/Paris")  # fmt: skip
    page = admin_client.get(f"/admin/alerts/alert/{alert.pk}/change/").content.decode()
    for expected in [
        "2026-11-21 14:00",
        "2026-11-21 20:00",
        "2026-11-22 02:00",
        "2026-11-22 08:00",
        "2026-11-22 14:00",
    ]:
        assert expected in page


@time_machine.travel(NOW, tick=False)
def test_the_preview_shows_occurrences_before_saving_and_errors_for_a_bad_schedule(admin_client):
    data = alert_form(schedule_kind=ScheduleKind.CRONTAB, crontab="0 9 * * *")
    data["recipients"] = []
    page = admin_client.get("/admin/alerts/alert/preview/", data).content.decode()
    assert page.count("<li>") == 5 and "Sun 2026-11-22 09:00 Europe/Paris" in page
    bad = admin_client.get("/admin/alerts/alert/preview/", {**data, "crontab": "0 9 * *"}).content.decode()
    assert "got 4 field(s)" in bad
    assert not Alert.objects.exists()


@pytest.mark.parametrize("crontab", ["1,,2 * * * *", "-5 * * * *", "*/ * * * *"])
def test_the_preview_names_a_crontab_field_celery_cannot_parse(admin_client, crontab):
    data = alert_form(schedule_kind=ScheduleKind.CRONTAB, crontab=crontab)
    response = admin_client.get("/admin/alerts/alert/preview/", data)
    assert response.status_code == 200
    assert "The minute field" in response.content.decode()


def test_pause_resume_cancel_and_duplicate_actions(admin_client):
    alert = AlertFactory(schedule_kind=ScheduleKind.CRONTAB, send_at=None, crontab="0 9 * * *")
    changelist = "/admin/alerts/alert/"
    admin_client.post(changelist, {"action": "pause", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.state == AlertState.PAUSED
    admin_client.post(changelist, {"action": "resume", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE and alert.next_due_at is not None
    admin_client.post(changelist, {"action": "duplicate", "_selected_action": [alert.pk]})
    copy = Alert.objects.exclude(pk=alert.pk).get()
    assert (copy.name, copy.state, list(copy.recipients.all())) == (
        f"{alert.name} (copy)", AlertState.PAUSED, list(alert.recipients.all()),
    )  # fmt: skip
    admin_client.post(changelist, {"action": "cancel", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.state == AlertState.CANCELLED
    assert not Job.objects.filter(target_id=str(alert.pk), state__in=["scheduled", "queued"]).exists()


@pytest.fixture
def viewer_client(client):
    """Staff allowed only to look at alerts and jobs."""
    user = get_user_model().objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_alert", "view_job"]))
    client.force_login(user)
    return client


@pytest.mark.parametrize("action", ["send_now", "pause", "resume", "cancel", "duplicate"])
def test_staff_allowed_only_to_view_alerts_cannot_run_their_actions(viewer_client, action):
    alert = AlertFactory()
    response = viewer_client.post("/admin/alerts/alert/", {"action": action, "_selected_action": [alert.pk]})
    assert response.status_code == 403
    assert list(Alert.objects.values_list("pk", "state")) == [(alert.pk, AlertState.ACTIVE)]
    assert not Occurrence.objects.exists()


@pytest.mark.parametrize("action", ["run_now", "cancel"])
def test_staff_allowed_only_to_view_jobs_cannot_run_or_cancel_them_in_the_admin(viewer_client, action):
    job = JobFactory(state=State.FAILED)
    response = viewer_client.post("/admin/scheduler/job/", {"action": action, "_selected_action": [job.pk]})
    assert response.status_code == 403
    job.refresh_from_db()
    assert (job.state, job.attempts) == (State.FAILED, 0)


def test_staff_allowed_only_to_view_see_no_actions_but_can_look(viewer_client):
    AlertFactory()
    page = viewer_client.get("/admin/alerts/alert/")
    assert page.status_code == 200 and page.context["action_form"] is None, "no action is offered"


def test_every_admin_action_says_which_permission_it_needs():
    """Ours and the installed apps' (django-celery-beat's): an action without one is open to view-only staff."""
    for model, model_admin in django_admin.site._registry.items():
        for action in model_admin.actions or ():
            function = getattr(model_admin, action) if isinstance(action, str) else action
            assert getattr(function, "allowed_permissions", None), f"{model.__name__}: {action}"


def test_an_alert_links_to_its_jobs_on_the_job_pages(admin_client):
    alert = AlertFactory()
    html = admin_client.get(f"/admin/alerts/alert/{alert.pk}/change/").content.decode()
    link = html.split("'>its jobs</a>")[0].rsplit("href='", 1)[1]
    response = admin_client.get(link.replace("&amp;", "&"))
    assert response.resolver_match.view_name == "scheduler:job_list"
    assert response.context["form"].data["target"] == f"alerts.alert:{alert.pk}"


def test_staff_allowed_only_to_view_beat_entries_cannot_disable_them(client):
    entry = PeriodicTask.objects.create(name="nightly", task="tests.echo", interval=IntervalSchedule.objects.create(
        every=1, period=IntervalSchedule.HOURS))  # fmt: skip
    user = get_user_model().objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_periodictask"))
    client.force_login(user)
    data = {"action": "disable_tasks", "_selected_action": [entry.pk]}
    assert client.post("/admin/django_celery_beat/periodictask/", data).status_code == 403
    assert PeriodicTask.objects.get(pk=entry.pk).enabled
