"""Optimistic concurrency on every editable resource: an ETag on reads and writes,
If-Match on PATCH / PUT / DELETE (stale: 412 with the current ETag) and `version` in the
body for clients that cannot set headers (stale: 409 `conflict`), as stories always had."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from stories.models import Backlog, Epic, Project, ProjectMember, Status, Story
from tests.factories import BacklogFactory, EpicFactory, StoryFactory

P = "/api/v1/projects/plan-pipe/"

# resource → (detail URL, two PATCH bodies that each change something, model, lookup)
RESOURCES = {
    "project": (P, {"name": "Renamed"}, {"name": "Renamed again"}, Project, {"slug": "plan-pipe"}),
    "backlog": (P + "backlogs/b1/", {"name": "B2"}, {"name": "B3"}, Backlog, {"slug": "b1"}),
    "status": (P + "statuses/ready/", {"name": "Ready!"}, {"name": "Ready?"}, Status, {"slug": "ready"}),
    "epic": (P + "epics/core/", {"name": "Core 2"}, {"name": "Core 3"}, Epic, {"slug": "core"}),
    "member": (
        P + "members/member/",
        {"role": "viewer"},
        {"role": "admin"},
        ProjectMember,
        {"user__username": "member"},
    ),
    "story": (P + "stories/INF-001/", {"title": "T2"}, {"title": "T3"}, Story, {"key": "INF-001"}),
}


@pytest.fixture
def resources(project, owner, member):
    BacklogFactory(project=project, slug="b1", actor=owner)
    EpicFactory(project=project, slug="core", actor=owner)
    StoryFactory(project=project, key="INF-001", actor=owner)


def _etag_of(model, lookup) -> str:
    obj = model.objects.get(**lookup)
    return f'"{obj.pk}-{obj.version}"'


@pytest.mark.parametrize("kind", RESOURCES)
def test_if_match_and_version_on_every_resource(kind, resources, owner_client):
    url, first, second, model, lookup = RESOURCES[kind]
    read = owner_client.get(url)
    assert read.status_code == 200
    etag = read["ETag"]
    assert etag == _etag_of(model, lookup)
    assert read.json()["version"] == 1

    changed = owner_client.patch(url, first, format="json", HTTP_IF_MATCH=etag)
    assert changed.status_code == 200, changed.json()
    assert changed["ETag"] == _etag_of(model, lookup) != etag
    assert changed.json()["version"] == 2
    assert owner_client.get(url)["ETag"] == changed["ETag"]

    # The ETag the client read is stale now: 412, nothing written, the current ETag named.
    stale = owner_client.patch(url, second, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412, stale.json()
    assert stale.json()["code"] == "precondition_failed"
    assert stale.json()["current_version"] == 2
    assert stale["ETag"] == changed["ETag"]
    # The same with `version` in the body: 409 conflict.
    conflict = owner_client.patch(url, {**second, "version": 1}, format="json")
    assert conflict.status_code == 409, conflict.json()
    assert conflict.json()["code"] == "conflict" and conflict.json()["current_version"] == 2
    assert model.objects.get(**lookup).version == 2

    # The current ETag or version is accepted.
    again = owner_client.patch(url, {**second, "version": 2}, format="json", HTTP_IF_MATCH=changed["ETag"])
    assert again.status_code == 200, again.json()
    assert again.json()["version"] == 3
    # A weak or listed ETag counts too (If-Match: W/"…", "…").
    listed = owner_client.patch(url, first, format="json", HTTP_IF_MATCH=f'"0-0", W/{again["ETag"]}')
    assert listed.status_code == 200, listed.json()


@pytest.mark.parametrize("kind", RESOURCES)
def test_delete_honours_if_match(kind, resources, owner_client, project, owner):
    url, first, _, model, lookup = RESOURCES[kind]
    if kind == "status":  # a status no story uses, so it may be deleted
        url = P + "statuses/spare/"
        lookup = {"slug": "spare"}
        owner_client.post(P + "statuses/", {"slug": "spare", "name": "Spare", "category": "started"}, format="json")
    etag = owner_client.get(url)["ETag"]
    assert owner_client.patch(url, first, format="json").status_code == 200
    before = AuditLog.objects.count()
    stale = owner_client.delete(url, HTTP_IF_MATCH=etag)
    assert stale.status_code == 412, stale.json()
    assert model.objects.filter(**lookup).exists()
    assert AuditLog.objects.count() == before
    assert owner_client.delete(url, HTTP_IF_MATCH=stale["ETag"]).status_code == 204
    assert not model.objects.filter(**lookup).exists()


def test_created_resources_carry_their_etag(project, owner_client):
    created = {
        "projects": owner_client.post("/api/v1/projects/", {"slug": "p2", "name": "P2"}, format="json"),
        "backlogs": owner_client.post(P + "backlogs/", {"slug": "b9", "name": "B9"}, format="json"),
        "statuses": owner_client.post(
            P + "statuses/", {"slug": "s9", "name": "S9", "category": "started"}, format="json"
        ),
        "epics": owner_client.post(P + "epics/", {"slug": "e9"}, format="json"),
        "members": owner_client.post(P + "members/", {"username": "owner", "role": "owner"}, format="json"),
        "stories": owner_client.post(P + "stories/", {"key": "N-1", "title": "New"}, format="json"),
    }
    for kind, response in created.items():
        assert response.status_code in (200, 201), (kind, response.json())
        assert response.get("ETag", "").startswith('"'), kind
        assert response.json()["version"] >= 1, kind


def test_a_write_that_changes_nothing_keeps_the_etag(resources, owner_client):
    etag = owner_client.get(P + "epics/core/")["ETag"]
    same = owner_client.patch(P + "epics/core/", {"slug": "core"}, format="json", HTTP_IF_MATCH=etag)
    assert same.status_code == 200 and same["ETag"] == etag


def test_services_check_the_version_under_the_lock(resources, owner):
    """The version is compared with the row read under the lock, not with the caller's
    (possibly old) instance."""
    from stories import services
    from storyhub.errors import StaleVersionError

    read_earlier = Project.objects.get(slug="plan-pipe")
    services.project_update(actor=owner, project=Project.objects.get(pk=read_earlier.pk), data={"name": "X"})
    with pytest.raises(StaleVersionError):
        services.project_update(actor=owner, project=read_earlier, data={"name": "Y"}, expected_version=1)
    assert Project.objects.get(pk=read_earlier.pk).name == "X"
