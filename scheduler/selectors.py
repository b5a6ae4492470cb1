"""Reads on jobs: the job pages' list (filters, keyset paging), the header's counters, one job's page.

Everything here stays cheap on a table of millions of jobs:

- The list is paged by keyset on ``(modified_at, id)``, the table's order: a page is one query that walks an
  index from the cursor and stops after ``PAGE_SIZE + 1`` rows, at any depth. There is no ``COUNT(*)`` and
  no ``OFFSET``. Each filter has an index that begins with it and continues in that order (see
  ``Job.Meta.indexes``).
- The counters count at most ``COUNTER_CAP + 1`` index entries each (``COUNT(*)`` over a ``LIMIT``-ed
  subquery, shown as "999+" beyond the cap), all three in one query, on the two partial indexes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from celery import current_app
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.db.models import Count, Q, QuerySet

from scheduler.models import ACTIVE_STATES, FINAL_STATES, UNSEEN_RESULT_STATES, WAITING_STATES, Job, State

PAGE_SIZE = 50
COUNTER_CAP = 999

# The list's state filter: each state, plus two groups.
STATE_GROUPS: dict[str, frozenset[str]] = {
    "active": frozenset(ACTIVE_STATES),
    "waiting": frozenset(WAITING_STATES),
    "final": frozenset(FINAL_STATES),
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def jobs_for_target(target: models.Model, *, states: Iterable[str] | None = None) -> QuerySet[Job]:
    """The jobs enqueued with ``target=...`` (e.g. an alert's or an occurrence's), optionally in ``states``."""
    return jobs_for_targets(type(target), [target.pk], states=states)


def jobs_for_targets(
    model: type[models.Model], ids: Iterable[object], *, states: Iterable[str] | None = None
) -> QuerySet[Job]:
    """The jobs of several targets of one model (served by the ``job_target`` index)."""
    jobs = Job.objects.filter(
        target_type=ContentType.objects.get_for_model(model), target_id__in=[str(pk) for pk in ids]
    )
    return jobs if states is None else jobs.filter(state__in=sorted(states))


def job_counts_by_state() -> dict[str, int]:
    counts = dict(Job.objects.order_by().values_list("state").annotate(n=Count("id")))
    return {state.value: counts.get(state.value, 0) for state in State}


# --- Counters --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobCounters:
    """Active (waiting or running) jobs, and successes and failures nobody has looked at yet."""

    active: int
    succeeded: int
    failed: int
    attention: int = 0
    cap: int = COUNTER_CAP

    def shown(self, value: int) -> str:
        return f"{self.cap}+" if value > self.cap else str(value)

    @property
    def active_shown(self) -> str:
        return self.shown(self.active)

    @property
    def succeeded_shown(self) -> str:
        return self.shown(self.succeeded)

    @property
    def failed_shown(self) -> str:
        return self.shown(self.failed)

    @property
    def attention_shown(self) -> str:
        return self.shown(self.attention)


def _active_jobs() -> QuerySet[Job]:
    return Job.objects.filter(state__in=sorted(ACTIVE_STATES))


def _unseen_results(state: State) -> QuerySet[Job]:
    return Job.objects.filter(state=state, seen=False)


def job_counters(*, cap: int = COUNTER_CAP) -> JobCounters:
    """The header's three counters in one query, each counting at most ``cap + 1`` rows.

    ``SELECT (SELECT COUNT(*) FROM (SELECT id FROM job WHERE <filter> LIMIT cap+1)), ...``: each subquery
    reads at most ``cap + 1`` entries of a partial index (``job_active_recent``, ``job_unseen_recent``),
    however many jobs match. The ORM cannot count a sliced subquery inside a select list, so the three
    compiled querysets are put together here.
    """
    parts, params = [], []
    # Jobs that need attention count until an operator resends or settles them, seen or not; they use
    # the (state, modified_at) index.
    needing_attention = Job.objects.filter(state=State.ATTENTION)
    for queryset in (
        _active_jobs(),
        _unseen_results(State.SUCCEEDED),
        _unseen_results(State.FAILED),
        needing_attention,
    ):
        sql, sql_params = queryset.order_by().values("id")[: cap + 1].query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS capped)")
        params.extend(sql_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        active, succeeded, failed, attention = cursor.fetchone()
    return JobCounters(active=active, succeeded=succeeded, failed=failed, attention=attention, cap=cap)


def jobs_active_count() -> int:
    """The exact number of waiting and running jobs: what "cancel all" is about to cancel.

    Exact, unlike the header's counters, because an operator confirms a destructive action on it; it reads
    only the partial index of active jobs, which holds only them.
    """
    return _active_jobs().count()


# --- The list --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """A position in the list's order ``(-modified_at, -id)``, written as ``<microseconds since 1970>.<id>``.

    Microseconds as an integer, not a float timestamp, so that the round trip is exact.
    """

    modified_at: datetime
    id: int

    @classmethod
    def of(cls, job: Job) -> Cursor:
        return cls(job.modified_at, job.pk)

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Raise ``ValueError`` unless ``text`` is a cursor written by ``str()``."""
        micros, _, job_id = text.partition(".")
        if not (micros.lstrip("-").isdigit() and job_id.isdigit()):
            raise ValueError(f"not a cursor: {text!r}")
        try:
            return cls(_EPOCH + int(micros) * _MICROSECOND, int(job_id))
        except OverflowError:
            raise ValueError(f"not a cursor: {text!r}") from None

    def __str__(self) -> str:
        return f"{(self.modified_at - _EPOCH) // _MICROSECOND}.{self.id}"


