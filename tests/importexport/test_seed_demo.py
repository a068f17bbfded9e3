"""`manage.py seed_demo` imports docs/seed-stories/ so `make run` shows them."""

from __future__ import annotations

import io

from django.core.management import call_command

from audit.models import AuditLog
from stories.models import Story


def test_seed_demo_imports_the_seed_story_files(db):
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

    audit_rows = AuditLog.objects.count()
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "seed-stories: seed story files — 0 created, 0 updated, 4 unchanged, 0 failed" in out.getvalue()
    assert AuditLog.objects.count() == audit_rows
