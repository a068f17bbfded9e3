"""The admin's front page: per visible project, stories by status category, ready,
blocked (stories.readiness), points done / total; the latest audited changes."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from stories import services
from tests.factories import MemberFactory, ProjectFactory, StoryFactory, UserFactory

INDEX = reverse("admin:index")


def summary(response, slug):
    return next(s for s in response.context["project_summaries"] if s["project"].slug == slug)


def test_counts_follow_the_readiness_rule(su_client, project, make_story, owner):
    done = make_story("A-1", estimate="3")
    services.story_transition(actor=owner, story=done, status="done")
    ready = make_story("A-2", status="ready", estimate="2")  # its blocker is done: ready
    waiting = make_story("A-3", status="ready", estimate="5")  # waits for A-2: blocked
    make_story("A-4", estimate="1-2")  # draft (backlog category)
    services.dependency_add(actor=owner, story=ready, depends_on=done)
    services.dependency_add(actor=owner, story=waiting, depends_on=ready)
    secret = ProjectFactory(slug="secret", actor=owner)
    services.dependency_add(actor=owner, story=done, depends_on=StoryFactory(project=secret, key="S-1", actor=owner))
    response = su_client.get(INDEX)
    assert response.status_code == 200
    s = summary(response, "plan-pipe")
    assert s["total"] == 4
    assert s["categories"]["completed"] == 1 and s["categories"]["unstarted"] == 2
    assert s["ready"] == 1 and s["blocked"] == 1  # a done story with an open blocker is not "blocked"
    assert s["points_done"] == 3 and s["points_total"] == 3 + 2 + 5 + 2
    body = " ".join(response.content.decode().split())
    assert 'data-count="ready">1<' in body and 'data-count="points">3 / 12<' in body
    # The latest audited changes, labelled like the audit log.
    assert "dependency.added</a>: plan-pipe:A-1 → secret:S-1" in body
    assert "Recent actions" not in body


def test_only_visible_projects_and_rows(client, project, make_story, owner):
    make_story("A-1")
    hidden = ProjectFactory(slug="zqxhidden", name="zqxhidden", actor=owner)
    StoryFactory(project=hidden, key="ZQXHIDDEN-1", title="zqxhidden", actor=owner)
    viewer = UserFactory(username="dash-viewer", is_staff=True)
    MemberFactory(project=project, user=viewer, role="viewer", actor=owner)
    client.force_login(viewer)
    response = client.get(INDEX)
    assert [s["project"].slug for s in response.context["project_summaries"]] == ["plan-pipe"]
    assert "zqxhidden" not in response.content.decode().lower()


def test_query_count_constant_in_projects_and_stories(su_client, owner):
    def grow(n):
        for i in range(n):
            p = ProjectFactory(slug=f"q{n}-{i}", actor=owner)
            for k in range(n):
                StoryFactory(project=p, key=f"Q-{k}", actor=owner)

    grow(2)
    with CaptureQueriesContext(connection) as few:
        su_client.get(INDEX)
    grow(5)
    with CaptureQueriesContext(connection) as many:
        su_client.get(INDEX)
    assert len(many.captured_queries) == len(few.captured_queries)
