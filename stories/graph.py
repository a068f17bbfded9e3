"""The dependency graph: walks, the ready list, topological order, critical path and
renderings (JSON, Graphviz dot, Mermaid).

Only ``blocks`` links order work; ``relates`` and ``duplicates`` links are drawn but never
block anything. A transitive walk is one recursive SQL query that reaches each story once
(PostgreSQL and SQLite share the SQL) and a breadth-first pass in Python for the shortest
depths; a shallow capped walk goes level by level. Whole-project algorithms load the
project's nodes and edges in two queries and run in Python, which is linear in the size
of the project.
"""

from __future__ import annotations

import heapq
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain

from django.db import connection

from . import fields, readiness
from .models import BlocksGraphVersion, Project, Status, Story, StoryDependency
from .rules import HIDDEN_STORY_LABEL, visibility_for
from .selectors import reach_sql

BLOCKS = readiness.BLOCKING_TYPE
COMPLETED = readiness.DONE_CATEGORY
UNSTARTED = readiness.READY_CATEGORY
PRIORITY_WORDS = fields.PRIORITY_WORDS

# The blocks graph is acyclic (the services refuse cycles), so a walk ends on its own;
# the bound only protects against a corrupted graph.
WALK_DEPTH_LIMIT = 100_000
DEFAULT_READY_LIMIT = 100
MAX_READY_LIMIT = 1000

_DEPS = StoryDependency._meta.db_table
_STORIES = Story._meta.db_table
_STATUSES = Status._meta.db_table

# One level of a bounded walk: the next stories of a frontier (chunked like the payloads).
_LEVEL_SQL = f"SELECT DISTINCT d.{{far}} FROM {_DEPS} d WHERE d.type = %s AND d.{{near}} IN ({{ids}})"
# A walk capped this shallow goes level by level (one query per level and chunk of the
# frontier) instead of reaching everything first; deeper caps reach everything.
LEVEL_WALK_MAX_DEPTH = 8
ID_CHUNK = 5000  # ids per statement, well under SQLite's bound-parameter limit


def _walk_levels(*, start: int, near: str, far: str, max_depth: int) -> list[tuple[int, int]]:
    """Breadth first, one set-based query per level (and per ID_CHUNK of its frontier)."""
    seen = {start}
    frontier = [start]
    found: list[tuple[int, int]] = []
    depth = 0
    with connection.cursor() as cursor:
        while frontier and depth < max_depth:
            depth += 1
            reached: set[int] = set()
            for begin in range(0, len(frontier), ID_CHUNK):
                chunk = frontier[begin : begin + ID_CHUNK]
                sql = _LEVEL_SQL.format(near=near, far=far, ids=", ".join(["%s"] * len(chunk)))
                cursor.execute(sql, [BLOCKS, *chunk])
                reached.update(int(row[0]) for row in cursor.fetchall())
            frontier = sorted(reached - seen)
            seen.update(frontier)
            found.extend((i, depth) for i in frontier)
    return found


