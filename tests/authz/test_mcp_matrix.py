"""The authorization matrix of the MCP server: every tool of the catalog (and the
resources and prompts) × every caller with a key × the objects of the caller's project
(B), of the project hidden from it (A) and B's links into A (tests/authz/conftest.py).

Calls go through the SDK's client connected in-process to the server built for the
caller (the handlers and dispatch of /mcp and mcp_stdio), so they run inside the
world's transaction. A new tool fails `test_every_tool_has_a_case` until it has
arguments below. Expected, from the same rules as the API's matrix:

    a write tool with a read-only key            → permission_denied (and it is not listed)
    a project of A (non-superusers)              → not_found, exactly like a missing one
    B without a role                             → not_found
    B below the role the tool needs              → permission_denied
    otherwise                                    → the tool runs (or a domain refusal:
                                                   conflict, blocked, validation, …)

and, for every caller but the superuser, MARKER (planted all over A) appears in no tool
result, resource, prompt or error (beyond what the call itself sent). Callers without a
usable key never reach a tool: /mcp answers them 401 with the resource metadata.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_app.catalog import READ_TOOLS, TOOLS
from stories.models import ProjectMember, StoryDependency

from ..mcp.conftest import in_process
from .conftest import MARKER, A, B

pytestmark = pytest.mark.django_db

RANK = ProjectMember.RANK
KEYED = ["read-only-key", "non-member", "staff-view-only", "viewer", "member", "admin", "owner", "superuser"]
ROLE_IN_B = {"read-only-key": "owner", "viewer": "viewer", "member": "member", "admin": "admin", "owner": "owner"}
DOMAIN_REFUSALS = {
    "conflict",
    "blocked",
    "dependency_cycle",
    "invalid_transition",
    "validation_error",
    "bulk_invalid",
    "import_failed",
}
STORY_FILE = "---\nid: NEW-1\ntitle: New from a file\nstatus: ready\n---\n# NEW-1: New from a file\n"

# tool → arguments; "{…}" is filled from the side (project slug, keys, backlog, …).
CASES: dict[str, dict[str, Any]] = {
    "project_list": {},
    "project_get": {"project": "{slug}"},
    "story_get": {"project": "{slug}", "key": "{key}", "format": "markdown"},
    "story_search": {"project": "{slug}", "q": "story"},
    "ready_list": {"project": "{slug}"},
    "blocked_list": {"project": "{slug}"},
    "story_blockers": {"project": "{slug}", "key": "{key}", "transitive": True},
    "story_dependents": {"project": "{slug}", "key": "{key}", "transitive": True},
    "topological_order": {"project": "{slug}"},
    "critical_path": {"project": "{slug}"},
    "audit_query": {"project": "{slug}", "page_size": 200},
    "story_upsert": {"project": "{slug}", "stories": [{"key": "{free_key}", "title": "Renamed"}]},
    "story_transition": {"project": "{slug}", "key": "{free_key}", "status": "ready"},
    "story_move": {"project": "{slug}", "key": "{free_key}", "backlog": "{backlog}"},
    "story_rank": {"project": "{slug}", "key": "{free_key}", "before": "{key}"},
    "dependency_add": {"project": "{slug}", "key": "{free_key}", "depends_on": "{key}", "type": "relates"},
    "dependency_remove": {"project": "{slug}", "key": "{dep_story}", "depends_on": "{dep_target}"},
    "import_story_files": {"project": "{slug}", "files": [{"path": "new/NEW-1.md", "text": STORY_FILE}]},
}
UNSCOPED = {"project_list"}
FILTERS = {
    "story_search"
}  # its project is a filter: one you cannot see matches nothing  # tools that name no project: run once, without a side
# Calls from B that name A (answered like a story that does not exist) or search across.
CROSS = [
    ("dependency_add", {"project": "{b_slug}", "key": "{b_free}", "depends_on": "{a_slug}:{a_key}"}),
    ("story_search", {"project": "{a_slug}"}),
    ("story_search", {"q": MARKER}),
    ("audit_query", {}),
]


def _values(world, side: str) -> dict[str, str]:
    s = world.sides[side]
    dep = StoryDependency.objects.select_related("story", "depends_on").get(pk=s.dep_id)
    return {
        "slug": s.slug,
        "key": s.key,
        "free_key": s.free_key,
        "backlog": s.backlog,
        "dep_story": dep.story.key,
        "dep_target": dep.depends_on.key,
    }


def _cross_values(world) -> dict[str, str]:
    a, b = world.sides[A], world.sides[B]
    return {"a_slug": a.slug, "a_key": a.key, "b_slug": b.slug, "b_free": b.free_key}


def _fill(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, list):
        return [_fill(t, values) for t in template]
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    return template


def expected(principal: str, tool: str, side: str | None) -> str:
    """'ok', 'permission_denied' or 'not_found'."""
    if principal == "read-only-key" and tool not in READ_TOOLS:
        return "permission_denied"
    if principal == "superuser" or side is None or tool in FILTERS:
        return "ok"
    if side == A:
        return "not_found"
    role = ROLE_IN_B.get(principal)
    if role is None:
        return "not_found"
    needed = "viewer" if tool in READ_TOOLS else "member"
    return "ok" if RANK[role] >= RANK[needed] else "permission_denied"


def expected_cross(principal: str, tool: str) -> str:
    """Calls from B naming A: a write naming A's story answers like a missing story."""
    if tool != "dependency_add" or principal == "superuser":
        return "ok"
    if principal in ("read-only-key", "viewer"):
        return "permission_denied"
    return "not_found"  # no role in B, or A's story does not exist for the caller


