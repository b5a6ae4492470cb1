"""The delivery path's written-out statements give what the querysets they replace gave."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts import delivery_rows
from alerts.fanout import Share
from alerts.models import Contact, Delivery, DeliveryState, Occurrence
from tests.alerts.factories import AlertFactory, ContactFactory

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_the_occurrence_comes_with_its_alert_in_one_statement_as_select_related_gives_them():
    alert = AlertFactory(name="Boiler", urgent=True, retry_delay=timedelta(minutes=7), sms_text="Hi {{ contact.name }}")
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now(), acknowledged_by="ops")
    expected = Occurrence.objects.select_related("alert").get(pk=occurrence.pk)
    for recipients_of in (None, Share(), Share(0, 2)):
        with CaptureQueriesContext(connection) as statements:
            found, _ = delivery_rows.occurrence_with_recipients(occurrence.pk, recipients_of)
            read_alert = found.alert
        assert len(statements) == 1
        assert _fields(found) == _fields(expected)
        assert _fields(read_alert) == _fields(expected.alert)
        assert found._state.adding is False and read_alert._state.adding is False


def test_a_missing_occurrence_reads_as_none():
    assert delivery_rows.occurrence_with_recipients(987654, Share()) == (None, [])


def test_recipients_come_in_name_order_and_a_share_holds_the_ids_of_its_remainder():
    contacts = [ContactFactory(name=name) for name in ("Dana", "Ann", "Cleo", "Bob", "Eve")]
    alert = AlertFactory(recipients=contacts)
    AlertFactory(recipients=[ContactFactory(name="Other alert's")])
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())

    def read(recipients_of: Share | None) -> list[Contact]:
        return delivery_rows.occurrence_with_recipients(occurrence.pk, recipients_of)[1]

    assert [c.name for c in read(Share())] == ["Ann", "Bob", "Cleo", "Dana", "Eve"]
    assert [_fields(c) for c in read(Share())] == [_fields(c) for c in alert.recipients.order_by("name")]
    ordered = sorted(contacts, key=lambda c: c.name)
    assert [c.pk for c in read(Share(1, 2))] == [c.pk for c in ordered if c.pk % 2 == 1]
    assert read(None) == []


def test_an_alert_without_recipients_or_an_empty_share_reads_none():
    alert = AlertFactory(recipients=[])
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())
    found, recipients = delivery_rows.occurrence_with_recipients(occurrence.pk, Share())
    assert (found.pk, recipients) == (occurrence.pk, [])
    contact = ContactFactory()
    alert.recipients.set([contact])
    empty = Share((contact.pk + 1) % 3, 3)
    assert delivery_rows.occurrence_with_recipients(occurrence.pk, empty)[1] == []


def test_a_second_delivery_row_for_the_same_recipient_is_not_inserted_and_the_transaction_goes_on():
    contact = ContactFactory()
    alert = AlertFactory(recipients=[contact])
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())

    def row() -> Delivery:
        return Delivery(occurrence=occurrence, contact=contact, channel="sms", address=contact.phone,
                        state=DeliveryState.SENDING, attempts=1)  # fmt: skip

    first = row()
    with transaction.atomic():
        assert delivery_rows.insert_unless_exists(first)
        second = row()
        assert not delivery_rows.insert_unless_exists(second)
        assert second.pk is None
        Contact.objects.filter(pk=contact.pk).update(name="still usable")
    stored = Delivery.objects.get()
    assert stored.pk == first.pk and not first._state.adding
    assert model_to_dict(stored) == model_to_dict(first)
    assert Contact.objects.get(pk=contact.pk).name == "still usable"


def test_a_one_contact_read_gives_that_recipient_alone_with_the_occurrence_in_one_statement():
    contacts = [ContactFactory(name=name) for name in ("Ann", "Bob", "Cleo")]
    alert = AlertFactory(recipients=contacts)
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())
    expected = Occurrence.objects.select_related("alert").get(pk=occurrence.pk)
    bob = Contact.objects.get(name="Bob")

    with CaptureQueriesContext(connection) as statements:
        found, recipients = delivery_rows.occurrence_with_recipient(occurrence.pk, bob.pk)
        read_alert = found.alert

    assert len(statements) == 1
    assert _fields(found) == _fields(expected) and _fields(read_alert) == _fields(expected.alert)
    assert [_fields(c) for c in recipients] == [_fields(bob)]


def test_a_one_contact_read_of_a_contact_no_longer_a_recipient_gives_the_occurrence_alone():
    ann, bob = ContactFactory(name="Ann"), ContactFactory(name="Bob")
    alert = AlertFactory(recipients=[ann])
    AlertFactory(recipients=[bob])
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())

    found, recipients = delivery_rows.occurrence_with_recipient(occurrence.pk, bob.pk)

    assert (found.pk, recipients) == (occurrence.pk, [])
    assert delivery_rows.occurrence_with_recipient(987654, ann.pk) == (None, [])
