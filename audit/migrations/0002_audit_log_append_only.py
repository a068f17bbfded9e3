"""audit_log is append-only in the database too, not only in the ORM.

PostgreSQL: a BEFORE UPDATE OR DELETE trigger refuses both. The one exception is the
retention command (`manage.py purge_audit_log`), which sets the transaction-local
`storyhub.audit_purge = on` before it deletes old rows; UPDATE is refused always.
SQLite: a trigger refuses UPDATE. DELETE is left to the ORM guard there, because SQLite
has no session variable for the purge command to set and Django's test flush deletes
rows with DELETE.

TRUNCATE is not guarded (Django's test flush uses it); in production run the
application as a role that does not own the table if TRUNCATE must be impossible too.
"""

from django.db import migrations

POSTGRES_FORWARD = r"""
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('storyhub.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING HINT = 'Old rows are removed only by manage.py purge_audit_log --before DATE.';
END
$$;
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
"""

POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
DROP FUNCTION IF EXISTS audit_log_append_only();
"""

SQLITE_FORWARD = """
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;
"""

SQLITE_REVERSE = "DROP TRIGGER IF EXISTS audit_log_no_update;"


def _run(schema_editor, sql_by_vendor: dict[str, str]) -> None:
    sql = sql_by_vendor.get(schema_editor.connection.vendor)
    if sql:
        # params=None: the SQL is sent as is (the % in RAISE is PL/pgSQL's, not a placeholder).
        schema_editor.execute(sql, None)


def forward(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD})


def reverse(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE})


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forward, reverse)]
