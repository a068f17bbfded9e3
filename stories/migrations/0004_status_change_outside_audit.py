"""A status change made outside StoryHub (raw SQL on `stories`) is now also visible to
auditors and to optimistic concurrency, not only to the status history (0003):

- an `audit_log` row, action `story.status_changed_outside`, no user, source `system`,
  with the status change old → new (slugs) and the trigger's note;
- the story's `version` goes up by one and `updated_at` moves, so a client holding the
  old ETag gets 412 / 409 instead of silently writing over the change, and
  `updated_since` finds it.

On PostgreSQL the times are clock_timestamp() (the moment of the change, not the start of
its transaction, so updated_at never goes back).

Changes made through the services are skipped exactly as in 0003 (they write their own
rows and bump the version themselves). The extra UPDATE sets only version and
updated_at, so it does not fire the trigger (`AFTER UPDATE OF status_id`) again.
"""

import importlib

from django.db import migrations

_0003 = importlib.import_module("stories.migrations.0003_status_history_trigger")
NOTE = _0003.NOTE
ACTION = "story.status_changed_outside"

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION stories_status_history_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    marker text := coalesce(current_setting('storyhub.history_written', true), '');
BEGIN
    IF marker = '*' THEN
        RETURN NULL;
    END IF;
    IF marker = NEW.id::text || ':' || NEW.status_id::text THEN
        -- Recorded by the service that made this change; the marker covers one change.
        PERFORM set_config('storyhub.history_written', '', true);
        RETURN NULL;
    END IF;
    INSERT INTO status_history (story_id, old_status_id, new_status_id, changed_by_id, changed_at, notes)
    VALUES (NEW.id, OLD.status_id, NEW.status_id, NULL, clock_timestamp(), '{NOTE}');
    UPDATE stories SET version = version + 1, updated_at = clock_timestamp() WHERE id = NEW.id;
    INSERT INTO audit_log (action, entity_type, entity_id, user_id, user_repr, timestamp, details)
    VALUES ('{ACTION}', 'story', NEW.id::text, NULL, '', clock_timestamp(), jsonb_build_object(
        'source', 'system',
        'note', '{NOTE}',
        'changes', jsonb_build_object('status', jsonb_build_object(
            'old', (SELECT slug FROM statuses WHERE id = OLD.status_id),
            'new', (SELECT slug FROM statuses WHERE id = NEW.status_id)))));
    RETURN NULL;
END
$$;
"""

SQLITE_FORWARD = f"""
DROP TRIGGER IF EXISTS stories_status_history_guard;
CREATE TRIGGER stories_status_history_guard
AFTER UPDATE OF status_id ON stories
FOR EACH ROW WHEN OLD.status_id IS NOT NEW.status_id AND NOT EXISTS (
    SELECT 1 FROM status_history AS h
    WHERE h.id = (SELECT max(id) FROM status_history WHERE story_id = NEW.id)
      AND h.new_status_id = NEW.status_id AND h.old_status_id IS OLD.status_id
)
BEGIN
    INSERT INTO status_history (story_id, old_status_id, new_status_id, changed_by_id, changed_at, notes)
    VALUES (NEW.id, OLD.status_id, NEW.status_id, NULL, strftime('%Y-%m-%d %H:%M:%f', 'now'), '{NOTE}');
    UPDATE stories SET version = version + 1, updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
    WHERE id = NEW.id;
    INSERT INTO audit_log (action, entity_type, entity_id, user_id, user_repr, timestamp, details)
    VALUES ('{ACTION}', 'story', CAST(NEW.id AS TEXT), NULL, '', strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object(
        'source', 'system',
        'note', '{NOTE}',
        'changes', json_object('status', json_object(
            'old', (SELECT slug FROM statuses WHERE id = OLD.status_id),
            'new', (SELECT slug FROM statuses WHERE id = NEW.status_id)))));
END;
"""

# Back to 0003's trigger.
SQLITE_REVERSE = "DROP TRIGGER IF EXISTS stories_status_history_guard;\n" + _0003.SQLITE_FORWARD


def _run(schema_editor, sql_by_vendor: dict[str, str]) -> None:
    sql = sql_by_vendor.get(schema_editor.connection.vendor)
    if not sql:
        return
    if schema_editor.connection.vendor == "sqlite":
        # One statement per execute on SQLite; the trigger body's semicolons stay inside it.
        drop, create = sql.split(";\n", 1)
        schema_editor.execute(drop, None)
        schema_editor.execute(create, None)
    else:
        schema_editor.execute(sql, None)


def forward(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD})


def reverse(apps, schema_editor):
    _run(schema_editor, {"postgresql": _0003.POSTGRES_FORWARD, "sqlite": SQLITE_REVERSE})


class Migration(migrations.Migration):
    dependencies = [("stories", "0003_status_history_trigger"), ("audit", "0002_audit_log_append_only")]

    operations = [migrations.RunPython(forward, reverse)]
