"""The admin board (stories.admin_board): columns and cards, blocked badges (hidden
blockers as "(hidden)"), moves through the services (one history and one audit row, a
refusal with its reason and allowed moves), reorder, roles, and a constant query count."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditLog
from stories import services
from stories.models import STORY_RANK_ORDER, StatusHistory, Story
from tests.factories import ProjectFactory, StoryFactory


def board_url(project):
    return reverse("admin:stories_project_board", args=[project.pk])


def post(client, project, **data):
    return client.post(board_url(project), data, HTTP_ACCEPT="application/json")


@pytest.fixture
def world(project, owner):
    blocker = StoryFactory(project=project, key="B-1", title="The blocker")
    waiting = StoryFactory(project=project, key="W-1", title="Waits for B-1", owner="dev-team", estimate="3sp")
    services.dependency_add(actor=owner, story=waiting, depends_on=blocker)
    hidden_project = ProjectFactory(slug="zqxhidden-proj", actor=owner)
    secret = StoryFactory(project=hidden_project, key="ZQXHIDDEN-1")
    services.dependency_add(actor=owner, story=waiting, depends_on=secret)
    free = StoryFactory(project=project, key="F-1", title="Free")
    return {"blocker": blocker, "waiting": waiting, "free": free}


def test_board_shows_columns_cards_and_blocked_badges(staff_client, project, world):
    client = staff_client("member")
    page = client.get(board_url(project))
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("Draft", "Ready", "In progress", "Done", "Cancelled"):
        assert f">{name} <span" in html
    assert "Waiting on B-1, (hidden)" in html
    assert "zqxhidden" not in html.lower()
    assert "3 pt · dev-team" in html
    assert 'draggable="true"' in html and "board.js" in html
    # A blocked card offers no move into started or completed statuses.
    card = html.split('data-key="W-1"')[1].split("</li>")[0]
    assert "in_progress" not in card.split("data-moves=")[1].split(">")[0]


def test_viewer_sees_the_board_without_moves_and_cannot_post(staff_client, project, world):
    client = staff_client("viewer")
    html = client.get(board_url(project)).content.decode()
    assert "W-1" in html and 'draggable="true"' not in html and "card-move" not in html
    response = post(client, project, key="F-1", status="ready", version=world["free"].version)
    assert response.status_code == 403
    assert Story.objects.get(pk=world["free"].pk).status.slug == "draft"


def test_outsider_gets_404(staff_client, project, world):
    assert staff_client(None).get(board_url(project)).status_code == 404


def test_move_is_one_history_and_one_audit_row(staff_client, project, world):
    client = staff_client("member")
    free = world["free"]
    history, audit = StatusHistory.objects.count(), AuditLog.objects.count()
    response = post(client, project, key="F-1", status="ready", version=free.version)
    assert response.status_code == 200, response.content
    assert response.json()["ok"] is True
    assert StatusHistory.objects.count() == history + 1
    assert AuditLog.objects.count() == audit + 1
    assert AuditLog.objects.latest("id").action == "story.status_changed"
    # The same version again is stale now: refused, nothing written.
    stale = post(client, project, key="F-1", status="in_progress", version=free.version)
    assert stale.status_code == 409 and stale.json()["code"] == "conflict"
    assert StatusHistory.objects.count() == history + 1


def test_blocked_move_is_refused_with_blockers_and_allowed_moves(staff_client, project, world):
    client = staff_client("member")
    waiting = world["waiting"]
    response = post(client, project, key="W-1", status="in_progress", version=waiting.version)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "blocked" and body["blockers"] == ["B-1", "(hidden)"]
    assert "B-1" in body["message"]
    allowed = {m["slug"] for m in body["allowed"]}
    assert "ready" in allowed and "in_progress" not in allowed and "done" not in allowed
    assert "zqxhidden" not in response.content.decode().lower()


def test_reorder_and_the_no_js_form(staff_client, project, world):
    client = staff_client("member")
    free = world["free"]
    response = post(client, project, key="F-1", before="B-1", version=free.version)
    assert response.json()["ok"] is True
    order = list(Story.objects.filter(project=project).order_by(*STORY_RANK_ORDER).values_list("key", flat=True))
    assert order[0] == "F-1"
    assert AuditLog.objects.latest("id").action == "story.ranked"
    # Without JavaScript the form posts and the board comes back with a message.
    fresh = Story.objects.get(pk=free.pk)
    page = client.post(board_url(project), {"key": "F-1", "after": "W-1", "version": fresh.version}, follow=True)
    assert page.status_code == 200 and "F-1: saved." in page.content.decode()


def test_filters(staff_client, project, world):
    client = staff_client("member")
    html = client.get(board_url(project), {"owner": "dev-team"}).content.decode()
    assert 'data-key="W-1"' in html and 'data-key="F-1"' not in html


def _queries(client, project) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(board_url(project)).status_code == 200
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_with_the_stories(staff_client, project, owner, django_assert_num_queries):
    client = staff_client("member")
    first = [StoryFactory(project=project, key=f"Q-{i}") for i in range(3)]
    services.dependency_add(actor=owner, story=first[1], depends_on=first[0])
    small = _queries(client, project)
    more = [StoryFactory(project=project, key=f"R-{i}") for i in range(25)]
    for story in more[1:]:
        services.dependency_add(actor=owner, story=story, depends_on=more[0])
    with django_assert_num_queries(small):
        assert client.get(board_url(project)).status_code == 200
