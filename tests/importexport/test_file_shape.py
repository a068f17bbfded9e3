"""An edited story is exported in its file's own shape: the export differs from the file
that was imported only in the lines of the values that changed (key order, quoting,
comments, folded strings, numbers, dates and CRLF line endings stay)."""

from __future__ import annotations

import datetime as dt
import difflib
import io
import zipfile

import pytest

from stories import services
from stories.exporter import stream_export
from stories.importer import import_stories
from stories.models import Story

CRLF_FILE = (
    "---\r\n"
    "id: CR-1\r\n"
    "title: Windows authored story\r\n"
    "status: draft\r\n"
    "priority: high\r\n"
    "estimate: 8\r\n"
    "labels: [alpha, beta]\r\n"
    "created: 2025-08-28\r\n"
    "---\r\n"
    "# CR-1: Windows authored story\r\n"
    "\r\n"
    "Body with CRLF.\r\n"
)

COMMENTED_FILE = """---
# Planning file, keep the comments
id: CM-1   # the key
title: 'Quoted single'
status: "In Progress"   # a decorated word
priority: medium
estimate: "3sp"
owner: team-a
summary: >-
  A folded string that
  runs over two lines.
notes: |
  literal
  block
tags:
  - one
  - two
last_updated: "2025-09-01"
emit_metadata: {source_id: null, rank: 3}
---
# CM-1: Quoted single

Text.
"""

HEADING_TITLE_FILE = """---
id: HT-1
status: draft
priority: low
estimate: 5
dependencies: [CR-1]
created: 2025-08-01
last_updated: 2025-08-02
---
# HT-1: Title from the heading

No title key in the front matter.
"""

FILES = {"win/cr-1.md": CRLF_FILE, "cm-1.md": COMMENTED_FILE, "ht-1.md": HEADING_TITLE_FILE}


def export_files(project) -> dict[str, bytes]:
    data = b"".join(stream_export(project, "markdown"))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added) between two texts, line endings kept."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


@pytest.fixture
def imported(fresh_project, write_files, owner):
    project = fresh_project()
    root = write_files(FILES)
    report = import_stories([root], project=project, actor=owner)
    assert report.ok, report.as_dict()
    return project


def edit(user, project, key, **data):
    story = Story.objects.get(project=project, key=key)
    services.story_update(actor=user, story=story, data=data, enforce_workflow=False)


def test_unchanged_stories_export_byte_for_byte(imported):
    files = export_files(imported)
    for path, text in FILES.items():
        assert files[path] == text.encode()


def test_crlf_file_keeps_crlf_and_its_number(imported, owner):
    edit(owner, imported, "CR-1", title="Windows story, retitled", labels=["alpha", "beta", "gamma"])
    after = export_files(imported)["win/cr-1.md"].decode()
    removed, added = changed_lines(CRLF_FILE, after)
    assert removed == ["title: Windows authored story\r\n", "labels: [alpha, beta]\r\n"]
    assert added == ["title: Windows story, retitled\r\n", "labels: [alpha, beta, gamma]\r\n"]
    assert "\n" not in after.replace("\r\n", "")  # no bare LF anywhere, front matter included


def test_number_stays_a_number_and_dates_stay_unquoted(imported, owner):
    edit(owner, imported, "CR-1", estimate="13", created=dt.date(2025, 9, 30))
    after = export_files(imported)["win/cr-1.md"].decode()
    removed, added = changed_lines(CRLF_FILE, after)
    assert removed == ["estimate: 8\r\n", "created: 2025-08-28\r\n"]
    assert added == ["estimate: 13\r\n", "created: 2025-09-30\r\n"]


def test_comments_quotes_and_folded_strings_stay(imported, owner):
    story = Story.objects.get(project=imported, key="CM-1")
    metadata = {**story.metadata, "emit_metadata": {"source_id": None, "rank": 4}}
    edit(
        owner,
        imported,
        "CM-1",
        title="Quoted, and edited",
        owner="team-b",
        last_updated=dt.date(2025, 10, 2),
        metadata=metadata,
    )
    after = export_files(imported)["cm-1.md"].decode()
    removed, added = changed_lines(COMMENTED_FILE, after)
    assert removed == [
        "title: 'Quoted single'\n",
        "owner: team-a\n",
        'last_updated: "2025-09-01"\n',
        "emit_metadata: {source_id: null, rank: 3}\n",
    ]
    assert added == [
        "title: 'Quoted, and edited'\n",
        "owner: team-b\n",
        'last_updated: "2025-10-02"\n',
        "emit_metadata: {source_id: null, rank: 4}\n",
    ]


