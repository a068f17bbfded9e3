"""Project settings and a status's moves are forms, not raw JSON: one field per setting
StoryHub reads (stories.project_settings.SCHEMA) with clear errors, the project's own keys
apart; a status's moves as checkboxes of its project's statuses with "any move allowed"
its own box (an empty list, said out loud). The model and the API are unchanged."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from audit.models import AuditLog
from stories import project_settings, services
from stories.admin_workflow import OTHER_SETTINGS, SCALE_TEXT_FIELD, setting_field_name
from stories.models import Project, Status
from tests.admin.conftest import admin_form_data
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

GUARD = setting_field_name(project_settings.BLOCKED_GUARD)
MISSING = setting_field_name(project_settings.CREATE_MISSING_STATUSES)
SCALE = setting_field_name(project_settings.PRIORITY_SCALE)
DEFAULT = setting_field_name(project_settings.DEFAULT_STATUS)


def change_url(project) -> str:
    return reverse("admin:stories_project_change", args=[project.pk])


def post_project(client, project, **changes):
    data = admin_form_data(client.get(change_url(project)))
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return client.post(change_url(project), data)


def errors(response) -> dict:
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


def test_one_field_per_known_setting_and_no_settings_json(su_client, project):
    response = su_client.get(change_url(project))
    form = response.context["adminform"].form
    for setting in project_settings.SCHEMA:
        assert setting_field_name(setting.key) in form.fields, setting.key
    assert "settings" not in form.fields
    assert 'name="settings"' not in response.content.decode()
    assert form.fields[GUARD].initial is True and form[SCALE].value() == "high-first"
    assert [slug for slug, _ in form.fields[DEFAULT].choices] == list(
        Status.objects.filter(project=project).order_by("order", "slug").values_list("slug", flat=True)
    )


def test_saving_the_untouched_form_changes_no_setting(su_client, project):
    before = Project.objects.get(pk=project.pk).settings
    assert post_project(su_client, project).status_code == 302
    assert Project.objects.get(pk=project.pk).settings == before
    assert not AuditLog.objects.filter(action="project.updated", entity_id=str(project.pk)).exists()


def test_each_setting_is_saved_through_the_service(su_client, project):
    response = post_project(su_client, project, **{GUARD: None, MISSING: "on", SCALE: "low-first", DEFAULT: "backlog"})
    assert response.status_code == 302, errors(response)
    settings = Project.objects.get(pk=project.pk).settings
    assert settings[project_settings.BLOCKED_GUARD] is False
    assert settings[project_settings.CREATE_MISSING_STATUSES] is True
    assert settings[project_settings.PRIORITY_SCALE] == "low-first"
    assert settings[project_settings.DEFAULT_STATUS] == "backlog"
    row = AuditLog.objects.filter(action="project.updated").latest("id")
    assert "settings" in row.details["changes"]


def test_own_priority_scale(su_client, project):
    response = post_project(su_client, project, **{SCALE: "custom", SCALE_TEXT_FIELD: "1=critical, 2=High, 9=low"})
    assert response.status_code == 302, errors(response)
    assert Project.objects.get(pk=project.pk).settings["priority_scale"] == {"1": "critical", "2": "high", "9": "low"}
    # Shown back as it was written.
    form = su_client.get(change_url(project)).context["adminform"].form
    assert form[SCALE].value() == "custom" and form[SCALE_TEXT_FIELD].value() == "1=critical, 2=high, 9=low"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({SCALE: "custom", SCALE_TEXT_FIELD: "1=huge"}, SCALE_TEXT_FIELD, "'huge' is not a priority"),
        ({SCALE: "custom", SCALE_TEXT_FIELD: "first=critical"}, SCALE_TEXT_FIELD, "is not number=word"),
        ({SCALE: "custom", SCALE_TEXT_FIELD: ""}, SCALE_TEXT_FIELD, "at least one number=word"),
        ({SCALE: "sideways"}, SCALE, "Select a valid choice"),
        ({DEFAULT: "nowhere"}, DEFAULT, "Select a valid choice"),
        ({OTHER_SETTINGS: "[1, 2]"}, OTHER_SETTINGS, "Give a JSON object"),
        ({OTHER_SETTINGS: '{"blocked_guard": false}'}, OTHER_SETTINGS, "own field above"),
        ({OTHER_SETTINGS: "{not json"}, OTHER_SETTINGS, "Enter a valid JSON"),
    ],
)
def test_bad_settings_are_field_errors_and_nothing_is_saved(su_client, project, changes, field, message):
    before = Project.objects.get(pk=project.pk).settings
    found = errors(post_project(su_client, project, **changes))
    assert message in " ".join(found.get(field, [])), found
    assert Project.objects.get(pk=project.pk).settings == before


def test_the_projects_own_keys_are_kept_apart(su_client, owner):
    project = ProjectFactory(slug="own-keys", actor=owner, settings={"team": "core", "blocked_guard": True})
    form = su_client.get(change_url(project)).context["adminform"].form
    assert json.loads(form[OTHER_SETTINGS].value()) == {"team": "core"}
    response = post_project(su_client, project, **{OTHER_SETTINGS: '{"team": "edge", "x": [1]}'})
    assert response.status_code == 302, errors(response)
    assert Project.objects.get(pk=project.pk).settings == {"team": "edge", "x": [1], "blocked_guard": True}


def test_new_project_with_settings(su_client):
    data = admin_form_data(su_client.get(reverse("admin:stories_project_add")))
    data.update(slug="fresh", name="Fresh", status="active", metadata="{}", **{MISSING: "on", DEFAULT: "ready"})
    response = su_client.post(reverse("admin:stories_project_add"), data)
    assert response.status_code == 302, errors(response)
    settings = Project.objects.get(slug="fresh").settings
    assert settings["create_missing_statuses"] is True and settings["default_status"] == "ready"
    assert settings["blocked_guard"] is True


def test_a_viewer_reads_the_settings_without_a_form(staff_client, owner):
    project = ProjectFactory(slug="read-me", actor=owner, settings={"priority_scale": "low-first", "team": "core"})
    from tests.factories import MemberFactory, UserFactory

    viewer = UserFactory(username="reader", is_staff=True)
    MemberFactory(project=project, user=viewer, role="viewer", actor=owner)
    from django.test import Client

    client = Client()
    client.force_login(viewer)
    body = " ".join(client.get(change_url(project)).content.decode().split())
    assert "Numeric priority scale: low-first" in body and "Blocked guard: on" in body
    assert 'name="setting_' not in body and '"team": "core"' in body.replace("&quot;", '"')


# --------------------------------------------------------------------------- a status's moves


def status_url(status) -> str:
    return reverse("admin:stories_status_change", args=[status.pk])


def post_status(client, status, **changes):
    data = admin_form_data(client.get(status_url(status)))
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return client.post(status_url(status), data)


def test_status_form_offers_the_projects_statuses_and_any_move(su_client, project, owner):
    other = ProjectFactory(slug="other", actor=owner)
    services.status_create(actor=owner, project=other, slug="elsewhere", name="Elsewhere", category="started")
    ready = Status.objects.get(project=project, slug="ready")
    response = su_client.get(status_url(ready))
    form = response.context["adminform"].form
    choices = [slug for slug, _ in form.fields["moves_to"].choices]
    assert "elsewhere" not in choices and "ready" not in choices and "done" in choices
    assert form["any_move"].value() is True  # the default workflow's empty list
    body = response.content.decode()
    assert "Any move allowed" in body and "empty list" in body
    assert 'name="allowed_transitions"' not in body


def test_status_moves_are_saved_and_audited(su_client, project):
    ready = Status.objects.get(project=project, slug="ready")
    response = post_status(su_client, ready, any_move=None, moves_to=["in_progress", "cancelled"])
    assert response.status_code == 302, errors(response)
    ready.refresh_from_db()
    assert ready.allowed_transitions == ["in_progress", "cancelled"]
    assert AuditLog.objects.filter(action="status.updated").exists()
    form = su_client.get(status_url(ready)).context["adminform"].form
    assert form["any_move"].value() is False and form["moves_to"].value() == ["in_progress", "cancelled"]
    response = post_status(su_client, ready, any_move="on", moves_to=[])
    assert response.status_code == 302, errors(response)
    ready.refresh_from_db()
    assert ready.allowed_transitions == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"any_move": None, "moves_to": []}, "Tick at least one status"),
        ({"any_move": "on", "moves_to": ["done"]}, "Untick 'Any move allowed'"),
        ({"any_move": None, "moves_to": ["elsewhere"]}, "Select a valid choice"),
    ],
)
def test_status_moves_errors(su_client, project, owner, changes, message):
    other = ProjectFactory(slug="other", actor=owner)
    services.status_create(actor=owner, project=other, slug="elsewhere", name="Elsewhere", category="started")
    ready = Status.objects.get(project=project, slug="ready")
    found = errors(post_status(su_client, ready, **changes))
    assert message in " ".join(found.get("moves_to", [])), found
    ready.refresh_from_db()
    assert ready.allowed_transitions == []


def test_a_viewer_reads_the_moves_in_words(staff_client, project):
    accepted = Status.objects.get(project=project, slug="accepted")
    body = staff_client("viewer").get(status_url(accepted)).content.decode()
    assert "done, review" in body
    assert 'name="moves_to"' not in body and 'name="any_move"' not in body


def test_story_metadata_is_indented_with_what_it_holds(su_client, project, owner):
    from stories.models import Story
    from tests.factories import StoryFactory

    story = StoryFactory(project=project, key="MD-1", metadata={"market": "eu", "layer": 2}, actor=owner)
    url = reverse("admin:stories_story_change", args=[story.pk])
    response = su_client.get(url)
    body = response.content.decode().replace("&quot;", '"')
    assert '{\n  "layer": 2,\n  "market": "eu"\n}' in body
    assert "front-matter keys StoryHub does not model" in body
    # Saved as shown: nothing changes, no new version.
    data = admin_form_data(response)
    assert su_client.post(url, data).status_code == 302
    assert Story.objects.get(pk=story.pk).version == story.version
