"""storyhub.prepared: a read compiled once returns what evaluating its queryset returns."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from stories.api.payloads import project_page_rows, story_rows_by_key, story_values
from stories.api.permissions import _project_with_role
from stories.models import Project, Story
from storyhub.prepared import Prepared


@pytest.fixture
def stories(make_story, project):
    made = [
        make_story(f"INF-{i:03d}", estimate="1-2sp", labels=["a", "b"], metadata={"market": "eu"}) for i in range(7)
    ]
    Story.objects.filter(pk=made[0].pk).update(created=datetime.date(2025, 8, 28), points_min=Decimal("1.5"))
    return made


def test_the_page_rows_equal_the_querysets(stories, project):
    base = Story.objects.filter(project=project)
    for descending in (False, True):
        order = "-id" if descending else "id"
        expected = list(story_values(base.order_by(order))[:4])
        assert project_page_rows(project.pk, descending=descending, after_id=None, limit=4) == expected
        after = expected[1]["id"]
        cursor = base.filter(id__lt=after) if descending else base.filter(id__gt=after)
        expected_after = list(story_values(cursor.order_by(order))[:3])
        assert len(expected_after) == 3
        assert project_page_rows(project.pk, descending=descending, after_id=after, limit=3) == expected_after
    # Converted like the ORM converts them: dates, decimals, aware date-times.
    first = project_page_rows(project.pk, descending=False, after_id=None, limit=1)[0]
    assert first["created"] == datetime.date(2025, 8, 28)
    assert first["points_min"] == Decimal("1.5")
    assert first["created_at"].tzinfo is not None


def test_one_story_by_key_and_none_for_another_project(stories, project, owner):
    from tests.factories import ProjectFactory

    assert story_rows_by_key(project.pk, "INF-003") == list(story_values(Story.objects.filter(key="INF-003")))
    other = ProjectFactory(slug="other", name="Other", actor=owner)
    assert story_rows_by_key(other.pk, "INF-003") == []


def test_the_project_and_role(project, member, outsider):
    found, role = _project_with_role(project.slug, member.pk)
    assert (found, role) == (Project.objects.get(pk=project.pk), "member")
    assert found.metadata == project.metadata and found.settings == project.settings
    assert found._state.adding is False
    assert _project_with_role(project.slug, outsider.pk)[1] is None
    assert _project_with_role("no-such-project", member.pk) == (None, None)


def test_the_compiled_statement_is_reused(stories, project, django_assert_num_queries):
    prepared = Prepared(lambda p: Story.objects.filter(project_id=p).values("key").order_by("id"), -1)
    assert [r["key"] for r in prepared.rows(project.pk, limit=2)] == ["INF-000", "INF-001"]
    with django_assert_num_queries(1):
        assert len(prepared.rows(project.pk)) == 7


def test_a_marker_must_appear_once():
    # Both filters take the marker's value: which parameter is the argument is ambiguous.
    prepared = Prepared(lambda p: Story.objects.filter(project_id=p, id=p).values("key"), -1)
    with pytest.raises(ValueError, match="appears 2 times"):
        prepared.statement(5)
    sliced = Prepared(lambda p: Story.objects.filter(project_id=p).values("key")[:3], -1)
    with pytest.raises(ValueError, match="unsliced"):
        sliced.statement(5)
