"""Projects and the other per-project models in the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditLog
from stories import services
from stories.models import Backlog, Epic, Project, ProjectDependency, ProjectMember, Status, Story, StoryDependency
from tests.admin.conftest import add_inline_row, admin_form_data, messages_of
from tests.factories import ProjectFactory, UserFactory


def url(name: str, *args) -> str:
    return reverse(f"admin:stories_{name}", args=args)


def test_project_pages(su_client, project):
    for page in (url("project_changelist"), url("project_add"), url("project_change", project.pk)):
        assert su_client.get(page).status_code == 200
    body = su_client.get(url("project_change", project.pk)).content.decode()
    assert "Dependency graph" in body
    for inline in ("members", "workflow statuses", "backlogs"):
        assert inline in body.lower()


def test_add_project_uses_the_service(su_client, superuser):
    data = admin_form_data(su_client.get(url("project_add")))
    data.update(slug="new-one", name="New one", status="active", metadata="{}", settings="{}")
    response = su_client.post(url("project_add"), data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    project = Project.objects.get(slug="new-one")
    assert project.statuses.filter(slug="draft").exists()  # the default workflow
    assert ProjectMember.objects.get(project=project, user=superuser).role == "owner"
    assert AuditLog.objects.filter(action="project.created", entity_id=str(project.pk)).exists()


def test_change_project_and_its_inlines(su_client, project, owner):
    newcomer = UserFactory(username="newcomer")
    data = admin_form_data(su_client.get(url("project_change", project.pk)))
    data["name"] = "Plan Pipe 2"
    add_inline_row(data, "members", user=newcomer.pk, role="viewer")
    add_inline_row(data, "backlogs", slug="sprint-1", name="Sprint 1", type="sprint", status="active")
    add_inline_row(data, "statuses", slug="qa", name="QA", category="started", order="55", allowed_transitions="[]")
    response = su_client.post(url("project_change", project.pk), data)
    assert response.status_code == 302, response.context and messages_of(response)
    project.refresh_from_db()
    assert project.name == "Plan Pipe 2"
    assert ProjectMember.objects.get(project=project, user=newcomer).role == "viewer"
    assert Backlog.objects.filter(project=project, slug="sprint-1", type="sprint").exists()
    assert Status.objects.filter(project=project, slug="qa").exists()
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"project.updated", "project.member_added", "backlog.created", "status.created"} <= actions


def test_inline_refusal_is_shown_next_to_the_row(su_client, project, owner):
    """The last owner cannot be demoted: the refusal lands on the member row, nothing saved."""
    data = admin_form_data(su_client.get(url("project_change", project.pk)))
    row = next(k for k, v in data.items() if k.startswith("members-") and k.endswith("-user") and v == str(owner.pk))
    data[row.replace("-user", "-role")] = "viewer"
    data["name"] = "Not saved"
    response = su_client.post(url("project_change", project.pk), data)
    assert response.status_code == 200
    assert "at least one owner" in response.content.decode()
    project.refresh_from_db()
    assert project.name == "Plan Pipe"
    assert ProjectMember.objects.get(project=project, user=owner).role == "owner"


def test_status_in_use_cannot_be_deleted(su_client, project, story):
    data = admin_form_data(su_client.get(url("project_change", project.pk)))
    draft = project.statuses.get(slug="draft")
    row = next(k for k, v in data.items() if k.startswith("statuses-") and k.endswith("-id") and v == str(draft.pk))
    data[row.replace("-id", "-DELETE")] = "on"
    response = su_client.post(url("project_change", project.pk), data)
    assert response.status_code == 200
    # Django lists every protected row (the story, and its status history rows when the
    # collector reaches them first), so only the story's presence in that list is pinned.
    message = response.content.decode().split("protected related objects: ", 1)[1].split("</li>", 1)[0]
    assert "story INF-001" in message
    assert Status.objects.filter(pk=draft.pk).exists()


def test_delete_project(su_client, project, story):
    page = su_client.get(url("project_delete", project.pk))
    assert page.status_code == 200
    response = su_client.post(url("project_delete", project.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not Story.objects.exists()
    assert AuditLog.objects.filter(action="project.deleted").exists()


@pytest.mark.parametrize(
    "model", ["backlog", "status", "epic", "projectmember", "storydependency", "projectdependency"]
)
def test_other_model_pages(su_client, model, project, story, make_story, owner):
    other = make_story("INF-002")
    objects = {
        "backlog": lambda: services.backlog_create(actor=owner, project=project, slug="b1", name="B1"),
        "status": lambda: project.statuses.get(slug="review"),
        "epic": lambda: services.epic_create(actor=owner, project=project, slug="infra"),
        "projectmember": lambda: ProjectMember.objects.get(project=project, user=owner),
        "storydependency": lambda: services.dependency_add(actor=owner, story=story, depends_on=other),
        "projectdependency": lambda: services.project_dependency_add(
            actor=owner, from_project=project, to_project=ProjectFactory(slug="p2", actor=owner)
        ),
    }
    obj = objects[model]()
    assert su_client.get(url(f"{model}_changelist")).status_code == 200
    assert su_client.get(url(f"{model}_add")).status_code == 200
    assert su_client.get(url(f"{model}_change", obj.pk)).status_code == 200
    assert su_client.get(url(f"{model}_delete", obj.pk)).status_code == 200


def test_backlog_add_change_delete(su_client, project):
    data = admin_form_data(su_client.get(url("backlog_add")))
    data.update(project=project.pk, slug="team-a", name="Team A", type="team", status="active")
    assert su_client.post(url("backlog_add"), data).status_code == 302
    backlog = Backlog.objects.get(slug="team-a")
    data = admin_form_data(su_client.get(url("backlog_change", backlog.pk)))
    data["name"] = "Team Alpha"
    assert su_client.post(url("backlog_change", backlog.pk), data).status_code == 302
    assert su_client.post(url("backlog_delete", backlog.pk), {"post": "yes"}).status_code == 302
    assert not Backlog.objects.exists()
    assert list(AuditLog.objects.filter(entity_type="backlog").order_by("id").values_list("action", flat=True)) == [
        "backlog.created",
        "backlog.updated",
        "backlog.deleted",
    ]


def test_duplicate_backlog_slug_is_a_form_error(su_client, project, owner):
    services.backlog_create(actor=owner, project=project, slug="dup", name="Dup")
    data = admin_form_data(su_client.get(url("backlog_add")))
    data.update(project=project.pk, slug="dup", name="Again", type="standard", status="active")
    response = su_client.post(url("backlog_add"), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors


def test_epic_and_status_and_member_add(su_client, project):
    newcomer = UserFactory(username="newcomer")
    data = admin_form_data(su_client.get(url("epic_add")))
    data.update(project=project.pk, slug="infra", name="Infrastructure")
    assert su_client.post(url("epic_add"), data).status_code == 302
    data = admin_form_data(su_client.get(url("status_add") + f"?project={project.pk}"))
    data.update(project=project.pk, slug="qa", name="QA", category="started", order="1", moves_to=["done"])
    data.pop("any_move")  # unticked: only the ticked statuses
    assert su_client.post(url("status_add"), data).status_code == 302
    data = admin_form_data(su_client.get(url("projectmember_add")))
    data.update(project=project.pk, user=newcomer.pk, role="member")
    assert su_client.post(url("projectmember_add"), data).status_code == 302
    assert Epic.objects.filter(slug="infra").exists()
    assert Status.objects.get(project=project, slug="qa").allowed_transitions == ["done"]
    assert ProjectMember.objects.get(user=newcomer).role == "member"
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"epic.created", "status.created", "project.member_added"} <= actions


def test_unknown_allowed_transition_is_a_field_error(su_client, project):
    """Only the project's own statuses can be ticked; a posted unknown one is a field error."""
    data = admin_form_data(su_client.get(url("status_add") + f"?project={project.pk}"))
    data.update(project=project.pk, slug="qa", name="QA", category="started", order="1", moves_to=["nope"])
    data.pop("any_move")
    response = su_client.post(url("status_add"), data)
    assert response.status_code == 200
    assert "nope is not one of the available choices" in str(response.context["adminform"].form.errors["moves_to"])
    assert not Status.objects.filter(project=project, slug="qa").exists()


