"""Delivering webhooks: claiming due attempts, sending them signed, recording the
answer, scheduling retries and disabling endpoints that keep failing.

A claim is one short transaction: the delivery becomes `delivering` with a lease (a
token and an expiry) and its attempt row is inserted (unique per delivery and number, so
an attempt is made once); on PostgreSQL candidates are read `FOR UPDATE SKIP LOCKED`,
so workers never wait for each other nor take the same row. Only the head of each queue
(endpoint, project) is claimable: the oldest delivery not yet succeeded or failed, so
deliveries go out in sequence order per endpoint and project. The HTTP call runs after
the claim committed; its answer is recorded only under the same lease token. A worker
that dies mid-delivery leaves a lease that expires; `reap_expired` makes the delivery
due again, so nothing is lost (at-least-once: the receiver may see a message id twice)."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from audit.events import AuditAction, EntityType
from audit.services import audit_record

from . import sender
from .models import Delivery, DeliveryAttempt, WebhookEndpoint
from .outbox import body_text
from .signing import decrypt_secret, signed_headers

# Seconds to wait after failed attempt n (1-based) before attempt n + 1, each ±10 %
# jitter: 8 attempts over about 21.6 hours; after the 8th failure the delivery has
# failed and its endpoint is disabled.
RETRY_DELAYS = (60, 300, 1800, 3600, 7200, 21600, 43200)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.1
OPEN = (Delivery.State.PENDING, Delivery.State.DELIVERING)
RUN = 20  # deliveries of one queue claimed at once, sent in order


def retry_delay(attempt: int) -> timedelta:
    """The wait after failed attempt `attempt`, with jitter."""
    base = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
    return timedelta(seconds=base * random.uniform(1 - JITTER, 1 + JITTER))


def lease_length() -> timedelta:
    # Longer than the longest an attempt can take (connect + read deadline), with room.
    return timedelta(seconds=4 * float(settings.WEBHOOKS_TIMEOUT_SECONDS) + 30)


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    token: str
    number: int
    manual: bool = False


def _heads(now: datetime) -> QuerySet[Delivery]:
    earlier = Delivery.objects.filter(
        endpoint=OuterRef("endpoint"), project_key=OuterRef("project_key"), seq__lt=OuterRef("seq"), state__in=OPEN
    )
    return (
        Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now, endpoint__active=True)
        .exclude(Exists(earlier))
        .order_by("next_attempt_at", "id")
    )


def _start(delivery: Delivery, *, now: datetime, worker_id: str, manual: bool, place: int = 0) -> Claim:
    delivery.state = Delivery.State.DELIVERING
    delivery.attempts += 1
    delivery.lease_token = secrets.token_hex(16)
    # The n-th of a run is sent after the n - 1 before it: its lease covers them too.
    delivery.lease_until = now + lease_length() * (place + 1)
    delivery.save(update_fields=["state", "attempts", "lease_token", "lease_until"])
    DeliveryAttempt.objects.create(
        delivery=delivery, number=delivery.attempts, manual=manual, worker_id=worker_id[:64], started_at=now
    )
    return Claim(delivery.pk, delivery.lease_token, delivery.attempts, manual)


def claim_due(*, worker_id: str, now: datetime | None = None, limit: int = 10) -> list[Claim]:
    """Claim up to `limit` due queue heads (see the module docstring)."""
    return [run[0] for run in claim_runs(worker_id=worker_id, now=now, limit=limit, run=1)]


def _followers(head: Delivery, now: datetime, size: int) -> list[Delivery]:
    rows = Delivery.objects.filter(
        endpoint_id=head.endpoint_id,
        project_key=head.project_key,
        kind=Delivery.Kind.EVENT,
        state=Delivery.State.PENDING,
        next_attempt_at__lte=now,
        seq__gt=head.seq,
    ).order_by("seq")
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(skip_locked=True)
    return list(rows[:size])


def claim_runs(*, worker_id: str, now: datetime | None = None, limit: int = 10, run: int = RUN) -> list[list[Claim]]:
    """Claim up to `limit` due queue heads, each with up to `run` - 1 deliveries that
    follow it in its queue: a run is sent in order by one thread (`send_run`), so a
    burst in one project does not pay a claim per message."""
    now = now or timezone.now()
    if not _heads(now).exists():
        return []  # idle: no lock taken
    with transaction.atomic():
        rows = _heads(now)
        if connection.vendor == "postgresql":
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        runs = []
        for head in rows[:limit]:
            members = [head] + (_followers(head, now, run - 1) if run > 1 and head.seq is not None else [])
            runs.append([_start(d, now=now, worker_id=worker_id, manual=False, place=n) for n, d in enumerate(members)])
        return runs


def release(claim: Claim) -> None:
    """Give back a claimed attempt that was never sent (its run stopped at a failure)."""
    with transaction.atomic():
        taken = Delivery.objects.filter(pk=claim.delivery_id, lease_token=claim.token, state=Delivery.State.DELIVERING)
        if taken.update(state=Delivery.State.PENDING, attempts=F("attempts") - 1, lease_token="", lease_until=None):
            DeliveryAttempt.objects.filter(delivery_id=claim.delivery_id, number=claim.number).delete()


def send_run(claims: list[Claim], *, now: datetime | None = None) -> list[bool]:
    """Send a run in order; at the first failure the rest go back to their queue
    (the failed one is its head again, waiting for its retry)."""
    results = []
    for n, claim in enumerate(claims):
        ok = attempt(claim, now=now).ok
        results.append(ok)
        if not ok:
            for rest in claims[n + 1 :]:
                release(rest)
            break
    return results


def claim_one(*, delivery_id: int, worker_id: str, now: datetime | None = None) -> Claim | None:
    """Claim one delivery now, whatever its state or its endpoint's (a redelivery or a
    ping somebody asked for); None while another attempt of it is in flight."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None or (
            delivery.state == Delivery.State.DELIVERING
            and delivery.lease_until is not None
            and delivery.lease_until > now
        ):
            return None
        return _start(delivery, now=now, worker_id=worker_id, manual=True)


