"""Webhooks end to end against a real receiver on 127.0.0.1 that verifies signatures
with the standardwebhooks library: delivery, retries on schedule (time passed in, no
sleeps), a timeout, order per endpoint and project, auto-disable with its audit row and
reason, a redelivery that succeeds, test pings, SSRF refusals and the response cap."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from audit.models import AuditLog
from events import delivery as deliveries
from events.models import Delivery, DeliveryAttempt, WebhookEndpoint
from events.services import delivery_redeliver, endpoint_create, endpoint_ping, endpoint_update
from events.worker import tick
from stories import services

from . import receiver as receivers

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def receiver():
    r = receivers.start()
    yield r
    receivers.stop(r)


@pytest.fixture
def hook(receiver, project, owner):
    receiver.received.clear()
    receiver.mode = "ok"
    endpoint, secret = endpoint_create(actor=owner, project=project, url=receiver.url)
    receiver.secret = secret
    tick(worker_id="t")  # delivers its own webhook.created
    receiver.received.clear()
    return endpoint


def _run_jobs():
    """Run the queued jobs (what the worker's django-tasks-db loop does) in this test's transaction."""
    for job in DBTaskResult.objects.ready().filter(queue_name="webhooks"):
        job.task.call(*job.args_kwargs["args"], **job.args_kwargs["kwargs"])
        job.delete()


def test_an_event_is_delivered_signed(hook, receiver, story, owner):
    services.story_transition(actor=owner, story=story, status="ready")
    done = tick(worker_id="t")
    assert done["succeeded"] == done["attempts"] >= 1
    [got] = [r for r in receiver.received if r.body["type"] == "story.status_changed"]
    assert got.verified and got.message_id == f"msg_{got.body['seq']}"
    assert got.body["data"]["changes"] == {"status": {"old": "draft", "new": "ready"}}
    assert got.body["data"]["project"] == "plan-pipe" and got.body["data"]["details"]["key"] == "INF-001"
    d = Delivery.objects.get(endpoint=hook, message_id=got.message_id)
    assert d.state == "succeeded" and d.attempts == 1
    [log] = d.attempt_log.all()
    assert (log.status_code, log.ok, log.response_excerpt) == (200, True, '{"received": true}')
    # a wrong secret fails verification (the check can fail)
    receiver.secret = "whsec_" + "A" * 43 + "="
    services.story_transition(actor=owner, story=story, status="backlog")
    tick(worker_id="t")
    assert receiver.received[-1].verified is False


def test_retries_timeout_order_disable_and_redeliver(story, hook, receiver, make_story, owner):
    receiver.mode = "500"
    services.story_transition(actor=owner, story=story, status="ready")
    make_story("INF-002")  # a later event of the same project: queued behind the first
    now = timezone.now()
    tick(worker_id="t", now=now)
    first = Delivery.objects.filter(endpoint=hook, event_type="story.status_changed").get()
    assert (first.state, first.attempts, first.last_status_code) == ("pending", 1, 500)
    waits = []
    for attempt in range(2, deliveries.MAX_ATTEMPTS + 1):
        due = first.next_attempt_at
        base = deliveries.RETRY_DELAYS[attempt - 2]
        waits.append((due - now).total_seconds())
        assert base * 0.9 - 1 <= (due - now).total_seconds() <= base * 1.1 + 1
        assert tick(worker_id="t", now=due - timedelta(seconds=1))["attempts"] == 0  # not before its time
        receiver.mode = "hang" if attempt == 3 else "500"
        now = due
        assert tick(worker_id="t", now=now)["attempts"] == 1  # only the head of the queue
        first.refresh_from_db()
    assert sum(waits) > 20 * 3600  # about a day
    assert first.state == "failed" and first.attempts == deliveries.MAX_ATTEMPTS
    log = list(first.attempt_log.values_list("number", "status_code", "error"))
    assert [n for n, _, _ in log] == list(range(1, deliveries.MAX_ATTEMPTS + 1))
    assert log[2][1] is None and "timed out" in log[2][2].lower()  # the hang
    # the second delivery never went out while the first was open, nor after: disabled
    receiver.release.set()
    assert all(r.body["type"] == "story.status_changed" for r in receiver.received)
    hook.refresh_from_db()
    assert hook.active is False and "failed 8 attempts" in hook.disabled_reason and "HTTP 500" in hook.disabled_reason
    row = AuditLog.objects.filter(action="webhook.disabled", entity_id=str(hook.pk)).get()
    assert row.details["reason"] == hook.disabled_reason and row.user_id is None
    # a redelivery (to the disabled endpoint) succeeds
    receiver.mode = "ok"
    receiver.received.clear()
    delivery_redeliver(actor=owner, delivery=first)
    _run_jobs()
    first.refresh_from_db()
    assert first.state == "succeeded" and receiver.verified_ids() == [first.message_id]
    assert first.attempt_log.order_by("-number").first().manual
    # turning the endpoint back on delivers what waited, in order
    endpoint_update(actor=owner, endpoint=hook, data={"active": True})
    tick(worker_id="t")
    assert [r.body["type"] for r in receiver.received][1:2] == ["story.created"]
    hook.refresh_from_db()
    assert hook.disabled_reason == ""


def test_ping_and_response_cap(hook, receiver, owner):
    receiver.mode = "big"
    ping = endpoint_ping(actor=owner, endpoint=hook)
    _run_jobs()
    ping.refresh_from_db()
    [log] = ping.attempt_log.all()
    assert ping.state == "succeeded" and log.status_code == 200
    assert len(log.response_excerpt) < 1100 and log.response_excerpt.endswith("(truncated)")
    assert receiver.received[-1].body["type"] == "webhook.ping" and receiver.received[-1].verified


def test_a_killed_worker_loses_no_event(story, hook, receiver, owner):
    services.story_transition(actor=owner, story=story, status="ready")
    now = timezone.now()
    tick(worker_id="t", now=now, limit=0)  # sequenced and fanned out, nothing claimed
    [claim] = deliveries.claim_due(worker_id="doomed", now=now)  # claimed, then the worker dies
    assert tick(worker_id="t", now=now)["attempts"] == 0  # leased: nobody else takes it
    later = now + deliveries.lease_length() + timedelta(seconds=1)
    done = tick(worker_id="t", now=later)
    assert done["reaped"] == 1 and done["succeeded"] == 1
    d = Delivery.objects.get(pk=claim.delivery_id)
    assert d.state == "succeeded" and d.attempts == 2
    assert "worker lost" in d.attempt_log.get(number=1).error
    # the dead worker's late answer changes nothing
    deliveries.record(claim, deliveries.sender.Outcome(False, 500, 5, "HTTP 500"))
    d.refresh_from_db()
    assert d.state == "succeeded"


def test_private_targets_are_refused_when_not_allowed(settings, hook, receiver, project, owner, monkeypatch):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    for url in ("http://127.0.0.1/x", "http://10.0.0.8/", "http://169.254.169.254/latest", "http://[::1]/", "ftp://x/"):
        with pytest.raises(ValidationError):
            endpoint_create(actor=owner, project=project, url=url)
    # DNS rebinding: a public name that resolves to loopback at delivery time
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: real("127.0.0.1", *a, **k) if host == "hooks.example.com" else real(host, *a, **k),
    )
    WebhookEndpoint.objects.filter(pk=hook.pk).update(url="http://hooks.example.com:1/")
    ping = endpoint_ping(actor=owner, endpoint=hook)
    _run_jobs()
    log = DeliveryAttempt.objects.get(delivery=ping)
    assert log.status_code is None and "127.0.0.1" in log.error and "loopback" in log.error


def test_a_run_of_one_queue_stops_at_a_failure_and_gives_the_rest_back(story, hook, receiver, make_story, owner):
    for n in range(3):
        make_story(f"RUN-{n}")
    now = timezone.now()
    tick(worker_id="t", now=now, limit=0)
    [run] = deliveries.claim_runs(worker_id="t", now=now, limit=1, run=3)
    assert len(run) == 3 and [c.number for c in run] == [1, 1, 1]
    receiver.mode = "500"
    assert deliveries.send_run(run, now=now) == [False]
    states = [Delivery.objects.get(pk=c.delivery_id) for c in run]
    assert [(d.state, d.attempts) for d in states] == [("pending", 1), ("pending", 0), ("pending", 0)]
    assert DeliveryAttempt.objects.filter(delivery_id__in=[c.delivery_id for c in run]).count() == 1
    receiver.mode = "ok"
    receiver.received.clear()
    done = tick(worker_id="t", now=states[0].next_attempt_at)
    assert done["succeeded"] == done["attempts"] == 3
    seqs = [r.body["seq"] for r in receiver.received if r.body["type"] == "story.created"]
    assert seqs == sorted(seqs) and len(seqs) == 3


def test_purge_keeps_what_is_still_owed(story, hook, receiver, owner):
    from io import StringIO

    from django.core.management import call_command

    from audit.models import OutboxEvent

    tick(worker_id="t")  # everything so far delivered
    receiver.mode = "500"
    services.story_transition(actor=owner, story=story, status="ready")
    tick(worker_id="t")  # published, its delivery pending (a retry is due later)
    owed = Delivery.objects.get(endpoint=hook, event_type="story.status_changed")
    assert owed.state == "pending"
    month_ago = timezone.now() - timedelta(days=30)
    OutboxEvent.objects.update(occurred_at=month_ago)
    Delivery.objects.filter(kind="ping").update(created_at=month_ago)
    before_count = OutboxEvent.objects.count()
    out = StringIO()
    call_command("purge_events", "--before", (timezone.now() - timedelta(days=1)).date().isoformat(), stdout=out)
    assert "would be deleted" in out.getvalue() and OutboxEvent.objects.count() == before_count
    call_command(
        "purge_events", "--before", (timezone.now() - timedelta(days=1)).date().isoformat(), "--yes", stdout=out
    )
    assert OutboxEvent.objects.filter(pk=owed.event_id).exists()  # still owed to the endpoint
    remaining = set(OutboxEvent.objects.values_list("type", flat=True))
    assert remaining <= {"story.status_changed", "outbox.purged"}
    row = AuditLog.objects.filter(action="outbox.purged").get()
    assert row.details["events"] == before_count - 1
    with pytest.raises(Exception, match="past"):
        call_command("purge_events", "--before", "2999-01-01")
