"""Apply a plan: create the statuses and epics the batch names, insert the new stories
(batched: stories, first status_history rows, `story.created` audit rows, links), then
lock and update the changed ones (one batched UPDATE, status_history for status moves,
one `story.updated` audit row each) and replace their links through the dependency
services. Runs inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection
from django.utils import timezone

from audit.events import AuditAction, EntityType
from audit.services import audit_record_many, audit_row
from storyhub.errors import ApplicationError, ConflictError
from storyhub.fastinsert import immediate_checks, insert_rows, inserting, reserve_ids

from .. import project_settings, services
from ..fields import COLUMNS
from ..models import DEFAULT_STATUS_SLUG, Priority, Status, StatusHistory, Story, StoryDependency
from .parse import Dep, Item
from .plan import Plan, links_differ, read_links, same_link, version_ok
from .values import CATEGORY_HINTS

STORY_COLUMNS = COLUMNS
_UPDATED_COLUMNS = tuple(c for c in STORY_COLUMNS if c not in ("project_id", "key", "created_at"))
_UPDATED_COLUMNS = tuple(c.removesuffix("_id") for c in _UPDATED_COLUMNS)
_HISTORY_COLUMNS = ("story_id", "old_status_id", "new_status_id", "changed_by_id", "changed_at", "notes")
_LINK_COLUMNS = ("story_id", "depends_on_id", "type", "description", "created_at")


def apply_plan(plan: Plan) -> None:
    """Write what `plan` says; problems found while writing go to `plan.errors`. Locks
    follow the service layer's order (stories.services): the dependency-graph lock first
    when the batch may write links, then the changed stories' rows in id order."""
    if writes_links(plan):
        services.lock_blocks_graph()
    create_statuses_and_epics(plan)
    check_blocked(plan)
    write_new(plan)
    write_changed(plan)


def writes_links(plan: Plan) -> bool:
    """Whether the batch takes the dependency-graph lock: it may add or remove links (a
    new story with dependencies, a changed story whose dependency list is given) or it
    locks more than one story row."""
    updated = [item for item in plan.items if item.outcome == "updated"]
    return len(updated) > 1 or any(
        (item.outcome == "created" and item.deps) or (item.outcome == "updated" and item.deps is not None)
        for item in plan.items
    )


def _changed_by(actor) -> int | None:
    return actor.pk if getattr(actor, "is_authenticated", False) else None


# --------------------------------------------------------------------------- statuses, epics


def create_statuses_and_epics(plan: Plan) -> None:
    for slug, name in plan.new_statuses.items():
        category = next((cat for hint, cat in CATEGORY_HINTS if hint in slug), "backlog")
        order = max((s.order for s in plan.statuses.values()), default=0) + 10
        plan.statuses[slug] = services.status_create(
            actor=plan.actor, project=plan.project, slug=slug, name=name, category=category, order=order
        )
    for item in plan.items:
        if item.status_slug:
            item.status = plan.statuses[item.status_slug]
        if item.epic_slug and item.epic_slug not in plan.epics and item.outcome != "unchanged":
            try:
                plan.epics[item.epic_slug] = services.epic_create(
                    actor=plan.actor, project=plan.project, slug=item.epic_slug, name=item.epic_name
                )
            except ValidationError as exc:
                plan.errors.add_validation(item.index, item.key, exc, "epic")
    plan.raise_if_errors()


def check_blocked(plan: Plan) -> None:
    """The blocked guard (services.blocked_moves) on the batch's final state."""
    default = plan.statuses.get(plan.project.settings.get(project_settings.DEFAULT_STATUS, DEFAULT_STATUS_SLUG))
    by_pk = {s.pk: s for s in plan.statuses.values()}
    final: dict[str, str] = {}
    moves = []
    for item in plan.items:
        if item.outcome == "unchanged" or item.index in plan.errors.failed:
            continue
        old = by_pk.get(item.existing.status_id) if item.existing else None
        new = item.status or old or default
        if new is None:
            continue
        final[item.key] = new.category
        blocks = None if item.deps is None else [d for d in item.deps if d.type == StoryDependency.Type.BLOCKS]
        moves.append(
            services.PlannedMove(
                key=item.key,
                old_category=old.category if old else None,
                new_category=new.category,
                story_id=item.story_id,
                blocker_ids=None if blocks is None else [d.target_id for d in blocks if d.target_id is not None],
                blocker_keys=[d.ref for d in blocks or () if d.target_id is None],
            )
        )
    refused = services.blocked_moves(actor=plan.actor, project=plan.project, moves=moves, batch_categories=final)
    for key, exc in refused.items():
        plan.errors.add(plan.by_key[key].index, key, "status", exc.message)
    plan.raise_if_errors()


