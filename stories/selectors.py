"""Reads with non-trivial queries: visibility, lookups by key, graph walks.

Visibility (stories.rules decides who sees which project): a story of a project the
reader cannot see is never named. Where a linked story is referred to by a string (the
`cycle` of a dependency_cycle error, `blockers` of a blocked error) a hidden one is the
literal HIDDEN_REF; in structured lists it is a placeholder (see README "Visibility").
`reader=None` is the system (management commands, an operator's import): it sees all."""

from __future__ import annotations

from collections import deque

from django.db import connection
from django.db.models import Q, QuerySet

from storyhub.prepared import Prepared

from .models import ImportConflict, ImportFile, ImportRun, Project, ProjectMember, Story, StoryDependency
from .readiness import CLOSED_CATEGORIES, is_open_blocker, open_blocker_q
from .rules import EVERYTHING, HIDDEN_REF, Visibility, is_principal, visibility_for

BLOCKS = StoryDependency.Type.BLOCKS.value

__all__ = ["EVERYTHING", "HIDDEN_REF", "Visibility", "visibility_for"]


def _member_project_ids(user_id: int) -> QuerySet:
    return ProjectMember.objects.filter(user_id=user_id).values("project_id")


def visible_project_ids(user) -> QuerySet:
    """Ids of the projects `user` may see, as a subquery (`project_id__in=`); every
    project for superusers, none for the anonymous."""
    if not is_principal(user):
        return Project.objects.none().values("pk")
    if user.is_superuser:
        return Project.objects.values("pk")
    return _member_project_ids(user.pk)


# The member's subquery of visible_project_ids, compiled once (it is in every story page).
_MEMBER_PROJECT_IDS = Prepared(_member_project_ids, -7_000_000_001)


def visible_project_sql(reader, column: str) -> tuple[str, list]:
    """(SQL, params): a condition true when `column` (a project id) names a project
    `reader` may see, for hand-written statements (reader=None: the system). Built from
    visible_project_ids, so the rule stays in one place."""
    if reader is None or (is_principal(reader) and reader.is_superuser):
        return "1 = 1", []
    if not is_principal(reader):
        return "1 = 0", []
    sql, params = _MEMBER_PROJECT_IDS.statement(reader.pk)
    return f"{column} IN ({sql})", params


def project_list_for_user(*, user) -> QuerySet[Project]:
    """Projects `user` may see: all for superusers, else those they are a member of."""
    qs = Project.objects.all()
    if not is_principal(user):
        return qs.none()
    if user.is_superuser:
        return qs
    return qs.filter(pk__in=visible_project_ids(user))


def reader_visibility(reader) -> Visibility:
    """visibility_for() with the services' convention: `reader=None` is the system."""
    return visibility_for(reader, system=True)


def story_ref(*, key: str, project_id: int, slug: str, relative_to: Project | None) -> str:
    """ "KEY" inside `relative_to`, "slug:KEY" elsewhere (for a story the reader sees)."""
    return key if relative_to is not None and project_id == relative_to.pk else f"{slug}:{key}"


def story_refs(*, ids, reader, relative_to: Project | None, visibility: Visibility | None = None) -> dict[int, str]:
    """Display keys for story ids as `reader` may see them: "KEY" inside `relative_to`,
    "slug:KEY" elsewhere, HIDDEN_REF for a story of a project the reader cannot see."""
    seen = visibility if visibility is not None else reader_visibility(reader)
    rows = Story.objects.filter(pk__in=list(ids)).values_list("pk", "key", "project_id", "project__slug")
    return {
        pk: story_ref(key=key, project_id=project_id, slug=slug, relative_to=relative_to)
        if seen.sees(project_id)
        else HIDDEN_REF
        for pk, key, project_id, slug in rows
    }


def collapse_hidden(refs: list[str]) -> list[str]:
    """A list of refs with each run of HIDDEN_REF shown once (how many hidden stories
    stand in a row, e.g. in a cycle, is not the reader's to know)."""
    out: list[str] = []
    for ref in refs:
        if not (ref == HIDDEN_REF and out and out[-1] == HIDDEN_REF):
            out.append(ref)
    return out


