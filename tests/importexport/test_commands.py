"""manage.py import_stories / export_stories."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.management import CommandError, call_command

from stories.models import Story
from storyhub.progress import ProgressBar

from .conftest import SEEDS, story_text


def test_import_command_reports_each_file(project, write_files, capsys):
    root = write_files({"a.md": story_text("CMD-1"), "b.md": story_text("CMD-2", deps=["CMD-1"])})
    (root / "003.txt").write_bytes((SEEDS / "003_b8894d00f89e475e.txt").read_bytes())
    out = io.StringIO()
    call_command("import_stories", str(root), "--project", project.slug, stdout=out)
    text = out.getvalue()
    assert "created    stories/a.md  CMD-1" in text
    assert "warning    stories/003.txt  no id in the file; generated key STORY-1.3-" in text
    assert "3 created, 0 updated, 0 unchanged, 0 failed" in text
    assert Story.objects.filter(project=project).count() == 3

    out = io.StringIO()
    call_command("import_stories", str(root), "--project", project.slug, stdout=out)
    assert "0 created, 0 updated, 3 unchanged, 0 failed" in out.getvalue()


def test_import_command_failure_is_atomic_with_exit_status(project, write_files):
    root = write_files({"a.md": story_text("CMD-1"), "b.md": "---\nid: X\ntitle: [\n---\n"})
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 files cannot be imported; nothing was written") as excinfo:
        call_command("import_stories", str(root), "--project", project.slug, "--atomic", stdout=out)
    assert excinfo.value.returncode == 1
    assert "failed     stories/b.md:3  malformed YAML front matter" in out.getvalue()
    assert "1 not written" in out.getvalue()
    assert not Story.objects.filter(project=project).exists()

    with pytest.raises(CommandError) as excinfo:
        call_command("import_stories", str(root), "--project", project.slug, "--continue-on-error", stdout=out)
    assert excinfo.value.returncode == 2
    assert Story.objects.filter(project=project).count() == 1


def test_import_command_dry_run_and_bad_arguments(project, write_files):
    root = write_files({"a.md": story_text("CMD-1")})
    out = io.StringIO()
    call_command("import_stories", str(root), "--project", project.slug, "--dry-run", stdout=out)
    assert "dry run: nothing was written" in out.getvalue()
    assert not Story.objects.filter(project=project).exists()
    with pytest.raises(CommandError, match="No project 'nope'"):
        call_command("import_stories", str(root), "--project", "nope")
    with pytest.raises(CommandError, match="No backlog 'nope'"):
        call_command("import_stories", str(root), "--project", project.slug, "--backlog", "nope")
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_stories", str(root / "missing"), "--project", project.slug)


def test_progress_bar_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = ProgressBar(tty, width=10)
    bar("read", 5, 10)
    bar("read", 10, 10)
    assert "reading  [##########] 10/10\n" in tty.getvalue()
    plain = io.StringIO()
    ProgressBar(plain)("read", 10, 10)
    assert plain.getvalue() == ""


def test_export_command_shows_progress_on_a_terminal(project, write_files, tmp_path, monkeypatch):
    from stories import exporter

    root = write_files({f"{i}.md": story_text(f"PG-{i}") for i in range(5)})
    call_command("import_stories", str(root), "--project", project.slug, stdout=io.StringIO())
    monkeypatch.setattr(exporter, "CHUNK", 2)  # three pages: 2, 4, 5 stories done
    seen = []
    for fmt in ("markdown", "json", "csv"):
        seen.clear()
        b"".join(exporter.stream_export(project, fmt, progress=seen.append))
        assert seen == [2, 4, 5], fmt

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    out = tmp_path / "out.csv"
    call_command(
        "export_stories", "--project", project.slug, "--format", "csv", "--output", str(out), stdout=io.StringIO()
    )
    assert tty.getvalue().endswith("export   [" + "#" * 30 + "] 5/5\n")
    assert len(out.read_text().splitlines()) == 6  # header + 5 stories


def test_export_command_writes_each_format(project, write_files, tmp_path):
    root = write_files({"a.md": story_text("EX-1"), "b.md": story_text("EX-2", status="done")})
    call_command("import_stories", str(root), "--project", project.slug, stdout=io.StringIO())
    out = io.StringIO()
    target = tmp_path / "out.zip"
    call_command("export_stories", "--project", project.slug, "--output", str(target), stdout=out)
    assert f"Exported 2 stories of {project.slug} as markdown to {target}." in out.getvalue()
    archive = zipfile.ZipFile(target)
    assert sorted(archive.namelist()) == ["a.md", "b.md"]
    assert archive.read("a.md") == (root / "a.md").read_bytes()
    call_command(
        "export_stories",
        "--project",
        project.slug,
        "--format",
        "csv",
        "--status",
        "done",
        "--output",
        str(tmp_path / "out.csv"),
        stdout=io.StringIO(),
    )
    assert (tmp_path / "out.csv").read_text().splitlines()[1].startswith("EX-2,")
    with pytest.raises(CommandError, match=f"No epic 'nope' in project '{project.slug}'"):
        call_command("export_stories", "--project", project.slug, "--epic", "nope", "--output", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
    call_command(
        "export_stories",
        "--project",
        project.slug,
        "--format",
        "json",
        "--output",
        str(tmp_path / "o.json"),
        stdout=io.StringIO(),
    )
    assert b'"key":"EX-1"' in (tmp_path / "o.json").read_bytes()
    with pytest.raises(CommandError, match="No project"):
        call_command("export_stories", "--project", "nope", "--output", str(target))
