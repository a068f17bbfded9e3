"""Fast batched inserts for the bulk services (stories.bulk, audit_record_many).

On PostgreSQL rows go in with COPY (psycopg's C copy path): Django's bulk_create spends
most of its time adapting values in Python. New primary keys are taken from the table's
identity sequence first, in one query, when the caller needs them. Elsewhere (SQLite)
it is Django's bulk_create. Callers validate before inserting; this only writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from django.db import connection, models


def _json_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_json_default).decode()
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits (valid JSON, kept verbatim): the standard library writes it.
        return json.dumps(value, default=_json_default, ensure_ascii=False)


def insert_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]], *, with_ids: bool = False
) -> list[int] | None:
    """Insert `rows` (values for the fields' attnames in `columns`) into `model`'s table.
    With `with_ids`, returns the new primary keys in row order."""
    if not rows:
        return [] if with_ids else None
    if connection.vendor != "postgresql":
        objs = [model(**dict(zip(columns, row, strict=True))) for row in rows]
        model._default_manager.bulk_create(objs, batch_size=500)
        if with_ids and objs[0].pk is None:
            raise RuntimeError("this database does not return ids from bulk inserts")
        return [obj.pk for obj in objs] if with_ids else None
    meta = model._meta
    json_positions = [
        i for i, name in enumerate(columns) if isinstance(meta.get_field(_field_name(meta, name)), models.JSONField)
    ]
    table = connection.ops.quote_name(meta.db_table)
    pk_column = meta.pk.column
    ids: list[int] | None = None
    with connection.cursor() as cursor:
        if with_ids:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, pk_column, len(rows)],
            )
            ids = [row[0] for row in cursor.fetchall()]
        names = [meta.get_field(_field_name(meta, name)).column for name in columns]
        if with_ids:
            names = [pk_column, *names]
        column_sql = ", ".join(connection.ops.quote_name(n) for n in names)
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        # wrap_database_errors: psycopg's errors become Django's (IntegrityError, …).
        with (
            connection.wrap_database_errors,
            raw.copy(f"COPY {table} ({column_sql}) FROM STDIN") as copy,  # noqa: S608 (quoted identifiers)
        ):
            for n, row in enumerate(rows):
                values = list(row)
                for i in json_positions:
                    values[i] = _json_text(values[i])
                if ids is not None:
                    values.insert(0, ids[n])
                copy.write_row(values)
    return ids


def _field_name(meta, attname: str) -> str:
    for field in meta.concrete_fields:
        if field.attname == attname:
            return field.name
    return attname
