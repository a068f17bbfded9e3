"""Background jobs on Django's tasks API (the django-tasks backport, run by the
django-tasks-db database backend; see README "Events"): a redelivery or a test ping
somebody asked for is enqueued in the transaction that records the request, and the
worker (`manage.py events_worker`) runs it."""

from __future__ import annotations

import os

from django_tasks import task

from . import delivery

QUEUE = "webhooks"


@task(queue_name=QUEUE)
def deliver_now(delivery_id: int) -> dict:
    """One attempt of `delivery_id` now (a redelivery or a ping), whatever its state."""
    claim = delivery.claim_one(delivery_id=delivery_id, worker_id=f"task:{os.getpid()}")
    if claim is None:
        return {"delivery": delivery_id, "skipped": "another attempt is in flight"}
    outcome = delivery.attempt(claim)
    return {"delivery": delivery_id, "attempt": claim.number, "ok": outcome.ok, "status_code": outcome.status_code}
