"""The admin's branding, templates directory and static files."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse


def test_branding(su_client):
    body = su_client.get(reverse("admin:index")).content.decode()
    assert "<title>Site administration | StoryHub</title>" in body or "| StoryHub</title>" in body
    assert "StoryHub administration" in body
    assert "View site" not in body  # nothing public at /


def test_templates_dir_is_the_repository_templates():
    dirs = [Path(d) for d in settings.TEMPLATES[0]["DIRS"]]
    assert Path(__file__).resolve().parents[2] / "templates" in dirs
    assert (dirs[0] / "admin" / "stories" / "project" / "graph.html").is_file()


@override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True)
def test_admin_static_is_served_by_whitenoise_as_in_make_run():
    """`make run` (DEBUG on) has whitenoise serve from the finders; production serves the
    collected files (tests/deploy checks that under gunicorn)."""
    client = Client()  # a new handler, so whitenoise reads the settings above
    for path in ("admin/css/base.css", "admin/js/autocomplete.js", "admin/js/vendor/select2/select2.full.min.js"):
        response = client.get(f"/static/{path}")
        assert response.status_code == 200, path
        assert b"".join(response.streaming_content if response.streaming else [response.content])


def test_the_admin_site_is_storyhubs():
    from django.contrib import admin

    from storyhub.admin_site import StoryHubAdminSite

    assert isinstance(admin.site, StoryHubAdminSite)


def test_story_autocomplete_names_the_project(su_client, owner, story):
    from tests.factories import ProjectFactory, StoryFactory

    StoryFactory(project=ProjectFactory(slug="other", actor=owner), key="INF-001", title="Twin", actor=owner)
    response = su_client.get(
        reverse("admin:autocomplete"),
        {"term": "INF-001", "app_label": "stories", "model_name": "storydependency", "field_name": "depends_on"},
    )
    assert response.status_code == 200
    texts = sorted(r["text"] for r in response.json()["results"])
    assert texts == ["other:INF-001 — Twin", "plan-pipe:INF-001 — First story"]
