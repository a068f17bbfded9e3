"""The authorization matrix of the REST API: every operation of the OpenAPI schema ×
every kind of caller × the objects of the caller's project (B) and of a project hidden
from it (A), with B and A entangled by cross-project links (tests/authz/conftest.py).

Operations come from drf-spectacular's generator, path parameters are filled by name
from the world's objects, so a new endpoint is in the matrix without editing this file;
`test_the_matrix_covers_every_route` fails when a route is missing from the schema, a
path parameter has no filler or an unsafe operation has no body below.

What each case expects follows from two small tables, PRINCIPALS and ROLE_RULES (the
README's permission rule), through `expected()`:

    anonymous, bad / expired / revoked key        → 401
    read-only key, unsafe method                  → 403
    an object of A (or a body naming one of A's)  → 404 (400 for batch writes), except for
                                                    the superuser; sessions are personal
    an object of B                                → 404 without a role in B, 403 below the
                                                    role the operation needs, else 2xx
    a query filter naming A (or B without a role) → 2xx or 400, as for a missing project

and, for every caller but the superuser, MARKER (planted all over A) appears in no
response body and no header.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from stories.models import ProjectMember

from .conftest import MARKER, A, B

pytestmark = pytest.mark.django_db

API = "/api/v1"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALL = SAFE | UNSAFE
RANK = ProjectMember.RANK


# --------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Principal:
    name: str
    credentials: str  # "none", "invalid" or "key" (a working API key)
    role_in_b: str | None = None
    read_only: bool = False
    superuser: bool = False


PRINCIPALS = [
    Principal("anonymous", "none"),
    Principal("bad-key", "invalid"),
    Principal("expired-key", "invalid"),  # the superuser's, expired
    Principal("revoked-key", "invalid"),  # the superuser's, revoked
    Principal("read-only-key", "key", "owner", read_only=True),  # B's owner's
    Principal("non-member", "key"),
    Principal("staff-view-only", "key"),  # staff with every view_* permission, no role
    Principal("viewer", "key", "viewer"),
    Principal("member", "key", "member"),
    Principal("admin", "key", "admin"),
    Principal("owner", "key", "owner"),
    Principal("superuser", "key", "owner", superuser=True),
]

# The least role an operation needs in the project it names (README, "Permissions").
# First match wins; "authenticated": any caller with working credentials.
ROLE_RULES: list[tuple[frozenset, str, str]] = [
    (ALL, r"^/sessions/", "authenticated"),  # one's own sessions
    (ALL, r"/webhooks/", "admin"),  # a project's webhook endpoints and their deliveries
    (frozenset({"POST"}), r"^/projects/$", "authenticated"),
    (SAFE, r"", "viewer"),
    (frozenset({"DELETE"}), r"^/projects/\{slug\}/$", "owner"),
    (UNSAFE, r"^/projects/\{slug\}/$", "admin"),
    (UNSAFE, r"/sync/$", "admin"),
    (UNSAFE, r"/(backlogs|statuses|members)/", "admin"),
    (UNSAFE, r"^/project-dependencies/", "admin"),
    (frozenset({"DELETE"}), r"/epics/\{item\}/$", "admin"),
    (UNSAFE, r"/(stories|epics|import|import-conflicts)/", "member"),
]

# Operations whose objects belong to a user, not a project: hidden from everyone else,
# the superuser included.
PERSONAL = re.compile(r"^/sessions/\{")

# Batch writes report a bad reference per item (400), not as a 404 of the request.
BATCH = re.compile(r"/(bulk|import)/$")

TWO_XX = "2xx"
# A write naming a hidden object is refused like one naming a missing object: 404, or
# for batch writes 400 (or, asked to continue on error, a 2xx report counting it failed).
REFUSED = "refused"
# A query filter naming a hidden project filters to nothing (2xx) or is refused (400),
# exactly as for a missing project (test_hidden_answers_exactly_like_missing).
FILTERED = "2xx or 400"
PLACEHOLDER = re.compile(r"\{\w+\}")


def required_role(method: str, path: str) -> str:
    for methods, pattern, role in ROLE_RULES:
        if method in methods and re.search(pattern, path):
            return role
    raise AssertionError(f"ROLE_RULES has no rule for {method} {path}")


def expected(principal: Principal, op: Operation, side: str | None) -> int | str:
    """What `principal` gets for `op` on `side` (A, B, "B>A": B's object with a body or
    query naming A's, None: the operation names no project)."""
    if principal.credentials != "key":
        return 401
    if principal.read_only and op.method not in SAFE:
        return 403
    if side is None:
        return TWO_XX
    if op.filters_only:
        sees = principal.superuser or (side == B and principal.role_in_b is not None)
        return TWO_XX if sees else FILTERED
    if side == A and (op.personal or not principal.superuser):
        return 404
    need = required_role(op.method, op.path)
    if need != "authenticated":
        if principal.role_in_b is None:
            return 404
        if RANK[principal.role_in_b] < RANK[need]:
            return 403
    if side == "B>A" and not principal.superuser:
        return REFUSED if op.batch else 404
    return TWO_XX


# --------------------------------------------------------------------------- requests

STORY_FILE = (
    "---\nid: MATRIX-9\ntitle: Imported by the matrix\nstatus: draft\n"
    "dependencies: [{ref}]\n---\n# MATRIX-9: Imported by the matrix\n\nBody.\n"
)
MULTIPART = "multipart"

# A plausible minimal body per unsafe operation, so the request gets past validation to
# the permission and visibility logic. "{name}" is filled from the side (see `_values`);
# "{ref}" names a story of the side's *referenced* project ("slug:KEY").
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/projects/"): {"slug": "matrix-new", "name": "Matrix new"},
    ("PATCH", "/projects/{slug}/"): {"description": "patched by the matrix"},
    ("POST", "/projects/{slug}/backlogs/"): {"slug": "matrix-new", "name": "Matrix backlog"},
    ("PATCH", "/projects/{slug}/backlogs/{item}/"): {"name": "Renamed by the matrix"},
    ("POST", "/projects/{slug}/statuses/"): {"slug": "matrix-new", "name": "Matrix", "category": "started"},
    ("PATCH", "/projects/{slug}/statuses/{item}/"): {"name": "Renamed by the matrix"},
    ("POST", "/projects/{slug}/epics/"): {"slug": "matrix-new", "name": "Matrix epic"},
    ("PATCH", "/projects/{slug}/epics/{item}/"): {"name": "Renamed by the matrix"},
    ("POST", "/projects/{slug}/members/"): {"username": "outsider", "role": "viewer"},
    ("PATCH", "/projects/{slug}/members/{username}/"): {"role": "viewer"},
    ("POST", "/projects/{slug}/stories/"): {"key": "MATRIX-1", "title": "Created by the matrix"},
    ("PUT", "/projects/{slug}/stories/{key}/"): {"key": "{key}", "title": "Replaced by the matrix"},
    ("PATCH", "/projects/{slug}/stories/{key}/"): {"title": "Patched by the matrix"},
    ("POST", "/projects/{slug}/stories/{key}/transition/"): {"status": "ready", "notes": "matrix"},
    ("POST", "/projects/{slug}/stories/{key}/move/"): {"backlog": "{backlog}"},
    ("POST", "/projects/{slug}/stories/{key}/rank/"): {"after": "{free_key}"},
    ("POST", "/projects/{slug}/stories/{key}/dependencies/"): {"depends_on": "{ref}", "type": "relates"},
    ("POST", "/projects/{slug}/stories/bulk/"): {
        "items": [{"key": "MATRIX-2", "title": "Bulk", "dependencies": ["{ref}"]}]
    },
    ("POST", "/projects/{slug}/import/"): (MULTIPART, {"files": ("matrix.md", STORY_FILE)}),
    ("POST", "/projects/{slug}/sync/"): {},
    ("POST", "/projects/{slug}/import-conflicts/{conflict_id}/resolve/"): {"resolution": "keep_existing"},
    ("POST", "/project-dependencies/"): {"from_project": "{pd_from}", "to_project": "{pd_to}"},
    ("POST", "/projects/{slug}/webhooks/"): {"url": "http://127.0.0.1:9/matrix", "event_types": ["story.*"]},
    ("PATCH", "/projects/{slug}/webhooks/{webhook_id}/"): {"description": "patched by the matrix"},
    ("POST", "/projects/{slug}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver/"): {},
    ("POST", "/projects/{slug}/webhooks/{webhook_id}/ping/"): {},
}

