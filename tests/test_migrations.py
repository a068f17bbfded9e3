"""Every migration runs backward to zero and forward again, on the database under test."""

import pytest
from django.core.management import call_command
from django.db import connection

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
