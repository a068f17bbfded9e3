"""Every write to StoryHub's domain. The API, the admin, the importer and management
commands all call these functions, so they validate, audit and record history alike.

Each service runs in one transaction, checks the actor's project role, validates with
``full_clean()`` plus the domain rules, and writes its audit_log row in that transaction.
Status changes also write exactly one status_history row.

Lock order (PostgreSQL; SQLite's IMMEDIATE transactions run one writer at a time). Every
service, the bulk upsert (stories.bulk) included, takes its locks in this order, so no
two writers can wait for each other:

1. the dependency-graph advisory lock (`lock_blocks_graph()`): every transaction that
   adds or removes a dependency (deleting a story or project removes its links), or
   locks more than one story row (bulk, the admin's story page with its link inlines),
   takes it before any row lock. It serializes link writers, so two of them can neither
   close a cycle between them nor both replace the same list;
2. story rows (`lock_stories()` / one story's row), `SELECT … FOR NO KEY UPDATE`, in
   ascending id order. A story's links change only under its row lock, so links read
   after taking it stay true until the commit. The id of a story never changes, so these
   locks do not conflict with the key-share locks that inserting a link takes on both of
   its stories; only a deletion locks a story `FOR UPDATE`;
3. then the rows the write changes (links, status_history, audit_log).

Nobody asks for the advisory lock while holding a story row lock (a write that may
change links takes it first, even if it turns out to change none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from audit.events import AuditAction, EntityType
from audit.services import audit_record
from storyhub.errors import (
    BlockedError,
    ConflictError,
    DependencyCycleError,
    InvalidTransitionError,
    NotFoundError,
    StaleVersionError,
)

from . import project_settings, readiness, selectors
from .fields import PRIORITY_BY_WORD, WRITABLE
from .models import (
    DEFAULT_STATUS_SLUG,
    DEFAULT_WORKFLOW,
    STORY_RANK_ORDER,
    Backlog,
    BlocksGraphVersion,
    Epic,
    Priority,
    Project,
    ProjectDependency,
    ProjectMember,
    Status,
    StatusHistory,
    Story,
    StoryDependency,
)
from .permissions import has_project_role, require_project_role

# A constant key for pg_advisory_xact_lock: writers of `blocks` edges take turns so two
# concurrent inserts cannot each miss the other's half of a cycle.
_BLOCKS_GRAPH_LOCK = 0x5707_B10C
_GRAPH_VERSION = BlocksGraphVersion._meta.db_table
_BUMP_GRAPH_VERSION_SQL = f"UPDATE {_GRAPH_VERSION} SET counter = counter + 1 WHERE id = 1"
_FIRST_GRAPH_VERSION_SQL = f"INSERT INTO {_GRAPH_VERSION} (id, counter) VALUES (1, 1)"

_ESTIMATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:-\s*(\d+(?:\.\d+)?))?\s*(?:sp|pts?|points?)?\s*$", re.IGNORECASE)


# --------------------------------------------------------------------------- helpers


def parse_estimate(estimate: Any) -> tuple[Decimal | None, Decimal | None]:
    """Story points from an estimate as written: "3sp" → (3, 3), "1-2sp" → (1, 2),
    "5" → (5, 5); anything else → (None, None) (the text is still kept)."""
    if estimate is None:
        return None, None
    match = _ESTIMATE_RE.match(str(estimate))
    if not match:
        return None, None
    try:
        low = Decimal(match.group(1))
        high = Decimal(match.group(2)) if match.group(2) else low
    except InvalidOperation:
        return None, None
    if high < low:
        low, high = high, low
    return low, high


def _value_for_compare(value: Any) -> Any:
    return value.pk if isinstance(value, models.Model) else value


def _assign(instance: models.Model, data: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, tuple[Any, Any]]:
    """Set the allowed fields of `instance` from `data`; return field → (old, new) for
    the values that actually changed. Unknown fields are a validation error."""
    allowed = set(allowed)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError({name: ["This field cannot be changed here."] for name in unknown})
    changes: dict[str, tuple[Any, Any]] = {}
    for name, new in data.items():
        old = getattr(instance, name)
        if _value_for_compare(old) != _value_for_compare(new):
            changes[name] = (old, new)
            setattr(instance, name, new)
    return changes


def _save(instance: models.Model, changed: Iterable[str], *, exclude: list[str] | None = None) -> None:
    instance.full_clean(exclude=exclude)
    attnames = {name: f.attname for f in instance._meta.concrete_fields for name in (f.name, f.attname)}
    fields = [attnames[name] if name != "pk" else name for name in changed]
    if hasattr(instance, "updated_at"):
        instance.updated_at = timezone.now()
        fields.append("updated_at")
    instance.save(update_fields=fields)


def _create(instance: models.Model, *, exclude: list[str] | None = None) -> None:
    instance.full_clean(exclude=exclude)
    instance.save(force_insert=True)


def _resolve_status(project: Project, status: Status | str | None) -> Status:
    if isinstance(status, Status):
        if status.project_id != project.pk:
            raise ValidationError({"status": [f"Status '{status.slug}' belongs to another project."]})
        return status
    slug = status or project.settings.get(project_settings.DEFAULT_STATUS, DEFAULT_STATUS_SLUG)
    found = Status.objects.filter(project=project, slug=slug).first()
    if found is None:
        allowed = list(Status.objects.filter(project=project).values_list("slug", flat=True))
        raise ValidationError(
            {"status": [f"Unknown status '{slug}'; this project's workflow has: {', '.join(allowed)}."]}
        )
    return found


def resolve_priority(priority: Any) -> int:
    """The stored priority for a priority as given: a number of Priority, a word
    ("high"), or empty for the default (medium). ValidationError otherwise."""
    if priority is None or priority == "":
        return Priority.MEDIUM
    if isinstance(priority, int) and not isinstance(priority, bool) and priority in Priority.values:
        return priority
    try:
        return Priority.from_word(priority)
    except ValueError:
        words = ", ".join(PRIORITY_BY_WORD)
        raise ValidationError({"priority": [f"Unknown priority '{priority}'; use one of: {words}."]}) from None


# A model with a `version` field (story, project, backlog, status, epic, member).
_Versioned = TypeVar("_Versioned", bound=models.Model)


def _check_version(obj: Any, expected_version: int | None, what: str | None = None) -> None:
    """StaleVersionError unless `obj` (read under its row lock) still has the version the
    caller saw. One check for every versioned resource (stories, projects, backlogs,
    statuses, epics, members); `what` names it in the message."""
    if expected_version is not None and int(expected_version) != obj.version:
        what = what or f"Story {obj.key}"
        raise StaleVersionError(
            f"{what} was changed by someone else (you have version {expected_version}, "
            f"the current one is {obj.version}). Reload it and apply your change again.",
            details={"version": [f"stale: current version is {obj.version}"]},
            extra={"current_version": obj.version},
        )


def _lock_versioned(obj: _Versioned, expected_version: int | None, what: str) -> _Versioned:
    """Lock `obj`'s row (its row alone), take the current version from it and check
    `expected_version`, so a version check and the write that bumps the version cannot
    interleave with another writer's. `obj` itself is updated and returned (callers and
    the admin keep using their instance)."""
    rows = type(obj)._default_manager.select_for_update().filter(pk=obj.pk)
    current = rows.values_list("version", flat=True).first()
    if current is None:
        raise ConflictError(f"{what} no longer exists.")
    versioned: Any = obj
    versioned.version = current
    _check_version(obj, expected_version, what)
    return obj


def _save_versioned(instance: Any, changed: Iterable[str]) -> None:
    """_save plus the version bump that makes the old ETag / `version` stale."""
    instance.version += 1
    _save(instance, [*changed, "version"])


def _lock_story(story: Story, *, for_delete: bool = False) -> Story:
    """Re-read `story` under a row lock, so version checks and writes are serialized."""
    try:
        # The story row alone, no joins: joined rows would be locked too (every write in a
        # project queuing behind the slowest one), and with FOR UPDATE OF a PostgreSQL
        # re-check after a concurrent status change would lose the row altogether.
        locked = Story.objects.select_for_update(no_key=not for_delete).get(pk=story.pk)
    except Story.DoesNotExist:
        raise ConflictError(f"Story {story.key} no longer exists.") from None
    project_field = Story._meta.get_field("project")
    if project_field.is_cached(story) and story.project_id == locked.project_id:
        project_field.set_cached_value(locked, story.project)  # a story never changes project
    return locked


_LOCK_CHUNK = 900  # ids per statement: stays under SQLite's 999 bound parameters


def lock_stories(ids: Iterable[int]) -> dict[int, Story]:
    """Lock the rows of the stories `ids` (FOR NO KEY UPDATE, in ascending id order: see
    the lock order above) and return them fresh, by id; ids that no longer exist are
    missing from the result."""
    ordered = sorted(set(ids))
    locked: dict[int, Story] = {}
    for start in range(0, len(ordered), _LOCK_CHUNK):
        chunk = ordered[start : start + _LOCK_CHUNK]
        for row in Story.objects.select_for_update(no_key=True).filter(pk__in=chunk).order_by("pk"):
            locked[row.pk] = row
    return locked


def _record_status_change(*, actor, story: Story, old: Status | None, new: Status, notes: str) -> StatusHistory:
    changed_by = actor if getattr(actor, "is_authenticated", False) else None
    return StatusHistory.objects.create(story=story, old_status=old, new_status=new, changed_by=changed_by, notes=notes)


def mark_status_history_written(story: Story | None, new: Status | None = None) -> None:
    """Tell the database's status_history trigger (stories migration 0003) that the
    coming status UPDATE of `story` is recorded already, so it writes no second row.
    PostgreSQL only: the marker is transaction-local and covers that one change. With
    `story=None` it covers every status change of the transaction (bulk writers that
    record history themselves). SQLite's trigger recognises the service's row itself."""
    if connection.vendor != "postgresql":
        return
    value = "*" if story is None else f"{story.pk}:{(new or story.status).pk}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('storyhub.history_written', %s, true)", [value])


# --------------------------------------------------------------------------- projects


PROJECT_FIELDS = (
    "slug",
    "name",
    "description",
    "repository_url",
    "submodule_path",
    "status",
    "owner",
    "metadata",
    "settings",
)


def _check_project_settings(settings: Any) -> None:
    if isinstance(settings, dict) and not isinstance(settings.get(readiness.GUARD_SETTING, True), bool):
        raise ValidationError({"settings": [f"'{readiness.GUARD_SETTING}' must be true or false."]})


@transaction.atomic
def project_create(*, actor, slug: str, name: str, **fields: Any) -> Project:
    """Create a project with the default workflow; the creator becomes its owner. The
    blocked guard (stories.readiness) is on unless `settings` turns it off."""
    project = Project(slug=slug, name=name)
    _assign(project, fields, PROJECT_FIELDS)
    _check_project_settings(project.settings)
    if isinstance(project.settings, dict):
        project.settings = {
            **project.settings,
            readiness.GUARD_SETTING: project.settings.get(readiness.GUARD_SETTING, True),
        }
    if project.owner_id is None and getattr(actor, "is_authenticated", False):
        project.owner = actor
    _create(project)
    Status.objects.bulk_create(
        [
            Status(
                project=project,
                order=index * 10,
                allowed_transitions=step.get("allowed_transitions", []),
                slug=step["slug"],
                name=step["name"],
                category=step["category"],
            )
            for index, step in enumerate(DEFAULT_WORKFLOW)
        ]
    )
    if project.owner_id is not None:
        ProjectMember.objects.create(project=project, user_id=project.owner_id, role=ProjectMember.Role.OWNER)
    audit_record(
        actor=actor,
        action=AuditAction.PROJECT_CREATED,
        target=project,
        changes={"slug": (None, slug), "name": (None, name)},
        extra={"workflow": [step["slug"] for step in DEFAULT_WORKFLOW]},
    )
    return project


@transaction.atomic
def project_update(*, actor, project: Project, data: Mapping[str, Any], expected_version: int | None = None) -> Project:
    """Change a project's fields (admin role; archiving needs the owner role).
    `expected_version` is the version the caller saw; a stale one raises StaleVersionError."""
    require_project_role(actor, project, ProjectMember.Role.ADMIN)
    project = _lock_versioned(project, expected_version, f"Project {project.slug}")
    if "status" in data and data["status"] != project.status:
        require_project_role(actor, project, ProjectMember.Role.OWNER)
    changes = _assign(project, data, [f for f in PROJECT_FIELDS if f != "slug"])
    _check_project_settings(project.settings)
    if changes:
        _save_versioned(project, changes)
        audit_record(actor=actor, action=AuditAction.PROJECT_UPDATED, target=project, changes=changes)
    return project


def project_archive(*, actor, project: Project) -> Project:
    return project_update(actor=actor, project=project, data={"status": Project.Status.ARCHIVED})


@transaction.atomic
def project_delete(*, actor, project: Project, expected_version: int | None = None) -> None:
    """Delete a project and everything in it (owner role)."""
    require_project_role(actor, project, ProjectMember.Role.OWNER)
    lock_blocks_graph()  # its stories' links go too (lock order above)
    project = _lock_versioned(project, expected_version, f"Project {project.slug}")
    audit_record(
        actor=actor,
        action=AuditAction.PROJECT_DELETED,
        target=project,
        extra={"slug": project.slug, "stories": project.stories.count()},
    )
    # Stories and their history protect the workflow's statuses; they go first,
    # within the same transaction.
    StatusHistory.objects.filter(story__project=project).delete()
    Story.objects.filter(project=project).delete()
    project.delete()


# --------------------------------------------------------------------------- members


@transaction.atomic
def project_member_set(
    *, actor, project: Project, user, role: str, expected_version: int | None = None
) -> ProjectMember:
    """Add `user` to `project` with `role`, or change their role (admin role; granting or
    taking away 'owner' needs the owner role). `expected_version` (the membership's
    version the caller saw) applies to an existing membership."""
    require_project_role(actor, project, ProjectMember.Role.ADMIN)
    member = ProjectMember.objects.select_for_update().filter(project=project, user=user).first()
    if member is not None:
        _check_version(member, expected_version, f"Member {user.get_username()}")
    elif expected_version is not None:
        raise ConflictError(f"{user.get_username()} is no longer a member of {project.slug}.")
    if role == ProjectMember.Role.OWNER or (member and member.role == ProjectMember.Role.OWNER):
        require_project_role(actor, project, ProjectMember.Role.OWNER)
    if member is None:
        member = ProjectMember(project=project, user=user, role=role)
        _create(member)
        audit_record(
            actor=actor,
            action=AuditAction.PROJECT_MEMBER_ADDED,
            target=member,
            changes={"role": (None, role)},
            extra={"project": project.slug, "user": user.get_username()},
        )
    elif member.role != role:
        if member.role == ProjectMember.Role.OWNER:
            _ensure_other_owner(project, member)
        changes = _assign(member, {"role": role}, ["role"])
        _save_versioned(member, changes)
        audit_record(
            actor=actor,
            action=AuditAction.PROJECT_MEMBER_ROLE_CHANGED,
            target=member,
            changes=changes,
            extra={"project": project.slug, "user": user.get_username()},
        )
    return member


def _ensure_other_owner(project: Project, member: ProjectMember) -> None:
    if not ProjectMember.objects.filter(project=project, role=ProjectMember.Role.OWNER).exclude(pk=member.pk).exists():
        raise ValidationError({"role": ["A project must keep at least one owner."]})


@transaction.atomic
def project_member_remove(*, actor, member: ProjectMember, expected_version: int | None = None) -> None:
    project = member.project
    require_project_role(actor, project, ProjectMember.Role.ADMIN)
    member = _lock_versioned(member, expected_version, f"Member {member.user.get_username()}")
    if member.role == ProjectMember.Role.OWNER:
        require_project_role(actor, project, ProjectMember.Role.OWNER)
        _ensure_other_owner(project, member)
    audit_record(
        actor=actor,
        action=AuditAction.PROJECT_MEMBER_REMOVED,
        target=member,
        extra={"project": project.slug, "user_id": member.user_id, "role": member.role},
    )
    member.delete()


# --------------------------------------------------------------------------- backlogs, workflow, epics

BACKLOG_FIELDS = ("slug", "name", "type", "status", "owner", "metadata", "settings", "starts_on", "ends_on")


@transaction.atomic
def backlog_create(*, actor, project: Project, slug: str, name: str, **fields: Any) -> Backlog:
    require_project_role(actor, project, ProjectMember.Role.ADMIN)
    backlog = Backlog(project=project, slug=slug, name=name)
    _assign(backlog, fields, BACKLOG_FIELDS)
    _create(backlog)
    audit_record(
        actor=actor,
        action=AuditAction.BACKLOG_CREATED,
        target=backlog,
        changes={"slug": (None, slug), "name": (None, name)},
        extra={"project": project.slug},
    )
    return backlog


@transaction.atomic
def backlog_update(*, actor, backlog: Backlog, data: Mapping[str, Any], expected_version: int | None = None) -> Backlog:
    require_project_role(actor, backlog.project, ProjectMember.Role.ADMIN)
    backlog = _lock_versioned(backlog, expected_version, f"Backlog {backlog.slug}")
    changes = _assign(backlog, data, BACKLOG_FIELDS)
    if changes:
        _save_versioned(backlog, changes)
        audit_record(
            actor=actor,
            action=AuditAction.BACKLOG_UPDATED,
            target=backlog,
            changes=changes,
            extra={"project": backlog.project.slug},
        )
    return backlog


@transaction.atomic
def backlog_delete(*, actor, backlog: Backlog, expected_version: int | None = None) -> None:
    """Delete a backlog; its stories stay in the project without a backlog."""
    require_project_role(actor, backlog.project, ProjectMember.Role.ADMIN)
    backlog = _lock_versioned(backlog, expected_version, f"Backlog {backlog.slug}")
    audit_record(
        actor=actor,
        action=AuditAction.BACKLOG_DELETED,
        target=backlog,
        extra={"project": backlog.project.slug, "slug": backlog.slug},
    )
    backlog.delete()


STATUS_FIELDS = ("slug", "name", "category", "order", "allowed_transitions")


@transaction.atomic
def status_create(*, actor, project: Project, slug: str, name: str, category: str, **fields: Any) -> Status:
    require_project_role(actor, project, ProjectMember.Role.ADMIN)
    status = Status(project=project, slug=slug, name=name, category=category)
    _assign(status, fields, STATUS_FIELDS)
    _validate_transitions(project, status)
    _create(status)
    audit_record(
        actor=actor,
        action=AuditAction.STATUS_CREATED,
        target=status,
        changes={"slug": (None, slug), "category": (None, category)},
        extra={"project": project.slug},
    )
    return status


def _validate_transitions(project: Project, status: Status) -> None:
    if not isinstance(status.allowed_transitions, list) or not all(
        isinstance(s, str) for s in status.allowed_transitions
    ):
        raise ValidationError({"allowed_transitions": ["Give a list of status slugs."]})
    known = set(Status.objects.filter(project=project).values_list("slug", flat=True)) | {status.slug}
    unknown = [slug for slug in status.allowed_transitions if slug not in known]
    if unknown:
        raise ValidationError({"allowed_transitions": [f"Unknown statuses: {', '.join(unknown)}."]})


@transaction.atomic
def status_update(*, actor, status: Status, data: Mapping[str, Any], expected_version: int | None = None) -> Status:
    require_project_role(actor, status.project, ProjectMember.Role.ADMIN)
    status = _lock_versioned(status, expected_version, f"Status {status.slug}")
    changes = _assign(status, data, STATUS_FIELDS)
    if changes:
        _validate_transitions(status.project, status)
        _save_versioned(status, changes)
        audit_record(
            actor=actor,
            action=AuditAction.STATUS_UPDATED,
            target=status,
            changes=changes,
            extra={"project": status.project.slug},
        )
    return status


@transaction.atomic
def status_delete(*, actor, status: Status, expected_version: int | None = None) -> None:
    require_project_role(actor, status.project, ProjectMember.Role.ADMIN)
    status = _lock_versioned(status, expected_version, f"Status {status.slug}")
    if (
        Story.objects.filter(status=status).exists()
        or StatusHistory.objects.filter(models.Q(old_status=status) | models.Q(new_status=status)).exists()
    ):
        raise ValidationError(
            {"status": [f"Status '{status.slug}' is used by stories or their history; it cannot be deleted."]}
        )
    audit_record(
        actor=actor,
        action=AuditAction.STATUS_DELETED,
        target=status,
        extra={"project": status.project.slug, "slug": status.slug},
    )
    try:
        status.delete()
    except ProtectedError:
        raise ValidationError({"status": [f"Status '{status.slug}' is in use."]}) from None


EPIC_FIELDS = ("slug", "name", "description")


@transaction.atomic
def epic_create(*, actor, project: Project, slug: str, name: str = "", description: str = "") -> Epic:
    require_project_role(actor, project, ProjectMember.Role.MEMBER)
    epic = Epic(project=project, slug=slug, name=name or slug, description=description)
    _create(epic)
    audit_record(
        actor=actor,
        action=AuditAction.EPIC_CREATED,
        target=epic,
        changes={"slug": (None, slug)},
        extra={"project": project.slug},
    )
    return epic


def epic_get_or_create(*, actor, project: Project, slug: str) -> Epic:
    """The project's epic `slug`, created on demand (imports name epics by slug)."""
    existing = Epic.objects.filter(project=project, slug=slug).first()
    return existing or epic_create(actor=actor, project=project, slug=slug)


