"""The MCP server over streamable HTTP at /mcp on the live test server, driven by the
SDK's own client: a planning workflow end to end, read-only keys, authentication and
bad input."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from mcp_app.catalog import READ_TOOLS, TOOLS
from sessions_app.services import api_key_create
from stories.models import Story
from tests.factories import MemberFactory, ProjectFactory, UserFactory

from .conftest import call, http_client, run_session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice_key():
    alice = UserFactory(username="alice")
    ProjectFactory(slug="plan", name="Plan", actor=alice)
    key, plaintext = api_key_create(actor=None, user=alice, name="agent")
    return key, plaintext


def test_planning_workflow(mcp_url, alice_key):
    key, plaintext = alice_key
    stories = [
        {"key": "INF-1", "title": "Schema", "status": "ready", "priority": "high"},
        {"key": "INF-2", "title": "Driver", "status": "ready", "dependencies": ["INF-1"]},
        {"key": "INF-3", "title": "Pool", "status": "ready", "estimate": "3sp"},
    ]

    async def dry(c):
        return await call(c, "story_upsert", project="plan", stories=stories, dry_run=True)

    dry_result = run_session(http_client(mcp_url, plaintext), dry)
    assert dry_result[0]["created"] == 3 and dry_result[0]["dry_run"] is True
    assert not Story.objects.exists()

    async def steps(c):
        out = {}
        out["upsert"] = await call(c, "story_upsert", project="plan", stories=stories)
        out["link"] = await call(c, "dependency_add", project="plan", key="INF-1", depends_on="INF-3")
        out["cycle"] = await call(c, "dependency_add", project="plan", key="INF-3", depends_on="INF-2")
        out["ready"] = await call(c, "ready_list", project="plan")
        out["blocked"] = await call(c, "blocked_list", project="plan")
        out["blockers"] = await call(c, "story_blockers", project="plan", key="INF-2", transitive=True)
        out["stale"] = await call(c, "story_transition", project="plan", key="INF-3", status="in_progress", version=99)
        current = (await call(c, "story_get", project="plan", key="INF-3"))[0]["version"]
        out["started"] = await call(
            c, "story_transition", project="plan", key="INF-3", status="in_progress", version=current
        )
        out["guard"] = await call(c, "story_transition", project="plan", key="INF-1", status="in_progress")
        out["topo"] = await call(c, "topological_order", project="plan")
        out["markdown"] = await call(c, "story_get", project="plan", key="INF-2", format="markdown")
        out["audit"] = await call(c, "audit_query", project="plan", key="INF-3")
        return out

    out = run_session(http_client(mcp_url, plaintext), steps)
    assert out["upsert"][0]["created"] == 3 and not out["upsert"][1]
    assert out["link"] == ({"key": "INF-1", "depends_on": "INF-3", "type": "blocks"}, False)
    cycle, is_error = out["cycle"]
    assert is_error and cycle["code"] == "dependency_cycle"
    assert cycle["cycle"] == ["INF-3", "INF-2", "INF-1", "INF-3"]
    assert [s["key"] for s in out["ready"][0]] == ["INF-3"]
    blocked = {s["key"]: s["blockers"] for s in out["blocked"][0]}
    assert blocked == {"INF-1": ["INF-3"], "INF-2": ["INF-1"]}
    assert [(s["key"], s["depth"]) for s in out["blockers"][0]] == [("INF-1", 1), ("INF-3", 2)]
    stale, is_error = out["stale"]
    assert is_error and stale["code"] == "conflict" and stale["current_version"] == 1
    assert out["started"][0]["status"] == "in_progress" and out["started"][0]["version"] == 2
    guard, is_error = out["guard"]
    assert is_error and guard["code"] == "blocked" and guard["blockers"] == ["INF-3"]
    assert out["topo"][0]["keys"] == ["INF-3", "INF-1", "INF-2"]
    assert out["markdown"][0]["markdown"].startswith("---\n") and "INF-1" in out["markdown"][0]["markdown"]
    assert [r["action"] for r in out["audit"][0]["rows"]] == ["story.status_changed", "story.created"]
    # Writes are audited as the MCP surface, with the key that made them.
    rows = AuditLog.objects.filter(action__in=["story.created", "dependency.added", "story.status_changed"])
    assert rows.count() == 5
    assert {(r.details.get("source"), r.details.get("api_key_id")) for r in rows} == {("mcp", key.pk)}


def test_read_only_key_sees_and_runs_only_read_tools(mcp_url, alice_key):
    owner = alice_key[0].user
    _, read_only = api_key_create(actor=None, user=owner, name="reader", read_only=True)

    async def steps(c):
        listed = await c.list_tools()
        write = await call(c, "story_upsert", project="plan", stories=[{"key": "X-1", "title": "x"}])
        read = await call(c, "project_get", project="plan")
        return [t.name for t in listed.tools], write, read

    async def full_listing(c):
        return (await c.list_tools()).tools

    names, (write, is_error), (read, read_error) = run_session(http_client(mcp_url, read_only), steps)
    # The read-write key's listing: every tool, with truthful annotations.
    by_name = {t.name: t.annotations for t in run_session(http_client(mcp_url, alice_key[1]), full_listing)}
    assert set(by_name) == set(TOOLS)
    for name, notes in by_name.items():
        assert notes.read_only_hint is (name in READ_TOOLS)
        assert notes.open_world_hint is False
    assert by_name["dependency_remove"].destructive_hint is True
    assert by_name["dependency_add"].destructive_hint is False
    assert set(names) == READ_TOOLS and len(names) < len(TOOLS)
    assert is_error and write["code"] == "permission_denied"
    assert not read_error and read["role"] == "owner"
    assert not Story.objects.exists()


def test_bad_input_names_the_argument_and_the_session_goes_on(mcp_url, alice_key):
    bob = UserFactory(username="bob")
    ProjectFactory(slug="secret", name="Secret", actor=bob)
    shared = ProjectFactory(slug="shared", name="Shared", actor=bob)
    MemberFactory(project=shared, user=alice_key[0].user, role="viewer", actor=bob)

    async def steps(c):
        return [
            await call(c, "story_get", project="plan"),
            await call(c, "story_get", project="plan", key="A-1", colour="red"),
            await call(c, "ready_list", project="plan", limit=5000),
            await call(c, "story_upsert", project="plan", stories=[{"key": "A-1", "title": "t" * 5000}]),
            await call(c, "story_transition", project="plan", key="A-1", status=7),
            await call(c, "story_get", project="secret", key="S-1"),
            await call(c, "no_such_tool"),
            await call(c, "project_list"),
            await call(c, "story_upsert", project="shared", stories=[{"key": "S-1", "title": "s"}]),
        ]

    results = run_session(http_client(mcp_url, alice_key[1]), steps)
    details = [r[0].get("details") for r in results[:5]]
    assert all(r[1] for r in results[:7])
    assert details[0] == {"key": ["This argument is required."]}
    assert details[1] == {"colour": ["Unknown argument."]}
    assert details[2] == {"limit": ["Give a number from 1 to 1000."]}
    assert details[3]["items"][0]["field"] == "title"  # the API's length limit, from the bulk service
    assert details[4] == {"status": ["Give a string."]}
    assert results[5][0]["code"] == "not_found"  # a project you cannot see is one that does not exist
    assert results[6][0]["code"] == "not_found"
    assert {p["slug"]: p["role"] for p in results[7][0]} == {"plan": "owner", "shared": "viewer"}
    assert results[8][1] and results[8][0]["code"] == "permission_denied"  # a viewer of "shared"


def test_resources_and_prompts(mcp_url, alice_key):
    async def steps(c):
        await call(c, "story_upsert", project="plan", stories=[{"key": "R-1", "title": "Readable", "status": "ready"}])
        templates = await c.list_resource_templates()
        listed = await c.list_resources()
        story = await c.read_resource("storyhub://plan/stories/R-1")
        prompts = await c.list_prompts()
        plan = await c.get_prompt("plan_sprint", {"project": "plan", "capacity": "8"})
        refine = await c.get_prompt("refine_story", {"project": "plan", "key": "R-1"})
        return templates, listed, story, prompts, plan, refine

    templates, listed, story, prompts, plan, refine = run_session(http_client(mcp_url, alice_key[1]), steps)
    assert templates.resource_templates[0].uri_template == "storyhub://{project}/stories/{key}"
    assert [r.uri for r in listed.resources] == ["storyhub://plan/stories/R-1"]
    assert story.contents[0].mime_type == "text/markdown" and "title: Readable" in story.contents[0].text
    assert {p.name for p in prompts.prompts} == {"refine_story", "split_story", "plan_sprint"}
    assert "R-1" in plan.messages[0].content.text and "8 story points" in plan.messages[0].content.text
    assert "title: Readable" in refine.messages[0].content.text


def test_handshake_era_clients_work_too(mcp_url, alice_key):
    """Clients that still open with `initialize` (protocol 2025-*) get the same server,
    statelessly: no session id, every request stands alone."""

    async def steps(c):
        names = [t.name for t in (await c.list_tools()).tools]
        return c.protocol_version, names, await call(c, "project_list")

    version, names, (projects, is_error) = run_session(http_client(mcp_url, alice_key[1], mode="legacy"), steps)
    assert version.startswith("2025-")
    assert set(names) == set(TOOLS)
    assert not is_error and projects[0]["slug"] == "plan"
