"""Bad input gets a clear error naming the file, the line where known, and the reason —
and nothing partial in an atomic import (continue_on_error=False, `--atomic`); by default
a bad file fails alone (tests/importexport/test_messy_repos.py)."""

from __future__ import annotations

import io
import os
import stat
import zipfile

import pytest

from audit.models import AuditLog
from stories.importer import ImportLimits, import_stories, sources_from_paths
from stories.models import Story

from .conftest import make_zip, story_text


def run(root, project, **kwargs):
    kwargs.setdefault("continue_on_error", False)
    return import_stories(root, project=project, actor=None, **kwargs)


def failures(report) -> dict:
    """Failed files by path (in a zip: "name.zip:entry")."""
    return {
        (f"{f.root}:{f.path}" if f.root.endswith(".zip") else f.path): f for f in report.files if f.outcome == "failed"
    }


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("---\nid: B-1\ntitle: [unclosed\nstatus: draft\n---\nx\n", 4, "malformed YAML"),
        ("---\nid: B-1\n  title: bad indent\n---\nx\n", 3, "malformed YAML"),
        ("---\n- a list\n- not a mapping\n---\nx\n", 2, "must be a mapping"),
        ("---\njust a string\n---\nx\n", 2, "must be a mapping"),
        ("---\nid: B-1\ntitle: never closed\n", 1, "not closed"),
        ("---\nid: B-1\ntitle: x\nstatus: nope\n---\n", 4, "Unknown status 'nope'"),
        ("---\nid: B-1\ntitle: x\npriority: whenever\n---\n", 4, "Unknown priority"),
        ("---\nid: B-1\ntitle: x\ncreated: not-a-date\n---\n", 4, "is not a date"),
        ("---\nid: bad key!\ntitle: x\n---\n", 2, "not a valid key"),
        ("---\nid: B-1\ntitle: {a: 1}\n---\n", 3, "must be a single value"),
        ("---\nid: B-1\n---\nno heading and no title\n", 1, "no title"),
        ("---\nid: B-1\ntitle: x\ndependencies: [NOWHERE-9]\n---\n", 4, "Unknown dependency 'NOWHERE-9'"),
        ("---\nid: B-1\ntitle: x\nestimate: 10000000sp\n---\n", 4, "At most"),
    ],
)
def test_bad_file_is_reported_with_line_and_nothing_is_written(fresh_project, write_files, content, line, reason):
    project = fresh_project()
    root = write_files({"good.md": story_text("G-1"), "bad.md": content})
    audit_before = AuditLog.objects.count()
    report = run(root, project)
    assert not report.ok and not report.written
    bad = failures(report)
    assert list(bad) == ["bad.md"]
    assert reason in bad["bad.md"].reason, bad["bad.md"].reason
    assert bad["bad.md"].line == line
    assert next(f for f in report.files if f.path == "good.md").outcome == "skipped"
    assert not Story.objects.filter(project=project).exists()
    assert AuditLog.objects.count() == audit_before


def test_unknown_status_names_the_allowed_ones_unless_told_to_create(fresh_project, write_files):
    from stories import services

    project = fresh_project()
    root = write_files({"a.md": story_text("S-1", status="Waiting on QA")})
    reason = failures(run(root, project))["a.md"].reason
    assert "draft, backlog, ready" in reason
    services.project_update(actor=None, project=project, data={"settings": {"create_missing_statuses": True}})
    assert run(root, project).ok
    story = Story.objects.get(project=project, key="S-1")
    assert (story.status.slug, story.status.name) == ("waiting_on_qa", "Waiting on QA")
    assert AuditLog.objects.filter(action="status.created", details__source="import").count() == 1


