"""Every write of the events app: webhook endpoints (a project's: its admins; global:
superusers), redeliveries and test pings. Each is @transaction.atomic with its audit row
(and so its outbox event); a redelivery or ping also enqueues its job (events.tasks) in
the same transaction, so a rolled-back request leaves no job."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from audit.events import EVENT_TYPES, AuditAction, EntityType
from audit.models import OutboxEvent
from audit.services import audit_record
from stories.models import Project, ProjectMember
from stories.rules import require_project_role
from storyhub.errors import StaleVersionError

from .models import Delivery, OutboxCursor, WebhookEndpoint
from .netguard import TargetRefused, resolve_target
from .signing import encrypt_secret, new_secret
from .tasks import deliver_now

NAMESPACES = {name.split(".", 1)[0] for name in EVENT_TYPES}
EDITABLE = ("url", "description", "event_types", "active")
OPEN_STATES = (Delivery.State.PENDING, Delivery.State.DELIVERING)


def require_endpoint_admin(actor, project: Project | None) -> None:
    """A project's endpoints are its admins' (and owners'); global ones superusers'."""
    if actor is None:
        return
    if project is None:
        if not getattr(actor, "is_superuser", False):
            raise PermissionDenied("Only superusers manage global webhook endpoints.")
        return
    require_project_role(actor, project, ProjectMember.Role.ADMIN)


def _clean_event_types(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError({"event_types": ["Give a list of event type names."]})
    unknown = [v for v in value if v not in EVENT_TYPES and not (v.endswith(".*") and v[:-2] in NAMESPACES)]
    if unknown:
        raise ValidationError(
            {"event_types": [f"Unknown event type(s) {', '.join(unknown)}; see GET /api/v1/events/types/ or README."]}
        )
    return sorted(set(value))


def _clean_url(url: str) -> str:
    try:
        resolve_target(url)
    except TargetRefused as exc:
        raise ValidationError({"url": [str(exc)]}) from None
    return url


@transaction.atomic
def endpoint_create(
    *, actor, project: Project | None, url: str, event_types: list[str] | None = None, description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint; returns it and its signing secret (shown once, stored encrypted)."""
    require_endpoint_admin(actor, project)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        project=project,
        url=url,
        description=description,
        event_types=_clean_event_types(event_types or []),
        secret_encrypted=encrypt_secret(secret),
        secret_prefix=secret[:10],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    endpoint.full_clean(exclude=["secret_encrypted", "secret_prefix"])
    _clean_url(endpoint.url)
    endpoint.save(force_insert=True)
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_CREATED,
        target=endpoint,
        entity_type=EntityType.WEBHOOK_ENDPOINT,
        changes={"url": (None, url), "event_types": (None, endpoint.event_types)},
    )
    return endpoint, secret


def _locked(endpoint: WebhookEndpoint, expected_version: int | None) -> WebhookEndpoint:
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if expected_version is not None and expected_version != locked.version:
        raise StaleVersionError(
            f"Webhook endpoint {locked.pk} changed since version {expected_version}.",
            details={"current_version": locked.version},
        )
    return locked


@transaction.atomic
def endpoint_update(
    *, actor, endpoint: WebhookEndpoint, data: Mapping[str, Any], expected_version: int | None = None
) -> WebhookEndpoint:
    """Change url, description, event types or the active flag (turning an endpoint
    back on clears the reason it was disabled for; its pending deliveries resume)."""
    require_endpoint_admin(actor, endpoint.project)
    locked = _locked(endpoint, expected_version)
    changes: dict[str, tuple[Any, Any]] = {}
    for name in EDITABLE:
        if name not in data:
            continue
        value = data[name]
        if name == "event_types":
            value = _clean_event_types(value)
        elif name == "url":
            value = _clean_url(value)
        if getattr(locked, name) != value:
            changes[name] = (getattr(locked, name), value)
            setattr(locked, name, value)
    if not changes:
        return locked
    if changes.get("active", (None, False))[1] is True:
        locked.disabled_reason, locked.disabled_at = "", None
    locked.full_clean(exclude=["secret_encrypted", "secret_prefix", "project", "created_by"])
    locked.version += 1
    locked.updated_at = timezone.now()
    locked.save()
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_UPDATED,
        target=locked,
        entity_type=EntityType.WEBHOOK_ENDPOINT,
        changes=changes,
    )
    return locked


