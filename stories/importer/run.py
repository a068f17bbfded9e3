"""An import: parse every file, decide what each one is (a story to write, a conflict to
park, a failure, unchanged since it was last imported), write the stories through the
bulk upsert service, and record the run (stories.importer.report).

Nothing is lost and nothing silently replaced:
- a key carried by two files of the import: the file that already owns the story (its
  `source_path`) wins, else the first (roots in the order given, paths sorted); the others
  are parked conflicts (`duplicate_key`);
- a key whose story another source file owns: the file is parked (`key_owned`);
- a heading that names another key than the file's `id`: parked (`heading_mismatch`);
- a file whose bytes are what the story was last imported from (`source_hash`) is
  unchanged without being compared further, so a StoryHub edit since is kept;
- a file depending on a story whose own file failed fails naming that file and its error.

One transaction around everything; bad files fail alone (the others are written) unless
the import is atomic (then any failure rolls everything back and the good files say
`skipped`). A dry run takes the same path and rolls back at the end, so it predicts the
real run exactly.
"""

from __future__ import annotations

import contextlib
import gc
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from storyhub.errors import ApplicationError, BulkValidationError

from ..bulk import story_bulk_upsert
from ..bulk.parse import Prepared, prepare_item
from ..models import Backlog, ImportConflict, Project, Story, priority_scale
from ..storyfiles import FIELD_TO_KEY, ITEM_DEFAULTS, ParsedFile
from . import conflicts as parking
from .parsing import Failure, parse_all
from .report import FileResult, ImportReport, run_failed, run_finish, run_start
from .sources import Collected, Source

CHUNK = 900


@dataclass
class Entry:
    """A parsed story of the import, on its way to the bulk upsert."""

    result: FileResult
    file: ParsedFile
    source: tuple[str, str, str]  # (repository, path, content hash) for the story
    from_export: bool = False  # a JSON export's story: its hash is not of these bytes
    prepared: Prepared | None = None  # the item's pure parse, made while the next files are read

    @property
    def key(self) -> str:
        return self.file.item["key"]


@dataclass
class Owner:
    pk: int
    repo: str
    path: str
    digest: str
    backlog_id: int | None

    def same_file(self, repo: str, path: str) -> bool:
        return self.path == path and (not self.repo or not repo or self.repo == repo)


class _Rollback(Exception):
    """Raised to roll an import's transaction back (dry run, or an atomic import with a failure)."""


def import_sources(
    sources: Collected | list[Source],
    *,
    project: Project,
    actor,
    backlog: Backlog | None = None,
    dry_run: bool = False,
    continue_on_error: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    workers: int = 1,
    source: str = "cli",
    options: Mapping[str, Any] | None = None,
) -> ImportReport:
    """Import already collected sources (see sources_from_paths / sources_from_uploads)
    and record the run. `continue_on_error=False` makes the import atomic."""
    collected = sources if isinstance(sources, Collected) else Collected(sources=list(sources))
    run = run_start(
        project=project,
        actor=actor,
        source=source,
        repository=collected.repository,
        roots=[root.as_dict() for root in collected.roots],
        options={
            "continue_on_error": continue_on_error,
            "backlog": backlog.slug if backlog else None,
            **(options or {}),
        },
        dry_run=dry_run,
    )
    try:
        with _gc_paused():
            report = _import(
                collected.sources, run, project, actor, backlog, dry_run, continue_on_error, progress, workers
            )
            with transaction.atomic():
                run_finish(run, report)
    except Exception as exc:
        run_failed(run, f"{type(exc).__name__}: {exc}")
        raise
    return report