def story_get_visible_by_ref(*, ref: str, default_project: Project | None, reader) -> Story | None:
    """story_get_by_ref() for `reader`: a story it cannot see is None, exactly like a
    key that does not exist (so keys of hidden projects cannot be probed)."""
    story = story_get_by_ref(ref=ref, default_project=default_project)
    if story is None or not reader_visibility(reader).sees(story.project_id):
        return None
    return story


def story_get_by_ref(*, ref: str, default_project: Project | None) -> Story | None:
    """Resolve "KEY" (in `default_project`) or "project-slug:KEY"."""
    if ":" in ref:
        slug, key = ref.split(":", 1)
        return Story.objects.select_related("project").filter(project__slug=slug, key=key).first()
    if default_project is None:
        return None
    return Story.objects.select_related("project").filter(project=default_project, key=ref).first()


_DEPS = StoryDependency._meta.db_table

# Each story reached once (UNION on the id alone), however many routes lead to it: the
# walk is linear in the edges it reaches. Deduplicating on (id, depth) instead revisited a
# story once per distinct depth, quadratic on a chain where each story waits for the
# previous two (4,000 stories: 4 million rows). The depths (shortest route) come from a
# breadth-first pass in Python over the edges this one query returns.
#
# The links of the reached stories: PostgreSQL gets them through a LATERAL subquery
# (OFFSET 0 keeps it one), an index probe per reached story whatever the planner believes;
# as a plain join, with statistics that predate a large import, it hash-joined a full scan
# of story_dependencies on every step (2,000-story chain: 2.2 s instead of milliseconds).
_LINKS_OF_REACH = {
    "postgresql": (
        "reach r CROSS JOIN LATERAL (SELECT d.{near}, d.{far} FROM {deps} d"
        " WHERE d.{near} = r.id AND d.type = %s OFFSET 0) d"
    ),
    "default": "{deps} d JOIN reach r ON d.{near} = r.id AND d.type = %s",
}


def reach_sql(*, near: str, far: str, vendor: str, select: str | None = None) -> str:
    """The walk's query: the recursive `reach` set from story %s along `blocks` links
    (type %s) from `near` to `far`, then `select` (default: the reached stories' links
    (near, far), taking the type once more)."""
    links = _LINKS_OF_REACH.get(vendor, _LINKS_OF_REACH["default"]).format(deps=_DEPS, near=near, far=far)
    cte = f"WITH RECURSIVE reach(id) AS ( SELECT CAST(%s AS BIGINT) UNION SELECT d.{far} FROM {links}) "
    return cte + (select if select is not None else f"SELECT d.{near}, d.{far} FROM {links}")


def blocks_edges_reachable_from(*, story_id: int) -> list[tuple[int, int]]:
    """Every `blocks` edge (story_id, depends_on_id) reachable from `story_id` by
    following what it depends on, in one recursive query (the graph walk's own SQL, so
    the cycle check gets its index-friendly form on PostgreSQL too)."""
    sql = reach_sql(near="story_id", far="depends_on_id", vendor=connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [story_id, BLOCKS, BLOCKS])
        return [(int(a), int(b)) for a, b in cursor.fetchall()]


def blocks_path(*, start_id: int, goal_id: int) -> list[int] | None:
    """The shortest chain start → … → goal along `blocks` dependencies, or None."""
    if start_id == goal_id:
        return [start_id]
    adjacency: dict[int, list[int]] = {}
    for source, target in blocks_edges_reachable_from(story_id=start_id):
        adjacency.setdefault(source, []).append(target)
    parents: dict[int, int | None] = {start_id: None}
    queue = deque([start_id])
    while queue:
        node = queue.popleft()
        for nxt in adjacency.get(node, ()):
            if nxt in parents:
                continue
            parents[nxt] = node
            if nxt == goal_id:
                path = [nxt]
                while (parent := parents[path[-1]]) is not None:
                    path.append(parent)
                return list(reversed(path))
            queue.append(nxt)
    return None


