"""Importing the same files again writes nothing; a changed file updates its story through
the services (audit row with source "import", status_history row when the status moved)."""

from __future__ import annotations

from audit.models import AuditLog
from stories.importer import import_stories
from stories.models import StatusHistory, Story, StoryDependency

from .conftest import SEEDS, story_text


def test_reimport_writes_no_rows(fresh_project, write_files):
    project = fresh_project()
    root = write_files(
        {
            "a.md": story_text("I-1", deps=["I-2", "I-3"]),
            "b.md": story_text("I-2", deps=["I-3"]),
            "c.md": story_text("I-3"),
        }
    )
    for seed in ("001_2cacb08569f805e3.txt", "003_b8894d00f89e475e.txt", "000_10f708c90851b329.txt"):
        (root / seed).write_bytes((SEEDS / seed).read_bytes())
    first = import_stories(root, project=project, actor=None)
    assert first.ok and first.count("created") == 6 and first.written
    created = AuditLog.objects.filter(action="story.created", details__source="import")
    assert created.count() == 6
    counts = (AuditLog.objects.count(), StatusHistory.objects.count(), StoryDependency.objects.count())
    versions = dict(Story.objects.filter(project=project).values_list("key", "version"))

    second = import_stories(root, project=project, actor=None)
    assert second.ok and second.count("unchanged") == 6 and not second.written
    assert (AuditLog.objects.count(), StatusHistory.objects.count(), StoryDependency.objects.count()) == counts
    assert dict(Story.objects.filter(project=project).values_list("key", "version")) == versions


def test_changed_file_updates_through_the_services(fresh_project, write_files, owner):
    project = fresh_project()
    # U-3 is done: U-1 may start once it waits for U-3 only (the blocked guard).
    files = {
        "a.md": story_text("U-1", deps=["U-2"]),
        "b.md": story_text("U-2"),
        "c.md": story_text("U-3", status="done"),
    }
    root = write_files(files)
    import_stories(root, project=project, actor=owner)
    audit_before = AuditLog.objects.count()
    history_before = StatusHistory.objects.count()

    # U-1: new title, status moves, dependency U-2 replaced by U-3. U-2 and U-3 unchanged.
    (root / "a.md").write_text(story_text("U-1", "Renamed", deps=["U-3"], status="in_progress"))
    report = import_stories(root, project=project, actor=owner)
    assert [(f.path, f.outcome) for f in report.files] == [
        ("a.md", "updated"),
        ("b.md", "unchanged"),
        ("c.md", "unchanged"),
    ]
    story = Story.objects.get(project=project, key="U-1")
    assert (story.title, story.status.slug, story.version) == ("Renamed", "in_progress", 2)
    assert list(StoryDependency.objects.filter(story=story).values_list("depends_on__key", flat=True)) == ["U-3"]

    new_rows = list(AuditLog.objects.order_by("-id")[: AuditLog.objects.count() - audit_before])
    assert sorted(r.action for r in new_rows) == ["dependency.added", "dependency.removed", "story.updated"]
    assert all(r.details["source"] == "import" and r.user == owner for r in new_rows)
    updated = next(r for r in new_rows if r.action == "story.updated")
    assert updated.details["changes"]["status"] == {"old": "draft", "new": "in_progress"}
    assert updated.details["changes"]["title"] == {"old": "Story U-1", "new": "Renamed"}
    history = list(StatusHistory.objects.order_by("id")[history_before:])
    assert [(h.story.key, h.old_status.slug, h.new_status.slug) for h in history] == [("U-1", "draft", "in_progress")]


def test_import_ignores_workflow_rules_but_records_history(fresh_project, write_files):
    # A file is the story's truth: accepted → draft is not an allowed transition in the
    # workflow, but an import takes the file's status (and records the move).
    project = fresh_project()
    root = write_files({"a.md": story_text("W-1", status="accepted")})
    import_stories(root, project=project, actor=None)
    (root / "a.md").write_text(story_text("W-1", status="draft"))
    assert import_stories(root, project=project, actor=None).count("updated") == 1
    assert Story.objects.get(project=project, key="W-1").status.slug == "draft"
    assert StatusHistory.objects.filter(story__key="W-1").count() == 2


def test_dry_run_reports_outcomes_and_writes_nothing(fresh_project, write_files):
    project = fresh_project()
    root = write_files({"a.md": story_text("D-1"), "b.md": story_text("D-2", deps=["D-1"])})
    before = AuditLog.objects.count()
    report = import_stories(root, project=project, actor=None, dry_run=True)
    assert report.ok and report.dry_run and not report.written
    assert [f.outcome for f in report.files] == ["created", "created"]
    assert not Story.objects.filter(project=project).exists()
    assert AuditLog.objects.count() == before


def test_backlog_option_puts_stories_in_the_backlog(fresh_project, write_files):
    from stories import services

    project = fresh_project()
    backlog = services.backlog_create(actor=None, project=project, slug="sprint-1", name="Sprint 1")
    root = write_files({"a.md": story_text("K-1")})
    import_stories(root, project=project, actor=None, backlog=backlog)
    assert Story.objects.get(project=project, key="K-1").backlog == backlog


def test_parallel_parsing_gives_the_same_import(fresh_project, write_files, monkeypatch):
    """Large imports parse in forked workers; the result (and the parent's database
    connection) is the same as parsing in this process."""
    from stories.importer import parsing as importer

    files = {f"p/{i:03d}.md": story_text(f"P-{i:03d}", deps=[f"P-{i - 1:03d}"] if i else []) for i in range(40)}
    files["p/bad.md"] = "---\n[broken\n---\n"
    root = write_files(files)
    monkeypatch.setattr(importer, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(importer, "_PARALLEL_CHUNK", 7)
    serial = import_stories(root, project=fresh_project(), actor=None, workers=1, continue_on_error=True)
    parallel_project = fresh_project()
    parallel = import_stories(root, project=parallel_project, actor=None, workers=2, continue_on_error=True)
    assert [f.as_dict() for f in parallel.files] == [f.as_dict() for f in serial.files]
    assert parallel.count("created") == 40 and parallel.count("failed") == 1
    assert Story.objects.filter(project=parallel_project).count() == 40  # the connection still works
