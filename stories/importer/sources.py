"""Collect the files of an import: directory trees, single files, zips and uploads, each
named by its root and its path in that root, and by its path in its repository (what a
story's `source_path` and a generated key derive from, so they do not depend on the path
given on the command line).

The repository of a directory is the nearest enclosing directory holding `.git` or a
`.storyhub` marker (else the directory given); its identifier (a story's `source_repo`)
is its `origin` remote URL without credentials, else empty (unknown: the file is then
known by its path alone, so a zip of an export or a clone without a remote still matches).

Excludes (`--exclude` globs, `.storyhubignore` files and the default excludes) are
decided here: an excluded file is still reported (outcome `excluded`, with the rule that
excluded it), never silently left out.

Untrusted input is bounded: per-file size, file count and uncompressed bytes of a zip
(counted while reading, so a lying zip header does not help), no paths that escape the
archive, no symlinks (in zips or in directory trees).
"""

from __future__ import annotations

import configparser
import fnmatch
import io
import os
import re
import stat
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..storyfiles import safe_relative_path

SUFFIXES = (".md", ".txt")
# Files an import reads only when they are given by name: a JSON export (the bulk format)
# and a CSV export (refused with the reason).
EXPORT_SUFFIXES = (".json", ".csv")
IGNORE_FILE = ".storyhubignore"
REPOSITORY_MARKERS = (".git", ".storyhub")
# Files of planning repositories that describe the repository, not a story. Excluded by
# default (reported as `excluded`, reason `excluded_default`); `--no-default-excludes` or a
# `!README.md` line in .storyhubignore imports them.
DEFAULT_EXCLUDES = (
    "README",
    "README.*",
    "CHANGELOG*",
    "LICENSE*",
    "CONTRIBUTING*",
    "CODE_OF_CONDUCT*",
    "SECURITY.*",
)


@dataclass(frozen=True)
class ImportLimits:
    max_file_bytes: int = 1_000_000  # one story file
    max_files: int = 50_000  # files in one import (and entries in one zip)
    max_total_bytes: int = 200_000_000  # uncompressed bytes in one import


class ImportSourceError(Exception):
    """The import as a whole cannot start (e.g. a path that does not exist)."""


@dataclass
class Source:
    """One file to import: its root's name, its path in that root (`path`), its path in
    its repository (`source_path`), the repository's identifier, and its bytes (or the
    reason it cannot be read, or the rule that excludes it)."""

    path: str
    data: bytes | None = None
    error: str | None = None
    line: int | None = None
    fs_path: str | None = None  # a file on disk, read when it is parsed
    max_bytes: int = 0
    root: str = ""
    source_path: str = ""
    repo: str = ""
    excluded: tuple[str, str] | None = None  # (reason code, message)
    kind: str = "story"  # story / json (a JSON export) / csv

    def __post_init__(self) -> None:
        if not self.source_path:
            self.source_path = self.path

    @property
    def shown(self) -> str:
        return f"{self.root}/{self.path}" if self.root else self.path

    def read(self) -> bytes:
        """The file's bytes (OSError / ValueError for a file gone or grown too large)."""
        if self.data is not None:
            return self.data
        if self.fs_path is None:
            return b""
        with open(self.fs_path, "rb") as handle:
            data = handle.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise ValueError(f"file too large: more than {self.max_bytes} bytes")
        return data


@dataclass(frozen=True)
class RootInfo:
    name: str
    repo: str
    path: str  # the root in its repository ("" for the repository itself)

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "repository": self.repo, "path": self.path}


@dataclass
class Collected:
    sources: list[Source] = field(default_factory=list)
    roots: list[RootInfo] = field(default_factory=list)

    @property
    def repository(self) -> str:
        repos = {root.repo for root in self.roots}
        return repos.pop() if len(repos) == 1 else ""


# --------------------------------------------------------------------------- excludes


