"""Sessions logged in before SessionUserBackend replaced Django's ModelBackend name that
backend in their data; auth's get_user accepts only a backend in AUTHENTICATION_BACKENDS,
so they are renamed rather than logged out (and back on reverse)."""

from django.db import migrations

OLD = "django.contrib.auth.backends.ModelBackend"
NEW = "sessions_app.backends.SessionUserBackend"


def _rename(apps, before: str, after: str) -> None:
    Session = apps.get_model("sessions_app", "Session")
    for row in Session.objects.filter(sess___auth_user_backend=before).iterator():
        row.sess["_auth_user_backend"] = after
        Session.objects.filter(sid=row.sid).update(sess=row.sess)


def forwards(apps, schema_editor):
    _rename(apps, OLD, NEW)


def backwards(apps, schema_editor):
    _rename(apps, NEW, OLD)


class Migration(migrations.Migration):
    dependencies = [("sessions_app", "0002_api_keys")]

    operations = [migrations.RunPython(forwards, backwards)]