@dataclass(frozen=True)
class JobTarget:
    """The object a job is about (``Job.target``), as written in the URL: ``alerts.alert:12``."""

    content_type: ContentType
    object_id: str

    @classmethod
    def parse(cls, text: str) -> JobTarget:
        """Raise ``ValueError`` unless ``text`` is ``<app_label>.<model>:<pk>`` of an installed model."""
        model_path, _, object_id = text.partition(":")
        app_label, _, model = model_path.partition(".")
        if not (app_label and model and object_id):
            raise ValueError(f"not <app_label>.<model>:<pk>: {text!r}")
        try:
            content_type = ContentType.objects.get_by_natural_key(app_label, model.lower())
        except ContentType.DoesNotExist:
            raise ValueError(f"no such model: {model_path}") from None
        return cls(content_type, object_id)

    def __str__(self) -> str:
        return f"{self.content_type.app_label}.{self.content_type.model}:{self.object_id}"


@dataclass(frozen=True)
class JobFilters:
    state: str = ""  # a State, or a key of STATE_GROUPS
    task: str = ""
    target: JobTarget | None = None
    search: str = ""  # in the label (for alert jobs: the alert's name, channels and recipients)
    changed_from: date | None = None  # UTC days, inclusive, on modified_at (the list's order)
    changed_to: date | None = None
    unseen: bool = False  # only successes and failures nobody has looked at yet

    @property
    def any(self) -> bool:
        return self != JobFilters()


def jobs_filtered(filters: JobFilters) -> QuerySet[Job]:
    """Jobs matching ``filters``; each filter is served by an index in the list's order.

    The search is ``icontains`` on the label: operators look for a word of an alert's name, anywhere in it.
    It has no index of its own (a trigram index would cost every job update for a rarely used search): the
    query walks the recency index, or the index of the other filters, and stops once a page is full, so a
    common word is found at once and a rare one costs a scan, which the date range and the other filters
    bound.
    """
    jobs = Job.objects.all()
    if filters.state in STATE_GROUPS:
        jobs = jobs.filter(state__in=sorted(STATE_GROUPS[filters.state]))
    elif filters.state:
        jobs = jobs.filter(state=filters.state)
    if filters.unseen:
        jobs = jobs.filter(seen=False, state__in=sorted(UNSEEN_RESULT_STATES))
    if filters.task:
        jobs = jobs.filter(task_name=filters.task)
    if filters.target is not None:
        jobs = jobs.filter(target_type=filters.target.content_type, target_id=filters.target.object_id)
    if filters.search:
        jobs = jobs.filter(label__icontains=filters.search)
    if filters.changed_from is not None:
        jobs = jobs.filter(modified_at__gte=datetime.combine(filters.changed_from, time.min, tzinfo=UTC))
    # The last day of the calendar has no next day to stop before, and bounds nothing anyway.
    if filters.changed_to is not None and filters.changed_to < date.max:
        next_day = filters.changed_to + timedelta(days=1)
        jobs = jobs.filter(modified_at__lt=datetime.combine(next_day, time.min, tzinfo=UTC))
    return jobs