# Extra query strings: every value of a `format` switch, every boolean flag on, and
# these probes (which may name the side's project).
QUERY_PROBES = {"q": MARKER, "project": "{slug}"}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # below /api/v1, with {parameters}
    query: tuple[tuple[str, str], ...] = ()

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)

    @property
    def personal(self) -> bool:
        return bool(PERSONAL.search(self.path))

    @property
    def batch(self) -> bool:
        return bool(BATCH.search(self.path))

    @property
    def body(self) -> Any:
        return BODIES.get((self.method, self.path))

    def _templates(self) -> str:
        return json.dumps([self.path, self.query, self.body], default=str)

    @property
    def names_a_project(self) -> bool:
        return (
            bool(self.path_params) or PLACEHOLDER.search(json.dumps([self.query, self.body], default=str)) is not None
        )

    @property
    def filters_only(self) -> bool:
        """It names a project only in a query filter: a hidden project, like a missing
        one, filters to nothing (200), it is not a 404."""
        return not self.path_params and not PLACEHOLDER.search(json.dumps(self.body, default=str))

    @property
    def names_a_reference(self) -> bool:
        return "{ref}" in self._templates()

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query)
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _query_variants(parameters: list[dict]) -> list[tuple[tuple[str, str], ...]]:
    query = [p for p in parameters if p["in"] == "query"]
    variants: list[tuple[tuple[str, str], ...]] = [()]
    for p in query:
        if p["name"] == "format":
            variants += [((p["name"], value),) for value in p["schema"].get("enum", [])]
    flags = tuple((p["name"], "true") for p in query if p["schema"].get("type") == "boolean")
    if flags:
        variants.append(flags)
    probes = tuple((p["name"], QUERY_PROBES[p["name"]]) for p in query if p["name"] in QUERY_PROBES)
    if probes:
        variants.append(probes)
    return variants


