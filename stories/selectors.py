"""Reads with non-trivial queries: visibility, lookups by key, graph walks."""

from __future__ import annotations

from collections import deque

from django.db import connection
from django.db.models import QuerySet

from .models import Project, ProjectMember, Story, StoryDependency

BLOCKS = StoryDependency.Type.BLOCKS.value


def project_list_for_user(*, user) -> QuerySet[Project]:
    """Projects `user` may see: all for superusers, else those they are a member of."""
    qs = Project.objects.all()
    if user is None or not getattr(user, "is_authenticated", False):
        return qs.none()
    if user.is_superuser:
        return qs
    return qs.filter(pk__in=ProjectMember.objects.filter(user_id=user.pk).values("project_id"))


def story_get_by_ref(*, ref: str, default_project: Project | None) -> Story | None:
    """Resolve "KEY" (in `default_project`) or "project-slug:KEY"."""
    if ":" in ref:
        slug, key = ref.split(":", 1)
        return Story.objects.select_related("project").filter(project__slug=slug, key=key).first()
    if default_project is None:
        return None
    return Story.objects.select_related("project").filter(project=default_project, key=ref).first()


def blocks_edges_reachable_from(*, story_id: int) -> list[tuple[int, int]]:
    """Every `blocks` edge (story_id, depends_on_id) reachable from `story_id` by
    following what it depends on, in one recursive query."""
    sql = """
        WITH RECURSIVE reach(id) AS (
            SELECT CAST(%s AS BIGINT)
            UNION
            SELECT d.depends_on_id FROM story_dependencies d JOIN reach r ON d.story_id = r.id
            WHERE d.type = %s
        )
        SELECT d.story_id, d.depends_on_id FROM story_dependencies d JOIN reach r ON d.story_id = r.id
        WHERE d.type = %s
    """
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
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return list(reversed(path))
            queue.append(nxt)
    return None


def story_labels_for(*, ids: list[int], relative_to: Project | None) -> dict[int, str]:
    """Display keys for story ids: "KEY" inside `relative_to`, "slug:KEY" elsewhere."""
    rows = Story.objects.filter(pk__in=ids).values_list("pk", "key", "project_id", "project__slug")
    return {
        pk: key if relative_to is not None and project_id == relative_to.pk else f"{slug}:{key}"
        for pk, key, project_id, slug in rows
    }


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
