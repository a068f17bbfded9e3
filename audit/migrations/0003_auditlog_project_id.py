"""audit_log rows are scoped by the immutable id of their project (a nullable integer,
no FK: rows outlive projects), not by the slug in details["project"], which a new
project may take after the old one is deleted. The backfill is 0004.

SQLite drops a table's triggers when Django rebuilds the table for an ALTER. Adding a
nullable column without a default is a plain ALTER TABLE ADD COLUMN (no rebuild), and
so is dropping a column that has no field index (the index is a separate, named one),
but the last step re-creates 0002's append-only triggers (IF NOT EXISTS / OR REPLACE) so
that they survive even if a Django version chooses to rebuild.
"""

import importlib

from django.db import migrations, models

_0002 = importlib.import_module("audit.migrations.0002_audit_log_append_only")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_audit_log_append_only")]

    operations = [
        migrations.AddField(
            model_name="auditlog",
            name="project_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="auditlog",
            index=models.Index(fields=["project_id", "id"], name="audit_log_project_idx"),
        ),
        # Backwards: 0002's reverse removes the triggers when 0002 itself is unapplied.
        migrations.RunPython(_0002.forward, migrations.RunPython.noop),
    ]
