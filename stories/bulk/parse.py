"""Parse a batch: raw items (dicts from JSON, story files or CSV) → typed items and
per-item errors. Pure: it reads no database; the project's workflow, epics and backlogs
come in as a `Lookup` that the planner read beforehand."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.text import slugify

from storyhub.validators import text_problems

from .. import services
from ..models import Backlog, Epic, Status, Story, StoryDependency, story_key_validator
from .values import ITEM_FIELDS, PLAIN_FIELDS, clean_value, match_status, normalize_status_word

DEPENDENCY_TYPES = frozenset(StoryDependency.Type.values)
# "version": the version the caller read; a stale one fails the item (plan / apply check it).
ALLOWED_KEYS = frozenset({"key", "dependencies", "version", *ITEM_FIELDS})
_KEY_RE = re.compile(story_key_validator.regex.pattern)
_KEY_MAX_LENGTH = Story._meta.get_field("key").max_length


@dataclass
class Dep:
    ref: str
    type: str
    description: str | None  # None: not given, an existing link keeps its description
    batch_index: int | None = None  # the target is an item of this batch
    target_id: int | None = None  # the target is an existing story


@dataclass
class Item:
    index: int
    key: str
    data: dict[str, Any]  # normalized field values given by the item (no status / deps)
    status: Status | None = None
    status_slug: str | None = None  # a status to create (project setting)
    epic_slug: str | None = None
    epic_name: str = ""
    epic_given: bool = False
    deps: list[Dep] | None = None
    notes: str = ""
    expected_version: int | None = None  # the version the caller read (None: not checked)
    existing: Story | None = None  # the story this item updates (set by the planner)
    outcome: str = "unchanged"
    story_id: int | None = None
    # (repository, path, content hash) of the file the item came from (stories.importer);
    # None: not a file, the story's source fields are left as they are.
    source: tuple[str, str, str] | None = None


class Errors:
    """Every problem of the batch, one row per (item, field, reason)."""

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


@dataclass(frozen=True)
class Lookup:
    """What parsing needs to know about the project, read beforehand."""

    project_slug: str
    statuses: Mapping[str, Status]
    status_by_name: Mapping[str, Status]
    epics: Mapping[str, Epic]
    backlogs: Mapping[str, Backlog]
    create_missing_statuses: bool = False
    priority_scale: Mapping[int, int] | None = None  # models.priority_scale of the project


@dataclass
class Parsed:
    items: list[Item]
    by_key: dict[str, Item]  # items whose key is unique in the batch
    new_statuses: dict[str, str]  # slug → name, statuses to create before the writes
    errors: Errors = field(default_factory=Errors)


@dataclass
class Prepared:
    """The pure part of parsing one raw item, done beforehand (stories.importer does it
    while the parse workers read the next files): its text problems, and its plain
    fields' values and errors on the priority scale `scale`."""

    problems: dict[str, str]
    data: dict[str, Any]
    field_errors: list[tuple[str, ValidationError]]
    scale: Mapping[int, int] | None


def prepare_item(raw: Mapping[str, Any], scale: Mapping[int, int] | None) -> Prepared:
    problems = text_problems(raw)
    data: dict[str, Any] = {}
    field_errors: list[tuple[str, ValidationError]] = []
    if not problems:
        for name in PLAIN_FIELDS:
            if name in raw:
                try:
                    data[name] = clean_value(name, raw[name], priority_scale=scale)
                except ValidationError as exc:
                    field_errors.append((name, exc))
    return Prepared(problems, data, field_errors, scale)


def parse_items(
    raw_items: Sequence[Any],
    lookup: Lookup,
    errors: Errors | None = None,
    prepared: Sequence[Prepared | None] | None = None,
) -> Parsed:
    """Parse every raw item; an item with any problem is kept as a blank item (its key
    still counts for duplicates) and its problems are added to `errors`. `prepared`
    (per item, or None) is what prepare_item made of it; one made on another priority
    scale than the lookup's is done again."""
    parser = _Parser(lookup, errors or Errors())
    seen: dict[str, list[int]] = defaultdict(list)
    items = []
    for index, raw in enumerate(raw_items):
        ready = prepared[index] if prepared is not None else None
        if ready is not None and ready.scale != lookup.priority_scale:
            ready = None
        item = parser.parse_item(index, raw, ready)
        if item is not None:
            items.append(item)
            seen[item.key].append(index)
    for key, indexes in seen.items():
        if len(indexes) > 1:
            where = ", ".join(str(i) for i in indexes)
            for index in indexes:
                parser.errors.add(index, key, "key", f"Duplicate key '{key}' in this batch (items {where}).")
    by_key = {item.key: item for item in items if len(seen[item.key]) == 1}
    return Parsed(items=items, by_key=by_key, new_statuses=parser.new_statuses, errors=parser.errors)


