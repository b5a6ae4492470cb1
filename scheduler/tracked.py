"""``@tracked_task``: a Celery task whose every run is a tracked job.

    @tracked_task(queue="sms", max_attempts=24, retry_delay=timedelta(hours=1), retry_on=(ProviderDown,))
    def deliver(job, alert_id): ...

    deliver.enqueue(alert_id)                                    # as soon as possible
    deliver.enqueue_with(args=[alert_id], eta=when, target=alert)  # at a time, linked to an object
    deliver.enqueue_many([{"args": [a]} for a in alert_ids])     # several, in one INSERT

The Celery message carries only the job's id; the arguments live in the job row, which is the record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils import timezone

from scheduler import execution, services
from scheduler.models import Job

registry: dict[str, TrackedTask] = {}


class TrackedTask:
    def __init__(
        self,
        body: Callable[..., Any],
        *,
        name: str,
        queue: str,
        max_attempts: int,
        retry_delay: timedelta | None,
        retry_on: tuple[type[BaseException], ...],
        lease: timedelta | None,
        celery_options: dict[str, Any],
    ) -> None:
        if queue not in settings.JOB_QUEUES:
            raise ImproperlyConfigured(f"{name}: queue {queue!r} is not in JOB_QUEUES {settings.JOB_QUEUES}")
        if max_attempts < 1:
            raise ImproperlyConfigured(f"{name}: max_attempts must be at least 1")
        self.body = body
        self.name = name
        self.queue = queue
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.retry_on = retry_on
        self.lease = lease
        self.__doc__ = body.__doc__
        self.celery_task = shared_task(
            name=name,
            bind=True,
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
            **celery_options,
        )(self._message_handler())

    def _message_handler(self) -> Callable[[Any, int], Any]:
        def run_job(task, job_id: int) -> str | None:
            state = execution.run(
                job_id,
                self.body,
                task_id=task.request.id,
                hostname=task.request.hostname or "",
                retry_on=self.retry_on,
                lease=self.lease or settings.JOB_LEASE,
            )
            return None if state is None else str(state)

        run_job.__module__ = self.body.__module__
        run_job.__qualname__ = run_job.__name__ = self.body.__name__
        run_job.__doc__ = self.body.__doc__
        return run_job

    def enqueue(self, *args: Any, **kwargs: Any) -> Job:
        """Run as soon as a worker is free."""
        return self.enqueue_with(args=args, kwargs=kwargs)

    def enqueue_with(
        self,
        *,
        args: list[Any] | tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        eta: datetime | None = None,
        delay: timedelta | None = None,
        target: models.Model | None = None,
        unique_key: str | None = None,
        max_attempts: int | None = None,
        retry_delay: timedelta | None = None,
        label: str = "",
    ) -> Job:
        """Run at ``eta``, or after ``delay``, or now; returns the job, which is also its handle."""
        return services.job_enqueue(
            **self.request(args=args, kwargs=kwargs, eta=eta, delay=delay, target=target, unique_key=unique_key,
                            max_attempts=max_attempts, retry_delay=retry_delay, label=label)
        )  # fmt: skip

    def enqueue_many(self, calls: list[dict[str, Any]]) -> list[Job]:
        """``enqueue_with(**call)`` for each call, the jobs and their events written in one INSERT each."""
        return services.jobs_enqueue([self.request(**call) for call in calls])

    def request(
        self,
        *,
        args: list[Any] | tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        eta: datetime | None = None,
        delay: timedelta | None = None,
        target: models.Model | None = None,
        unique_key: str | None = None,
        max_attempts: int | None = None,
        retry_delay: timedelta | None = None,
        label: str = "",
    ) -> dict[str, Any]:
        """``enqueue_with``'s arguments as ``scheduler.services.jobs_enqueue`` takes them: for jobs of several
        tasks enqueued in one batch."""
        if eta is not None and delay is not None:
            raise ValueError("give eta or delay, not both")
        if delay is not None:
            eta = timezone.now() + delay
        return {
            "task_name": self.name, "queue": self.queue, "args": args, "kwargs": kwargs, "eta": eta,
            "max_attempts": max_attempts or self.max_attempts, "retry_delay": retry_delay or self.retry_delay,
            "target": target, "unique_key": unique_key, "label": label,
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"<tracked task {self.name} on {self.queue}>"


def tracked_task(
    *,
    name: str | None = None,
    queue: str = "default",
    max_attempts: int = 1,
    retry_delay: timedelta | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
    lease: timedelta | None = None,
    **celery_options: Any,
) -> Callable[[Callable[..., Any]], TrackedTask]:
    """Make ``body(job, *args, **kwargs)`` a tracked task.

    ``retry_on`` names the exception types that a later attempt may cure (``RetryLater``, soft time
    limits and SIGTERM always are); anything else fails the job at once. ``celery_options`` go to the
    Celery task (``time_limit``, ``soft_time_limit``, ``rate_limit``...).
    """

    def decorate(body: Callable[..., Any]) -> TrackedTask:
        task_name = name or f"{body.__module__}.{body.__name__}"
        if task_name in registry:
            raise ImproperlyConfigured(f"a tracked task named {task_name!r} exists already")
        registry[task_name] = TrackedTask(
            body,
            name=task_name,
            queue=queue,
            max_attempts=max_attempts,
            retry_delay=retry_delay,
            retry_on=retry_on,
            lease=lease,
            celery_options=celery_options,
        )
        return registry[task_name]

    return decorate
