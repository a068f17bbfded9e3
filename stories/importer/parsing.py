"""Read and parse the collected files (in forked worker processes for large imports):
each becomes a ParsedFile or a failure, with the sha256 of its bytes. A JSON export (the
bulk format) becomes one item per story; a CSV export is refused with the reason."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from .. import fields
from ..storyfiles import ParsedFile, StoryFileError, decode, parse_story_file
from .sources import Source

PARALLEL_MIN_FILES = 2000
_PARALLEL_CHUNK = 500
_FORKED_SOURCES: list[Source] = []  # inherited by forked workers, so not pickled to them
_ID_LINE = re.compile(rb"^(?:id|key)[ \t]*:[ \t]*[\"']?([A-Za-z0-9][A-Za-z0-9._-]*)", re.MULTILINE)
CSV_REFUSED = (
    "a CSV export cannot be imported: it is a flat view for spreadsheets without the bodies, "
    "metadata and link details; import the JSON export (--format json) instead"
)


@dataclass
class Failure:
    reason: str
    line: int | None = None
    key: str | None = None  # the id the file seems to declare (for root-cause messages)
    code: str = "invalid"


@dataclass
class Parsed:
    """A parsed source: one story file, or the stories of a JSON export."""

    files: list[ParsedFile]
    digest: str


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _failure_code(reason: str) -> str:
    if reason.startswith("malformed YAML") or reason.startswith("front matter") or "YAML" in reason:
        return "yaml"
    if reason.startswith("not valid UTF-8"):
        return "encoding"
    if reason.startswith(("file too large", "too many", "zip ")):
        return "limit"
    if reason.startswith(("cannot read", "symlinks", "path escapes", "not a readable zip")):
        return "unreadable"
    if reason.startswith("no title"):
        return "no_title"
    return "invalid"


def parse_one(source: Source) -> Parsed | Failure:
    """The parsed source, or why it cannot be imported."""
    if source.error is not None:
        return Failure(source.error, source.line, code=_failure_code(source.error))
    try:
        data = source.read()
    except OSError as exc:
        return Failure(f"cannot read: {exc.strerror or exc}", code="unreadable")
    except ValueError as exc:
        return Failure(str(exc), code="limit")
    # The bytes without a UTF-8 BOM (an export drops it): the same text, the same hash.
    digest = hashlib.sha256(data.removeprefix(b"\xef\xbb\xbf")).hexdigest()
    if source.kind == "csv":
        return Failure(CSV_REFUSED, code="csv_export")
    if source.kind == "json":
        return _parse_json_export(data, source, digest)
    try:
        return Parsed([parse_story_file(decode(data), source.source_path)], digest)
    except StoryFileError as exc:
        found = _ID_LINE.search(data)
        key = found.group(1).decode("ascii") if found else None
        return Failure(exc.reason, exc.line, key=key, code=_failure_code(exc.reason))


# What a JSON export's story carries that a write takes as it is (the rest is read-only).
_JSON_ITEM_NAMES = tuple(name for name in fields.ITEM_NAMES if name not in ("depends_on", "notes"))


def _parse_json_export(data: bytes, source: Source, digest: str) -> Parsed | Failure:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Failure(f"not valid JSON: {exc}", code="json")
    if not isinstance(document, dict) or document.get("format") != "storyhub-export":
        return Failure('not a StoryHub JSON export (no "format": "storyhub-export")', code="json")
    stories = document.get("stories")
    if not isinstance(stories, list):
        return Failure('a JSON export needs a "stories" list', code="json")
    files = []
    for story in stories:
        if not isinstance(story, dict) or not isinstance(story.get("key"), str):
            return Failure('every story of a JSON export needs a "key"', code="json")
        files.append(json_story_file(story, source))
    return Parsed(files, digest)


def json_story_file(story: dict[str, Any], source: Source) -> ParsedFile:
    """A JSON export's story as a bulk item (its read-only fields left out; its links as
    the dependency list)."""
    item: dict[str, Any] = {"key": story["key"]}
    for name in _JSON_ITEM_NAMES:
        if name in story:
            item[name] = story[name]
    if story.get("status"):
        item["status"] = story["status"]
    item["depends_on"] = [
        {k: v for k, v in dep.items() if k in ("depends_on", "type", "description")}
        for dep in story.get("dependencies") or []
        if isinstance(dep, dict)
    ]
    exported = {name: str(story.get(name) or "") for name in ("source_repo", "source_path", "source_hash")}
    return ParsedFile(path=f"{source.path}#{story['key']}", item=item, exported_source=exported)


def _parse_range(bounds: tuple[int, int]) -> list[Parsed | Failure]:
    start, end = bounds
    return [parse_one(source) for source in _FORKED_SOURCES[start:end]]


def parse_all(sources: list[Source], workers: int) -> Iterable[Parsed | Failure]:
    """Parse every source, in order. YAML parsing is most of an import's CPU time, so
    large imports are parsed by forked worker processes (fork: the sources are inherited,
    not pickled; the workers never touch the database connection and leave with
    os._exit, so they cannot close it)."""
    if workers <= 1 or len(sources) < PARALLEL_MIN_FILES or "fork" not in multiprocessing.get_all_start_methods():
        for source in sources:
            yield parse_one(source)
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
