"""What the lifecycle's hand-assembled PostgreSQL statements are made of: Django's compiled UPDATEs, and a
job read back from a ``RETURNING`` row. Nothing here runs a statement or changes a job's state."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection, connections
from django.db.models import QuerySet, sql

from scheduler.models import Job

_JOB_ATTNAMES = [field.attname for field in Job._meta.concrete_fields]


def update_sql(rows: QuerySet, values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE that ``rows.update(**values)`` would run, compiled but not run."""
    query = rows.query.chain(sql.UpdateQuery)
    query.add_update_values(values)
    return query.get_compiler(rows.db).as_sql()


@functools.cache
def job_columns(alias: str) -> str:
    """The job table's columns in the model's field order, for a ``RETURNING`` that ``job_from_row`` reads."""
    return ", ".join(connections[alias].ops.quote_name(field.column) for field in Job._meta.concrete_fields)


def job_from_row(row: tuple[Any, ...]) -> Job:
    """The job from a row of ``job_columns()``, its values converted as a queryset would (JSON, times):
    what ``Job.objects.raw`` does, without its work of matching columns to fields on every call."""
    values = list(row)
    for i, converters, column in _row_converters(connection.alias):
        for convert in converters:
            values[i] = convert(values[i], column, connection)
    return Job.from_db(connection.alias, _JOB_ATTNAMES, values)


@functools.cache
def _row_converters(alias: str) -> list[tuple[int, list[Any], Any]]:
    found = []
    for i, field in enumerate(Job._meta.concrete_fields):
        column = field.get_col(Job._meta.db_table)
        converters = connections[alias].ops.get_db_converters(column) + field.get_db_converters(connections[alias])
        if converters:
            found.append((i, converters, column))
    return found
