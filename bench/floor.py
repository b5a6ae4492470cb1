"""The floor of tracking: a Celery task that makes only the writes a tracked delivery cannot do without.

A tracked delivery promises that its job is recorded before its message is published (nothing lost if
the publish or the broker fails), that it is claimed, durably, before the provider is called (a second
message or a crashed worker's redelivery never sends twice), and that its outcome is recorded. That is
three commits per message, whatever the code around them. ``bench.floor_sms`` makes exactly those three,
each one hand-written statement on a one-table row, around the same SMS call as ``bench.sms``: no ORM,
no events, no delivery row of its own, no abort checks. Its rate against the plain Celery way (one
task, one result row) shows whether a tracked delivery could reach that rate at all with one job per
message, or whether the three commits alone stay below it.
"""

from __future__ import annotations

from celery import shared_task
from django.db import connection

TABLE = "bench_floor_delivery"
_CREATE = f"""
    CREATE TABLE IF NOT EXISTS {TABLE} (
        id bigserial PRIMARY KEY, state text NOT NULL, task_id text NOT NULL DEFAULT '',
        provider_id text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now(),
        claimed_at timestamptz, finished_at timestamptz
    )"""
_RECORD = f"INSERT INTO {TABLE} (state) VALUES ('queued') RETURNING id"
_CLAIM = f"""
    UPDATE {TABLE} SET state = 'sending', task_id = %s, claimed_at = now() WHERE id = %s AND state = 'queued'"""
_OUTCOME = f"""
    UPDATE {TABLE} SET state = 'sent', provider_id = %s, finished_at = now() WHERE id = %s AND state = 'sending'"""


@shared_task(name="bench.floor_sms", bind=True, ignore_result=True, acks_late=True)
def floor_sms(task, row_id: int, to: str, body: str) -> None:
    from alerts.channels.sms import sms_channel

    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, [task.request.id, row_id])
        if cursor.rowcount == 0:
            return
        sent = sms_channel().send(to=to, body=body)
        cursor.execute(_OUTCOME, [sent.provider_id, row_id])


def run(ctx, count: int, *, label: str = "floor: three commits per SMS") -> float:
    """Record, publish and run ``count + 1`` floor tasks; return tasks per second until every SMS arrived."""
    from bench.data import PHONE
    from bench.throughput import sms_tasks

    queue = ctx.stack.queues["sms"]
    with connection.cursor() as cursor:
        cursor.execute(_CREATE)

        def record_and_publish(i: int) -> None:
            cursor.execute(_RECORD)
            row_id = cursor.fetchone()[0]
            floor_sms.apply_async(args=[row_id, PHONE.format(i % 100), f"Floor SMS {i}"], queue=queue,
                                  routing_key=queue)  # fmt: skip

        return sms_tasks(ctx, count, label=label, publish=record_and_publish, cpu_key="floor_cpu_ms")
