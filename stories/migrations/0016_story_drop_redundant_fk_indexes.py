# The single-column indexes Django adds for Story.project and Story.backlog duplicate the
# leading column of stories_unique_key_per_project (project, key) and of
# stories_backlog_priority_idx (backlog, priority): every story write paid for two index
# entries no query needed (bench/NOTES.md, issue 16). The state change is Django's
# `db_index=False`; the database change is a plain DROP INDEX, because Django's own
# AlterField would drop and re-add (and so re-validate) both foreign keys on PostgreSQL.

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {"stories_project_id_a3762677": "project_id", "stories_backlog_id_8c972493": "backlog_id"}


class Migration(migrations.Migration):
    dependencies = [
        ("stories", "0015_blocks_graph_version"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="story",
                    name="backlog",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="stories",
                        to="stories.backlog",
                    ),
                ),
                migrations.AlterField(
                    model_name="story",
                    name="project",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="stories",
                        to="stories.project",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "stories" ("{column}")',
                )
                for name, column in INDEXES.items()
            ],
        ),
    ]