# The columns the list shows; args, kwargs, result, errors and the rest stay in the table.
LIST_COLUMNS = (
    "id",
    "task_name",
    "label",
    "state",
    "status_message",
    "attempts",
    "max_attempts",
    "eta",
    "started_at",
    "finished_at",
    "runtime",
    "modified_at",
    "seen",
)


@dataclass
class JobPage:
    jobs: list[Job]
    next_cursor: Cursor | None = None  # older jobs follow
    previous_cursor: Cursor | None = None  # newer jobs precede
    is_first: bool = True
    ids: list[int] = field(default_factory=list)

    @property
    def is_active(self) -> bool:
        return any(job.is_active for job in self.jobs)


def _older_than(cursor: Cursor) -> Q:
    # `modified_at <= t` first: a range condition the index scan starts from, where an OR alone would not
    # let every database use the index; the OR then settles the ties on modified_at.
    return Q(modified_at__lte=cursor.modified_at) & (Q(modified_at__lt=cursor.modified_at) | Q(id__lt=cursor.id))


def _newer_than(cursor: Cursor) -> Q:
    return Q(modified_at__gte=cursor.modified_at) & (Q(modified_at__gt=cursor.modified_at) | Q(id__gt=cursor.id))


def jobs_page(
    filters: JobFilters, *, after: Cursor | None = None, before: Cursor | None = None, size: int = PAGE_SIZE
) -> JobPage:
    """One page of the list, newest change first: after ``after`` (older jobs), before ``before`` (newer).

    One query (two when going back reaches the top: that page is shown as the first, full page).
    """
    jobs = jobs_filtered(filters).only(*LIST_COLUMNS)
    if before is not None:
        rows = list(jobs.filter(_newer_than(before)).order_by("modified_at", "id")[: size + 1])
        if len(rows) > size:
            page_jobs = rows[:size][::-1]
            return _page(page_jobs, previous=True, next_=True)
        after = None  # back at the top: show the first page, full
    if after is not None:
        rows = list(jobs.filter(_older_than(after)).order_by("-modified_at", "-id")[: size + 1])
        return _page(rows[:size], previous=True, next_=len(rows) > size)
    rows = list(jobs.order_by("-modified_at", "-id")[: size + 1])
    return _page(rows[:size], previous=False, next_=len(rows) > size)


def _page(jobs: list[Job], *, previous: bool, next_: bool) -> JobPage:
    return JobPage(
        jobs=jobs,
        next_cursor=Cursor.of(jobs[-1]) if next_ and jobs else None,
        previous_cursor=Cursor.of(jobs[0]) if previous and jobs else None,
        is_first=not previous,
        ids=[job.pk for job in jobs],
    )


@functools.cache
def task_names() -> list[str]:
    """The names of the tracked tasks this process knows, for the task filter's suggestions.

    From the registry rather than ``SELECT DISTINCT task_name``, which would read the whole table. The web
    process imports the apps' task modules here, as a worker does when it starts.
    """
    from scheduler.tracked import registry

    current_app.loader.import_default_modules()
    return sorted(registry)


# --- One job ---------------------------------------------------------------------------------------------


def job_for_page(job_id: int) -> Job:
    """The job with its timeline (one query each); raises ``Job.DoesNotExist``."""
    job = Job.objects.select_related("target_type").get(pk=job_id)
    job.timeline = list(job.events.order_by("at", "id"))
    return job


def jobs_by_ids(ids: list[int]) -> list[Job]:
    """The jobs of a bulk selection, in the list's order (the selection is at most a few pages)."""
    return list(Job.objects.filter(pk__in=ids).only(*LIST_COLUMNS).order_by("-modified_at", "-id"))
