"""The admin's dependency graph of a project: what to draw and where.

The server lays the `blocks` graph out (stories.layout: layers left to right, each
story right of what it waits for, orthogonal edges that never pass behind a box, each
on its own port) and hands the page plain data; the page's script (static
storyhub/graph.js, no library, no CDN) draws it and adds zoom / pan / fit, search, the
epic / status / backlog filters and the upstream / downstream highlight.

States (one per box, told apart by colour *and* border style):
- waiting: an unfinished story with an open blocker (stories.readiness) — it cannot start;
- blocked: the story's workflow status is the Blocked status (someone marked it so);
- ready / in progress / backlog / done / cancelled from the status category;
- hidden: a story of a project the reader cannot see — no key, title, status or link.
The critical path (stories.graph.critical_path: the chain with the most points) is marked.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.db.models import Q
from django.urls import reverse

from . import graph, layout, readiness
from .models import Project, StatusCategory, Story, StoryDependency
from .rules import HIDDEN_STORY_LABEL, visibility_for

NODE_W = 200
NODE_H = 44
BLOCKED_STATUS = "blocked"  # the workflow's own Blocked status (default workflow slug)

# state → (label, order in a column of unlinked stories)
STATES = {
    "waiting": ("Waiting on a blocker", 0),
    "blocked": ("Blocked (status)", 1),
    "ready": ("Ready", 2),
    "in_progress": ("In progress", 3),
    "backlog": ("Backlog", 4),
    "done": ("Done", 5),
    "cancelled": ("Cancelled", 6),
    "hidden": ("Hidden", 7),
}
HIDDEN_LABEL = HIDDEN_STORY_LABEL
_FIELDS = (
    "pk",
    "key",
    "title",
    "priority",
    "status__slug",
    "status__name",
    "status__category",
    "epic__slug",
    "epic__name",
    "backlog__slug",
    "backlog__name",
    "project_id",
    "project__slug",
)


def _state(row: dict, open_blockers: int) -> str:
    category = row["status__category"]
    if category == StatusCategory.COMPLETED:
        return "done"
    if category == StatusCategory.CANCELLED:
        return "cancelled"
    if row["status__slug"] == BLOCKED_STATUS:
        return "blocked"
    if readiness.is_blocked(open_blockers):
        return "waiting"
    if category == StatusCategory.UNSTARTED:
        return "ready"
    if category == StatusCategory.STARTED:
        return "in_progress"
    return "backlog"


def _load(project: Project, seen) -> tuple[dict[int, dict], list[tuple[int, int]]]:
    """The project's stories, the other projects' stories linked to them by `blocks`,
    and those links (blocker, blocked): three queries whatever the size."""
    rows = {r["pk"]: r | {"external": False} for r in Story.objects.filter(project=project).values(*_FIELDS)}
    links = list(
        StoryDependency.objects.filter(type=readiness.BLOCKING_TYPE)
        .filter(Q(story__project=project) | Q(depends_on__project=project))
        .values_list("depends_on_id", "story_id")
    )
    outside = sorted({pk for link in links for pk in link if pk not in rows})
    for r in Story.objects.filter(pk__in=outside).values(*_FIELDS):
        if seen.sees(r["project_id"]):
            rows[r["pk"]] = r | {"external": True}
        else:  # only what the readiness rule needs: never its key, title or status
            rows[r["pk"]] = {"pk": r["pk"], "hidden": True, "status__category": r["status__category"]}
    return rows, links


def _node(row: dict, open_blockers: int, critical: set[int], url: str) -> dict:
    if row.get("hidden"):
        return {"id": f"h{row['pk']}", "label": HIDDEN_LABEL, "state": "hidden", "hidden": True, "external": True}
    label = f"{row['project__slug']}:{row['key']}" if row["external"] else row["key"]
    return {
        "id": f"s{row['pk']}",
        "label": label,
        "title": row["title"],
        "status": row["status__name"],
        "state": _state(row, open_blockers),
        "epic": row["epic__slug"] or "",
        "epic_name": row["epic__name"] or "",
        "backlog": row["backlog__slug"] or "",
        "backlog_name": row["backlog__name"] or "",
        "external": row["external"],
        "hidden": False,
        "critical": row["pk"] in critical,
        "url": url.replace(URL_PK, str(row["pk"]), 1),
    }


def _options(nodes: list[dict], value: str, name: str) -> list[dict]:
    found = {n[value]: n[name] for n in nodes if not n["hidden"] and not n["external"] and n[value]}
    return [{"value": v, "label": found[v]} for v in sorted(found, key=lambda v: found[v].lower())]


LAYOUT_CACHE_SECONDS = 3600
URL_PK = "0000000"


def _drawing(node_ids: list[int], links: list[tuple[int, int]], order_key) -> layout.Drawing:
    """The layout, from the cache when the same graph (same stories in the same order of
    states and keys, same links) was laid out before: only a change redoes it."""
    shape = repr((NODE_W, NODE_H, sorted((pk, order_key(pk)) for pk in node_ids), sorted(links)))
    key = "storyhub:graph-layout:" + hashlib.sha256(shape.encode()).hexdigest()
    drawing = cache.get(key)
    if drawing is None:
        drawing = layout.layered_layout(node_ids, links, width=NODE_W, height=NODE_H, order_key=order_key)
        cache.set(key, drawing, LAYOUT_CACHE_SECONDS)
    return drawing


def project_graph(project: Project, *, reader) -> dict:
    """Everything the graph page draws, as JSON-ready data: boxes with their position,
    edges with their points, the filter choices and the legend. A story of a project
    `reader` cannot see is a placeholder (its being open still makes the story it blocks
    wait)."""
    rows, links = _load(project, visibility_for(reader, system=True))
    open_count = dict.fromkeys(rows, 0)
    for blocker, blocked in links:
        if readiness.is_open_blocker(readiness.BLOCKING_TYPE, rows[blocker]["status__category"]):
            open_count[blocked] += 1
    longest = graph.critical_path(project=project)
    path = longest["story_ids"]
    critical = set(path) if len(path) > 1 else set()
    url = reverse("admin:stories_story_change", args=[URL_PK])  # one reverse, not one per story
    nodes = {pk: _node(row, open_count[pk], critical, url) for pk, row in rows.items()}

    def order_key(pk) -> tuple:
        n = nodes[pk]
        return (n["external"], STATES[n["state"]][1], n["label"], pk)

    drawing = _drawing(list(rows), links, order_key)
    for pk, (x, y, w, h) in drawing.boxes.items():
        nodes[pk].update(x=x, y=y, w=w, h=h)
    critical_links = set(zip(path, path[1:], strict=False))
    edges = [
        {
            "from": nodes[blocker]["id"],
            "to": nodes[blocked]["id"],
            "points": points,
            "open": readiness.is_open_blocker(readiness.BLOCKING_TYPE, rows[blocker]["status__category"]),
            "critical": (blocker, blocked) in critical_links,
        }
        for (blocker, blocked), points in zip(links, drawing.edges, strict=True)
        if points
    ]
    ordered = sorted(nodes.values(), key=lambda n: (n["x"], n["y"]))
    counts = dict.fromkeys(STATES, 0)
    for node in ordered:
        if not node["external"]:
            counts[node["state"]] += 1
    statuses = {n["status"] for n in ordered if not n["hidden"] and not n["external"]}
    return {
        "nodes": ordered,
        "edges": edges,
        "width": round(drawing.width),
        "height": round(drawing.height),
        "layers": drawing.layers,
        "story_count": sum(1 for n in ordered if not n["external"]),
        "edge_count": len(edges),
        "critical_points": longest["points"] if critical else 0,
        "legend": [{"state": s, "label": label, "count": counts[s]} for s, (label, _) in STATES.items()],
        "epics": _options(ordered, "epic", "epic_name"),
        "backlogs": _options(ordered, "backlog", "backlog_name"),
        "statuses": sorted(statuses),
    }