def key_problem(key: Any) -> str | ValidationError | None:
    """Why `key` cannot be a story key (a message or a ValidationError), or None."""
    if not isinstance(key, str) or not key.strip():
        return "Give the story's key (e.g. INF-013)."
    if len(key) > _KEY_MAX_LENGTH or ":" in key or not _KEY_RE.match(key):
        return f"'{key[:80]}' is not a valid key: {story_key_validator.message}"
    try:
        services.check_story_key(key)
    except ValidationError as exc:
        return exc
    return None


def _status_name(word: str) -> str:
    """A status as written, without its decoration: '✅ **Waiting on QA!**' → 'Waiting on QA'."""
    return " ".join("".join(ch if ch.isalnum() else " " for ch in word).split())[:100]


class _Parser:
    def __init__(self, lookup: Lookup, errors: Errors) -> None:
        self.lookup = lookup
        self.errors = errors
        self.new_statuses: dict[str, str] = {}
        self.slug_cache: dict[str, str] = {}

    def refuse_bad_text(self, index: int, raw: Mapping[str, Any], problems: dict[str, str] | None = None) -> bool:
        """Lone surrogates or NUL in any string of the item (keys too): each field named."""
        problems = text_problems(raw) if problems is None else problems
        for name, reason in problems.items():
            self.errors.add(index, None if "key" in problems else raw.get("key"), name, reason)
        return bool(problems)

    def parse_item(self, index: int, raw: Any, ready: Prepared | None = None) -> Item | None:
        errors = self.errors
        if not isinstance(raw, Mapping):
            errors.add(index, None, "non_field_errors", "Give an object with a key and the story's fields.")
            return None
        if self.refuse_bad_text(index, raw, ready.problems if ready is not None else None):
            return None
        key = raw.get("key")
        if not ALLOWED_KEYS.issuperset(raw):
            for name in sorted(str(n) for n in set(raw) - ALLOWED_KEYS):
                errors.add(index, key, name, "Unknown field.")
        if not self._key_ok(index, key):
            return None
        before = len(errors.rows)
        item = Item(index=index, key=key, data=self._plain_fields(index, key, raw, ready))
        self._version(item, raw.get("version"))
        if "notes" in raw:
            item.notes = raw["notes"] if isinstance(raw["notes"], str) else str(raw["notes"])
        if raw.get("status") is not None:
            item.status, item.status_slug, problem = self._status(raw["status"])
            if problem:
                errors.add(index, key, "status", problem)
        if "backlog" in raw:
            self._backlog(item, raw["backlog"])
        if "epic" in raw:
            self._epic(item, raw["epic"])
        self._dependencies(item, raw)
        return item if len(errors.rows) == before else Item(index=index, key=key, data={})

    def _key_ok(self, index: int, key: Any) -> bool:
        problem = key_problem(key)
        if isinstance(problem, ValidationError):
            self.errors.add_validation(index, key, problem, "key")
        elif problem is not None:
            self.errors.add(index, key, "key", problem)
        return problem is None

    def _plain_fields(self, index: int, key: str, raw: Mapping[str, Any], ready: Prepared | None) -> dict[str, Any]:
        if ready is not None:
            for name, exc in ready.field_errors:
                self.errors.add_validation(index, key, exc, name)
            return dict(ready.data)  # its own copy: parsing writes into item.data
        data: dict[str, Any] = {}
        for name in PLAIN_FIELDS:
            if name in raw:
                try:
                    data[name] = clean_value(name, raw[name], priority_scale=self.lookup.priority_scale)
                except ValidationError as exc:
                    self.errors.add_validation(index, key, exc, name)
        return data

    def _version(self, item: Item, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.errors.add(item.index, item.key, "version", "Give the version you read (a whole number from 1).")
        else:
            item.expected_version = value

    def _status(self, word: Any) -> tuple[Status | None, str | None, str | None]:
        """(status, slug to create, error) for a status as written."""
        if isinstance(word, Status):
            return word, None, None
        if not isinstance(word, str) or not word.strip():
            return None, None, "Give the status as text (a slug of the project's workflow)."
        found = match_status(word, self.lookup.statuses, self.lookup.status_by_name)
        if found is not None:
            return found, None, None
        norm = normalize_status_word(word)
        slug = slugify(norm.replace("_", "-")).replace("-", "_")[:50]
        if slug in self.lookup.statuses:  # e.g. "Accepted!" and "✅ ACCEPTED" for "accepted"
            return self.lookup.statuses[slug], None, None
        if self.lookup.create_missing_statuses and slug:
            # One new status per slug, however it was decorated; named as first written.
            self.new_statuses.setdefault(slug, _status_name(word))
            return None, slug, None
        allowed = ", ".join(self.lookup.statuses)
        return None, None, f"Unknown status '{word}'; this project's workflow has: {allowed}."

    def _backlog(self, item: Item, value: Any) -> None:
        if value in (None, ""):
            item.data["backlog"] = None
        elif isinstance(value, Backlog):
            item.data["backlog"] = value
        elif isinstance(value, str) and value in self.lookup.backlogs:
            item.data["backlog"] = self.lookup.backlogs[value]
        else:
            self.errors.add(
                item.index, item.key, "backlog", f"No backlog '{value}' in project '{self.lookup.project_slug}'."
            )

    def _epic(self, item: Item, value: Any) -> None:
        item.epic_given = True
        if value in (None, ""):
            return
        text = str(value).strip()
        slug = text if text in self.lookup.epics else self._slugify(text)
        if not slug:
            self.errors.add(item.index, item.key, "epic", f"'{text}' cannot be used as an epic name.")
        item.epic_slug, item.epic_name = slug, text[:200]

    def _slugify(self, text: str) -> str:
        if text not in self.slug_cache:
            self.slug_cache[text] = slugify(text)[:100]
        return self.slug_cache[text]

    def _dependencies(self, item: Item, raw: Mapping[str, Any]) -> None:
        if "depends_on" in raw and "dependencies" in raw:
            self.errors.add(
                item.index, item.key, "dependencies", "Give depends_on or dependencies (the same list), not both."
            )
        elif "depends_on" in raw or "dependencies" in raw:
            # "dependencies" is the story files' name for the same list.
            value = raw["depends_on"] if "depends_on" in raw else raw["dependencies"]
            item.deps = self._parse_deps(item.index, item.key, value)

    def _parse_deps(self, index: int, key: str, value: Any) -> list[Dep]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            self.errors.add(index, key, "depends_on", 'Give a list of keys ("KEY" or "other-project:KEY").')
            return []
        deps: dict[str, Dep] = {}
        for entry in value:
            dep = self._parse_dep(index, key, entry)
            if dep is not None and dep.ref not in deps:
                deps[dep.ref] = dep
        return list(deps.values())

    def _parse_dep(self, index: int, key: str, entry: Any) -> Dep | None:
        kind, description, ref = "blocks", None, entry
        if isinstance(entry, Mapping):
            ref = entry.get("depends_on", entry.get("key"))
            kind = entry.get("type", kind)
            description = entry.get("description")
        if isinstance(ref, int | float) and not isinstance(ref, bool):
            ref = str(ref)
        if not isinstance(ref, str) or not ref.strip():
            self.errors.add(index, key, "depends_on", f"'{ref}' is not a story key.")
            return None
        ref = ref.strip()
        if kind not in DEPENDENCY_TYPES:
            self.errors.add(index, key, "depends_on", f"Unknown dependency type '{kind}' for {ref}.")
            return None
        ref = ref.removeprefix(self.lookup.project_slug + ":")
        if ref == key:
            self.errors.add(index, key, "depends_on", "A story cannot depend on itself.")
            return None
        return Dep(ref=ref, type=kind, description=None if description is None else str(description))