def _walk_reach(*, start: int, near: str, far: str, max_depth: int) -> list[tuple[int, int]]:
    """Every reachable edge in one query, then shortest depths breadth first in Python."""
    successors: dict[int, list[int]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(reach_sql(near=near, far=far, vendor=connection.vendor), [start, BLOCKS, BLOCKS])
        for source, target in cursor.fetchall():
            successors[source].append(target)
    seen = {start}
    frontier = [start]
    found: list[tuple[int, int]] = []
    depth = 0
    while frontier and depth < max_depth:
        depth += 1
        following = []
        for node in frontier:
            for nxt in successors.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    following.append(nxt)
        following.sort()
        found.extend((i, depth) for i in following)
        frontier = following
    return found


def _walk(*, story: Story, near: str, far: str, transitive: bool, max_depth: int | None) -> list[tuple[int, int]]:
    depth = 1 if not transitive else (max_depth or WALK_DEPTH_LIMIT)
    if depth <= LEVEL_WALK_MAX_DEPTH:
        return _walk_levels(start=story.pk, near=near, far=far, max_depth=depth)
    return _walk_reach(start=story.pk, near=near, far=far, max_depth=depth)


def story_blockers(*, story: Story, transitive: bool = False, max_depth: int | None = None) -> list[tuple[int, int]]:
    """(story id, depth) of what `story` waits for through `blocks` links, nearest first.
    Depth 1 is a direct blocker; with `transitive` the whole chain (up to `max_depth`)."""
    return _walk(story=story, near="story_id", far="depends_on_id", transitive=transitive, max_depth=max_depth)


def story_dependents(*, story: Story, transitive: bool = False, max_depth: int | None = None) -> list[tuple[int, int]]:
    """(story id, depth) of the stories that wait for `story`, nearest first."""
    return _walk(story=story, near="depends_on_id", far="story_id", transitive=transitive, max_depth=max_depth)


# The rule itself (which category is ready, which link blocks) is stories.readiness's.
# Each candidate probes its links' far side by status id alone (stories_status_cover_idx
# on PostgreSQL: an index-only lookup, no story row); the completed and the closed status
# ids are each read once per statement (bench/NOTES.md, issue 16, the million stories).
_READY_SQL = f"""
    SELECT s.id FROM {_STORIES} s JOIN {_STATUSES} st ON st.id = s.status_id
    WHERE s.project_id = %s AND {readiness.ready_category_sql("st")}
      AND NOT EXISTS (
        SELECT 1 FROM {_DEPS} d JOIN {_STORIES} b ON b.id = d.depends_on_id
        WHERE d.story_id = s.id AND {readiness.open_blocker_sql("d", "b.status_id")}
      )
    ORDER BY s.priority DESC,
      (SELECT COUNT(*) FROM {_DEPS} w JOIN {_STORIES} ws ON ws.id = w.story_id
        WHERE w.depends_on_id = s.id AND w.type = %s AND {readiness.open_status_sql("ws.status_id")}) DESC,
      s.key, s.id
    LIMIT %s OFFSET %s
"""


def ready_story_ids(*, project: Project, limit: int = DEFAULT_READY_LIMIT, offset: int = 0) -> list[int]:
    """Stories of `project` that can start now (PRODUCT.md "What ready means"): status in
    an unstarted category and every `blocks` dependency completed.

    Order: priority first (critical before low); among equal priorities, dependency
    order — the story that unblocks the most waiting stories first — then key. Ready
    stories never block each other (a ready story is not completed), so this is always
    a valid topological order of the ready set.
    """
    with connection.cursor() as cursor:
        cursor.execute(_READY_SQL, [project.pk, BLOCKS, limit, offset])
        return [int(row[0]) for row in cursor.fetchall()]


# --------------------------------------------------------------------------- whole project


def _weight(points_min, points_max) -> Decimal:
    """A story's weight on the critical path: the upper estimate, else the lower, else 0."""
    value = points_max if points_max is not None else points_min
    return Decimal(value) if value is not None else Decimal(0)


# Whole-project ordering reads the project straight into ints (no model layer, no
# Decimal): at 10,000 stories the ORM's rows were most of the time. Stories come in the
# tie-break order (priority first, then key, then id), so a story's position in that list
# (its rank) is all the priority heap has to compare. Keys compare as code points, as
# Python's str does: "C" collation on PostgreSQL, SQLite's default BINARY.
# Weights are whole hundredths (the points fields' decimal places), so sums are exact
# integers and ties compare as they did with Decimal.
_POINTS_SCALE = 10 ** Story._meta.get_field("points_max").decimal_places
_WEIGHT_SQL = f"CAST(ROUND(COALESCE(s.points_max, s.points_min, 0) * {_POINTS_SCALE}) AS INTEGER)"
_GRAPH_VERSION = BlocksGraphVersion._meta.db_table
_COUNTER_SQL = f"(SELECT v.counter FROM {_GRAPH_VERSION} v WHERE v.id = 1)"

# What the order depends on: the `blocks` links (every writer of links bumps
# BlocksGraphVersion under the graph lock) and the stories' existence, key, priority and
# points (every write of a story bumps its version; ids are never reused; a story never
# changes project). So the graph version with the count, sums of ids, of squared ids and
# of versions of the project's stories names one state of the inputs (the squares tell
# apart stories deleted and stories created by transactions that committed out of id
# order). Its first four parts alone name the project's links: the same links and the
# same set of stories have the same links between them, so a story edit (a status, a
# priority) re-reads the stories but not the links. The fingerprint alone is one
# aggregate over the project's story rows.
_FINGERPRINT_SQL = f"""
    SELECT {_COUNTER_SQL}, COUNT(*), SUM(s.id), SUM(s.id * s.id), SUM(s.version)
    FROM {_STORIES} s WHERE s.project_id = %s
"""
_LINKS_KEY = 4  # the fingerprint's parts that name the project's links

# The fingerprint is read first, so a kept result is never older than its key. (One
# statement reading the fingerprint, the ranks and the links as arrays of ranks, with a
# window function and a materialised CTE, was tried on PostgreSQL: ~69 ms of server time
# against ~48 ms for these three reads, so not kept.)
_ORDER_NODES_SQL = f"""
    SELECT s.id, {_WEIGHT_SQL}
    FROM {_STORIES} s WHERE s.project_id = %s
    ORDER BY s.priority DESC, s.key{{collate}}, s.id
"""
_COLLATE = {"postgresql": ' COLLATE "C"'}
_ORDER_EDGES_SQL = f"""
    SELECT d.depends_on_id, d.story_id FROM {_DEPS} d
    JOIN {_STORIES} blocker ON blocker.id = d.depends_on_id
    JOIN {_STORIES} blocked ON blocked.id = d.story_id
    WHERE d.type = %s AND blocker.project_id = %s AND blocked.project_id = %s
"""


@dataclass
class _Links:
    """A project's `blocks` links, kept between reads as compact arrays: `ids` its stories
    in rank order when they were read, and the ranks each rank blocks, one after the other
    (`counts[r]` of them for rank r)."""

    ids: array
    counts: array
    targets: array

    @classmethod
    def of(cls, ids: list[int], successors: list[list[int]]) -> _Links:
        return cls(array("q", ids), array("i", map(len, successors)), array("i", chain.from_iterable(successors)))

    def successors(self, ids: list[int]) -> list[list[int]]:
        """The ranks each rank of `ids` blocks (`ids`: the same stories, perhaps reordered)."""
        targets, start, out = self.targets, 0, []
        for count in self.counts:
            out.append(targets[start : start + count].tolist())
            start += count
        if list(self.ids) == ids:
            return out
        rank = {story_id: r for r, story_id in enumerate(ids)}  # priorities or keys changed
        moved = [rank[story_id] for story_id in self.ids]
        successors: list[list[int]] = [[] for _ in ids]
        for old, blocked in enumerate(out):
            successors[moved[old]] = [moved[r] for r in blocked]
        return successors


def _fingerprint(project: Project) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINT_SQL, [project.pk])
        return tuple(cursor.fetchone())


