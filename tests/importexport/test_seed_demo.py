"""`manage.py seed_demo` imports docs/seed-stories/ so `make run` shows them; and `make
run` twice in a row: the second run changes no row of any table, and what a user changed
in between (a seed story moved on, a demo story renamed) stays. One seed per test run
(~15 s), so both checks share it."""

from __future__ import annotations

import io

from django.apps import apps
from django.core.management import call_command

from audit.models import AuditLog
from stories import services
from stories.models import Story


def snapshot() -> dict[str, list[str]]:
    """Every row of every table, by model."""
    tables = {}
    for model in apps.get_models():
        if model._meta.managed and not model._meta.proxy:
            fields = [f.attname for f in model._meta.concrete_fields]
            tables[model._meta.label] = sorted(map(repr, model._default_manager.values_list(*fields)))
    return tables


def test_seed_demo_imports_the_seed_story_files_once(db, django_user_model):
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert "seed-stories: seed story files — 4 created, 0 updated, 0 unchanged, 0 failed" in text
    assert "plan-pipe: seed story files — 1 created" in text
    seeds = Story.objects.filter(project__slug="seed-stories")
    assert seeds.count() == 4
    assert seeds.get(key="INF-013").title == "Docker PostgreSQL database setup with story schema"
    assert (
        Story.objects.get(project__slug="plan-pipe", key="INF-013").title == "SQLite database setup with story schema"
    )
    assert sorted(seeds.values_list("status__slug", flat=True)) == ["done", "draft", "draft", "review"]

    # A user's changes between the two runs.
    admin = django_user_model.objects.get(username="admin")
    seed = seeds.get(key="INF-013")
    target = "done" if seed.status.slug != "done" else "draft"
    services.story_transition(actor=admin, story=seed, status=target, notes="by the user", enforce_workflow=False)
    demo = Story.objects.get(project__slug="plan-pipe", key="INF-013")
    services.story_update(actor=admin, story=demo, data={"title": "Renamed by the user"})

    audit_rows = AuditLog.objects.count()
    before = snapshot()
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "Demo data already present; nothing to do" in out.getvalue()
    after = snapshot()
    assert [label for label in before if before[label] != after[label]] == []
    assert AuditLog.objects.count() == audit_rows
    assert Story.objects.get(pk=seed.pk).status.slug == target
    assert Story.objects.get(pk=demo.pk).title == "Renamed by the user"
