"""OpenAPI tweaks: the Bearer key scheme, stable operation ids from the path, a summary
on every operation, the typed error shapes documented on every operation, and the
concurrency headers (ETag on responses, If-Match on writes) of versioned resources.

A view opts into the concurrency headers with class attributes:
``versioned = True`` (a detail view: ETag on its 2xx responses, If-Match on its writes),
``versioned_create = True`` (a list view whose POST answers the new object's ETag)."""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter

from . import serializers as s

ERRORS = {
    "400": "Validation error, malformed JSON, unknown field or bad query parameter.",
    "401": "Not authenticated (missing, unknown, expired or revoked API key).",
    "403": "The caller's role (or a read-only key) does not allow this.",
    "404": "Not found, or in a project the caller is not a member of.",
    "409": "Conflict: stale version, dependency cycle, invalid transition or blocked story (see `code`).",
    "412": "If-Match named a version that is no longer current; the ETag header is the current one.",
    "413": "Request body too large.",
    "429": "Rate limited; see Retry-After.",
    "503": "The database is unavailable, too slow or busy (database_unavailable, database_timeout, "
    "database_busy); nothing was changed. Retry after Retry-After seconds.",
}
WRITE_ONLY = {"409", "413"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

# 409 bodies, told apart by `code`.
CONFLICTS = {
    "conflict": s.ConflictErrorSerializer,
    "dependency_cycle": s.DependencyCycleErrorSerializer,
    "invalid_transition": s.InvalidTransitionErrorSerializer,
    "blocked": s.BlockedErrorSerializer,
}

ETAG_HEADER = {
    "ETag": {
        "schema": {"type": "string"},
        "description": 'The version of the object, e.g. "12-3": send it back as If-Match.',
    }
}
RETRY_AFTER_HEADER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description="The ETag you read: a stale one answers 412 and changes nothing (or send `version` in the body).",
)