@contextlib.contextmanager
def _gc_paused():
    """The cyclic garbage collector off while an import runs: a 10,000-file import makes
    millions of small objects (none of them in cycles that matter), and the collector's
    passes over them took a quarter to a third of the import's time. Garbage is collected
    as usual afterwards. Forked parse workers inherit the setting."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _import(  # noqa: PLR0913 -- the import's options, passed through
    sources, run, project, actor, backlog, dry_run, continue_on_error, progress, workers
) -> ImportReport:
    report = ImportReport(dry_run=dry_run, atomic=not continue_on_error)
    entries = _read(sources, report, progress, workers, _scale(project))
    try:
        with transaction.atomic():
            _Importer(project, actor, backlog, report, progress, run).run(entries)
            if dry_run or (not continue_on_error and not report.ok):
                raise _Rollback
            report.written = any(f.outcome in ("created", "updated") for f in report.files)
    except _Rollback:
        _rolled_back(report, atomic_failure=not continue_on_error and not report.ok)
    return report


def _rolled_back(report: ImportReport, *, atomic_failure: bool) -> None:
    """After the rollback: an atomic import's good files were not written, and nothing
    made inside the transaction exists (new stories, parked conflicts)."""
    if atomic_failure:
        for result in report.files:
            if result.outcome in ("created", "updated", "unchanged"):
                result.outcome, result.code = "skipped", "atomic"
                result.reason = "not written: the import is atomic and another file failed"
    ids = {f.story_id for f in report.files if f.story_id is not None}
    existing = set(Story.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    conflict_ids = {f.conflict_id for f in report.files if f.conflict_id is not None}
    kept = (
        set(ImportConflict.objects.filter(pk__in=conflict_ids).values_list("pk", flat=True)) if conflict_ids else set()
    )
    for result in report.files:
        if result.story_id not in existing:
            result.story_id = None
        if result.conflict_id not in kept:
            result.conflict_id = None


# --------------------------------------------------------------------------- reading


def _scale(project: Project) -> dict[int, int] | None:
    """The project's priority scale, or None if its setting is bad (the bulk upsert then
    refuses the batch by name)."""
    try:
        return priority_scale(project.settings)
    except ValueError:
        return None


def _read(sources: list[Source], report: ImportReport, progress, workers: int, scale) -> list[Entry]:
    """The parsed files as entries, each item's pure bulk parse (stories.bulk.parse.
    prepare_item) made as its file arrives, i.e. while the workers parse the next ones."""
    entries: list[Entry] = []
    total = len(sources)
    step = max(1, total // 100)
    for done, (source, parsed) in enumerate(zip(sources, parse_all(sources, workers), strict=True), start=1):
        if progress is not None and (done % step == 0 or done == total):
            progress("read", done, total)
        base = {"root": source.root, "source_path": source.source_path, "repo": source.repo, "source": source}
        if source.excluded is not None:
            code, message = source.excluded
            report.files.append(FileResult(path=source.path, outcome="excluded", code=code, reason=message, **base))
            continue
        if isinstance(parsed, Failure):
            result = FileResult(path=source.path, key=parsed.key, **base)
            result.fail(parsed.code, parsed.reason, parsed.line)
            report.files.append(result)
            continue
        for file in parsed.files:
            path = file.path if source.kind == "json" else source.path
            result = FileResult(path=path, outcome="pending", key=file.item["key"], warnings=file.warnings, **base)
            result.content_hash = parsed.digest
            file.item = {**ITEM_DEFAULTS, **file.item} if source.kind == "story" else file.item
            origin = (source.repo, source.source_path, parsed.digest)
            if file.exported_source is not None:  # a JSON export's story keeps its own source
                exported = file.exported_source
                origin = (exported["source_repo"], exported["source_path"], exported["source_hash"])
                result.content_hash = exported["source_hash"]
            report.files.append(result)
            entry = Entry(result=result, file=file, source=origin, from_export=file.exported_source is not None)
            if scale is not None:
                entry.prepared = prepare_item(file.item, scale)
            entries.append(entry)
    return entries


# --------------------------------------------------------------------------- deciding and writing


class _Importer:
    def __init__(self, project: Project, actor, backlog: Backlog | None, report: ImportReport, progress, run) -> None:
        self.run_row = run
        self.project = project
        self.actor = actor
        self.backlog = backlog
        self.report = report
        self.progress = progress
        self.owners: dict[str, Owner] = {}

    def run(self, entries: list[Entry]) -> None:
        entries = self._apply_rekeys(entries)
        self.owners = self._read_owners({e.key for e in entries} | _dependency_keys(entries))
        entries = self._park_heading_mismatches(entries)
        entries = self._park_duplicates(entries)
        entries = self._park_owned(entries)
        entries = self._skip_unchanged(entries)
        self._write(entries)
        self._link_stories()

    # -- conflicts

    def _apply_rekeys(self, entries: list[Entry]) -> list[Entry]:
        """A parked file that was imported under a new key keeps that key."""
        rekeyed = parking.rekeyed_paths(self.project)
        for entry in entries:
            new_key = rekeyed.get((entry.source[0], entry.source[1]))
            if new_key and new_key != entry.key:
                entry.result.warnings.append(f"imported as {new_key} (conflict resolved with a new key)")
                entry.file.item["key"] = new_key
                entry.prepared = None  # made with the old key
                entry.result.key = new_key
        return entries

    def _park(self, entry: Entry, kind: str, message: str, holder: str, other_key: str = "") -> None:
        result = entry.result
        result.outcome, result.code, result.reason = "conflict", kind, message
        result.conflict_kind, result.conflict_with, result.other_key = kind, holder, other_key
        result.line = entry.file.line_of("key")

    def _park_heading_mismatches(self, entries: list[Entry]) -> list[Entry]:
        kept = []
        for entry in entries:
            heading = entry.file.heading_key
            if heading and entry.file.sources.get("key") and heading.lower() != entry.key.lower():
                self._park(
                    entry,
                    ImportConflict.Kind.HEADING_MISMATCH,
                    f"the heading names {heading} but the id is {entry.key}; parked until someone picks the key",
                    holder="",
                    other_key=heading,
                )
                continue
            kept.append(entry)
        return kept

    def _park_duplicates(self, entries: list[Entry]) -> list[Entry]:
        by_key: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            by_key[entry.key].append(entry)
        parked: set[int] = set()
        for key, same in by_key.items():
            if len(same) < 2:
                continue
            owner = self.owners.get(key)
            winner = next((e for e in same if owner and owner.same_file(e.source[0], e.source[1])), same[0])
            for entry in same:
                if entry is not winner:
                    self._park(
                        entry,
                        ImportConflict.Kind.DUPLICATE_KEY,
                        f"key {key} is also in {winner.result.shown} (which was imported); this file is parked",
                        holder=winner.source[1],
                    )
                    parked.add(id(entry))
        return [e for e in entries if id(e) not in parked]

    def _park_owned(self, entries: list[Entry]) -> list[Entry]:
        kept = []
        for entry in entries:
            owner = self.owners.get(entry.key)
            if owner is not None and owner.path and not owner.same_file(entry.source[0], entry.source[1]):
                where = owner.path if owner.repo == entry.source[0] or not owner.repo else f"{owner.repo}: {owner.path}"
                self._park(
                    entry,
                    ImportConflict.Kind.KEY_OWNED,
                    f"story {entry.key} comes from another file ({where}); this file is parked, nothing was replaced",
                    holder=owner.path,
                )
                continue
            kept.append(entry)
        return kept

    def _skip_unchanged(self, entries: list[Entry]) -> list[Entry]:
        """Files whose bytes are those the story was last imported from write nothing."""
        kept = []
        for entry in entries:
            owner = self.owners.get(entry.key)
            if (
                not entry.from_export
                and owner is not None
                and owner.digest
                and owner.digest == entry.source[2]
                and owner.same_file(entry.source[0], entry.source[1])
                and (self.backlog is None or owner.backlog_id == self.backlog.pk)
            ):
                entry.result.outcome, entry.result.story_id = "unchanged", owner.pk
                continue
            kept.append(entry)
        return kept

    def _read_owners(self, keys: set[str]) -> dict[str, Owner]:
        queryset = Story.objects.filter(project=self.project)
        columns = ("key", "pk", "source_repo", "source_path", "source_hash", "backlog_id")
        rows: list[tuple] = []
        if len(keys) > CHUNK:
            rows = [r for r in queryset.values_list(*columns) if r[0] in keys]
        else:
            rows = list(queryset.filter(key__in=sorted(keys)).values_list(*columns))
        return {key: Owner(pk, repo, path, digest, backlog_id) for key, pk, repo, path, digest, backlog_id in rows}

    # -- writing

    def _write(self, pending: list[Entry]) -> None:
        """Bulk upsert the pending files; a failing file fails alone and the others are
        written (in a new round); files depending on a failed one fail naming it."""
        while pending:
            pending = self._fail_dependents(pending)
            if not pending:
                return
            try:
                outcome = story_bulk_upsert(
                    actor=self.actor,
                    project=self.project,
                    items=[e.file.item for e in pending],
                    sources=[e.source for e in pending],
                    prepared=[e.prepared for e in pending],
                    source="import",
                    backlog=self.backlog,
                    enforce_workflow=False,
                    progress=(lambda done, n: self.progress("write", done, n)) if self.progress is not None else None,
                )
            except BulkValidationError as exc:
                bad = _mark_failed(pending, exc)
                pending = [entry for index, entry in enumerate(pending) if index not in bad]
                continue
            except (ValidationError, ApplicationError) as exc:
                # A problem of the batch as a whole (e.g. the project's settings): every
                # pending file fails with it, in one line.
                message = _one_line(exc)
                for entry in pending:
                    entry.result.fail("batch", message)
                return
            for entry, item in zip(pending, outcome.items, strict=True):
                entry.result.outcome = item["outcome"]
            return

    def _fail_dependents(self, pending: list[Entry]) -> list[Entry]:
        """Fail the files that depend on a key whose only file in this import failed (and
        that no story has): the message names that file and its error."""
        while True:
            failed = {
                f.key: f for f in self.report.files if f.outcome == "failed" and f.key and f.key not in self.owners
            }
            if not failed:  # the usual case: no file failed, nothing to look up per dependency
                return pending
            alive = {e.key for e in pending}
            hit = False
            for entry in pending:
                for ref in _refs(entry.file.item):
                    cause = failed.get(ref)
                    if cause is None or ref in alive:
                        continue
                    root = cause.caused_by or cause
                    reason = f"depends on {ref}, whose file {cause.shown} failed: {cause.reason}"
                    entry.result.fail("dependency_failed", reason, entry.file.line_of("depends_on"), caused_by=root)
                    hit = True
                    break
            if not hit:
                return pending
            pending = [e for e in pending if e.result.outcome != "failed"]

    def _link_stories(self) -> None:
        """The story each file became (or, for a conflict, the story holding its key)."""
        wanted = {f.key for f in self.report.files if f.key and f.story_id is None and f.outcome != "failed"}
        if not wanted:
            parking.park_all(self.project, self.report.files, {}, self.run_row)
            return
        ids = {key: owner.pk for key, owner in self._read_owners(wanted).items()}
        for result in self.report.files:
            if result.outcome != "failed" and result.story_id is None and result.key in ids:
                result.story_id = ids[result.key]
        parking.park_all(self.project, self.report.files, ids, self.run_row)


def _dependency_keys(entries: Sequence[Entry]) -> set[str]:
    return {ref for entry in entries for ref in _refs(entry.file.item)}


def _refs(item: Mapping[str, Any]) -> list[str]:
    """The keys (of this project) an item's dependency list names."""
    value = item.get("depends_on", item.get("dependencies"))
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        value = [value]
    refs = []
    for entry in value:
        ref = entry.get("depends_on", entry.get("key")) if isinstance(entry, Mapping) else entry
        if isinstance(ref, str | int) and not isinstance(ref, bool) and ":" not in str(ref):
            refs.append(str(ref).strip())
    return refs