@transaction.atomic
def endpoint_rotate_secret(*, actor, endpoint: WebhookEndpoint) -> tuple[WebhookEndpoint, str]:
    """A new signing secret (shown once); the old one stops signing at once."""
    require_endpoint_admin(actor, endpoint.project)
    locked = _locked(endpoint, None)
    secret = new_secret()
    locked.secret_encrypted, locked.secret_prefix = encrypt_secret(secret), secret[:10]
    locked.version += 1
    locked.updated_at = timezone.now()
    locked.save(update_fields=["secret_encrypted", "secret_prefix", "version", "updated_at"])
    audit_record(
        actor=actor, action=AuditAction.WEBHOOK_SECRET_ROTATED, target=locked, entity_type=EntityType.WEBHOOK_ENDPOINT
    )
    return locked, secret


@transaction.atomic
def endpoint_delete(*, actor, endpoint: WebhookEndpoint, expected_version: int | None = None) -> None:
    require_endpoint_admin(actor, endpoint.project)
    locked = _locked(endpoint, expected_version)
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_DELETED,
        target=locked,
        entity_type=EntityType.WEBHOOK_ENDPOINT,
        extra={"url": locked.url},
    )
    locked.delete()


@transaction.atomic
def delivery_redeliver(*, actor, delivery: Delivery) -> Delivery:
    """Ask for one more attempt of `delivery` now (also a failed one, also to a disabled
    endpoint); the worker makes it."""
    require_endpoint_admin(actor, delivery.endpoint.project)
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_REDELIVERY_REQUESTED,
        target=delivery.endpoint,
        entity_type=EntityType.WEBHOOK_ENDPOINT,
        extra={"delivery": delivery.message_id, "delivery_id": delivery.pk},
    )
    deliver_now.enqueue(delivery.pk)
    return delivery


@transaction.atomic
def endpoint_ping(*, actor, endpoint: WebhookEndpoint) -> Delivery:
    """A signed test message ("webhook.ping", one attempt) that the worker sends now."""
    require_endpoint_admin(actor, endpoint.project)
    now = timezone.now()
    message_id = f"ping_{uuid.uuid4().hex}"
    ping = Delivery.objects.create(
        endpoint=endpoint,
        kind=Delivery.Kind.PING,
        message_id=message_id,
        event_type="webhook.ping",
        payload={
            "type": "webhook.ping",
            "timestamp": now.isoformat(),
            "data": {"endpoint_id": endpoint.pk, "project": endpoint.project.slug if endpoint.project else None},
        },
        created_at=now,
    )
    audit_record(
        actor=actor,
        action=AuditAction.WEBHOOK_PING_REQUESTED,
        target=endpoint,
        entity_type=EntityType.WEBHOOK_ENDPOINT,
        extra={"delivery": message_id, "delivery_id": ping.pk},
    )
    deliver_now.enqueue(ping.pk)
    return ping


@transaction.atomic
def outbox_purge(*, actor, before: datetime, dry_run: bool = False) -> dict[str, int]:
    """Retention: delete the events older than `before` that every subscriber is done
    with (published, and no delivery of them still pending or in flight), with their
    deliveries and attempt logs, and the test pings older than `before`; an
    "outbox.purged" audit row says how many. Superusers and the system only."""
    if actor is not None and not getattr(actor, "is_superuser", False):
        raise PermissionDenied("Only superusers purge the event outbox.")
    if before > timezone.now():
        raise ValidationError({"before": ["Give a moment in the past."]})
    published = OutboxCursor.objects.filter(name="fanout").values_list("seq", flat=True).first() or 0
    events = OutboxEvent.objects.filter(occurred_at__lt=before, seq__isnull=False, seq__lte=published).exclude(
        Exists(Delivery.objects.filter(event=OuterRef("pk"), state__in=OPEN_STATES))
    )
    pings = Delivery.objects.filter(kind=Delivery.Kind.PING, created_at__lt=before).exclude(state__in=OPEN_STATES)
    result = {"events": events.count(), "pings": pings.count()}
    if dry_run or not any(result.values()):
        return result
    pings.delete()
    events.delete()  # their deliveries and attempts go with them (CASCADE)
    audit_record(
        actor=actor, action=AuditAction.OUTBOX_PURGED, entity_type=EntityType.OUTBOX, extra={"before": before, **result}
    )
    return result
