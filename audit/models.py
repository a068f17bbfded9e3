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
