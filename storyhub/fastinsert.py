"""Fast batched inserts for the bulk services (stories.bulk, audit_record_many).

On PostgreSQL rows go in with COPY (psycopg's C copy path): Django's bulk_create spends
most of its time adapting values in Python. New primary keys are taken from the table's
identity sequence first, in one query, when the caller needs them. Elsewhere (SQLite)
it is Django's bulk_create. Callers validate before inserting; this only writes.

`inserting()` overlaps the database's work with the caller's: the COPY's rows are
queued to the server by a writer thread, and the caller's block runs while PostgreSQL
stores and indexes them; the COPY's end (and its error, if any) is awaited when the
block exits. With `immediate_checks()` around the inserts, the foreign keys of those rows
are checked at the end of each COPY (so inside that overlap) instead of all together at
COMMIT, where nothing else can run.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
from django.db import connection, models
from psycopg.copy import QueuedLibpqWriter


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
    ids = reserve_ids(model, len(rows)) if with_ids and connection.vendor == "postgresql" else None
    with inserting(model, columns, rows, ids=ids) as written:
        pass
    return written if with_ids else None


def reserve_ids(model: type[models.Model], count: int) -> list[int] | None:
    """`count` new primary keys of `model` (PostgreSQL: from its identity sequence, in one
    query), for `inserting(..., ids=…)`; None where the database gives ids only as it
    inserts (SQLite)."""
    if connection.vendor != "postgresql":
        return None
    if count == 0:
        return []
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


@contextlib.contextmanager
def inserting(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    ids: list[int] | None = None,
) -> Iterator[list[int] | None]:
    """Insert `rows` like insert_rows, running the with-block while the database writes
    them (PostgreSQL); yields the rows' primary keys (`ids` as given, reserved with
    reserve_ids; on SQLite the ids bulk_create returns, else None). The block must not
    use the database: the COPY is still open. Its errors (IntegrityError, …) are raised
    when the block exits. `rows` may be an iterator (made while they are sent)."""
    if isinstance(rows, Sequence) and not rows:
        yield [] if ids is not None else None
        return
    if connection.vendor != "postgresql":
        objs = [model(**dict(zip(columns, row, strict=True))) for row in rows]
        model._default_manager.bulk_create(objs, batch_size=500)
        yield [obj.pk for obj in objs] if objs[0].pk is not None else None
        return
    meta = model._meta
    json_positions = [
        i for i, name in enumerate(columns) if isinstance(meta.get_field(_field_name(meta, name)), models.JSONField)
    ]
    names = [meta.get_field(_field_name(meta, name)).column for name in columns]
    if ids is not None:
        names = [meta.pk.column, *names]
    table = connection.ops.quote_name(meta.db_table)
    column_sql = ", ".join(connection.ops.quote_name(n) for n in names)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        # wrap_database_errors: psycopg's errors become Django's (IntegrityError, …).
        with (
            connection.wrap_database_errors,
            raw.copy(  # noqa: S608 (quoted identifiers)
                f"COPY {table} ({column_sql}) FROM STDIN", writer=QueuedLibpqWriter(raw)
            ) as copy,
        ):
            written = 0
            for row in rows:
                values = list(row)
                for i in json_positions:
                    values[i] = _json_text(values[i])
                if ids is not None:
                    values.insert(0, ids[written])
                copy.write_row(values)
                written += 1
            if ids is not None and written != len(ids):
                raise ValueError(f"{len(ids)} ids reserved for {written} rows")
            yield ids


@contextlib.contextmanager
def immediate_checks() -> Iterator[None]:
    """Inside the block, foreign keys are checked at the end of each statement, not at
    COMMIT (PostgreSQL; Django declares them DEFERRABLE INITIALLY DEFERRED, and none of
    ours is initially immediate, so DEFERRED afterwards restores the transaction's mode).
    Rows must then be inserted after the rows they refer to. Use it inside a savepoint
    or transaction that an error in the block rolls back. Elsewhere a no-op."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield
    # Not after an error: the savepoint or transaction it rolls back restores the mode.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _field_name(meta, attname: str) -> str:
    for field in meta.concrete_fields:
        if field.attname == attname:
            return field.name
    return attname
