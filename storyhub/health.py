"""Health checks shared by /healthz, /readyz and `manage.py healthcheck`."""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.utils.module_loading import import_string


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


def probe_reports() -> dict:
    """What the READINESS_PROBES setting's callables report (name → dict); a probe
    that fails reports its error. They are named by dotted path, so this kernel module
    imports no app."""
    reports = {}
    for name, path in getattr(settings, "READINESS_PROBES", {}).items():
        try:
            reports[name] = import_string(path)()
        except Exception as exc:  # a report, never a reason to fail the check itself
            reports[name] = {"error": f"{exc.__class__.__name__}: {exc}"}
    return reports


def readyz(request):
    """Ready to serve: the database answers and no migration is pending. Also reports
    the probes (the outbox lag)."""
    ok, reason, pending = database_status()
    body = {"status": "ok" if ok else "unavailable", "database": reason}
    if pending:
        body["pending_migrations"] = pending
    if ok:
        body.update(probe_reports())
    return JsonResponse(body, status=200 if ok else 503)
