"""Reading the outbox: sequencing committed events, and fanning them out to the
webhook endpoints that subscribe to them (one Delivery per event and endpoint)."""

from __future__ import annotations

import json
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from audit.models import OutboxEvent

from .models import Delivery, OutboxCursor, WebhookEndpoint
from .selectors import endpoint_visible_projects, endpoint_wants, event_payload, project_slugs

# pg_advisory_xact_lock key of the sequencer ("seq" in ASCII).
SEQUENCER_LOCK = 0x736571
BATCH = 1000


def sequence_pending(*, limit: int = BATCH) -> int:
    """Give the committed events that have none their sequence numbers, in id order,
    after the highest one given so far; returns how many. Sequencers are serialized (an
    advisory lock on PostgreSQL; SQLite's write lock), and each reads the highest number
    after taking the lock, so numbers are gapless and increase in commit order: a reader
    that has seen number N never later finds a new event below N."""
    if not OutboxEvent.objects.filter(seq__isnull=True).exists():
        return 0  # idle: no lock taken (SQLite's is the whole database's)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEQUENCER_LOCK])
        ids = list(OutboxEvent.objects.filter(seq__isnull=True).order_by("id").values_list("id", flat=True)[:limit])
        if not ids:
            return 0
        last = OutboxEvent.objects.aggregate(top=Max("seq"))["top"] or 0
        OutboxEvent.objects.bulk_update(
            [OutboxEvent(pk=pk, seq=last + n) for n, pk in enumerate(ids, 1)], ["seq"], batch_size=500
        )
    return len(ids)


def fan_out(*, now: datetime | None = None, limit: int = BATCH) -> int:
    """Create the deliveries of the next sequenced events for every active endpoint
    that subscribes to them (an endpoint gets the events that happened after it was
    made); returns how many events were read. The body is rendered here, as the
    endpoint may see the event, so every attempt sends the same bytes."""
    now = now or timezone.now()
    at = OutboxCursor.objects.filter(name="fanout").values_list("seq", flat=True).first()
    if at is not None and not OutboxEvent.objects.filter(seq__gt=at).exists():
        return 0  # idle: no lock taken
    with transaction.atomic():
        cursor, _ = OutboxCursor.objects.get_or_create(name="fanout")
        cursor = OutboxCursor.objects.select_for_update().get(pk=cursor.pk)
        events = list(OutboxEvent.objects.filter(seq__gt=cursor.seq).order_by("seq")[:limit])
        if not events:
            return 0
        endpoints = list(WebhookEndpoint.objects.filter(active=True))
        slugs = project_slugs(events)
        deliveries = [
            _delivery(endpoint, event, slugs, now)
            for event in events
            for endpoint in endpoints
            if endpoint.created_at <= event.occurred_at and endpoint_wants(endpoint, event)
        ]
        Delivery.objects.bulk_create(deliveries, batch_size=500)
        cursor.seq = events[-1].seq or cursor.seq
        cursor.save(update_fields=["seq"])
    return len(events)


def _delivery(endpoint: WebhookEndpoint, event: OutboxEvent, slugs: dict[int, str], now: datetime) -> Delivery:
    payload = event_payload(event, visible=endpoint_visible_projects(endpoint), slugs=slugs)
    return Delivery(
        endpoint=endpoint,
        event=event,
        kind=Delivery.Kind.EVENT,
        message_id=f"msg_{event.seq}",
        event_type=event.type,
        seq=event.seq,
        project_key=event.project_id or 0,
        payload=payload,
        next_attempt_at=now,
        created_at=now,
    )


def body_text(payload: dict) -> str:
    """The exact bytes sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def outbox_lag(*, now: datetime | None = None) -> dict:
    """For /readyz: events not yet sequenced or not yet fanned out, deliveries due and
    waiting, and the age in seconds of the oldest of each."""
    now = now or timezone.now()
    unsequenced = OutboxEvent.objects.filter(seq__isnull=True).aggregate(oldest=Min("occurred_at"), top=Max("id"))
    cursor = OutboxCursor.objects.filter(name="fanout").values_list("seq", flat=True).first() or 0
    waiting = OutboxEvent.objects.filter(seq__gt=cursor).aggregate(oldest=Min("occurred_at"))
    due = Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now, endpoint__active=True)
    due_oldest = due.aggregate(oldest=Min("next_attempt_at"))["oldest"]

    def age(moment) -> float:
        return round(max(0.0, (now - moment).total_seconds()), 3) if moment else 0.0

    oldest = [m for m in (unsequenced["oldest"], waiting["oldest"], due_oldest) if m]
    return {
        "unsequenced_events": OutboxEvent.objects.filter(seq__isnull=True).count(),
        "unpublished_events": OutboxEvent.objects.filter(seq__gt=cursor).count(),
        "due_deliveries": due.count(),
        "lag_seconds": age(min(oldest)) if oldest else 0.0,
    }
