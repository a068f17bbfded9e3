"""A realistic, messy planning repository (duplicate ids across folders, numeric
priorities, decorated statuses, READMEs, CRLF files, a broken file and its dependents,
several roots in one import): every file is accounted for, nothing is overwritten, a
re-import is a no-op, and a dry run predicts the real run exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.models import AuditLog
from stories.importer import (
    import_conflict_keep_existing,
    import_conflict_parked_wins,
    import_conflict_rekey,
    import_stories,
)
from stories.models import ImportConflict, ImportFile, ImportRun, StatusHistory, Story

FILES: dict[str, str | bytes] = {
    ".storyhub": "",
    ".storyhubignore": "# planning notes, not stories\nPRIORITIZATION*\n",
    "PRIORITIZATION.md": "# Prioritization\n\nS01 first.\n",
    "backlog/README.md": "# Backlog\n\nThe stories.\n",
    "backlog/S01.md": '---\nid: S01\ntitle: Sign in\nstatus: "✅ ACCEPTED"\npriority: 1\n---\n# S01: Sign in\n',
    "backlog/S02.md": (
        "---\nid: S02\ntitle: Feeds\nstatus: '**In Progress**'\npriority: 7\ndependencies: [S01]\n---\nBody.\n"
    ),
    "backlog/INF-014.md": "# INF-014 - Plain markdown story\n\nStatus: done\n",
    "refinements/S01-refined.md": "---\nid: S01\ntitle: Sign in (refined)\npriority: 2\n---\nRestated.\n",
    "refinements/README.md": "# Refinements\n",
    "staging/S03.md": b"---\r\nid: S03\r\ntitle: Windows file\r\nstatus: Accepted!\r\ndependencies: [S01]\r\n---\r\nx\r\n",
    "staging/S04.md": "---\nid: S04\ntitle: [unclosed\n---\n",
    "staging/S05.md": "---\nid: S05\ntitle: Needs S04\ndependencies: [S04]\n---\n",
    "staging/heading.md": "---\nid: S06\ntitle: Mismatch\n---\n# S07: Mismatch\n",
    "staging/plain.md": "# Story S08 — Twitter/X: Curated feeds\n\n**Status**: ✅ ACCEPTED\n",
}
ROOTS = ("backlog", "refinements", "staging")
EXPECTED = {
    ("backlog", "INF-014.md"): ("created", ""),
    ("backlog", "README.md"): ("excluded", "excluded_default"),
    ("backlog", "S01.md"): ("created", ""),
    ("backlog", "S02.md"): ("created", ""),
    ("refinements", "README.md"): ("excluded", "excluded_default"),
    ("refinements", "S01-refined.md"): ("conflict", "duplicate_key"),
    ("staging", "S03.md"): ("created", ""),
    ("staging", "S04.md"): ("failed", "yaml"),
    ("staging", "S05.md"): ("failed", "dependency_failed"),
    ("staging", "heading.md"): ("conflict", "heading_mismatch"),
    ("staging", "plain.md"): ("created", ""),
}


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "planning"
    for name, content in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    return root


def run(repo: Path, project, **kwargs):
    return import_stories([repo / r for r in ROOTS], project=project, actor=None, **kwargs)


def outcomes(report) -> list[tuple]:
    return [(f.root, f.path, f.outcome, f.code, f.key, f.reason) for f in report.files]


def counts() -> tuple[int, int, int]:
    return AuditLog.objects.count(), StatusHistory.objects.count(), ImportConflict.objects.count()


def test_every_file_is_accounted_for_and_nothing_overwritten(repo, fresh_project):
    project = fresh_project()
    report = run(repo, project)
    found = {(f.root, f.path): (f.outcome, f.code) for f in report.files}
    assert found == EXPECTED
    # Every .md under the roots is in the report, and in the persistent run.
    on_disk = {(r, p.relative_to(repo / r).as_posix()) for r in ROOTS for p in (repo / r).rglob("*.md")}
    assert set(found) == on_disk
    run_row = ImportRun.objects.get(pk=report.run_id)
    assert [r["name"] for r in run_row.roots] == list(ROOTS)
    assert run_row.state == "finished" and run_row.counts["conflict"] == 2
    assert ImportFile.objects.filter(run=run_row).count() == len(EXPECTED)
    # The first S01 stays; the refinement is parked with its full text.
    s01 = Story.objects.get(project=project, key="S01")
    assert (s01.title, s01.source_path, s01.get_priority_display()) == ("Sign in", "backlog/S01.md", "critical")
    parked = ImportConflict.objects.get(project=project, kind="duplicate_key")
    assert parked.content == FILES["refinements/S01-refined.md"]
    assert parked.story_id == s01.pk and parked.story_source_path == "backlog/S01.md"
    # Real-world values: numeric priorities (1 highest, 7 past the end = lowest), decorated statuses.
    s02, s03 = Story.objects.get(project=project, key="S02"), Story.objects.get(project=project, key="S03")
    assert (s02.get_priority_display(), s02.status.slug) == ("low", "in_progress")
    assert (s01.status.slug, s03.status.slug) == ("accepted", "accepted")
    plain = Story.objects.get(project=project, source_path="staging/plain.md")
    assert plain.title == "Twitter/X: Curated feeds" and plain.status.slug == "accepted"
    assert Story.objects.get(project=project, key="INF-014").title == "Plain markdown story"
    # The root cause is named: S05 failed because S04's own file failed.
    s05 = next(f for f in report.files if f.path == "S05.md")
    assert s05.reason.startswith("depends on S04, whose file staging/S04.md failed: malformed YAML")
    assert ImportFile.objects.get(run=run_row, path="S05.md").caused_by.path == "S04.md"

    # Re-import: a no-op (no audit, history or conflict rows), the same report.
    before = counts()
    again = run(repo, project)
    assert counts() == before
    assert {(f.root, f.path): f.outcome for f in again.files} == {
        k: ("unchanged" if v[0] == "created" else v[0]) for k, v in EXPECTED.items()
    }


def test_dry_run_predicts_the_real_run(repo, fresh_project):
    dry_project, real_project = fresh_project(), fresh_project()
    dry = run(repo, dry_project, dry_run=True)
    assert not Story.objects.filter(project=dry_project).exists()
    assert not ImportConflict.objects.filter(project=dry_project).exists()
    real = run(repo, real_project)
    assert outcomes(dry) == outcomes(real)
    # Atomic too: the same failures, every good file "skipped" in both.
    atomic_dry = run(repo, fresh_project(), dry_run=True, continue_on_error=False)
    atomic_real = run(repo, fresh_project(), continue_on_error=False)
    assert outcomes(atomic_dry) == outcomes(atomic_real)
    assert {f.outcome for f in atomic_real.files} == {"skipped", "failed", "excluded", "conflict"}


def test_keys_and_sources_do_not_depend_on_the_path_given(repo, fresh_project):
    whole, part = fresh_project(), fresh_project()
    import_stories([repo], project=whole, actor=None)
    import_stories([repo / "staging"], project=part, actor=None)
    key_of = {p: Story.objects.get(project=p, source_path="staging/plain.md").key for p in (whole, part)}
    assert key_of[whole] == key_of[part] and key_of[whole].startswith("STORY-S08-")
    # Importing the folders one by one never replaces a story from another folder.
    project = fresh_project()
    import_stories([repo / "backlog"], project=project, actor=None)
    report = import_stories([repo / "refinements"], project=project, actor=None)
    refined = next(f for f in report.files if f.path == "S01-refined.md")
    assert (refined.outcome, refined.code) == ("conflict", "key_owned")
    assert Story.objects.get(project=project, key="S01").title == "Sign in"


def test_conflicts_are_resolved_through_services(repo, fresh_project, owner):
    project = fresh_project()
    run(repo, project)
    refined = ImportConflict.objects.get(project=project, kind="duplicate_key")
    heading = ImportConflict.objects.get(project=project, kind="heading_mismatch")
    # A new key for the refinement: a story of its own, kept on re-import.
    import_conflict_rekey(actor=owner, conflict=refined, new_key="S01-R")
    story = Story.objects.get(project=project, key="S01-R")
    assert (story.title, story.source_path) == ("Sign in (refined)", "refinements/S01-refined.md")
    assert AuditLog.objects.filter(action="import_conflict.resolved", entity_id=str(refined.pk)).count() == 1
    # The heading's key wins for the mismatched file.
    import_conflict_rekey(actor=owner, conflict=heading, new_key="S07")
    before = counts()
    again = run(repo, project)
    by_path = {f.path: f for f in again.files}
    assert (by_path["S01-refined.md"].outcome, by_path["S01-refined.md"].key) == ("unchanged", "S01-R")
    assert by_path["heading.md"].outcome == "unchanged"
    assert counts() == before


def test_parked_file_wins_and_the_loser_stays_recorded(repo, fresh_project, owner):
    project = fresh_project()
    run(repo, project)
    refined = ImportConflict.objects.get(project=project, kind="duplicate_key")
    import_conflict_parked_wins(actor=owner, conflict=refined)
    s01 = Story.objects.get(project=project, key="S01")
    assert (s01.title, s01.source_path) == ("Sign in (refined)", "refinements/S01-refined.md")
    assert '"title": "Sign in"' in ImportConflict.objects.get(pk=refined.pk).replaced_content
    # Importing again: the old file is a resolved conflict, nothing flips back.
    before = counts()
    again = run(repo, project)
    old = next(f for f in again.files if f.path == "S01.md")
    assert (old.outcome, old.code) == ("conflict", "resolved_earlier")
    assert Story.objects.get(project=project, key="S01").title == "Sign in (refined)"
    assert counts() == before
    # Keeping the existing story closes the other conflict; it stays closed.
    heading = ImportConflict.objects.get(project=project, kind="heading_mismatch")
    import_conflict_keep_existing(actor=owner, conflict=heading)
    assert not ImportConflict.objects.filter(project=project, state="open").exists()
    run(repo, project)
    assert not ImportConflict.objects.filter(project=project, state="open").exists()


def test_excludes_and_ignore_file(repo, fresh_project):
    project = fresh_project()
    report = import_stories(
        [repo], project=project, actor=None, excludes=["staging/", "*-refined.md"], default_excludes=False
    )
    found = {f.source_path: (f.outcome, f.code) for f in report.files}
    assert found["PRIORITIZATION.md"] == ("excluded", "excluded_ignore_file")
    assert found["backlog/README.md"][0] == "created"  # default excludes off
    assert found["refinements/S01-refined.md"] == ("excluded", "excluded_option")
    assert found["staging/S03.md"] == ("excluded", "excluded_option")
    assert "excluded by --exclude: staging/" in next(f.reason for f in report.files if f.path == "staging/S04.md")


def test_create_missing_statuses_never_crashes(fresh_project, write_files):
    from stories import services

    project = fresh_project()
    settings = {"create_missing_statuses": True, "priority_scale": {"1": "high", "2": "medium", "3": "low"}}
    services.project_update(actor=None, project=project, data={"settings": settings})
    root = write_files(
        {
            "a.md": "---\nid: A-1\ntitle: a\nstatus: Accepted!\npriority: 3\n---\n",
            "b.md": "---\nid: A-2\ntitle: b\n---\n**Status**: ✅ ACCEPTED\n",
            "c.md": "---\nid: A-3\ntitle: c\nstatus: 'Approved!'\npriority: 1\n---\n",
            "d.md": "---\nid: A-4\ntitle: d\nstatus: ✅ **APPROVED**\npriority: P2\n---\n",
        }
    )
    report = import_stories(root, project=project, actor=None)
    assert report.ok and report.count("created") == 4, report.as_dict()
    stories = {s.key: (s.status.slug, s.get_priority_display()) for s in Story.objects.filter(project=project)}
    assert stories == {
        "A-1": ("accepted", "low"),
        "A-2": ("accepted", "medium"),  # no priority: the default
        "A-3": ("approved", "high"),
        "A-4": ("approved", "medium"),
    }
    assert project.statuses.filter(slug="approved").count() == 1
