"""Resources and prompts, as plain data (mcp_app.server wraps them in the SDK's types).

Resource: `storyhub://{project}/stories/{key}`, a story as its story file (markdown),
read through the same project access and visibility as `story_get` (a story the caller
cannot see reads exactly like one that does not exist).

Prompts: refine a story, split a story, plan the next sprint from the ready list. Each
embeds what it is about (the story file; the ready list) and says which tools finish
the job, so the assistant does not have to look it up first.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from stories import selectors

from .caller import Caller
from .dispatch import call_tool

URI_TEMPLATE = "storyhub://{project}/stories/{key}"
_URI = re.compile(r"^storyhub://(?P<project>[^/]+)/stories/(?P<key>[^/]+)$")
LISTED_RESOURCES = 50


class ContentNotFound(Exception):
    """No such resource or prompt for this caller (or its arguments name nothing visible)."""


def resource_uri(project: str, key: str) -> str:
    return URI_TEMPLATE.format(project=project, key=key)


def resource_list(caller: Caller) -> list[dict[str, str]]:
    """The stories the caller saw change most recently (any of them reads by its URI)."""
    from stories.models import Story

    rows = (
        Story.objects.filter(project__in=selectors.project_list_for_user(user=caller.user))
        .order_by("-updated_at", "-id")
        .values_list("project__slug", "key", "title")[:LISTED_RESOURCES]
    )
    return [{"uri": resource_uri(slug, key), "name": f"{slug}:{key}", "title": title} for slug, key, title in rows]


def _story_markdown(caller: Caller, project: str, key: str) -> str:
    result, is_error = call_tool(caller, "story_get", {"project": project, "key": key, "format": "markdown"})
    if is_error:
        raise ContentNotFound(result["message"])
    return result["markdown"]


def resource_read(caller: Caller, uri: str) -> str:
    match = _URI.match(uri)
    if match is None:
        raise ContentNotFound(f"Unknown resource {uri[:200]!r}; give {URI_TEMPLATE}.")
    return _story_markdown(caller, match["project"], match["key"])


PROMPTS: dict[str, dict[str, Any]] = {
    "refine_story": {
        "description": "Refine a story: sharpen title, acceptance criteria, estimate and dependencies.",
        "arguments": [("project", "project slug", True), ("key", "story key", True)],
    },
    "split_story": {
        "description": "Split a story into smaller stories that can ship on their own.",
        "arguments": [("project", "project slug", True), ("key", "story key", True)],
    },
    "plan_sprint": {
        "description": "Plan the next sprint from the ready list within a capacity in story points.",
        "arguments": [("project", "project slug", True), ("capacity", "story points (default 20)", False)],
    },
}


def _refine(caller: Caller, args: dict[str, str]) -> str:
    story = _story_markdown(caller, args["project"], args["key"])
    return (
        f"Refine story {args['key']} of project {args['project']}. Make the title say the outcome, write "
        "testable acceptance criteria in the body, check the estimate and the dependencies (blocks links) "
        "against the rest of the project (story_search, story_blockers). Then save it with story_upsert, "
        "passing the story's current version, and report what you changed.\n\n" + story
    )


def _split(caller: Caller, args: dict[str, str]) -> str:
    story = _story_markdown(caller, args["project"], args["key"])
    return (
        f"Split story {args['key']} of project {args['project']} into 2-5 smaller stories, each valuable and "
        "testable on its own, with new keys following the project's pattern. Preview them with story_upsert "
        "(dry_run: true), then create them in one story_upsert call with dependencies between them where "
        "one needs another first, and mark the original (its body, or status cancelled via "
        "story_transition) as replaced.\n\n" + story
    )


def _plan(caller: Caller, args: dict[str, str]) -> str:
    capacity = args.get("capacity") or "20"
    if not capacity.isdigit():
        raise ContentNotFound("capacity: give a whole number of story points.")
    ready, is_error = call_tool(caller, "ready_list", {"project": args["project"], "limit": 50})
    if is_error:
        raise ContentNotFound(ready["message"])
    return (
        f"Plan the next sprint of project {args['project']} with a capacity of {capacity} story points. "
        "Below is the ready list in StoryHub's order (priority, then what unblocks most). Pick stories in "
        "that order while they fit, say why you skip any, and list what the sprint unblocks "
        "(story_dependents). Move the chosen ones into the sprint backlog with story_move if the project "
        "has one.\n\nReady stories (JSON):\n" + orjson.dumps(ready, default=str).decode()
    )


_BUILDERS = {"refine_story": _refine, "split_story": _split, "plan_sprint": _plan}


def prompt_get(caller: Caller, name: str, args: dict[str, str] | None) -> tuple[str, str]:
    """(description, the user message) of prompt `name`."""
    if name not in PROMPTS:
        raise ContentNotFound(f"No prompt '{name}'.")
    args = args or {}
    missing = [a for a, _, required in PROMPTS[name]["arguments"] if required and not args.get(a)]
    if missing:
        raise ContentNotFound(f"Give the argument(s): {', '.join(missing)}.")
    return PROMPTS[name]["description"], _BUILDERS[name](caller, args)
