"""Status changes made outside StoryHub publish an event too.

stories 0004/0005's trigger writes an audit row (`story.status_changed_outside`) when a
story's status is changed by raw SQL; it cannot call audit_record, so until now such a
change had an audit row but no outbox event. This trigger on audit_log gives every row of
that action its outbox row in the same statement (so the same transaction), with the
columns audit.services.outbox_event() fills for the rows it writes; the sequencer numbers
it after commit like any other event.
"""

from django.db import migrations

ACTION = "story.status_changed_outside"


def _tables(apps):
    return (
        apps.get_model("audit", "AuditLog")._meta.db_table,
        apps.get_model("audit", "OutboxEvent")._meta.db_table,
    )


COLUMNS = "type, audit_id, occurred_at, project_id, entity_type, entity_id, actor_id, actor_repr, request_id, data"
VALUES = "NEW.action, NEW.id, NEW.timestamp, NEW.project_id, NEW.entity_type, NEW.entity_id, NEW.user_id, NEW.user_repr, '', NEW.details"


def forward(apps, schema_editor):
    audit_log, outbox = _tables(apps)
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"""
CREATE OR REPLACE FUNCTION audit_log_outbox_for_trigger_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {outbox} ({COLUMNS}) VALUES ({VALUES});
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS audit_log_outbox_for_trigger_rows ON {audit_log};
CREATE TRIGGER audit_log_outbox_for_trigger_rows
    AFTER INSERT ON {audit_log}
    FOR EACH ROW WHEN (NEW.action = '{ACTION}')
    EXECUTE FUNCTION audit_log_outbox_for_trigger_rows();
""")
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_log_outbox_for_trigger_rows")
        schema_editor.execute(f"""
CREATE TRIGGER audit_log_outbox_for_trigger_rows
AFTER INSERT ON {audit_log}
FOR EACH ROW WHEN NEW.action = '{ACTION}'
BEGIN
    INSERT INTO {outbox} ({COLUMNS}) VALUES ({VALUES});
END;
""")


def reverse(apps, schema_editor):
    audit_log, _ = _tables(apps)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS audit_log_outbox_for_trigger_rows ON {audit_log}")
        schema_editor.execute("DROP FUNCTION IF EXISTS audit_log_outbox_for_trigger_rows()")
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_log_outbox_for_trigger_rows")


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_outbox_event")]

    operations = [migrations.RunPython(forward, reverse)]