@transaction.atomic
def epic_update(*, actor, epic: Epic, data: Mapping[str, Any], expected_version: int | None = None) -> Epic:
    require_project_role(actor, epic.project, ProjectMember.Role.MEMBER)
    epic = _lock_versioned(epic, expected_version, f"Epic {epic.slug}")
    changes = _assign(epic, data, EPIC_FIELDS)
    if changes:
        _save_versioned(epic, changes)
        audit_record(
            actor=actor,
            action=AuditAction.EPIC_UPDATED,
            target=epic,
            changes=changes,
            extra={"project": epic.project.slug},
        )
    return epic


@transaction.atomic
def epic_delete(*, actor, epic: Epic, expected_version: int | None = None) -> None:
    require_project_role(actor, epic.project, ProjectMember.Role.ADMIN)
    epic = _lock_versioned(epic, expected_version, f"Epic {epic.slug}")
    audit_record(
        actor=actor,
        action=AuditAction.EPIC_DELETED,
        target=epic,
        extra={"project": epic.project.slug, "slug": epic.slug},
    )
    epic.delete()


# --------------------------------------------------------------------------- stories

# The fields story_create / story_update assign as given (the field table says which).
STORY_FIELDS = WRITABLE


# Keys that would collide with a route under /api/v1/projects/{slug}/stories/.
RESERVED_STORY_KEYS = frozenset({"bulk"})