def _read_graph(
    project: Project, links: _Links | None = None, links_key: tuple | None = None, key: tuple | None = None
) -> tuple[tuple, list, list, _Links, list[list[int]]]:
    """(fingerprint, story ids in rank order, their weights in hundredths, the links to
    keep, the ranks each rank blocks).
    `links` is reused when it was read for `links_key` and the stories still give that
    key; `key`, the fingerprint if it was just read."""
    key = key or _fingerprint(project)
    with connection.cursor() as cursor:
        cursor.execute(_ORDER_NODES_SQL.format(collate=_COLLATE.get(connection.vendor, "")), [project.pk])
        nodes = cursor.fetchall()
        ids = [row[0] for row in nodes]
        weights = [row[1] for row in nodes]
        # The stories are read after the fingerprint: kept links serve only the same set.
        if links is not None and key[:_LINKS_KEY] == links_key and set(links.ids) == set(ids):
            return key, ids, weights, links, links.successors(ids)
        cursor.execute(_ORDER_EDGES_SQL, [BLOCKS, project.pk, project.pk])
        edges = cursor.fetchall()
    rank = {story_id: r for r, story_id in enumerate(ids)}
    successors: list[list[int]] = [[] for _ in ids]
    for blocker, blocked in edges:
        successors[rank[blocker]].append(rank[blocked])
    return key, ids, weights, _Links.of(ids, successors), successors


def _kahn(successors: list[list[int]]) -> list[int]:
    """Kahn's algorithm over ranks: among the stories free to go next the lowest rank (the
    highest priority, then the key) goes first."""
    indegree = [0] * len(successors)
    for targets in successors:
        for nxt in targets:
            indegree[nxt] += 1
    heap = [r for r, n in enumerate(indegree) if not n]  # ascending, so already a heap
    order = []
    append, pop, push = order.append, heapq.heappop, heapq.heappush
    while heap:
        node = pop(heap)
        append(node)
        for nxt in successors[node]:
            left = indegree[nxt] - 1
            indegree[nxt] = left
            if not left:
                push(heap, nxt)
    if len(order) != len(successors):  # only a corrupted graph gets here
        raise RuntimeError("The project's blocks graph contains a cycle; check story_dependencies.")
    return order


# A project's order and critical path are kept per process until its fingerprint changes,
# and its links until the fingerprint's links part does: a kept answer is one query over
# the project's story rows, and after a story edit the order costs that query, the
# stories' read and the ordering, not the links' read. Inside a transaction nothing is
# kept: what it sees may be rolled back.
ORDER_CACHE_PROJECTS = 64


@dataclass
class _Entry:
    key: tuple
    links: _Links
    results: dict = field(default_factory=dict)


