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
