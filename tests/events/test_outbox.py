"""The transactional outbox (PRODUCT invariant 9): every committed write has exactly one
audit row and one event, written in the same transaction; a rolled-back write has none."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.context import write_context
from audit.events import EVENT_TYPES, NO_EVENT, AuditAction
from audit.models import AuditLog, OutboxEvent
from stories import services
from stories.bulk import story_bulk_upsert as bulk_upsert
from storyhub.errors import StaleVersionError

pytestmark = pytest.mark.django_db


def _pairs(since_audit: int):
    rows = AuditLog.objects.filter(pk__gt=since_audit).order_by("pk")
    events = {e.audit_id: e for e in OutboxEvent.objects.filter(audit_id__gt=since_audit)}
    return [(row, events.get(row.pk)) for row in rows]


def _last_audit() -> int:
    return AuditLog.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_every_action_but_the_sql_trigger_publishes_an_event_of_its_own_name():
    assert set(EVENT_TYPES) == {a.value for a in AuditAction} - {a.value for a in NO_EVENT}
    assert all(EVENT_TYPES[name] == name for name in EVENT_TYPES)  # stable public names


def test_one_event_per_committed_write_with_its_context(project, owner, story):
    start = _last_audit()
    with write_context(source="api", request_id="req-123"):
        services.story_transition(actor=owner, story=story, status="ready", notes="groomed")
    [(row, event)] = _pairs(start)
    assert event is not None and event.type == "story.status_changed"
    assert (event.project_id, event.entity_type, event.entity_id) == (project.pk, "story", str(story.pk))
    assert (event.actor_id, event.actor_repr, event.request_id) == (owner.pk, "owner", "req-123")
    assert event.data["changes"] == {"status": {"old": "draft", "new": "ready"}}
    assert event.seq is None  # sequenced after commit (events.outbox)
    assert event.occurred_at == row.timestamp


def test_a_rolled_back_write_leaves_no_event(project, owner, story):
    start_events = OutboxEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.story_transition(actor=owner, story=story, status="ready")
        raise RuntimeError("the caller fails after the service")
    assert OutboxEvent.objects.count() == start_events
    with pytest.raises(StaleVersionError):  # a refused write
        services.story_transition(actor=owner, story=story, status="ready", expected_version=99)
    assert OutboxEvent.objects.count() == start_events


def test_bulk_writes_publish_one_event_per_audit_row(project, owner):
    start = _last_audit()
    items = [{"key": f"BLK-{n}", "title": f"Bulk {n}"} for n in range(3)]
    bulk_upsert(actor=owner, project=project, items=items)
    items[0]["title"] = "Bulk zero, renamed"
    bulk_upsert(actor=owner, project=project, items=items)
    pairs = _pairs(start)
    assert len(pairs) == 4 and all(event is not None for _, event in pairs)
    assert [event.type for _, event in pairs] == ["story.created"] * 3 + ["story.updated"]
    assert len({event.pk for _, event in pairs}) == 4
