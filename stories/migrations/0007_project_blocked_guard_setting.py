"""The blocked guard (stories.readiness) is a per-project workflow rule, on for every
project: existing projects get `"blocked_guard": true` in their settings, as new ones do.
(A project without the key has the guard on too; the key makes the rule visible.)"""

from django.db import migrations

SETTING = "blocked_guard"


def add_setting(apps, schema_editor):
    Project = apps.get_model("stories", "Project")
    for project in Project.objects.all().only("pk", "settings").iterator():
        settings = project.settings if isinstance(project.settings, dict) else {}
        if SETTING not in settings:
            Project.objects.filter(pk=project.pk).update(settings={**settings, SETTING: True})


def remove_setting(apps, schema_editor):
    Project = apps.get_model("stories", "Project")
    for project in Project.objects.all().only("pk", "settings").iterator():
        settings = project.settings
        if isinstance(settings, dict) and settings.get(SETTING) is True:
            Project.objects.filter(pk=project.pk).update(settings={k: v for k, v in settings.items() if k != SETTING})


class Migration(migrations.Migration):
    dependencies = [("stories", "0006_resource_versions")]

    operations = [migrations.RunPython(add_setting, remove_setting)]