# --------------------------------------------------------------------------- new stories


def write_new(plan: Plan) -> None:
    """Insert the new stories, their first status_history rows, their links and their
    `story.created` audit rows. Each batch's rows are made while PostgreSQL writes the
    previous one, and the foreign keys are checked as each COPY ends (inside that
    overlap), not at COMMIT (storyhub.fastinsert)."""
    new = [item for item in plan.items if item.outcome == "created"]
    if not new:
        return
    now = timezone.now()
    statuses = _initial_statuses(plan, new)
    plan.raise_if_errors()
    changed_by = _changed_by(plan.actor)
    with immediate_checks():
        # The rows are made as they are sent.
        rows = (_story_row(plan, item, status, now) for item, status in zip(new, statuses, strict=True))
        try:
            with inserting(Story, STORY_COLUMNS, rows, ids=reserve_ids(Story, len(new))) as ids:
                if ids is None:
                    raise RuntimeError("this database does not return ids from bulk inserts")
                for item, pk in zip(new, ids, strict=True):
                    item.story_id = pk
                    plan.labels[pk] = item.key
                history = [
                    (item.story_id, None, status.pk, changed_by, now, item.notes or "created")
                    for item, status in zip(new, statuses, strict=True)
                ]
                links, refs = _new_links(new, now)
        except IntegrityError:
            # Another writer created some of these keys after they were read above.
            raise ConflictError(
                "Some of these stories were created by someone else while this batch was being written; "
                "nothing was written. Send the batch again (existing stories are then updated)."
            ) from None
        insert_rows(StatusHistory, _HISTORY_COLUMNS, history)
        with inserting(StoryDependency, _LINK_COLUMNS, links):
            audit_rows = _created_audit_rows(plan, new, statuses, refs)
        audit_record_many(audit_rows)
    plan.tick(len(new))


def _initial_statuses(plan: Plan, new: list[Item]) -> list[Status]:
    default_slug = plan.project.settings.get(project_settings.DEFAULT_STATUS, DEFAULT_STATUS_SLUG)
    statuses = []
    for item in new:
        status = item.status or plan.statuses.get(default_slug)
        if status is None:
            plan.errors.add(item.index, item.key, "status", f"Unknown default status '{default_slug}'.")
            continue
        statuses.append(status)
    return statuses


def _story_row(plan: Plan, item: Item, status: Status, now) -> tuple[Any, ...]:
    # Every value was validated by clean_value() (the checks full_clean() makes);
    # uniqueness of the key was checked against the batch and the project.
    data = item.data
    estimate = data.get("estimate", "")
    points_min, points_max = services.parse_estimate(estimate)
    backlog = plan.backlog or data.get("backlog")
    epic = plan.epics[item.epic_slug] if item.epic_slug else None
    row = {
        "project_id": plan.project.pk,
        "key": item.key,
        "title": data["title"],
        "backlog_id": backlog.pk if backlog else None,
        "epic_id": epic.pk if epic else None,
        "status_id": status.pk,
        "priority": data.get("priority", Priority.MEDIUM),
        "estimate": estimate,
        "points_min": points_min,
        "points_max": points_max,
        "branch_name": data.get("branch_name", ""),
        "file_path": data.get("file_path", ""),
        "owner": data.get("owner", ""),
        "author": data.get("author", ""),
        "labels": data.get("labels", []),
        "created": data.get("created"),
        "last_updated": data.get("last_updated"),
        "body": data.get("body", ""),
        "metadata": data.get("metadata", {}),
        "version": 1,
        "rank": None,  # unranked: after the ranked ones, by key (STORY_RANK_ORDER)
        "source_repo": item.source[0] if item.source else "",
        "source_path": item.source[1] if item.source else "",
        "source_hash": item.source[2] if item.source else "",
        "created_at": now,
        "updated_at": now,
    }
    return tuple(row[column] for column in STORY_COLUMNS)


def _new_links(new: list[Item], now) -> tuple[list[tuple], list[list[str]]]:
    """The link rows of the new stories, and per story its dependencies as the audit row
    lists them."""
    links = []
    refs_per_item = []
    by_index = {item.index: item for item in new}
    for item in new:
        refs = []
        for dep in item.deps or ():
            target = dep.target_id if dep.target_id is not None else by_index[dep.batch_index].story_id
            links.append((item.story_id, target, dep.type, dep.description or "", now))
            refs.append(dep.ref if dep.type == "blocks" else f"{dep.ref} ({dep.type})")
        refs_per_item.append(refs)
    return links, refs_per_item


