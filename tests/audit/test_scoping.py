"""Audit rows are scoped by the immutable project id: a new project that takes a deleted
project's slug does not inherit its rows (API and admin); link rows (story and project
dependencies) reach the owners of the projects they concern, with a side the reader
cannot see shown as "(hidden)"; a non-member sees none of it."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditLog
from stories import services
from stories.models import Status
from tests.factories import MemberFactory, ProjectFactory, StoryFactory, UserFactory

pytestmark = pytest.mark.django_db

API = "/api/v1/audit/"
ADMIN = reverse("admin:audit_auditlog_changelist")
OLD_TITLE = "Old secret roadmap"
OLD_MEMBER = "old-confidant"


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def admin_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows(user, query: str = "") -> list[dict]:
    response = api_for(user).get(f"{API}?page_size=200{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.fixture
def recycled_slug():
    """Project "alpha" of old_owner (a story, a member, a status, a backlog, an epic),
    deleted; then a new "alpha" of new_owner. Returns (old_owner, new_owner, new_project,
    ids of the old project's rows)."""
    old_owner = UserFactory(username="old-owner", is_staff=True)
    old = ProjectFactory(slug="alpha", name="Alpha", actor=old_owner)
    confidant = UserFactory(username=OLD_MEMBER)
    MemberFactory(project=old, user=confidant, role="member", actor=old_owner)
    story = StoryFactory(project=old, key="A-1", title=OLD_TITLE, actor=old_owner)
    services.story_transition(actor=old_owner, story=story, status="ready", notes="old notes")
    services.backlog_create(actor=old_owner, project=old, slug="old-sprint", name="Old sprint")
    services.epic_create(actor=old_owner, project=old, slug="old-epic")
    services.status_create(actor=old_owner, project=old, slug="old-review", name="Old review", category="started")
    old_id = old.pk
    services.project_delete(actor=old_owner, project=old)
    old_rows = set(AuditLog.objects.values_list("pk", flat=True))

    new_owner = UserFactory(username="new-owner", is_staff=True)
    new = ProjectFactory(slug="alpha", name="Alpha again", actor=new_owner)
    StoryFactory(project=new, key="A-1", title="Fresh start", actor=new_owner)
    assert new.pk != old_id
    return old_owner, new_owner, new, old_rows


def test_new_project_with_a_deleted_projects_slug_reads_none_of_its_rows_via_api(recycled_slug):
    _, new_owner, new, old_rows = recycled_slug
    for query in ("", "&project=alpha", "&entity_type=story", "&action=story.created"):
        seen = rows(new_owner, query)
        body = json.dumps(seen)
        assert OLD_TITLE not in body and OLD_MEMBER not in body and "old notes" not in body, query
        assert not {row["id"] for row in seen} & old_rows, query
    mine = rows(new_owner, "&project=alpha")
    assert {row["action"] for row in mine} >= {"project.created", "story.created"}
    assert "Fresh start" in json.dumps(mine)


def test_new_project_with_a_deleted_projects_slug_reads_none_of_its_rows_in_admin(recycled_slug):
    _, new_owner, _, old_rows = recycled_slug
    client = admin_for(new_owner)
    page = client.get(f"{ADMIN}?all=")
    assert page.status_code == 200
    listed = {row.pk for row in page.context["cl"].result_list}
    assert listed and not listed & old_rows
    for pk in old_rows:
        change = client.get(reverse("admin:audit_auditlog_change", args=[pk]))
        assert change.status_code in (302, 404), pk  # "does not exist" redirect, never the row
        assert OLD_TITLE not in change.content.decode()


def test_deleted_projects_rows_stay_with_superusers_and_auditors(recycled_slug):
    old_owner, _, _, old_rows = recycled_slug
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    assert old_rows <= {row["id"] for row in rows(root)}
    view_audit = Permission.objects.get(codename="view_auditlog", content_type__app_label="audit")
    auditor = UserFactory(username="auditor", is_staff=True)
    auditor.user_permissions.add(view_audit)
    assert old_rows <= {row["id"] for row in rows(auditor)}
    listed = admin_for(auditor).get(f"{ADMIN}?all=").context["cl"].result_list
    assert old_rows <= {row.pk for row in listed}
    # The permission alone, without staff status, makes no auditor.
    not_staff = UserFactory(username="not-staff")
    not_staff.user_permissions.add(view_audit)
    assert rows(not_staff) == []
    # The old owner lost the project, and with it its rows.
    assert not {row["id"] for row in rows(old_owner)} & old_rows


@pytest.fixture
def two_projects():
    """Project a (owner_a, reader_a) and b (owner_b, reader_b); linker is a member of both
    and links story B-1 to A-1 and project b to a."""
    owner_a, owner_b = UserFactory(username="owner-a", is_staff=True), UserFactory(username="owner-b", is_staff=True)
    a = ProjectFactory(slug="proj-a", actor=owner_a)
    b = ProjectFactory(slug="proj-b", actor=owner_b)
    reader_a, reader_b, linker = (UserFactory(username=n) for n in ("reader-a", "reader-b", "linker"))
    MemberFactory(project=a, user=reader_a, role="viewer", actor=owner_a)
    MemberFactory(project=b, user=reader_b, role="viewer", actor=owner_b)
    MemberFactory(project=a, user=linker, role="admin", actor=owner_a)
    MemberFactory(project=b, user=linker, role="admin", actor=owner_b)
    a1 = StoryFactory(project=a, key="A-1", actor=owner_a)
    a2 = StoryFactory(project=a, key="A-2", actor=owner_a)
    b1 = StoryFactory(project=b, key="B-1", actor=owner_b)
    return {
        "a": a,
        "b": b,
        "owner_a": owner_a,
        "owner_b": owner_b,
        "reader_a": reader_a,
        "reader_b": reader_b,
        "linker": linker,
        "a1": a1,
        "a2": a2,
        "b1": b1,
    }


def test_dependency_rows_are_visible_to_the_projects_owner(two_projects):
    w = two_projects
    link = services.dependency_add(actor=w["owner_a"], story=w["a2"], depends_on=w["a1"])
    services.dependency_remove(actor=w["owner_a"], dependency=link)
    seen = rows(w["owner_a"], "&entity_type=story_dependency")
    assert [row["action"] for row in seen] == ["dependency.removed", "dependency.added"]
    assert seen[1]["details"]["story"] == "proj-a:A-2" and seen[1]["details"]["depends_on"] == "proj-a:A-1"
    assert AuditLog.objects.filter(entity_type="story_dependency", project_id=w["a"].pk).count() == 2


def test_project_dependency_rows_are_visible_to_the_projects_owner(two_projects):
    w = two_projects
    link = services.project_dependency_add(actor=w["linker"], from_project=w["b"], to_project=w["a"])
    services.project_dependency_remove(actor=w["linker"], link=link)
    seen = rows(w["owner_b"], "&entity_type=project_dependency")
    assert [row["action"] for row in seen] == ["project_dependency.removed", "project_dependency.added"]
    # owner_b is no member of proj-a: its slug is not shown to them.
    assert seen[1]["details"]["from"] == "proj-b" and seen[1]["details"]["to"] == "(hidden)"
    [_, added] = rows(w["linker"], "&entity_type=project_dependency")
    assert added["details"]["from"] == "proj-b" and added["details"]["to"] == "proj-a"
    row = AuditLog.objects.get(action="project_dependency.added")
    assert (row.project_id, row.details["linked_project_id"]) == (w["b"].pk, w["a"].pk)
    # The project depended on sees it too, but not the other project's slug.
    [theirs, _] = rows(w["reader_a"], "&entity_type=project_dependency")
    assert theirs["details"]["from"] == "(hidden)" and theirs["details"]["to"] == "proj-a"
    assert "proj-b" not in json.dumps(theirs)


def test_cross_project_dependency_row_reaches_both_sides_with_the_hidden_side_redacted(two_projects):
    w = two_projects
    services.dependency_add(actor=w["linker"], story=w["b1"], depends_on=w["a1"])
    row = AuditLog.objects.get(action="dependency.added")
    assert (row.project_id, row.details["linked_project_id"]) == (w["b"].pk, w["a"].pk)

    [both] = rows(w["linker"], "&action=dependency.added")
    assert (both["details"]["story"], both["details"]["depends_on"]) == ("proj-b:B-1", "proj-a:A-1")
    [in_b] = rows(w["reader_b"], "&action=dependency.added")
    assert (in_b["details"]["story"], in_b["details"]["depends_on"]) == ("proj-b:B-1", "(hidden)")
    assert "linked_project_id" not in in_b["details"]
    [in_a] = rows(w["owner_a"], "&action=dependency.added")
    assert (in_a["details"]["story"], in_a["details"]["depends_on"]) == ("(hidden)", "proj-a:A-1")
    assert "B-1" not in json.dumps(in_a)
    assert rows(w["owner_a"], "&action=dependency.added&project=proj-a") == [in_a]

    # The admin shows the same row with the same redaction.
    change = admin_for(w["owner_a"]).get(reverse("admin:audit_auditlog_change", args=[row.pk]))
    assert change.status_code == 200
    body = change.content.decode()
    assert "proj-a:A-1" in body and "B-1" not in body and "(hidden)" in body


def test_a_non_member_sees_no_rows_and_cannot_name_a_project(two_projects):
    w = two_projects
    services.dependency_add(actor=w["linker"], story=w["b1"], depends_on=w["a1"])
    services.project_dependency_add(actor=w["linker"], from_project=w["b"], to_project=w["a"])
    stranger = UserFactory(username="stranger", is_staff=True)
    assert rows(stranger) == []
    assert api_for(stranger).get(f"{API}?project=proj-a").status_code == 400
    page = admin_for(stranger).get(ADMIN)
    assert page.status_code in (200, 403)
    if page.status_code == 200:
        assert not list(page.context["cl"].result_list)


def test_every_project_scoped_write_records_the_project_id(two_projects, vendor):
    w = two_projects
    a, owner = w["a"], w["owner_a"]
    backlog = services.backlog_create(actor=owner, project=a, slug="s1", name="S1")
    services.backlog_update(actor=owner, backlog=backlog, data={"name": "S1b"})
    epic = services.epic_create(actor=owner, project=a, slug="e1")
    services.epic_update(actor=owner, epic=epic, data={"name": "E1b"})
    status = services.status_create(actor=owner, project=a, slug="qa", name="QA", category="started")
    services.status_update(actor=owner, status=status, data={"name": "QA2"})
    services.story_update(actor=owner, story=w["a1"], data={"title": "t2", "epic": epic})
    services.story_move(actor=owner, story=w["a1"], backlog=backlog)
    services.story_transition(actor=owner, story=w["a1"], status="ready")
    services.story_delete(actor=owner, story=w["a2"])
    services.epic_delete(actor=owner, epic=services.epic_create(actor=owner, project=a, slug="e2"))
    services.backlog_delete(actor=owner, backlog=services.backlog_create(actor=owner, project=a, slug="s2", name="S2"))
    services.status_delete(
        actor=owner, status=services.status_create(actor=owner, project=a, slug="x", name="X", category="started")
    )
    services.project_update(actor=owner, project=a, data={"name": "A renamed"})
    member = services.project_member_set(actor=owner, project=a, user=w["reader_b"], role="viewer")
    services.project_member_set(actor=owner, project=a, user=w["reader_b"], role="member")
    services.project_member_remove(actor=owner, member=member)
    # A status change made with raw SQL (stories migration 0005's trigger).
    target = Status.objects.get(project=a, slug="backlog")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE stories SET status_id = %s WHERE id = %s", [target.pk, w["a1"].pk])
    about_a = AuditLog.objects.exclude(entity_type__in=["user", "session", "api_key"]).filter(
        timestamp__gte=a.created_at
    )
    unscoped = [(r.action, r.entity_type) for r in about_a if r.project_id is None and r.details.get("project")]
    assert unscoped == []
    actions = set(about_a.filter(project_id=a.pk).values_list("action", flat=True))
    assert actions >= {
        "backlog.created",
        "backlog.updated",
        "backlog.deleted",
        "epic.created",
        "epic.updated",
        "epic.deleted",
        "status.created",
        "status.updated",
        "status.deleted",
        "story.updated",
        "story.moved",
        "story.status_changed",
        "story.deleted",
        "project.updated",
        "project.member_added",
        "project.member_role_changed",
        "project.member_removed",
        "story.status_changed_outside",
    }
    outside = rows(owner, "&action=story.status_changed_outside")
    assert len(outside) == 1 and outside[0]["entity_id"] == str(w["a1"].pk)


def test_bulk_rows_record_the_project_id(owner, project):
    client = api_for(owner)
    response = client.post(
        f"/api/v1/projects/{project.slug}/stories/bulk/",
        {"items": [{"key": "BK-1", "title": "one"}, {"key": "BK-2", "title": "two"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    client.post(
        f"/api/v1/projects/{project.slug}/stories/bulk/",
        {"items": [{"key": "BK-1", "title": "one, again"}]},
        format="json",
    )
    bulk_rows = AuditLog.objects.filter(entity_type="story", action__in=["story.created", "story.updated"])
    assert bulk_rows.filter(details__key__in=["BK-1", "BK-2"]).count() >= 3
    assert set(bulk_rows.values_list("project_id", flat=True)) == {project.pk}
