"""Writing audit rows. Called by every service *inside* its transaction, never from
signals, so a rolled-back write leaves no audit row and a committed one always has one."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from storyhub.fastinsert import insert_rows

from .context import current
from .models import AuditLog

_PLAIN = (str, int, float, bool, type(None))


def _jsonable(value: Any) -> Any:
    if type(value) in _PLAIN:  # the common case, first (bulk writes build many rows)
        return value
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    entity_type: str | None = None,
    entity_id: str | int | None = None,
    changes: dict[str, tuple[Any, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one audit row for `action` on `target` by `actor` (a user, or None for
    system / CLI writes). `changes` maps field → (old, new)."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the write it records.")
    row = audit_row(
        actor=actor,
        action=action,
        target=target,
        entity_type=entity_type,
        entity_id=entity_id,
        changes=changes,
        extra=extra,
    )
    row.save(force_insert=True)
    return row


def audit_record_many(rows: list[AuditLog]) -> None:
    """Append many rows built with `audit_row` in one batched insert (bulk writes such as
    stories.bulk). Same rule as audit_record: inside the write's transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record_many must run inside the transaction of the writes it records.")
    columns = ("action", "entity_type", "entity_id", "user_id", "user_repr", "timestamp", "details")
    insert_rows(AuditLog, columns, [tuple(getattr(row, name) for name in columns) for row in rows])


def audit_row(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    entity_type: str | None = None,
    entity_id: str | int | None = None,
    changes: dict[str, tuple[Any, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> AuditLog:
    """An unsaved audit row, with the write context (source, request id, API key)."""
    ctx = current()
    details: dict[str, Any] = {"source": ctx.source}
    if ctx.request_id:
        details["request_id"] = ctx.request_id
    if ctx.api_key_id is not None:
        details["api_key_id"] = ctx.api_key_id
    if changes:
        details["changes"] = {
            field: {"old": _jsonable(old), "new": _jsonable(new)} for field, (old, new) in changes.items()
        }
    if extra:
        details.update(_jsonable(extra))
    if target is not None:
        entity_type = entity_type or target._meta.model_name
        entity_id = target.pk if entity_id is None else entity_id
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditLog(
        action=action,
        entity_type=entity_type or "",
        entity_id="" if entity_id is None else str(entity_id),
        user=user,
        user_repr=user.get_username() if user else "",
        details=details,
    )


def audit_purge(*, actor, before: datetime, dry_run: bool = False) -> dict[str, Any]:
    """Retention: delete the audit rows older than `before` and record that in a new
    audit row ("audit.purged") in the same transaction. This is the one deletion the
    append-only trigger on PostgreSQL lets through (audit migration 0002): it honours the
    transaction-local `storyhub.audit_purge` flag set here. With `dry_run` nothing
    changes. Returns {"before", "matched", "deleted", "oldest", "newest", "audit_id"}."""
    if before > timezone.now():
        raise ValidationError({"before": ["Give a moment in the past; the purge keeps every newer row."]})
    with transaction.atomic():
        found = AuditLog.objects.filter(timestamp__lt=before).aggregate(
            matched=Count("id"), oldest=Min("timestamp"), newest=Max("timestamp")
        )
        result: dict[str, Any] = {"before": before, "deleted": 0, "audit_id": None, **found}
        if dry_run or not found["matched"]:
            return result
        table = connection.ops.quote_name(AuditLog._meta.db_table)
        column = connection.ops.quote_name("timestamp")
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT set_config('storyhub.audit_purge', 'on', true)")
            # The ORM refuses deletes on AuditLog on purpose; this is the sanctioned path.
            cursor.execute(
                f"DELETE FROM {table} WHERE {column} < %s",  # noqa: S608 (quoted identifiers)
                [connection.ops.adapt_datetimefield_value(before)],
            )
            result["deleted"] = cursor.rowcount
            if connection.vendor == "postgresql":
                # The guard is back on for the rest of the transaction.
                cursor.execute("SELECT set_config('storyhub.audit_purge', 'off', true)")
        row = audit_record(
            actor=actor,
            action="audit.purged",
            entity_type="audit_log",
            extra={
                "before": before,
                "deleted": result["deleted"],
                "oldest": found["oldest"],
                "newest": found["newest"],
            },
        )
        result["audit_id"] = row.pk
    return result