def _created_audit_rows(plan: Plan, new: list[Item], statuses: list[Status], refs_per_item: list[list[str]]) -> list:
    audit_rows = []
    for item, status, refs in zip(new, statuses, refs_per_item, strict=True):
        changes = {"key": (None, item.key), "title": (None, item.data["title"]), "status": (None, status.slug)}
        if refs:
            changes["dependencies"] = (None, refs)
        audit_rows.append(
            audit_row(
                actor=plan.actor,
                action=AuditAction.STORY_CREATED,
                entity_type=EntityType.STORY,
                entity_id=item.story_id,
                project_id=plan.project.pk,
                changes=changes,
                extra={"project": plan.project.slug, "key": item.key, "bulk": True},
            )
        )
    return audit_rows


# --------------------------------------------------------------------------- changed stories


def write_changed(plan: Plan) -> None:
    changed = [item for item in plan.items if item.outcome == "updated"]
    done = len(plan.items) - len(changed)
    stories = update_stories(plan, changed)
    if plan.errors.rows:
        return
    additions: list[tuple[Item, Story, Dep]] = []
    for item in changed:
        story = stories.get(item.index)
        if story is None or item.deps is None:
            continue
        additions += _remove_stale_links(plan, item, story)
    _add_links(plan, additions)
    plan.tick(done + len(changed))


def _remove_stale_links(plan: Plan, item: Item, story: Story) -> list[tuple[Item, Story, Dep]]:
    """Remove `story`'s links that `item` drops or changes; return the links to add."""
    current = plan.existing_deps.get(story.pk, {})
    wanted = {plan.target_id(dep): dep for dep in item.deps or ()}
    # Removals first, so a link that moves does not look like a cycle.
    stale = [t for t, link in current.items() if t not in wanted or not same_link(link, wanted[t])]
    if stale:
        for link in StoryDependency.objects.filter(story_id=story.pk, depends_on_id__in=stale).select_related(
            "story__project", "depends_on__project"
        ):
            services.dependency_remove(actor=plan.actor, dependency=link)
    return [(item, story, dep) for target, dep in wanted.items() if target in stale or target not in current]


def _add_links(plan: Plan, additions: list[tuple[Item, Story, Dep]]) -> None:
    targets = {plan.target_id(dep) for _, _, dep in additions}
    target_objects = Story.objects.select_related("project").in_bulk(list(targets)) if targets else {}
    for item, story, dep in additions:
        target = target_objects[plan.target_id(dep)]
        try:
            services.dependency_add(
                actor=plan.actor, story=story, depends_on=target, type=dep.type, description=dep.description or ""
            )
        except ValidationError as exc:
            plan.errors.add_validation(item.index, item.key, exc, "depends_on")
        except ApplicationError as exc:
            _add_application_error(plan, item, exc, "depends_on")


def _lock_stories(plan: Plan, changed: list[Item]) -> dict[int, Story]:
    """Lock the changed stories' rows (in id order), then read again the links of those
    whose dependency list the batch sets: what was read before the locks may be stale."""
    locked = services.lock_stories(item.story_id for item in changed)
    for story in locked.values():
        story.project = plan.project
    with_links = [item.story_id for item in changed if item.deps is not None and item.story_id in locked]
    for story_id in with_links:
        plan.existing_deps.pop(story_id, None)
    plan.existing_deps.update(read_links(with_links, reader=plan.actor))
    return locked


def _links_change(plan: Plan, item: Item, story: Story) -> bool:
    return item.deps is not None and links_differ(plan.existing_deps.get(story.pk, {}), item.deps)


