"""The audit row that 0004's trigger writes for a status change made outside StoryHub
now records the story's project id (audit_log.project_id, audit 0003), so the project's
readers see it like every other row about the story. Otherwise the same trigger as 0004."""

import importlib

from django.db import migrations

_0004 = importlib.import_module("stories.migrations.0004_status_change_outside_audit")
NOTE = _0004.NOTE
ACTION = _0004.ACTION

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
    INSERT INTO audit_log (action, entity_type, entity_id, project_id, user_id, user_repr, timestamp, details)
    VALUES ('{ACTION}', 'story', NEW.id::text, NEW.project_id, NULL, '', clock_timestamp(), jsonb_build_object(
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
    INSERT INTO audit_log (action, entity_type, entity_id, project_id, user_id, user_repr, timestamp, details)
    VALUES ('{ACTION}', 'story', CAST(NEW.id AS TEXT), NEW.project_id, NULL, '',
        strftime('%Y-%m-%d %H:%M:%f', 'now'), json_object(
        'source', 'system',
        'note', '{NOTE}',
        'changes', json_object('status', json_object(
            'old', (SELECT slug FROM statuses WHERE id = OLD.status_id),
            'new', (SELECT slug FROM statuses WHERE id = NEW.status_id)))));
END;
"""


def forward(apps, schema_editor):
    _0004._run(schema_editor, {"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD})


def reverse(apps, schema_editor):
    # Back to 0004's trigger (which names no project_id column).
    _0004.forward(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("stories", "0004_status_change_outside_audit"), ("audit", "0003_auditlog_project_id")]

    operations = [migrations.RunPython(forward, reverse)]
