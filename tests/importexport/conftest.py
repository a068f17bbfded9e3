"""Fixtures for story-file import / export tests."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests.api.conftest import admin_user, caller, member_client, owner_client  # noqa: F401 (API clients)
from tests.factories import ProjectFactory

SEEDS = Path(__file__).resolve().parents[2] / "docs" / "seed-stories"
SEED_FILES = sorted(SEEDS.glob("*.txt"))


def story_text(key: str, title: str = "", *, deps=(), status: str = "draft", extra: str = "", body: str = "") -> str:
    deps_yaml = "[" + ", ".join(deps) + "]"
    return (
        "---\n"
        f"id: {key}\n"
        f"title: {title or 'Story ' + key}\n"
        "epic: importing\n"
        f"status: {status}\n"
        "priority: high\n"
        'estimate: "2sp"\n'
        f"dependencies: {deps_yaml}\n"
        "labels: [a, b]\n"
        "created: 2025-08-28\n"
        f"{extra}"
        "---\n"
        f"# {key}: {title or 'Story ' + key}\n\n{body or 'Body.'}\n"
    )


@pytest.fixture
def write_files(tmp_path):
    """write_files({"a.md": text, "sub/b.txt": bytes}) -> the directory."""

    def write(files: dict, root: Path | None = None) -> Path:
        root = root or tmp_path / "stories"
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8", newline="")
        return root

    return write


def make_zip(entries: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content.encode() if isinstance(content, str) else content)
    return buffer.getvalue()


@pytest.fixture
def fresh_project(owner):
    counter = iter(range(1000))

    def make(slug: str | None = None):
        return ProjectFactory(slug=slug or f"fresh-{next(counter)}", actor=owner)

    return make
