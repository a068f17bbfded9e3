"""`manage.py backup` → `manage.py restore` into a fresh, empty database brings back every
row of every table (audit log and sessions included), on SQLite and on PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from audit.context import write_context
from audit.models import AuditLog
from sessions_app.backends import SessionStore
from sessions_app.models import Session
from stories import services
from stories.models import Project, StatusHistory, Story
from storyhub import backups
from tests.deploy.helpers import clean_env, manage, snapshot, snapshot_in_subprocess, throwaway_pg_database
from tests.factories import DependencyFactory, MemberFactory, ProjectFactory, StoryFactory, UserFactory

# pg_dump and psql set session state (pg_dump empties search_path): through a transaction
# pooler it would stay on a pooled server connection. Backups connect to PostgreSQL itself.
pytestmark = pytest.mark.usefixtures("direct_postgres")


def make_data():
    """A bit of everything, through the services, so audit and history rows are real."""
    owner = UserFactory(username="backup-owner")
    dev = UserFactory(username="backup-dev")
    project = ProjectFactory(slug="backup-proj", name="Backup Project", actor=owner)
    other = ProjectFactory(slug="backup-other", name="Other", actor=owner)
    MemberFactory(project=project, user=dev, role="member", actor=owner)
    with write_context(source="api", request_id="req-backup-1"):
        stories = [
            StoryFactory(
                project=project, key=f"BK-{n:03d}", title=f"Ünïcode story {n} ✓", labels=["a", "b"], actor=owner
            )
            for n in range(1, 6)
        ]
    DependencyFactory(story=stories[1], depends_on=stories[0], actor=owner)
    DependencyFactory(story=stories[2], depends_on=stories[1], actor=owner)
    StoryFactory(project=other, key="OT-001", title="Elsewhere", actor=owner)
    services.story_transition(actor=owner, story=stories[0], status="ready", notes="groomed")
    services.story_update(actor=dev, story=Story.objects.get(pk=stories[3].pk), data={"metadata": {"market": "eu"}})
    for user in (owner, dev):
        store = SessionStore()
        store["_auth_user_id"] = str(user.pk)
        store["note"] = "kept across restore"
        store.set_expiry(timezone.now() + timedelta(days=3))
        store.save()
    assert AuditLog.objects.count() > 10
    assert StatusHistory.objects.exists()
    assert Session.objects.count() == 2


def assert_same(source: dict, restored: dict):
    assert set(restored) == set(source), "the restored database has different tables"
    counts_source = {t: v["count"] for t, v in source.items()}
    counts_restored = {t: v["count"] for t, v in restored.items()}
    assert counts_restored == counts_source
    for table in ("audit_log", "sessions", "stories", "status_history", "story_dependencies", "auth_user"):
        assert counts_source[table] > 0, table
    for table, content in source.items():
        assert restored[table]["rows"] == content["rows"], f"rows differ in {table}"


@pytest.mark.django_db(transaction=True)
def test_backup_then_restore_into_an_empty_database_brings_back_every_row(tmp_path):
    make_data()
    source = snapshot()
    dump = tmp_path / ("storyhub.dump" if connection.vendor == "postgresql" else "storyhub.sqlite3")
    call_command("backup", output=str(dump))
    assert dump.stat().st_size > 0
    assert backups.file_kind(dump) == connection.vendor

    if connection.vendor == "postgresql":
        with throwaway_pg_database(connection.settings_dict, "storyhub_restore_test") as (_, url):
            env = clean_env(DJANGO_SETTINGS_MODULE="storyhub.settings.test", DATABASE_URL=url)
            result = manage("restore", str(dump), env=env)
            assert result.returncode == 0, result.stderr
            assert "restored" in result.stdout
            restored = snapshot_in_subprocess(env)
            # Sequences come back too: the next row gets a fresh id, not a duplicate key.
            add = manage(
                "shell", "-c", "from tests.factories import UserFactory; UserFactory(username='after')", env=env
            )
            assert add.returncode == 0, add.stderr
    else:
        url = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        env = clean_env(DJANGO_SETTINGS_MODULE="storyhub.settings.test", DATABASE_URL=url)
        result = manage("restore", str(dump), env=env)
        assert result.returncode == 0, result.stderr
        restored = snapshot_in_subprocess(env)
    assert_same(source, restored)


@pytest.mark.django_db(transaction=True)
def test_restore_refuses_a_database_with_data_unless_forced(tmp_path):
    make_data()
    dump = tmp_path / "backup.bin"
    call_command("backup", output=str(dump))
    before = snapshot()
    with pytest.raises(CommandError) as excinfo:
        call_command("restore", str(dump))
    message = str(excinfo.value)
    assert "not empty" in message and "--force" in message and "audit_log" in message
    # --force replaces the contents: a story added after the backup is gone again.
    StoryFactory(project=Project.objects.get(slug="backup-proj"), key="BK-999", actor=None)
    call_command("restore", str(dump), force=True)
    assert snapshot() == before


@pytest.mark.django_db
def test_restore_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(CommandError, match="backup file not found"):
        call_command("restore", str(tmp_path / "nope.dump"))
    junk = tmp_path / "junk.txt"
    junk.write_text("not a backup")
    with pytest.raises(CommandError, match="not a StoryHub backup"):
        call_command("restore", str(junk))
    other = tmp_path / "other"
    other.write_bytes(b"PGDMP\x01\x0f" if connection.vendor == "sqlite" else b"SQLite format 3\x00")
    with pytest.raises(CommandError, match=f"database is {connection.vendor}"):
        call_command("restore", str(other))


def test_postgres_password_goes_through_the_environment_not_the_command_line(monkeypatch):
    settings_dict = {"NAME": "db1", "USER": "app", "PASSWORD": "s3cret-pw", "HOST": "db", "PORT": 5433, "OPTIONS": {}}
    monkeypatch.setattr(backups, "connections", {"x": type("C", (), {"settings_dict": settings_dict})()})
    args, env = backups._pg_args_and_env("x")
    assert "s3cret-pw" not in " ".join(args)
    assert env["PGPASSWORD"] == "s3cret-pw"
    assert args == ["--host", "db", "--port", "5433", "--username", "app", "--no-password", "--dbname", "db1"]


@pytest.mark.postgres
@pytest.mark.django_db
def test_missing_postgres_client_tools_give_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(CommandError, match="pg_dump not found.*postgresql-client"):
        call_command("backup", output=str(tmp_path / "x.dump"))
    dump = tmp_path / "fake.dump"
    dump.write_bytes(b"PGDMP\x01\x0f")
    with pytest.raises(CommandError, match="pg_restore not found"):
        call_command("restore", str(dump))
    assert not (tmp_path / "x.dump").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_forced_restore_drops_tables_the_backup_does_not_know(tmp_path):
    """Restoring an older backup over a newer schema: tables added since must not linger,
    or the next `migrate` would fail creating them."""
    make_data()
    dump = tmp_path / "before-upgrade.dump"
    call_command("backup", output=str(dump))
    before = snapshot()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE stories_from_a_newer_release (id serial PRIMARY KEY, note text)")
        cursor.execute("INSERT INTO stories_from_a_newer_release (note) VALUES ('new')")
    call_command("restore", str(dump), force=True)
    assert snapshot() == before
    with connection.cursor() as cursor:
        assert "stories_from_a_newer_release" not in connection.introspection.table_names(cursor)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_failed_restore_changes_nothing(tmp_path):
    make_data()
    dump = tmp_path / "good.dump"
    call_command("backup", output=str(dump))
    before = snapshot()
    broken = tmp_path / "truncated.dump"
    broken.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    with pytest.raises(CommandError, match="failed"):
        call_command("restore", str(broken), force=True)
    assert snapshot() == before
