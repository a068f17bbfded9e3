"""Webhook endpoints, their deliveries (one per event and endpoint, or a test ping) and
the log of every attempt; the fan-out cursor over the outbox (audit.OutboxEvent)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class WebhookEndpoint(models.Model):
    """A subscriber: a project's (managed by its admins) or global (project NULL,
    superusers only; receives every event). The signing secret is stored encrypted
    (events.signing) because Standard Webhooks signs with the secret itself."""

    project = models.ForeignKey(
        "stories.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True, default="")
    # Event types to deliver ("story.status_changed", or a namespace "story.*"); empty: all.
    event_types = models.JSONField(default=list, blank=True)
    secret_encrypted = models.TextField(editable=False)
    secret_prefix = models.CharField(max_length=16, editable=False)
    active = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "webhook_endpoints"
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "active"], name="webhook_endpoint_project_idx")]

    def __str__(self) -> str:
        return f"{self.url} ({self.project.slug if self.project is not None else 'global'})"


class Delivery(models.Model):
    """One message to one endpoint: an event (retried on a schedule until it succeeds or
    runs out of attempts) or a test ping (one attempt). The body is rendered once, at
    fan-out, as the endpoint may see it, and every attempt sends the same body and id."""

    class Kind(models.TextChoices):
        EVENT = "event", "event"
        PING = "ping", "test ping"

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERING = "delivering", "delivering"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(
        "audit.OutboxEvent", null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EVENT)
    message_id = models.CharField(max_length=64)  # the webhook-id header, the same on every attempt
    event_type = models.CharField(max_length=100)
    seq = models.BigIntegerField(null=True, blank=True)  # the event's sequence (order within a queue)
    # Deliveries to one endpoint about one project go out in `seq` order (0: no project).
    project_key = models.BigIntegerField(default=0)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, default="")
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "webhook_deliveries"
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due_idx"),
            models.Index(fields=["endpoint", "project_key", "seq"], name="webhook_delivery_queue_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event"], name="webhook_delivery_once_per_event", condition=models.Q(kind="event")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.endpoint_id} ({self.state})"


class DeliveryAttempt(models.Model):
    """The delivery log: one row per attempt, created when a worker claims the attempt
    (unique per delivery and number, so no attempt is ever made twice) and completed
    with the answer."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    manual = models.BooleanField(default=False)  # a redelivery somebody asked for
    worker_id = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField()
    duration_ms = models.IntegerField(null=True, blank=True)
    status_code = models.IntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    response_excerpt = models.TextField(blank=True, default="")

    class Meta:
        db_table = "webhook_delivery_attempts"
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_once")]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}"


class OutboxCursor(models.Model):
    """How far the fan-out has read the sequenced outbox (one row, name "fanout")."""

    name = models.CharField(max_length=32, primary_key=True)
    seq = models.BigIntegerField(default=0)

    class Meta:
        db_table = "event_outbox_cursor"

    def __str__(self) -> str:
        return f"{self.name} at {self.seq}"
