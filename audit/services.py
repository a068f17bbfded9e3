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

from storyhub.fastinsert import insert_rows, inserting, reserve_ids

from .context import current
from .events import AuditAction, EntityType, event_type_for, registered_action, registered_entity_type
from .models import AuditLog, OutboxEvent

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
    project_id: int | None = None,
) -> AuditLog:
    """Append one audit row for `action` on `target` by `actor` (a user, or None for
    system / CLI writes). `changes` maps field → (old, new). `action` and the entity type
    must be registered in audit.events (ValueError otherwise); the row's project comes
    from `target` (see `audit_row`) unless `project_id` is given."""
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
        project_id=project_id,
    )
    row.save(force_insert=True)
    event = outbox_event(row)
    if event is not None:
        event.save(force_insert=True)
    return row


def audit_record_many(rows: list[AuditLog]) -> None:
    """Append many rows built with `audit_row` in one batched insert (bulk writes such as
    stories.bulk), with their outbox events. Same rule as audit_record: inside the
    write's transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record_many must run inside the transaction of the writes it records.")
    if not rows:
        return
    columns = ("action", "entity_type", "entity_id", "project_id", "user_id", "user_repr", "timestamp", "details")
    values = [tuple(getattr(row, name) for name in columns) for row in rows]
    # The events are made while the database writes the audit rows (storyhub.fastinsert).
    with inserting(AuditLog, columns, values, ids=reserve_ids(AuditLog, len(rows))) as ids:
        if ids is None:
            raise RuntimeError("this database does not return ids from bulk inserts")
        for row, pk in zip(rows, ids, strict=True):
            row.pk = pk
        # The events' column values straight from the rows (no model instance per event).
        events = [
            tuple(event[name] for name in OUTBOX_COLUMNS) for event in map(outbox_values, rows) if event is not None
        ]
    insert_rows(OutboxEvent, OUTBOX_COLUMNS, events)


# The outbox row's columns (attnames), for batched inserts.
OUTBOX_COLUMNS = (
    "type",
    "audit_id",
    "occurred_at",
    "project_id",
    "linked_project_id",
    "entity_type",
    "entity_id",
    "actor_id",
    "actor_repr",
    "request_id",
    "data",
)


def outbox_event(row: AuditLog) -> OutboxEvent | None:
    """The unsaved outbox event of a (saved) audit row: the row's action names its type
    (audit.events.EVENT_TYPES); None for an action that publishes no event."""
    values = outbox_values(row)
    return None if values is None else OutboxEvent(**values)


def outbox_values(row: AuditLog) -> dict[str, Any] | None:
    """The outbox event's column values (OUTBOX_COLUMNS) for a saved audit row, or None
    for an action that publishes no event."""
    event_type = event_type_for(row.action)
    if event_type is None:
        return None
    details = row.details or {}
    return {
        "type": event_type,
        "audit_id": row.pk,
        "occurred_at": row.timestamp,
        "project_id": row.project_id,
        "linked_project_id": details.get("linked_project_id"),
        "entity_type": row.entity_type,
        "entity_id": row.entity_id,
        "actor_id": row.user_id,
        "actor_repr": row.user_repr,
        "request_id": details.get("request_id") or "",
        "data": details,
    }


def audit_row(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    entity_type: str | None = None,
    entity_id: str | int | None = None,
    changes: dict[str, tuple[Any, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    project_id: int | None = None,
) -> AuditLog:
    """An unsaved audit row, with the write context (source, request id, API key).

    The row is scoped by the immutable id of the project it concerns (never its slug,
    which a new project may take after a delete): `project_id` if given, else derived
    from `target` by `audit_scope`. A link between two projects also records the other
    side's id in details["linked_project_id"], so the readers of both see the row."""
    action = registered_action(action)
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
    linked_project_id = None
    if target is not None:
        entity_type = entity_type or target._meta.model_name
        entity_id = target.pk if entity_id is None else entity_id
        derived, linked_project_id = audit_scope(target)
        project_id = derived if project_id is None else project_id
    entity_type = registered_entity_type(entity_type or "")
    if linked_project_id is not None and linked_project_id != project_id:
        details["linked_project_id"] = linked_project_id
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditLog(
        action=action,
        entity_type=entity_type,
        entity_id="" if entity_id is None else str(entity_id),
        project_id=project_id,
        user=user,
        user_repr=user.get_username() if user else "",
        details=details,
    )


def audit_scope(target: models.Model) -> tuple[int | None, int | None]:
    """(project id, linked project id) of an audit target: a project is its own; a story
    dependency belongs to the project of its dependent story (`story`) and links the
    project of `depends_on`; a project dependency belongs to `from_project` and links
    `to_project`; anything with a `project_id` (story, status, backlog, epic, member)
    belongs to that project; anything else (users, keys, sessions) to none."""
    label = target._meta.label_lower
    link: Any = target  # told apart by label: the audit app does not import the stories models
    if label == "stories.project":
        return target.pk, None
    if label == "stories.storydependency":
        return link.story.project_id, link.depends_on.project_id
    if label == "stories.projectdependency":
        return link.from_project_id, link.to_project_id
    return getattr(target, "project_id", None), None


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
            action=AuditAction.AUDIT_PURGED,
            entity_type=EntityType.AUDIT_LOG,
            extra={
                "before": before,
                "deleted": result["deleted"],
                "oldest": found["oldest"],
                "newest": found["newest"],
            },
        )
        result["audit_id"] = row.pk
    return result