def update_stories(plan: Plan, changed: list[Item]) -> dict[int, Story]:
    """Apply the changed items' fields and statuses, batched: what story_update does
    for one story (row lock, new version, points, status_history for a status move,
    workflow check unless the batch is an import, one `story.updated` audit row with
    the changes), with one UPDATE statement sent for all rows."""
    locked = _lock_stories(plan, changed)
    by_pk = {s.pk: s for s in plan.statuses.values()}
    now = timezone.now()
    done: dict[int, Story] = {}
    history, audit_rows, updated = [], [], []
    for item in changed:
        story = locked.get(item.story_id)
        if story is None:
            plan.errors.add(item.index, item.key, "key", f"Story {item.key} was deleted while this batch ran.")
            continue
        if not version_ok(plan, item, story):
            continue
        changes = _field_changes(plan, item, story)
        target = item.status
        if target is not None and target.pk != story.status_id:
            old_status = by_pk[story.status_id]
            if not _may_move(plan, item, old_status, target):
                continue
            changes["status"] = (old_status.slug, target.slug)
            story.status = target
            history.append((story.pk, old_status.pk, target.pk, _changed_by(plan.actor), now, item.notes))
        done[item.index] = story
        if not changes:
            if not _links_change(plan, item, story):
                item.outcome = "unchanged"  # changed back by someone else meanwhile
            continue
        story.version += 1
        story.updated_at = now
        updated.append(story)
        audit_rows.append(
            audit_row(
                actor=plan.actor,
                action=AuditAction.STORY_UPDATED,
                entity_type=EntityType.STORY,
                entity_id=story.pk,
                project_id=plan.project.pk,
                changes=changes,
                extra={"project": plan.project.slug, "key": story.key, "version": story.version},
            )
        )
    if plan.errors.rows:
        return done
    _write_updates(history, updated)
    audit_record_many(audit_rows)
    return done


def _field_changes(plan: Plan, item: Item, story: Story) -> dict[str, tuple[Any, Any]]:
    """Set `item`'s field values on `story` (locked); field → (old, new) of what changed."""
    data = dict(item.data)
    if plan.backlog is not None:
        data["backlog"] = plan.backlog
    if item.epic_given:
        data["epic"] = plan.epics[item.epic_slug] if item.epic_slug else None
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in data.items():
        if name in ("backlog", "epic"):
            # Compare ids: reading story.epic would cost a query per story.
            old_id = getattr(story, f"{name}_id")
            if old_id != (value.pk if value else None):
                changes[name] = (plan.related(name, old_id), value)
                setattr(story, name, value)
            continue
        old = getattr(story, name)
        if old != value:
            changes[name] = (old, value)
            setattr(story, name, value)
    if item.source is not None:
        for name, value in zip(("source_repo", "source_path", "source_hash"), item.source, strict=True):
            if getattr(story, name) != value:
                changes[name] = (getattr(story, name), value)
                setattr(story, name, value)
    if "estimate" in changes:
        points = services.parse_estimate(story.estimate)
        if (story.points_min, story.points_max) != points:
            changes["points_min"] = (story.points_min, points[0])
            changes["points_max"] = (story.points_max, points[1])
            story.points_min, story.points_max = points
    return changes


def _may_move(plan: Plan, item: Item, old_status: Status, target: Status) -> bool:
    if plan.enforce_workflow and not old_status.allows(target):
        allowed = ", ".join(old_status.allowed_transitions) or "none"
        plan.errors.add(
            item.index,
            item.key,
            "status",
            f"Cannot move from '{old_status.slug}' to '{target.slug}'; allowed: {allowed}.",
        )
        return False
    return True


def _write_updates(history: list[tuple], updated: list[Story]) -> None:
    # History first: the database's status_history trigger (stories migration 0003)
    # must see these moves as recorded (SQLite: the latest row; PostgreSQL: the marker).
    insert_rows(StatusHistory, _HISTORY_COLUMNS, history)
    if history:
        services.mark_status_history_written(None)
    fields = [Story._meta.get_field(name) for name in _UPDATED_COLUMNS]
    sql = "UPDATE {} SET {} WHERE {} = %s".format(
        connection.ops.quote_name(Story._meta.db_table),
        ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields),
        connection.ops.quote_name(Story._meta.pk.column),
    )
    params = [[f.get_db_prep_save(getattr(s, f.attname), connection) for f in fields] + [s.pk] for s in updated]
    with connection.cursor() as cursor:
        for start in range(0, len(params), 1000):
            cursor.executemany(sql, params[start : start + 1000])
        if history and connection.vendor == "postgresql":
            # The marker covered these moves only; later ones in this transaction get
            # the trigger's row as usual.
            cursor.execute("SELECT set_config('storyhub.history_written', '', true)")


def _add_application_error(plan: Plan, item: Item, exc: ApplicationError, default_field: str) -> None:
    if not exc.details:
        plan.errors.add(item.index, item.key, default_field, exc.message)
        return
    for name, reasons in exc.details.items():
        for reason in reasons if isinstance(reasons, list) else [reasons]:
            plan.errors.add(
                item.index, item.key, name, f"{exc.message} ({reason})" if reason != exc.message else reason
            )
