"""Hand-built story payloads: `.values()` for the page plus one batched query for its
dependencies (with their targets' keys and status categories), so the query count is
constant whatever the page size. The benchmark imports `story_list_payload`."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import orjson
from django.db import connection
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from stories import fields, readiness
from stories.models import Project, Status, Story, StoryDependency
from stories.selectors import visible_project_sql
from stories.storyfiles import without_kept_text
from storyhub.prepared import Prepared

PRIORITY_WORDS = fields.PRIORITY_WORDS
FIELDS = fields.VALUES


JSON_FIELDS = fields.JSON_NAMES
# JSON columns are read as text and decoded with orjson (several times faster than the
# standard library decoder Django's JSONField uses, which shows on a 100-row page).
_JSON_AS_TEXT = {f"{name}_json": Cast(name, TextField()) for name in JSON_FIELDS}
_PLAIN_FIELDS = tuple(f for f in FIELDS if f not in JSON_FIELDS)
# orjson turns integers beyond 64 bits into floats; such documents take the slow path.
_LONG_NUMBER = re.compile(r"\d{19}")


def _json(text: str | None):
    if text is None:
        return None
    if _LONG_NUMBER.search(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # stored before the JSON value limits (e.g. a lone surrogate)
        return json.loads(text)


def story_values(queryset: QuerySet[Story]) -> QuerySet:
    """`queryset` as the rows story_list_payload() takes."""
    return queryset.values(*_PLAIN_FIELDS, **_JSON_AS_TEXT)


# The API's busiest reads, compiled once (storyhub.prepared): a project's unfiltered page in
# id order (either direction, from the start or after a cursor) and one story by key.
_PROJECT, _AFTER, _KEY = -7_000_000_001, -7_000_000_002, "\x00prepared-story-key"
_PROJECT_PAGE = {
    (False, False): Prepared(lambda p: story_values(Story.objects.filter(project_id=p).order_by("id")), _PROJECT),
    (True, False): Prepared(lambda p: story_values(Story.objects.filter(project_id=p).order_by("-id")), _PROJECT),
    (False, True): Prepared(
        lambda p, a: story_values(Story.objects.filter(project_id=p, id__gt=a).order_by("id")), _PROJECT, _AFTER
    ),
    (True, True): Prepared(
        lambda p, a: story_values(Story.objects.filter(project_id=p, id__lt=a).order_by("-id")), _PROJECT, _AFTER
    ),
}
_STORY_BY_KEY = Prepared(lambda p, k: story_values(Story.objects.filter(project_id=p, key=k)), _PROJECT, _KEY)


def project_page_rows(project_id: int, *, descending: bool, after_id: int | None, limit: int) -> list[dict]:
    """story_values() rows of a project's stories in id order, after the cursor's id:
    `story_values(Story.objects.filter(project_id=..., id__gt=...).order_by("id"))[:limit]`
    without compiling it again."""
    if after_id is None:
        return _PROJECT_PAGE[descending, False].rows(project_id, limit=limit)
    return _PROJECT_PAGE[descending, True].rows(project_id, after_id, limit=limit)


def story_rows_by_key(project_id: int, key: str) -> list[dict]:
    """story_values() rows of the story `key` of a project (none or one)."""
    return _STORY_BY_KEY.rows(project_id, key)


# The page's dependencies with what the payload needs of their targets, in one query. Its
# shape never changes, so it is written once here rather than compiled by the ORM on
# every request (that compilation was a measurable share of a 100-row page).
# The last column says whether the reader may see the target's project
# (selectors.visible_project_sql); a hidden target is rendered as a placeholder, so its
# key and slug are never read out.
_DEPENDENCIES_SQL = (
    "SELECT d.story_id, d.type, t.key, t.project_id = s.project_id, tp.slug, ts.category, ({visible})"
    f" FROM {StoryDependency._meta.db_table} d"
    f" JOIN {Story._meta.db_table} s ON s.id = d.story_id"
    f" JOIN {Story._meta.db_table} t ON t.id = d.depends_on_id"
    f" JOIN {Project._meta.db_table} tp ON tp.id = t.project_id"
    f" JOIN {Status._meta.db_table} ts ON ts.id = t.status_id"
    " WHERE d.story_id IN ({ids})"
)


# Ids per statement: one statement for any page; long graph walks take a few, well under
# SQLite's limit of 32,766 bound parameters.
ID_CHUNK = 5000


def _chunks(ids: list[int]):
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start : start + ID_CHUNK]


def _dependencies_of(story_ids: list[int], reader) -> dict[int, list[tuple]]:
    """story id -> [(type, target key, same project?, target project slug, target status
    category, visible to reader?)]."""
    deps: dict[int, list[tuple]] = defaultdict(list)
    visible, params = visible_project_sql(reader, "t.project_id")
    with connection.cursor() as cursor:
        for chunk in _chunks(story_ids):
            sql = _DEPENDENCIES_SQL.format(visible=visible, ids=", ".join(["%s"] * len(chunk)))
            cursor.execute(sql, [*params, *chunk])
            for story_id, *rest in cursor.fetchall():
                deps[story_id].append(rest)
    return deps


def story_rows_by_id(ids: list[int]) -> dict[int, dict]:
    """story_values() rows of the stories `ids`, by id (any number of ids)."""
    rows: dict[int, dict] = {}
    for chunk in _chunks(ids):
        rows.update((r["id"], r) for r in story_values(Story.objects.filter(pk__in=chunk)))
    return rows


def dependency_item(*, ref: str | None, type: str) -> dict:
    """One entry of a story's `dependencies`: a hidden target (ref None) is the
    placeholder {"depends_on": null, "type": ..., "hidden": true}."""
    return {"depends_on": ref, "type": type, "hidden": ref is None}


def story_list_payload(rows: list[dict], *, reader) -> list[dict]:
    """Turn story_values() rows into API dicts with dependency keys and flags, as
    `reader` may see them (`reader=None`: the system). A hidden open `blocks` dependency
    still makes the story blocked (README "Visibility")."""
    deps = _dependencies_of([r["id"] for r in rows], reader)
    out = []
    for r in rows:
        dependencies = []
        open_blockers = 0
        for dep_type, key, same_project, slug, category, visible in deps.get(r["id"], ()):
            ref = (key if same_project else f"{slug}:{key}") if visible else None
            dependencies.append(dependency_item(ref=ref, type=dep_type))
            if readiness.is_open_blocker(dep_type, category):
                open_blockers += 1
        category = r["status__category"]
        metadata = _json(r["metadata_json"])
        if any(not visible for *_, visible in deps.get(r["id"], ())):
            metadata = without_kept_text(metadata)  # the file's text names the hidden story
        out.append(
            {
                "key": r["key"],
                "title": r["title"],
                "project": r["project__slug"],
                "backlog": r["backlog__slug"],
                "epic": r["epic__slug"],
                "status": r["status__slug"],
                "status_category": category,
                "priority": PRIORITY_WORDS.get(r["priority"]),
                "estimate": r["estimate"],
                "points_min": r["points_min"],
                "points_max": r["points_max"],
                "branch_name": r["branch_name"],
                "file_path": r["file_path"],
                "owner": r["owner"],
                "author": r["author"],
                "labels": _json(r["labels_json"]),
                "created": r["created"],
                "last_updated": r["last_updated"],
                "body": r["body"],
                "metadata": metadata,
                "version": r["version"],
                "rank": r["rank"],
                "source_repo": r["source_repo"],
                "source_path": r["source_path"],
                "source_hash": r["source_hash"],
                "dependencies": dependencies,
                "blocked": readiness.is_blocked(open_blockers),
                "ready": readiness.is_ready(category, open_blockers),
                "created_at": r["created_at"],
                "updated_at": r["updated_at"],
            }
        )
    return out


def story_payload(story: Story, *, reader) -> dict:
    rows = list(story_values(Story.objects.filter(pk=story.pk)))
    return story_list_payload(rows, reader=reader)[0]
