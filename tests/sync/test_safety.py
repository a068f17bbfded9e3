"""A sync stopped halfway leaves nothing half-written; credentials come from the
environment only and never show in errors, logs or the database."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditLog
from stories import services
from stories.models import Story, SyncedFile, SyncLink
from stories.sync import engine
from stories.sync.engine import sync_project
from stories.sync.gitrepo import GitRemote, GitSyncError
from stories.sync.links import sync_link_set

from .conftest import story

SECRET = "s3cr3t-token-value"


@pytest.fixture
def linked(project, remote, admin_user):
    bare, clone = remote
    sync_link_set(actor=admin_user, project=project, data={"repository": str(bare), "folders": ["backlog"]})
    return project, clone


def state(project):
    stories = sorted(Story.objects.filter(project=project).values_list("key", "title", "version"))
    return stories, AuditLog.objects.count(), list(SyncedFile.objects.values_list("path", "content_hash"))


def test_a_sync_that_fails_before_the_push_changes_nothing(linked, admin_user, monkeypatch):
    project, clone = linked
    sync_project(actor=admin_user, project=project)
    services.story_update(actor=admin_user, story=Story.objects.get(key="A-1"), data={"title": "Local"})
    clone.write("backlog/A-2.md", story("A-2", "Remote", newline="\r\n"))
    clone.write("backlog/A-9.md", story("A-9", "New in git"))
    clone.commit_and_push()
    before, head = state(project), clone.head()

    def killed(self, old, new):
        raise KeyboardInterrupt  # the process stopped right before pushing

    monkeypatch.setattr(GitRemote, "push", killed)
    with pytest.raises(KeyboardInterrupt):
        sync_project(actor=admin_user, project=project)
    assert state(project) == before  # the imports of were rolled back
    assert not Story.objects.filter(key="A-9").exists()
    clone.pull()
    assert clone.head() == head
    monkeypatch.undo()
    report = sync_project(actor=admin_user, project=project)
    assert sorted(report.imported) == ["backlog/A-2.md", "backlog/A-9.md"] and report.pushed == ["backlog/A-1.md"]


def test_a_sync_killed_after_the_push_is_repaired_by_the_next(linked, admin_user, monkeypatch):
    project, clone = linked
    sync_project(actor=admin_user, project=project)
    services.story_update(actor=admin_user, story=Story.objects.get(key="A-1"), data={"title": "Local"})
    before = state(project)

    def killed(self):
        raise KeyboardInterrupt  # pushed, then stopped before the database committed

    monkeypatch.setattr(engine._Sync, "_record", killed)
    with pytest.raises(KeyboardInterrupt):
        sync_project(actor=admin_user, project=project)
    assert state(project) == before
    clone.pull()
    pushed_head = clone.head()
    assert "title: Local" in clone.read("backlog/A-1.md")
    monkeypatch.undo()
    report = sync_project(actor=admin_user, project=project)
    # git already holds what StoryHub writes: agreed, no conflict and no second commit.
    assert report.conflicts == [] and report.pushed == [] and report.agreed == 1
    clone.pull()
    assert clone.head() == pushed_head
    assert not sync_project(actor=admin_user, project=project).changed


def test_credentials_in_the_url_or_a_foreign_variable_are_refused(project, admin_user):
    for data in (
        {"repository": f"https://user:{SECRET}@git.example.com/plan.git"},
        {"repository": "https://git.example.com/plan.git", "credentials_env": "DJANGO_SECRET_KEY"},
        {"repository": "https://git.example.com/plan.git", "credentials_env": SECRET},
    ):
        with pytest.raises(ValidationError) as refused:
            sync_link_set(actor=admin_user, project=project, data=data)
        assert SECRET not in str(refused.value)
    assert not SyncLink.objects.exists()


class _AuthRecorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        _AuthRecorder.seen.append(self.headers.get("Authorization", ""))
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_credentials_come_from_the_environment_and_are_never_shown(project, admin_user, monkeypatch, caplog):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AuthRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/plan.git"
        monkeypatch.setenv("STORYHUB_GIT_PLAN", f"planner:{SECRET}")
        sync_link_set(
            actor=admin_user, project=project, data={"repository": url, "credentials_env": "STORYHUB_GIT_PLAN"}
        )
        with caplog.at_level(logging.DEBUG), pytest.raises(GitSyncError) as failed:
            sync_project(actor=admin_user, project=project)
    finally:
        server.shutdown()
        server.server_close()
    import base64

    assert _AuthRecorder.seen and any(
        base64.b64decode(h.split()[1]).decode() == f"planner:{SECRET}" for h in _AuthRecorder.seen if h
    ), _AuthRecorder.seen
    message = str(failed.value)
    assert message.count("\n") == 0 and "127.0.0.1" in message
    assert SECRET not in message and SECRET not in caplog.text
    link = SyncLink.objects.get(project=project)
    assert SECRET not in link.last_error and link.last_error
    assert not any(SECRET in str(v) for v in SyncLink.objects.values().get().values())
    assert not AuditLog.objects.filter(details__icontains=SECRET).exists()


def test_an_unset_credentials_variable_is_a_one_line_error(project, admin_user, monkeypatch):
    monkeypatch.delenv("STORYHUB_GIT_MISSING", raising=False)
    sync_link_set(
        actor=admin_user,
        project=project,
        data={"repository": "https://git.example.com/plan.git", "credentials_env": "STORYHUB_GIT_MISSING"},
    )
    with pytest.raises(GitSyncError, match="environment variable STORYHUB_GIT_MISSING is not set"):
        sync_project(actor=admin_user, project=project)