# One summary per operation (Redocly's operation-summary rule; generated clients name
# docstrings after it). An operation missing here gets one made from its view's docstring
# or its path, so a new endpoint is never left without one.
SUMMARIES = {
    "projects_list": "List the projects you can see",
    "projects_post": "Create a project",
    "projects_by_get": "Read a project",
    "projects_by_patch": "Update a project",
    "projects_by_delete": "Delete a project",
    "projects_backlogs_list": "List a project's backlogs",
    "projects_backlogs_create": "Create a backlog",
    "projects_backlogs_retrieve": "Read a backlog",
    "projects_backlogs_partial_update": "Update a backlog",
    "projects_backlogs_destroy": "Delete a backlog",
    "projects_statuses_list": "List a project's workflow statuses",
    "projects_statuses_create": "Add a workflow status",
    "projects_statuses_retrieve": "Read a workflow status",
    "projects_statuses_partial_update": "Update a workflow status",
    "projects_statuses_destroy": "Delete a workflow status",
    "projects_epics_list": "List a project's epics",
    "projects_epics_create": "Create an epic",
    "projects_epics_retrieve": "Read an epic",
    "projects_epics_partial_update": "Update an epic",
    "projects_epics_destroy": "Delete an epic",
    "projects_by_members_get": "List a project's members",
    "projects_by_members_post": "Add a member (or change a member's role)",
    "projects_by_members_by_get": "Read a membership",
    "projects_by_members_by_patch": "Change a member's role",
    "projects_by_members_by_delete": "Remove a member",
    "projects_by_ready_get": "List the stories ready to start",
    "projects_by_graph_get": "Read the dependency graph (JSON)",
    "projects_by_graph_dot_get": "Read the dependency graph as Graphviz dot",
    "projects_by_graph_mermaid_get": "Read the dependency graph as Mermaid",
    "projects_by_graph_topological_get": "Order the stories after their blockers",
    "projects_by_graph_critical_path_get": "Find the critical path",
    "projects_by_stories_get": "List a project's stories",
    "projects_by_stories_post": "Create a story",
    "projects_by_stories_bulk_post": "Create or update many stories",
    "projects_by_stories_by_get": "Read a story",
    "projects_by_stories_by_put": "Replace a story",
    "projects_by_stories_by_patch": "Update a story",
    "projects_by_stories_by_delete": "Delete a story",
    "projects_by_stories_by_transition_post": "Move a story to another status",
    "projects_by_stories_by_move_post": "Move a story to another backlog",
    "projects_by_stories_by_rank_post": "Reorder a story within its project",
    "projects_by_stories_by_dependencies_get": "List a story's dependencies",
    "projects_by_stories_by_dependencies_post": "Add a dependency",
    "projects_by_stories_by_dependencies_by_delete": "Remove a dependency",
    "projects_by_stories_by_history_get": "Read a story's status history",
    "projects_by_stories_by_blockers_get": "List the stories a story waits for",
    "projects_by_stories_by_dependents_get": "List the stories waiting for a story",
    "stories_get": "Search stories across projects",
    "project_dependencies_get": "List project dependencies",
    "project_dependencies_post": "Add a project dependency",
    "project_dependencies_by_get": "Read a project dependency",
    "project_dependencies_by_delete": "Remove a project dependency",
    "audit_get": "Read the audit log",
    "sessions_get": "List your sessions",
    "sessions_by_get": "Read a session",
    "sessions_by_delete": "Revoke a session",
    "projects_by_import_post": "Import story files",
    "projects_by_imports_get": "List a project's import runs",
    "projects_by_imports_by_get": "Read an import run",
    "projects_by_imports_by_files_get": "List an import run's files (filter by outcome)",
    "projects_by_imports_by_files_by_get": "Read a file of an import run",
    "projects_by_import_conflicts_get": "List a project's import conflicts",
    "projects_by_import_conflicts_by_get": "Read an import conflict with both versions",
    "projects_by_import_conflicts_by_resolve_post": "Resolve an import conflict",
    "projects_by_sync_post": "Sync the project with its git repository (pull, then push)",
    "projects_by_export_get": "Export stories as a markdown zip",
    "projects_by_export_markdown_get": "Export stories as a markdown zip",
    "projects_by_export_json_get": "Export a project as JSON",
    "projects_by_export_csv_get": "Export stories as CSV",
    "projects_by_reports_velocity_get": "Report velocity per week or sprint",
    "projects_by_reports_velocity_csv_get": "Report velocity per week or sprint as CSV",
    "projects_by_reports_cumulative_flow_get": "Report cumulative flow per day",
    "projects_by_reports_cumulative_flow_csv_get": "Report cumulative flow per day as CSV",
    "projects_by_reports_cycle_time_get": "Report cycle time",
    "projects_by_reports_cycle_time_csv_get": "Report cycle time as CSV",
    "projects_by_reports_lead_time_get": "Report lead time",
    "projects_by_reports_lead_time_csv_get": "Report lead time as CSV",
    "projects_by_reports_throughput_get": "Report throughput per week",
    "projects_by_reports_throughput_csv_get": "Report throughput per week as CSV",
    "projects_by_reports_ageing_wip_get": "Report ageing work in progress",
    "projects_by_reports_ageing_wip_csv_get": "Report ageing work in progress as CSV",
    "projects_by_reports_epic_progress_get": "Report epic progress",
    "projects_by_reports_epic_progress_csv_get": "Report epic progress as CSV",
    "projects_by_reports_cross_project_get": "Report cross-project blockers",
    "projects_by_reports_cross_project_csv_get": "Report cross-project blockers as CSV",
    "projects_by_reports_burndown_by_get": "Report a sprint's burndown",
    "projects_by_reports_burndown_by_csv_get": "Report a sprint's burndown as CSV",
    "projects_by_reports_burnup_by_get": "Report a sprint's burnup",
    "projects_by_reports_burnup_by_csv_get": "Report a sprint's burnup as CSV",
    "events_get": "Read the event feed",
    "events_stream_get": "Stream events (Server-Sent Events)",
    "projects_by_webhooks_get": "List a project's webhook endpoints",
    "projects_by_webhooks_post": "Create a webhook endpoint",
    "projects_by_webhooks_by_get": "Read a webhook endpoint",
    "projects_by_webhooks_by_patch": "Update a webhook endpoint",
    "projects_by_webhooks_by_delete": "Delete a webhook endpoint",
    "projects_by_webhooks_by_deliveries_get": "Read a webhook endpoint's delivery log",
    "projects_by_webhooks_by_deliveries_by_redeliver_post": "Redeliver a webhook delivery",
    "projects_by_webhooks_by_ping_post": "Send a test ping to a webhook endpoint",
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "sessions_app.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"}


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n\n")[0].replace("\n", " ").strip().rstrip(".")


