"""The story page's read-only "Blocked by" / "Blocks" panel: each visible blocker and
dependent with its full title, status name and category, whether it is unfinished, a
link to it, and a link to the graph centred on the story; a link to a story of a project
the reader cannot see is a placeholder (README "Visibility"); a fixed number of queries."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from stories import services
from tests.cross_project import assert_no_marker, build_world
from tests.factories import ProjectFactory, StoryFactory

pytestmark = pytest.mark.django_db


def _panel(body: str, side: str) -> str:
    match = re.search(rf'<table class="storyhub-links" id="block-links-{side}">(.*?)</table>', body, re.S)
    assert match, f"no {side} table"
    return " ".join(match.group(1).split())


def _rows(table: str) -> list[list[str]]:
    """Each body row as its cells' text."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1])
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in rows]


def test_panel_lists_blockers_and_dependents_with_status_and_links(su_client, project, owner, make_story):
    story = make_story("INF-010", title="The story in the middle", status="ready")
    done = make_story("INF-001", title="A finished blocker with a rather long title that is not cut", status="done")
    open_ = make_story("INF-002", title="An unfinished blocker", status="in_progress")
    waiting = make_story("INF-020", title="Waits for the middle")
    other = ProjectFactory(slug="other-proj", actor=owner)
    outside = StoryFactory(project=other, key="OT-1", title="Other project blocker", actor=owner)
    relates = make_story("INF-030", title="Only related")
    for target in (done, open_, outside):
        services.dependency_add(actor=owner, story=story, depends_on=target)
    services.dependency_add(actor=owner, story=waiting, depends_on=story)
    services.dependency_add(actor=owner, story=story, depends_on=relates, type="relates")

    body = su_client.get(reverse("admin:stories_story_change", args=[story.pk])).content.decode()
    blocked_by = _rows(_panel(body, "blocked_by"))
    assert [r[0] for r in blocked_by] == [
        "INF-001 — A finished blocker with a rather long title that is not cut",
        "INF-002 — An unfinished blocker",
        "other-proj:OT-1 — Other project blocker",
    ]
    assert blocked_by[0][1:] == ["Done", "Completed", "finished"]
    assert blocked_by[1][1:] == ["In progress", "Started", "unfinished"]
    assert blocked_by[2][2:] == ["Backlog", "unfinished"]  # a new story is in the default status
    assert "Waiting on 2 unfinished blockers." in " ".join(body.split())
    for target in (done, open_, outside, waiting):
        assert f'href="{reverse("admin:stories_story_change", args=[target.pk])}"' in body
    blocks = _rows(_panel(body, "blocks"))
    assert len(blocks) == 1 and blocks[0][0] == "INF-020 — Waits for the middle"
    assert blocks[0][3] == "yes, waiting for this story"
    assert "INF-030" not in _panel(body, "blocked_by") + _panel(body, "blocks")  # only `blocks` links
    graph = reverse("admin:stories_project_graph", args=[project.pk])
    assert f'href="{graph}?focus=INF-010"' in body


def test_a_finished_story_holds_nobody_up(su_client, make_story, owner):
    story = make_story("INF-001", status="done")
    waiting = make_story("INF-002")
    services.dependency_add(actor=owner, story=waiting, depends_on=story)
    body = su_client.get(reverse("admin:stories_story_change", args=[story.pk])).content.decode()
    (row,) = _rows(_panel(body, "blocks"))
    assert row[3] == "no"
    assert "No blocker." in _panel(body, "blocked_by")
    assert "Not waiting on any unfinished blocker." in body


def test_hidden_links_are_placeholders_and_still_count():
    world = build_world(bee_is_staff=True)
    bee = Client()
    bee.force_login(world.bee)
    # B-1 waits for SEC-1 (hidden, in progress); SEC-1 waits for B-2.
    body = bee.get(reverse("admin:stories_story_change", args=[world.b1.pk])).content.decode()
    assert_no_marker(body, "B-1's page")
    (row,) = _rows(_panel(body, "blocked_by"))
    assert row[0].startswith("(hidden story)") and row[1:] == ["—", "—", "unfinished"]
    assert "Waiting on 1 unfinished blocker." in " ".join(body.split())
    assert reverse("admin:stories_story_change", args=[world.secret.pk]) not in body
    body = bee.get(reverse("admin:stories_story_change", args=[world.b2.pk])).content.decode()
    assert_no_marker(body, "B-2's page")
    (row,) = _rows(_panel(body, "blocks"))
    assert row[0].startswith("(hidden story)")
    # The owner sees both projects: the real story, no placeholder.
    boss = Client()
    boss.force_login(world.owner)
    world.owner.is_superuser = world.owner.is_staff = True
    world.owner.save(update_fields=["is_superuser", "is_staff"])
    body = boss.get(reverse("admin:stories_story_change", args=[world.b1.pk])).content.decode()
    assert "zz-alpha:SEC-1 — Quantum vault rekeying" in body and "(hidden story)" not in body


def test_viewer_sees_the_panel(staff_client, story, make_story, owner):
    blocker = make_story("INF-002", title="Seen by the viewer")
    services.dependency_add(actor=owner, story=story, depends_on=blocker)
    body = staff_client("viewer").get(reverse("admin:stories_story_change", args=[story.pk])).content.decode()
    assert "INF-002 — Seen by the viewer" in _panel(body, "blocked_by")


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_query_count_is_constant_in_the_number_of_links(su_client, project, owner, make_story):
    other = ProjectFactory(slug="other-proj", actor=owner)
    few, many = make_story("F-1"), make_story("M-1")
    for i, (story, n) in enumerate(((few, 1), (many, 8))):
        for j in range(n):
            services.dependency_add(actor=owner, story=story, depends_on=make_story(f"B{i}-{j}"))
            services.dependency_add(actor=owner, story=make_story(f"W{i}-{j}"), depends_on=story)
            outside = StoryFactory(project=other, key=f"O{i}-{j}", actor=owner)
            services.dependency_add(actor=owner, story=story, depends_on=outside)
    few_count = _count(su_client, reverse("admin:stories_story_change", args=[few.pk]))
    many_count = _count(su_client, reverse("admin:stories_story_change", args=[many.pk]))
    assert few_count == many_count
