"""The events worker's loop (`manage.py events_worker`): sequence the outbox, fan it out
to the endpoints, make due attempts, and run the queued jobs (tasks.QUEUE) with
django-tasks-db's worker. Several workers may run (claims skip each other's rows on
PostgreSQL; on SQLite run one)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.db import close_old_connections, connections
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from . import delivery, outbox
from .tasks import QUEUE


def _run_in_thread(run: list[delivery.Claim]) -> list[bool]:
    try:
        return delivery.send_run(run)
    finally:
        connections.close_all()  # this thread's connection


def tick(*, worker_id: str, now: datetime | None = None, threads: int = 1, limit: int = 20) -> dict[str, int]:
    """One round; returns what it did. `threads` > 1 sends attempts in parallel (each
    thread with its own database connection)."""
    done = {"sequenced": outbox.sequence_pending(), "fanned_out": outbox.fan_out(now=now)}
    done["reaped"] = delivery.reap_expired(now=now)
    done["attempts"] = done["succeeded"] = 0
    # Rounds of claims: a success makes the next delivery of its queue the head.
    while done["attempts"] < limit:
        room = limit - done["attempts"]
        # One run per thread and round, so each run starts at once and its leases hold.
        heads = min(room, max(threads, 1))
        runs = delivery.claim_runs(worker_id=worker_id, now=now, limit=heads, run=min(delivery.RUN, room))
        if not runs:
            break
        if threads > 1 and len(runs) > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                results = [ok for oks in pool.map(_run_in_thread, runs) for ok in oks]
        else:
            results = [ok for run in runs for ok in delivery.send_run(run, now=now)]
        done["attempts"] += len(results)
        done["succeeded"] += sum(results)
    return done


def run_queued_jobs(*, worker_id: str) -> None:
    """Run every ready job of the webhooks queue, then return (django-tasks-db's worker
    in batch mode: it claims each job with SKIP LOCKED on PostgreSQL)."""
    if not DBTaskResult.objects.ready().filter(queue_name=QUEUE).exists():
        return  # idle: its claim would take SQLite's write lock
    Worker(
        queue_names=[QUEUE],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=worker_id,
        excluded_queue_names=[],
    ).run()
    close_old_connections()
