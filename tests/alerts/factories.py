from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from alerts.models import Alert, Contact, ScheduleKind


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
