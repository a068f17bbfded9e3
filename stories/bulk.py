"""Bulk create-or-update of stories by key: the engine of `POST …/stories/bulk/` and of
the story-file importer (stories.importer).

This is a service like those in stories.services (same rules: one transaction, role
checks, `full_clean()`, an audit row for every write, a status_history row for every
status a story takes). It exists apart because it must be fast for 10,000 items:

- everything the items refer to (existing stories, their dependencies, statuses, epics,
  backlogs, dependency targets) is read up front in a few batched queries, and every
  item is validated in memory, so a bad batch is refused before anything is written and
  every bad item is reported at once;
- new stories are written with batched inserts: the stories, their first status_history
  rows, their `story.created` audit rows (which list the story's dependencies) and
  their dependency rows. Cycles among the new links are checked in memory (new stories
  have no dependents outside the batch, so a cycle through them must lie in the batch);
- changed stories are locked (SELECT … FOR UPDATE) and updated together: what
  story_update does for one story (new version, points, workflow check unless the batch
  is an import, a status_history row for a status move, one `story.updated` audit row
  with the changes), sent as one batched UPDATE; their changed links go through
  dependency_remove / dependency_add one by one (cycle checks against the database);
- unchanged stories are compared in memory and write nothing (no audit rows).

Any failing item fails the whole batch with BulkValidationError (nothing is written);
`dry_run=True` runs every step and then rolls the transaction back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from audit.services import audit_record_many, audit_row
from storyhub.errors import ApplicationError, BulkValidationError, ConflictError
from storyhub.fastinsert import insert_rows

from . import services
from .models import (
    DEFAULT_STATUS_SLUG,
    Backlog,
    Epic,
    Priority,
    Project,
    ProjectMember,
    Status,
    StatusHistory,
    Story,
    StoryDependency,
    story_key_validator,
)
from .permissions import has_project_role, require_project_role

# Fields an item may carry (besides "key"). "depends_on" is the story's complete list of
# dependencies: links missing from it are removed; leave it out to keep the links as they are.
ITEM_FIELDS = (
    "title",
    "status",
    "notes",
    "backlog",
    "epic",
    "priority",
    "estimate",
    "branch_name",
    "file_path",
    "owner",
    "author",
    "labels",
    "created",
    "last_updated",
    "body",
    "metadata",
    "depends_on",
)
_TEXT_LIMITS = {"title": 500, "estimate": 32, "branch_name": 255, "file_path": 1000, "owner": 150, "author": 150}
_PLAIN_FIELDS = ("title", "priority", "estimate", "branch_name", "file_path", "owner", "author", "labels")
_PLAIN_FIELDS += ("created", "last_updated", "body", "metadata")
_CHUNK = 900  # stays under SQLite's 999 bound parameters per query
_STORY_COLUMNS = (
    "project_id",
    "key",
    "title",
    "backlog_id",
    "epic_id",
    "status_id",
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
_DEPENDENCY_TYPES = frozenset(StoryDependency.Type.values)
_ALLOWED_KEYS = frozenset({"key", "dependencies", *ITEM_FIELDS})
_KEY_RE = re.compile(story_key_validator.regex.pattern)
_PRIORITY_WORDS = {label: value for value, label in Priority.choices}
_UPDATED_COLUMNS = tuple(c for c in _STORY_COLUMNS if c not in ("project_id", "key", "created_at"))
_UPDATED_COLUMNS = tuple(c.removesuffix("_id") for c in _UPDATED_COLUMNS)
_MAX_POINTS = 99999  # points_min / points_max are DECIMAL(7, 2)

# Status words seen in story files that are not slugs of the default workflow.
STATUS_ALIASES = {
    "todo": "ready",
    "to_do": "ready",
    "open": "backlog",
    "new": "draft",
    "wip": "in_progress",
    "doing": "in_progress",
    "started": "in_progress",
    "in_review": "review",
    "ready_for_review": "review",
    "code_review": "review",
    "complete": "done",
    "completed": "done",
    "closed": "done",
    "finished": "done",
    "canceled": "cancelled",
}

_CATEGORY_HINTS = (
    ("cancel", "cancelled"),
    ("done", "completed"),
    ("complete", "completed"),
    ("closed", "completed"),
    ("accepted", "completed"),
    ("progress", "started"),
    ("review", "started"),
    ("active", "started"),
    ("ready", "unstarted"),
)


def normalize_status_word(word: str) -> str:
    """'Ready for Review' → 'ready_for_review', '**Done**' → 'done'."""
    text = re.sub(r"[*_`]+", " ", str(word)).strip().lower()
    return re.sub(r"[\s\-]+", "_", text)


def clean_value(name: str, value: Any) -> Any:
    """The stored value of a plain story field as given in an item (ValidationError if bad)."""
    if name == "priority":
        if isinstance(value, str) and value in _PRIORITY_WORDS:
            return _PRIORITY_WORDS[value]
        return services._resolve_priority(value)
    if name in _TEXT_LIMITS or name == "body":
        if value is None:
            if name == "title":
                raise ValidationError("Give a title.")
            return ""
        if isinstance(value, bool | list | dict):
            raise ValidationError("Give text.")
        text = value if isinstance(value, str) else str(value)
        if name == "title" and not text.strip():
            raise ValidationError("Give a title.")
        limit = _TEXT_LIMITS.get(name)
        if limit and len(text) > limit:
            raise ValidationError(f"At most {limit} characters (this has {len(text)}).")
        if name == "estimate" and (services.parse_estimate(text)[1] or 0) > _MAX_POINTS:
            raise ValidationError(f"At most {_MAX_POINTS} points.")
        if "\x00" in text:
            raise ValidationError("NUL characters are not allowed.")
        return text
    if name == "labels":
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(x, str) for x in value):
            raise ValidationError("Give a list of strings.")
        return list(value)
    if name in ("created", "last_updated"):
        if value is None or value == "":
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ValidationError(f"'{value}' is not a date (use YYYY-MM-DD).") from None
    if name == "metadata":
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError("Give an object (a mapping of keys to values).")
        return jsonable(value)
    raise AssertionError(name)


def jsonable(value: Any, _depth: int = 0) -> Any:
    """`value` as JSON can store it: YAML dates become ISO text; anything JSON cannot
    hold (binary, NaN, sets, very deep nesting) is a ValidationError."""
    if _depth > 50:
        raise ValidationError("Nested too deeply.")
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError("NUL characters are not allowed.")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError("NaN and infinity cannot be stored.")
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    raise ValidationError(f"A {type(value).__name__} value cannot be stored as JSON.")


def match_status(word: str, statuses: Mapping[str, Status], by_name: Mapping[str, Status]) -> Status | None:
    """The workflow status a word names: its slug, its name, or a known alias."""
    if word in statuses:
        return statuses[word]
    norm = normalize_status_word(word)
    return statuses.get(norm) or by_name.get(norm) or statuses.get(STATUS_ALIASES.get(norm, ""))


# --------------------------------------------------------------------------- results


@dataclass
class BulkResult:
    items: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.items if item["outcome"] == outcome)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.count("created"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "items": self.items,
        }


class _DryRun(Exception):
    """Raised at the end of a dry run to roll its transaction back."""


@dataclass
class _Dep:
    ref: str
    type: str
    description: str | None  # None: not given, an existing link keeps its description
    batch_index: int | None = None  # the target is an item of this batch
    target_id: int | None = None  # the target is an existing story


@dataclass
class _Item:
    index: int
    key: str
    data: dict[str, Any]  # normalized field values given by the item (no status / deps)
    status: Status | None = None
    status_slug: str | None = None  # a status to create (project setting)
    epic_slug: str | None = None
    epic_name: str = ""
    epic_given: bool = False
    deps: list[_Dep] | None = None
    notes: str = ""
    existing: Story | None = None
    outcome: str = "unchanged"
    story_id: int | None = None


class _Errors:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.failed: set[int] = set()

    def add(self, index: int, key: Any, field_name: str, reason: str) -> None:
        self.rows.append(
            {"index": index, "key": key if isinstance(key, str) else None, "field": field_name, "reason": reason}
        )
        self.failed.add(index)

    def add_validation(self, index: int, key: Any, exc: ValidationError, default_field: str) -> None:
        if hasattr(exc, "error_dict"):
            for name, reasons in exc.message_dict.items():
                for reason in reasons:
                    self.add(index, key, default_field if name == "__all__" else name, reason)
        else:
            for reason in exc.messages:
                self.add(index, key, default_field, reason)


# --------------------------------------------------------------------------- the service


def story_bulk_upsert(
    *,
    actor,
    project: Project,
    items: Sequence[Mapping[str, Any]],
    dry_run: bool = False,
    source: str | None = None,
    backlog: Backlog | None = None,
    enforce_workflow: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> BulkResult:
    """Create or update `items` (dicts with "key" and the ITEM_FIELDS) in `project`, all
    or nothing. `backlog` puts every story of the batch into that backlog. With
    `enforce_workflow=False` (imports) a changed status is taken as written, without
    checking the workflow's allowed transitions. `source` (e.g. "import") is recorded in
    the audit rows. Raises BulkValidationError listing every bad item."""
    require_project_role(actor, project, ProjectMember.Role.MEMBER)
    if source is not None:
        from audit.context import write_context

        with write_context(source=source):
            return story_bulk_upsert(
                actor=actor,
                project=project,
                items=items,
                dry_run=dry_run,
                backlog=backlog,
                enforce_workflow=enforce_workflow,
                progress=progress,
            )
    try:
        with transaction.atomic():
            result = _Upsert(actor, project, items, backlog, enforce_workflow, progress).run()
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    result.dry_run = dry_run
    return result


class _Upsert:
    def __init__(self, actor, project, items, backlog, enforce_workflow, progress):
        self.actor = actor
        self.project = project
        self.raw_items = list(items)
        self.backlog = backlog
        self.enforce_workflow = enforce_workflow
        self.progress = progress
        self.errors = _Errors()
        self.items: list[_Item] = []
        self.slug_cache: dict[str, str] = {}

    # ----------------------------------------------------------------- orchestration

    def run(self) -> BulkResult:
        if self.backlog is not None and self.backlog.project_id != self.project.pk:
            raise ValidationError({"backlog": [f"Backlog '{self.backlog.slug}' belongs to another project."]})
        self._load_workflow()
        self._parse_items()
        self._load_existing()
        self._resolve_dependencies()
        self._check_batch_cycles()
        self._classify()
        self._raise_if_errors()
        self._create_statuses_and_epics()
        self._write_new()
        self._write_changed()
        self._raise_if_errors()
        outcomes = {item.index: item for item in self.items}
        return BulkResult(
            items=[
                {"index": i, "key": outcomes[i].key, "outcome": outcomes[i].outcome} for i in range(len(self.raw_items))
            ]
        )

    def _raise_if_errors(self) -> None:
        if self.errors.rows:
            rows = sorted(self.errors.rows, key=lambda r: r["index"])
            raise BulkValidationError(rows, total=len(self.raw_items))

    def _tick(self, done: int) -> None:
        if self.progress is not None:
            self.progress(done, len(self.raw_items))

    # ----------------------------------------------------------------- reading

    def _load_workflow(self) -> None:
        self.statuses = {s.slug: s for s in Status.objects.filter(project=self.project)}
        self.status_by_name = {normalize_status_word(s.name): s for s in self.statuses.values()}
        self.epics = {e.slug: e for e in Epic.objects.filter(project=self.project)}
        self.backlogs: dict[str, Backlog] | None = None  # read only when an item names one
        self.create_missing_statuses = bool(self.project.settings.get("create_missing_statuses"))
        self.new_statuses: dict[str, str] = {}  # slug → name, created before the writes

    def _backlog(self, slug: str) -> Backlog | None:
        if self.backlogs is None:
            self.backlogs = {b.slug: b for b in Backlog.objects.filter(project=self.project)}
            for found in self.backlogs.values():
                found.project = self.project  # str(backlog) in audit rows reads the project
        return self.backlogs.get(slug)

    def _status(self, word: Any) -> tuple[Status | None, str | None, str | None]:
        """(status, slug to create, error) for a status as written."""
        if isinstance(word, Status):
            return word, None, None
        if not isinstance(word, str) or not word.strip():
            return None, None, "Give the status as text (a slug of the project's workflow)."
        found = match_status(word, self.statuses, self.status_by_name)
        if found is not None:
            return found, None, None
        norm = normalize_status_word(word)
        slug = slugify(norm).replace("-", "_")[:50]
        if self.create_missing_statuses and slug:
            self.new_statuses.setdefault(slug, str(word).strip()[:100])
            return None, slug, None
        allowed = ", ".join(self.statuses)
        return None, None, f"Unknown status '{word}'; this project's workflow has: {allowed}."

    def _parse_items(self) -> None:
        seen: dict[str, list[int]] = defaultdict(list)
        for index, raw in enumerate(self.raw_items):
            item = self._parse_item(index, raw)
            if item is not None:
                self.items.append(item)
                seen[item.key].append(index)
        for key, indexes in seen.items():
            if len(indexes) > 1:
                where = ", ".join(str(i) for i in indexes)
                for index in indexes:
                    self.errors.add(index, key, "key", f"Duplicate key '{key}' in this batch (items {where}).")
        self.by_key = {item.key: item for item in self.items if len(seen[item.key]) == 1}

    def _parse_item(self, index: int, raw: Any) -> _Item | None:
        errors = self.errors
        if not isinstance(raw, Mapping):
            errors.add(index, None, "non_field_errors", "Give an object with a key and the story's fields.")
            return None
        key = raw.get("key")
        if not _ALLOWED_KEYS.issuperset(raw):
            for name in sorted(str(n) for n in set(raw) - _ALLOWED_KEYS):
                errors.add(index, key, name, "Unknown field.")
        if not isinstance(key, str) or not key.strip():
            errors.add(index, key, "key", "Give the story's key (e.g. INF-013).")
            return None
        if len(key) > 64 or ":" in key or not _KEY_RE.match(key):
            errors.add(index, key, "key", f"'{key[:80]}' is not a valid key: {story_key_validator.message}")
            return None
        try:
            services._check_key(key)
        except ValidationError as exc:
            errors.add_validation(index, key, exc, "key")
            return None
        before = len(errors.rows)
        data: dict[str, Any] = {}
        for name in _PLAIN_FIELDS:
            if name in raw:
                try:
                    data[name] = clean_value(name, raw[name])
                except ValidationError as exc:
                    errors.add_validation(index, key, exc, name)
        item = _Item(index=index, key=key, data=data)
        if "notes" in raw:
            item.notes = raw["notes"] if isinstance(raw["notes"], str) else str(raw["notes"])
        if raw.get("status") is not None:
            item.status, item.status_slug, problem = self._status(raw["status"])
            if problem:
                errors.add(index, key, "status", problem)
        if "backlog" in raw:
            value = raw["backlog"]
            if value in (None, ""):
                data["backlog"] = None
            elif isinstance(value, Backlog) or (isinstance(value, str) and self._backlog(value) is not None):
                data["backlog"] = value if isinstance(value, Backlog) else self._backlog(value)
            else:
                errors.add(index, key, "backlog", f"No backlog '{value}' in project '{self.project.slug}'.")
        if "epic" in raw:
            item.epic_given = True
            value = raw["epic"]
            if value not in (None, ""):
                text = str(value).strip()
                slug = text if text in self.epics else self._slugify(text)
                if not slug:
                    errors.add(index, key, "epic", f"'{text}' cannot be used as an epic name.")
                item.epic_slug, item.epic_name = slug, text[:200]
        if "depends_on" in raw and "dependencies" in raw:
            errors.add(index, key, "dependencies", "Give depends_on or dependencies (the same list), not both.")
        elif "depends_on" in raw or "dependencies" in raw:
            # "dependencies" is the story files' name for the same list.
            deps = raw["depends_on"] if "depends_on" in raw else raw["dependencies"]
            item.deps = self._parse_deps(index, key, deps)
        return item if len(errors.rows) == before else _Item(index=index, key=key, data={})

    def _slugify(self, text: str) -> str:
        if text not in self.slug_cache:
            self.slug_cache[text] = slugify(text)[:100]
        return self.slug_cache[text]

    def _parse_deps(self, index: int, key: str, value: Any) -> list[_Dep]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            self.errors.add(index, key, "depends_on", 'Give a list of keys ("KEY" or "other-project:KEY").')
            return []
        deps: dict[str, _Dep] = {}
        own = self.project.slug + ":"
        for entry in value:
            kind, description = "blocks", None
            if type(entry) is str:
                ref = entry
            elif isinstance(entry, Mapping):
                ref = entry.get("depends_on", entry.get("key"))
                kind = entry.get("type", kind)
                description = entry.get("description")
            else:
                ref = entry
            if isinstance(ref, int | float) and not isinstance(ref, bool):
                ref = str(ref)
            if not isinstance(ref, str) or not ref.strip():
                self.errors.add(index, key, "depends_on", f"'{ref}' is not a story key.")
                continue
            ref = ref.strip()
            if kind not in _DEPENDENCY_TYPES:
                self.errors.add(index, key, "depends_on", f"Unknown dependency type '{kind}' for {ref}.")
                continue
            if ref.startswith(own):
                ref = ref[len(own) :]
            if ref == key:
                self.errors.add(index, key, "depends_on", "A story cannot depend on itself.")
                continue
            if ref not in deps:
                deps[ref] = _Dep(ref=ref, type=kind, description=None if description is None else str(description))
        return list(deps.values())

    def _load_existing(self) -> None:
        keys = set(self.by_key)
        for item in self.items:
            for dep in item.deps or ():
                if ":" not in dep.ref:
                    keys.add(dep.ref)
        self.existing: dict[str, Story] = {}
        if len(keys) > _CHUNK:
            # Large batches: one cheap query for the project's keys, then whole rows only
            # for the keys that exist (none at all for a first import).
            keys &= set(Story.objects.filter(project=self.project).values_list("key", flat=True))
        keys_list = sorted(keys)
        for start in range(0, len(keys_list), _CHUNK):
            for story in Story.objects.filter(project=self.project, key__in=keys_list[start : start + _CHUNK]):
                story.project = self.project  # services read story.project.slug
                self.existing[story.key] = story
        # Links of the stories this batch updates, for the comparison and the diff.
        self.existing_deps: dict[int, dict[int, tuple[str, str]]] = defaultdict(dict)
        ids = [self.existing[item.key].pk for item in self.items if item.deps is not None and item.key in self.existing]
        for start in range(0, len(ids), _CHUNK):
            rows = StoryDependency.objects.filter(story_id__in=ids[start : start + _CHUNK]).values_list(
                "story_id", "depends_on_id", "type", "description"
            )
            for story_id, target_id, kind, description in rows:
                self.existing_deps[story_id][target_id] = (kind, description)

    def _resolve_dependencies(self) -> None:
        foreign: dict[str, set[str]] = defaultdict(set)
        for item in self.items:
            for dep in item.deps or ():
                if ":" in dep.ref:
                    slug, key = dep.ref.split(":", 1)
                    foreign[slug].add(key)
        found: dict[str, int] = {}
        self.labels: dict[int, str] = {}
        if foreign:
            projects = {p.slug: p for p in Project.objects.filter(slug__in=list(foreign))}
            for slug, keys in foreign.items():
                other = projects.get(slug)
                if other is None or (
                    self.actor is not None and not has_project_role(self.actor, other, ProjectMember.Role.VIEWER)
                ):
                    continue  # answered exactly like a story that does not exist
                keys_list = sorted(keys)
                for start in range(0, len(keys_list), _CHUNK):
                    for pk, key in Story.objects.filter(
                        project=other, key__in=keys_list[start : start + _CHUNK]
                    ).values_list("pk", "key"):
                        found[f"{slug}:{key}"] = pk
                        self.labels[pk] = f"{slug}:{key}"
        for story in self.existing.values():
            self.labels[story.pk] = story.key
        for item in self.items:
            for dep in item.deps or ():
                if dep.ref in self.by_key and self.by_key[dep.ref].key not in self.existing:
                    dep.batch_index = self.by_key[dep.ref].index
                elif dep.ref in self.existing:
                    dep.target_id = self.existing[dep.ref].pk
                elif dep.ref in found:
                    dep.target_id = found[dep.ref]
                elif dep.ref not in self.by_key:
                    self.errors.add(
                        item.index,
                        item.key,
                        "depends_on",
                        f"Unknown dependency '{dep.ref}': no such story in this batch or in the project"
                        + (" (or you cannot see it)." if ":" in dep.ref else "."),
                    )

    def _check_batch_cycles(self) -> None:
        """Cycles among the batch's own `blocks` links, found before anything is written.
        Cycles through links outside the batch are caught by dependency_add."""
        graph: dict[str, list[str]] = {}
        for item in self.items:
            if item.deps is None or item.key not in self.by_key:
                continue
            graph[item.key] = [d.ref for d in item.deps if d.type == "blocks" and d.ref in self.by_key]
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        reported: set[str] = set()
        for root in graph:
            if root in state:
                continue
            stack: list[tuple[str, int]] = [(root, 0)]
            path: list[str] = []
            while stack:
                node, pos = stack.pop()
                if pos == 0:
                    state[node] = 1
                    path.append(node)
                targets = graph.get(node, [])
                if pos < len(targets):
                    stack.append((node, pos + 1))
                    nxt = targets[pos]
                    if state.get(nxt) == 1:
                        cycle = [*path[path.index(nxt) :], nxt]
                        text = " → ".join(cycle)
                        for key in cycle[:-1]:
                            if key not in reported:
                                reported.add(key)
                                self.errors.add(self.by_key[key].index, key, "depends_on", f"Dependency cycle: {text}.")
                    elif nxt not in state:
                        stack.append((nxt, 0))
                else:
                    state[node] = 2
                    path.pop()

    def _classify(self) -> None:
        for item in self.items:
            if item.index in self.errors.failed:
                continue
            story = self.existing.get(item.key)
            if story is None:
                if "title" not in item.data:
                    self.errors.add(item.index, item.key, "title", "A new story needs a title.")
                item.outcome = "created"
                continue
            item.existing = story
            item.story_id = story.pk
            item.outcome = "updated" if self._differs(item, story) else "unchanged"

    def _differs(self, item: _Item, story: Story) -> bool:
        for name, value in item.data.items():
            current = getattr(story, name)
            if name == "backlog":
                if (value.pk if value else None) != story.backlog_id:
                    return True
            elif current != value:
                return True
        if self.backlog is not None and story.backlog_id != self.backlog.pk:
            return True
        if item.status_slug is not None or (item.status is not None and item.status.pk != story.status_id):
            return True
        if item.epic_given:
            epic = self.epics.get(item.epic_slug) if item.epic_slug else None
            if item.epic_slug and epic is None:
                return True
            if (epic.pk if epic else None) != story.epic_id:
                return True
        if item.deps is not None:
            current_deps = self.existing_deps.get(story.pk, {})
            if len(current_deps) != len(item.deps):
                return True
            for dep in item.deps:
                if dep.target_id is None or not _same_link(current_deps.get(dep.target_id), dep):
                    return True
        return False

    # ----------------------------------------------------------------- writing

    def _create_statuses_and_epics(self) -> None:
        for slug, name in self.new_statuses.items():
            category = next((cat for hint, cat in _CATEGORY_HINTS if hint in slug), "backlog")
            order = max((s.order for s in self.statuses.values()), default=0) + 10
            self.statuses[slug] = services.status_create(
                actor=self.actor, project=self.project, slug=slug, name=name, category=category, order=order
            )
        for item in self.items:
            if item.status_slug:
                item.status = self.statuses[item.status_slug]
            if item.epic_slug and item.epic_slug not in self.epics and item.outcome != "unchanged":
                try:
                    self.epics[item.epic_slug] = services.epic_create(
                        actor=self.actor, project=self.project, slug=item.epic_slug, name=item.epic_name
                    )
                except ValidationError as exc:
                    self.errors.add_validation(item.index, item.key, exc, "epic")
        self._raise_if_errors()

    def _write_new(self) -> None:
        new = [item for item in self.items if item.outcome == "created"]
        if not new:
            return
        default_slug = self.project.settings.get("default_status", DEFAULT_STATUS_SLUG)
        now = timezone.now()
        rows = []
        statuses = []
        for item in new:
            status = item.status or self.statuses.get(default_slug)
            if status is None:
                self.errors.add(item.index, item.key, "status", f"Unknown default status '{default_slug}'.")
                continue
            statuses.append(status)
            data = item.data
            estimate = data.get("estimate", "")
            points_min, points_max = services.parse_estimate(estimate)
            backlog = self.backlog or data.get("backlog")
            epic = self.epics[item.epic_slug] if item.epic_slug else None
            # Every value was validated by clean_value() (the checks full_clean() makes);
            # uniqueness of the key was checked against the batch and the project.
            rows.append(
                (
                    self.project.pk,
                    item.key,
                    data["title"],
                    backlog.pk if backlog else None,
                    epic.pk if epic else None,
                    status.pk,
                    data.get("priority", Priority.MEDIUM),
                    estimate,
                    points_min,
                    points_max,
                    data.get("branch_name", ""),
                    data.get("file_path", ""),
                    data.get("owner", ""),
                    data.get("author", ""),
                    data.get("labels", []),
                    data.get("created"),
                    data.get("last_updated"),
                    data.get("body", ""),
                    data.get("metadata", {}),
                    1,
                    now,
                    now,
                )
            )
        self._raise_if_errors()
        try:
            ids = insert_rows(Story, _STORY_COLUMNS, rows, with_ids=True)
        except IntegrityError:
            # Another writer created some of these keys after they were read above.
            raise ConflictError(
                "Some of these stories were created by someone else while this batch was being written; "
                "nothing was written. Send the batch again (existing stories are then updated)."
            ) from None
        for item, pk in zip(new, ids, strict=True):
            item.story_id = pk
            self.labels[pk] = item.key
        changed_by = self.actor.pk if getattr(self.actor, "is_authenticated", False) else None
        insert_rows(
            StatusHistory,
            ("story_id", "old_status_id", "new_status_id", "changed_by_id", "changed_at", "notes"),
            [
                (item.story_id, None, status.pk, changed_by, now, item.notes or "created")
                for item, status in zip(new, statuses, strict=True)
            ],
        )
        links = []
        audit_rows = []
        by_index = {item.index: item for item in new}
        for item, status in zip(new, statuses, strict=True):
            refs = []
            for dep in item.deps or ():
                target = dep.target_id if dep.target_id is not None else by_index[dep.batch_index].story_id
                links.append((item.story_id, target, dep.type, dep.description or "", now))
                refs.append(dep.ref if dep.type == "blocks" else f"{dep.ref} ({dep.type})")
            changes = {"key": (None, item.key), "title": (None, item.data["title"]), "status": (None, status.slug)}
            if refs:
                changes["dependencies"] = (None, refs)
            audit_rows.append(
                audit_row(
                    actor=self.actor,
                    action="story.created",
                    entity_type="story",
                    entity_id=item.story_id,
                    changes=changes,
                    extra={"project": self.project.slug, "key": item.key, "bulk": True},
                )
            )
        if any(link[2] == "blocks" for link in links):
            services._lock_blocks_graph()
        insert_rows(StoryDependency, ("story_id", "depends_on_id", "type", "description", "created_at"), links)
        audit_record_many(audit_rows)
        self._tick(len(new))

    def _write_changed(self) -> None:
        changed = [item for item in self.items if item.outcome == "updated"]
        done = len(self.items) - len(changed)
        additions: list[tuple[_Item, Story, _Dep]] = []
        stories = self._update_stories(changed)
        if self.errors.rows:
            return
        for item in changed:
            story = stories.get(item.index)
            if story is None:
                continue
            if item.deps is None:
                continue
            current = self.existing_deps.get(story.pk, {})
            wanted = {}
            for dep in item.deps:
                target = dep.target_id if dep.target_id is not None else self.by_key[dep.ref].story_id
                wanted[target] = dep
            # Removals first, so a link that moves does not look like a cycle.
            stale = [t for t, link in current.items() if t not in wanted or not _same_link(link, wanted[t])]
            if stale:
                for link in StoryDependency.objects.filter(story_id=story.pk, depends_on_id__in=stale).select_related(
                    "story__project", "depends_on__project"
                ):
                    services.dependency_remove(actor=self.actor, dependency=link)
            for target, dep in wanted.items():
                if target in stale or target not in current:
                    additions.append((item, story, dep))
        targets = {dep.target_id or self.by_key[dep.ref].story_id for _, _, dep in additions}
        target_objects = Story.objects.select_related("project").in_bulk(list(targets)) if targets else {}
        for item, story, dep in additions:
            target = target_objects[dep.target_id or self.by_key[dep.ref].story_id]
            try:
                services.dependency_add(
                    actor=self.actor, story=story, depends_on=target, type=dep.type, description=dep.description or ""
                )
            except ValidationError as exc:
                self.errors.add_validation(item.index, item.key, exc, "depends_on")
            except ApplicationError as exc:
                self._add_application_error(item, exc, "depends_on")
        self._tick(done + len(changed))

    def _update_stories(self, changed: list[_Item]) -> dict[int, Story]:
        """Apply the changed items' fields and statuses, batched: what story_update does
        for one story (row lock, new version, points, status_history for a status move,
        workflow check unless the batch is an import, one `story.updated` audit row with
        the changes), with one UPDATE statement sent for all rows."""
        ids = [item.story_id for item in changed]
        locked: dict[int, Story] = {}
        for start in range(0, len(ids), _CHUNK):
            for story in Story.objects.select_for_update().filter(pk__in=ids[start : start + _CHUNK]):
                story.project = self.project
                locked[story.pk] = story
        by_pk = {s.pk: s for s in self.statuses.values()}
        now = timezone.now()
        changed_by = self.actor.pk if getattr(self.actor, "is_authenticated", False) else None
        done: dict[int, Story] = {}
        history, audit_rows, updated = [], [], []
        for item in changed:
            story = locked.get(item.story_id)
            if story is None:
                self.errors.add(item.index, item.key, "key", f"Story {item.key} was deleted while this batch ran.")
                continue
            data = dict(item.data)
            if self.backlog is not None:
                data["backlog"] = self.backlog
            if item.epic_given:
                data["epic"] = self.epics[item.epic_slug] if item.epic_slug else None
            changes: dict[str, tuple[Any, Any]] = {}
            for name, value in data.items():
                if name in ("backlog", "epic"):
                    # Compare ids: reading story.epic would cost a query per story.
                    old_id = getattr(story, f"{name}_id")
                    if old_id != (value.pk if value else None):
                        changes[name] = (self._related(name, old_id), value)
                        setattr(story, name, value)
                    continue
                old = getattr(story, name)
                if old != value:
                    changes[name] = (old, value)
                    setattr(story, name, value)
            if "estimate" in changes:
                points = services.parse_estimate(story.estimate)
                if (story.points_min, story.points_max) != points:
                    changes["points_min"] = (story.points_min, points[0])
                    changes["points_max"] = (story.points_max, points[1])
                    story.points_min, story.points_max = points
            target = item.status
            if target is not None and target.pk != story.status_id:
                old_status = by_pk[story.status_id]
                if self.enforce_workflow and not old_status.allows(target):
                    allowed = ", ".join(old_status.allowed_transitions) or "none"
                    self.errors.add(
                        item.index,
                        item.key,
                        "status",
                        f"Cannot move from '{old_status.slug}' to '{target.slug}'; allowed: {allowed}.",
                    )
                    continue
                changes["status"] = (old_status.slug, target.slug)
                story.status = target
                history.append((story.pk, old_status.pk, target.pk, changed_by, now, item.notes))
            if not changes:
                item.outcome = "unchanged"  # changed back by someone else meanwhile
                done[item.index] = story
                continue
            story.version += 1
            story.updated_at = now
            updated.append(story)
            done[item.index] = story
            audit_rows.append(
                audit_row(
                    actor=self.actor,
                    action="story.updated",
                    entity_type="story",
                    entity_id=story.pk,
                    changes=changes,
                    extra={"project": self.project.slug, "key": story.key, "version": story.version},
                )
            )
        if self.errors.rows:
            return done
        # History first: the database's status_history trigger (stories migration 0003)
        # must see these moves as recorded (SQLite: the latest row; PostgreSQL: the marker).
        insert_rows(
            StatusHistory,
            ("story_id", "old_status_id", "new_status_id", "changed_by_id", "changed_at", "notes"),
            history,
        )
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
        audit_record_many(audit_rows)
        return done

    def _related(self, name: str, pk: int | None) -> Backlog | Epic | None:
        """The backlog / epic with id `pk`, from what this batch has read already."""
        if pk is None:
            return None
        known = (self._backlog_map() if name == "backlog" else self.epics).values()
        found = next((obj for obj in known if obj.pk == pk), None)
        return found or (Backlog if name == "backlog" else Epic).objects.filter(pk=pk).first()

    def _backlog_map(self) -> dict[str, Backlog]:
        self._backlog("")
        return self.backlogs or {}

    def _add_application_error(self, item: _Item, exc: ApplicationError, default_field: str) -> None:
        if exc.details:
            for name, reasons in exc.details.items():
                for reason in reasons if isinstance(reasons, list) else [reasons]:
                    self.errors.add(
                        item.index, item.key, name, f"{exc.message} ({reason})" if reason != exc.message else reason
                    )
        else:
            self.errors.add(item.index, item.key, default_field, exc.message)


def _same_link(current: tuple[str, str] | None, dep: _Dep) -> bool:
    if current is None:
        return False
    kind, description = current
    return kind == dep.type and (dep.description is None or dep.description == description)
