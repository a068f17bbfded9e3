"""Every seed story file (docs/seed-stories/, copied from the original requests) imports,
and exports back byte for byte."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile

import pytest

from stories.exporter import stream_export
from stories.importer import import_stories
from stories.models import ImportConflict, Story
from stories.storyfiles import SOURCE_KEY

from .conftest import SEED_FILES, SEEDS

EXPECTED = {
    "000_10f708c90851b329.txt": ("INF-013", "Docker PostgreSQL database setup with story schema", "draft", False),
    "001_2cacb08569f805e3.txt": (None, "Story — Database Foundation", "draft", True),
    "002_3c9acf64790a9b98.txt": ("INF-013", "SQLite database setup with story schema", "draft", False),
    "003_b8894d00f89e475e.txt": (None, "Configure PostgreSQL Database with Docker Compose", "done", True),
    "004_f7dc532672ddfefc.txt": (None, "Configure PostgreSQL database with initial schema", "review", True),
}


def test_the_seed_files_are_all_here():
    assert [p.name for p in SEED_FILES] == sorted(EXPECTED)


@pytest.mark.parametrize("seed", SEED_FILES, ids=lambda p: p.name)
def test_each_seed_file_imports_and_exports_byte_for_byte(seed, fresh_project):
    project = fresh_project()
    report = import_stories([seed], project=project, actor=None)
    assert report.ok, report.as_dict()
    [result] = report.files
    assert result.outcome == "created"
    key, title, status, generated = EXPECTED[seed.name]
    story = Story.objects.get(project=project)
    if key:
        assert story.key == key
    assert story.title == title
    assert story.status.slug == status
    # Its path in its repository (this checkout), whatever path was given.
    assert story.file_path == story.source_path and story.file_path.endswith(f"seed-stories/{seed.name}")
    assert story.source_hash == hashlib.sha256(seed.read_bytes()).hexdigest()
    assert bool(result.warnings) == generated
    if generated:
        assert "generated key" in result.warnings[0] and story.key in result.warnings[0]
    # The body is kept verbatim (after the front matter, or the whole file without one).
    text = seed.read_text(encoding="utf-8")
    assert text.endswith(story.body)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(stream_export(project, "markdown"))))
    assert archive.namelist() == [story.file_path]
    assert archive.read(story.file_path) == seed.read_bytes()


def test_front_matter_mapping_of_seed_000(fresh_project):
    project = fresh_project()
    import_stories([SEEDS / "000_10f708c90851b329.txt"], project=project, actor=None)
    story = Story.objects.select_related("epic").get(project=project, key="INF-013")
    assert story.branch_name == "inf-013-docker-postgresql-database-setup-story-schema"
    assert story.epic.slug == "infrastructure"
    assert story.get_priority_display() == "high"
    assert (story.estimate, story.points_min, story.points_max) == ("3sp", 3, 3)
    assert story.labels == ["database", "postgresql", "docker", "schema"]
    assert story.created == story.last_updated == dt.date(2025, 8, 28)
    assert (story.author, story.owner) == ("planning-agent", "implementation-team")
    meta = {k: v for k, v in story.metadata.items() if k != SOURCE_KEY}
    assert meta == {
        "market": None,
        "layer": None,
        "emit_metadata": {"source_id": None, "layer": None, "input_path": None, "notes": None},
    }
    assert story.metadata[SOURCE_KEY].startswith("id: INF-013\n")
    assert story.body.startswith("\n# INF-013: Docker PostgreSQL database setup with story schema\n")


def test_generated_keys_are_unique_and_stable(fresh_project):
    # 003 and 004 both say "Story 1.3": they still get different keys, the same every time.
    files = [SEEDS / "001_2cacb08569f805e3.txt", SEEDS / "003_b8894d00f89e475e.txt", SEEDS / "004_f7dc532672ddfefc.txt"]
    first = import_stories(files, project=fresh_project(), actor=None)
    second = import_stories(files, project=fresh_project(), actor=None)
    keys = [f.key for f in first.files]
    assert len(set(keys)) == 3
    assert keys == [f.key for f in second.files]
    assert keys[1].startswith("STORY-1.3-") and keys[2].startswith("STORY-1.3-")


def test_the_whole_seed_directory_parks_the_duplicate_key(fresh_project):
    # 000 and 002 are two versions of INF-013: the first is imported, the second parked
    # with its full text; the other files are imported.
    project = fresh_project()
    report = import_stories(SEEDS, project=project, actor=None)
    outcomes = {f.path: f.outcome for f in report.files}
    assert outcomes["000_10f708c90851b329.txt"] == "created"
    assert outcomes["002_3c9acf64790a9b98.txt"] == "conflict"
    parked = next(f for f in report.files if f.outcome == "conflict")
    assert parked.code == "duplicate_key" and "000_10f708c90851b329.txt" in parked.reason and parked.line == 2
    conflict = ImportConflict.objects.get(pk=parked.conflict_id)
    assert conflict.content == (SEEDS / "002_3c9acf64790a9b98.txt").read_text(encoding="utf-8")
    assert Story.objects.get(project=project, key="INF-013").title.startswith("Docker PostgreSQL")
    assert Story.objects.filter(project=project).count() == 4
