"""Projects and stories over the API: CRUD, permission matrix, ETag / If-Match, errors."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from stories.models import Story
from tests.factories import DependencyFactory

STORY = "/api/v1/projects/plan-pipe/stories/"

# expected status for (read story, create story) by caller
MATRIX = [
    ("anonymous", 401, 401),
    ("outsider", 404, 404),
    ("viewer", 200, 403),
    ("member", 200, 201),
    ("admin", 200, 201),
    ("owner", 200, 201),
    ("rw_key", 200, 201),
    ("ro_key", 200, 403),
    ("expired_key", 401, 401),
    ("revoked_key", 401, 401),
]


@pytest.mark.parametrize(("who", "read", "write"), MATRIX)
def test_story_permission_matrix(caller, story, who, read, write):
    client = caller(who)
    response = client.get(f"{STORY}INF-001/")
    assert response.status_code == read
    if read != 200:
        assert set(response.json()) >= {"code", "message", "details"}
    response = client.post(STORY, {"key": "NEW-1", "title": "New"}, format="json")
    assert response.status_code == write, response.json()
    assert Story.objects.filter(key="NEW-1").exists() == (write == 201)


def test_non_member_sees_404_like_absent_project(caller, story):
    client = caller("outsider")
    absent = client.get("/api/v1/projects/no-such/stories/")
    hidden = client.get(STORY)
    assert absent.status_code == hidden.status_code == 404
    assert absent.json() == hidden.json()


def test_create_story_writes_audit_with_key_and_request_id(owner, project):
    from rest_framework.test import APIClient

    from sessions_app.services import api_key_create

    key, plaintext = api_key_create(actor=None, user=owner, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}", HTTP_X_REQUEST_ID="req-123")
    response = client.post(STORY, {"key": "INF-009", "title": "Audit me", "priority": "high"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["priority"] == "high"
    assert body["ready"] is False  # the default status (draft) is not in an unstarted category
    row = AuditLog.objects.get(action="story.created", entity_id=str(Story.objects.get(key="INF-009").pk))
    assert row.user_id == owner.pk
    assert row.details["api_key_id"] == key.pk
    assert row.details["request_id"] == "req-123"
    assert row.details["source"] == "api"
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": "no key"}, "key"),
        ({"key": "A-1", "title": "x", "bogus": 1}, "bogus"),
        ({"key": "A-1", "title": "x", "priority": "whenever"}, "priority"),
        ({"key": "A-1", "title": "x", "labels": "notalist"}, "labels"),
        ({"key": "A-1", "title": "x", "status": "nope"}, "status"),
        ({"key": "bad key!", "title": "x"}, "key"),
    ],
)
def test_create_story_validation(owner_client, project, payload, field):
    response = owner_client.post(STORY, payload, format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["details"]


def test_unknown_backlog_is_404_naming_the_field(owner_client, project):
    response = owner_client.post(STORY, {"key": "A-1", "title": "x", "backlog": "nope"}, format="json")
    assert response.status_code == 404
    assert response.json()["details"]["backlog"] == ["No backlog 'nope' in project 'plan-pipe'."]


def test_malformed_json_is_parse_error(owner_client, project):
    response = owner_client.post(STORY, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_body_not_an_object(owner_client, project):
    response = owner_client.post(STORY, [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_duplicate_key_is_validation_error(owner_client, story):
    response = owner_client.post(STORY, {"key": "INF-001", "title": "again"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_etag_if_match_flow(member_client, story):
    url = f"{STORY}INF-001/"
    first = member_client.get(url)
    etag = first["ETag"]
    ok = member_client.patch(url, {"title": "Renamed"}, format="json", HTTP_IF_MATCH=etag)
    assert ok.status_code == 200
    assert ok["ETag"] != etag
    assert ok.json()["version"] == first.json()["version"] + 1
    stale = member_client.patch(url, {"title": "Lost"}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert stale.json()["code"] == "precondition_failed"
    stale_version = member_client.patch(url, {"title": "Lost", "version": 1}, format="json")
    assert stale_version.status_code == 409
    assert stale_version.json()["code"] == "conflict"
    assert member_client.delete(url, HTTP_IF_MATCH=etag).status_code == 412
    assert (
        member_client.post(url + "transition/", {"status": "ready"}, format="json", HTTP_IF_MATCH=etag).status_code
        == 412
    )
    story.refresh_from_db()
    assert story.title == "Renamed"
    assert member_client.delete(url, HTTP_IF_MATCH=ok["ETag"]).status_code == 204
    assert not Story.objects.filter(pk=story.pk).exists()


def test_transition_invalid_lists_allowed(member_client, story, project):
    url = f"{STORY}INF-001/transition/"
    response = member_client.post(url, {"status": "nonexistent"}, format="json")
    assert response.status_code == 400
    assert "status" in response.json()["details"]
    story.refresh_from_db()
    allowed = story.status.allowed_transitions
    if allowed:
        target = next(s.slug for s in project.statuses.all() if s.slug not in allowed and s.pk != story.status_id)
        response = member_client.post(url, {"status": target}, format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "invalid_transition"
        assert response.json()["allowed"] == allowed
        target = allowed[0]
    else:
        target = "done"
    response = member_client.post(url, {"status": target, "notes": "go"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == target
    assert story.status_history.count() == 2


def test_list_embeds_dependencies_and_flags(member_client, make_story, owner):
    a = make_story("A-1", status="ready")
    b = make_story("B-1", status="ready")
    DependencyFactory(story=b, depends_on=a, actor=owner)
    results = {r["key"]: r for r in member_client.get(STORY).json()["results"]}
    assert results["B-1"]["dependencies"] == [{"depends_on": "A-1", "type": "blocks", "hidden": False}]
    assert results["B-1"]["blocked"] is True
    assert results["B-1"]["ready"] is False
    assert results["A-1"]["ready"] is True


@pytest.mark.parametrize("size", [2, 7])
def test_list_query_count_constant(member, make_story, owner, django_assert_num_queries, size):
    from rest_framework.test import APIClient

    from sessions_app.services import api_key_create

    stories = [make_story(f"S-{i}", status="ready") for i in range(8)]
    for i in range(1, 8):
        DependencyFactory(story=stories[i], depends_on=stories[i - 1], actor=owner)
    plaintext = api_key_create(actor=None, user=member, name="q")[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    client.get(STORY)  # warm last_used_at
    # key lookup, project with the caller's role, page, dependencies
    with django_assert_num_queries(4):
        response = client.get(f"{STORY}?page_size={size}")
    assert len(response.json()["results"]) == size


def test_cursor_pagination_walks_everything(member_client, make_story):
    for i in range(5):
        make_story(f"P-{i}")
    seen, url = [], f"{STORY}?page_size=2"
    while url:
        body = member_client.get(url).json()
        seen += [r["key"] for r in body["results"]]
        url = f"{STORY}?page_size=2&cursor={body['next']}" if body["next"] else None
    assert sorted(seen) == [f"P-{i}" for i in range(5)]


@pytest.mark.parametrize("query", ["page_size=abc", "page_size=0", "cursor=%%%"])
def test_bad_list_params(member_client, project, query):
    response = member_client.get(f"{STORY}?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_projects_create_list_and_roles(caller, project):
    owner = caller("owner")
    created = owner.post("/api/v1/projects/", {"slug": "new-proj", "name": "New"}, format="json")
    assert created.status_code == 201
    slugs = [p["slug"] for p in owner.get("/api/v1/projects/").json()]
    assert slugs == ["new-proj", "plan-pipe"]
    assert caller("outsider").get("/api/v1/projects/").json() == []
    assert caller("member").patch("/api/v1/projects/plan-pipe/", {"name": "x"}, format="json").status_code == 403
    assert caller("admin").patch("/api/v1/projects/plan-pipe/", {"name": "x"}, format="json").status_code == 200
    assert caller("admin").delete("/api/v1/projects/plan-pipe/").status_code == 403
    assert caller("outsider").delete("/api/v1/projects/plan-pipe/").status_code == 404
    assert caller("owner").delete("/api/v1/projects/plan-pipe/").status_code == 204


def test_create_api_key_command(owner, capsys):
    from django.core.management import call_command

    from sessions_app.models import ApiKey
    from sessions_app.services import api_key_lookup

    call_command("create_api_key", user="owner", name="laptop", read_only=True, expires_days=3)
    plaintext = capsys.readouterr().out.strip()
    key = api_key_lookup(plaintext)
    assert key is not None and key.read_only and key.expires_at is not None
    assert plaintext not in str(list(ApiKey.objects.values()))


def test_story_json_fields_keep_big_integers_and_unicode(member_client):
    huge = 2**70 + 1
    metadata = {"n": huge, "small": 7, "text": "ünïcode ✓", "nested": {"list": [1.5, None, True]}}
    created = member_client.post(STORY, {"key": "BIG-1", "title": "Big", "metadata": metadata}, format="json")
    assert created.status_code == 201, created.content
    for body in (
        created.json(),
        member_client.get(STORY + "BIG-1/").json(),
        member_client.get(STORY).json()["results"][0],
    ):
        assert body["metadata"] == metadata
        assert body["labels"] == []
