"""The blocked guard in the admin: the story form and the bulk status action refuse a
blocked story entering started / completed; admins override with a checkbox + reason."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditLog
from stories.models import StatusHistory, Story
from tests.admin.conftest import admin_form_data, messages_of
from tests.factories import DependencyFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:stories_story_changelist")


def change_url(story) -> str:
    return reverse("admin:stories_story_change", args=[story.pk])


@pytest.fixture
def blocked(make_story, owner):
    a = make_story("A-1", status="ready")
    b = make_story("B-1", status="ready")
    DependencyFactory(story=b, depends_on=a, actor=owner)
    return b


def test_form_save_is_refused_and_nothing_is_saved(blocked, staff_client):
    client = staff_client("member")
    data = admin_form_data(client.get(change_url(blocked)))
    data.update(status=blocked.project.statuses.get(slug="in_progress").pk, title="Renamed")
    response = client.post(change_url(blocked), data)
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.non_field_errors())
    assert "blocked by unfinished stories: A-1" in errors
    story = Story.objects.get(pk=blocked.pk)
    assert (story.status.slug, story.title) == ("ready", "Story B-1")


def test_form_override_by_admin_with_reason(blocked, staff_client):
    client = staff_client("admin")
    data = admin_form_data(client.get(change_url(blocked)))
    data.update(
        status=blocked.project.statuses.get(slug="done").pk,
        override_blocked="on",
        override_reason="verified by hand",
    )
    response = client.post(change_url(blocked), data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert Story.objects.get(pk=blocked.pk).status.slug == "done"
    row = AuditLog.objects.filter(action="story.updated", entity_id=str(blocked.pk)).latest("id")
    assert row.details["override_blocked"] == {"reason": "verified by hand", "blockers": ["A-1"]}
    assert StatusHistory.objects.filter(story=blocked).latest("id").notes.endswith("verified by hand")


def test_form_override_refused_for_a_member(blocked, staff_client):
    client = staff_client("member")
    data = admin_form_data(client.get(change_url(blocked)))
    data.update(status=blocked.project.statuses.get(slug="done").pk, override_blocked="on", override_reason="x")
    response = client.post(change_url(blocked), data)
    assert response.status_code == 200
    assert "admin" in " ".join(response.context["adminform"].form.non_field_errors())
    assert Story.objects.get(pk=blocked.pk).status.slug == "ready"


def test_bulk_action_leaves_blocked_stories_where_they_are(blocked, make_story, staff_client):
    free = make_story("C-1", status="ready")
    client = staff_client("member")
    selected = {"action": "transition_selected", "_selected_action": [blocked.pk, free.pk], "apply": "yes"}
    response = client.post(CHANGELIST, {**selected, "status": "in_progress", "notes": ""}, follow=True)
    text = " ".join(messages_of(response))
    assert "Moved to 'in_progress': 1 story" in text
    assert "plan-pipe:B-1: B-1 is blocked by unfinished stories: A-1" in text
    assert Story.objects.get(pk=blocked.pk).status.slug == "ready"
    assert Story.objects.get(pk=free.pk).status.slug == "in_progress"


def test_bulk_action_override_by_admin_and_refused_for_member(blocked, staff_client):
    selected = {"action": "transition_selected", "_selected_action": [blocked.pk], "apply": "yes"}
    body = {**selected, "status": "in_progress", "override_blocked": "on", "reason": "sprint goal"}
    response = staff_client("member").post(CHANGELIST, body, follow=True)
    assert "needs the 'admin' role" in " ".join(messages_of(response))
    assert Story.objects.get(pk=blocked.pk).status.slug == "ready"
    # The reason is required with the checkbox.
    response = staff_client("admin").post(CHANGELIST, {**body, "reason": ""})
    assert response.status_code == 200 and response.context["form"].errors["reason"]
    response = staff_client("admin", username="admin-2").post(CHANGELIST, body, follow=True)
    assert "Moved to 'in_progress': 1 story" in " ".join(messages_of(response))
    row = AuditLog.objects.filter(action="story.status_changed", entity_id=str(blocked.pk)).get()
    assert row.details["override_blocked"] == {"reason": "sprint goal", "blockers": ["A-1"]}
