"""The audit log for people: each row says what it is about ("KEY — title") and in
which project, what changed (old → new), filters by project, and its detail page shows
the change as a table. Hidden projects stay hidden (placeholders, never a key or title)."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditLog
from stories import services
from tests.factories import MemberFactory, ProjectFactory, StoryFactory, UserFactory

AUDIT = reverse("admin:audit_auditlog_changelist")


def text(response) -> str:
    return " ".join(response.content.decode().split())


def test_rows_name_the_story_its_project_and_the_change(su_client, project, make_story, owner):
    story = make_story("PP-041", title="Parse the pipeline file")
    services.story_transition(actor=owner, story=story, status="ready")
    body = text(su_client.get(f"{AUDIT}?action=story.status_changed"))
    assert "PP-041 — Parse the pipeline file" in body
    assert "plan-pipe — Plan Pipe" in body
    assert "status: draft → ready" in body
    assert reverse("admin:stories_story_change", args=[story.pk]) in body

    row = AuditLog.objects.get(action="story.status_changed")
    detail = text(su_client.get(reverse("admin:audit_auditlog_change", args=[row.pk])))
    assert '<table class="storyhub-audit-changes">' in detail
    assert '<th scope="row">status</th><td><pre>draft</pre></td><td><pre>ready</pre></td>' in detail
    assert '<th scope="row">source</th>' in detail


def test_a_deleted_story_keeps_its_key_and_is_not_linked(su_client, project, make_story, owner):
    story = make_story("PP-050", title="Gone soon")
    pk = story.pk
    services.story_delete(actor=owner, story=story)
    body = text(su_client.get(f"{AUDIT}?action=story.deleted"))
    assert "PP-050 — Gone soon (deleted)" in body
    assert reverse("admin:stories_story_change", args=[pk]) not in body


def test_project_filter_and_hidden_sides(client, project, make_story, owner):
    mine = make_story("PP-1")
    secret = ProjectFactory(slug="zqxhidden-p", name="zqxhidden", actor=owner)
    hidden = StoryFactory(project=secret, key="ZQXHIDDEN-1", title="zqxhidden", actor=owner)
    services.dependency_add(actor=owner, story=mine, depends_on=hidden)
    other = ProjectFactory(slug="other", name="Other", actor=owner)
    StoryFactory(project=other, key="OT-1", actor=owner)
    staff = UserFactory(username="reader", is_staff=True)
    MemberFactory(project=project, user=staff, role="viewer", actor=owner)
    MemberFactory(project=other, user=staff, role="viewer", actor=owner)
    client.force_login(staff)
    everything = client.get(AUDIT)
    assert "zqxhidden" not in everything.content.decode().lower()
    assert "PP-1 → (hidden)" in text(everything)
    only = client.get(f"{AUDIT}?project={project.pk}")
    keys = {row.project_id for row in only.context["cl"].result_list}
    assert keys == {project.pk}
    assert "OT-1" not in text(only)
    # A project the reader cannot see filters to nothing (and is not offered).
    assert client.get(f"{AUDIT}?project={secret.pk}").context["cl"].result_count == 0
    assert "zqxhidden" not in client.get(f"{AUDIT}?project={secret.pk}").content.decode().lower()


def _rows(project, owner, start, count):
    for i in range(start, start + count):
        story = StoryFactory(project=project, key=f"Q-{i:03d}", actor=owner)
        services.story_transition(actor=owner, story=story, status="ready")


def test_query_count_constant_in_the_rows(su_client, project, owner):
    _rows(project, owner, 0, 3)
    epic = services.epic_create(actor=owner, project=project, slug="e1")
    services.backlog_create(actor=owner, project=project, slug="b1", name="B1")
    assert epic
    with CaptureQueriesContext(connection) as few:
        su_client.get(f"{AUDIT}?project={project.pk}")
    _rows(project, owner, 3, 30)
    with CaptureQueriesContext(connection) as many:
        response = su_client.get(f"{AUDIT}?project={project.pk}")
    assert response.context["cl"].result_count > 60
    assert len(many.captured_queries) == len(few.captured_queries)
