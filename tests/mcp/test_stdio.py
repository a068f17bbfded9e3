"""The MCP server over stdio: `manage.py mcp_stdio --key …` started by the SDK's own
client as a subprocess, on a copy of the test database (SQLite) or the test database
itself (PostgreSQL)."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from django.db import connection

from audit.models import AuditLog
from mcp_app.catalog import READ_TOOLS
from sessions_app.services import api_key_create
from tests.factories import ProjectFactory, UserFactory

from .conftest import call, run_session

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _database_url(tmp_path) -> str:
    """A URL the subprocess reaches the test data at."""
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
        return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    path = tmp_path / "copy.sqlite3"
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.close()
    return f"sqlite:///{path}"


def _stdio_client(key: str, database_url: str):
    from mcp import Client, StdioServerParameters

    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "storyhub.settings.test"}
    env.pop("STORYHUB_REQUIRE_POSTGRES", None)
    params = StdioServerParameters(
        command=sys.executable, args=["manage.py", "mcp_stdio", "--key", key], env=env, cwd=str(ROOT)
    )
    return Client(params)


def _audit_sources(database_url: str) -> set[tuple[str, int]]:
    if connection.vendor == "postgresql":
        rows = AuditLog.objects.filter(action__in=["story.created", "dependency.added"]).values_list(
            "details", flat=True
        )
    else:
        db = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        query = "SELECT details FROM audit_log WHERE action IN ('story.created', 'dependency.added')"
        rows = [json.loads(text) for (text,) in db.execute(query)]
        db.close()
    return {(d["source"], d["api_key_id"]) for d in rows}


def test_workflow_over_stdio(tmp_path):
    alice = UserFactory(username="alice")
    ProjectFactory(slug="plan", actor=alice)
    key, plaintext = api_key_create(actor=None, user=alice, name="desktop")
    _, read_only = api_key_create(actor=None, user=alice, name="viewer", read_only=True)
    url = _database_url(tmp_path)
    items = [
        {"key": "A-1", "title": "First", "status": "ready"},
        {"key": "A-2", "title": "Second", "status": "ready", "dependencies": ["A-1"]},
    ]

    async def steps(c):
        return [
            await call(c, "story_upsert", project="plan", stories=items),
            await call(c, "dependency_add", project="plan", key="A-1", depends_on="A-2"),
            await call(c, "ready_list", project="plan"),
            await call(c, "story_transition", project="plan", key="A-1", status="in_progress", version=5),
            await call(c, "story_transition", project="plan", key="A-1", status="in_progress", version=1),
        ]

    upsert, cycle, ready, stale, moved = run_session(_stdio_client(plaintext, url), steps)
    assert upsert[0]["created"] == 2
    assert cycle[1] and cycle[0]["code"] == "dependency_cycle" and cycle[0]["cycle"] == ["A-1", "A-2", "A-1"]
    assert [s["key"] for s in ready[0]] == ["A-1"]
    assert stale[1] and stale[0]["code"] == "conflict"
    assert not moved[1] and moved[0]["version"] == 2
    assert _audit_sources(url) == {("mcp", key.pk)}

    async def listing(c):
        return [t.name for t in (await c.list_tools()).tools]

    assert set(run_session(_stdio_client(read_only, url), listing)) == READ_TOOLS
