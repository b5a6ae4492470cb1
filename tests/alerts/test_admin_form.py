"""The alert form and the rules that hold for every way an alert is saved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from alerts.models import Alert, ScheduleKind
from alerts.schedules import alert_due_times
from tests.alerts.admin_forms import alert_form, errors_of
from tests.alerts.factories import ContactFactory

pytestmark = pytest.mark.django_db


# 02:30 in the second, repeated 02:00-03:00 of Berlin's autumn night (CET, UTC+1).
BERLIN_SECOND_PASS = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("+30 minutes", datetime(2026, 10, 25, 2, 0, tzinfo=UTC)),
        ("+90 minutes", datetime(2026, 10, 25, 3, 0, tzinfo=UTC)),
        ("+24 hours", datetime(2026, 10, 26, 1, 30, tzinfo=UTC)),
    ],
)
def test_a_relative_alert_saved_in_the_repeated_autumn_hour_counts_from_that_instant(admin_client, spec, expected):
    data = alert_form(schedule_kind=ScheduleKind.RELATIVE, relative_spec=spec, timezone="Europe/Berlin")
    with time_machine.travel(BERLIN_SECOND_PASS, tick=False):
        response = admin_client.post("/admin/alerts/alert/add/", data)
    assert response.status_code == 302, errors_of(response)
    alert = Alert.objects.get()
    assert (alert.relative_base, alert.send_at) == (BERLIN_SECOND_PASS, expected)


NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def unsaved(**fields) -> Alert:
    values = {"name": "Water the plants", "message": "Hi {{ contact.name }}", "timezone": "Europe/Paris"}
    return Alert(**{**values, **fields})


@time_machine.travel(NOW, tick=False)
def test_a_relative_alert_validated_outside_the_admin_gets_its_time():
    alert = unsaved(schedule_kind=ScheduleKind.RELATIVE, relative_spec="+2 days at 09:00")
    alert.full_clean()
    alert.save()
    alert.refresh_from_db()
    assert alert.relative_base == NOW
    assert alert.send_at == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 in Paris
    assert alert_due_times(alert, after=NOW) == [alert.send_at]


@time_machine.travel(NOW, tick=False)
def test_a_relative_alert_keeps_counting_from_its_stored_base_when_validated_again():
    alert = unsaved(schedule_kind=ScheduleKind.RELATIVE, relative_spec="+90 minutes")
    alert.full_clean()
    alert.save()
    with time_machine.travel(NOW + timedelta(minutes=20), tick=False):
        alert.full_clean()
    assert alert.send_at == NOW + timedelta(minutes=90)


@time_machine.travel(NOW, tick=False)
def test_an_interval_alert_validated_outside_the_admin_starts_when_saved():
    alert = unsaved(schedule_kind=ScheduleKind.INTERVAL, interval_every=6, interval_unit="hours")
    alert.full_clean()
    assert alert.starts_at == NOW
    assert alert_due_times(alert, after=NOW + timedelta(hours=1), count=2) == [
        NOW + timedelta(hours=6),
        NOW + timedelta(hours=12),
    ]


def test_an_unreadable_relative_spec_is_refused_outside_the_admin_too():
    alert = unsaved(schedule_kind=ScheduleKind.RELATIVE, relative_spec="next tuesday")
    with pytest.raises(ValidationError) as error:
        alert.full_clean()
    assert "Could not read “next tuesday”" in error.value.message_dict["relative_spec"][0]


@pytest.mark.parametrize("spec", ["+9000 years", "+3000000 days", "+99999999999 minutes"])
def test_a_relative_spec_beyond_the_calendar_is_refused_outside_the_admin_too(spec):
    alert = unsaved(schedule_kind=ScheduleKind.RELATIVE, relative_spec=spec)
    with pytest.raises(ValidationError) as error:
        alert.full_clean()
    assert "outside the calendar" in error.value.message_dict["relative_spec"][0]


@pytest.mark.parametrize("spec", ["+9000 years", "+3000000 days", "+99999999999 minutes"])
def test_the_admin_form_names_a_relative_spec_beyond_the_calendar(admin_client, spec):
    response = admin_client.post(
        "/admin/alerts/alert/add/", alert_form(schedule_kind=ScheduleKind.RELATIVE, relative_spec=spec)
    )
    [message] = errors_of(response)["relative_spec"]
    assert "outside the calendar" in message
    assert not Alert.objects.exists()


def test_an_interval_of_more_than_ten_years_is_refused_outside_the_admin_too():
    alert = unsaved(schedule_kind=ScheduleKind.INTERVAL, interval_every=2**31 - 1, interval_unit="days")
    with pytest.raises(ValidationError) as error:
        alert.full_clean()
    assert error.value.message_dict["interval_every"] == ["At most 3,660 days between occurrences (about ten years)."]
    alert.interval_every = 3660
    alert.full_clean()


def test_the_admin_form_names_an_unreadable_relative_spec_once(admin_client):
    data = alert_form(schedule_kind=ScheduleKind.RELATIVE, relative_spec="next tuesday")
    response = admin_client.post("/admin/alerts/alert/add/", data)
    [message] = errors_of(response)["relative_spec"]
    assert message.startswith("Could not read “next tuesday”")
    assert not Alert.objects.exists()


@pytest.mark.parametrize(
    "message, named",
    [
        ("Hi {{ contact.name", "“{{ contact.name” is not closed; close it with “}}”"),
        ("Hi {{ contact.name }}, {{ alert.name", "“{{ alert.name” is not closed"),
        (
            "Hi {{ contact.name\n}}, the room is hot",
            "“{{ contact.name” is not closed; close it with “}}” on the same line",
        ),
        ("{% if contact.name %}Hi{% endif %} {# note", "“{# note” is not closed; close it with “#}”"),
        ("Hi {% if contact.name", "“{% if contact.name” is not closed; close it with “%}”"),
    ],
)
def test_an_unclosed_tag_in_the_message_is_a_form_error(admin_client, message, named):
    response = admin_client.post("/admin/alerts/alert/add/", alert_form(message=message))
    [error] = errors_of(response)["message"]
    assert error.startswith("The message is not a valid template") and named in error
    assert not Alert.objects.exists()


def test_an_unclosed_tag_is_refused_outside_the_admin_too():
    alert = unsaved(schedule_kind=ScheduleKind.ONCE, send_at=NOW, message="Hi {{ contact.name")
    with pytest.raises(ValidationError) as error:
        alert.full_clean()
    assert "“{{ contact.name” is not closed" in error.value.message_dict["message"][0]


@pytest.mark.parametrize(
    "message",
    ["Load {cpu} > 90% }} {x}", "Type {% verbatim %}{{ contact.name }}{% endverbatim %} to greet by name"],
)
def test_braces_that_open_no_tag_are_plain_text(message):
    unsaved(schedule_kind=ScheduleKind.ONCE, send_at=NOW, message=message).full_clean()


def test_the_alert_form_groups_each_schedule_kind_in_its_own_fieldset_all_rendered_without_javascript(admin_client):
    page = admin_client.get("/admin/alerts/alert/add/").content.decode()
    fields = {
        "once": ["send_at_0", "send_if_past"],
        "relative": ["relative_base_0", "relative_spec"],
        "crontab": ["crontab"],
        "interval": ["interval_every", "interval_unit", "starts_at_0"],
    }
    for kind, names in fields.items():
        start = page.index(f'class="module aligned schedule-kind kind-{kind}"')
        fieldset = page[start : page.index("</fieldset>", start)]
        for name in names:
            assert f'name="{name}"' in fieldset
    assert "alerts/alert_form.js" in page
    assert page.count("schedule-kind kind-") == 4


def test_the_contacts_timezone_filter_lists_only_the_zones_in_use(admin_client):
    ContactFactory(name="Ada", timezone="Europe/Paris")
    ContactFactory(name="Bo", timezone="Asia/Tokyo")
    ContactFactory(name="Cy", timezone="Asia/Tokyo")
    page = admin_client.get("/admin/alerts/contact/").content.decode()
    assert "America%2FLima" not in page and "America/Lima" not in page
    assert "?timezone=Asia%2FTokyo" in page and "?timezone=Europe%2FParis" in page
    filtered = admin_client.get("/admin/alerts/contact/", {"timezone": "Asia/Tokyo"})
    assert [c.name for c in filtered.context["cl"].result_list] == ["Bo", "Cy"]