def test_story_dependency_admin_add_cycle_and_delete(su_client, story, make_story, owner):
    other = make_story("INF-002")
    services.dependency_add(actor=owner, story=story, depends_on=other)
    data = admin_form_data(su_client.get(url("storydependency_add")))
    data.update(story=other.pk, depends_on=story.pk, type="blocks")
    response = su_client.post(url("storydependency_add"), data)
    assert response.status_code == 200
    assert "would close a cycle" in response.content.decode()
    assert StoryDependency.objects.count() == 1
    data["type"] = "relates"  # not a blocks link: no cycle rule
    assert su_client.post(url("storydependency_add"), data).status_code == 302
    link = StoryDependency.objects.get(story=other)
    assert su_client.post(url("storydependency_delete", link.pk), {"post": "yes"}).status_code == 302
    assert AuditLog.objects.filter(action="dependency.removed").count() == 1


def test_project_dependency_add(su_client, project, owner):
    other = ProjectFactory(slug="p2", actor=owner)
    data = admin_form_data(su_client.get(url("projectdependency_add")))
    data.update(from_project=project.pk, to_project=other.pk, type="integrates")
    assert su_client.post(url("projectdependency_add"), data).status_code == 302
    assert ProjectDependency.objects.filter(from_project=project, to_project=other).exists()
    data.update(to_project=project.pk)
    response = su_client.post(url("projectdependency_add"), data)
    assert response.status_code == 200
    assert "cannot depend on itself" in response.content.decode()


def test_status_history_is_read_only(su_client, story):
    history = story.status_history.first()
    assert su_client.get(url("statushistory_changelist")).status_code == 200
    page = su_client.get(url("statushistory_change", history.pk))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert su_client.get(url("statushistory_add")).status_code == 403
    assert su_client.post(url("statushistory_delete", history.pk), {"post": "yes"}).status_code == 403
