"""The MCP tool set as data: name, one-line description, input schema and annotations.

Small on purpose (a planning agent pays for every tool's schema in its context before
any work): one tool per job, short descriptions, schemas without titles, and limits
taken from the API's (the same page sizes, walk depths, batch sizes and field lengths).
`READ_TOOLS` is what a read-only API key sees. No SDK import here: `tools/list` builds
the SDK's Tool objects from these dicts (mcp_app.server).

Annotations follow the protocol's meaning: readOnlyHint for tools that change nothing;
for the others destructiveHint says whether it may overwrite or remove what is stored
(a status change or move is not: history and audit keep the old value, and it is undone
by another call), idempotentHint whether calling again with the same arguments changes
nothing more. No tool reaches outside StoryHub (openWorldHint false).
"""

from __future__ import annotations

from typing import Any

from stories import fields
from stories.api.views import MAX_PAGE_SIZE
from stories.graph import MAX_READY_LIMIT
from stories.importer import ImportLimits

MAX_WALK_DEPTH = 1000  # the API's max_depth bound (blockers/ and dependents/)
MAX_BATCH = 1000  # stories/bulk/'s items bound
MAX_IMPORT_FILES = 200  # files in one import_story_files call (the file bound is the importer's)
MAX_FILE_CHARS = ImportLimits().max_file_bytes
MAX_AUDIT_PAGE = 200  # audit/'s page_size bound
MAX_QUERY_CHARS = 200


def _s(description: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "string", **({"description": description} if description else {}), **extra}


def _i(low: int, high: int, description: str | None = None) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high, **({"description": description} if description else {})}


def _b(description: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description}


