"""The blocked guard over the API: 409 `blocked` with `blockers`, admin override with a
reason (audited), refused for members, off when the project turns the rule off."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from stories import readiness, services
from stories.models import StatusHistory, Story
from tests.api.conftest import _client_for
from tests.factories import DependencyFactory, ProjectFactory

pytestmark = pytest.mark.django_db

STORIES = "/api/v1/projects/plan-pipe/stories/"


@pytest.fixture
def blocked(make_story, owner):
    a = make_story("A-1", status="ready")
    b = make_story("B-1", status="ready")
    DependencyFactory(story=b, depends_on=a, actor=owner)
    return b


@pytest.mark.parametrize("method", ["transition", "patch", "put"])
def test_blocked_story_cannot_start_409(blocked, member_client, method, owner):
    hidden = services.story_create(
        actor=owner, project=ProjectFactory(slug="hidden", actor=owner), key="H-1", title="Hidden"
    )
    DependencyFactory(story=blocked, depends_on=hidden, actor=owner)
    url = f"{STORIES}B-1/"
    if method == "transition":
        response = member_client.post(url + "transition/", {"status": "in_progress"}, format="json")
    elif method == "patch":
        response = member_client.patch(url, {"status": "done"}, format="json")
    else:
        body = {"key": "B-1", "title": "Story B-1", "status": "done"}
        response = member_client.put(url, body, format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "blocked"
    assert body["blockers"] == ["A-1", "(hidden)"]
    assert "H-1" not in response.content.decode() and "hidden:" not in response.content.decode()
    assert Story.objects.get(key="B-1").status.slug == "ready"


def test_transition_override_by_admin_is_audited(blocked, admin_user):
    client = _client_for(admin_user)
    response = client.post(
        f"{STORIES}B-1/transition/",
        {"status": "in_progress", "override_blocked": True, "reason": "vendor confirmed"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "in_progress"
    row = AuditLog.objects.filter(action="story.status_changed", entity_id=str(blocked.pk)).get()
    assert row.details["override_blocked"] == {"reason": "vendor confirmed", "blockers": ["A-1"]}
    assert StatusHistory.objects.filter(story=blocked).latest("id").notes.endswith("vendor confirmed")


def test_update_override_by_admin(blocked, admin_user):
    response = _client_for(admin_user).patch(
        f"{STORIES}B-1/", {"status": "done", "override_blocked": True, "reason": "done elsewhere"}, format="json"
    )
    assert response.status_code == 200, response.content
    row = AuditLog.objects.filter(action="story.updated", entity_id=str(blocked.pk)).latest("id")
    assert row.details["override_blocked"]["reason"] == "done elsewhere"


def test_override_refused_for_a_member_and_without_reason(blocked, member_client, admin_user):
    url = f"{STORIES}B-1/transition/"
    response = member_client.post(url, {"status": "done", "override_blocked": True, "reason": "x"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    response = _client_for(admin_user).post(url, {"status": "done", "override_blocked": True}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["details"]
    assert Story.objects.get(key="B-1").status.slug == "ready"


def test_no_guard_when_the_project_turns_it_off(blocked, project, owner, member_client):
    response = _client_for(owner).patch(
        "/api/v1/projects/plan-pipe/", {"settings": {readiness.GUARD_SETTING: False}}, format="json"
    )
    assert response.status_code == 200, response.content
    response = member_client.post(f"{STORIES}B-1/transition/", {"status": "in_progress"}, format="json")
    assert response.status_code == 200


def test_new_projects_show_the_rule(owner):
    response = _client_for(owner).post("/api/v1/projects/", {"slug": "fresh", "name": "Fresh"}, format="json")
    assert response.status_code == 201
    assert response.json()["settings"] == {readiness.GUARD_SETTING: True}


def test_bulk_endpoint_reports_the_blocked_item(blocked, member_client):
    response = member_client.post(f"{STORIES}bulk/", {"items": [{"key": "B-1", "status": "done"}]}, format="json")
    assert response.status_code == 400
    (item,) = response.json()["details"]["items"]
    assert item["field"] == "status" and "A-1" in item["reason"]
