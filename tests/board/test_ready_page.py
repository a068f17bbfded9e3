"""The admin's ready queue: the API's order, explained, in a constant number of queries."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from stories import services
from stories.models import Story
from tests.factories import StoryFactory


def test_ready_queue_order_and_query_count(staff_client, project, owner, django_assert_num_queries):
    client = staff_client("viewer")
    url = reverse("admin:stories_project_ready", args=[project.pk])
    low = StoryFactory(project=project, key="L-1", priority=1)
    high = StoryFactory(project=project, key="H-1", priority=4)
    key = StoryFactory(project=project, key="K-1", priority=1)
    waiting = StoryFactory(project=project, key="W-1")
    services.dependency_add(actor=owner, story=waiting, depends_on=key)
    for story in (low, high, key, waiting):
        services.story_transition(actor=owner, story=Story.objects.get(pk=story.pk), status="ready")
    with CaptureQueriesContext(connection) as ctx:
        html = client.get(url).content.decode()
    assert html.index("H-1") < html.index("K-1") < html.index("L-1")  # priority, then unblocks
    assert "W-1" not in html and "1 waiting" in html
    for i in range(15):
        StoryFactory(project=project, key=f"X-{i}", status="ready")
    with django_assert_num_queries(len(ctx.captured_queries)):
        client.get(url)
