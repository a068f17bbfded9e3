"""A real git remote for the sync tests: a bare repository in a temporary directory and a
clone of it, driven with the `git` binary (the "other side"); StoryHub uses dulwich."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.factories import ProjectFactory, UserFactory

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Planner",
    "GIT_AUTHOR_EMAIL": "planner@example.com",
    "GIT_COMMITTER_NAME": "Planner",
    "GIT_COMMITTER_EMAIL": "planner@example.com",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/bin:/bin",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "core.autocrlf=false", *args],
        cwd=cwd,
        env=GIT_ENV,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


class Clone:
    """The other side: a clone where planners edit files, commit and push."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, name: str, text: str) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode())

    def read(self, name: str) -> str:
        return (self.path / name).read_bytes().decode()

    def exists(self, name: str) -> bool:
        return (self.path / name).exists()

    def remove(self, name: str) -> None:
        git(self.path, "rm", "-q", name)

    def commit_and_push(self, message: str = "edit") -> None:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        git(self.path, "push", "-q", "origin", "main")

    def pull(self) -> None:
        git(self.path, "pull", "-q", "--ff-only", "origin", "main")

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD").strip()

    def log(self, *args: str) -> str:
        return git(self.path, "log", *args)


def story(key: str, title: str, *, status: str = "draft", extra: str = "", newline: str = "\n") -> str:
    text = (
        f"---\nid: {key}\ntitle: {title}\nstatus: {status}\npriority: high\nestimate: 3\n{extra}---\n"
        f"# {key}: {title}\n\nBody of {key}.\n"
    )
    return text.replace("\n", newline)


@pytest.fixture
def remote(tmp_path):
    """(bare repository path, a clone holding two backlog files and a README)."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    clone = Clone(tmp_path / "clone")
    git(tmp_path, "clone", "-q", str(bare), str(clone.path))
    clone.write("backlog/A-1.md", story("A-1", "First"))
    clone.write("backlog/A-2.md", story("A-2", "Second", newline="\r\n"))
    clone.write("docs/notes.md", "Not in a synced folder.\n")
    clone.commit_and_push("planning files")
    return bare, clone


@pytest.fixture
def admin_user(db):
    return UserFactory(username="sync-admin")


@pytest.fixture
def project(db, admin_user, settings, tmp_path):
    settings.GIT_SYNC_CACHE_DIR = str(tmp_path / "cache")
    return ProjectFactory(slug="synced", actor=admin_user)
