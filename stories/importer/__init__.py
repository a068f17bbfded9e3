"""Import story files — directory trees (*.md, *.txt), single files, zips, uploads and
JSON exports — through the bulk upsert service (stories.bulk), so every write is
validated, audited (source "import") and recorded in status_history like any other, and
record each import as an ImportRun with every file's outcome (stories.models).

The package: `sources` (collecting files, their roots and repository paths, excludes and
limits), `parsing` (files → items, in parallel for large imports), `run` (deciding what
each file is and writing: conflicts, unchanged files, root causes, dry run), `report`
(the per-file report and its rows) and `conflicts` (parking and resolving conflicts).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from ..models import Backlog, Project
from .conflicts import import_conflict_keep_existing, import_conflict_parked_wins, import_conflict_rekey
from .parsing import PARALLEL_MIN_FILES, default_workers
from .report import FileResult, ImportReport
from .run import import_sources
from .sources import (
    DEFAULT_EXCLUDES,
    SUFFIXES,
    Collected,
    ImportLimits,
    ImportSourceError,
    Source,
    sources_from_paths,
    sources_from_uploads,
    sources_from_zip,
)

__all__ = [
    "DEFAULT_EXCLUDES",
    "PARALLEL_MIN_FILES",
    "SUFFIXES",
    "Collected",
    "FileResult",
    "ImportLimits",
    "ImportReport",
    "ImportSourceError",
    "Source",
    "default_workers",
    "import_conflict_keep_existing",
    "import_conflict_parked_wins",
    "import_conflict_rekey",
    "import_sources",
    "import_stories",
    "sources_from_paths",
    "sources_from_uploads",
    "sources_from_zip",
]


def import_stories(
    paths,
    *,
    project: Project,
    actor,
    backlog: Backlog | None = None,
    dry_run: bool = False,
    continue_on_error: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    limits: ImportLimits | None = None,
    workers: int | None = None,
    excludes: Sequence[str] = (),
    default_excludes: bool = True,
    repository: str | None = None,
    source: str = "cli",
) -> ImportReport:
    """Import story files from `paths` (a path or a list of them: directories, files,
    zips, JSON exports) into `project`, and record the run. A bad file fails alone unless
    `continue_on_error=False` (atomic: any failure writes nothing). `progress(stage, done,
    total)` is called while files are read ("read") and written ("write"). Large imports
    are parsed by `workers` forked processes (default: one per CPU, at most 4)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    limits = limits or ImportLimits()
    collected = sources_from_paths(
        paths, limits, excludes=excludes, default_excludes=default_excludes, repository=repository
    )
    return import_sources(
        collected,
        project=project,
        actor=actor,
        backlog=backlog,
        dry_run=dry_run,
        continue_on_error=continue_on_error,
        progress=progress,
        workers=default_workers() if workers is None else workers,
        source=source,
        options={"excludes": list(excludes), "default_excludes": default_excludes},
    )
