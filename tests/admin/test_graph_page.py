"""The per-project dependency graph page: inline SVG drawn on the server."""

from __future__ import annotations

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from stories import services
from stories.admin_graph import MAX_ROWS, project_graph
from tests.factories import ProjectFactory, StoryFactory


def graph_url(project) -> str:
    return reverse("admin:stories_project_graph", args=[project.pk])


def test_states_are_told_apart(su_client, project, make_story, owner):
    done = make_story("A-1")
    services.story_transition(actor=owner, story=done, status="done")
    ready = make_story("A-2", status="ready")
    blocked = make_story("A-3", status="ready")
    services.dependency_add(actor=owner, story=ready, depends_on=done)
    services.dependency_add(actor=owner, story=blocked, depends_on=ready)
    other = ProjectFactory(slug="other", actor=owner)
    services.dependency_add(actor=owner, story=done, depends_on=StoryFactory(project=other, key="EXT-1", actor=owner))
    response = su_client.get(graph_url(project))
    assert response.status_code == 200
    body = response.content.decode()
    svg = body.split('<div class="storyhub-graph">')[1].split("</svg>")[0]
    assert svg.lstrip().startswith("<svg")
    # Drawn on the server: no script, nothing fetched from elsewhere.
    assert "<script" not in svg and "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    states = dict(re.findall(r'data-key="([^"]+)" data-state="([^"]+)"', body))
    assert states == {"A-1": "done", "A-2": "ready", "A-3": "blocked", "other:EXT-1": "backlog"}
    assert 'class="node state-backlog external"' in body
    # Layers by depth: each story sits right of what it waits for.
    nodes = {n.label: n for n in project_graph(project, reader=None)["nodes"]}
    assert nodes["other:EXT-1"].x < nodes["A-1"].x < nodes["A-2"].x < nodes["A-3"].x
    assert reverse("admin:stories_story_change", args=[ready.pk]) in body


def test_readable_at_200_stories_with_constant_queries(su_client, owner):
    project = ProjectFactory(slug="big", actor=owner)
    stories = [StoryFactory(project=project, key=f"B-{i:03d}", actor=owner) for i in range(200)]
    for i in range(1, 200, 3):  # chains of three
        services.dependency_add(actor=owner, story=stories[i], depends_on=stories[i - 1])
    with CaptureQueriesContext(connection) as ctx:
        response = su_client.get(graph_url(project))
    assert response.status_code == 200
    assert len(ctx.captured_queries) < 15
    graph = response.context["graph"]
    assert graph["story_count"] == 200
    # No overlapping boxes, and no column taller than MAX_ROWS.
    spots = {(n.x, n.y) for n in graph["nodes"]}
    assert len(spots) == 200
    assert max(sum(1 for n in graph["nodes"] if n.x == x) for x, _ in spots) <= MAX_ROWS
    assert graph["height"] < 1500


def test_graph_link_from_the_project_pages(su_client, project):
    assert graph_url(project) in su_client.get(reverse("admin:stories_project_changelist")).content.decode()
    assert (
        graph_url(project) in su_client.get(reverse("admin:stories_project_change", args=[project.pk])).content.decode()
    )


def test_viewer_sees_the_graph_outsider_does_not(staff_client, project):
    assert staff_client("viewer").get(graph_url(project)).status_code == 200
    assert staff_client(None).get(graph_url(project)).status_code in (403, 404)


def test_empty_project_graph(su_client, project):
    response = su_client.get(graph_url(project))
    assert response.status_code == 200
    assert response.context["graph"]["story_count"] == 0
