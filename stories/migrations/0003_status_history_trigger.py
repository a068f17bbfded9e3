"""A status change made outside StoryHub (raw SQL on `stories`) still gets its
status_history row, with no user and a note saying so.

The services write their own row (with the user and notes) before they save the story.
PostgreSQL: they also set the transaction-local `storyhub.history_written` to
"<story id>:<new status id>" (stories.services.mark_status_history_written); the trigger
skips that one change and clears the marker. The value "*" means the caller records
history for every status change of the transaction (bulk writers).
SQLite has no session variables: its trigger skips a change when the story's latest
history row already records exactly that change (old → new).
"""

from django.db import migrations

NOTE = "status changed outside StoryHub (SQL); recorded by the database trigger"

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
    VALUES (NEW.id, OLD.status_id, NEW.status_id, NULL, now(), '{NOTE}');
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS stories_status_history_guard ON stories;
CREATE TRIGGER stories_status_history_guard
    AFTER UPDATE OF status_id ON stories
    FOR EACH ROW WHEN (OLD.status_id IS DISTINCT FROM NEW.status_id)
    EXECUTE FUNCTION stories_status_history_guard();
"""

POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS stories_status_history_guard ON stories;
DROP FUNCTION IF EXISTS stories_status_history_guard();
"""

SQLITE_FORWARD = f"""
CREATE TRIGGER IF NOT EXISTS stories_status_history_guard
AFTER UPDATE OF status_id ON stories
FOR EACH ROW WHEN OLD.status_id IS NOT NEW.status_id AND NOT EXISTS (
    SELECT 1 FROM status_history AS h
    WHERE h.id = (SELECT max(id) FROM status_history WHERE story_id = NEW.id)
      AND h.new_status_id = NEW.status_id AND h.old_status_id IS OLD.status_id
)
BEGIN
    INSERT INTO status_history (story_id, old_status_id, new_status_id, changed_by_id, changed_at, notes)
    VALUES (NEW.id, OLD.status_id, NEW.status_id, NULL, strftime('%Y-%m-%d %H:%M:%f', 'now'), '{NOTE}');
END;
"""

SQLITE_REVERSE = "DROP TRIGGER IF EXISTS stories_status_history_guard;"


def _run(schema_editor, sql_by_vendor: dict[str, str]) -> None:
    sql = sql_by_vendor.get(schema_editor.connection.vendor)
    if sql:
        # params=None: the SQL is sent as is (no placeholders; strftime's % is SQLite's).
        schema_editor.execute(sql, None)


def forward(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD})


def reverse(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE})


class Migration(migrations.Migration):
    dependencies = [("stories", "0002_story_search_index")]

    operations = [migrations.RunPython(forward, reverse)]
