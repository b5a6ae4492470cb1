"""What hand-assembled statements are made of: Django's compiled UPDATEs, a row's INSERT built once per
model, and model instances read back from rows (a ``RETURNING``, a written-out SELECT). For the statements
on the path of every job (enqueue, claim, outcome, the delivery's reads), where the ORM spent longer
building a statement than the database took to run it. Nothing here runs a statement."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection, connections, models
from django.db.models import QuerySet, sql


def update_sql(rows: QuerySet, values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE that ``rows.update(**values)`` would run, compiled but not run."""
    query = rows.query.chain(sql.UpdateQuery)
    query.add_update_values(values)
    return query.get_compiler(rows.db).as_sql()


def plain_update_sql(
    model: type[models.Model], filters: dict[str, Any], values: dict[str, Any]
) -> tuple[str, list[Any]] | None:
    """``model.objects.filter(**filters).update(**values)``'s statement, written without compiling a
    queryset, where every filter is an equality or a non-empty ``__in`` and every value a plain one (no
    expression); ``None`` otherwise, for ``update_sql`` to compile."""
    ops = connection.ops
    assignments, conditions, params, where_params = [], [], [], []
    for name, value in values.items():
        if _is_expression(value):
            return None
        field = model._meta.get_field(name)
        if hasattr(field, "get_placeholder"):  # a binary or range field needs its own placeholder
            return None
        if value is None:
            assignments.append(f"{ops.quote_name(field.column)} = NULL")
        else:
            assignments.append(f"{ops.quote_name(field.column)} = %s")
            params.append(field.get_db_prep_save(value, connection))
    for key, value in filters.items():
        name, _, lookup = key.partition("__")
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        if lookup == "in" and value:
            conditions.append(f"{ops.quote_name(field.column)} IN ({', '.join(['%s'] * len(value))})")
            where_params += [field.get_db_prep_value(item, connection) for item in value]
        elif not lookup and value is not None and not isinstance(value, models.Model) and not _is_expression(value):
            conditions.append(f"{ops.quote_name(field.column)} = %s")
            where_params.append(field.get_db_prep_value(value, connection))
        else:
            return None
    statement = (f"UPDATE {ops.quote_name(model._meta.db_table)} SET {', '.join(assignments)} "
                 f"WHERE {' AND '.join(conditions)}")  # fmt: skip
    return statement, [*params, *where_params]


def update_each_sql(model: type[models.Model], name: str, values: dict[Any, Any]) -> tuple[str, list[Any]]:
    """PostgreSQL: one UPDATE giving field ``name`` its own value on each row, ``values`` by primary key:
    ``bulk_update``'s statement, joined to a list of rows instead of a ``CASE`` per row, and without the
    expressions it resolves for every object."""
    ops, field, pk = connection.ops, model._meta.get_field(name), model._meta.pk
    table, column = ops.quote_name(model._meta.db_table), ops.quote_name(field.column)
    # The casts type the list's columns, which a list holding only NULLs in a column would leave as text.
    rows = ", ".join([f"(%s::{pk.db_type(connection)}, %s::{field.db_type(connection)})"] * len(values))
    params = [value for key, item in values.items() for value in (key, field.get_db_prep_save(item, connection))]
    statement = (f"UPDATE {table} SET {column} = each.value FROM (VALUES {rows}) AS each (key, value) "
                 f"WHERE {table}.{ops.quote_name(pk.column)} = each.key")  # fmt: skip
    return statement, params


def _is_expression(value: Any) -> bool:
    return hasattr(value, "resolve_expression")


@functools.cache
def insert_sql(model: type[models.Model], alias: str) -> str:
    """One row's ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` (no row back if a unique constraint
    holds it already), its values from ``insert_params``: what Django compiles for ``bulk_create(...,
    ignore_conflicts=True)``, built once."""
    ops = connections[alias].ops
    fields = _inserted_fields(model)
    columns = ", ".join(ops.quote_name(field.column) for field in fields)
    values = ", ".join(["%s"] * len(fields))
    return (f"INSERT INTO {ops.quote_name(model._meta.db_table)} ({columns}) VALUES ({values}) "
            f"ON CONFLICT DO NOTHING RETURNING {ops.quote_name(model._meta.pk.column)}")  # fmt: skip


def insert_params(instance: models.Model) -> list[Any]:
    """The instance's values for ``insert_sql``, prepared as the ORM's INSERT prepares them."""
    fields = _inserted_fields(type(instance))
    return [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]


@functools.cache
def _inserted_fields(model: type[models.Model]) -> list[models.Field]:
    return [field for field in model._meta.local_concrete_fields if not field.primary_key]


@functools.cache
def columns(model: type[models.Model], alias: str, table: str = "") -> str:
    """The model's columns in its field order (qualified by ``table`` if given), for a row that
    ``from_row`` reads."""
    ops = connections[alias].ops
    prefix = f"{ops.quote_name(table)}." if table else ""
    return ", ".join(prefix + ops.quote_name(field.column) for field in model._meta.concrete_fields)


def from_row(model: type[models.Model], row: tuple[Any, ...] | list[Any]) -> models.Model:
    """The instance from a row of ``columns(model)``, its values converted as a queryset would (JSON,
    times): what ``Model.objects.raw`` does, without its work of matching columns to fields on every call."""
    values = list(row)
    for i, converters, column in _row_converters(model, connection.alias):
        for convert in converters:
            values[i] = convert(values[i], column, connection)
    return model.from_db(connection.alias, _attnames(model), values)


@functools.cache
def _attnames(model: type[models.Model]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


@functools.cache
def _row_converters(model: type[models.Model], alias: str) -> list[tuple[int, list[Any], Any]]:
    found = []
    for i, field in enumerate(model._meta.concrete_fields):
        column = field.get_col(model._meta.db_table)
        converters = connections[alias].ops.get_db_converters(column) + field.get_db_converters(connections[alias])
        if converters:
            found.append((i, converters, column))
    return found