_order_cache: dict[int, _Entry] = {}


def _cached(project: Project, name: str, compute) -> object:
    """`compute(ids, weights, successors)` for the project's graph, or what it gave for
    the same state of the graph."""
    if connection.in_atomic_block:
        _, ids, weights, _, successors = _read_graph(project)
        return compute(ids, weights, successors)
    entry = _order_cache.get(project.pk)
    if entry is not None:
        key = _fingerprint(project)
        if key == entry.key and name in entry.results:
            return entry.results[name]
        reusable = entry.links if key[:_LINKS_KEY] == entry.key[:_LINKS_KEY] else None
        key, ids, weights, links, successors = _read_graph(project, reusable, entry.key[:_LINKS_KEY], key)
    else:
        key, ids, weights, links, successors = _read_graph(project)
    if entry is None or entry.key != key:
        entry = _Entry(key, links)
        _order_cache.pop(project.pk, None)
        if len(_order_cache) >= ORDER_CACHE_PROJECTS:
            _order_cache.pop(next(iter(_order_cache)), None)
        _order_cache[project.pk] = entry
    result = entry.results[name] = compute(ids, weights, successors)
    return result


def _topological_order(ids: list[int], weights: list[int], successors: list[list[int]]) -> tuple[int, ...]:
    return tuple(ids[r] for r in _kahn(successors))


def topological_order(*, project: Project) -> list[int]:
    """Every story of `project`, each after all stories that block it (links to other
    projects are ignored); ties broken by priority, then key."""
    return list(_cached(project, "order", _topological_order))


def _critical_path(ids: list[int], weights: list[int], successors: list[list[int]]) -> tuple[tuple[int, ...], float]:
    if not ids:
        return (), 0.0
    # Longest path in topological order, pushed forward along each edge. A story keeps
    # the heaviest predecessor; on equal totals the one with the lowest id.
    best = weights[:]  # heaviest chain ending at each rank, in hundredths
    parent = [-1] * len(ids)
    for node in _kahn(successors):
        total = best[node]
        node_id = ids[node]
        for nxt in successors[node]:
            candidate = total + weights[nxt]
            if candidate > best[nxt] or (parent[nxt] < 0 and candidate == best[nxt]):
                best[nxt], parent[nxt] = candidate, node
            elif candidate == best[nxt] and node_id < ids[parent[nxt]]:
                parent[nxt] = node
    end = 0
    for r in range(1, len(ids)):
        if best[r] > best[end] or (best[r] == best[end] and ids[r] < ids[end]):
            end = r
    path = [end]
    while parent[path[-1]] >= 0:
        path.append(parent[path[-1]])
    return tuple(ids[r] for r in reversed(path)), best[end] / _POINTS_SCALE


def critical_path(*, project: Project) -> dict:
    """The chain of `blocks` links inside `project` with the most story points (each
    story weighs its upper estimate, else its lower one, else 0):
    {"story_ids": [first … last], "points": total}."""
    story_ids, points = _cached(project, "critical_path", _critical_path)
    return {"story_ids": list(story_ids), "points": points}


