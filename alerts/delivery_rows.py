"""The delivery job's reads and its delivery row's INSERT, written out once instead of compiled by the ORM on
every delivery (each compile cost more CPU than the database's work for the statement). Same rows, same
order, same instances (with the occurrence's alert cached, as ``select_related`` leaves it) as the
querysets they replace."""

from __future__ import annotations

import functools

from django.db import connection

from alerts.fanout import Share
from alerts.models import Alert, Contact, Delivery, Occurrence
from scheduler.statements import columns, from_row, insert_params, insert_sql


def occurrence_with_alert(occurrence_id: int) -> Occurrence | None:
    """``Occurrence.objects.select_related("alert").filter(pk=occurrence_id).first()``, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(_occurrence_sql(connection.alias), [occurrence_id])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(Occurrence._meta.concrete_fields)
    occurrence = from_row(Occurrence, row[:split])
    Occurrence.alert.field.set_cached_value(occurrence, from_row(Alert, row[split:]))
    return occurrence


def recipients(alert: Alert, share: Share) -> list[Contact]:
    """``share.of(alert.recipients.all())``: the alert's recipients in ``share``, in name order."""
    with connection.cursor() as cursor:
        if share:
            cursor.execute(_recipients_sql(connection.alias, shared=True), [alert.pk, share.count, share.index])
        else:
            cursor.execute(_recipients_sql(connection.alias, shared=False), [alert.pk])
        return [from_row(Contact, row) for row in cursor.fetchall()]


def insert_unless_exists(delivery: Delivery) -> bool:
    """Insert the delivery row; ``False`` (and nothing written) if its occurrence, contact, channel and step
    have one already. No savepoint needed inside a transaction: the INSERT does not fail."""
    with connection.cursor() as cursor:
        cursor.execute(insert_sql(Delivery, connection.alias), insert_params(delivery))
        row = cursor.fetchone()
    if row is None:
        return False
    delivery.pk = row[0]
    delivery._state.adding = False
    return True


@functools.cache
def _occurrence_sql(alias: str) -> str:
    return (
        f"SELECT {columns(Occurrence, alias, 'o')}, {columns(Alert, alias, 'a')} "
        f"FROM {Occurrence._meta.db_table} o INNER JOIN {Alert._meta.db_table} a ON a.id = o.alert_id WHERE o.id = %s"
    )


@functools.cache
def _recipients_sql(alias: str, *, shared: bool) -> str:
    through = Alert.recipients.through._meta.db_table
    share = " AND c.id %% %s = %s" if shared else ""
    return (
        f"SELECT {columns(Contact, alias, 'c')} FROM {Contact._meta.db_table} c "
        f"INNER JOIN {through} r ON r.contact_id = c.id WHERE r.alert_id = %s{share} ORDER BY c.name"
    )