def _mark_failed(pending: list[Entry], exc: BulkValidationError) -> set[int]:
    bad: set[int] = set()
    for error in exc.errors:
        entry = pending[error["index"]]
        reason = _reason(error)
        if error["index"] in bad:
            entry.result.reason = f"{entry.result.reason}; {reason}"
            continue
        bad.add(error["index"])
        entry.result.fail(_code(error), reason, entry.file.line_of(error["field"]))
    return bad


def _code(error: Mapping[str, Any]) -> str:
    name = error.get("field") or ""
    reason = error.get("reason", "")
    if name in ("depends_on", "dependencies"):
        if "cycle" in reason.lower():
            return "cycle"
        return "unknown_dependency" if reason.startswith("Unknown dependency") else "dependency"
    return f"invalid_{name}" if name and name != "non_field_errors" else "invalid"


def _reason(error: Mapping[str, Any]) -> str:
    name = error.get("field") or ""
    shown = FIELD_TO_KEY.get(name, name)
    if shown in ("", "non_field_errors"):
        return error["reason"]
    return f"{shown}: {error['reason']}"


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        messages = (
            [f"{k}: {m}" for k, ms in exc.message_dict.items() for m in ms]
            if hasattr(exc, "error_dict")
            else exc.messages
        )
        return "; ".join(messages)
    return " ".join(str(getattr(exc, "message", exc)).split())
