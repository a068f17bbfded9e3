"""A story's status id by story id from an index alone, PostgreSQL only: the ready list
(stories.graph) probes the status of every blocker of every unstarted candidate, and the
primary key needs a visit to the story's row for it (bench/NOTES.md, issue 16, the
million stories). SQLite's stories table is keyed by its rowid already, so it gets none.
"""

from django.db import migrations

INDEX = "stories_status_cover_idx"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON stories (id) INCLUDE (status_id)")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("stories", "0016_story_drop_redundant_fk_indexes")]

    operations = [migrations.RunPython(create_index, drop_index)]
