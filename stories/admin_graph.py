"""Server-side layout of a project's `blocks` graph for the admin's graph page.

Stories are placed in layers by dependency depth (a story sits one layer to the right of
its deepest blocker), so arrows always point right. Large layers wrap into several
columns so 200 stories stay readable. The result is plain numbers for an inline SVG
template: no JavaScript, no CDN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q
from django.urls import reverse

from . import readiness
from .models import Project, StatusCategory, Story, StoryDependency
from .rules import HIDDEN_STORY_LABEL, visibility_for

NODE_W = 168
NODE_H = 38
ROW_PITCH = 48
COLUMN_GAP = 24  # between columns of one layer
LAYER_GAP = 72  # between layers, room for the arrows
MAX_ROWS = 25  # a layer with more stories wraps into another column
MARGIN = 20
LEGEND_H = 34

# state → (label, order in a column)
STATES = {
    "blocked": ("Blocked", 0),
    "ready": ("Ready", 1),
    "in_progress": ("In progress", 2),
    "backlog": ("Backlog", 3),
    "done": ("Done", 4),
    "cancelled": ("Cancelled", 5),
}
# A story of a project the reader cannot see: no key, title or status, no link.
HIDDEN_STATE = ("Hidden", 6)
HIDDEN_LABEL = HIDDEN_STORY_LABEL


@dataclass
class Node:
    pk: int
    key: str
    title: str
    status: str
    category: str
    priority: int
    external: bool
    label: str
    hidden: bool = False
    state: str = "backlog"
    depth: int = 0
    x: int = 0
    y: int = 0
    url: str = ""
    blockers: list[int] = field(default_factory=list)

    @property
    def short_title(self) -> str:
        return self.title if len(self.title) <= 26 else self.title[:25] + "…"

    @property
    def short_label(self) -> str:
        return self.label if len(self.label) <= 22 else self.label[:21] + "…"

    @property
    def state_label(self) -> str:
        return _state_info(self.state)[0]

    @property
    def tooltip(self) -> str:
        if self.hidden:
            return f"{HIDDEN_LABEL}: in a project you cannot see"
        return f"{self.label} — {self.title} [{self.status}, {STATES[self.state][0].lower()}]"


def _state_info(state: str) -> tuple[str, int]:
    return HIDDEN_STATE if state == "hidden" else STATES[state]


def _state(node: Node, nodes: dict[int, Node]) -> str:
    if node.hidden:
        return "hidden"
    if node.category == StatusCategory.COMPLETED:
        return "done"
    if node.category == StatusCategory.CANCELLED:
        return "cancelled"
    # node.blockers are its `blocks` links (stories.readiness: open until completed)
    unfinished = [b for b in node.blockers if readiness.is_open_blocker(readiness.BLOCKING_TYPE, nodes[b].category)]
    if unfinished or node.status == "blocked":
        return "blocked"
    if node.category == StatusCategory.UNSTARTED:
        return "ready"
    if node.category == StatusCategory.STARTED:
        return "in_progress"
    return "backlog"


def _depths(nodes: dict[int, Node]) -> None:
    """Longest chain of blockers below each node (the graph is acyclic; a cycle, which
    the services prevent, would only stop the walk, not loop)."""
    done: dict[int, int] = {}
    for start in nodes:
        stack = [(start, iter(nodes[start].blockers))]
        on_path = {start}
        while stack:
            pk, blockers = stack[-1]
            nxt = next((b for b in blockers if b not in done and b not in on_path), None)
            if nxt is not None:
                stack.append((nxt, iter(nodes[nxt].blockers)))
                on_path.add(nxt)
                continue
            stack.pop()
            on_path.discard(pk)
            done[pk] = 1 + max((done[b] for b in nodes[pk].blockers if b in done), default=-1)
    for pk, depth in done.items():
        nodes[pk].depth = depth


def _load_nodes(project: Project, seen) -> tuple[dict[int, Node], list[tuple[int, int]]]:
    """The project's stories, the other projects' stories linked to them (a placeholder
    for one the reader cannot see), and the `blocks` edges between them."""
    nodes: dict[int, Node] = {}
    rows = Story.objects.filter(project=project).values_list(
        "pk", "key", "title", "priority", "status__slug", "status__category"
    )
    for pk, key, title, priority, status, category in rows:
        nodes[pk] = Node(pk, key, title, status, category, priority, external=False, label=key)
    edges = list(
        StoryDependency.objects.filter(type=StoryDependency.Type.BLOCKS)
        .filter(Q(story__project=project) | Q(depends_on__project=project))
        .values_list("story_id", "depends_on_id")
    )
    outside = {pk for edge in edges for pk in edge if pk not in nodes}
    others = Story.objects.filter(pk__in=outside).values_list(
        "pk", "key", "title", "priority", "status__slug", "status__category", "project_id", "project__slug"
    )
    for pk, key, title, priority, status, category, project_id, slug in others:  # none: no query
        if seen.sees(project_id):
            nodes[pk] = Node(pk, key, title, status, category, priority, external=True, label=f"{slug}:{key}")
        else:
            nodes[pk] = Node(pk, "", "", "", category, 0, external=True, label=HIDDEN_LABEL, hidden=True)
    return nodes, edges


def _edge_paths(edges: list[tuple[int, int]], nodes: dict[int, Node]) -> list[dict]:
    """One curve per `blocks` link, from the right side of the blocker to the left side
    of the story waiting for it (the nodes are placed already)."""
    paths = []
    for story_id, depends_on_id in edges:
        source, target = nodes[depends_on_id], nodes[story_id]
        x1, y1 = source.x + NODE_W, source.y + NODE_H // 2
        x2, y2 = target.x - 2, target.y + NODE_H // 2
        bend = max(24, (x2 - x1) // 2)
        unfinished = source.state not in ("done", "cancelled", "hidden")
        paths.append(
            {
                "d": f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}",
                "unfinished": unfinished,
                "title": f"{target.label} waits for {source.label}",
            }
        )
    return paths


def project_graph(project: Project, *, reader) -> dict:
    """Nodes, edges and canvas size for `project`'s blocks graph (cross-project
    blockers and dependents are drawn too, marked external). A story of a project
    `reader` cannot see is drawn as a placeholder: no key, title, status or link; its
    being open still makes the story it blocks blocked."""
    nodes, edges = _load_nodes(project, visibility_for(reader, system=True))
    for story_id, depends_on_id in edges:
        nodes[story_id].blockers.append(depends_on_id)
    for node in nodes.values():
        node.state = _state(node, nodes)
        node.url = "" if node.hidden else reverse("admin:stories_story_change", args=[node.pk])
    _depths(nodes)

    layers: dict[int, list[Node]] = {}
    for node in nodes.values():
        layers.setdefault(node.depth, []).append(node)
    x = MARGIN
    height = 0
    placed: dict[int, int] = {}  # pk → rank in the drawing order so far
    for depth in sorted(layers):
        if depth == 0:
            members = sorted(
                layers[depth], key=lambda n: (n.external, _state_info(n.state)[1], -n.priority, n.label, n.hidden)
            )
        else:
            # Next to what they wait for (mean rank of their blockers), so arrows stay short.
            def near_blockers(n: Node) -> tuple:
                ranks = [placed[b] for b in n.blockers if b in placed]
                return (sum(ranks) / len(ranks) if ranks else float("inf"), n.external, n.label)

            members = sorted(layers[depth], key=near_blockers)
        for member in members:
            placed[member.pk] = len(placed)
        columns = [members[i : i + MAX_ROWS] for i in range(0, len(members), MAX_ROWS)]
        for column in columns:
            for row, node in enumerate(column):
                node.x = x
                node.y = MARGIN + LEGEND_H + row * ROW_PITCH
                height = max(height, node.y + NODE_H)
            x += NODE_W + COLUMN_GAP
        x += LAYER_GAP - COLUMN_GAP

    paths = _edge_paths(edges, nodes)
    counts = dict.fromkeys(STATES, 0)
    for node in nodes.values():
        if not node.external:
            counts[node.state] += 1
    return {
        "nodes": sorted(nodes.values(), key=lambda n: (n.x, n.y)),
        "edges": paths,
        "width": max(x - LAYER_GAP + COLUMN_GAP + MARGIN, 640),
        "height": max(height + MARGIN, MARGIN + LEGEND_H + NODE_H + MARGIN),
        "node_w": NODE_W,
        "node_h": NODE_H,
        "legend": [
            {"state": state, "label": label, "count": counts[state], "x": MARGIN + i * 130}
            for i, (state, (label, _)) in enumerate(STATES.items())
        ],
        "layers": len(layers),
        "story_count": sum(1 for n in nodes.values() if not n.external),
        "edge_count": len(edges),
    }
