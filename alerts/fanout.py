"""Fan-out: an occurrence's recipients on a channel shared among several delivery jobs.

One job per channel sends to its recipients one after another: with a provider answering in 250 ms, a
reminder to 10,000 people would take 42 minutes in one job while the other worker threads wait. An
occurrence with more than ``ALERT_RECIPIENTS_PER_JOB`` recipients is planned as ``n`` jobs instead, and
job ``i`` of ``n`` sends to the recipients whose contact id is ``i`` modulo ``n``:

- every recipient falls in exactly one share, whoever is added or removed between planning and sending
  (a share is a rule, not a list taken at planning time);
- each job is small enough to retry, cancel and show on its own, and the deliveries' own uniqueness
  (occurrence, contact, channel) still guards against a second message.

Escalation steps are not shared out: a step notifies an on-call list, not a crowd.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from django.conf import settings


@dataclass(frozen=True)
class Share:
    """Share ``index`` (from 0) of ``count``: the recipients whose contact id is ``index`` modulo ``count``."""

    index: int = 0
    count: int = 1

    def __bool__(self) -> bool:
        return self.count > 1

    @property
    def job_kwargs(self) -> dict[str, int]:
        return {"share": self.index, "shares": self.count} if self else {}

    @property
    def key_suffix(self) -> str:
        return f":share:{self.index + 1}:of:{self.count}" if self else ""

    @property
    def label(self) -> str:
        return f"share {self.index + 1} of {self.count}" if self else ""


WHOLE = Share()


def occurrence_shares(recipients: int) -> list[Share]:
    """The shares of an occurrence with ``recipients`` recipients on a channel: ``[WHOLE]`` up to the limit."""
    count = max(1, ceil(recipients / settings.ALERT_RECIPIENTS_PER_JOB))
    return [Share(index, count) for index in range(count)] if count > 1 else [WHOLE]