def attempt(claim: Claim, *, now: datetime | None = None) -> sender.Outcome:
    """Send the claimed attempt and record its answer."""
    delivery = Delivery.objects.select_related("endpoint").get(pk=claim.delivery_id)
    body = body_text(delivery.payload)
    headers = signed_headers(
        secret=decrypt_secret(delivery.endpoint.secret_encrypted),
        message_id=delivery.message_id,
        timestamp=timezone.now(),
        body=body,
    )
    outcome = sender.post(delivery.endpoint.url, body=body, headers=headers)
    record(claim, outcome, now=now)
    return outcome


def record(claim: Claim, outcome: sender.Outcome, *, now: datetime | None = None) -> None:
    """Store the attempt's answer and decide what comes next: done, a retry on the
    schedule, or failed (then the endpoint is disabled). An answer under a lease that
    was reaped meanwhile only completes its log row."""
    now = now or timezone.now()
    with transaction.atomic():
        DeliveryAttempt.objects.filter(delivery_id=claim.delivery_id, number=claim.number).update(
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            ok=outcome.ok,
            error=outcome.error[:2000],
            response_excerpt=outcome.excerpt,
        )
        delivery = Delivery.objects.select_for_update().select_related("endpoint").get(pk=claim.delivery_id)
        if delivery.lease_token != claim.token or delivery.state != Delivery.State.DELIVERING:
            return
        delivery.lease_token, delivery.lease_until = "", None
        delivery.last_status_code, delivery.last_error = outcome.status_code, outcome.error[:2000]
        if outcome.ok:
            delivery.state, delivery.completed_at, delivery.next_attempt_at = Delivery.State.SUCCEEDED, now, None
        elif claim.manual or delivery.kind == Delivery.Kind.PING or delivery.attempts >= MAX_ATTEMPTS:
            delivery.state, delivery.completed_at, delivery.next_attempt_at = Delivery.State.FAILED, now, None
        else:
            delivery.state, delivery.next_attempt_at = Delivery.State.PENDING, now + retry_delay(delivery.attempts)
        delivery.save()
        if delivery.state == Delivery.State.FAILED and not claim.manual and delivery.kind == Delivery.Kind.EVENT:
            _disable(delivery.endpoint, delivery, now)


def _disable(endpoint: WebhookEndpoint, delivery: Delivery, now: datetime) -> None:
    first = delivery.attempt_log.order_by("number").values_list("started_at", flat=True).first() or now
    hours = (now - first).total_seconds() / 3600
    reason = (
        f"Disabled automatically: delivery {delivery.message_id} ({delivery.event_type}) failed "
        f"{delivery.attempts} attempts over {hours:.1f} h; last: {delivery.last_error or 'no answer'}."
    )
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if not locked.active:
        return
    locked.active, locked.disabled_reason, locked.disabled_at = False, reason, now
    locked.version += 1
    locked.updated_at = now
    locked.save(update_fields=["active", "disabled_reason", "disabled_at", "version", "updated_at"])
    audit_record(
        actor=None,
        action=AuditAction.WEBHOOK_DISABLED,
        target=locked,
        entity_type=EntityType.WEBHOOK_ENDPOINT,
        changes={"active": (True, False)},
        extra={"url": locked.url, "reason": reason, "delivery": delivery.message_id},
    )


def reap_expired(*, now: datetime | None = None) -> int:
    """Deliveries whose worker died mid-attempt (lease expired): the attempt is logged
    as lost and the delivery is due again at once. Returns how many."""
    now = now or timezone.now()
    reaped = 0
    if not Delivery.objects.filter(state=Delivery.State.DELIVERING, lease_until__lt=now).exists():
        return 0
    with transaction.atomic():
        stale = Delivery.objects.filter(state=Delivery.State.DELIVERING, lease_until__lt=now)
        if connection.vendor == "postgresql":
            stale = stale.select_for_update(skip_locked=True)
        for delivery in stale[:100]:
            DeliveryAttempt.objects.filter(
                delivery=delivery, number=delivery.attempts, duration_ms__isnull=True
            ).update(error="worker lost mid-attempt (lease expired); retried")
            delivery.state, delivery.lease_token, delivery.lease_until = Delivery.State.PENDING, "", None
            delivery.next_attempt_at = now
            delivery.last_error = "worker lost mid-attempt"
            delivery.save(update_fields=["state", "lease_token", "lease_until", "next_attempt_at", "last_error"])
            reaped += 1
    return reaped
