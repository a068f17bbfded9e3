"""Import story files: files, directory trees (*.md, *.txt) and zips, through the bulk
upsert service (stories.bulk), so every write is validated, audited (source "import")
and recorded in status_history like any other.

By default an import is atomic: one bad file and nothing is written; the report names
every bad file, the line where it is known, and the reason. With `continue_on_error` the
good files are written and the bad ones listed (a file that depends on a bad one fails
too). Importing the same files again writes nothing.

Untrusted input is bounded: per-file size, file count and uncompressed bytes of a zip
(counted while reading, so a lying zip header does not help), no paths that escape the
archive, no symlinks (in zips or in directory trees), YAML through a safe loader only.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import stat
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyhub.errors import BulkValidationError

from .bulk import story_bulk_upsert
from .models import Backlog, Project
from .storyfiles import (
    FIELD_TO_KEY,
    ITEM_DEFAULTS,
    ParsedFile,
    StoryFileError,
    decode,
    parse_story_file,
    safe_relative_path,
)

SUFFIXES = (".md", ".txt")


@dataclass(frozen=True)
class ImportLimits:
    max_file_bytes: int = 1_000_000  # one story file
    max_files: int = 50_000  # files in one import (and entries in one zip)
    max_total_bytes: int = 200_000_000  # uncompressed bytes in one import


@dataclass
class Source:
    """One file to import: its path relative to what was given, and its bytes (or the
    reason it cannot be read)."""

    path: str
    data: bytes | None = None
    error: str | None = None
    line: int | None = None
    fs_path: str | None = None  # a file on disk, read when it is parsed
    max_bytes: int = 0


@dataclass
class FileResult:
    path: str
    outcome: str  # created / updated / unchanged / failed
    key: str | None = None
    line: int | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "outcome": self.outcome, "key": self.key}
        if self.outcome == "failed":
            out["line"] = self.line
            out["reason"] = self.reason
        if self.warnings:
            out["warnings"] = self.warnings
        return out


@dataclass
class ImportReport:
    files: list[FileResult] = field(default_factory=list)
    dry_run: bool = False
    written: bool = False  # something was committed

    def count(self, outcome: str) -> int:
        return sum(1 for f in self.files if f.outcome == outcome)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "written": self.written,
            "created": self.count("created"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "failed": self.count("failed"),
            "files": [f.as_dict() for f in self.files],
        }


class ImportSourceError(Exception):
    """The import as a whole cannot start (e.g. a path that does not exist)."""


# --------------------------------------------------------------------------- collecting files


class _Budget:
    def __init__(self, limits: ImportLimits):
        self.limits = limits
        self.files = 0
        self.bytes = 0

    def take(self, size: int) -> str | None:
        self.files += 1
        self.bytes += size
        if self.files > self.limits.max_files:
            return f"too many files: the limit is {self.limits.max_files} per import"
        if self.bytes > self.limits.max_total_bytes:
            return f"too many bytes: the limit is {self.limits.max_total_bytes} uncompressed bytes per import"
        return None


def _wanted(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def _too_big(size: int, limits: ImportLimits) -> str:
    return f"file too large: {size} bytes (the limit is {limits.max_file_bytes})"


def sources_from_zip(data: bytes | Any, name: str, budget: _Budget) -> Iterable[Source]:
    """The story files of a zip (bytes or a binary file object)."""
    limits = budget.limits
    fileobj = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Source(path=name, error=f"not a readable zip archive: {exc}")
        return
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        if len(infos) > limits.max_files:
            yield Source(path=name, error=f"zip has {len(infos)} entries; the limit is {limits.max_files}")
            return
        declared = sum(info.file_size for info in infos)
        if declared > limits.max_total_bytes:
            yield Source(
                path=name,
                error=f"zip expands to {declared} bytes; the limit is {limits.max_total_bytes} uncompressed bytes",
            )
            return
        for info in infos:
            entry = info.filename
            shown = f"{name}:{entry}"
            if not safe_relative_path(entry):
                yield Source(path=shown, error="path escapes the archive (absolute, '..' or a drive letter)")
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                yield Source(path=shown, error="symlinks are not imported")
                continue
            if not _wanted(entry):
                continue
            if info.file_size > limits.max_file_bytes:
                yield Source(path=entry, error=_too_big(info.file_size, limits))
                continue
            try:
                with archive.open(info) as handle:
                    # Read one byte past the limit: the header's size is not trusted.
                    content = handle.read(limits.max_file_bytes + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
                yield Source(path=entry, error=f"cannot read the entry: {exc}")
                continue
            if len(content) > limits.max_file_bytes:
                yield Source(path=entry, error=_too_big(len(content), limits))
                continue
            problem = budget.take(len(content))
            if problem:
                yield Source(path=shown, error=problem)
                return
            yield Source(path=entry, data=content)


def sources_from_paths(paths: Iterable[str | os.PathLike], limits: ImportLimits) -> list[Source]:
    budget = _Budget(limits)
    out: list[Source] = []
    for given in paths:
        root = Path(given)
        if not root.exists() and not root.is_symlink():
            raise ImportSourceError(f"{given}: no such file or directory")
        if root.is_dir():
            out.extend(_sources_from_dir(root, budget))
        elif zipfile.is_zipfile(root) or root.suffix.lower() == ".zip":
            with open(root, "rb") as handle:
                out.extend(sources_from_zip(handle, root.name, budget))
        else:
            out.extend(_read_file(root, root.name, budget))
    return out


def _sources_from_dir(root: Path, budget: _Budget) -> Iterable[Source]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in sorted(dirnames):
            if (base / name).is_symlink():
                yield Source(path=(base / name).relative_to(root).as_posix(), error="symlinks are not followed")
        dirnames[:] = sorted(d for d in dirnames if not (base / d).is_symlink() and not d.startswith("."))
        for name in sorted(filenames):
            if not _wanted(name):
                continue
            yield from _read_file(base / name, (base / name).relative_to(root).as_posix(), budget)


def _read_file(path: Path, rel: str, budget: _Budget) -> Iterable[Source]:
    limits = budget.limits
    if path.is_symlink():
        yield Source(path=rel, error="symlinks are not followed")
        return
    try:
        size = path.stat().st_size
    except OSError as exc:
        yield Source(path=rel, error=f"cannot read: {exc.strerror or exc}")
        return
    if size > limits.max_file_bytes:
        yield Source(path=rel, error=_too_big(size, limits))
        return
    problem = budget.take(size)
    if problem:
        yield Source(path=rel, error=problem)
        return
    # Read when parsed (in parallel for large imports); the size is checked again then.
    yield Source(path=rel, fs_path=str(path), max_bytes=limits.max_file_bytes)


def sources_from_uploads(uploads: Iterable[tuple[str, Any]], limits: ImportLimits) -> list[Source]:
    """Uploaded files (name, file object): story files and zips."""
    budget = _Budget(limits)
    out: list[Source] = []
    for raw_name, handle in uploads:
        name = os.path.basename((raw_name or "upload").replace("\\", "/")) or "upload"
        head = handle.read(4)
        handle.seek(0)
        if head.startswith(b"PK\x03\x04") or name.lower().endswith(".zip"):
            out.extend(sources_from_zip(handle, name, budget))
            continue
        data = handle.read(limits.max_file_bytes + 1)
        if len(data) > limits.max_file_bytes:
            out.append(Source(path=name, error=_too_big(len(data), limits)))
            continue
        problem = budget.take(len(data))
        out.append(Source(path=name, error=problem) if problem else Source(path=name, data=data))
    return out


# --------------------------------------------------------------------------- importing


def import_stories(
    paths,
    *,
    project: Project,
    actor,
    backlog: Backlog | None = None,
    dry_run: bool = False,
    continue_on_error: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    limits: ImportLimits | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import story files from `paths` (a path or a list of them: files, directories,
    zips) into `project`. `progress(stage, done, total)` is called while files are read
    ("read") and written ("write"). Large imports are parsed by `workers` forked processes
    (default: one per CPU, at most 4); the database work stays in this process."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    limits = limits or ImportLimits()
    sources = sources_from_paths(paths, limits)
    return import_sources(
        sources,
        project=project,
        actor=actor,
        backlog=backlog,
        dry_run=dry_run,
        continue_on_error=continue_on_error,
        progress=progress,
        workers=default_workers() if workers is None else workers,
    )


def import_sources(
    sources: list[Source],
    *,
    project: Project,
    actor,
    backlog: Backlog | None = None,
    dry_run: bool = False,
    continue_on_error: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    workers: int = 1,
) -> ImportReport:
    """Import already collected sources (see sources_from_paths / sources_from_uploads).
    `workers` > 1 parses large imports in that many forked processes."""
    report = ImportReport(dry_run=dry_run)
    results: list[FileResult] = []
    parsed: list[tuple[FileResult, ParsedFile]] = []
    total = len(sources)
    step = max(1, total // 100)
    for done, (source, outcome) in enumerate(zip(sources, _parse_all(sources, workers), strict=True), start=1):
        result = FileResult(path=source.path, outcome="failed")
        results.append(result)
        if isinstance(outcome, ParsedFile):
            result.outcome = "pending"
            result.key = outcome.item["key"]
            result.warnings = outcome.warnings
            outcome.item = {**ITEM_DEFAULTS, **outcome.item}
            parsed.append((result, outcome))
        else:
            result.reason, result.line = outcome
        if progress is not None and (done % step == 0 or done == total):
            progress("read", done, total)
    report.files = results
    parsed = _without_duplicate_keys(parsed)

    # One bad file makes an atomic import a dry run of the rest: their problems are
    # reported too, and nothing is written.
    atomic_failure = not continue_on_error and len(parsed) < len(results)
    pending = parsed
    while pending:
        try:
            outcome = story_bulk_upsert(
                actor=actor,
                project=project,
                items=[file.item for _, file in pending],
                dry_run=dry_run or atomic_failure,
                source="import",
                backlog=backlog,
                enforce_workflow=False,
                progress=(lambda done, n: progress("write", done, n)) if progress is not None else None,
            )
        except BulkValidationError as exc:
            bad = _mark_failed(pending, exc)
            if not continue_on_error:
                break
            # Write the others; a file depending on a bad one now fails in its turn.
            pending = [entry for index, entry in enumerate(pending) if index not in bad]
            continue
        for (result, _), item in zip(pending, outcome.items, strict=True):
            result.outcome = item["outcome"]
        report.written = not (dry_run or atomic_failure) and any(i["outcome"] != "unchanged" for i in outcome.items)
        break
    if not continue_on_error and not report.ok:
        for result in results:
            if result.outcome != "failed":
                result.outcome = "skipped"  # fine, but not written: the import is atomic
    return report


# ----------------------------------------------------------------- parsing (in parallel)

PARALLEL_MIN_FILES = 2000
_PARALLEL_CHUNK = 500
_FORKED_SOURCES: list[Source] = []  # inherited by forked workers, so not pickled to them


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _parse_one(source: Source) -> ParsedFile | tuple[str, int | None]:
    """A ParsedFile, or (reason, line) for a file that cannot be read or parsed."""
    if source.error is not None:
        return source.error, source.line
    data = source.data
    if data is None and source.fs_path is not None:
        try:
            with open(source.fs_path, "rb") as handle:
                data = handle.read(source.max_bytes + 1)
        except OSError as exc:
            return f"cannot read: {exc.strerror or exc}", None
        if len(data) > source.max_bytes:
            return f"file too large: more than {source.max_bytes} bytes", None
    try:
        return parse_story_file(decode(data or b""), source.path)
    except StoryFileError as exc:
        return exc.reason, exc.line


def _parse_range(bounds: tuple[int, int]) -> list[ParsedFile | tuple[str, int | None]]:
    start, end = bounds
    return [_parse_one(source) for source in _FORKED_SOURCES[start:end]]


def _parse_all(sources: list[Source], workers: int) -> Iterable[ParsedFile | tuple[str, int | None]]:
    """Parse every source, in order. YAML parsing is most of an import's CPU time, so
    large imports are parsed by forked worker processes (fork: the sources are inherited,
    not pickled; the workers never touch the database connection and leave with
    os._exit, so they cannot close it)."""
    if workers <= 1 or len(sources) < PARALLEL_MIN_FILES or "fork" not in multiprocessing.get_all_start_methods():
        for source in sources:
            yield _parse_one(source)
        return
    global _FORKED_SOURCES
    _FORKED_SOURCES = sources
    try:
        bounds = [(i, min(i + _PARALLEL_CHUNK, len(sources))) for i in range(0, len(sources), _PARALLEL_CHUNK)]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for chunk in pool.map(_parse_range, bounds):
                yield from chunk
    finally:
        _FORKED_SOURCES = []


def _without_duplicate_keys(parsed: list[tuple[FileResult, ParsedFile]]) -> list[tuple[FileResult, ParsedFile]]:
    """Every file carrying a key that another file of this import carries too fails: which
    one was meant cannot be known."""
    by_key: dict[str, list[tuple[FileResult, ParsedFile]]] = {}
    for entry in parsed:
        by_key.setdefault(entry[1].item["key"], []).append(entry)
    kept = []
    for entry in parsed:
        result, file = entry
        same = by_key[file.item["key"]]
        if len(same) == 1:
            kept.append(entry)
            continue
        others = ", ".join(r.path for r, _ in same if r is not result)
        result.outcome = "failed"
        result.reason = f"id: duplicate key '{file.item['key']}' in this import (also in {others})"
        result.line = file.line_of("key")
    return kept


def _mark_failed(pending: list[tuple[FileResult, ParsedFile]], exc: BulkValidationError) -> set[int]:
    bad: set[int] = set()
    for error in exc.errors:
        result, file = pending[error["index"]]
        reason = _reason(error)
        if error["index"] in bad:
            result.reason = f"{result.reason}; {reason}"
            continue
        bad.add(error["index"])
        result.outcome, result.reason, result.line = "failed", reason, file.line_of(error["field"])
    return bad


def _reason(error: dict[str, Any]) -> str:
    name = error.get("field") or ""
    shown = FIELD_TO_KEY.get(name, name)
    if shown in ("", "non_field_errors"):
        return error["reason"]
    return f"{shown}: {error['reason']}"
