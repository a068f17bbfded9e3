"""Workers on PostgreSQL, for real: two workers running at once never make one attempt
twice (SKIP LOCKED claims, the attempt row unique per delivery and number), and a
worker process killed (SIGKILL) in the middle of a delivery loses no event."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, connections
from django.utils import timezone

from events import delivery as deliveries
from events import outbox
from events.models import Delivery, DeliveryAttempt
from events.services import endpoint_create
from events.worker import tick
from stories import services
from tests.factories import ProjectFactory, StoryFactory, UserFactory

from . import receiver as receivers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("direct_postgres")]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver():
    r = receivers.start()
    yield r
    receivers.stop(r)


def _wait(condition, what: str, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_two_workers_never_make_one_attempt_twice(receiver):
    owner = UserFactory(username="owner")
    projects = [ProjectFactory(slug=f"p{n}", name=f"P{n}", actor=owner) for n in range(4)]
    hook, receiver.secret = endpoint_create(actor=None, project=None, url=receiver.url)  # global: every event
    for project in projects:
        for n in range(6):
            StoryFactory(project=project, key=f"K-{n}", title=f"Story {n}", actor=owner)
    outbox.sequence_pending()
    outbox.fan_out()
    expected = set(Delivery.objects.filter(endpoint=hook).values_list("message_id", flat=True))
    assert len(expected) >= 24
    start = threading.Barrier(2)
    errors = []

    def work(name: str):
        try:
            start.wait()
            while Delivery.objects.filter(endpoint=hook, state__in=deliveries.OPEN).exists():
                tick(worker_id=name, limit=3)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    got = [r.message_id for r in receiver.received]
    assert sorted(got) == sorted(expected)  # each exactly once
    assert all(r.verified for r in receiver.received)
    assert set(DeliveryAttempt.objects.filter(delivery__endpoint=hook).values_list("number", flat=True)) == {1}
    workers = set(DeliveryAttempt.objects.filter(delivery__endpoint=hook).values_list("worker_id", flat=True))
    assert workers == {"w0", "w1"}  # both really worked
    # in order per project: each project's messages arrived in seq order
    by_seq = {d.message_id: (d.project_key, d.seq) for d in Delivery.objects.filter(endpoint=hook)}
    for project in projects:
        seqs = [by_seq[m][1] for m in got if by_seq[m][0] == project.pk]
        assert seqs == sorted(seqs)


def test_a_worker_killed_mid_delivery_loses_no_event(receiver):
    owner = UserFactory(username="owner")
    project = ProjectFactory(slug="kill", name="Kill", actor=owner)
    hook, receiver.secret = endpoint_create(actor=owner, project=project, url=receiver.url)
    outbox.sequence_pending()
    outbox.fan_out()
    Delivery.objects.filter(endpoint=hook).update(state="succeeded")  # its own webhook.created: not this test's
    story = StoryFactory(project=project, key="K-1", title="One", actor=owner)
    services.story_transition(actor=owner, story=story, status="ready")
    receiver.mode = "hang"
    settings = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
        f"/{settings['NAME']}",
        "DJANGO_SETTINGS_MODULE": "storyhub.settings.test",
        "WEBHOOKS_TIMEOUT_SECONDS": "30",
        "STORYHUB_TEST_PGBOUNCER": "0",  # straight to PostgreSQL, as this module's connection
        "PYTHONUNBUFFERED": "1",
    }
    if settings.get("PASSWORD"):
        env["PGPASSWORD"] = settings["PASSWORD"]
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "events_worker", "--interval", "0.1", "--threads", "1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(lambda: len(receiver.received) >= 1 or worker.poll() is not None, "the worker's first request")
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        worker.send_signal(signal.SIGKILL)  # mid-delivery: the receiver has not answered
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    first = receiver.received[0]
    d = Delivery.objects.get(endpoint=hook, message_id=first.message_id)
    assert d.state == "delivering" and d.lease_until is not None  # left behind by the dead worker
    receiver.mode = "ok"
    receiver.release.set()
    later = timezone.now() + timedelta(seconds=200)  # past the dead worker's lease (4 × 30 s + 30 s)
    done = tick(worker_id="survivor", now=later)
    assert done["reaped"] == 1
    d.refresh_from_db()
    assert d.state == "succeeded"
    assert [r.message_id for r in receiver.received].count(d.message_id) == 2  # at-least-once, never lost
    assert all(r.verified for r in receiver.received)
    assert "worker lost" in d.attempt_log.get(number=1).error
