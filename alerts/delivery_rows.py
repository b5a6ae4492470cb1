"""The delivery job's read and its delivery row's INSERT, written out once instead of compiled by the ORM on
every delivery (each compile cost more CPU than the database's work for the statement). Same rows, same
order, same instances (with the occurrence's alert cached, as ``select_related`` leaves it) as the
querysets they replace, and one round trip for the occurrence, its alert and its recipients. Also the
conditional write of a claimed delivery's outcome, which the delivery and the provider lookup share."""

from __future__ import annotations

import functools

from django.db import connection
from django.utils import timezone

from alerts.fanout import Share
from alerts.models import Alert, Contact, Delivery, DeliveryState, Occurrence
from scheduler.statements import columns, from_row, insert_params, insert_sql


def occurrence_with_recipients(
    occurrence_id: int, recipients_of: Share | None
) -> tuple[Occurrence | None, list[Contact]]:
    """The occurrence with its alert (cached on it, as ``select_related`` leaves it), and the alert's
    recipients in share ``recipients_of`` in name order (``share.of(alert.recipients.all())``; none read if
    it is ``None``), in one statement; ``(None, [])`` if the occurrence no longer exists."""
    with connection.cursor() as cursor:
        if recipients_of is None:
            cursor.execute(_occurrence_sql(connection.alias, join=""), [occurrence_id])
        elif recipients_of:
            cursor.execute(_occurrence_sql(connection.alias, join=_SHARE_JOIN),
                           [recipients_of.count, recipients_of.index, occurrence_id])  # fmt: skip
        else:
            cursor.execute(_occurrence_sql(connection.alias, join=_RECIPIENTS_JOIN), [occurrence_id])
        rows = cursor.fetchall()
    return _occurrence_from(rows, with_recipients=recipients_of is not None)


def occurrence_with_recipient(occurrence_id: int, contact_id: int) -> tuple[Occurrence | None, list[Contact]]:
    """As ``occurrence_with_recipients`` for a job of one contact (a fallback, a delivery after quiet hours):
    the contact alone if it is still one of the alert's recipients, else none. Read by its id rather than
    picked from all of them: 10,000 recipients in quiet hours are 10,000 such jobs at the hours' end."""
    with connection.cursor() as cursor:
        cursor.execute(_occurrence_sql(connection.alias, join=_RECIPIENT_JOIN), [contact_id, occurrence_id])
        rows = cursor.fetchall()
    return _occurrence_from(rows, with_recipients=True)


def _occurrence_from(rows: list[tuple], *, with_recipients: bool) -> tuple[Occurrence | None, list[Contact]]:
    if not rows:
        return None, []
    occurrence_end = len(Occurrence._meta.concrete_fields)
    alert_end = occurrence_end + len(Alert._meta.concrete_fields)
    occurrence = from_row(Occurrence, rows[0][:occurrence_end])
    Occurrence.alert.field.set_cached_value(occurrence, from_row(Alert, rows[0][occurrence_end:alert_end]))
    if not with_recipients:
        return occurrence, []
    # Without recipients (in an empty share, or the one contact no longer one) the one row's contact columns
    # are NULL.
    return occurrence, [from_row(Contact, row[alert_end:]) for row in rows if row[alert_end] is not None]


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


_RECIPIENTS_JOIN = "LEFT JOIN ({through} r INNER JOIN {contact} c ON c.id = r.contact_id) ON r.alert_id = a.id"
# The through table's unique (alert, contact) index finds the one row.
_RECIPIENT_JOIN = (
    "LEFT JOIN ({through} r INNER JOIN {contact} c ON c.id = r.contact_id) ON r.alert_id = a.id AND r.contact_id = %s"
)
_SHARE_JOIN = (
    "LEFT JOIN ({through} r INNER JOIN {contact} c ON c.id = r.contact_id AND c.id %% %s = %s) ON r.alert_id = a.id"
)


@functools.cache
def _occurrence_sql(alias: str, *, join: str) -> str:
    selected = f"{columns(Occurrence, alias, 'o')}, {columns(Alert, alias, 'a')}"
    if join:
        selected += f", {columns(Contact, alias, 'c')}"
        join = join.format(through=Alert.recipients.through._meta.db_table, contact=Contact._meta.db_table)
    tables = f"{Occurrence._meta.db_table} o INNER JOIN {Alert._meta.db_table} a ON a.id = o.alert_id {join}"
    return f"SELECT {selected} FROM {tables} WHERE o.id = %s" + (" ORDER BY c.name" if join else "")


def while_claimed(delivery: Delivery) -> dict[str, object]:
    """The delivery's row while this attempt's claim holds, as filters: an outcome is recorded only over it."""
    return {"pk": delivery.pk, "state": DeliveryState.SENDING}


def record(delivery: Delivery, state: DeliveryState, **values: object) -> None:
    Delivery.objects.filter(**while_claimed(delivery)).update(state=state, modified_at=timezone.now(), **values)
