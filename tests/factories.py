from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from scheduler.models import Job, State


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    task_name = "tests.echo"
    args = factory.LazyFunction(lambda: ["hello"])
    queue = "default"
    state = State.SCHEDULED
    eta = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    retry_delay = timedelta(hours=1)
