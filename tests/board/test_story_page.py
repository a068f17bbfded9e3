"""The story page: the status history reads status names and full times; the status
field offers only the moves the workflow allows."""

from __future__ import annotations

from stories import services
from tests.factories import StoryFactory


def test_history_names_and_full_times(su_client, project, owner):
    story = StoryFactory(project=project, key="H-1")
    services.story_transition(actor=owner, story=story, status="in_progress")
    html = su_client.get(f"/admin/stories/story/{story.pk}/change/").content.decode()
    history = html.split('id="status_history-group"')[1]
    assert "In progress" in history and "Draft" in history
    when = story.status_history.latest("id").changed_at.strftime("%Y-%m-%d %H:%M:%S")
    assert when in history


def test_add_form_for_a_project_offers_only_its_statuses(su_client, project, owner):
    from tests.factories import ProjectFactory

    ProjectFactory(slug="second", actor=owner)
    page = su_client.get(f"/admin/stories/story/add/?project={project.pk}")
    offered = page.context["adminform"].form.fields["status"].queryset
    assert {s.project_id for s in offered} == {project.pk}
    assert offered.count() == project.statuses.count()
