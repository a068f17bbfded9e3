"""Parked conflicts: park the files an import could not take (their full text kept), and
resolve them later (admin, API): keep the existing story, let the parked file win, or
import it under a new key. Each resolution writes through the bulk upsert service (the
story's own audit rows) plus one `import_conflict.resolved` audit row, in one
transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import AuditAction, EntityType
from audit.services import audit_record
from storyhub.errors import BulkValidationError, ConflictError

from ..bulk import story_bulk_upsert
from ..models import ImportConflict, ImportRun, Project, ProjectMember, Story
from ..permissions import require_project_role
from ..storyfiles import ITEM_DEFAULTS, StoryFileError, parse_story_file
from .report import FileResult

State = ImportConflict.State


def rekeyed_paths(project: Project) -> dict[tuple[str, str], str]:
    """(repository, path) → the key a parked file was imported under (resolved with a new key)."""
    rows = ImportConflict.objects.filter(project=project, state=State.REKEYED, resolved_story__isnull=False)
    return {
        (repo, path): key for repo, path, key in rows.values_list("source_repo", "source_path", "resolved_story__key")
    }


def _text(result: FileResult) -> str:
    if result.source is None:
        return ""
    try:
        return result.source.read().decode("utf-8", errors="replace")
    except (OSError, ValueError) as exc:
        return f"(the file could not be read again: {exc})"


def park_all(
    project: Project, files: Iterable[FileResult], story_ids: Mapping[str, int], run: ImportRun | None
) -> None:
    """An ImportConflict for every file of `files` with outcome conflict, unless one is
    already parked for the same file and bytes (then that one is reused; a conflict
    resolved by keeping the existing story stays resolved)."""
    parked = [f for f in files if f.outcome == "conflict"]
    if not parked:
        return
    known: dict[tuple[str, str], list[ImportConflict]] = {}
    paths = sorted({f.source_path for f in parked})
    for start in range(0, len(paths), 900):
        for conflict in ImportConflict.objects.filter(project=project, source_path__in=paths[start : start + 900]):
            known.setdefault((conflict.source_repo, conflict.source_path), []).append(conflict)
    new: list[tuple[FileResult, ImportConflict]] = []
    reused: list[tuple[FileResult, ImportConflict]] = []
    for result in parked:
        same = known.get((result.repo, result.source_path), [])
        match = next((c for c in same if c.content_hash == result.content_hash and c.state != State.REKEYED), None)
        if match is not None and match.state != State.OPEN:
            result.code = "resolved_earlier"
            result.reason = f"{result.reason} (resolved before: {match.get_state_display()}, conflict #{match.pk})"
            result.conflict_id = match.pk
            continue
        if match is None:
            match = ImportConflict(
                project=project,
                source_repo=result.repo[:500],
                source_path=result.source_path[:1000],
                content=_text(result),
                content_hash=result.content_hash,
            )
            new.append((result, match))
        else:
            reused.append((result, match))
        match.run, match.file = run, None
        match.kind, match.key, match.other_key = result.conflict_kind or "", result.key or "", result.other_key
        match.story_id = story_ids.get(result.key or "")
        match.story_source_path = (result.conflict_with or "")[:1000]
        match.message = result.reason or ""
        # The fields' own checks (lengths, choices); the foreign keys are this run's own
        # rows, so no query per conflict (the choices' check constraints hold in the database).
        match.clean_fields(exclude=_NOT_CHECKED)
    # One batched insert for the new conflicts and one update for the reused ones.
    ImportConflict.objects.bulk_create([m for _, m in new], batch_size=500)
    ImportConflict.objects.bulk_update([m for _, m in reused], _PARKED_FIELDS, batch_size=500)
    for result, match in new + reused:
        result.conflict_id = match.pk


_NOT_CHECKED = ["project", "run", "file", "story", "content", "resolved_by", "resolved_story"]
_PARKED_FIELDS = ["run", "file", "kind", "key", "other_key", "story", "story_source_path", "message"]


# --------------------------------------------------------------------------- resolving


def _import_text(*, actor, conflict: ImportConflict, key: str, source: str) -> Story:
    """Write the parked file's text as story `key` (with the parked file as its source);
    `source` (admin, api) goes into the story's audit rows."""
    try:
        parsed = parse_story_file(conflict.content, conflict.source_path)
    except StoryFileError as exc:
        raise ValidationError({"content": [f"the parked file no longer parses: {exc.reason}"]}) from None
    item: dict[str, Any] = {**ITEM_DEFAULTS, **parsed.item, "key": key}
    try:
        story_bulk_upsert(
            actor=actor,
            project=conflict.project,
            items=[item],
            sources=[(conflict.source_repo, conflict.source_path, conflict.content_hash)],
            source=source,
            enforce_workflow=False,
        )
    except BulkValidationError as exc:
        reasons = "; ".join(f"{e['field']}: {e['reason']}" for e in exc.errors)
        raise ValidationError({"key": [reasons]}) from None
    return Story.objects.get(project=conflict.project, key=key)