def check_story_key(key: Any) -> None:
    """Refuse a story key that the API's routes reserve (ValidationError on "key")."""
    if str(key).lower() in RESERVED_STORY_KEYS:
        raise ValidationError({"key": [f"'{key}' is reserved by the API (…/stories/{key}/); choose another key."]})


def _normalize_story_data(project: Project, data: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(data)
    if "key" in data:
        check_story_key(data["key"])
    if "priority" in data:
        data["priority"] = resolve_priority(data["priority"])
    if "estimate" in data:
        data["estimate"] = "" if data["estimate"] is None else str(data["estimate"])
    for name, model in (("backlog", Backlog), ("epic", Epic)):
        value = data.get(name)
        if isinstance(value, model) and value.project_id != project.pk:
            raise ValidationError({name: [f"{model.__name__} '{value.slug}' belongs to another project."]})
    if "labels" in data:
        labels = data["labels"]
        if labels is None:
            labels = []
        if not isinstance(labels, list | tuple) or not all(isinstance(x, str) for x in labels):
            raise ValidationError({"labels": ["Give a list of strings."]})
        data["labels"] = list(labels)
    if "metadata" in data and not isinstance(data["metadata"], dict):
        raise ValidationError({"metadata": ["Give an object (a mapping of keys to values)."]})
    return data


@transaction.atomic
def story_create(
    *, actor, project: Project, key: str, title: str, status: Status | str | None = None, notes: str = "", **fields: Any
) -> Story:
    """Create a story (member role). Its first status is recorded in status_history."""
    require_project_role(actor, project, ProjectMember.Role.MEMBER)
    check_story_key(key)
    fields = _normalize_story_data(project, fields)
    story = Story(project=project, key=key, title=title, status=_resolve_status(project, status))
    _assign(story, fields, STORY_FIELDS)
    story.points_min, story.points_max = parse_estimate(story.estimate)
    _create(story)
    _record_status_change(actor=actor, story=story, old=None, new=story.status, notes=notes or "created")
    audit_record(
        actor=actor,
        action=AuditAction.STORY_CREATED,
        target=story,
        changes={"key": (None, key), "title": (None, title), "status": (None, story.status.slug)},
        extra={"project": project.slug, "key": key},
    )
    return story


def _guard_label(actor, project: Project, other: Project, key: str) -> str:
    if other.pk == project.pk:
        return key
    if actor is None or has_project_role(actor, other, ProjectMember.Role.VIEWER):
        return f"{other.slug}:{key}"
    return readiness.HIDDEN_LABEL


def blocked_guard_check(
    *,
    actor,
    project: Project,
    key: str,
    old_category: str | None,
    new_category: str,
    blockers: Iterable[tuple[Project, str, str | None]],
    target: str | None = None,
    override_blocked: bool = False,
    override_reason: str = "",
) -> dict[str, Any] | None:
    """The blocked guard (stories.readiness) for one story of `project` moving from
    `old_category` (None: a new story) to `new_category`. `blockers` are the story's
    `blocks` targets as (project, key, status category); the open ones refuse the move
    with BlockedError (a target the actor cannot see is listed as "(hidden)"), unless
    `override_blocked` with a non-empty `override_reason` by a project admin (else
    PermissionDenied). Returns the override to record {"reason", "blockers"}, or None."""
    reason = (override_reason or "").strip()
    if override_blocked and not reason:
        raise ValidationError({"reason": ["Give a reason for overriding the blocked guard."]})
    if not readiness.enters_guarded_category(old_category, new_category) or not readiness.guard_enabled(project):
        return None
    open_blockers = [
        _guard_label(actor, project, other, other_key)
        for other, other_key, category in blockers
        if readiness.is_open_blocker(readiness.BLOCKING_TYPE, category)
    ]
    if not open_blockers:
        return None
    labels = sorted(open_blockers, key=lambda label: (label == readiness.HIDDEN_LABEL, label))
    if not override_blocked:
        raise BlockedError(labels, key=key, target=target)
    if actor is not None and not has_project_role(actor, project, ProjectMember.Role.ADMIN):
        raise PermissionDenied(f"Overriding the blocked guard needs the 'admin' role in project '{project.slug}'.")
    return {"reason": reason, "blockers": labels}


@dataclass(frozen=True)
class PlannedMove:
    """One story's status move in a batch (stories.bulk), for blocked_moves()."""

    key: str
    old_category: str | None  # None: a new story
    new_category: str
    story_id: int | None = None  # an existing story
    blocker_ids: Sequence[int] | None = None  # `blocks` targets after the batch; None: its current links
    blocker_keys: Sequence[str] = ()  # `blocks` targets the same batch creates (keys in the project)


def blocked_moves(
    *, actor, project: Project, moves: Iterable[PlannedMove], batch_categories: Mapping[str, str]
) -> dict[str, BlockedError]:
    """The blocked guard on the final state of a batch: key → BlockedError for every move
    it refuses. `batch_categories` maps the keys of the batch's stories (in `project`) to
    their status category after the batch, so a blocker completed by the same batch
    counts as completed. A batch cannot override the guard."""
    moving = [m for m in moves if readiness.enters_guarded_category(m.old_category, m.new_category)]
    if not moving or not readiness.guard_enabled(project):
        return {}
    current = selectors.blocks_targets_of(
        story_ids=[m.story_id for m in moving if m.blocker_ids is None and m.story_id]
    )
    rows = {t[0]: t[1:] for targets in current.values() for t in targets}
    missing = {i for m in moving for i in (m.blocker_ids or ()) if i not in rows}
    rows.update(selectors.story_guard_rows(ids=sorted(missing)))
    refused: dict[str, BlockedError] = {}
    for move in moving:
        links = current.get(move.story_id, []) if move.story_id is not None else []
        ids = move.blocker_ids if move.blocker_ids is not None else [t[0] for t in links]
        blockers: list[tuple[Project, str, str | None]] = []
        for other, other_key, category in (rows[i] for i in ids if i in rows):
            if other.pk == project.pk and other_key in batch_categories:
                category = batch_categories[other_key]
            blockers.append((other, other_key, category))
        blockers += [(project, k, batch_categories.get(k)) for k in move.blocker_keys]
        try:
            blocked_guard_check(
                actor=actor,
                project=project,
                key=move.key,
                old_category=move.old_category,
                new_category=move.new_category,
                blockers=blockers,
            )
        except BlockedError as exc:
            refused[move.key] = exc
    return refused


def _apply_status(
    *,
    actor,
    story: Story,
    target: Status,
    notes: str,
    enforce_workflow: bool,
    override_blocked: bool = False,
    override_reason: str = "",
) -> tuple[Status | None, dict[str, Any] | None]:
    """Move `story` (already locked) to `target`; returns the old status (None when
    nothing moves) and the blocked guard's override, if one was used. Writes the
    status_history row; the caller saves and audits."""
    if target.project_id != story.project_id:
        raise ValidationError({"status": [f"Status '{target.slug}' belongs to another project."]})
    old = story.status
    if old.pk == target.pk:
        return None, None
    if enforce_workflow and not old.allows(target):
        raise InvalidTransitionError(old.slug, target.slug, list(old.allowed_transitions))
    override = None
    if readiness.enters_guarded_category(old.category, target.category):
        targets = selectors.blocks_targets_of(story_ids=[story.pk]).get(story.pk, [])
        override = blocked_guard_check(
            actor=actor,
            project=story.project,
            key=story.key,
            old_category=old.category,
            new_category=target.category,
            blockers=[t[1:] for t in targets],
            target=target.slug,
            override_blocked=override_blocked,
            override_reason=override_reason,
        )
    if override is not None:
        line = f"Blocked guard overridden (blockers: {', '.join(override['blockers'])}): {override['reason']}"
        notes = f"{notes}\n{line}" if notes else line
    story.status = target
    _record_status_change(actor=actor, story=story, old=old, new=target, notes=notes)
    mark_status_history_written(story, target)
    return old, override


@transaction.atomic
def story_update(
    *,
    actor,
    story: Story,
    data: Mapping[str, Any],
    expected_version: int | None = None,
    notes: str = "",
    enforce_workflow: bool = True,
    override_blocked: bool = False,
    override_reason: str = "",
) -> Story:
    """Change a story's fields (member role). `data` may include "status" (a Status or
    slug), which is validated against the workflow and the blocked guard (see
    story_transition) and recorded in status_history.
    `expected_version` is the version the caller saw; a stale one raises ConflictError."""
    require_project_role(actor, story.project, ProjectMember.Role.MEMBER)
    locked = _lock_story(story)
    _check_version(locked, expected_version)
    data = _normalize_story_data(locked.project, data)
    status = data.pop("status", None)
    changes = _assign(locked, data, STORY_FIELDS)
    if "estimate" in changes:
        new_points = parse_estimate(locked.estimate)
        if (locked.points_min, locked.points_max) != new_points:
            changes["points_min"] = (locked.points_min, new_points[0])
            changes["points_max"] = (locked.points_max, new_points[1])
            locked.points_min, locked.points_max = new_points
    override = None
    if status is not None:
        target = _resolve_status(locked.project, status)
        old, override = _apply_status(
            actor=actor,
            story=locked,
            target=target,
            notes=notes,
            enforce_workflow=enforce_workflow,
            override_blocked=override_blocked,
            override_reason=override_reason,
        )
        if old is not None:
            changes["status"] = (old.slug, target.slug)
    if not changes:
        return locked
    locked.version += 1
    _save(locked, [*changes, "version"])
    extra: dict[str, Any] = {"project": locked.project.slug, "key": locked.key, "version": locked.version}
    if override is not None:
        extra["override_blocked"] = override
    audit_record(actor=actor, action=AuditAction.STORY_UPDATED, target=locked, changes=changes, extra=extra)
    return locked


@transaction.atomic
def story_transition(
    *,
    actor,
    story: Story,
    status: Status | str,
    notes: str = "",
    expected_version: int | None = None,
    enforce_workflow: bool = True,
    override_blocked: bool = False,
    override_reason: str = "",
) -> Story:
    """Move a story to another status of its workflow (member role): exactly one
    status_history row and one audit row. Moving to the current status changes nothing.

    The blocked guard (stories.readiness): while a `blocks` dependency is not completed
    the story may not enter the started or completed category (BlockedError, 409), unless
    `override_blocked` with a non-empty `override_reason` by a project admin; the
    override is kept in the status_history notes and the audit row."""
    require_project_role(actor, story.project, ProjectMember.Role.MEMBER)
    locked = _lock_story(story)
    _check_version(locked, expected_version)
    target = _resolve_status(locked.project, status)
    old, override = _apply_status(
        actor=actor,
        story=locked,
        target=target,
        notes=notes,
        enforce_workflow=enforce_workflow,
        override_blocked=override_blocked,
        override_reason=override_reason,
    )
    if old is None:
        return locked
    locked.version += 1
    _save(locked, ["status", "version"])
    extra: dict[str, Any] = {"project": locked.project.slug, "key": locked.key, "notes": notes}
    extra["version"] = locked.version
    if override is not None:
        extra["override_blocked"] = override
    audit_record(
        actor=actor,
        action=AuditAction.STORY_STATUS_CHANGED,
        target=locked,
        changes={"status": (old.slug, target.slug)},
        extra=extra,
    )
    return locked


@transaction.atomic
def story_move(*, actor, story: Story, backlog: Backlog | None, expected_version: int | None = None) -> Story:
    """Put a story in another backlog of its project (or none)."""
    require_project_role(actor, story.project, ProjectMember.Role.MEMBER)
    locked = _lock_story(story)
    _check_version(locked, expected_version)
    if backlog is not None and backlog.project_id != locked.project_id:
        raise ValidationError({"backlog": [f"Backlog '{backlog.slug}' belongs to another project."]})
    old = locked.backlog
    if _value_for_compare(old) == _value_for_compare(backlog):
        return locked
    locked.backlog = backlog
    locked.version += 1
    _save(locked, ["backlog", "version"])
    audit_record(
        actor=actor,
        action=AuditAction.STORY_MOVED,
        target=locked,
        changes={"backlog": (old.slug if old else None, backlog.slug if backlog else None)},
        extra={"project": locked.project.slug, "key": locked.key, "version": locked.version},
    )
    return locked


# Gapped integer ranks: a story placed between two others takes the middle of their
# ranks; when there is no room left (or a neighbour is not ranked yet) the project's
# stories are renumbered 1, 2, 3, ... x RANK_STEP in their current order.
RANK_STEP = 1024


def _rank_slot(order: list[tuple[int, int | None]], position: int) -> int | None:
    """The rank for a story put at `position` of `order` (the project's other stories as
    (id, rank)), or None when the neighbours leave no room (renumber)."""
    lower = order[position - 1][1] if position > 0 else None
    upper = order[position][1] if position < len(order) else None
    if (position > 0 and lower is None) or (position < len(order) and upper is None):
        return None
    if upper is None:
        return RANK_STEP if lower is None else lower + RANK_STEP
    if lower is None:
        return upper - RANK_STEP
    return (lower + upper) // 2 if upper - lower > 1 else None


def _rank_position(order: list[tuple[int, int | None]], ids: Mapping[str, int | None]) -> int:
    """Where `before` / `after` (story ids, None when not given) put the story in `order`."""
    index = {story_id: i for i, (story_id, _) in enumerate(order)}
    before, after = ids.get("before"), ids.get("after")
    if after is not None and before is not None and index[after] + 1 != index[before]:
        message = "'after' and 'before' are not next to each other (someone reordered them); reload the order."
        raise ConflictError(message, details={"before": [message]})
    if before is not None:
        return index[before]
    assert after is not None  # story_rank requires one of the two
    return index[after] + 1


def _renumber(order: list[tuple[int, int | None]]) -> int:
    """Give `order` (every story of a project, in its new order) ranks RANK_STEP apart,
    under their row locks (the advisory lock is held: lock order); returns how many
    stories got a new rank. Their versions stay: their order among themselves is kept."""
    lock_stories(story_id for story_id, _ in order)
    changed = [
        Story(pk=story_id, rank=(i + 1) * RANK_STEP)
        for i, (story_id, rank) in enumerate(order)
        if rank != (i + 1) * RANK_STEP
    ]
    Story.objects.bulk_update(changed, ["rank"], batch_size=500)
    return len(changed)


@transaction.atomic
def story_rank(
    *,
    actor,
    story: Story,
    before: Story | None = None,
    after: Story | None = None,
    expected_version: int | None = None,
) -> Story:
    """Put `story` just before `before` and/or just after `after` (stories of its
    project) in the project's order (models.STORY_RANK_ORDER), member role. Both given:
    they must still be neighbours (ConflictError otherwise: the caller's view is stale).
    One audit row (story.ranked) when the place changes, none when it does not."""
    require_project_role(actor, story.project, ProjectMember.Role.MEMBER)
    if before is None and after is None:
        raise ValidationError({"before": ["Give 'before' or 'after' (the key of a story of this project)."]})
    anchors = {name: other for name, other in (("before", before), ("after", after)) if other is not None}
    for name, other in anchors.items():
        if other.project_id != story.project_id:
            raise ValidationError({name: [f"Story {other.key} belongs to another project."]})
        if other.pk == story.pk:
            raise ValidationError({name: ["A story cannot be placed next to itself."]})
    lock_blocks_graph()  # a renumbering locks many story rows (lock order above)
    locked = _lock_story(story)
    _check_version(locked, expected_version)
    full = list(
        Story.objects.filter(project_id=locked.project_id).order_by(*STORY_RANK_ORDER).values_list("pk", "rank")
    )
    old_position = next(i for i, (story_id, _) in enumerate(full) if story_id == locked.pk)
    order = [row for row in full if row[0] != locked.pk]
    position = _rank_position(order, {name: other.pk for name, other in anchors.items()})
    if position == old_position and locked.rank is not None:
        return locked  # already there
    old_rank = locked.rank
    rank = _rank_slot(order, position)
    renumbered = 0
    if rank is None:
        renumbered = _renumber([*order[:position], (locked.pk, None), *order[position:]])
        rank = (position + 1) * RANK_STEP
    locked.rank = rank
    locked.version += 1
    _save(locked, ["rank", "version"])
    extra: dict[str, Any] = {"project": locked.project.slug, "key": locked.key, "version": locked.version}
    extra.update({name: other.key for name, other in anchors.items()})
    if renumbered:
        extra["renumbered"] = renumbered
    audit_record(
        actor=actor, action=AuditAction.STORY_RANKED, target=locked, changes={"rank": (old_rank, rank)}, extra=extra
    )
    return locked


@transaction.atomic
def story_delete(*, actor, story: Story, expected_version: int | None = None) -> None:
    """Delete a story with its dependencies and history (member role)."""
    require_project_role(actor, story.project, ProjectMember.Role.MEMBER)
    lock_blocks_graph()  # the deletion removes the story's links (lock order above)
    locked = _lock_story(story, for_delete=True)
    _check_version(locked, expected_version)
    audit_record(
        actor=actor,
        action=AuditAction.STORY_DELETED,
        target=locked,
        extra={"project": locked.project.slug, "key": locked.key, "title": locked.title},
    )
    StatusHistory.objects.filter(story=locked).delete()
    locked.delete()


# --------------------------------------------------------------------------- dependencies


def lock_blocks_graph() -> None:
    """Take the transaction's turn at writing links (on SQLite the IMMEDIATE transaction
    already is that turn): first of all locks (see the lock order above), held until the
    commit; taking it again only bumps the graph version again."""
    # SQLite's IMMEDIATE transactions already serialize writers; PostgreSQL needs a lock.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_BLOCKS_GRAPH_LOCK])
        # Every writer of links comes here first: one counter, bumped while the lock is
        # held (so it adds no wait), invalidates the cached project orders (stories.graph).
        cursor.execute(_BUMP_GRAPH_VERSION_SQL)
        if not cursor.rowcount:
            cursor.execute(_FIRST_GRAPH_VERSION_SQL)


def _label(story: Story, relative_to: Project) -> str:
    # Only for stories the actor sees (its own, or a target it named and may view).
    return selectors.story_ref(
        key=story.key, project_id=story.project_id, slug=story.project.slug, relative_to=relative_to
    )


@transaction.atomic
def dependency_add(
    *, actor, story: Story, depends_on: Story, type: str = StoryDependency.Type.BLOCKS, description: str = ""
) -> StoryDependency:
    """Record that `story` depends on `depends_on` (member role in the story's project,
    at least viewer in the other one). Self-links and duplicates are refused, and a
    `blocks` link that would close a cycle raises DependencyCycleError naming it."""
    require_project_role(actor, story.project, ProjectMember.Role.MEMBER)
    require_project_role(actor, depends_on.project, ProjectMember.Role.VIEWER)
    if story.pk == depends_on.pk:
        raise ValidationError({"depends_on": ["A story cannot depend on itself."]})
    lock_blocks_graph()
    lock_stories([story.pk])
    if type == StoryDependency.Type.BLOCKS:
        path = selectors.blocks_path(start_id=depends_on.pk, goal_id=story.pk)
        if path:
            # Named as the actor may see them: a run of stories it cannot see is one "(hidden)".
            labels = selectors.story_refs(ids=path, reader=actor, relative_to=story.project)
            cycle = selectors.collapse_hidden([_label(story, story.project)] + [labels[pk] for pk in path])
            raise DependencyCycleError(cycle)
    if StoryDependency.objects.filter(story=story, depends_on=depends_on).exists():
        raise ValidationError(
            {"depends_on": [f"{story.key} already depends on {_label(depends_on, story.project)}."]}, code="duplicate"
        )
    dependency = StoryDependency(story=story, depends_on=depends_on, type=type, description=description)
    dependency.full_clean(exclude=["story", "depends_on"], validate_constraints=False)
    try:
        with transaction.atomic():
            dependency.save(force_insert=True)
    except IntegrityError:
        # A concurrent writer added the same pair between our check and insert.
        raise ValidationError({"depends_on": ["This dependency already exists."]}, code="duplicate") from None
    audit_record(
        actor=actor,
        action=AuditAction.DEPENDENCY_ADDED,
        target=dependency,
        entity_type=EntityType.STORY_DEPENDENCY,
        extra={"story": story.ref, "depends_on": depends_on.ref, "type": type},
    )
    return dependency


@transaction.atomic
def dependency_remove(*, actor, dependency: StoryDependency) -> None:
    """Remove a link (member role in the story's project). A link that another writer
    removed first raises NotFoundError (and writes no audit row)."""
    story = dependency.story
    require_project_role(actor, story.project, ProjectMember.Role.MEMBER)
    lock_blocks_graph()
    lock_stories([story.pk])
    deleted, _ = StoryDependency.objects.filter(pk=dependency.pk).delete()
    if not deleted:
        message = "This dependency no longer exists (someone else removed it)."
        raise NotFoundError(message, details={"dependency": [message]})
    audit_record(
        actor=actor,
        action=AuditAction.DEPENDENCY_REMOVED,
        target=dependency,
        entity_type=EntityType.STORY_DEPENDENCY,
        extra={"story": story.ref, "depends_on": dependency.depends_on.ref, "type": dependency.type},
    )


@transaction.atomic
def project_dependency_add(
    *,
    actor,
    from_project: Project,
    to_project: Project,
    type: str = ProjectDependency.Type.DEPENDS,
    description: str = "",
) -> ProjectDependency:
    require_project_role(actor, from_project, ProjectMember.Role.ADMIN)
    require_project_role(actor, to_project, ProjectMember.Role.VIEWER)
    if from_project.pk == to_project.pk:
        raise ValidationError({"to_project": ["A project cannot depend on itself."]})
    if ProjectDependency.objects.filter(from_project=from_project, to_project=to_project).exists():
        raise ValidationError({"to_project": [f"{from_project.slug} already depends on {to_project.slug}."]})
    link = ProjectDependency(from_project=from_project, to_project=to_project, type=type, description=description)
    _create(link)
    audit_record(
        actor=actor,
        action=AuditAction.PROJECT_DEPENDENCY_ADDED,
        target=link,
        entity_type=EntityType.PROJECT_DEPENDENCY,
        extra={"from": from_project.slug, "to": to_project.slug, "type": type},
    )
    return link


@transaction.atomic
def project_dependency_remove(*, actor, link: ProjectDependency) -> None:
    require_project_role(actor, link.from_project, ProjectMember.Role.ADMIN)
    audit_record(
        actor=actor,
        action=AuditAction.PROJECT_DEPENDENCY_REMOVED,
        target=link,
        entity_type=EntityType.PROJECT_DEPENDENCY,
        extra={"from": link.from_project.slug, "to": link.to_project.slug, "type": link.type},
    )
    link.delete()
