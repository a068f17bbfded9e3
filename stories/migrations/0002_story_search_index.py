"""Full-text search index on stories (title + body), PostgreSQL only; SQLite searches
with icontains instead (stories.api.views.search_filter uses the same expression)."""

from django.db import migrations

SEARCH_EXPRESSION = "to_tsvector('english', coalesce(title, '') || ' ' || coalesce(body, ''))"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS stories_search_idx ON stories USING gin ({SEARCH_EXPRESSION})"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS stories_search_idx")


class Migration(migrations.Migration):
    dependencies = [("stories", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index)]