def blocks_targets_of(*, story_ids: list[int]) -> dict[int, list[tuple[int, Project, str, str]]]:
    """Each story's `blocks` targets as (id, project, key, status category), for the
    blocked guard (stories.readiness); hidden targets included, the caller labels them."""
    out: dict[int, list[tuple[int, Project, str, str]]] = {}
    for start in range(0, len(story_ids), 900):
        links = StoryDependency.objects.filter(story_id__in=story_ids[start : start + 900], type=BLOCKS)
        for link in links.select_related("depends_on__project", "depends_on__status").order_by("depends_on_id"):
            target = link.depends_on
            out.setdefault(link.story_id, []).append((target.pk, target.project, target.key, target.status.category))
    return out


def story_guard_rows(*, ids: list[int]) -> dict[int, tuple[Project, str, str]]:
    """id → (project, key, status category) of the stories `ids` (any number)."""
    out: dict[int, tuple[Project, str, str]] = {}
    for start in range(0, len(ids), 900):
        for story in Story.objects.filter(pk__in=ids[start : start + 900]).select_related("project", "status"):
            out[story.pk] = (story.project, story.key, story.status.category)
    return out


_ID_CHUNK = 5000  # ids per IN (...) list, well under SQLite's bound-parameter limit


def _chunked(ids: list[int]):
    for start in range(0, len(ids), _ID_CHUNK):
        yield ids[start : start + _ID_CHUNK]


def _projects_of(ids: list[int]) -> dict[int, int]:
    project_of: dict[int, int] = {}
    for chunk in _chunked(ids):
        project_of.update(Story.objects.filter(pk__in=chunk).values_list("pk", "project_id"))
    return project_of


def _blocks_adjacency(sources: list[int], within: set[int], *, forward: bool) -> dict[int, list[int]]:
    """`blocks` edges leaving `sources` (towards what they wait for when `forward`, else
    towards what waits for them) that end inside `within`."""
    near, far = ("story_id", "depends_on_id") if forward else ("depends_on_id", "story_id")
    adjacency: dict[int, list[int]] = {}
    for chunk in _chunked(sources):
        for a, b in StoryDependency.objects.filter(**{f"{near}__in": chunk}, type=BLOCKS).values_list(near, far):
            if b in within:
                adjacency.setdefault(a, []).append(b)
    return adjacency


def _shortest_depths(start_id: int, adjacency: dict[int, list[int]], passable, limit: int) -> dict[int, int]:
    """Breadth-first depths from `start_id`, entering but never leaving a node that is not
    `passable`, up to `limit` hops."""
    depth_of = {start_id: 0}
    queue = deque([start_id])
    while queue:
        node = queue.popleft()
        if depth_of[node] >= limit:
            continue
        for nxt in sorted(adjacency.get(node, ())):
            if nxt not in depth_of:
                depth_of[nxt] = depth_of[node] + 1
                if passable(nxt):
                    queue.append(nxt)
    return depth_of


def visible_walk(
    *, start_id: int, found: list[tuple[int, int]], reader, forward: bool, visibility: Visibility | None = None
) -> list[tuple[int | None, int]]:
    """A graph walk's (story id, depth) result as `reader` may see it.

    A hidden story is reported as (None, depth), the placeholder, and the walk does not
    pass through it: what lies beyond a hidden story, and how far, stays hidden, and the
    depths of visible stories count visible hops only. When every story found is
    visible (the common case) the result is returned as it is, with no extra query.
    `forward` is True for blockers (story → depends_on), False for dependents."""
    if not found:
        return []
    seen = visibility if visibility is not None else reader_visibility(reader)
    ids = [i for i, _ in found]
    project_of = _projects_of(ids)

    def visible(story_id: int) -> bool:
        return story_id == start_id or seen.sees(project_of.get(story_id))

    if all(visible(i) for i in ids):
        return list(found)
    nodes = {start_id, *ids}
    adjacency = _blocks_adjacency([n for n in nodes if visible(n)], nodes, forward=forward)
    depth_of = _shortest_depths(start_id, adjacency, visible, max(d for _, d in found))
    # Nearest first; at one depth the visible stories by id, then the placeholders.
    order = sorted(depth_of.items(), key=lambda item: (item[1], not visible(item[0]), item[0]))
    return [(node if visible(node) else None, depth) for node, depth in order if node != start_id]


