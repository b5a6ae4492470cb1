"""The one place where a job changes state: named changes, single and bulk, each with its event.

No module outside this package writes ``Job.state`` (a test reads the source to keep it so). Each change is a
conditional UPDATE (``WHERE id = ? AND state IN (...)``, plus the attempt's task id where an attempt
owns the job) and an event in the job's timeline, in one transaction. Asking for a move the lifecycle
does not allow raises ``IllegalTransition`` (a bug); finding the row in another state than expected
returns ``False`` (a race that someone else won, e.g. a cancel before a claim).

Changes: ``claim``; an attempt's outcome ``succeed``, ``need_attention``, ``abort``, ``retry``, ``fail``
(``retry_policy`` decides between the last two, for the worker and for the sweep's ``rescue``);
``cancel`` and ``cancel_all``; publishing's ``mark_published``, ``mark_new_published``, ``mark_unpublished``;
``requeue`` (another attempt: an operator's, or an aborted job's owner's) and an operator's ``settle``. The
moves and their statement are in ``changes``, an attempt's in ``attempts``, publishing's in ``marks``,
cancels and operators' in ``operators``.
"""

from scheduler.lifecycle.attempts import abort, claim, fail_attempt, need_attention, rescue, succeed
from scheduler.lifecycle.changes import (
    TRANSITIONS,
    IllegalTransition,
    RowsUpdate,
    check_transition,
    record_event,
    transition,
)
from scheduler.lifecycle.marks import mark_new_published, mark_published, mark_unpublished
from scheduler.lifecycle.operators import cancel, cancel_all, requeue, settle

__all__ = [
    "TRANSITIONS",
    "IllegalTransition",
    "RowsUpdate",
    "abort",
    "cancel",
    "cancel_all",
    "check_transition",
    "claim",
    "fail_attempt",
    "mark_new_published",
    "mark_published",
    "mark_unpublished",
    "need_attention",
    "record_event",
    "requeue",
    "rescue",
    "settle",
    "succeed",
    "transition",
]
