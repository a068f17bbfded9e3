"""The story add form narrows statuses, backlogs and epics to the chosen project: in the
page (storyhub/story_add.js reads the project's story-choices JSON) and on the server (a
status of another project is refused on save)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from stories import services
from stories.models import Status, Story
from tests.admin.conftest import admin_form_data
from tests.factories import ProjectFactory, StoryFactory

pytestmark = pytest.mark.django_db


def choices_url(project) -> str:
    return reverse("admin:stories_project_story_choices", args=[project.pk])


def test_choices_are_the_projects_own(su_client, project, owner):
    services.backlog_create(actor=owner, project=project, slug="sprint-1", name="Sprint 1")
    services.epic_create(actor=owner, project=project, slug="ux", name="User experience")
    other = ProjectFactory(slug="other", actor=owner)
    services.status_create(actor=owner, project=other, slug="elsewhere", name="Elsewhere", category="started")
    body = su_client.get(choices_url(project)).json()
    expected = list(Status.objects.filter(project=project).values_list("pk", "name"))
    assert [(row["id"], row["name"]) for row in body["status"]] == expected
    assert "Elsewhere" not in [row["name"] for row in body["status"]]
    assert [row["name"] for row in body["backlog"]] == ["Sprint 1"]
    assert [row["name"] for row in body["epic"]] == ["User experience"]


def test_choices_need_a_member_and_hide_other_projects(staff_client, project, owner):
    assert staff_client("member").get(choices_url(project)).status_code == 200
    assert staff_client("viewer").get(choices_url(project)).status_code == 403
    hidden = ProjectFactory(slug="zz-hidden", name="Hidden one", actor=owner)
    response = staff_client(None).get(choices_url(hidden))
    assert response.status_code == 404 and b"zz-hidden" not in response.content
    assert staff_client(None, "another").get(choices_url(project)).status_code == 404


def test_choices_read_a_fixed_number_of_queries(su_client, project, owner):
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert su_client.get(choices_url(project)).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for i in range(6):
        services.status_create(actor=owner, project=project, slug=f"s-{i}", name=f"S {i}", category="started")
        services.backlog_create(actor=owner, project=project, slug=f"b-{i}", name=f"B {i}")
        services.epic_create(actor=owner, project=project, slug=f"e-{i}")
    assert count() == few


def test_the_add_page_loads_the_script_with_the_choices_url(su_client, project):
    body = su_client.get(reverse("admin:stories_story_add")).content.decode()
    template = reverse("admin:stories_project_story_choices", args=["__project__"])
    assert "storyhub/story_add.js" in body and f'data-choices-url="{template}"' in body
    story = StoryFactory(project=project, key="CH-1", actor=None)
    change = su_client.get(reverse("admin:stories_story_change", args=[story.pk]))
    assert "story_add.js" not in change.content.decode()


def test_a_status_of_another_project_is_refused_on_save(su_client, project, owner):
    other = ProjectFactory(slug="other", actor=owner)
    foreign = Status.objects.get(project=other, slug="ready")
    data = admin_form_data(su_client.get(reverse("admin:stories_story_add") + f"?project={project.pk}"))
    data.update({"project": str(project.pk), "key": "ADD-1", "title": "Added", "status": str(foreign.pk)})
    response = su_client.post(reverse("admin:stories_story_add"), data)
    assert response.status_code == 200
    assert "status" in response.context["adminform"].form.errors
    assert not Story.objects.filter(key="ADD-1").exists()
    data["status"] = str(Status.objects.get(project=project, slug="ready").pk)
    assert su_client.post(reverse("admin:stories_story_add"), data).status_code == 302
    assert Story.objects.get(project=project, key="ADD-1").status.slug == "ready"
