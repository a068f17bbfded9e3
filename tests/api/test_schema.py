"""The OpenAPI schema tells the truth a generated client needs: concurrency headers,
one media type per response, shared enums, typed errors, 503s, summaries."""

from __future__ import annotations

import json

import pytest
import yaml

UNSAFE = {"post", "put", "patch", "delete"}
METHODS = {"get", *UNSAFE}


@pytest.fixture(scope="module")
def schema() -> dict:
    """The schema /api/schema/ serves (generated once for the module; the endpoint itself
    is tested below)."""
    from drf_spectacular.generators import SchemaGenerator

    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def test_schema_answers_json_when_asked(owner_client):
    by_query = owner_client.get("/api/schema/?format=json")
    assert by_query.status_code == 200 and "json" in by_query["Content-Type"]
    assert json.loads(by_query.content)["openapi"].startswith("3.")
    by_accept = owner_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert "json" in by_accept["Content-Type"] and json.loads(by_accept.content)["openapi"]
    # YAML stays the default (application/vnd.oai.openapi), and on ?format=yaml.
    for response in (owner_client.get("/api/schema/"), owner_client.get("/api/schema/?format=yaml")):
        assert response.content.startswith(b"openapi: ") and yaml.safe_load(response.content)["paths"]


def test_every_operation_has_a_summary_and_a_clean_id(schema):
    ids = [operation["operationId"] for _, _, operation in _operations(schema)]
    assert len(ids) == len(set(ids))
    assert not [i for i in ids if "statuss" in i]
    assert "projects_statuses_partial_update" in ids
    for path, method, operation in _operations(schema):
        assert operation.get("summary", "").strip(), (path, method)
        assert not operation["summary"].startswith(method.upper() + " /"), (path, method)  # not the fallback


def test_versioned_resources_document_etag_and_if_match(schema):
    versioned = [
        "/api/v1/projects/{slug}/",
        "/api/v1/projects/{slug}/backlogs/{item}/",
        "/api/v1/projects/{slug}/statuses/{item}/",
        "/api/v1/projects/{slug}/epics/{item}/",
        "/api/v1/projects/{slug}/members/{username}/",
        "/api/v1/projects/{slug}/stories/{key}/",
        "/api/v1/projects/{slug}/stories/{key}/transition/",
        "/api/v1/projects/{slug}/stories/{key}/move/",
    ]
    for path in versioned:
        for method, operation in schema["paths"][path].items():
            if method not in METHODS:
                continue
            ok = next(code for code in operation["responses"] if code.startswith("2"))
            if ok != "204":
                assert "ETag" in operation["responses"][ok].get("headers", {}), (path, method)
            if method in UNSAFE:
                headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
                assert headers == ["If-Match"], (path, method)
                assert "ETag" in operation["responses"]["412"]["headers"]
                assert operation["responses"]["412"]["content"]["application/json"]["schema"] == {
                    "$ref": _ref("PreconditionFailedError")
                }
    for path in ("/api/v1/projects/", "/api/v1/projects/{slug}/stories/", "/api/v1/projects/{slug}/epics/"):
        assert "ETag" in schema["paths"][path]["post"]["responses"]["201"]["headers"], path
    # Nothing else claims a 412 it cannot answer.
    assert "412" not in schema["paths"]["/api/v1/projects/{slug}/stories/bulk/"]["post"]["responses"]