def test_status_words_map_onto_the_workflow(fresh_project, write_files):
    project = fresh_project()
    root = write_files(
        {
            "a.md": story_text("M-1", status="In Progress"),
            "b.md": story_text("M-2", status="Ready for Review"),
            "c.md": "# M-3: Plain file\n\n**Status:** Done\n",
        }
    )
    assert run(root, project).ok
    assert dict(Story.objects.filter(project=project).values_list("key", "status__slug")) == {
        "M-1": "in_progress",
        "M-2": "review",
        "M-3": "done",
    }


def test_duplicate_key_parks_the_second_file_naming_the_first(fresh_project, write_files):
    project = fresh_project()
    root = write_files({"one.md": story_text("DUP-1"), "sub/two.md": story_text("DUP-1"), "ok.md": story_text("OK-1")})
    report = run(root, project)
    assert report.ok and not failures(report)
    parked = {f.path: f for f in report.files if f.outcome == "conflict"}
    assert set(parked) == {"sub/two.md"}
    assert "also in stories/one.md" in parked["sub/two.md"].reason and parked["sub/two.md"].line == 2


def test_cycle_is_reported_for_each_file_in_it(fresh_project, write_files):
    project = fresh_project()
    root = write_files(
        {
            "a.md": story_text("CY-1", deps=["CY-2"]),
            "b.md": story_text("CY-2", deps=["CY-3"]),
            "c.md": story_text("CY-3", deps=["CY-1"]),
            "d.md": story_text("CY-4", deps=["CY-1"]),
        }
    )
    report = run(root, project)
    bad = failures(report)
    assert set(bad) == {"a.md", "b.md", "c.md", "d.md"}
    assert "CY-1 → CY-2 → CY-3 → CY-1" in bad["a.md"].reason
    assert bad["d.md"].reason.startswith(
        "depends on CY-1, whose file stories/a.md failed: dependencies: Dependency cycle"
    )
    assert bad["a.md"].line == 8  # the dependencies line
    assert not Story.objects.filter(project=project).exists()


def test_cycle_through_stored_links(fresh_project, write_files):
    project = fresh_project()
    root = write_files({"a.md": story_text("L-1"), "b.md": story_text("L-2", deps=["L-1"])})
    assert run(root, project).ok
    (root / "a.md").write_text(story_text("L-1", deps=["L-2"]))
    report = run(root, project)
    assert "cycle" in failures(report)["a.md"].reason
    assert not Story.objects.get(project=project, key="L-1").dependencies.exists()


def test_invalid_utf8_names_the_line(fresh_project, write_files):
    project = fresh_project()
    root = write_files({"a.md": b"---\nid: U-1\ntitle: caf\xe9\n---\n"})
    bad = failures(run(root, project))["a.md"]
    assert "not valid UTF-8" in bad.reason and bad.line == 3


def test_oversized_file(fresh_project, write_files):
    project = fresh_project()
    root = write_files({"big.md": story_text("O-1", body="x" * 5000), "ok.md": story_text("O-2")})
    report = run(root, project, limits=ImportLimits(max_file_bytes=2000))
    bad = failures(report)
    assert list(bad) == ["big.md"] and "file too large" in bad["big.md"].reason


def _zip_with_symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link.md")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
        archive.writestr("ok.md", story_text("Z-1"))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("entries", "limits", "path", "reason"),
    [
        ({"../escape.md": story_text("Z-1")}, None, "bad.zip:../escape.md", "escapes the archive"),
        ({"/abs/x.md": story_text("Z-1")}, None, "bad.zip:/abs/x.md", "escapes the archive"),
        ({"a/../../x.md": story_text("Z-1")}, None, "bad.zip:a/../../x.md", "escapes the archive"),
        ({f"f{i}.md": story_text(f"Z-{i}") for i in range(5)}, ImportLimits(max_files=3), "bad.zip", "limit is 3"),
        (
            {"a.md": story_text("Z-1", body="y" * 4000), "b.md": story_text("Z-2", body="y" * 4000)},
            ImportLimits(max_total_bytes=5000),
            "bad.zip",
            "uncompressed bytes",
        ),
        (
            {"bomb.md": b"---\n" + b" " * 3_000_000},
            ImportLimits(max_file_bytes=1_000_000),
            "bad.zip:bomb.md",
            "file too large",
        ),
    ],
)
def test_hostile_zips(fresh_project, tmp_path, entries, limits, path, reason):
    project = fresh_project()
    archive = tmp_path / "bad.zip"
    archive.write_bytes(make_zip(entries))
    report = run([archive], project, limits=limits or ImportLimits())
    bad = failures(report)
    assert path in bad, report.as_dict()
    assert reason in bad[path].reason
    assert not Story.objects.filter(project=project).exists()


