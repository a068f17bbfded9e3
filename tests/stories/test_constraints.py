"""Constraints hold in the database itself, when the ORM's validation is bypassed."""

import pytest
from django.db import IntegrityError, transaction

from audit.models import AppendOnlyError, AuditLog
from stories.models import Story, StoryDependency

pytestmark = pytest.mark.django_db


def _integrity_error(fn):
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_duplicate_story_key_rejected_by_database(story):
    _integrity_error(
        lambda: Story.objects.bulk_create(
            [Story(project=story.project, key=story.key, title="dup", status=story.status)]
        )
    )


def test_invalid_priority_rejected_by_database(story):
    _integrity_error(
        lambda: Story.objects.bulk_create(
            [Story(project=story.project, key="P-9", title="x", status=story.status, priority=9)]
        )
    )


def test_self_dependency_rejected_by_database(story):
    _integrity_error(lambda: StoryDependency.objects.bulk_create([StoryDependency(story=story, depends_on=story)]))


def test_duplicate_dependency_rejected_by_database(make_story):
    a, b = make_story("A-1"), make_story("B-1")
    StoryDependency.objects.bulk_create([StoryDependency(story=a, depends_on=b)])
    _integrity_error(
        lambda: StoryDependency.objects.bulk_create([StoryDependency(story=a, depends_on=b, type="relates")])
    )


def test_invalid_dependency_type_rejected_by_database(make_story):
    a, b = make_story("A-1"), make_story("B-1")
    _integrity_error(
        lambda: StoryDependency.objects.bulk_create([StoryDependency(story=a, depends_on=b, type="bogus")])
    )


def test_audit_log_is_append_only_in_the_orm(story):
    row = AuditLog.objects.first()
    with pytest.raises(AppendOnlyError):
        AuditLog.objects.filter(pk=row.pk).update(action="tampered")
    with pytest.raises(AppendOnlyError):
        AuditLog.objects.filter(pk=row.pk).delete()
    row.action = "tampered"
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    assert AuditLog.objects.get(pk=row.pk).action == "story.created"


def test_story_project_and_backlog_have_no_index_of_their_own():
    # Each import writes every index entry of every story: a single-column index on
    # project_id or backlog_id duplicates the leading column of a composite index (which
    # serves the same lookups and cascades), so the migration dropped them; the composite
    # ones must stay.
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            constraints = connection.introspection.get_constraints(cursor, "stories")
            indexed = {tuple(c["columns"]) for c in constraints.values() if c["index"] or c["unique"]}
        else:  # Django's SQLite introspection fails on the expression index; read the pragmas
            cursor.execute("SELECT name FROM pragma_index_list('stories')")
            names = [name for (name,) in cursor.fetchall()]
            indexed = set()
            for name in names:
                cursor.execute("SELECT name FROM pragma_index_info(%s) ORDER BY seqno", [name])
                indexed.add(tuple(column for (column,) in cursor.fetchall()))
    assert ("project_id",) not in indexed and ("backlog_id",) not in indexed, indexed
    assert {("project_id", "key"), ("backlog_id", "priority")} <= indexed, indexed
