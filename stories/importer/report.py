"""What became of each file of an import (FileResult), the whole report (ImportReport),
and their persistent form: the ImportRun with one ImportFile row per file and the parked
ImportConflict rows (stories.models)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import BigIntegerField, Case, Value, When
from django.utils import timezone

from storyhub.fastinsert import insert_rows

from ..models import ImportConflict, ImportFile, ImportOutcome, ImportRun, Project
from .sources import Source

OUTCOMES = tuple(ImportOutcome.values)


@dataclass
class FileResult:
    path: str  # in its root
    outcome: str = "failed"
    key: str | None = None
    line: int | None = None
    reason: str | None = None  # the one-line message
    code: str = ""  # the stable reason code
    warnings: list[str] = field(default_factory=list)
    root: str = ""
    source_path: str = ""  # in its repository
    repo: str = ""
    content_hash: str = ""
    caused_by: FileResult | None = None
    story_id: int | None = None
    conflict_kind: str | None = None
    conflict_with: str | None = None  # the file (or story) holding the key
    conflict_id: int | None = None
    other_key: str = ""
    source: Source | None = field(default=None, repr=False)
    row_id: int | None = None

    @property
    def shown(self) -> str:
        return f"{self.root}/{self.path}" if self.root else self.path

    def fail(self, code: str, reason: str, line: int | None = None, caused_by: FileResult | None = None) -> None:
        self.outcome, self.code, self.reason, self.line, self.caused_by = "failed", code, reason, line, caused_by

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "root": self.root, "outcome": self.outcome, "key": self.key}
        if self.outcome in ("failed", "conflict", "excluded", "skipped") or self.code:
            out["code"] = self.code
            out["line"] = self.line
            out["reason"] = self.reason
        if self.caused_by is not None:
            out["caused_by"] = self.caused_by.shown
        if self.conflict_id is not None:
            out["conflict"] = self.conflict_id
        if self.warnings:
            out["warnings"] = self.warnings
        return out


@dataclass
class ImportReport:
    files: list[FileResult] = field(default_factory=list)
    dry_run: bool = False
    written: bool = False  # something was committed
    run_id: int | None = None
    atomic: bool = False

    def count(self, outcome: str) -> int:
        return sum(1 for f in self.files if f.outcome == outcome)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def counts(self) -> dict[str, int]:
        found = Counter(f.outcome for f in self.files)
        return {outcome: found.get(outcome, 0) for outcome in OUTCOMES}

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "dry_run": self.dry_run,
            "written": self.written,
            **self.counts(),
            "files": [f.as_dict() for f in self.files],
        }


# --------------------------------------------------------------------------- persistence


def run_start(
    *, project: Project, actor, source: str, repository: str, roots: list, options: dict, dry_run: bool
) -> ImportRun:
    """The ImportRun row of an import that starts (state running)."""
    authenticated = getattr(actor, "is_authenticated", False)
    return ImportRun.objects.create(
        project=project,
        actor=actor if authenticated else None,
        actor_repr=(actor.get_username() if authenticated else "system")[:200],
        source=source,
        repository=repository[:500],
        roots=roots,
        options=options,
        dry_run=dry_run,
    )


def run_failed(run: ImportRun, error: str) -> None:
    run.state, run.error, run.finished_at = ImportRun.State.FAILED, error[:5000], timezone.now()
    run.save(update_fields=["state", "error", "finished_at"])


_FILE_COLUMNS = (
    "run_id",
    "root",
    "path",
    "outcome",
    "reason",
    "message",
    "line",
    "key",
    "story_id",
    "caused_by_id",
    "content_hash",
    "warnings",
)


def _set_ids(queryset, column: str, values: dict[int, int]) -> None:
    """Set `column` of the rows with the given primary keys to their value, in one
    UPDATE per 400 rows (CASE on the primary key)."""
    pks = sorted(values)
    for start in range(0, len(pks), 400):
        chunk = pks[start : start + 400]
        whens = [When(pk=pk, then=Value(values[pk])) for pk in chunk]
        queryset.filter(pk__in=chunk).update(**{column: Case(*whens, output_field=BigIntegerField())})


def run_finish(run: ImportRun, report: ImportReport) -> None:
    """Write the report's file rows (batched), link the root causes and the parked
    conflicts to them, and mark the run finished."""
    rows = [
        (
            run.pk,
            f.root[:200],
            f.path[:1000],
            f.outcome,
            f.code[:50],
            f.reason or "",
            f.line,
            (f.key or "")[:64],
            f.story_id,
            None,
            f.content_hash,
            list(f.warnings),
        )
        for f in report.files
    ]
    ids = insert_rows(ImportFile, _FILE_COLUMNS, rows, with_ids=True) or []
    for result, pk in zip(report.files, ids, strict=True):
        result.row_id = pk
    # The root causes and the parked conflicts' files, one UPDATE each (per 400 rows).
    caused = {f.row_id: f.caused_by.row_id for f in report.files if f.caused_by is not None}
    _set_ids(ImportFile.objects.all(), "caused_by_id", caused)
    parked = {f.conflict_id: f.row_id for f in report.files if f.conflict_id is not None}
    _set_ids(ImportConflict.objects.filter(file__isnull=True), "file_id", parked)
    run.state, run.counts, run.finished_at = ImportRun.State.FINISHED, report.counts(), timezone.now()
    run.save(update_fields=["state", "counts", "finished_at"])
    report.run_id = run.pk
