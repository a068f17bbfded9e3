"""Database-level guards (audit migration 0002, stories migrations 0003 and 0004): they hold for
SQL that bypasses the ORM and the services, and the services still write exactly one
status_history row per change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.models import AuditLog, OutboxEvent
from stories import services
from stories.models import Status, StatusHistory, Story

TRIGGER_NOTE = "status changed outside StoryHub (SQL); recorded by the database trigger"


def raw(sql: str, params=None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def status_id(story: Story, slug: str) -> int:
    return Status.objects.get(project=story.project_id, slug=slug).pk


def history(story: Story) -> list[tuple]:
    return list(
        StatusHistory.objects.filter(story=story)
        .order_by("id")
        .values_list("old_status__slug", "new_status__slug", "changed_by__username", "notes")
    )


# --------------------------------------------------------------------------- audit_log


@pytest.mark.django_db
def test_raw_update_of_audit_log_is_refused(story):
    row = AuditLog.objects.filter(action="story.created").get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("UPDATE audit_log SET action = 'tampered' WHERE id = %s", [row.pk])
    assert AuditLog.objects.get(pk=row.pk).action == "story.created"


@pytest.mark.postgres
@pytest.mark.django_db
def test_raw_delete_of_audit_log_is_refused(story):
    before = AuditLog.objects.count()
    with pytest.raises(DatabaseError, match="append-only: DELETE refused"), transaction.atomic():
        raw("DELETE FROM audit_log")
    assert AuditLog.objects.count() == before > 0


@pytest.mark.postgres
@pytest.mark.django_db
def test_purge_flag_allows_delete_but_never_update(story):
    row = AuditLog.objects.filter(action="story.created").get()
    with transaction.atomic():
        raw("SELECT set_config('storyhub.audit_purge', 'on', true)")
        with pytest.raises(DatabaseError, match="UPDATE refused"), transaction.atomic():
            raw("UPDATE audit_log SET action = 'tampered' WHERE id = %s", [row.pk])
        assert raw("DELETE FROM audit_log WHERE id = %s", [row.pk]) == 1
        transaction.set_rollback(True)  # keep the row; only the permission was under test
    assert AuditLog.objects.filter(pk=row.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_purge_flag_ends_with_its_transaction(story):
    with transaction.atomic():
        raw("SELECT set_config('storyhub.audit_purge', 'on', true)")
    with pytest.raises(DatabaseError, match="DELETE refused"), transaction.atomic():
        raw("DELETE FROM audit_log")
    assert AuditLog.objects.exists()


def _old_rows(days_ago: int, count: int) -> list[int]:
    moment = timezone.now() - timedelta(days=days_ago)
    return [AuditLog.objects.create(action="old.thing", entity_type="test", timestamp=moment).pk for _ in range(count)]


@pytest.mark.django_db
def test_purge_command_reports_then_deletes_and_audits_itself(story, capsys):
    very_old = _old_rows(400, 3)
    recent = _old_rows(10, 2)
    total = AuditLog.objects.count()
    cutoff = (timezone.now() - timedelta(days=365)).date().isoformat()

    call_command("purge_audit_log", before=cutoff)
    out = capsys.readouterr().out
    assert "3 audit row(s)" in out and "--yes" in out
    assert AuditLog.objects.count() == total

    call_command("purge_audit_log", "--yes", before=cutoff)
    out = capsys.readouterr().out
    assert "Deleted 3 audit row(s)" in out
    assert not AuditLog.objects.filter(pk__in=very_old).exists()
    assert AuditLog.objects.filter(pk__in=recent).count() == 2
    purge = AuditLog.objects.get(action="audit.purged")
    assert purge.details["deleted"] == 3
    assert purge.details["source"] == "cli"
    assert purge.details["before"].startswith(cutoff)
    assert purge.user is None
    assert AuditLog.objects.count() == total - 3 + 1

    if connection.vendor == "postgresql":  # the guard is back on after the purge
        with pytest.raises(DatabaseError, match="DELETE refused"), transaction.atomic():
            raw("DELETE FROM audit_log WHERE id = %s", [recent[0]])


@pytest.mark.django_db
def test_purge_command_refuses_a_future_date_and_garbage(story):
    tomorrow = (timezone.now() + timedelta(days=2)).date().isoformat()
    with pytest.raises(CommandError, match="in the past"):
        call_command("purge_audit_log", "--yes", before=tomorrow)
    with pytest.raises(CommandError, match="give a date"):
        call_command("purge_audit_log", "--yes", before="last tuesday")
    assert not AuditLog.objects.filter(action="audit.purged").exists()


@pytest.mark.django_db
def test_purge_with_nothing_to_delete_writes_nothing(story, capsys):
    count = AuditLog.objects.count()
    call_command("purge_audit_log", "--yes", before="2000-01-01")
    assert "nothing deleted" in capsys.readouterr().out
    assert AuditLog.objects.count() == count


# --------------------------------------------------------------------------- status_history


@pytest.mark.django_db
def test_raw_status_update_writes_one_history_row(story):
    assert raw("UPDATE stories SET status_id = %s WHERE id = %s", [status_id(story, "ready"), story.pk]) == 1
    assert history(story) == [
        (None, "draft", "owner", "created"),
        ("draft", "ready", None, TRIGGER_NOTE),
    ]


@pytest.mark.django_db
def test_raw_status_update_is_audited_and_bumps_the_version(story, member):
    from rest_framework.test import APIClient

    member_client = APIClient()
    member_client.force_authenticate(member)
    url = f"/api/v1/projects/{story.project.slug}/stories/{story.key}/"
    etag = member_client.get(url)["ETag"]
    before = Story.objects.values_list("version", "updated_at").get(pk=story.pk)
    raw("UPDATE stories SET status_id = %s WHERE id = %s", [status_id(story, "ready"), story.pk])
    version, updated_at = Story.objects.values_list("version", "updated_at").get(pk=story.pk)
    assert version == before[0] + 1 and updated_at > before[1]
    row = AuditLog.objects.get(action="story.status_changed_outside")
    assert (row.entity_type, row.entity_id, row.user_id) == ("story", str(story.pk), None)
    assert row.details == {
        "source": "system",
        "note": TRIGGER_NOTE,
        "changes": {"status": {"old": "draft", "new": "ready"}},
    }
    # Its event, written by audit 0006's trigger in the same statement (no audit_record here).
    event = OutboxEvent.objects.get(audit_id=row.pk)
    assert (event.type, event.project_id, event.entity_type, event.entity_id) == (
        "story.status_changed_outside",
        story.project_id,
        "story",
        str(story.pk),
    )
    assert event.actor_id is None and event.data == row.details
    # A client that read the story before the SQL change cannot write over it.
    stale = member_client.patch(url, {"title": "Mine"}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert Story.objects.get(pk=story.pk).status.slug == "ready"


@pytest.mark.django_db
def test_service_changes_get_no_outside_audit_row_and_one_version_bump(story, owner):
    version = story.version
    services.story_transition(actor=owner, story=story, status="ready")
    assert Story.objects.get(pk=story.pk).version == version + 1
    assert not AuditLog.objects.filter(action="story.status_changed_outside").exists()


@pytest.mark.django_db
def test_raw_updates_that_do_not_move_the_status_write_nothing(story):
    raw("UPDATE stories SET title = 'Renamed by SQL' WHERE id = %s", [story.pk])
    raw("UPDATE stories SET status_id = status_id WHERE id = %s", [story.pk])
    assert len(history(story)) == 1
    assert not AuditLog.objects.filter(action="story.status_changed_outside").exists()


@pytest.mark.django_db
def test_raw_multi_row_update_writes_one_row_per_moved_story(project, make_story):
    stories = [make_story(f"RAW-{n}") for n in range(4)]
    services.story_transition(actor=project.owner, story=stories[0], status="ready")
    moved = raw(
        "UPDATE stories SET status_id = %s WHERE project_id = %s",
        [Status.objects.get(project=project, slug="ready").pk, project.pk],
    )
    assert moved == 4
    for story in stories[1:]:
        assert history(story)[-1] == ("draft", "ready", None, TRIGGER_NOTE)
        assert len(history(story)) == 2
    assert len(history(stories[0])) == 2  # its move to ready was the service's; SQL left it there


@pytest.mark.django_db
def test_services_write_exactly_one_history_row_per_change(story, owner, member):
    services.story_transition(actor=owner, story=story, status="ready", notes="groomed")
    services.story_update(actor=member, story=Story.objects.get(pk=story.pk), data={"status": "in_progress"})
    services.story_update(actor=member, story=Story.objects.get(pk=story.pk), data={"title": "No status change"})
    services.story_transition(actor=member, story=Story.objects.get(pk=story.pk), status="in_progress")  # no-op
    assert history(story) == [
        (None, "draft", "owner", "created"),
        ("draft", "ready", "owner", "groomed"),
        ("ready", "in_progress", "member", ""),
    ]


@pytest.mark.django_db
def test_service_and_raw_change_in_one_transaction_each_get_their_row(story, owner):
    with transaction.atomic():
        services.story_transition(actor=owner, story=story, status="ready", notes="service")
        raw("UPDATE stories SET status_id = %s WHERE id = %s", [status_id(story, "review"), story.pk])
        services.story_transition(actor=owner, story=Story.objects.get(pk=story.pk), status="done", notes="again")
    assert history(story) == [
        (None, "draft", "owner", "created"),
        ("draft", "ready", "owner", "service"),
        ("ready", "review", None, TRIGGER_NOTE),
        ("review", "done", "owner", "again"),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_bulk_marker_covers_the_whole_transaction(story, make_story):
    other = make_story("INF-002")
    ready = status_id(story, "ready")
    with transaction.atomic():
        services.mark_status_history_written(None)
        raw("UPDATE stories SET status_id = %s WHERE id IN (%s, %s)", [ready, story.pk, other.pk])
    assert len(history(story)) == len(history(other)) == 1  # the caller said it records them
    raw("UPDATE stories SET status_id = %s WHERE id = %s", [status_id(story, "done"), story.pk])
    assert history(story)[-1] == ("ready", "done", None, TRIGGER_NOTE)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_marker_for_another_change_does_not_hide_this_one(story, make_story):
    other = make_story("INF-002")
    with transaction.atomic():
        # Marked for `other` moving to done, but SQL moves `story` to review.
        services.mark_status_history_written(other, Status.objects.get(project=story.project, slug="done"))
        raw("UPDATE stories SET status_id = %s WHERE id = %s", [status_id(story, "review"), story.pk])
    assert history(story)[-1] == ("draft", "review", None, TRIGGER_NOTE)
