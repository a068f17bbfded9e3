"""Health checks shared by /healthz, /readyz and `manage.py healthcheck`."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse


def database_status(alias: str = DEFAULT_DB_ALIAS) -> tuple[bool, str, list[str]]:
    """(ok, reason, pending migrations): the database answers and nothing is unapplied."""
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # any driver error means "not ready"; say which
        return False, f"database unavailable: {exc.__class__.__name__}: {exc}".strip(), []
    pending = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    if pending:
        return False, f"{len(pending)} migration(s) pending", pending
    return True, "ok", []


def healthz(request):
    """The process is alive; touches no database."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Ready to serve: the database answers and no migration is pending."""
    ok, reason, pending = database_status()
    body = {"status": "ok" if ok else "unavailable", "database": reason}
    if pending:
        body["pending_migrations"] = pending
    return JsonResponse(body, status=200 if ok else 503)