def test_zip_bomb_is_not_read_past_the_limit(tmp_path):
    # A header that lies about the size: reading stops one byte past the limit.
    data = make_zip({"bomb.md": b"a" * 2_000_000})
    raw = bytearray(data)
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (10).to_bytes(4, "little")  # uncompressed size in the central directory
    local = raw.find(b"PK\x03\x04")
    raw[local + 22 : local + 26] = (10).to_bytes(4, "little")
    (tmp_path / "lying.zip").write_bytes(bytes(raw))
    [source] = sources_from_paths([tmp_path / "lying.zip"], ImportLimits(max_file_bytes=1000)).sources
    assert source.data is None and source.error


def test_zip_symlink_entry_is_refused(fresh_project, tmp_path):
    archive = tmp_path / "links.zip"
    archive.write_bytes(_zip_with_symlink())
    report = run([archive], fresh_project())
    assert "symlinks are not imported" in failures(report)["links.zip:link.md"].reason


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_directory_symlinks_are_not_followed(fresh_project, write_files, tmp_path):
    outside = write_files({"secret.md": story_text("SEC-1")}, root=tmp_path / "outside")
    root = write_files({"ok.md": story_text("OK-1")})
    os.symlink(outside / "secret.md", root / "link.md")
    os.symlink(outside, root / "linkdir")
    report = run(root, fresh_project(), continue_on_error=True)
    bad = failures(report)
    assert set(bad) == {"link.md", "linkdir"}
    assert all("symlinks are not followed" in b.reason for b in bad.values())
    assert [f.key for f in report.files if f.outcome == "created"] == ["OK-1"]


def test_continue_on_error_writes_the_good_files(fresh_project, write_files):
    project = fresh_project()
    root = write_files(
        {
            "a.md": story_text("C-1"),
            "b.md": "---\n[broken\n---\n",
            "c.md": story_text("C-3", deps=["C-4"]),
            "d.md": story_text("C-4", status="nope"),
            "e.md": story_text("C-5", deps=["C-1"]),
        }
    )
    report = run(root, project, continue_on_error=True)
    outcomes = {f.path: f.outcome for f in report.files}
    # c.md depends on the bad d.md, so it cannot be written either: it says why.
    assert outcomes == {"a.md": "created", "b.md": "failed", "c.md": "failed", "d.md": "failed", "e.md": "created"}
    assert failures(report)["c.md"].reason.startswith("depends on C-4, whose file stories/d.md failed: status: Unknown")
    assert failures(report)["c.md"].caused_by.path == "d.md"
    assert report.written
    assert set(Story.objects.filter(project=project).values_list("key", flat=True)) == {"C-1", "C-5"}


def test_missing_path_is_an_error(fresh_project, tmp_path):
    from stories.importer import ImportSourceError

    with pytest.raises(ImportSourceError, match="no such file"):
        run([tmp_path / "nope"], fresh_project())


def test_status_line_counts_only_before_the_first_section(fresh_project, write_files):
    project = fresh_project()
    root = write_files({"a.md": "# AC-1: Health check\n\n## Acceptance\nStatus: 200 when healthy\n"})
    assert run(root, project).ok
    assert Story.objects.get(project=project, key="AC-1").status.slug == "draft"
