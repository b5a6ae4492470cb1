from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from alerts.models import Alert, Contact, EscalationPolicy, EscalationStep, ScheduleKind


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    name = factory.Sequence(lambda n: f"Contact {n}")
    phone = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")
    email = factory.Sequence(lambda n: f"contact{n}@example.com")


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Alert {n}")
    message = "Hi {{ contact.name }}, {{ alert.name }} needs you."
    schedule_kind = ScheduleKind.ONCE
    send_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))

    @factory.post_generation
    def recipients(self, create, extracted, **kwargs):
        if create:
            self.recipients.set(extracted if extracted is not None else [ContactFactory()])


def escalation_policy(*steps: dict, repeat: int = 0, name: str | None = None) -> EscalationPolicy:
    """A policy with ``steps`` in order, each a dict of EscalationStep fields plus ``contacts``."""
    policy = EscalationPolicy.objects.create(
        name=name or f"Policy {EscalationPolicy.objects.count() + 1}", repeat=repeat
    )
    for position, fields in enumerate(steps, start=1):
        fields = dict(fields)
        contacts = fields.pop("contacts", [])
        step = EscalationStep.objects.create(policy=policy, position=position, **fields)
        step.contacts.set(contacts)
    return policy