def operations() -> list[Operation]:
    ops = []
    for path, item in _schema()["paths"].items():
        assert path.startswith(API), path
        for method, op in item.items():
            for query in _query_variants(op.get("parameters", [])):
                ops.append(Operation(method.upper(), path.removeprefix(API), query))
    return ops


OPERATIONS = operations()


def cases():
    for op in OPERATIONS:
        sides: list[str | None] = [A, B] if op.names_a_project else [None]
        if op.names_a_reference:
            sides.append("B>A")
        for side in sides:
            for principal in PRINCIPALS:
                where = f"on {side}" if side else "no project"
                yield pytest.param(op, side, principal, id=f"{op} | {where} | {principal.name}")


# --------------------------------------------------------------------------- filling in


def _values(world, side: str | None, principal: Principal) -> dict[str, Any]:
    """The values of path parameters and body placeholders on `side`."""
    path_side, ref_side = {None: (B, B), A: (A, A), B: (B, B), "B>A": (B, A)}[side]
    s, r = world.sides[path_side], world.sides[ref_side]
    user = world.users[principal.name]
    own_sessions = world.sessions[getattr(user, "username", "b-owner")]
    alice_session = next(sid for name, sid in world.sessions.items() if name.startswith(MARKER))
    return {
        "slug": s.slug,
        "key": s.key,
        "free_key": s.free_key,
        "backlog": s.backlog,
        "username": s.username,
        "dep_id": s.dep_id,
        "id": s.project_dependency_id,
        "sid_prefix": (alice_session if path_side == A else own_sessions)[:8],
        "item:backlogs": s.backlog,
        "item:statuses": s.status,
        "item:epics": s.epic,
        "ref": f"{r.slug}:{r.free_key}",
        "pd_from": s.project_dependency_new[0],
        "pd_to": s.project_dependency_new[1],
        "webhook_id": s.webhook_id,
        "delivery_id": s.delivery_id,
        "run_id": s.run_id,
        "file_id": s.file_id,
        "conflict_id": s.conflict_id,
    }