@dataclass(frozen=True)
class Rule:
    pattern: str
    base: str  # the directory (in the repository) the rule is relative to
    negate: bool
    origin: str  # "default", ".storyhubignore" path, "--exclude"
    code: str

    def __post_init__(self) -> None:
        # Compiled once per rule (each file of an import is matched against every rule).
        pattern = self.pattern.strip("/")
        if self.code == "excluded_default":
            pattern = pattern.lower()
        anchored = "/" in pattern or self.pattern.startswith("/")
        whole = re.compile(fnmatch.translate(pattern)).match
        below = re.compile(fnmatch.translate(pattern + "/*")).match if anchored else None
        object.__setattr__(self, "_compiled", (whole, below, anchored, self.pattern.endswith("/")))

    def matches(self, repo_path: str) -> bool:
        rel = repo_path
        if self.base:
            if not repo_path.startswith(self.base + "/"):
                return False
            rel = repo_path[len(self.base) + 1 :]
        whole, below, anchored, dir_only = self._compiled  # type: ignore[attr-defined]
        if self.code == "excluded_default":
            rel = rel.lower()
        if anchored:
            return whole(rel) is not None or below(rel) is not None
        parts = rel.split("/")
        return any(whole(part) is not None for part in (parts[:-1] if dir_only else parts))


class Excluder:
    """Decides which files are excluded; the last matching rule wins (as in .gitignore),
    a `!pattern` rule includes again."""

    def __init__(self, excludes: Sequence[str] = (), *, default_excludes: bool = True):
        self.rules: list[Rule] = []
        if default_excludes:
            self.rules += [Rule(p, "", False, "default", "excluded_default") for p in DEFAULT_EXCLUDES]
        self.cli = [
            Rule(p.strip(), "", p.startswith("!"), "--exclude", "excluded_option") for p in excludes if p.strip()
        ]
        self.cli = [Rule(r.pattern.lstrip("!"), "", r.negate, r.origin, r.code) for r in self.cli]
        self.read_files: set[str] = set()

    def read_ignore_file(self, directory: Path, base: str) -> None:
        """Add the rules of `directory`/.storyhubignore (once per directory)."""
        key = base or "."
        if key in self.read_files:
            return
        self.read_files.add(key)
        path = directory / IGNORE_FILE
        if not path.is_file() or path.is_symlink():
            return
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        origin = f"{base}/{IGNORE_FILE}" if base else IGNORE_FILE
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            self.rules.append(Rule(line.lstrip("!"), base, negate, origin, "excluded_ignore_file"))

    def excluded(self, repo_path: str) -> tuple[str, str] | None:
        """(reason code, message) when `repo_path` is excluded, else None."""
        verdict = None
        for rule in [*self.rules, *self.cli]:
            if rule.matches(repo_path):
                verdict = None if rule.negate else rule
        if verdict is None:
            return None
        if verdict.code == "excluded_default":
            return verdict.code, f"excluded by default ({verdict.pattern}); --no-default-excludes imports it"
        return verdict.code, f"excluded by {verdict.origin}: {verdict.pattern}"


# --------------------------------------------------------------------------- repositories

_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)


