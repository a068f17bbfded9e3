"""The git side of a project's sync, with dulwich (pure Python: the container needs no git
binary). A bare mirror per link lives in a cache directory; the sync reads trees and blobs
from it and writes new commits into it as objects only (no working tree, no index), so a
sync killed halfway leaves at most unreferenced objects behind, never a half-written file
or a moved branch. The remote's branch moves only by `push`, which the remote accepts only
if the branch is still where it was fetched from (compare-and-swap), so a change pushed by
someone else meanwhile is never overwritten.

Credentials: `credentials` is (username, password) read by the caller from the
environment; they are given to dulwich's HTTP client only and never appear in messages:
every error leaving this module is a GitSyncError whose text has the URL's userinfo
stripped and the secret masked.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dulwich.client import get_transport_and_path
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

SUFFIXES = (".md", ".txt")
ZERO = b"0" * 40
_USERINFO_RE = re.compile(r"(?<=://)[^/@\s]+@")


class GitSyncError(Exception):
    """A git operation that failed, with a one-line reason safe to show and log."""


class PushRejected(GitSyncError):
    """The remote branch moved since it was fetched; nothing was pushed."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without URL userinfo (`https://user:pw@host` -> `https://host`) and with
    every secret masked."""
    out = _USERINFO_RE.sub("", text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    return " ".join(out.split())


def display_url(url: str) -> str:
    return redact(url)


@dataclass
class FileChange:
    path: str
    data: bytes | None  # None: delete the file


class GitRemote:
    """One remote repository (a URL, or a path on this machine) and its branch."""

    def __init__(
        self,
        url: str,
        branch: str,
        *,
        cache_dir: str | os.PathLike,
        credentials: tuple[str, str] | None = None,
    ):
        self.url = url
        self.branch = branch
        self.ref = b"refs/heads/" + branch.encode()
        self.credentials = credentials
        self.cache_dir = Path(cache_dir)
        self._repo: Repo | None = None

    # ------------------------------------------------------------------ plumbing

    def _secrets(self) -> list[str]:
        return [self.credentials[1]] if self.credentials else []

    def _error(self, what: str, exc: BaseException) -> GitSyncError:
        reason = redact(str(exc) or type(exc).__name__, self._secrets())
        return GitSyncError(f"{what} {display_url(self.url)} failed: {reason}")

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            if (self.cache_dir / "objects").is_dir():
                self._repo = Repo(str(self.cache_dir))
            else:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                self._repo = Repo.init_bare(str(self.cache_dir))
        return self._repo

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def _client(self, operation: str):
        username, password = self.credentials or (None, None)
        location = self.url
        if "://" not in location and not location.startswith("git@"):
            location = str(Path(location).resolve())
        if location.startswith(("http://", "https://")):
            return get_transport_and_path(location, operation=operation, username=username, password=password)
        return get_transport_and_path(location, operation=operation)

    # ------------------------------------------------------------------ remote

    def fetch(self) -> bytes | None:
        """Fetch the branch into the mirror; its head commit (None: no such branch yet,
        e.g. an empty repository)."""
        wanted: dict[str, bytes | None] = {"head": None}

        def determine_wants(refs: Mapping[bytes, bytes], depth: int | None = None) -> list[bytes]:
            head = refs.get(self.ref)
            wanted["head"] = head
            if head is None or head == ZERO or head in self.repo.object_store:
                return []
            return [head]

        try:
            client, path = self._client("pull")
            client.fetch(path, self.repo, determine_wants=determine_wants)
        except (GitProtocolError, HangupException, NotGitRepository, OSError, ValueError, KeyError) as exc:
            raise self._error("fetching from", exc) from None
        head = wanted["head"]
        if head is None or head == ZERO:
            return None
        self.repo.refs[b"refs/remotes/origin/" + self.branch.encode()] = head
        return head

    def push(self, old: bytes | None, new: bytes) -> None:
        """Move the remote branch from `old` (None: it does not exist) to `new`; refused
        (PushRejected) if it is no longer at `old`."""
        expected = old or ZERO

        def update_refs(refs: dict[bytes, bytes]) -> dict[bytes, bytes]:
            current = refs.get(self.ref, ZERO)
            if current != expected:
                raise PushRejected(f"the branch {self.branch} of {display_url(self.url)} moved during the sync")
            return {self.ref: new}

        try:
            client, path = self._client("push")
            result = client.send_pack(path, update_refs, generate_pack_data=self.repo.generate_pack_data)
        except PushRejected:
            raise
        except (GitProtocolError, HangupException, NotGitRepository, OSError, ValueError, KeyError) as exc:
            raise self._error("pushing to", exc) from None
        status = (getattr(result, "ref_status", None) or {}).get(self.ref)
        if status:
            raise PushRejected(
                f"pushing to {display_url(self.url)} was refused: {redact(str(status), self._secrets())}"
            )
        self.repo.refs[b"refs/remotes/origin/" + self.branch.encode()] = new

    # ------------------------------------------------------------------ trees

    def files(self, commit: bytes | None, folders: Iterable[str]) -> dict[str, bytes]:
        """path -> blob id of the story files (*.md, *.txt) under `folders` at `commit`."""
        if commit is None:
            return {}
        tree = self.repo[self.repo[commit].tree]
        out: dict[str, bytes] = {}
        for folder in _normalized(folders):
            start = _subtree(self.repo, tree, folder)
            if start is not None:
                self._walk(start, folder, out)
        return out

    def _walk(self, tree: Tree, prefix: str, out: dict[str, bytes]) -> None:
        for entry in tree.iteritems():
            name = entry.path.decode("utf-8", "surrogateescape")
            path = f"{prefix}/{name}" if prefix else name
            if entry.mode & 0o170000 == 0o040000:
                if not name.startswith("."):
                    self._walk(self.repo[entry.sha], path, out)
            elif entry.mode & 0o170000 == 0o100000 and name.lower().endswith(SUFFIXES):
                out[path] = entry.sha

    def read(self, blob: bytes) -> bytes:
        return self.repo[blob].data

    def blob_id(self, data: bytes) -> bytes:
        return Blob.from_string(data).id

    def commit(
        self,
        parent: bytes | None,
        changes: Iterable[FileChange],
        *,
        message: str,
        author: str,
        now: Callable[[], float] = time.time,
    ) -> bytes:
        """A new commit on `parent` with `changes` applied (objects only: no ref moves)."""
        store = self.repo.object_store
        root = self.repo[self.repo[parent].tree] if parent is not None else Tree()
        edits: dict[tuple[str, ...], bytes | None] = {}
        for change in changes:
            parts = tuple(PurePosixPath(change.path).parts)
            if change.data is None:
                edits[parts] = None
            else:
                blob = Blob.from_string(change.data)
                store.add_object(blob)
                edits[parts] = blob.id
        tree_id = _apply(self.repo, root, edits)
        commit = Commit()
        commit.tree = tree_id
        commit.parents = [parent] if parent is not None else []
        commit.author = commit.committer = author.encode()
        commit.author_time = commit.commit_time = int(now())
        commit.author_timezone = commit.commit_timezone = 0
        commit.encoding = b"UTF-8"
        commit.message = message.encode("utf-8")
        store.add_object(commit)
        return commit.id


def _normalized(folders: Iterable[str]) -> list[str]:
    out = []
    for folder in folders or [""]:
        clean = str(folder).strip().strip("/")
        clean = "" if clean in (".", "") else clean
        if clean not in out:
            out.append(clean)
    # A folder inside another one listed is walked once, by the outer one.
    return [f for f in out if not any(o != f and (o == "" or f.startswith(o + "/")) for o in out)] or [""]


def _subtree(repo: Repo, tree: Tree, folder: str) -> Tree | None:
    for part in [p for p in folder.split("/") if p]:
        try:
            mode, sha = tree[part.encode()]
        except KeyError:
            return None
        if mode & 0o170000 != 0o040000:
            return None
        tree = repo[sha]
    return tree


def _apply(repo: Repo, tree: Tree, edits: Mapping[tuple[str, ...], bytes | None]) -> bytes:
    """Store the tree `tree` with `edits` (path parts -> blob id, None: remove) applied;
    its id. Subtrees left empty are removed."""
    here: dict[str, bytes | None] = {}
    below: dict[str, dict[tuple[str, ...], bytes | None]] = {}
    for parts, blob in edits.items():
        if len(parts) == 1:
            here[parts[0]] = blob
        else:
            below.setdefault(parts[0], {})[parts[1:]] = blob
    new = Tree()
    for entry in tree.iteritems():
        new.add(entry.path, entry.mode, entry.sha)
    for name, blob in here.items():
        key = name.encode("utf-8")
        if blob is None:
            if key in new:
                del new[key]
        else:
            new.add(key, 0o100644, blob)
    for name, sub_edits in below.items():
        key = name.encode("utf-8")
        sub = repo[new[key][1]] if key in new and new[key][0] & 0o170000 == 0o040000 else Tree()
        sub_id = _apply(repo, sub, sub_edits)
        if len(repo[sub_id]) == 0:
            if key in new:
                del new[key]
        else:
            new.add(key, 0o040000, sub_id)
    repo.object_store.add_object(new)
    return new.id