def _fill_path(path: str, values: dict[str, Any]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name == "item":  # named by the collection before it: backlogs/{item}/
            name = "item:" + path[: match.start()].rstrip("/").rsplit("/", 1)[-1]
        return str(values[name])

    return re.sub(r"\{(\w+)\}", one, path)


def _fill(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, str):
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), template)
    if isinstance(template, list | tuple):
        return type(template)(_fill(v, values) for v in template)
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    return template


def _client(world, principal: Principal) -> APIClient:
    client = APIClient()
    if principal.credentials != "none":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.keys[principal.name]}")
    return client


def send(world, op: Operation, side: str | None, principal: Principal, values: dict | None = None):
    """Make the request; returns it with the values it sent that name A's objects (an
    answer may repeat what the caller sent: "No project 'x'." is no leak)."""
    values = values or _values(world, side, principal)
    url = API + _fill_path(op.path, values)
    query = _query_string({name: _fill(value, values) for name, value in op.query})
    client = _client(world, principal)
    body = _fill(op.body, values)
    sent = sorted(
        {
            str(v)
            for name, v in values.items()
            if f"{{{name}}}" in f"{op.path}{json.dumps([op.query, op.body], default=str)}"
        }
        | ({str(values["item:" + m]) for m in ("backlogs", "statuses", "epics") if f"/{m}/{{item}}" in op.path}),
        key=len,
        reverse=True,
    )
    echoes = [v for v in sent if MARKER in v.lower()]
    if op.method in SAFE or op.method == "DELETE":
        return client.generic(op.method, url + query), echoes
    if isinstance(body, tuple) and body[0] == MULTIPART:
        files = {name: SimpleUploadedFile(fname, content.encode()) for name, (fname, content) in body[1].items()}
        return client.post(url + query, files, format="multipart"), echoes
    return client.generic(op.method, url + query, json.dumps(body), content_type="application/json"), echoes


