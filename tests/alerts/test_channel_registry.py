"""The channel registry: a channel is one module's declaration, and delivery and its task ask for it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from alerts import channels
from alerts.channels import DeliveryChannel, Envelope, SentMessage, Transport
from alerts.models import Delivery, DeliveryState, Occurrence
from alerts.tasks import DELIVERY_TASKS, delivery_task
from scheduler.models import State
from tests.alerts.factories import AlertFactory, ContactFactory


class Pager(Transport):
    """A test channel's transport: remembers what it was handed."""

    sent: list[tuple[str, str]] = []  # noqa: RUF012  (shared on purpose: the worker builds its own instance)

    def send(self, *, to: str, body: str, subject: str = "", envelope: Envelope | None = None) -> SentMessage:
        Pager.sent.append((to, body))
        return SentMessage(provider_id=f"page-{len(Pager.sent)}")


# What a channel module declares; registered at import, before the module's worker starts, as the
# project's own channels are when alerts.channels is imported.
PAGER = channels.register(DeliveryChannel(name="pager", contact_field="email", queue="default", transport=Pager))
deliver_pager = delivery_task(PAGER)


def test_the_projects_channels_are_registered_with_their_field_queue_and_task():
    assert {name: (c.contact_field, c.queue) for name, c in channels.registry.items() if name != "pager"} == {
        "sms": ("phone", "sms"),
        "email": ("email", "email"),
        "webhook": ("webhook_url", "webhook"),
    }
    assert {name: (task.name, task.queue) for name, task in DELIVERY_TASKS.items()} == {
        "sms": ("alerts.deliver_sms", "sms"),
        "email": ("alerts.deliver_email", "email"),
        "webhook": ("alerts.deliver_webhook", "webhook"),
    }


def test_a_channel_name_is_registered_once():
    with pytest.raises(ImproperlyConfigured):
        channels.register(DeliveryChannel(name="sms", contact_field="phone", queue="sms", transport=Pager))


def test_an_unknown_channel_is_a_clear_error():
    with pytest.raises(LookupError, match="no delivery channel named 'fax'"):
        channels.get("fax")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_a_channel_added_as_one_declaration_delivers_through_the_engine():
    Pager.sent.clear()
    contact = ContactFactory(name="Grace", email="grace@example.com")
    alert = AlertFactory(recipients=[contact], name="Backup")
    occurrence = Occurrence.objects.create(alert=alert, scheduled_for=timezone.now())

    job = deliver_pager.enqueue_with(args=[occurrence.pk], target=alert).wait(timeout=30)

    assert job.state == State.SUCCEEDED, job.errors
    [(to, body)] = Pager.sent
    assert to == "grace@example.com" and body.startswith("Hi Grace, Backup needs you.")
    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.address, delivery.state) == ("pager", to, DeliveryState.SENT)
