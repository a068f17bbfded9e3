"""Hand-built story payloads: `.values()` plus two batched queries per page (the
dependencies and their blockers' status categories), so the query count is constant
whatever the page size. The benchmark imports `story_list_payload`."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import orjson
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from stories.models import Priority, Story, StoryDependency

PRIORITY_WORDS = dict(Priority.choices)
FIELDS = (
    "id",
    "key",
    "title",
    "project__slug",
    "backlog__slug",
    "epic__slug",
    "status__slug",
    "status__category",
    "priority",
    "estimate",
    "points_min",
    "points_max",
    "branch_name",
    "file_path",
    "owner",
    "author",
    "labels",
    "created",
    "last_updated",
    "body",
    "metadata",
    "version",
    "created_at",
    "updated_at",
)


JSON_FIELDS = ("labels", "metadata")
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
    return orjson.loads(text)


def story_values(queryset: QuerySet[Story]) -> QuerySet:
    """`queryset` as the rows story_list_payload() takes."""
    return queryset.values(*_PLAIN_FIELDS, **_JSON_AS_TEXT)


def story_list_payload(rows: list[dict]) -> list[dict]:
    """Turn story_values() rows into API dicts with dependency keys and flags."""
    ids = [r["id"] for r in rows]
    deps: dict[int, list[dict]] = defaultdict(list)
    if ids:
        for dep in StoryDependency.objects.filter(story_id__in=ids).values(
            "story_id",
            "type",
            "depends_on__key",
            "depends_on__project_id",
            "depends_on__project__slug",
            "depends_on__status__category",
            "story__project_id",
        ):
            deps[dep["story_id"]].append(dep)
    out = []
    for r in rows:
        dependencies = []
        open_blockers = []
        for d in deps.get(r["id"], ()):
            ref = (
                d["depends_on__key"]
                if d["depends_on__project_id"] == d["story__project_id"]
                else f"{d['depends_on__project__slug']}:{d['depends_on__key']}"
            )
            dependencies.append({"depends_on": ref, "type": d["type"]})
            if d["type"] == StoryDependency.Type.BLOCKS and d["depends_on__status__category"] != "completed":
                open_blockers.append(ref)
        category = r["status__category"]
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
                "metadata": _json(r["metadata_json"]),
                "version": r["version"],
                "dependencies": dependencies,
                "blocked": bool(open_blockers),
                "ready": category == "unstarted" and not open_blockers,
                "created_at": r["created_at"],
                "updated_at": r["updated_at"],
            }
        )
    return out


def story_payload(story: Story) -> dict:
    rows = list(story_values(Story.objects.filter(pk=story.pk)))
    return story_list_payload(rows)[0]