def _locked(conflict: ImportConflict) -> ImportConflict:
    current = ImportConflict.objects.select_for_update().select_related("project").get(pk=conflict.pk)
    if current.state != State.OPEN:
        raise ConflictError(f"Conflict #{current.pk} was already resolved ({current.get_state_display()}).")
    return current


def _resolved(*, actor, conflict: ImportConflict, state: str, story: Story | None, note: str) -> ImportConflict:
    conflict.state = state
    conflict.resolved_by = actor if getattr(actor, "is_authenticated", False) else None
    conflict.resolved_at = timezone.now()
    conflict.resolved_story = story
    conflict.save(update_fields=["state", "resolved_by", "resolved_at", "resolved_story", "replaced_content"])
    audit_record(
        actor=actor,
        action=AuditAction.IMPORT_CONFLICT_RESOLVED,
        entity_type=EntityType.IMPORT_CONFLICT,
        entity_id=conflict.pk,
        project_id=conflict.project_id,
        changes={"state": (State.OPEN.value, state)},
        extra={"project": conflict.project.slug, "key": conflict.key, "path": conflict.source_path, "note": note},
    )
    return conflict


@transaction.atomic
def import_conflict_keep_existing(*, actor, conflict: ImportConflict) -> ImportConflict:
    """Keep the story as it is; the parked file stays recorded here (and importing the
    same file again does not park it again)."""
    require_project_role(actor, conflict.project, ProjectMember.Role.MEMBER)
    conflict = _locked(conflict)
    story = Story.objects.filter(project=conflict.project, key=conflict.key).first()
    return _resolved(actor=actor, conflict=conflict, state=State.KEPT_EXISTING, story=story, note="kept existing")


@transaction.atomic
def import_conflict_parked_wins(*, actor, conflict: ImportConflict, source: str = "admin") -> ImportConflict:
    """The parked file becomes the story (and its source); what it replaced is kept:
    the story's previous fields in `replaced_content`, and its previous file as a
    resolved conflict, so importing that file again does not overwrite the winner."""
    require_project_role(actor, conflict.project, ProjectMember.Role.MEMBER)
    conflict = _locked(conflict)
    if conflict.kind == ImportConflict.Kind.HEADING_MISMATCH:
        raise ValidationError({"state": ["A heading/id conflict is resolved by choosing its key (new key)."]})
    previous = Story.objects.filter(project=conflict.project, key=conflict.key).first()
    if previous is not None:
        conflict.replaced_content = _story_snapshot(previous)
    story = _import_text(actor=actor, conflict=conflict, key=conflict.key, source=source)
    if previous is not None and previous.source_path and previous.source_path != conflict.source_path:
        ImportConflict.objects.create(
            project=conflict.project,
            run=conflict.run,
            kind=ImportConflict.Kind.KEY_OWNED,
            key=conflict.key,
            source_repo=previous.source_repo,
            source_path=previous.source_path,
            content=conflict.replaced_content,
            content_hash=previous.source_hash,
            story=story,
            story_source_path=conflict.source_path,
            message=f"replaced by {conflict.source_path} (conflict #{conflict.pk})",
            state=State.KEPT_EXISTING,
            resolved_by=actor if getattr(actor, "is_authenticated", False) else None,
            resolved_at=timezone.now(),
            resolved_story=story,
        )
    return _resolved(actor=actor, conflict=conflict, state=State.PARKED_WON, story=story, note="parked file won")


@transaction.atomic
def import_conflict_rekey(*, actor, conflict: ImportConflict, new_key: str, source: str = "admin") -> ImportConflict:
    """Import the parked file as a new story under `new_key` (later imports of that file
    keep using it)."""
    require_project_role(actor, conflict.project, ProjectMember.Role.MEMBER)
    conflict = _locked(conflict)
    new_key = (new_key or "").strip()
    if not new_key:
        raise ValidationError({"key": ["Give the new key."]})
    if Story.objects.filter(project=conflict.project, key=new_key).exists():
        raise ValidationError({"key": [f"Story {new_key} exists already; give a key no story has."]})
    story = _import_text(actor=actor, conflict=conflict, key=new_key, source=source)
    return _resolved(actor=actor, conflict=conflict, state=State.REKEYED, story=story, note=f"imported as {new_key}")


def _story_snapshot(story: Story) -> str:
    import json

    fields = ("key", "title", "status_id", "priority", "estimate", "owner", "author", "labels", "body", "metadata")
    data = {name: getattr(story, name) for name in fields}
    data.update(source_repo=story.source_repo, source_path=story.source_path, source_hash=story.source_hash)
    return json.dumps(data, default=str, ensure_ascii=False, indent=2)