def outcome(result: Any, is_error: bool) -> str:
    if not is_error:
        return "ok"
    code = result["code"]
    return "ok" if code in DOMAIN_REFUSALS else code


def _key_of(world, principal: str):
    from sessions_app.models import ApiKey
    from sessions_app.services import api_key_lookup

    key = api_key_lookup(world.keys[principal])
    assert isinstance(key, ApiKey)
    return key


def _without(text: str, sent: Any) -> str:
    """`text` without the strings the call itself sent (an error may repeat them)."""
    for value in sorted(_strings(sent), key=len, reverse=True):
        text = text.replace(json.dumps(value)[1:-1], "").replace(value, "")
    return text


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] + ([value.split(":", 1)[1]] if ":" in value else [])
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_every_tool_has_a_case():
    assert set(CASES) == set(TOOLS), "give each new tool its arguments in CASES"


async def _attempt(coroutine) -> tuple[str, str]:
    try:
        return "ok", (await coroutine).model_dump_json()
    except Exception as exc:  # noqa: BLE001 - the SDK raises the server's error
        return "error", str(exc)


def _session(calls, uris, prompt_calls):
    async def steps(client):
        listed = [t.name for t in (await client.list_tools()).tools]
        results = []
        for tool, side, arguments in calls:
            result = await client.call_tool(tool, arguments)
            results.append((tool, side, arguments, json.loads(result.content[0].text), result.is_error))
        resources = [r.model_dump_json() for r in (await client.list_resources()).resources]
        reads = [await _attempt(client.read_resource(uri)) for uri in uris]
        prompts = [await _attempt(client.get_prompt(name, args)) for name, args in prompt_calls]
        return listed, results, resources, reads, prompts

    return steps


@pytest.mark.parametrize("principal", KEYED)
def test_tool_matrix(world, principal):
    key = _key_of(world, principal)
    calls: list[tuple[str, str | None, dict[str, Any]]] = []
    for tool, template in CASES.items():
        for side in (None,) if tool in UNSCOPED else (A, B):
            calls.append((tool, side, _fill(template, _values(world, side or B))))
    cross = [(tool, "cross", _fill(t, _cross_values(world))) for tool, t in CROSS]
    a, b = world.sides[A], world.sides[B]
    uris = [f"storyhub://{a.slug}/stories/{a.key}", f"storyhub://{b.slug}/stories/{b.key}"]

    prompt_calls = [("refine_story", {"project": a.slug, "key": a.key}), ("plan_sprint", {"project": b.slug})]
    steps = _session(calls + cross, uris, prompt_calls)
    listed, results, resources, reads, prompts = in_process(key.user, key, steps)

    assert set(listed) == (READ_TOOLS if principal == "read-only-key" else set(TOOLS))
    wrong = []
    for tool, side, arguments, result, is_error in results:
        want = expected_cross(principal, tool) if side == "cross" else expected(principal, tool, side)
        got = outcome(result, is_error)
        if got != want:
            wrong.append(f"{tool} {side}: {got} (expected {want}) {result}")
        if principal != "superuser" and MARKER in _without(json.dumps(result), arguments).lower():
            wrong.append(f"{tool} {side}: the hidden marker leaked: {result}")
    assert not wrong, "\n".join(wrong)

    if principal == "superuser":
        return
    for text in [*resources, *(t for _, t in reads), *(t for _, t in prompts)]:
        assert MARKER not in _without(text, uris[0]).lower()
    assert reads[0][0] == "error"  # A's story reads like one that does not exist
    assert reads[1][0] == ("ok" if principal in ROLE_IN_B else "error")
    assert prompts[0][0] == "error"


@pytest.mark.parametrize("principal", ["anonymous", "bad-key", "expired-key", "revoked-key"])
def test_callers_without_a_usable_key_get_401_with_the_resource_metadata(world, client, principal):
    headers = {"HTTP_ACCEPT": "application/json, text/event-stream"}
    if principal != "anonymous":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {world.keys[principal]}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = client.post("/mcp", body, content_type="application/json", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        'Bearer resource_metadata="http://testserver/.well-known/oauth-protected-resource/mcp"'
    )
    assert response.json()["code"] == "not_authenticated"
    metadata = client.get("/.well-known/oauth-protected-resource/mcp").json()
    assert metadata["resource"] == "http://testserver/mcp"
    assert metadata["bearer_methods_supported"] == ["header"]
