"""Reading audit rows: the one place that decides which rows a user may read (the API's
/api/v1/audit/ and the admin's audit pages both ask here).

A row belongs to a project by its immutable id (audit_log.project_id), never by the
slug it recorded: after a project is deleted and a new one takes its slug, the new
project's readers do not see the old one's rows. A row about a link between two
projects (a story dependency, a project dependency) is stored in the project of its
dependent side and names the other side in details["linked_project_id"]; the readers of
either project see it, and a side the reader cannot see is shown as "(hidden)" (the
visibility rule of every other surface: no key, slug or title of a hidden project).
Rows about no project (users, API keys, sessions, purges) and rows of deleted projects
are read by superusers and auditors (active staff with audit.view_auditlog) only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from django.db.models import Q, QuerySet

from stories.rules import HIDDEN_REF

from .events import LINK_ENTITY_TYPES, EntityType
from .models import AuditLog

HIDDEN = HIDDEN_REF  # stories.rules names what the reader cannot see

# Link rows: which details keys name the project_id side and the linked side.
_LINK_SIDES = {
    EntityType.STORY_DEPENDENCY: ("story", "depends_on"),
    EntityType.PROJECT_DEPENDENCY: ("from", "to"),
}


def audit_sees_all(user) -> bool:
    """Superusers and auditors (active staff given audit.view_auditlog) read every row."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.is_superuser or (user.is_staff and user.has_perm("audit.view_auditlog"))


def audit_visible_project_ids(user) -> set[int] | None:
    """Ids of the projects whose audit rows `user` reads; None: every row (see
    audit_sees_all). Project readers are the project's members, any role."""
    if audit_sees_all(user):
        return None
    from stories import selectors as story_selectors

    return set(story_selectors.project_list_for_user(user=user).values_list("pk", flat=True))


def _in_projects(ids) -> Q:
    return Q(project_id__in=ids) | Q(entity_type__in=LINK_ENTITY_TYPES, details__linked_project_id__in=ids)


def audit_list_for(*, user, project=None) -> QuerySet[AuditLog]:
    """The audit rows `user` may read; with `project`, only that project's (its current
    id: the rows of an older project with the same slug are not among them)."""
    rows = AuditLog.objects.all()
    visible = audit_visible_project_ids(user)
    if project is not None:
        if visible is not None and project.pk not in visible:
            return rows.none()
        return rows.filter(_in_projects([project.pk]))
    if visible is None:
        return rows
    return rows.filter(_in_projects(sorted(visible)))


def audit_details_for(
    *, user, row: AuditLog | Mapping[str, Any], visible: set[int] | None | bool = False
) -> dict[str, Any]:
    """The details of `row` as `user` may read them: on a link row, the reference to a
    side in a project the user cannot see becomes "(hidden)". Pass `visible` (from
    audit_visible_project_ids) when redacting many rows, to read the memberships once."""
    get: Callable[[str], Any] = row.get if isinstance(row, Mapping) else lambda name: getattr(row, name)
    details = dict(get("details") or {})
    sides = _LINK_SIDES.get(get("entity_type"))
    refs = _other_project_refs(details) if get("entity_type") == EntityType.STORY else set()
    if sides is None and not refs:
        return details
    if isinstance(visible, bool):
        visible = audit_visible_project_ids(user)
    if visible is None:
        return details
    if refs:
        return _redacted_refs(details, refs, visible)
    assert sides is not None
    own, linked = sides
    linked_id = details.get("linked_project_id", get("project_id"))
    if get("project_id") not in visible and own in details:
        details[own] = HIDDEN
    if linked_id not in visible and linked in details:
        details[linked] = HIDDEN
    if linked_id not in visible:
        details.pop("linked_project_id", None)
    return details


def _other_project_refs(details: Mapping[str, Any]) -> set[str]:
    """The "slug:KEY" references of a story row's recorded dependency lists (a bulk write
    records a new story's dependencies in its story.created row)."""
    change = (details.get("changes") or {}).get("dependencies") if isinstance(details.get("changes"), dict) else None
    if not isinstance(change, dict):
        return set()
    return {
        ref
        for side in ("old", "new")
        if isinstance(change.get(side), list)
        for ref in change[side]
        if isinstance(ref, str) and ":" in ref
    }


def _redacted_refs(details: dict[str, Any], refs: set[str], visible: set[int]) -> dict[str, Any]:
    """`details` with every reference to a story of a project the reader cannot see as
    "(hidden)" (a project is named by the slug it had; a slug no visible project holds
    is hidden). One query, only for rows that name other projects."""
    from stories.models import Project

    slugs = {ref.split(":", 1)[0] for ref in refs}
    seen = set(Project.objects.filter(pk__in=visible, slug__in=slugs).values_list("slug", flat=True))
    changes = dict(details["changes"])
    change = dict(changes["dependencies"])
    for side in ("old", "new"):
        if isinstance(change.get(side), list):
            change[side] = [
                HIDDEN if isinstance(ref, str) and ":" in ref and ref.split(":", 1)[0] not in seen else ref
                for ref in change[side]
            ]
    changes["dependencies"] = change
    return {**details, "changes": changes}


