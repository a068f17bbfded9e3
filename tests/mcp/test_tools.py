"""Tools in detail, through the SDK's client connected in-process (same handlers and
dispatch as over HTTP and stdio, without a server): versions on upsert, moves, links,
imports, audit paging and input limits."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditLog
from sessions_app.services import api_key_create, api_key_revoke
from stories.models import Story, StoryDependency
from tests.factories import BacklogFactory, ProjectFactory, StoryFactory, UserFactory

from .conftest import call, in_process

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    user = UserFactory(username="alice")
    project = ProjectFactory(slug="plan", actor=user)
    BacklogFactory(project=project, slug="sprint-1", actor=user)
    StoryFactory(project=project, key="T-1", title="One", actor=user)
    StoryFactory(project=project, key="T-2", title="Two", actor=user)
    key, _ = api_key_create(actor=None, user=user, name="t")
    return user, key


def run(alice, steps):
    return in_process(alice[0], alice[1], steps)


def test_upsert_checks_the_version_each_item_names(alice):
    async def steps(c):
        return [
            await call(c, "story_upsert", project="plan", stories=[{"key": "T-1", "title": "New", "version": 3}]),
            await call(c, "story_upsert", project="plan", stories=[{"key": "T-9", "title": "x", "version": 1}]),
            await call(c, "story_upsert", project="plan", stories=[{"key": "T-1", "title": "New", "version": 1}]),
            await call(c, "story_upsert", project="plan", stories=[{"key": "T-1", "title": "New", "version": 1}]),
        ]

    stale, missing, ok, again = run(alice, steps)
    assert stale[1] and stale[0]["code"] == "bulk_invalid"
    assert stale[0]["details"]["items"][0]["field"] == "version"
    assert "current version is 1" in stale[0]["details"]["items"][0]["reason"]
    assert missing[0]["details"]["items"][0]["field"] == "version"
    assert ok == ({"dry_run": False, "created": 0, "updated": 1, "unchanged": 0, "items": ok[0]["items"]}, False)
    assert again[1] and "current version is 2" in again[0]["details"]["items"][0]["reason"]
    assert Story.objects.get(key="T-1").title == "New"


def test_move_link_remove_and_import(alice):
    text = "---\nid: T-3\ntitle: Imported\nstatus: ready\ndependencies: [T-1]\n---\n# T-3: Imported\n"

    async def steps(c):
        return [
            await call(c, "story_move", project="plan", key="T-1", backlog="sprint-1"),
            await call(c, "story_move", project="plan", key="T-1", backlog="nope"),
            await call(c, "dependency_add", project="plan", key="T-2", depends_on="T-1", type="relates"),
            await call(c, "dependency_add", project="plan", key="T-2", depends_on="T-1"),
            await call(c, "dependency_remove", project="plan", key="T-2", depends_on="T-1"),
            await call(c, "dependency_remove", project="plan", key="T-2", depends_on="T-1"),
            await call(
                c, "import_story_files", project="plan", files=[{"path": "t/T-3.md", "text": text}], dry_run=True
            ),
            await call(c, "import_story_files", project="plan", files=[{"path": "t/T-3.md", "text": text}]),
            await call(c, "import_story_files", project="plan", files=[{"path": "../x.md", "text": text}]),
            await call(c, "import_story_files", project="plan", files=[{"path": "../x.md", "text": text}], atomic=True),
            await call(c, "story_dependents", project="plan", key="T-1"),
            await call(c, "critical_path", project="plan"),
        ]

    moved, no_backlog, related, duplicate, removed, gone, dry, imported, unsafe, unsafe_atomic, dependents, path = run(
        alice, steps
    )
    assert moved[0]["backlog"] == "sprint-1" and moved[0]["version"] == 2
    assert no_backlog[0]["code"] == "not_found" and "backlog" in no_backlog[0]["details"]
    assert related[0]["type"] == "relates"
    assert duplicate[1] and duplicate[0]["code"] == "conflict"
    assert removed == ({"key": "T-2", "removed": "T-1"}, False)
    assert gone[1] and gone[0]["code"] == "not_found"
    assert dry[0]["dry_run"] is True and dry[0]["created"] == 1
    assert imported[0]["written"] is True and imported[0]["files"][0]["outcome"] == "created"
    # File by file by default (the bad file is reported, not raised); atomic refuses all.
    assert not unsafe[1] and [f["outcome"] for f in unsafe[0]["files"]] == ["failed"]
    assert unsafe_atomic[1] and unsafe_atomic[0]["code"] == "import_failed"
    assert [d["key"] for d in dependents[0]] == ["T-3"]
    assert path[0]["keys"][-1] == "T-1" and isinstance(path[0]["points"], float)
    assert StoryDependency.objects.filter(story__key="T-3", depends_on__key="T-1").exists()
    assert Story.objects.get(key="T-3").file_path == "t/T-3.md"


def test_search_and_audit_pages(alice):
    async def steps(c):
        return [
            await call(c, "story_search", q="Two"),
            await call(c, "story_search", project="plan", ordering="key", page_size=1),
            await call(c, "story_search", updated_since="yesterday"),
            await call(c, "audit_query", project="plan", page_size=2),
            await call(c, "audit_query", key="T-1"),
            await call(c, "audit_query", since="not a date"),
        ]

    found, page, bad_date, audit, no_project, bad_since = run(alice, steps)
    assert [s["key"] for s in found[0]["stories"]] == ["T-2"]
    assert [s["key"] for s in page[0]["stories"]] == ["T-1"] and page[0]["next"]
    assert bad_date[1] and "updated_since" in bad_date[0]["details"]
    assert len(audit[0]["rows"]) == 2 and audit[0]["next"]
    assert no_project[1] and no_project[0]["details"] == {"key": ["Give the story's project too."]}
    assert bad_since[1] and "since" in bad_since[0]["details"]


def test_oversized_and_deep_inputs_are_refused(alice):
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]

    async def steps(c):
        return [
            await call(c, "story_upsert", project="plan", stories=[{"key": "T-1"}] * 1001),
            await call(c, "story_upsert", project="plan", stories=[{"key": "T-1", "metadata": deep}]),
            await call(c, "import_story_files", project="plan", files=[{"path": "a.md", "text": "x" * 1_000_001}]),
            await call(c, "story_search", q="q" * 201),
        ]

    many, nested, big, long_query = run(alice, steps)
    assert many[0]["details"] == {"stories": ["Give at most 1000 items."]}
    assert nested[0]["code"] == "bulk_invalid" and nested[0]["details"]["items"][0]["field"] == "metadata"
    assert big[0]["details"] == {"files[0].text": ["Give at most 1000000 characters."]}
    assert long_query[0]["details"] == {"q": ["Give at most 200 characters."]}
    assert not AuditLog.objects.filter(details__source="mcp").exists()


def test_the_http_endpoint_refuses_what_a_stateless_server_does_not_offer(client, alice):
    _, plaintext = api_key_create(actor=None, user=alice[0], name="raw")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {plaintext}", "HTTP_ACCEPT": "application/json, text/event-stream"}
    for method in (client.get, client.delete):
        response = method("/mcp", **auth)
        assert response.status_code == 405 and response["Allow"] == "POST, OPTIONS"
    deep = client.post("/mcp", "[" * 600 + "]" * 600, content_type="application/json", **auth)
    assert deep.status_code == 400 and deep.json()["code"] == "parse_error"
    huge = client.post("/mcp", '"' + "x" * 3_000_000 + '"', content_type="application/json", **auth)
    assert huge.status_code == 413 and huge.json()["code"] == "request_too_large"
    broken = client.post("/mcp", "{not json", content_type="application/json", **auth)
    assert broken.status_code == 400 and broken.json()["error"]["code"] == -32700


def test_rank_reorders_through_the_rank_service(alice):
    async def steps(c):
        return [
            await call(c, "story_rank", project="plan", key="T-2", before="T-1"),
            await call(c, "story_rank", project="plan", key="T-2", before="T-9"),
            await call(c, "story_rank", project="plan", key="T-2", after="T-1", version=1),
            await call(c, "story_rank", project="plan", key="T-2"),
        ]

    ranked, missing, stale, neither = run(alice, steps)
    assert not ranked[1] and ranked[0]["key"] == "T-2"
    assert missing[1] and missing[0]["code"] == "not_found" and "before" in missing[0]["details"]
    assert stale[1] and stale[0]["code"] == "conflict"
    assert neither[1] and neither[0]["code"] == "validation_error" and "before" in neither[0]["details"]
    order = list(Story.objects.filter(project__slug="plan").order_by("rank").values_list("key", flat=True))
    assert order.index("T-2") < order.index("T-1")
    assert AuditLog.objects.filter(action="story.ranked", details__source="mcp").count() == 1


def test_mcp_stdio_refuses_unusable_keys():
    alice = UserFactory(username="alice")
    key, plaintext = api_key_create(actor=None, user=alice, name="old")
    api_key_revoke(actor=None, key=key)
    with pytest.raises(CommandError, match="revoked"):
        call_command("mcp_stdio", "--key", plaintext)
    with pytest.raises(CommandError, match="Unknown API key"):
        call_command("mcp_stdio", "--key", "shk_nope")