def _query_string(query: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return "?" + urlencode(query) if query else ""


def _content(response) -> bytes:
    """The body; a zip (the markdown export) is read member by member, names included."""
    content = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    if content.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return b"\n".join(name.encode() + b"\n" + archive.read(name) for name in archive.namelist())
    return content


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize(("op", "side", "principal"), list(cases()))
def test_matrix(world, op, side, principal):
    response, echoes = send(world, op, side, principal)
    content = _content(response)
    want = expected(principal, op, side)
    status = response.status_code
    if want == TWO_XX:
        ok = 200 <= status < 300
    elif want == REFUSED:
        ok = status in (400, 404) or (200 <= status < 300 and _reports_failed(content))
    elif want == FILTERED:
        ok = 200 <= status < 300 or status == 400
    else:
        ok = status == want
    assert ok, f"{op} on {side} as {principal.name}: expected {want}, got {status}: {content[:600]!r}"
    if not principal.superuser:
        text = _without(content.decode("utf-8", "replace"), echoes)
        headers = {k: v for k, v in response.headers.items() if MARKER in _without(f"{k}: {v}", echoes)}
        assert MARKER not in text, f"{op} on {side} as {principal.name} ({status}) shows project A: {_around(text)}"
        assert not headers, f"{op} on {side} as {principal.name}: headers show project A: {headers}"


def _without(text: str, echoes: list[str]) -> str:
    text = text.lower()
    for value in echoes:
        text = text.replace(value.lower(), "<sent>")
    return text


def _reports_failed(content: bytes) -> bool:
    try:
        return json.loads(content).get("failed", 0) > 0
    except (ValueError, AttributeError):
        return False


def _around(text: str) -> str:
    at = text.find(MARKER)
    return text[max(0, at - 200) : at + 200]


def _routes(patterns=None, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            out += _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            out.append((prefix + str(p.pattern), p.callback))
    return out


def test_the_matrix_covers_every_route():
    """Every API route of the URL conf, with each method its view answers, is an
    operation of the schema (hence of the matrix); every path parameter has a filler and
    every unsafe operation a body (or none: DELETE)."""
    schema_ops = {(op.method, op.path) for op in OPERATIONS}
    missing = []
    for route, callback in _routes():
        if not route.startswith("api/v1/"):
            continue
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.removeprefix("api/v1/")).replace("{pk}", "{id}")
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        assert view is not None, f"{route}: not a class-based view; add it to the matrix by hand"
        for method in getattr(view, "http_method_names", []):
            if method in ("options", "head", "trace") or not hasattr(view, method):
                continue
            if (method.upper(), path) not in schema_ops:
                missing.append(f"{method.upper()} {path}")
    assert not missing, f"routes missing from the schema, so from the matrix: {missing}"

    known = {"slug", "key", "item", "username", "dep_id", "id", "sid_prefix", "backlog", "webhook_id", "delivery_id"}
    known |= {"run_id", "file_id", "conflict_id"}
    unknown = {f"{op}: {name}" for op in OPERATIONS for name in op.path_params if name not in known}
    assert not unknown, f"path parameters the matrix cannot fill (add them to _values): {unknown}"
    no_body = {str(op) for op in OPERATIONS if op.method in {"POST", "PUT", "PATCH"} and op.body is None}
    assert not no_body, f"unsafe operations without a body in BODIES: {no_body}"
    stale = set(BODIES) - schema_ops
    assert not stale, f"BODIES for operations that no longer exist: {stale}"
    for op in OPERATIONS:
        required_role(op.method, op.path)  # every operation has a rule


# --------------------------------------------------------------------------- hidden answers like missing


def _missing(values: dict[str, Any], side: str) -> dict[str, Any]:
    """`values` with every object of A replaced by one that does not exist."""
    out = {}
    for name, value in values.items():
        if isinstance(value, str) and MARKER in value.lower():
            out[name] = value.replace(MARKER, "nosuch").replace(MARKER.upper(), "NOSUCH")
        elif side == A and name in ("dep_id", "id", "webhook_id", "delivery_id", "run_id", "file_id", "conflict_id"):
            out[name] = 10**9
        elif side == A and name == "sid_prefix":
            out[name] = "nosuch00"
        else:
            out[name] = value
    return out


def _like_missing_cases():
    names = ("non-member", "member")
    for op in OPERATIONS:
        sides = ([A] if op.names_a_project else []) + (["B>A"] if op.names_a_reference else [])
        for side in sides:
            for principal in (p for p in PRINCIPALS if p.name in names):
                yield pytest.param(op, side, principal, id=f"{op} | on {side} | {principal.name}")


@pytest.mark.parametrize(("op", "side", "principal"), list(_like_missing_cases()))
def test_hidden_answers_exactly_like_missing(world, op, side, principal):
    """README: a project you are not a member of is a 404 exactly like a missing one —
    the same status and the same body, so the answer does not tell that A exists."""
    values = _values(world, side, principal)
    missing = _missing(values, side)
    hidden_response, _ = send(world, op, side, principal, values)
    missing_response, _ = send(world, op, side, principal, missing)
    hidden = _content(hidden_response).decode("utf-8", "replace")
    for name, value in values.items():
        if missing[name] != value:
            hidden = re.sub(rf"\b{re.escape(str(value))}\b", str(missing[name]), hidden)
    answer = _content(missing_response).decode("utf-8", "replace")
    # An import's report names the ImportRun it recorded: each request records its own, so
    # the two ids differ by one whatever the project; the id tells nothing about A.
    hidden, answer = (re.sub(r'"run":\d+|imports/\d+/', "run N", body) for body in (hidden, answer))
    assert (hidden_response.status_code, hidden) == (missing_response.status_code, answer)


# --------------------------------------------------------------------------- refusals and writes around hidden links

WRITERS = [p for p in PRINCIPALS if p.role_in_b in ("member", "admin", "owner") and not p.read_only]
B_STORY = API + "/projects/proj-b/stories/"

# Requests that B's writers may send and that meet A's stories on the way: a `blocks`
# link closing a cycle through A (B-1 → B-2 → A-2 → B-1), the same in a bulk upsert, and
# moving B-1 (blocked by A-1) to a started status (the `blocked` guard). Each is refused
# (409, or 400 for the bulk item), and the refusal names no story of A.
ATTEMPTS = {
    "dependency closing a cycle through A": ("POST", "B-1/dependencies/", {"depends_on": "B-2", "type": "blocks"}),
    "bulk closing a cycle through A": (
        "POST",
        "bulk/",
        {"items": [{"key": "B-1", "title": "B story 1", "dependencies": ["B-3", "B-2"]}]},
    ),
    "start a story blocked by A": ("POST", "B-1/transition/", {"status": "in_progress"}),
}


@pytest.mark.parametrize("principal", WRITERS, ids=lambda p: p.name)
@pytest.mark.parametrize("attempt", list(ATTEMPTS))
def test_refusals_name_no_hidden_story(world, attempt, principal):
    method, path, body = ATTEMPTS[attempt]
    response = _client(world, principal).generic(
        method, B_STORY + path, json.dumps(body), content_type="application/json"
    )
    text = _content(response).decode().lower()
    assert response.status_code in (400, 409), text  # refused, whatever the reason's wording
    if not principal.superuser:
        assert MARKER not in text, f"{attempt} as {principal.name} ({response.status_code}): {_around(text)}"


def _b1_links_to_a():
    from stories.models import StoryDependency

    return set(
        StoryDependency.objects.filter(
            story__project__slug="proj-b", depends_on__project__slug=f"{MARKER}-a"
        ).values_list("story__key", "depends_on__key", "type")
    )


@pytest.mark.parametrize("principal", [p for p in WRITERS if not p.superuser], ids=lambda p: p.name)
def test_a_bulk_dependency_list_keeps_links_the_writer_cannot_see(world, principal):
    """DECISIONS 2: replacing a story's dependency list keeps the hidden ones."""
    before = _b1_links_to_a()
    body = {"items": [{"key": "B-1", "title": "B story 1", "dependencies": ["B-3"]}]}
    response = _client(world, principal).post(B_STORY + "bulk/", body, format="json")
    assert response.status_code == 200, response.content
    assert _b1_links_to_a() == before


def test_export_then_import_by_a_member_of_b_keeps_the_links_to_a(world):
    """DECISIONS 2: export → import (the markdown zip) by a member of B cannot drop A's links."""
    client = _client(world, next(p for p in PRINCIPALS if p.name == "member"))
    before = _b1_links_to_a()
    exported = client.get(f"{API}/projects/proj-b/export/?format=markdown")
    assert exported.status_code == 200
    raw = b"".join(exported.streaming_content)
    response = client.post(
        f"{API}/projects/proj-b/import/", {"files": SimpleUploadedFile("b.zip", raw)}, format="multipart"
    )
    assert response.status_code == 200, response.content
    assert _b1_links_to_a() == before
