"""Two-way git sync against a real remote (a bare repository and a clone driven by git)."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from stories import services
from stories.models import Story, SyncConflict, SyncedFile, SyncLink
from stories.sync.engine import sync_conflict_resolve, sync_project
from stories.sync.links import sync_link_set

from .conftest import story


@pytest.fixture
def linked(project, remote, admin_user):
    bare, clone = remote
    sync_link_set(actor=admin_user, project=project, data={"repository": str(bare), "folders": ["backlog"]})
    return project, clone


def get(project, key):
    return Story.objects.get(project=project, key=key)


def test_first_sync_imports_the_folders_and_a_second_is_a_no_op(linked, admin_user):
    project, clone = linked
    report = sync_project(actor=admin_user, project=project)
    assert sorted(report.imported) == ["backlog/A-1.md", "backlog/A-2.md"]
    assert report.pushed == [] and report.conflicts == []
    assert get(project, "A-1").file_path == "backlog/A-1.md"
    assert not Story.objects.filter(project=project, file_path__startswith="docs/").exists()
    audit_rows = AuditLog.objects.count()
    again = sync_project(actor=admin_user, project=project)
    assert not again.changed and AuditLog.objects.count() == audit_rows
    assert SyncLink.objects.get(project=project).last_commit == clone.head()


def test_edits_travel_both_ways_in_the_files_shape(linked, admin_user):
    project, clone = linked
    sync_project(actor=admin_user, project=project)
    # StoryHub side: edit A-2 (a CRLF file).
    services.story_update(actor=admin_user, story=get(project, "A-2"), data={"title": "Second, renamed"})
    # git side: edit A-1 and add A-3.
    clone.write("backlog/A-1.md", story("A-1", "First, edited in git"))
    clone.write("backlog/A-3.md", story("A-3", "Third"))
    clone.commit_and_push()
    report = sync_project(actor=admin_user, project=project)
    assert sorted(report.imported) == ["backlog/A-1.md", "backlog/A-3.md"]
    assert report.pushed == ["backlog/A-2.md"]
    assert get(project, "A-1").title == "First, edited in git"
    clone.pull()
    text = clone.read("backlog/A-2.md")
    assert text == story("A-2", "Second", newline="\r\n").replace("title: Second\r", "title: Second, renamed\r")
    message = clone.log("-1", "--format=%an%n%B")
    assert message.startswith("StoryHub\nStoryHub sync of synced: 1 file(s)")
    assert "- A-2: backlog/A-2.md" in message and "StoryHub-Users: sync-admin" in message
    audit_id = AuditLog.objects.filter(entity_id=str(get(project, "A-2").pk), action="story.updated").get().pk
    assert f"#{audit_id}" in message
    # Everything agreed: nothing more to do on either side.
    head = clone.head()
    assert not sync_project(actor=admin_user, project=project).changed
    clone.pull()
    assert clone.head() == head


def test_a_story_changed_on_both_sides_is_a_conflict_until_resolved(linked, admin_user):
    project, clone = linked
    sync_project(actor=admin_user, project=project)
    services.story_update(actor=admin_user, story=get(project, "A-1"), data={"title": "StoryHub's title"})
    clone.write("backlog/A-1.md", story("A-1", "git's title"))
    clone.commit_and_push()
    report = sync_project(actor=admin_user, project=project)
    assert report.conflicts == ["backlog/A-1.md"] and report.pushed == [] and report.imported == []
    conflict = SyncConflict.objects.get()
    assert "git's title" in conflict.remote_content and "StoryHub's title" in conflict.local_content
    # Left alone on both sides while open.
    assert get(project, "A-1").title == "StoryHub's title"
    assert not sync_project(actor=admin_user, project=project).changed
    clone.pull()
    assert "git's title" in clone.read("backlog/A-1.md")
    # Resolved: StoryHub's version wins and is pushed by the next sync.
    sync_conflict_resolve(actor=admin_user, conflict=conflict, keep="storyhub")
    assert sync_project(actor=admin_user, project=project).pushed == ["backlog/A-1.md"]
    clone.pull()
    assert "title: StoryHub's title" in clone.read("backlog/A-1.md")


def test_taking_the_repositorys_version_imports_it(linked, admin_user):
    project, clone = linked
    sync_project(actor=admin_user, project=project)
    services.story_update(actor=admin_user, story=get(project, "A-1"), data={"title": "StoryHub's title"})
    clone.write("backlog/A-1.md", story("A-1", "git's title"))
    clone.commit_and_push()
    sync_project(actor=admin_user, project=project)
    sync_conflict_resolve(actor=admin_user, conflict=SyncConflict.objects.get(), keep="repository")
    assert get(project, "A-1").title == "git's title"
    assert not sync_project(actor=admin_user, project=project).changed


def test_a_file_deleted_in_git_archives_its_story(linked, admin_user):
    project, clone = linked
    sync_project(actor=admin_user, project=project)
    clone.remove("backlog/A-1.md")
    clone.commit_and_push()
    report = sync_project(actor=admin_user, project=project)
    assert report.archived == ["A-1"]
    archived = get(project, "A-1")  # never deleted
    assert archived.backlog is not None and archived.backlog.slug == "archive"
    assert not sync_project(actor=admin_user, project=project).changed
    assert SyncedFile.objects.get(path="backlog/A-1.md").archived


def test_a_new_storyhub_story_is_written_to_the_first_folder(linked, admin_user):
    project, clone = linked
    sync_project(actor=admin_user, project=project)
    services.story_create(actor=admin_user, project=project, key="NEW-1", title="Made in StoryHub")
    report = sync_project(actor=admin_user, project=project)
    assert report.pushed == ["backlog/no-epic/NEW-1-made-in-storyhub.md"]
    clone.pull()
    assert "id: NEW-1" in clone.read("backlog/no-epic/NEW-1-made-in-storyhub.md")
    assert not sync_project(actor=admin_user, project=project).changed


def test_the_command_syncs_and_reports_failures_in_one_line(linked, admin_user, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    project, clone = linked
    call_command("sync_projects")
    assert "synced: 2 imported, 0 archived, 0 pushed" in capsys.readouterr().out
    clone.write("backlog/A-1.md", story("A-1", "Edited again"))
    clone.commit_and_push()
    call_command("sync_projects", "--watch", "--interval", "0.01", "--rounds", "2")
    assert "synced: 1 imported" in capsys.readouterr().out
    SyncLink.objects.filter(project=project).update(repository="/nonexistent/repo.git")
    with pytest.raises(CommandError, match="1 project"):
        call_command("sync_projects", "--project", "synced")
    err = capsys.readouterr().err
    assert err.startswith("synced: sync failed: fetching from /nonexistent/repo.git failed") and err.count("\n") == 1
    assert "Traceback" not in err
    with pytest.raises(CommandError, match="Not linked"):
        call_command("sync_projects", "--project", "nope")


def test_the_api_syncs_for_project_admins(linked, admin_user):
    from rest_framework.test import APIClient

    project, _ = linked
    client = APIClient()
    client.force_authenticate(admin_user)
    response = client.post(f"/api/v1/projects/{project.slug}/sync/")
    assert response.status_code == 200, response.content
    assert sorted(response.json()["imported"]) == ["backlog/A-1.md", "backlog/A-2.md"]
    SyncLink.objects.filter(project=project).update(repository="/nonexistent/repo.git")
    response = client.post(f"/api/v1/projects/{project.slug}/sync/")
    assert response.status_code == 502 and response.json()["code"] == "sync_failed"


def test_the_sync_runs_as_a_background_task(linked, admin_user, capsys):
    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    project, _ = linked
    call_command("sync_projects", "--enqueue")
    assert "synced: sync queued" in capsys.readouterr().out
    job = DBTaskResult.objects.get(queue_name="default")
    assert job.task_path == "stories.sync.tasks.sync_project_task" and job.status == "READY"
    # What db_worker runs for it (the worker itself opens its own connections, which a
    # test's transaction does not allow on PostgreSQL).
    report = job.task.call(*job.args_kwargs["args"], **job.args_kwargs["kwargs"])
    assert sorted(report["imported"]) == ["backlog/A-1.md", "backlog/A-2.md"]
    assert Story.objects.filter(project=project).count() == 2
