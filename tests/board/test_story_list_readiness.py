"""The story list's ready / blocked column and filter (stories.readiness's rule): a
story in an unstarted status waiting on an unfinished blocker is not ready."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from stories import services
from stories.models import Story
from tests.factories import ProjectFactory, StoryFactory

CHANGELIST = "/admin/stories/story/"


def keys(client, query):
    response = client.get(f"{CHANGELIST}?{query}")
    return sorted(s.key for s in response.context["cl"].result_list)


def test_readiness_filter_and_column(su_client, project, owner):
    blocker = StoryFactory(project=project, key="R-1")
    waiting = StoryFactory(project=project, key="R-2")
    free = StoryFactory(project=project, key="R-3")
    hidden_blocked = StoryFactory(project=project, key="R-4")
    services.dependency_add(actor=owner, story=waiting, depends_on=blocker)
    other = StoryFactory(project=ProjectFactory(slug="elsewhere", actor=owner), key="E-1")
    services.dependency_add(actor=owner, story=hidden_blocked, depends_on=other)
    for story in (blocker, waiting, free, hidden_blocked):
        services.story_transition(actor=owner, story=Story.objects.get(pk=story.pk), status="ready")
    assert keys(su_client, "readiness=ready") == ["R-1", "R-3"]
    assert keys(su_client, "readiness=blocked") == ["R-2", "R-4"]
    html = su_client.get(CHANGELIST).content.decode()
    assert "ready / blocked" in html.lower() and "blocked</td>" in html
    services.story_transition(actor=owner, story=Story.objects.get(pk=blocker.pk), status="done")
    assert keys(su_client, "readiness=ready") == ["R-2", "R-3"]


def test_story_list_query_count_is_constant(su_client, project, owner, django_assert_num_queries):
    for i in range(3):
        StoryFactory(project=project, key=f"Q-{i}")
    with CaptureQueriesContext(connection) as ctx:
        su_client.get(CHANGELIST)
    small = len(ctx.captured_queries)
    first = StoryFactory(project=project, key="M-0")
    for i in range(1, 20):
        services.dependency_add(actor=owner, story=StoryFactory(project=project, key=f"M-{i}"), depends_on=first)
    with django_assert_num_queries(small):
        su_client.get(CHANGELIST)