def test_a_changed_folded_string_stays_folded(imported, owner):
    story = Story.objects.get(project=imported, key="CM-1")
    metadata = {**story.metadata, "summary": "A folded string, now shorter."}
    edit(owner, imported, "CM-1", metadata=metadata)
    after = export_files(imported)["cm-1.md"].decode()
    removed, added = changed_lines(COMMENTED_FILE, after)
    assert removed == ["  A folded string that\n", "  runs over two lines.\n"]
    assert added == ["  A folded string, now shorter.\n"]


def test_a_status_word_is_kept_when_the_status_did_not_change(imported, owner):
    # "In Progress" imported as the in_progress slug; an edit elsewhere leaves it as written.
    edit(owner, imported, "CM-1", estimate="5sp")
    after = export_files(imported)["cm-1.md"].decode()
    assert changed_lines(COMMENTED_FILE, after) == (['estimate: "3sp"\n'], ['estimate: "5sp"\n'])
    story = Story.objects.get(project=imported, key="CM-1")
    services.story_transition(actor=owner, story=story, status="review", enforce_workflow=False)
    after = export_files(imported)["cm-1.md"].decode()
    removed, added = changed_lines(COMMENTED_FILE, after)
    assert removed == ['status: "In Progress"   # a decorated word\n', 'estimate: "3sp"\n']
    # The comment stays in its column.
    assert added == ['status: "review"        # a decorated word\n', 'estimate: "5sp"\n']


def test_no_title_key_is_added_and_links_stay_flow(imported, owner):
    edit(owner, imported, "HT-1", priority="high", last_updated=dt.date(2025, 8, 3))
    story = Story.objects.get(project=imported, key="HT-1")
    services.dependency_add(actor=owner, story=story, depends_on=Story.objects.get(project=imported, key="CM-1"))
    after = export_files(imported)["ht-1.md"].decode()
    removed, added = changed_lines(HEADING_TITLE_FILE, after)
    assert removed == ["priority: low\n", "dependencies: [CR-1]\n", "last_updated: 2025-08-02\n"]
    assert added == ["priority: high\n", "dependencies: [CM-1, CR-1]\n", "last_updated: 2025-08-03\n"]


def fields_of(project) -> dict:
    rows = Story.objects.filter(project=project).order_by("key").values()
    # source_hash: the sha256 of the file as last imported, new for the re-imported edits.
    ignored = ("metadata", "version", "updated_at", "source_hash")
    return {r["key"]: {k: v for k, v in r.items() if k not in ignored} for r in rows}


def test_the_edited_export_imports_back_to_the_same_stories(imported, owner, tmp_path):
    edit(owner, imported, "CR-1", title="Again", estimate="2")
    edit(owner, imported, "CM-1", owner="")
    before = fields_of(imported)
    data = b"".join(stream_export(imported, "markdown"))
    path = tmp_path / "back.zip"
    path.write_bytes(data)
    report = import_stories([path], project=imported, actor=owner)
    # Only the kept front matter text of the two edited files is new.
    assert report.ok and report.count("unchanged") == 1, report.as_dict()
    assert fields_of(imported) == before
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        exported = {name: archive.read(name) for name in archive.namelist()}
    assert export_files(imported) == exported  # the files (zip entry times follow updated_at)
    after = export_files(imported)["cm-1.md"].decode()
    removed, added = changed_lines(COMMENTED_FILE, after)
    assert removed == ["owner: team-a\n"] and added == ["owner: ''\n"]  # the key stays, emptied


NUMERIC_FILE = (
    "---\nid: NP-1\ntitle: Numeric priority\nstatus: draft\npriority: 2\nestimate: 5\n---\n# NP-1: Numeric priority\n"
)


def test_a_numeric_priority_stays_a_number(fresh_project, write_files, owner):
    project = fresh_project()
    assert import_stories([write_files({"np.md": NUMERIC_FILE})], project=project, actor=owner).ok
    edit(owner, project, "NP-1", title="Numeric, retitled")
    after = export_files(project)["np.md"].decode()
    assert changed_lines(NUMERIC_FILE, after) == (["title: Numeric priority\n"], ["title: Numeric, retitled\n"])
    story = Story.objects.get(project=project, key="NP-1")
    edit(owner, project, "NP-1", priority=services_priority_above(story.priority))
    removed, added = changed_lines(NUMERIC_FILE, export_files(project)["np.md"].decode())
    assert "priority: 2\n" in removed and any(line.startswith("priority: ") and line[10:-1].isdigit() for line in added)


def services_priority_above(value: int) -> str:
    from stories.models import PRIORITY_WORDS, Priority

    higher = [p for p in Priority if p > value]
    return PRIORITY_WORDS[higher[0] if higher else Priority(value)]