class StoryHubAutoSchema(AutoSchema):
    def get_operation_id(self):
        path = re.sub(r"^/api/v1/", "", self.path).strip("/")
        path = re.sub(r"\{[^}]+\}", "by", path)
        words = [w for w in re.split(r"[/_-]+", path) if w]
        return "_".join([*words, self.method.lower()])

    def get_summary(self):
        summary = SUMMARIES.get(self.get_operation_id())
        if summary:
            return summary
        handler = getattr(self.view, self.method.lower(), None)
        doc = _first_line(getattr(handler, "__doc__", None)) or _first_line(self.view.__class__.__doc__)
        return doc[:120] if doc else f"{self.method} {self.path}"

    def _is_versioned_write(self) -> bool:
        return bool(getattr(self.view, "versioned", False)) and self.method in UNSAFE

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self._is_versioned_write():
            parameters.append(IF_MATCH)
        return parameters

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        from .serializers import StrictSerializer

        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
        return schema

    def _ref(self, serializer_class) -> dict:
        return self.resolve_serializer(serializer_class, "response").ref

    def _error_schema(self, code: str) -> dict:
        if code == "409":
            refs = {name: self._ref(cls) for name, cls in CONFLICTS.items()}
            return {
                "oneOf": list(refs.values()),
                "discriminator": {"propertyName": "code", "mapping": {k: v["$ref"] for k, v in refs.items()}},
            }
        if code == "412":
            return self._ref(s.PreconditionFailedErrorSerializer)
        if code == "503":
            return self._ref(s.ServiceUnavailableErrorSerializer)
        return self._ref(s.ErrorSerializer)

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for code, description in ERRORS.items():
            if code in WRITE_ONLY and self.method not in UNSAFE:
                continue
            if code == "412" and not self._is_versioned_write():
                continue
            response = responses.setdefault(
                code,
                {"description": description, "content": {"application/json": {"schema": self._error_schema(code)}}},
            )
            if code in ("429", "503"):
                response.setdefault("headers", {}).update(RETRY_AFTER_HEADER)
            if code == "412":
                response.setdefault("headers", {}).update(ETAG_HEADER)
        etag = getattr(self.view, "versioned", False) or (
            getattr(self.view, "versioned_create", False) and self.method == "POST"
        )
        if etag:
            for code, response in responses.items():
                if code.startswith("2") and code != "204":
                    response.setdefault("headers", {}).update(ETAG_HEADER)
        return operation


def postprocess_nullable_refs(result, generator, request, public):
    """drf-spectacular writes a nullable enum as `{"nullable": true, "oneOf": [{$ref},
    {$ref NullEnum}]}` (a nullable nested object as `allOf: [{$ref}]`); OpenAPI 3.0 wants a `type` beside `nullable` (Redocly's
    nullable-type-sibling). Give it the referenced component's type."""
    components = result.get("components", {}).get("schemas", {})

    def fix(node):
        if isinstance(node, dict):
            alternatives = node.get("oneOf") or node.get("allOf")  # allOf: a nullable nested serializer
            if node.get("nullable") and "type" not in node and alternatives:
                for alternative in alternatives:
                    target = components.get(alternative.get("$ref", "").rsplit("/", 1)[-1], {})
                    if target.get("type"):
                        node["type"] = target["type"]
                        break
            for value in node.values():
                fix(value)
        elif isinstance(node, list):
            for value in node:
                fix(value)

    fix(result)
    return result