def audit_rows_redacted(*, user, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`rows` (dicts with entity_type, project_id, details) with each one's details as
    `user` may read them (audit_details_for); the memberships are read once."""
    visible = audit_visible_project_ids(user)
    return [{**row, "details": audit_details_for(user=user, row=row, visible=visible)} for row in rows]


def backlog_moves(*, project_id: int, project_slug: str, backlog_slug: str) -> list[tuple[int, Any, bool]]:
    """(story id, when, True: into the backlog / False: out of it) of every recorded move
    of a story of the project into or out of the backlog `backlog_slug`, in time order.
    Story updates, moves and bulk writes record `changes.backlog` as the slug or as
    "project/slug". For the sprint reports of a project the caller may see."""
    names = [backlog_slug, f"{project_slug}/{backlog_slug}"]
    rows = AuditLog.objects.filter(project_id=project_id, entity_type=EntityType.STORY).filter(
        Q(details__changes__backlog__new__in=names) | Q(details__changes__backlog__old__in=names)
    )
    moves: list[tuple[int, Any, bool]] = []
    for entity_id, timestamp, changes in rows.order_by("timestamp", "id").values_list(
        "entity_id", "timestamp", "details__changes__backlog"
    ):
        if not str(entity_id).isdigit() or not isinstance(changes, dict):
            continue
        moves.append((int(entity_id), timestamp, changes.get("new") in names))
    return moves


def audit_project_q(project_id: int) -> Q:
    """The rows of one project (its own, and the link rows that name it as the other side)."""
    return _in_projects([project_id])


# entity type → (app label, model) of what entity_id names, for labels in lists.
_LABELLED = {
    EntityType.PROJECT: ("stories", "Project"),
    EntityType.STORY: ("stories", "Story"),
    EntityType.EPIC: ("stories", "Epic"),
    EntityType.BACKLOG: ("stories", "Backlog"),
    EntityType.STATUS: ("stories", "Status"),
}


def _label_rows(entity_type: str, ids: set[int]) -> dict[int, tuple[int | None, str]]:
    """pk → (project id, label) of entities of one type (one query)."""
    from stories.models import Backlog, Epic, Project, Status, Story

    if entity_type == EntityType.PROJECT:
        return {
            pk: (pk, f"{slug} — {name}")
            for pk, slug, name in Project.objects.filter(pk__in=ids).values_list("pk", "slug", "name")
        }
    if entity_type == EntityType.STORY:
        rows = Story.objects.filter(pk__in=ids).values_list("pk", "project_id", "key", "title")
        return {pk: (project, f"{key} — {title}") for pk, project, key, title in rows}
    model: Any = {EntityType.EPIC: Epic, EntityType.BACKLOG: Backlog, EntityType.STATUS: Status}[
        EntityType(entity_type)
    ]
    return {
        pk: (project, name)
        for pk, project, name in model.objects.filter(pk__in=ids).values_list("pk", "project_id", "name")
    }


def _deleted_label(row: AuditLog) -> str:
    """What a row about an entity that no longer exists still says about it."""
    details = row.details or {}
    key, title = details.get("key"), details.get("title")
    if key:
        return f"{key} — {title} (deleted)" if title else f"{key} (deleted)"
    return f"{row.entity_type} {row.entity_id} (deleted)" if row.entity_id else row.entity_type


def _entity_label(row: AuditLog, entry, sees, details: Callable[[], dict[str, Any]]) -> tuple[str, bool]:
    if row.entity_type in LINK_ENTITY_TYPES:
        own, linked = _LINK_SIDES[EntityType(row.entity_type)]
        shown = details()
        return f"{shown.get(own, '?')} → {shown.get(linked, '?')}", True
    if entry is not None:
        return (entry[1], True) if sees(entry[0]) else (HIDDEN, False)
    if row.entity_type in _LABELLED:
        return _deleted_label(row), False
    return f"{row.entity_type} {row.entity_id}".strip(), True


def audit_labels(*, user, rows: Sequence[AuditLog]) -> dict[int, dict[str, Any]]:
    """For each row (by id) what a person reads about it, as `user` may see it:
    {"entity": "PP-041 — title" (a story; "slug — name" a project, a name for epics,
    backlogs and statuses, "A → B" for a link), "project": "slug — name", "exists":
    whether the entity is still there (so it can be linked)}. A side in a project the
    user cannot see is "(hidden)". A fixed number of queries, whatever the rows."""
    from stories.models import Project

    visible = audit_visible_project_ids(user)
    wanted: dict[str, set[int]] = {}
    for row in rows:
        if row.entity_type in _LABELLED and row.entity_id.isdigit():
            wanted.setdefault(row.entity_type, set()).add(int(row.entity_id))
    found = {entity_type: _label_rows(entity_type, ids) for entity_type, ids in wanted.items()}
    project_ids = {row.project_id for row in rows if row.project_id is not None}
    projects = {
        pk: f"{slug} — {name}"
        for pk, slug, name in Project.objects.filter(pk__in=project_ids).values_list("pk", "slug", "name")
    }

    def sees(project_id: int | None) -> bool:
        return visible is None or project_id in visible

    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        project = "" if row.project_id is None else projects.get(row.project_id, f"project {row.project_id} (deleted)")
        if row.project_id is not None and not sees(row.project_id):
            project = HIDDEN
        entry = found.get(row.entity_type, {}).get(int(row.entity_id)) if row.entity_id.isdigit() else None
        label, exists = _entity_label(row, entry, sees, partial(audit_details_for, user=user, row=row, visible=visible))
        out[row.pk] = {"entity": label, "project": project, "exists": exists}
    return out
