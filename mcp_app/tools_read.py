"""The read tools. Each one asks what the matching API endpoint asks, through the same
helpers: stories.api.permissions for the project (404 when the caller may not see it),
stories.selectors / stories.graph for the reads, stories.api.payloads for what a story
looks like to this reader, audit.selectors for the audit rows."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.utils.dateparse import parse_datetime

from audit.selectors import audit_list_for, audit_rows_redacted
from stories import graph, selectors
from stories.api.payloads import story_list_payload, story_rows_by_id, story_values
from stories.api.permissions import project_access
from stories.api.views import get_story, search_filter, story_page
from stories.exporter import story_markdown
from stories.models import Backlog, Epic, ProjectMember, Story

from .args import ToolArgumentError
from .caller import Caller
from .shapes import story_detail, story_row, walk_item


def _rows(ids: list[int], caller: Caller) -> list[dict[str, Any]]:
    rows = story_rows_by_id(ids)
    return story_list_payload([rows[i] for i in ids if i in rows], reader=caller.user)


def project_list(caller: Caller, args: dict[str, Any]) -> Any:
    projects = selectors.project_list_for_user(user=caller.user).order_by("slug")
    roles = dict(ProjectMember.objects.filter(user_id=caller.user.pk).values_list("project_id", "role"))
    superuser = caller.user.is_superuser
    return [
        {"slug": p.slug, "name": p.name, "status": p.status, "role": "owner" if superuser else roles.get(p.pk)}
        for p in projects
    ]


def project_get(caller: Caller, args: dict[str, Any]) -> Any:
    project, role = project_access(caller, args["project"])
    statuses = [
        {"slug": s.slug, "category": s.category, **({"to": s.allowed_transitions} if s.allowed_transitions else {})}
        for s in project.statuses.order_by("order", "slug")
    ]
    out = {
        "slug": project.slug,
        "name": project.name,
        "status": project.status,
        "role": role,
        "version": project.version,
        "statuses": statuses,
        "backlogs": list(Backlog.objects.filter(project=project).order_by("slug").values_list("slug", flat=True)),
        "epics": list(Epic.objects.filter(project=project).order_by("slug").values_list("slug", flat=True)),
    }
    if project.description:
        out["description"] = project.description
    return out


def story_get(caller: Caller, args: dict[str, Any]) -> Any:
    project, _ = project_access(caller, args["project"])
    if args.get("format") == "markdown":
        path, text = story_markdown(get_story(project, args["key"]), reader=caller.user)
        return {"path": path, "markdown": text}
    rows = list(story_values(Story.objects.filter(project=project, key=args["key"])))
    if not rows:
        raise Http404
    return story_detail(story_list_payload(rows, reader=caller.user)[0])


SEARCH_FILTERS = ("project", "status", "status_category", "priority", "epic", "backlog", "label", "owner")


def story_search(caller: Caller, args: dict[str, Any]) -> Any:
    params = {k: args[k] for k in (*SEARCH_FILTERS, "updated_since", "ordering", "page_size", "cursor") if k in args}
    request = caller.with_query(params)
    queryset = Story.objects.filter(project__in=selectors.project_list_for_user(user=caller.user))
    if args.get("q", "").strip():
        queryset = search_filter(queryset, args["q"].strip())
    page = story_page(request, queryset).data
    return {"stories": [story_row(p) for p in page["results"]], "next": page["next"]}


def ready_list(caller: Caller, args: dict[str, Any]) -> Any:
    project, _ = project_access(caller, args["project"])
    ids = graph.ready_story_ids(project=project, limit=args.get("limit", 100), offset=args.get("offset", 0))
    return [story_row(p) for p in _rows(ids, caller)]


def blocked_list(caller: Caller, args: dict[str, Any]) -> Any:
    project, _ = project_access(caller, args["project"])
    found = selectors.story_blocked_list(project=project, reader=caller.user, limit=args.get("limit", 100))
    by_key = {p["key"]: p for p in _rows([pk for pk, _ in found], caller)}
    keys = dict(Story.objects.filter(pk__in=[pk for pk, _ in found]).values_list("pk", "key"))
    out = []
    for pk, blockers in found:
        row = story_row(by_key[keys[pk]])
        row.pop("deps", None)
        out.append({**row, "blockers": blockers})
    return out


def _walk(caller: Caller, args: dict[str, Any], walk: str) -> Any:
    project, _ = project_access(caller, args["project"])
    story = get_story(project, args["key"])
    found = getattr(graph, walk)(story=story, transitive=args.get("transitive", False), max_depth=args.get("max_depth"))
    seen = selectors.visible_walk(start_id=story.pk, found=found, reader=caller.user, forward=walk == "story_blockers")
    ids = [i for i, _ in seen if i is not None]
    payloads = {p["key"]: p for p in _rows(ids, caller)}
    keys = dict(Story.objects.filter(pk__in=ids).values_list("pk", "key"))
    out = []
    for story_id, depth in seen:
        if story_id is None:
            out.append({"hidden": True, "depth": depth})
        elif story_id in keys:
            out.append(walk_item({**payloads[keys[story_id]], "depth": depth}))
    return out


def story_blockers(caller: Caller, args: dict[str, Any]) -> Any:
    return _walk(caller, args, "story_blockers")


def story_dependents(caller: Caller, args: dict[str, Any]) -> Any:
    return _walk(caller, args, "story_dependents")


def _keys_for(ids: list[int]) -> list[str]:
    keys = dict(Story.objects.filter(pk__in=ids).values_list("pk", "key"))
    return [keys[i] for i in ids if i in keys]


def topological_order(caller: Caller, args: dict[str, Any]) -> Any:
    project, _ = project_access(caller, args["project"])
    return {"keys": _keys_for(graph.topological_order(project=project))}


def critical_path(caller: Caller, args: dict[str, Any]) -> Any:
    project, _ = project_access(caller, args["project"])
    result = graph.critical_path(project=project)
    return {"keys": _keys_for(list(result["story_ids"])), "points": float(result["points"])}


def _since(args: dict[str, Any]):
    if "since" not in args:
        return None
    try:
        value = parse_datetime(args["since"])
    except ValueError:
        value = None
    if value is None:
        raise ToolArgumentError({"since": ["Give an ISO 8601 date-time, e.g. 2025-08-28T12:00:00Z."]})
    return value


def audit_query(caller: Caller, args: dict[str, Any]) -> Any:
    project = None
    if "project" in args:
        project, _ = project_access(caller, args["project"])
    elif "key" in args:
        raise ToolArgumentError({"key": ["Give the story's project too."]})
    rows = audit_list_for(user=caller.user, project=project)
    if project is not None and "key" in args:
        story = get_story(project, args["key"])
        rows = rows.filter(entity_type="story", entity_id=str(story.pk))
    if "action" in args:
        rows = rows.filter(action=args["action"])
    if "user" in args:
        rows = rows.filter(user_repr=args["user"])
    since = _since(args)
    if since is not None:
        rows = rows.filter(timestamp__gte=since)
    if "cursor" in args:
        if not args["cursor"].isdigit():
            raise ToolArgumentError({"cursor": ["Invalid cursor."]})
        rows = rows.filter(id__lt=int(args["cursor"]))
    size = args.get("page_size", 20)
    columns = ("id", "action", "entity_type", "entity_id", "project_id", "user_repr", "timestamp", "details")
    page = list(rows.order_by("-id").values(*columns)[: size + 1])
    more = len(page) > size
    shown = audit_rows_redacted(user=caller.user, rows=page[:size])
    return {
        "rows": [
            {
                "id": r["id"],
                "at": r["timestamp"],
                "user": r["user_repr"],
                "action": r["action"],
                "entity": f"{r['entity_type']}:{r['entity_id']}",
                "details": r["details"],
            }
            for r in shown
        ],
        "next": str(shown[-1]["id"]) if more else None,
    }