def test_one_media_type_per_response(schema):
    for path, method, operation in _operations(schema):
        for code, response in operation["responses"].items():
            assert len(response.get("content", {})) <= 1, (path, method, code, list(response["content"]))
    graph = "/api/v1/projects/{slug}/graph/"
    assert list(schema["paths"][graph]["get"]["responses"]["200"]["content"]) == ["application/json"]
    assert list(schema["paths"][graph + "dot/"]["get"]["responses"]["200"]["content"]) == ["text/vnd.graphviz"]
    assert list(schema["paths"][graph + "mermaid/"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    export = "/api/v1/projects/{slug}/export/"
    for suffix, media in (("", "application/zip"), ("markdown/", "application/zip"), ("csv/", "text/csv")):
        assert list(schema["paths"][export + suffix]["get"]["responses"]["200"]["content"]) == [media]
    assert list(schema["paths"][export + "json/"]["get"]["responses"]["200"]["content"]) == ["application/json"]


def test_the_endpoints_answer_the_media_types_they_document(owner_client, project, story):
    base = "/api/v1/projects/plan-pipe/"
    assert owner_client.get(base + "graph/dot/")["Content-Type"].startswith("text/vnd.graphviz")
    assert owner_client.get(base + "graph/mermaid/")["Content-Type"].startswith("text/plain")
    assert owner_client.get(base + "graph/")["Content-Type"].startswith("application/json")
    assert owner_client.get(base + "export/csv/")["Content-Type"].startswith("text/csv")
    assert owner_client.get(base + "export/json/")["Content-Type"].startswith("application/json")
    assert owner_client.get(base + "export/markdown/")["Content-Type"] == "application/zip"
    assert owner_client.get(base + "export/")["Content-Type"] == "application/zip"
    # Old callers' ?format= keeps working.
    assert owner_client.get(base + "graph/?format=dot")["Content-Type"].startswith("text/vnd.graphviz")
    assert owner_client.get(base + "export/?format=csv")["Content-Type"].startswith("text/csv")


def test_read_and_write_models_share_their_enums(schema):
    components = schema["components"]["schemas"]

    def prop(component: str, name: str) -> str:
        found = components[component]["properties"][name]
        refs = [found.get("$ref")] + [alt.get("$ref") for alt in found.get("oneOf", []) + found.get("allOf", [])]
        return next(ref for ref in refs if ref and not ref.endswith("/NullEnum"))

    pairs = [
        (("Story", "priority"), ("StoryInputRequest", "priority"), "PriorityEnum"),
        (("Story", "status_category"), ("GraphNode", "status_category"), "StatusCategoryEnum"),
        (("Project", "status"), ("ProjectInputRequest", "status"), "ProjectStatusEnum"),
        (("Project", "role"), ("MemberInputRequest", "role"), "MemberRoleEnum"),
        (("MemberOut", "role"), ("PatchedMemberRoleInputRequest", "role"), "MemberRoleEnum"),
        (("BacklogOut", "type"), ("BacklogInputRequest", "type"), "BacklogTypeEnum"),
        (("BacklogOut", "status"), ("BacklogInputRequest", "status"), "BacklogStatusEnum"),
        (("StatusOut", "category"), ("StatusInputRequest", "category"), "StatusCategoryEnum"),
        (("DependencyRef", "type"), ("DependencyInputRequest", "type"), "DependencyTypeEnum"),
        (("Dependency", "type"), ("DependencyInputRequest", "type"), "DependencyTypeEnum"),
        (("ProjectDependencyOut", "type"), ("ProjectDependencyInputRequest", "type"), "ProjectDependencyTypeEnum"),
    ]
    for read, write, name in pairs:
        assert prop(*read) == prop(*write) == _ref(name), (read, write)


def test_errors_are_typed(schema):
    components = schema["components"]["schemas"]

    def props(name):
        return components[name]["properties"], set(components[name].get("required", []))

    extras = {
        "DependencyCycleError": "cycle",
        "InvalidTransitionError": "allowed",
        "BlockedError": "blockers",
    }
    for name, field in extras.items():
        properties, required = props(name)
        assert properties[field] == {"type": "array", "items": {"type": "string"}} | (
            {"description": properties[field]["description"]} if "description" in properties[field] else {}
        ), name
        assert {"code", "message", "details", field} <= required, name
    assert props("InvalidTransitionError")[0]["current"]["type"] == "string"
    assert props("ConflictError")[0]["current_version"]["type"] == "integer"
    assert props("PreconditionFailedError")[0]["current_version"]["type"] == "integer"

    story_patch = schema["paths"]["/api/v1/projects/{slug}/stories/{key}/"]["patch"]["responses"]
    conflict = story_patch["409"]["content"]["application/json"]["schema"]
    assert conflict["discriminator"]["mapping"] == {
        "conflict": _ref("ConflictError"),
        "dependency_cycle": _ref("DependencyCycleError"),
        "invalid_transition": _ref("InvalidTransitionError"),
        "blocked": _ref("BlockedError"),
    }
    assert {alt["$ref"] for alt in conflict["oneOf"]} == set(conflict["discriminator"]["mapping"].values())


def test_503_and_429_are_documented_everywhere(schema):
    for path, method, operation in _operations(schema):
        unavailable = operation["responses"]["503"]
        body = unavailable["content"]["application/json"]["schema"]
        if "$ref" in body and body["$ref"] != _ref("ServiceUnavailableError"):  # a 503 of its own besides
            body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
            assert {"$ref": _ref("ServiceUnavailableError")} in body["oneOf"], (path, method)
        else:
            assert body == {"$ref": _ref("ServiceUnavailableError")}, (path, method)
        assert "Retry-After" in unavailable["headers"], (path, method)
        assert "Retry-After" in operation["responses"]["429"]["headers"], (path, method)
    codes = schema["components"]["schemas"]["DatabaseErrorCodeEnum"]["enum"]
    assert set(codes) == {"database_unavailable", "database_timeout", "database_busy"}


def test_story_dependencies_document_hidden_placeholders(schema):
    ref = schema["components"]["schemas"]["DependencyRef"]["properties"]
    assert ref["depends_on"]["nullable"] is True
    assert ref["hidden"]["type"] == "boolean"
    node = schema["components"]["schemas"]["GraphNode"]
    assert node["required"] == ["id"] and node["properties"]["hidden"]["type"] == "boolean"


def test_redocly_recommended_details(schema):
    """What Redocly's recommended rules found besides summaries: no servers, and a
    nullable enum without a `type` beside `nullable` (OpenAPI 3.0)."""
    assert schema["servers"] == [{"url": "/", "description": "this server"}]

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("nullable"):
                assert "type" in node, where
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "")
    role = schema["components"]["schemas"]["Project"]["properties"]["role"]
    assert role["type"] == "string" and role["nullable"] is True
