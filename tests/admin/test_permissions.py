"""Non-superuser staff see and change only the projects they belong to, with their
role's rights; superusers see everything."""

from __future__ import annotations

import pytest
from django.urls import reverse

from stories import services
from stories.models import Project, Story
from tests.admin.conftest import admin_form_data
from tests.factories import ProjectFactory, StoryFactory, UserFactory


@pytest.fixture
def foreign_story(owner):
    other = ProjectFactory(slug="secret", name="Secret", actor=owner)
    return StoryFactory(project=other, key="SEC-001", title="Hidden", actor=owner)


def url(name: str, *args) -> str:
    return reverse(f"admin:stories_{name}", args=args)


def test_changelists_show_only_member_projects(staff_client, story, foreign_story):
    client = staff_client("viewer")
    stories = client.get(url("story_changelist"))
    assert stories.status_code == 200
    assert [s.key for s in stories.context["cl"].result_list] == ["INF-001"]
    projects = client.get(url("project_changelist"))
    assert [p.slug for p in projects.context["cl"].result_list] == ["plan-pipe"]
    audit = client.get(reverse("admin:audit_auditlog_changelist"))
    assert audit.status_code == 200
    rows = audit.context["cl"].result_list
    assert rows and all(r.details.get("project") == "plan-pipe" or r.entity_type == "project" for r in rows)
    assert all(r.details.get("project") != "secret" and r.entity_id != str(foreign_story.project_id) for r in rows)
    assert "SEC-001" not in client.get(url("statushistory_changelist")).content.decode()


def test_other_projects_objects_are_not_found(staff_client, foreign_story):
    client = staff_client("owner")
    for page in (
        url("story_change", foreign_story.pk),
        url("project_change", foreign_story.project_id),
        url("project_graph", foreign_story.project_id),
    ):
        response = client.get(page)
        assert response.status_code in (302, 404), page
        assert "Hidden" not in response.content.decode()
    # Autocomplete does not leak them either.
    response = client.get(
        reverse("admin:autocomplete"),
        {"term": "SEC", "app_label": "stories", "model_name": "storydependency", "field_name": "depends_on"},
    )
    assert response.status_code == 200
    assert "SEC-001" not in response.content.decode()


def test_viewer_sees_but_cannot_change(staff_client, story):
    client = staff_client("viewer")
    page = client.get(url("story_change", story.pk))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = client.post(url("story_change", story.pk), {"title": "nope"})
    assert response.status_code == 403
    assert client.get(url("story_add")).status_code == 403
    assert client.post(url("story_delete", story.pk), {"post": "yes"}).status_code == 403
    actions = client.post(
        url("story_changelist"), {"action": "transition_selected", "_selected_action": [story.pk], "apply": "yes"}
    )
    story.refresh_from_db()
    assert story.status.slug == "draft"
    assert actions.status_code in (200, 302)


def test_member_edits_stories_but_not_the_project(staff_client, story, project):
    client = staff_client("member")
    data = admin_form_data(client.get(url("story_change", story.pk)))
    data["title"] = "Edited by a member"
    assert client.post(url("story_change", story.pk), data).status_code == 302
    assert Story.objects.get(pk=story.pk).title == "Edited by a member"
    page = client.get(url("project_change", project.pk))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(url("project_change", project.pk), {"name": "x"}).status_code == 403
    assert client.get(url("backlog_add")).status_code == 403


def test_member_can_only_create_stories_in_their_projects(staff_client, project, foreign_story):
    client = staff_client("member")
    page = client.get(url("story_add"))
    data = admin_form_data(page)
    data.update(project=foreign_story.project_id, key="X-1", title="Smuggled")
    response = client.post(url("story_add"), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["project"]
    assert not Story.objects.filter(key="X-1").exists()
    data.update(project=project.pk)
    assert client.post(url("story_add"), data).status_code == 302


def test_admin_manages_project_but_only_owner_deletes(staff_client, project):
    admin_client = staff_client("admin")
    data = admin_form_data(admin_client.get(url("project_change", project.pk)))
    data["description"] = "Set by the project admin"
    assert admin_client.post(url("project_change", project.pk), data).status_code == 302
    assert Project.objects.get(pk=project.pk).description == "Set by the project admin"
    assert admin_client.post(url("project_delete", project.pk), {"post": "yes"}).status_code == 403
    owner_client = staff_client("owner", username="staff-owner")
    assert owner_client.post(url("project_delete", project.pk), {"post": "yes"}).status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()


def test_staff_without_membership_see_nothing_of_stories(staff_client, story):
    client = staff_client(None)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert "Stories" not in index.content.decode()
    assert client.get(url("story_changelist")).status_code == 403
    # But they may start a project of their own, and then own it.
    data = admin_form_data(client.get(url("project_add")))
    data.update(slug="mine", name="Mine", status="active", metadata="{}", settings="{}")
    assert client.post(url("project_add"), data).status_code == 302
    assert services.selectors.project_list_for_user(user=client.user).get().slug == "mine"


def test_non_staff_cannot_enter(client, owner):
    client.force_login(owner)  # a member, but not staff
    response = client.get(url("story_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_can_pick_users_in_autocomplete_without_browsing_users(staff_client):
    UserFactory(username="findme")
    client = staff_client("admin")
    response = client.get(
        reverse("admin:autocomplete"),
        {"term": "findme", "app_label": "stories", "model_name": "projectmember", "field_name": "user"},
    )
    assert response.status_code == 200
    assert "findme" in response.content.decode()
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
