# A sprint backlog's first and last day, the axis of its burndown / burnup (reports).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stories", "0010_story_rank"),
    ]

    operations = [
        migrations.AddField(
            model_name="backlog",
            name="starts_on",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="backlog",
            name="ends_on",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="backlog",
            constraint=models.CheckConstraint(
                condition=models.Q(("starts_on__isnull", True), ("ends_on__isnull", True), ("starts_on__lte", models.F("ends_on")), _connector="OR"),
                name="backlogs_sprint_dates_ordered",
            ),
        ),
    ]
