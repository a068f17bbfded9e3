"""The append-only audit log (`audit_log`)."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit row."""


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit_log is append-only: rows cannot be updated.")

    def delete(self):
        raise AppendOnlyError("audit_log is append-only: use the purge_audit_log command for retention.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("audit_log is append-only: rows cannot be updated.")


class AuditLog(models.Model):
    id = models.BigAutoField(primary_key=True)
    action = models.CharField(max_length=100)
    entity_type = models.CharField(max_length=100, blank=True, default="")
    entity_id = models.CharField(max_length=100, blank=True, default="")
    # The project the row is about, by its immutable id (a slug can be taken again by a
    # new project after a delete). No FK: audit rows outlive projects. NULL: about no
    # project (users, keys, sessions) or an old row it could not be derived for.
    project_id = models.BigIntegerField(null=True, blank=True)
    # Audit rows outlive users: no FK constraint, plus a text snapshot of who it was.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    user_repr = models.CharField(max_length=150, blank=True, default="")
    timestamp = models.DateTimeField(default=timezone.now)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        db_table = "audit_log"
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["entity_type", "entity_id"], name="audit_log_entity_idx"),
            models.Index(fields=["timestamp"], name="audit_log_timestamp_idx"),
            models.Index(fields=["user", "timestamp"], name="audit_log_user_idx"),
            models.Index(fields=["action"], name="audit_log_action_idx"),
            models.Index(fields=["project_id", "id"], name="audit_log_project_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.action} {self.entity_type}:{self.entity_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit_log is append-only: rows cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit_log is append-only: rows cannot be deleted.")


class OutboxEvent(models.Model):
    """The transactional outbox (`event_outbox`): one row per audit row, written by
    audit_record / audit_record_many in the same transaction, so a committed write has
    exactly one event and a rolled-back one none. `seq` is the per-database event
    sequence, assigned after commit by the sequencer (events.outbox.sequence_pending) in
    commit order: an id taken by a transaction that commits late would otherwise be
    skipped by a reader already past it. Events are read by the `events` app (feed, SSE,
    webhooks), always through the audit visibility rule."""

    id = models.BigAutoField(primary_key=True)
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    type = models.CharField(max_length=100)
    audit_id = models.BigIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    project_id = models.BigIntegerField(null=True, blank=True)
    linked_project_id = models.BigIntegerField(null=True, blank=True)
    entity_type = models.CharField(max_length=100, blank=True, default="")
    entity_id = models.CharField(max_length=100, blank=True, default="")
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_repr = models.CharField(max_length=150, blank=True, default="")
    request_id = models.CharField(max_length=100, blank=True, default="")
    # The audit row's details: source, changes (field -> old / new) and the action's extras.
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "event_outbox"
        ordering = ["seq", "id"]
        indexes = [
            models.Index(fields=["id"], name="event_outbox_unsequenced_idx", condition=models.Q(seq__isnull=True)),
            models.Index(fields=["project_id", "seq"], name="event_outbox_project_idx"),
            models.Index(fields=["occurred_at"], name="event_outbox_occurred_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq or '-'} {self.type} {self.entity_type}:{self.entity_id}"
