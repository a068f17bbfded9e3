"""Backfill audit_log.project_id (0003) for the rows written before it, where the
project can be told for sure:

1. the row's entity still exists: its project (a story dependency: its dependent story's
   project, linking the other story's; a project dependency: from_project, linking
   to_project); a project row: the project id is its entity id;
2. else the slug the row recorded (details "project", the "story" / "from" reference of
   a link) at the row's time: the one project that held that slug then, from the
   project.created / project.deleted rows and the live projects (slugs never change).

A row that matches no project, or more than one, keeps NULL: only superusers and
auditors see it, which is the safe side (the old rule let a new project with the same
slug read it). The append-only guard (0002) is lifted for this one UPDATE, inside the
migration's transaction, and put back at once.

Backwards: nothing to undo (0003's reverse drops the column; a linked_project_id left in
details is harmless).
"""

import importlib
from collections import defaultdict

from django.db import migrations

_0002 = importlib.import_module("audit.migrations.0002_audit_log_append_only")

CHUNK = 2000
# entity_type → model (in stories) whose project_id scopes the row
PROJECT_SCOPED = {
    "story": "Story",
    "status": "Status",
    "backlog": "Backlog",
    "epic": "Epic",
    "projectmember": "ProjectMember",
}


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _slug_of(ref):
    """The project slug of "slug:KEY" (or of a plain slug)."""
    return ref.split(":", 1)[0] if isinstance(ref, str) and ref else None


class _SlugTimeline:
    """slug + moment → the one project that held the slug then (or None)."""

    def __init__(self, AuditLog, Project):
        created, deleted = {}, {}  # project id → (moment, slug)
        for pk, ts, details in AuditLog.objects.filter(entity_type="project", action="project.created").values_list(
            "entity_id", "timestamp", "details"
        ):
            slug = ((details or {}).get("changes", {}).get("slug") or {}).get("new")
            if _int(pk) is not None and slug:
                created[_int(pk)] = (ts, slug)
        for pk, ts, details in AuditLog.objects.filter(entity_type="project", action="project.deleted").values_list(
            "entity_id", "timestamp", "details"
        ):
            slug = (details or {}).get("slug")
            if _int(pk) is not None and slug:
                deleted[_int(pk)] = (ts, slug)
        live = {pk: (at, slug) for pk, slug, at in Project.objects.values_list("pk", "slug", "created_at")}
        self.spans = defaultdict(list)
        for pk in set(created) | set(deleted) | set(live):
            slug = (live.get(pk) or created.get(pk) or deleted.get(pk))[1]
            starts = [known[pk][0] for known in (created, live) if pk in known]
            end = deleted[pk][0] if pk in deleted and pk not in live else None
            self.spans[slug].append((min(starts) if starts else None, end, pk))

    def at(self, slug, moment):
        found = [
            pk
            for start, end, pk in self.spans.get(slug, ())
            if (start is None or start <= moment) and (end is None or moment <= end)
        ]
        return found[0] if len(found) == 1 else None


def _live_scopes(apps, rows):
    """(entity_type, entity id) → (project id, linked project id) for the entities of
    `rows` that still exist."""
    ids = defaultdict(set)
    for row in rows:
        pk = _int(row.entity_id)
        if pk is not None:
            ids[row.entity_type].add(pk)
    found = {}
    for entity_type, model_name in PROJECT_SCOPED.items():
        if ids.get(entity_type):
            model = apps.get_model("stories", model_name)
            for pk, project_id in model.objects.filter(pk__in=ids[entity_type]).values_list("pk", "project_id"):
                found[(entity_type, pk)] = (project_id, None)
    links = (
        ("story_dependency", "StoryDependency", ("story__project_id", "depends_on__project_id")),
        ("project_dependency", "ProjectDependency", ("from_project_id", "to_project_id")),
    )
    for entity_type, model_name, fields in links:
        if ids.get(entity_type):
            model = apps.get_model("stories", model_name)
            for pk, project_id, linked in model.objects.filter(pk__in=ids[entity_type]).values_list("pk", *fields):
                found[(entity_type, pk)] = (project_id, linked)
    return found


def _scope(row, live, timeline):
    details = row.details or {}
    if row.entity_type == "project":
        return _int(row.entity_id), None
    known = live.get((row.entity_type, _int(row.entity_id)))
    if known:
        return known
    if row.entity_type == "story_dependency":
        sides = (_slug_of(details.get("story")), _slug_of(details.get("depends_on")))
    elif row.entity_type == "project_dependency":
        sides = (details.get("from"), details.get("to"))
    else:
        sides = (details.get("project"), None)
    project_id, linked = (timeline.at(slug, row.timestamp) if isinstance(slug, str) else None for slug in sides)
    return project_id, linked


def backfill(apps, schema_editor):
    AuditLog = apps.get_model("audit", "AuditLog")
    Project = apps.get_model("stories", "Project")
    pending = AuditLog.objects.filter(project_id__isnull=True).order_by("id")
    if not pending.exists():
        return
    timeline = _SlugTimeline(AuditLog, Project)
    _0002.reverse(apps, schema_editor)  # lift the append-only guard for this transaction
    last_id = 0
    while True:
        rows = list(pending.filter(id__gt=last_id)[:CHUNK])
        if not rows:
            break
        last_id = rows[-1].id
        live = _live_scopes(apps, rows)
        plain = defaultdict(list)
        for row in rows:
            project_id, linked = _scope(row, live, timeline)
            if project_id is None and linked is None:
                continue
            if linked is not None and linked != project_id:
                details = {**(row.details or {}), "linked_project_id": linked}
                AuditLog.objects.filter(pk=row.pk).update(project_id=project_id, details=details)
            elif project_id is not None:
                plain[project_id].append(row.pk)
        for project_id, pks in plain.items():
            AuditLog.objects.filter(pk__in=pks).update(project_id=project_id)
    _0002.forward(apps, schema_editor)  # and put it back


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_auditlog_project_id"),
        ("stories", "0004_status_change_outside_audit"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