def project_graph(*, project: Project, reader) -> dict:
    """Nodes and edges of `project`'s dependency graph as JSON-ready dicts, as `reader`
    may see them (`reader=None`: the system). Stories of other projects linked to this
    one appear as nodes with `external: true` and a "slug:KEY" id; one in a project the
    reader cannot see is the placeholder {"id": "hidden-N", "hidden": true} (N counts
    within this response). A hidden open `blocks` dependency still makes its story
    blocked."""
    seen = visibility_for(reader, system=True)
    rows = list(
        Story.objects.filter(project=project).values(
            "id", "key", "title", "status__slug", "status__category", "priority", "points_min", "points_max"
        )
    )
    links = list(
        StoryDependency.objects.filter(story__project=project).values(
            "story_id", "depends_on_id", "type", "depends_on__project_id"
        )
    ) + list(
        StoryDependency.objects.filter(depends_on__project=project)
        .exclude(story__project=project)
        .values("story_id", "depends_on_id", "type", "depends_on__project_id")
    )
    local = {r["id"]: r for r in rows}
    foreign_ids = {i for link in links for i in (link["story_id"], link["depends_on_id"]) if i not in local}
    foreign = {
        r["id"]: r
        for r in Story.objects.filter(pk__in=foreign_ids).values(
            "id", "key", "title", "project_id", "project__slug", "status__slug", "status__category"
        )
    }
    category = {i: r["status__category"] for i, r in local.items()} | {
        i: r["status__category"] for i, r in foreign.items()
    }
    open_blockers: dict[int, int] = defaultdict(int)
    for link in links:
        if readiness.is_open_blocker(link["type"], category.get(link["depends_on_id"])):
            open_blockers[link["story_id"]] += 1
    hidden_ids = {
        i: f"hidden-{n}"
        for n, i in enumerate(sorted(i for i, r in foreign.items() if not seen.sees(r["project_id"])), 1)
    }

    def ref(story_id: int) -> str:
        if story_id in local:
            return local[story_id]["key"]
        if story_id in hidden_ids:
            return hidden_ids[story_id]
        other = foreign[story_id]
        return f"{other['project__slug']}:{other['key']}"

    nodes = [
        {
            "id": r["key"],
            "title": r["title"],
            "status": r["status__slug"],
            "status_category": r["status__category"],
            "priority": PRIORITY_WORDS.get(r["priority"]),
            "points": float(_weight(r["points_min"], r["points_max"])),
            "blocked": readiness.is_blocked(open_blockers[r["id"]]),
            "ready": readiness.is_ready(r["status__category"], open_blockers[r["id"]]),
            "external": False,
            "hidden": False,
        }
        for r in rows
    ] + [
        {"id": hidden_ids[i], "hidden": True}
        if i in hidden_ids
        else {
            "id": ref(i),
            "title": r["title"],
            "status": r["status__slug"],
            "status_category": r["status__category"],
            "external": True,
            "hidden": False,
        }
        for i, r in sorted(foreign.items(), key=lambda item: (item[0] in hidden_ids, ref(item[0])))
    ]
    edges = [
        {"from": ref(link["story_id"]), "to": ref(link["depends_on_id"]), "type": link["type"]}
        for link in links
        if link["story_id"] in category and link["depends_on_id"] in category
    ]
    return {"project": project.slug, "nodes": nodes, "edges": edges}


# --------------------------------------------------------------------------- renderings

# What a story of a project the reader cannot see is drawn as.
HIDDEN_LABEL = HIDDEN_STORY_LABEL

_DOT_COLOURS = {"ready": "palegreen", "blocked": "lightpink", "completed": "lightgrey", "other": "white"}


def _node_state(node: dict) -> str:
    if node.get("status_category") == COMPLETED:
        return "completed"
    if node.get("ready"):
        return "ready"
    if node.get("blocked"):
        return "blocked"
    return "other"


def _quote_dot(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def graph_to_dot(graph: dict) -> str:
    """Graphviz source; an edge points from a story to what it depends on."""
    lines = [f"digraph {_quote_dot(graph['project'])} {{", "  rankdir=LR;", "  node [shape=box, style=filled];"]
    for node in graph["nodes"]:
        parts = (HIDDEN_LABEL,) if node.get("hidden") else (node["id"], node["title"][:60], f"[{node['status']}]")
        # Each part is escaped on its own; "\\n" between them is Graphviz's line break.
        label = '"' + "\\n".join(_quote_dot(part)[1:-1] for part in parts) + '"'
        colour = _DOT_COLOURS[_node_state(node)]
        extra = ', style="filled,dashed"' if node.get("external") or node.get("hidden") else ""
        lines.append(f"  {_quote_dot(node['id'])} [label={label}, fillcolor={colour}{extra}];")
    for edge in graph["edges"]:
        style = "" if edge["type"] == BLOCKS else f" [style=dashed, label={_quote_dot(edge['type'])}]"
        lines.append(f"  {_quote_dot(edge['from'])} -> {_quote_dot(edge['to'])}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_to_mermaid(graph: dict) -> str:
    """Mermaid flowchart source (paste into any Mermaid renderer)."""
    ids = {node["id"]: f"n{i}" for i, node in enumerate(graph["nodes"])}
    lines = ["flowchart LR"]
    for node in graph["nodes"]:
        if node.get("hidden"):
            label = HIDDEN_LABEL
        else:
            label = f"{node['id']}: {node['title'][:60]} [{node['status']}]".replace('"', "#quot;")
        lines.append(f'  {ids[node["id"]]}["{label}"]:::{_node_state(node)}')
    for edge in graph["edges"]:
        arrow = "-->" if edge["type"] == BLOCKS else f"-.{edge['type']}.->"
        lines.append(f"  {ids[edge['from']]} {arrow} {ids[edge['to']]}")
    lines += [
        "  classDef ready fill:#b7f0b1;",
        "  classDef blocked fill:#f7c6c7;",
        "  classDef completed fill:#d9d9d9;",
        "  classDef other fill:#ffffff;",
    ]
    return "\n".join(lines) + "\n"
