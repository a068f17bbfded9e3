"""Story admin: pages, saving through the services, the refusals shown on the form."""

from __future__ import annotations

import io
import zipfile

from django.urls import reverse

from audit.models import AuditLog
from stories import services
from stories.models import StatusHistory, Story, StoryDependency
from tests.admin.conftest import add_inline_row, admin_form_data, messages_of
from tests.factories import ProjectFactory, StoryFactory

CHANGELIST = reverse("admin:stories_story_changelist")


def change_url(story) -> str:
    return reverse("admin:stories_story_change", args=[story.pk])


def test_changelist_add_and_change_pages_render(su_client, story):
    assert su_client.get(CHANGELIST).status_code == 200
    page = su_client.get(reverse("admin:stories_story_add"))
    assert page.status_code == 200
    page = su_client.get(change_url(story))
    assert page.status_code == 200
    body = page.content.decode()
    assert "StoryHub administration" in body
    assert 'name="version"' in body and 'type="hidden"' in body
    assert "depends on (must finish first)" in body.lower()
    assert "status history" in body.lower()


def test_add_story_writes_history_and_audit(su_client, project):
    page = su_client.get(reverse("admin:stories_story_add"))
    data = admin_form_data(page)
    data.update(project=project.pk, key="INF-100", title="Made in the admin", priority="3", labels="db, admin")
    response = su_client.post(reverse("admin:stories_story_add"), data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    story = Story.objects.get(project=project, key="INF-100")
    assert story.status.slug == "draft"
    assert story.labels == ["db", "admin"]
    assert StatusHistory.objects.filter(story=story, old_status=None).count() == 1
    row = AuditLog.objects.get(action="story.created", entity_id=str(story.pk))
    assert row.details["source"] == "admin"
    assert row.user_repr == "root"


def test_change_status_with_notes(su_client, story):
    page = su_client.get(change_url(story))
    data = admin_form_data(page)
    ready = story.project.statuses.get(slug="ready")
    data.update(status=ready.pk, status_notes="groomed in the admin", title="Renamed")
    response = su_client.post(change_url(story), data)
    assert response.status_code == 302
    story.refresh_from_db()
    assert (story.status.slug, story.title, story.version) == ("ready", "Renamed", 2)
    history = StatusHistory.objects.filter(story=story).order_by("-id").first()
    assert (history.old_status.slug, history.new_status.slug, history.notes) == (
        "draft",
        "ready",
        "groomed in the admin",
    )
    row = AuditLog.objects.filter(action="story.updated", entity_id=str(story.pk)).get()
    assert row.details["changes"]["status"] == {"old": "draft", "new": "ready"}
    # The new history row is on the story page.
    assert "groomed in the admin" in su_client.get(change_url(story)).content.decode()


def test_stale_version_is_refused_on_the_form(su_client, story, owner):
    page = su_client.get(change_url(story))
    data = admin_form_data(page)
    services.story_update(actor=owner, story=story, data={"title": "Someone else's edit"})
    audit_before = AuditLog.objects.count()
    data["title"] = "My edit"
    response = su_client.post(change_url(story), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert any("changed by someone else" in e for e in errors)
    story.refresh_from_db()
    assert story.title == "Someone else's edit"
    assert AuditLog.objects.count() == audit_before


def test_invalid_transition_is_refused_on_the_form(su_client, story, owner):
    services.story_transition(actor=owner, story=story, status="accepted")
    page = su_client.get(change_url(story))
    # Only the workflow's moves from 'accepted' (done, review) and staying are offered.
    offered = {s.slug for s in page.context["adminform"].form.fields["status"].queryset}
    assert offered == {"accepted", "done", "review"}
    data = admin_form_data(page)
    data["status"] = story.project.statuses.get(slug="draft").pk
    history_before = StatusHistory.objects.count()
    response = su_client.post(change_url(story), data)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["status"]  # not a choice: refused before any write
    story.refresh_from_db()
    assert story.status.slug == "accepted"
    assert StatusHistory.objects.count() == history_before


def test_dependency_inlines_both_directions_cross_project(su_client, story, make_story, owner):
    other_project = ProjectFactory(slug="other", actor=owner)
    foreign = StoryFactory(project=other_project, key="API-004", actor=owner)
    waiting = make_story("INF-002")
    page = su_client.get(change_url(story))
    data = admin_form_data(page)
    add_inline_row(data, "dependencies", depends_on=foreign.pk, type="blocks")
    add_inline_row(data, "dependents", story=waiting.pk, type="blocks")
    response = su_client.post(change_url(story), data)
    assert response.status_code == 302, response.context and messages_of(response)
    assert StoryDependency.objects.filter(story=story, depends_on=foreign).exists()
    assert StoryDependency.objects.filter(story=waiting, depends_on=story).exists()
    assert AuditLog.objects.filter(action="dependency.added").count() == 2
    # Story fields did not change, so no new version.
    story.refresh_from_db()
    assert story.version == 1


def test_cycle_is_refused_and_nothing_is_saved(su_client, story, make_story, owner):
    blocker = make_story("INF-002")
    services.dependency_add(actor=owner, story=story, depends_on=blocker)
    page = su_client.get(change_url(blocker))
    data = admin_form_data(page)
    data["title"] = "Changed together with the bad link"
    add_inline_row(data, "dependencies", depends_on=story.pk, type="blocks")
    audit_before = AuditLog.objects.count()
    response = su_client.post(change_url(blocker), data)
    assert response.status_code == 200
    assert "would close a cycle" in response.content.decode()
    inline_forms = [f for fs in response.context["inline_admin_formsets"] for f in fs.formset.forms]
    assert any("depends_on" in f.errors for f in inline_forms)
    blocker.refresh_from_db()
    assert blocker.title == "Story INF-002"  # the whole save was rolled back
    assert not StoryDependency.objects.filter(story=blocker).exists()
    assert AuditLog.objects.count() == audit_before


def test_remove_dependency_through_inline(su_client, story, make_story, owner):
    blocker = make_story("INF-002")
    services.dependency_add(actor=owner, story=story, depends_on=blocker)
    data = admin_form_data(su_client.get(change_url(story)))
    data["dependencies-0-DELETE"] = "on"
    response = su_client.post(change_url(story), data)
    assert response.status_code == 302
    assert not StoryDependency.objects.exists()
    assert AuditLog.objects.filter(action="dependency.removed").count() == 1


def test_delete_story(su_client, story):
    url = reverse("admin:stories_story_delete", args=[story.pk])
    assert su_client.get(url).status_code == 200
    response = su_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Story.objects.filter(pk=story.pk).exists()
    assert AuditLog.objects.filter(action="story.deleted", entity_id=str(story.pk)).exists()


def test_delete_selected_action(su_client, story, make_story):
    other = make_story("INF-002")
    response = su_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [story.pk, other.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not Story.objects.exists()
    assert AuditLog.objects.filter(action="story.deleted").count() == 2


def test_transition_action_intermediate_page_and_apply(su_client, story, make_story, owner):
    accepted = make_story("INF-002")
    services.story_transition(actor=owner, story=accepted, status="accepted")
    selected = {"action": "transition_selected", "_selected_action": [story.pk, accepted.pk]}
    page = su_client.post(CHANGELIST, selected)
    assert page.status_code == 200
    assert "Change the status of these stories" in page.content.decode()
    # No status preselected: the first option is the empty prompt, and none is selected.
    assert page.context["form"]["status"].value() is None
    assert list(page.context["form"].fields["status"].choices)[0][0] == ""
    select = page.content.decode().split('name="status"')[1].split("</select>")[0]
    assert select.count("selected") == 1 and 'value="" selected' in select
    response = su_client.post(
        CHANGELIST, {**selected, "apply": "yes", "status": "ready", "notes": "sprint 3"}, follow=True
    )
    assert response.status_code == 200
    text = " ".join(messages_of(response))
    assert f"Moved to 'ready': 1 story: {story.project.slug}:{story.key}." in text
    assert "INF-002: Cannot move from 'accepted' to 'ready'" in text
    story.refresh_from_db()
    assert story.status.slug == "ready"
    assert StatusHistory.objects.filter(story=story, notes="sprint 3").count() == 1
    assert AuditLog.objects.filter(action="story.status_changed", entity_id=str(story.pk)).count() == 1
    assert Story.objects.get(pk=accepted.pk).status.slug == "accepted"


def test_transition_action_requires_a_status(su_client, story):
    response = su_client.post(
        CHANGELIST, {"action": "transition_selected", "_selected_action": [story.pk], "apply": "yes"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["status"]


def test_move_to_backlog_action(su_client, story, project, owner):
    backlog = services.backlog_create(actor=owner, project=project, slug="sprint-1", name="Sprint 1")
    selected = {"action": "move_to_backlog", "_selected_action": [story.pk]}
    assert su_client.post(CHANGELIST, selected).status_code == 200
    response = su_client.post(CHANGELIST, {**selected, "apply": "yes", "backlog": "sprint-1"}, follow=True)
    assert response.status_code == 200
    story.refresh_from_db()
    assert story.backlog == backlog
    assert AuditLog.objects.filter(action="story.moved", entity_id=str(story.pk)).count() == 1
    su_client.post(CHANGELIST, {**selected, "apply": "yes", "backlog": ""})
    story.refresh_from_db()
    assert story.backlog is None


def test_export_action_zips_the_selected_stories(su_client, story, make_story, owner):
    page = su_client.get(CHANGELIST)
    offered = [name for name, _ in page.context["action_form"].fields["action"].choices]
    assert "export_markdown_zip" in offered
    other = make_story("INF-002")
    response = su_client.post(CHANGELIST, {"action": "export_markdown_zip", "_selected_action": [story.pk]})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        names = archive.namelist()
        assert len(names) == 1 and "INF-001" in names[0]
        assert "id: INF-001" in archive.read(names[0]).decode()
    assert other.key not in " ".join(names)
    foreign = StoryFactory(project=ProjectFactory(slug="p2", actor=owner), key="X-1", actor=owner)
    mixed = su_client.post(
        CHANGELIST, {"action": "export_markdown_zip", "_selected_action": [story.pk, foreign.pk]}, follow=True
    )
    assert any("one project" in m for m in messages_of(mixed))


def test_invalid_key_is_a_field_error(su_client, project):
    page = su_client.get(reverse("admin:stories_story_add"))
    data = admin_form_data(page)
    data.update(project=project.pk, key="bad key:1", title="x", priority="2")
    response = su_client.post(reverse("admin:stories_story_add"), data)
    assert response.status_code == 200
    assert "key" in response.context["adminform"].form.errors
    assert not Story.objects.filter(title="x").exists()


def test_changing_a_link_type_replaces_the_link(su_client, story, make_story, owner):
    blocker = make_story("INF-002")
    services.dependency_add(actor=owner, story=story, depends_on=blocker)
    data = admin_form_data(su_client.get(change_url(story)))
    data["dependencies-0-type"] = "relates"
    response = su_client.post(change_url(story), data)
    assert response.status_code == 302
    assert StoryDependency.objects.get(story=story).type == "relates"
    actions = list(
        AuditLog.objects.filter(entity_type="story_dependency").order_by("id").values_list("action", flat=True)
    )
    assert actions == ["dependency.added", "dependency.removed", "dependency.added"]


def test_body_is_kept_exactly(su_client, story):
    """A browser posts CRLF line breaks; the stored markdown keeps LF and its final newline."""
    data = admin_form_data(su_client.get(change_url(story)))
    data["body"] = "# INF-001\r\n\r\nNew text.\r\n"
    assert su_client.post(change_url(story), data).status_code == 302
    story.refresh_from_db()
    assert story.body == "# INF-001\n\nNew text.\n"
    data = admin_form_data(su_client.get(change_url(story)))
    data["body"] = data["body"].replace("\n", "\r\n")
    assert su_client.post(change_url(story), data).status_code == 302
    story.refresh_from_db()
    assert story.version == 2  # the second save changed nothing


def test_a_database_conflict_is_shown_not_raised(su_client, project, monkeypatch):
    """Two admins saving the same key at once: the loser's form says so (no 500)."""
    from django.db import IntegrityError

    def racing_create(**kwargs):
        raise IntegrityError("UNIQUE constraint failed: stories.project_id, stories.key")

    monkeypatch.setattr(services, "story_create", racing_create)
    data = admin_form_data(su_client.get(reverse("admin:stories_story_add")))
    data.update(project=project.pk, key="INF-200", title="Raced", priority="2")
    response = su_client.post(reverse("admin:stories_story_add"), data)
    assert response.status_code == 200
    assert "conflicts with a change saved meanwhile" in response.content.decode()


def test_changelist_filters(su_client, story, make_story, owner):
    other = make_story("INF-002")
    services.story_transition(actor=owner, story=other, status="done")
    page = su_client.get(CHANGELIST)
    titles = [spec.title for spec in page.context["cl"].filter_specs]
    assert titles == ["status category", "status", "readiness", "priority"]  # one project: no project filter
    for query, keys in (
        ("status__slug=done", ["INF-002"]),
        ("status__category__exact=backlog", ["INF-001"]),
        (f"project__id__exact={story.project_id}", ["INF-001", "INF-002"]),
        ("q=INF-002", ["INF-002"]),
    ):
        response = su_client.get(f"{CHANGELIST}?{query}")
        assert [s.key for s in response.context["cl"].result_list] == keys, query
