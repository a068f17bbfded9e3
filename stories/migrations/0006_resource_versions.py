"""A `version` on projects, backlogs, statuses, epics and project members, as stories
have: every service write bumps it, the API answers it as the ETag and `version`, and a
stale If-Match / `version` is refused (412 / 409) instead of overwriting someone's change.

`db_default` too, so rows inserted by raw SQL (COPY in the benchmark) need not name it.

SQLite rebuilds a table to add a NOT NULL column, and the status-history trigger on
`stories` (0004, as 0005 left it) reads `statuses`: rebuilding `statuses` under it breaks
the trigger, so on SQLite it is dropped first and 0005's created again afterwards (both
directions)."""

import importlib

from django.db import migrations, models

# The migration that last (re)created the trigger; a later one must be named here instead.
_TRIGGER = importlib.import_module("stories.migrations.0005_status_change_outside_audit_project")
_DROP_SQLITE_TRIGGER = "DROP TRIGGER IF EXISTS stories_status_history_guard;"


def drop_sqlite_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(_DROP_SQLITE_TRIGGER, None)


def create_sqlite_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        _TRIGGER.forward(apps, schema_editor)


def _version():
    return models.PositiveIntegerField(db_default=1, default=1)


class Migration(migrations.Migration):
    dependencies = [("stories", "0005_status_change_outside_audit_project")]

    operations = [
        migrations.RunPython(drop_sqlite_trigger, create_sqlite_trigger),
        migrations.AddField(model_name="backlog", name="version", field=_version()),
        migrations.AddField(model_name="epic", name="version", field=_version()),
        migrations.AddField(model_name="project", name="version", field=_version()),
        migrations.AddField(model_name="projectmember", name="version", field=_version()),
        migrations.AddField(model_name="status", name="version", field=_version()),
        migrations.RunPython(create_sqlite_trigger, drop_sqlite_trigger),
    ]
