"""audit migration 0004 backfills project_id for rows written before it (they named
their project by slug only): by the live entity, else by the slug at the row's time;
a row it cannot place for sure stays NULL. The append-only guard is back afterwards."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditLog
from stories import services
from tests.factories import MemberFactory, ProjectFactory, StoryFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _world():
    owner, other = UserFactory(username="owner"), UserFactory(username="other")
    old = ProjectFactory(slug="alpha", actor=owner)
    gone = MemberFactory(project=old, user=other, role="viewer", actor=owner)
    services.project_member_remove(actor=owner, member=gone)
    StoryFactory(project=old, key="OLD-1", title="old story", actor=owner)
    old_id = old.pk
    services.project_delete(actor=owner, project=old)
    new = ProjectFactory(slug="alpha", actor=owner)
    beta = ProjectFactory(slug="beta", actor=owner)
    a1 = StoryFactory(project=new, key="A-1", actor=owner)
    b1 = StoryFactory(project=beta, key="B-1", actor=owner)
    b2 = StoryFactory(project=beta, key="B-2", actor=owner)
    services.dependency_add(actor=owner, story=b1, depends_on=a1)  # kept
    services.dependency_remove(actor=owner, dependency=services.dependency_add(actor=owner, story=b2, depends_on=a1))
    services.project_dependency_add(actor=owner, from_project=beta, to_project=new)
    services.backlog_delete(actor=owner, backlog=services.backlog_create(actor=owner, project=beta, slug="s", name="S"))
    services.story_transition(actor=owner, story=a1, status="ready")
    return old_id, new.pk, beta.pk


def _as_old_code_wrote_it(row: AuditLog, **overrides) -> AuditLog:
    details = {k: v for k, v in row.details.items() if k != "linked_project_id"}
    return AuditLog(
        action=row.action,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        user_id=row.user_id,
        user_repr=row.user_repr,
        timestamp=overrides.get("timestamp", row.timestamp),
        details={**details, **overrides.get("details", {}), "copy_of": row.pk},
    )


def test_backfill_places_old_rows_by_entity_or_by_slug_at_the_time():
    old_id, new_id, beta_id = _world()
    originals = {row.pk: row for row in AuditLog.objects.all()}
    assert {row.project_id for row in originals.values()} >= {old_id, new_id, beta_id}
    first = min(originals.values(), key=lambda row: row.pk)
    copies = [_as_old_code_wrote_it(row) for row in originals.values()]
    # Unplaceable: a slug no project ever had, and "alpha" before any alpha existed.
    removed = next(r for r in originals.values() if r.action == "project.member_removed")
    copies.append(_as_old_code_wrote_it(removed, details={"project": "ghost"}))
    story_row = next(r for r in originals.values() if r.action == "story.created" and r.project_id == new_id)
    early = datetime(2000, 1, 1, tzinfo=UTC)
    copies.append(_as_old_code_wrote_it(story_row, timestamp=early))
    copies[-1].entity_id = "999999"  # an entity that no longer exists
    AuditLog.objects.bulk_create(copies)

    call_command("migrate", "audit", "0003", verbosity=0)
    call_command("migrate", verbosity=0)

    placed = list(AuditLog.objects.filter(details__has_key="copy_of").order_by("id"))
    assert len(placed) == len(copies)
    *mirrors, ghost, too_early = placed
    for copy in mirrors:
        source = originals[copy.details["copy_of"]]
        expected = (source.project_id, source.details.get("linked_project_id"))
        assert (copy.project_id, copy.details.get("linked_project_id")) == expected, source.action
    assert ghost.project_id is None and too_early.project_id is None
    # Rows written by the new code were left as they were.
    assert {r.pk: r.project_id for r in AuditLog.objects.filter(pk__in=originals)} == {
        pk: row.project_id for pk, row in originals.items()
    }

    # The append-only guard is in place again.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_log SET action = 'tampered' WHERE id = %s", [first.pk])
