"""Every migration runs backward to zero and forward again, on the database under test."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

APPS = ("stories", "sessions_app", "audit")


def _tables():
    return set(connection.introspection.table_names())


def test_migrations_reverse_and_reapply():
    ours = {
        "projects",
        "stories",
        "story_dependencies",
        "status_history",
        "audit_log",
        "sessions",
        "project_members",
        "project_dependencies",
        "backlogs",
        "statuses",
        "epics",
    }
    assert ours <= _tables()
    for app in APPS:
        call_command("migrate", app, "zero", verbosity=0)
    assert not (ours & _tables())
    call_command("migrate", verbosity=0)
    assert ours <= _tables()


def test_no_missing_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def _triggers(table: str) -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = %s::regclass", [table])
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
        return {name for (name,) in cursor.fetchall()}


def test_guard_triggers_migrate_backward_and_forward():
    audit_trigger = "audit_log_append_only" if connection.vendor == "postgresql" else "audit_log_no_update"
    assert audit_trigger in _triggers("audit_log")
    assert "stories_status_history_guard" in _triggers("stories")

    call_command("migrate", "audit", "0001", verbosity=0)
    call_command("migrate", "stories", "0002", verbosity=0)
    assert not _triggers("audit_log")
    assert not _triggers("stories")
    with connection.cursor() as cursor:  # unguarded again: the reverse really removed them
        cursor.execute(
            "INSERT INTO audit_log (action, entity_type, entity_id, user_repr, timestamp, details) "
            "VALUES ('t', '', '', '', %s, '{}')",
            [connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        cursor.execute("UPDATE audit_log SET action = 'changed' WHERE action = 't'")
        assert cursor.rowcount == 1

    call_command("migrate", verbosity=0)
    assert audit_trigger in _triggers("audit_log")
    assert "stories_status_history_guard" in _triggers("stories")
