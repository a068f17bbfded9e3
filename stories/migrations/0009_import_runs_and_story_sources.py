"""Import runs (the persistent report of every import: who, when, on what, each file's
outcome and reason), parked conflicts (a file whose key is taken, kept with its full
text until resolved), and on stories where their text lives (source repository, path,
content hash).

SQLite rebuilds `stories` to add a NOT NULL column, which drops its status-history
trigger (0005's); as in 0006 it is dropped first and created again afterwards, in both
directions."""

import importlib

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

_TRIGGER = importlib.import_module("stories.migrations.0005_status_change_outside_audit_project")
_DROP_SQLITE_TRIGGER = "DROP TRIGGER IF EXISTS stories_status_history_guard;"


def drop_sqlite_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(_DROP_SQLITE_TRIGGER, None)


def create_sqlite_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        _TRIGGER.forward(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("stories", "0008_json_value_limits"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(drop_sqlite_trigger, create_sqlite_trigger),
        migrations.AddField(
            model_name="story",
            name="source_hash",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.AddField(
            model_name="story",
            name="source_path",
            field=models.CharField(blank=True, db_default="", default="", max_length=1000),
        ),
        migrations.AddField(
            model_name="story",
            name="source_repo",
            field=models.CharField(blank=True, db_default="", default="", max_length=500),
        ),
        migrations.RunPython(create_sqlite_trigger, drop_sqlite_trigger),
        migrations.CreateModel(
            name="ImportRun",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("actor_repr", models.CharField(blank=True, default="", max_length=200)),
                ("source", models.CharField(default="cli", max_length=20)),
                ("repository", models.CharField(blank=True, default="", max_length=500)),
                ("roots", models.JSONField(blank=True, default=list)),
                ("options", models.JSONField(blank=True, default=dict)),
                ("dry_run", models.BooleanField(default=False)),
                (
                    "state",
                    models.CharField(
                        choices=[("running", "running"), ("finished", "finished"), ("failed", "failed")],
                        default="running",
                        max_length=20,
                    ),
                ),
                ("counts", models.JSONField(blank=True, default=dict)),
                ("error", models.TextField(blank=True, default="")),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="import_runs", to="stories.project"
                    ),
                ),
            ],
            options={
                "db_table": "import_runs",
                "ordering": ["-started_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="ImportFile",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("root", models.CharField(blank=True, default="", max_length=200)),
                ("path", models.CharField(max_length=1000)),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("created", "created"),
                            ("updated", "updated"),
                            ("unchanged", "unchanged"),
                            ("conflict", "conflict"),
                            ("failed", "failed"),
                            ("excluded", "excluded"),
                            ("skipped", "skipped"),
                        ],
                        max_length=20,
                    ),
                ),
                ("reason", models.CharField(blank=True, default="", max_length=50)),
                ("message", models.TextField(blank=True, default="")),
                ("line", models.PositiveIntegerField(blank=True, null=True)),
                ("key", models.CharField(blank=True, default="", max_length=64)),
                ("content_hash", models.CharField(blank=True, default="", max_length=64)),
                ("warnings", models.JSONField(blank=True, default=list)),
                (
                    "caused_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="stories.importfile",
                    ),
                ),
                (
                    "story",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="stories.story",
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="files", to="stories.importrun"
                    ),
                ),
            ],
            options={
                "db_table": "import_files",
                "ordering": ["run_id", "id"],
            },
        ),
        migrations.CreateModel(
            name="ImportConflict",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("duplicate_key", "same key as another file of the import"),
                            ("key_owned", "key owned by another source file"),
                            ("heading_mismatch", "heading key differs from id"),
                        ],
                        max_length=30,
                    ),
                ),
                ("key", models.CharField(max_length=64)),
                ("other_key", models.CharField(blank=True, default="", max_length=64)),
                ("source_repo", models.CharField(blank=True, default="", max_length=500)),
                ("source_path", models.CharField(max_length=1000)),
                ("content", models.TextField()),
                ("content_hash", models.CharField(max_length=64)),
                ("story_source_path", models.CharField(blank=True, default="", max_length=1000)),
                ("message", models.TextField(blank=True, default="")),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("open", "open"),
                            ("kept_existing", "existing story kept"),
                            ("parked_won", "parked file won"),
                            ("rekeyed", "imported under a new key"),
                        ],
                        default="open",
                        max_length=20,
                    ),
                ),
                ("resolved_at", models.DateTimeField(blank=True, null=True)),
                ("replaced_content", models.TextField(blank=True, default="")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="import_conflicts",
                        to="stories.project",
                    ),
                ),
                (
                    "resolved_by",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "resolved_story",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="stories.story",
                    ),
                ),
                (
                    "story",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="stories.story",
                    ),
                ),
                (
                    "file",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="stories.importfile",
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="conflicts",
                        to="stories.importrun",
                    ),
                ),
            ],
            options={
                "db_table": "import_conflicts",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.AddIndex(
            model_name="importrun",
            index=models.Index(fields=["project", "started_at"], name="import_runs_project_idx"),
        ),
        migrations.AddConstraint(
            model_name="importrun",
            constraint=models.CheckConstraint(
                condition=models.Q(("state__in", ["running", "finished", "failed"])), name="import_runs_state_valid"
            ),
        ),
        migrations.AddIndex(
            model_name="importfile",
            index=models.Index(fields=["run", "outcome"], name="import_files_outcome_idx"),
        ),
        migrations.AddConstraint(
            model_name="importfile",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("outcome__in", ["created", "updated", "unchanged", "conflict", "failed", "excluded", "skipped"])
                ),
                name="import_files_outcome_valid",
            ),
        ),
        migrations.AddIndex(
            model_name="importconflict",
            index=models.Index(fields=["project", "state"], name="import_conflicts_state_idx"),
        ),
        migrations.AddConstraint(
            model_name="importconflict",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind__in", ["duplicate_key", "key_owned", "heading_mismatch"])),
                name="import_conflicts_kind_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="importconflict",
            constraint=models.CheckConstraint(
                condition=models.Q(("state__in", ["open", "kept_existing", "parked_won", "rekeyed"])),
                name="import_conflicts_state_valid",
            ),
        ),
    ]