def _obj(required: tuple[str, ...] = (), **properties: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


PROJECT = _s("project slug", maxLength=100)
KEY = _s("story key, e.g. INF-013", maxLength=fields.max_length("key"))
REF = _s('story "KEY" or "other-project:KEY"', maxLength=200)
VERSION = _i(1, 2**31 - 1, "the version you read; a stale one is a conflict")
STATUS = _s("status slug of the project's workflow", maxLength=50)
DEP_TYPE = {"type": "string", "enum": ["blocks", "relates", "duplicates"]}

READ = {"readOnlyHint": True, "openWorldHint": False}


def _write(*, destructive: bool, idempotent: bool) -> dict[str, Any]:
    return {"readOnlyHint": False, "destructiveHint": destructive, "idempotentHint": idempotent, "openWorldHint": False}


STORY_ITEM = {
    "type": "object",
    "description": "key + the API's story fields (title, status, priority, estimate, epic, backlog, labels, "
    "owner, body, metadata, dependencies: [KEY | {key, type}], notes); version: expected version",
    "required": ["key"],
}

TOOLS: dict[str, dict[str, Any]] = {
    "project_list": {
        "description": "Projects you can see, with your role.",
        "inputSchema": _obj(),
        "annotations": READ,
    },
    "project_get": {
        "description": "One project: its workflow statuses (slug, category, allowed moves), backlogs, epics.",
        "inputSchema": _obj(("project",), project=PROJECT),
        "annotations": READ,
    },
    "story_get": {
        "description": "One story as JSON (with version, dependencies, blocked/ready) or as its story file.",
        "inputSchema": _obj(
            ("project", "key"), project=PROJECT, key=KEY, format={"type": "string", "enum": ["json", "markdown"]}
        ),
        "annotations": READ,
    },
    "story_search": {
        "description": "Find stories across your projects: full-text q and the API's list filters; "
        "next page with cursor.",
        "inputSchema": _obj(
            (),
            q=_s("words in title or body", maxLength=MAX_QUERY_CHARS),
            project=_s("project slug(s), comma-separated", maxLength=1000),
            status=_s("status slug(s), comma-separated", maxLength=1000),
            status_category={
                "type": "array",
                "items": {"type": "string", "enum": ["backlog", "unstarted", "started", "completed", "cancelled"]},
                "maxItems": 5,
            },
            priority={
                "type": "array",
                "items": {"type": "string", "enum": list(fields.PRIORITY_BY_WORD)},
                "maxItems": 5,
            },
            epic=_s(maxLength=1000),
            backlog=_s(maxLength=1000),
            label=_s(maxLength=200),
            owner=_s(maxLength=200),
            updated_since=_s("ISO 8601 date-time", maxLength=64),
            ordering={"type": "string", "enum": ["key", "-key", "priority", "-priority", "updated_at", "-updated_at"]},
            page_size=_i(1, MAX_PAGE_SIZE, "default 50"),
            cursor=_s(maxLength=500),
        ),
        "annotations": READ,
    },
    "ready_list": {
        "description": "Stories that can start now, in order: priority, then what unblocks most, then key.",
        "inputSchema": _obj(
            ("project",), project=PROJECT, limit=_i(1, MAX_READY_LIMIT, "default 100"), offset=_i(0, 10_000_000)
        ),
        "annotations": READ,
    },
    "blocked_list": {
        "description": "Open stories waiting on an unfinished blocks dependency, each with its open blockers.",
        "inputSchema": _obj(("project",), project=PROJECT, limit=_i(1, MAX_READY_LIMIT, "default 100")),
        "annotations": READ,
    },
    "story_blockers": {
        "description": "What a story waits for (blocks links), nearest first; transitive follows the chain.",
        "inputSchema": _obj(
            ("project", "key"),
            project=PROJECT,
            key=KEY,
            transitive=_b("whole chain (default false)"),
            max_depth=_i(1, MAX_WALK_DEPTH),
        ),
        "annotations": READ,
    },
    "story_dependents": {
        "description": "What waits for a story (blocks links), nearest first; transitive follows the chain.",
        "inputSchema": _obj(
            ("project", "key"),
            project=PROJECT,
            key=KEY,
            transitive=_b("whole chain (default false)"),
            max_depth=_i(1, MAX_WALK_DEPTH),
        ),
        "annotations": READ,
    },
    "topological_order": {
        "description": "Every story key of a project after all its blockers (ties: priority, key).",
        "inputSchema": _obj(("project",), project=PROJECT),
        "annotations": READ,
    },
    "critical_path": {
        "description": "The chain of blocks links with the most story points.",
        "inputSchema": _obj(("project",), project=PROJECT),
        "annotations": READ,
    },
    "audit_query": {
        "description": "Who changed what and when (newest first), for the projects you can see.",
        "inputSchema": _obj(
            (),
            project=PROJECT,
            key=_s("story key (with project)", maxLength=fields.max_length("key")),
            action=_s("e.g. story.status_changed", maxLength=100),
            user=_s("username", maxLength=150),
            since=_s("ISO 8601 date-time", maxLength=64),
            page_size=_i(1, MAX_AUDIT_PAGE, "default 20"),
            cursor=_s(maxLength=100),
        ),
        "annotations": READ,
    },
    "story_upsert": {
        "description": "Create or update stories by key, all or nothing; a listed dependencies value replaces "
        "the links. dry_run validates only.",
        "inputSchema": _obj(
            ("project", "stories"),
            project=PROJECT,
            stories={"type": "array", "items": STORY_ITEM, "minItems": 1, "maxItems": MAX_BATCH},
            dry_run=_b("validate and report, write nothing"),
        ),
        "annotations": _write(destructive=True, idempotent=True),
    },
    "story_transition": {
        "description": "Move a story to another status; refused while blocked (blockers listed) or when the "
        "version is stale.",
        "inputSchema": _obj(
            ("project", "key", "status"),
            project=PROJECT,
            key=KEY,
            status=STATUS,
            version=VERSION,
            notes=_s(maxLength=2000),
            override_blocked=_b("project admins: move a blocked story anyway, with reason"),
            reason=_s(maxLength=2000),
        ),
        "annotations": _write(destructive=False, idempotent=True),
    },
    "story_move": {
        "description": "Put a story into a backlog (null: none).",
        "inputSchema": _obj(
            ("project", "key", "backlog"),
            project=PROJECT,
            key=KEY,
            backlog={"type": ["string", "null"], "maxLength": 100},
            version=VERSION,
        ),
        "annotations": _write(destructive=False, idempotent=True),
    },
    "story_rank": {
        "description": "Reorder a story in its project: just before and/or just after another story (both: they "
        "must still be neighbours).",
        "inputSchema": _obj(("project", "key"), project=PROJECT, key=KEY, before=KEY, after=KEY, version=VERSION),
        "annotations": _write(destructive=False, idempotent=True),
    },
    "dependency_add": {
        "description": "Make a story depend on another; a link that would close a cycle is refused with the cycle.",
        "inputSchema": _obj(
            ("project", "key", "depends_on"),
            project=PROJECT,
            key=KEY,
            depends_on=REF,
            type=DEP_TYPE,
            description=_s(maxLength=2000),
        ),
        "annotations": _write(destructive=False, idempotent=True),
    },
    "dependency_remove": {
        "description": "Remove a story's link to another.",
        "inputSchema": _obj(("project", "key", "depends_on"), project=PROJECT, key=KEY, depends_on=REF),
        "annotations": _write(destructive=True, idempotent=True),
    },
    "import_story_files": {
        "description": "Import story files (YAML front matter + markdown) given as text. File by file like the "
        "API and the command: every file ends created, updated, unchanged, conflict, excluded or failed in "
        "the report; atomic makes it all or nothing; dry_run reports only.",
        "inputSchema": _obj(
            ("project", "files"),
            project=PROJECT,
            files={
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_IMPORT_FILES,
                "items": _obj(
                    ("path", "text"),
                    path=_s("e.g. infra/INF-013.md", maxLength=500),
                    text=_s(maxLength=MAX_FILE_CHARS),
                ),
            },
            dry_run=_b("validate and report, write nothing"),
            atomic=_b("all or nothing: one bad file and nothing is written"),
            continue_on_error=_b("the older spelling: false means atomic (atomic, when given, decides)"),
        ),
        "annotations": _write(destructive=True, idempotent=True),
    },
}

READ_TOOLS = frozenset(name for name, tool in TOOLS.items() if tool["annotations"]["readOnlyHint"])