def find_repository(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding .git or a .storyhub marker."""
    for candidate in [start, *start.parents]:
        if any((candidate / marker).exists() for marker in REPOSITORY_MARKERS):
            return candidate
    return None


def repository_identifier(root: Path) -> str:
    """A repository's identifier: its origin URL (credentials removed), else ""."""
    config = root / ".git" / "config"
    if config.is_file():
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            parser.read(config, encoding="utf-8")
            url = parser.get('remote "origin"', "url", fallback="").strip()
        except (configparser.Error, OSError, UnicodeDecodeError):
            url = ""
        if url:
            return _USERINFO.sub(r"\1", url)[:500]
    return ""


# --------------------------------------------------------------------------- budget


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


def _kind(name: str) -> str:
    lower = name.lower()
    return "json" if lower.endswith(".json") else "csv" if lower.endswith(".csv") else "story"


# --------------------------------------------------------------------------- zips


def sources_from_zip(  # noqa: C901 -- one check per way an archive entry can be refused
    data: bytes | Any, name: str, budget: _Budget, excluder: Excluder | None = None, repo: str = ""
) -> Iterable[Source]:
    """The story files of a zip (bytes or a binary file object), rooted at the zip's name."""
    limits = budget.limits
    fileobj = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Source(path=name, error=f"not a readable zip archive: {exc}", repo=repo)
        return
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        if len(infos) > limits.max_files:
            yield Source(path=name, error=f"zip has {len(infos)} entries; the limit is {limits.max_files}", repo=repo)
            return
        declared = sum(info.file_size for info in infos)
        if declared > limits.max_total_bytes:
            yield Source(
                path=name,
                error=f"zip expands to {declared} bytes; the limit is {limits.max_total_bytes} uncompressed bytes",
                repo=repo,
            )
            return
        for info in infos:
            entry = info.filename
            common = {"root": name, "repo": repo}
            if not safe_relative_path(entry):
                yield Source(path=entry, error="path escapes the archive (absolute, '..' or a drive letter)", **common)
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                yield Source(path=entry, error="symlinks are not imported", **common)
                continue
            if not _wanted(entry):
                continue
            if excluder is not None and (why := excluder.excluded(entry)) is not None:
                yield Source(path=entry, excluded=why, **common)
                continue
            if info.file_size > limits.max_file_bytes:
                yield Source(path=entry, error=_too_big(info.file_size, limits), **common)
                continue
            try:
                with archive.open(info) as handle:
                    # Read one byte past the limit: the header's size is not trusted.
                    content = handle.read(limits.max_file_bytes + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
                yield Source(path=entry, error=f"cannot read the entry: {exc}", **common)
                continue
            if len(content) > limits.max_file_bytes:
                yield Source(path=entry, error=_too_big(len(content), limits), **common)
                continue
            problem = budget.take(len(content))
            if problem:
                yield Source(path=entry, error=problem, **common)
                return
            yield Source(path=entry, data=content, **common)


# --------------------------------------------------------------------------- paths


def sources_from_paths(
    paths: Iterable[str | os.PathLike],
    limits: ImportLimits,
    *,
    excludes: Sequence[str] = (),
    default_excludes: bool = True,
    repository: str | None = None,
) -> Collected:
    """The files under `paths` (directories, files, zips), each with its root and its
    path in its repository. `repository` names the repository (else it is found)."""
    budget = _Budget(limits)
    collected = Collected()
    excluders: dict[Path, Excluder] = {}
    for given in paths:
        root = Path(given)
        if not root.exists() and not root.is_symlink():
            raise ImportSourceError(f"{given}: no such file or directory")
        if zipfile.is_zipfile(root) or root.suffix.lower() == ".zip":
            repo = repository or ""
            collected.roots.append(RootInfo(name=root.name, repo=repo, path=""))
            with open(root, "rb") as handle:
                excluder = Excluder(excludes, default_excludes=default_excludes)
                collected.sources.extend(sources_from_zip(handle, root.name, budget, excluder, repo))
            continue
        directory = root if root.is_dir() else root.parent
        absolute = directory.resolve()
        repo_root = find_repository(absolute) or absolute
        repo = repository or repository_identifier(repo_root)
        base = absolute.relative_to(repo_root).as_posix()
        base = "" if base == "." else base
        excluder = excluders.setdefault(repo_root, Excluder(excludes, default_excludes=default_excludes))
        _read_ignore_files(excluder, repo_root, base)
        name = (base or repo_root.name or "root") if root.is_dir() else (base or ".")
        collected.roots.append(RootInfo(name=name, repo=repo, path=base))
        context = _Tree(budget=budget, excluder=excluder, repo=repo, root_name=name, base=base)
        if root.is_dir():
            collected.sources.extend(context.walk(root))
        else:
            collected.sources.extend(context.file(root, root.name, given_by_name=True))
    return collected


def _read_ignore_files(excluder: Excluder, repo_root: Path, base: str) -> None:
    """The .storyhubignore files from the repository's root down to the root given."""
    excluder.read_ignore_file(repo_root, "")
    parts = base.split("/") if base else []
    for depth in range(1, len(parts) + 1):
        sub = "/".join(parts[:depth])
        excluder.read_ignore_file(repo_root / sub, sub)


@dataclass
class _Tree:
    budget: _Budget
    excluder: Excluder
    repo: str
    root_name: str
    base: str  # the root in its repository

    def repo_path(self, rel: str) -> str:
        return f"{self.base}/{rel}" if self.base else rel

    def walk(self, root: Path) -> Iterable[Source]:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            here = Path(dirpath)
            rel_dir = here.relative_to(root).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir
            if rel_dir:
                self.excluder.read_ignore_file(here, self.repo_path(rel_dir))
            for name in sorted(dirnames):
                if (here / name).is_symlink():
                    rel = f"{rel_dir}/{name}" if rel_dir else name
                    yield self._source(rel, error="symlinks are not followed")
            dirnames[:] = sorted(d for d in dirnames if not (here / d).is_symlink() and not d.startswith("."))
            for name in sorted(filenames):
                if _wanted(name):
                    yield from self.file(here / name, f"{rel_dir}/{name}" if rel_dir else name)

    def _source(self, rel: str, **kwargs: Any) -> Source:
        return Source(path=rel, root=self.root_name, source_path=self.repo_path(rel), repo=self.repo, **kwargs)

    def file(self, path: Path, rel: str, *, given_by_name: bool = False) -> Iterable[Source]:
        limits = self.budget.limits
        kind = _kind(path.name) if given_by_name else "story"
        if path.is_symlink():
            yield self._source(rel, error="symlinks are not followed")
            return
        why = None if given_by_name else self.excluder.excluded(self.repo_path(rel))
        if why is not None:
            yield self._source(rel, excluded=why)
            return
        try:
            size = path.stat().st_size
        except OSError as exc:
            yield self._source(rel, error=f"cannot read: {exc.strerror or exc}")
            return
        limit = limits.max_total_bytes if kind == "json" else limits.max_file_bytes
        if size > limit:
            yield self._source(rel, error=_too_big(size, limits))
            return
        problem = self.budget.take(size)
        if problem:
            yield self._source(rel, error=problem)
            return
        # Read when parsed (in parallel for large imports); the size is checked again then.
        yield self._source(rel, fs_path=str(path), max_bytes=limit, kind=kind)


# --------------------------------------------------------------------------- uploads


def sources_from_uploads(
    uploads: Iterable[tuple[str, Any]], limits: ImportLimits, *, repository: str = ""
) -> Collected:
    """Uploaded files (name, file object): story files, zips and JSON exports."""
    budget = _Budget(limits)
    collected = Collected()
    repo = repository
    excluder = Excluder()
    for raw_name, handle in uploads:
        name = os.path.basename((raw_name or "upload").replace("\\", "/")) or "upload"
        head = handle.read(4)
        handle.seek(0)
        if head.startswith(b"PK\x03\x04") or name.lower().endswith(".zip"):
            collected.roots.append(RootInfo(name=name, repo=repo, path=""))
            collected.sources.extend(sources_from_zip(handle, name, budget, excluder, repo))
            continue
        kind = _kind(name)
        limit = limits.max_total_bytes if kind == "json" else limits.max_file_bytes
        data = handle.read(limit + 1)
        if len(data) > limit:
            collected.sources.append(Source(path=name, error=_too_big(len(data), limits), repo=repo))
            continue
        problem = budget.take(len(data))
        source = Source(path=name, repo=repo, kind=kind)
        if problem:
            source.error = problem
        else:
            source.data = data
        collected.sources.append(source)
    if any(not s.root for s in collected.sources):
        collected.roots.append(RootInfo(name="", repo=repo, path=""))
    return collected