def story_blocked_list(*, project: Project, reader, limit: int = 100) -> list[tuple[int, list[str]]]:
    """Open stories of `project` (not completed or cancelled) that wait on an open
    `blocks` dependency (stories.readiness), highest priority first, then key: each id
    with its open blockers as `reader` may name them ("KEY", "slug:KEY", HIDDEN_REF; a
    hidden blocker counts, as everywhere)."""
    waiting = StoryDependency.objects.filter(open_blocker_q()).values("story_id")
    ids = list(
        Story.objects.filter(project=project, pk__in=waiting)
        .exclude(status__category__in=CLOSED_CATEGORIES)
        .order_by("-priority", "key", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    links = (
        StoryDependency.objects.filter(open_blocker_q(), story_id__in=ids)
        .order_by("story_id", "id")
        .values_list("story_id", "depends_on_id")
    )
    pairs = list(links)
    refs = story_refs(ids={target for _, target in pairs}, reader=reader, relative_to=project)
    blockers: dict[int, list[str]] = {pk: [] for pk in ids}
    for story_id, target in pairs:
        blockers[story_id].append(refs.get(target, HIDDEN_REF))
    return [(pk, collapse_hidden(sorted(blockers[pk], key=lambda r: (r == HIDDEN_REF, r)))) for pk in ids]


def story_block_links(*, story: Story, reader) -> dict[str, list[dict]]:
    """The story's direct `blocks` links as `reader` may see them, in one query:
    "blocked_by" (what it waits for) and "blocks" (what waits for it). A visible side is
    {"id", "ref" ("KEY" in the story's project, "slug:KEY" elsewhere), "title",
    "status_name", "category", "open"}; a side in a project the reader cannot see is the
    placeholder {"hidden": True, "open": …}, one per link as in the API's `dependencies`
    (no key, title, status or project). `open` is the readiness rule's open blocker (for
    "blocks" rows: whether this story still holds that one up); hidden open blockers
    count, as everywhere. Visible rows first (by ref), then the placeholders."""
    seen = reader_visibility(reader)
    links = (
        StoryDependency.objects.filter(Q(story_id=story.pk) | Q(depends_on_id=story.pk), type=BLOCKS)
        .select_related("story__project", "story__status", "depends_on__project", "depends_on__status")
        .order_by("id")
    )
    out: dict[str, list[dict]] = {"blocked_by": [], "blocks": []}
    for link in links:
        waits_for_other = link.story_id == story.pk
        other = link.depends_on if waits_for_other else link.story
        blocker = link.depends_on
        is_open = is_open_blocker(link.type, blocker.status.category)
        side = out["blocked_by" if waits_for_other else "blocks"]
        if not seen.sees(other.project_id):
            side.append({"hidden": True, "open": is_open})
            continue
        side.append(
            {
                "hidden": False,
                "id": other.pk,
                "ref": story_ref(
                    key=other.key, project_id=other.project_id, slug=other.project.slug, relative_to=story.project
                ),
                "title": other.title,
                "status_name": other.status.name,
                "category": other.status.category,
                "open": is_open,
            }
        )
    for side in out.values():
        side.sort(key=lambda row: (row["hidden"], row.get("ref", "")))
    return out


# --------------------------------------------------------------------------- import reports


def import_runs_of(*, project: Project) -> QuerySet:
    """The import runs of `project` (a project the caller may see: the API checks that
    first, with get_project_for). Newest first."""
    return ImportRun.objects.filter(project=project).order_by("-started_at", "-id")


def import_files_of(*, run) -> QuerySet:
    """The files of import run `run`, in the report's order, with the story each became
    and the file that caused a failure (one query)."""
    return ImportFile.objects.filter(run=run).select_related("story", "caused_by").order_by("id")


def import_conflicts_of(*, project: Project) -> QuerySet:
    """The parked import conflicts of `project`, newest first, with the stories they name
    and who resolved them (one query)."""
    return (
        ImportConflict.objects.filter(project=project)
        .select_related("project", "story", "resolved_story", "resolved_by")
        .order_by("-created_at", "-id")
    )


def import_conflict_ids_for_files(*, file_ids: list[int]) -> dict[int, int]:
    """ImportFile id → the id of the conflict parked for it (one query)."""
    if not file_ids:
        return {}
    return dict(ImportConflict.objects.filter(file_id__in=file_ids).order_by("id").values_list("file_id", "id"))
