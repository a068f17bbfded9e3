"""Reference views for `make bench` only: included in the URLconf when the setting
STORYHUB_BENCH_VIEWS is true (never in production).

- `floor_story_list`: the story list page (100 rows) with raw psycopg and orjson — the
  physical floor the real API list is compared against.
- `trivial`: the smallest Django view — the framework floor for throughput."""

from __future__ import annotations

import base64

import orjson
from django.db import connection
from django.http import HttpResponse, JsonResponse
from psycopg.types.datetime import TimestamptzLoader
from psycopg.types.json import set_json_loads

from stories import fields

PAGE_SQL = """
SELECT s.id, s.key, s.title, p.slug, b.slug, e.slug, st.slug, st.category, s.priority,
       s.estimate, s.points_min, s.points_max, s.branch_name, s.file_path, s.owner, s.author,
       s.labels, s.created, s.last_updated, s.body, s.metadata, s.version, s.rank, s.source_repo,
       s.source_path, s.source_hash, s.created_at, s.updated_at
  FROM stories s
  JOIN projects p ON p.id = s.project_id
  JOIN statuses st ON st.id = s.status_id
  LEFT JOIN backlogs b ON b.id = s.backlog_id
  LEFT JOIN epics e ON e.id = s.epic_id
 WHERE s.project_id = %s
 ORDER BY s.id
 LIMIT %s
"""
# One story by key: the detail floor (the page's SQL with the key instead of the limit).
DETAIL_SQL = PAGE_SQL.replace(
    " WHERE s.project_id = %s\n ORDER BY s.id\n LIMIT %s", " WHERE s.project_id = %s AND s.key = %s"
)
DEPS_SQL = """
SELECT d.story_id, d.type, t.key, t.project_id, tp.slug, ts.category, s.project_id,
       (%s OR t.project_id IN (SELECT m.project_id FROM project_members m WHERE m.user_id = %s))
  FROM story_dependencies d
  JOIN stories s ON s.id = d.story_id
  JOIN stories t ON t.id = d.depends_on_id
  JOIN projects tp ON tp.id = t.project_id
  JOIN statuses ts ON ts.id = t.status_id
 WHERE d.story_id = ANY(%s)
"""
PRIORITY_WORDS = fields.PRIORITY_WORDS


def _float(value):
    return None if value is None else float(value)


def floor_rows(project_slug: str, limit: int = 100, user=None, key: str | None = None) -> bytes | None:
    """The first story list page of a project, straight from psycopg to orjson: the same
    rows and the same JSON as the API's story list (no ORM, no serializer). With `key`:
    that one story, as the API's story detail renders it (the detail floor)."""
    raw = connection.connection if connection.connection is not None else None
    if raw is None:
        connection.ensure_connection()
        raw = connection.connection
    with raw.cursor() as cur:
        # psycopg's own (C) timestamptz loader instead of Django's Python one.
        cur.adapters.register_loader("timestamptz", TimestamptzLoader)
        set_json_loads(orjson.loads, cur)  # Django's connection leaves jsonb as text
        if user is None or user.is_superuser:
            cur.execute("SELECT id FROM projects WHERE slug = %s", (project_slug,))
        else:  # members only, like the API
            cur.execute(
                "SELECT p.id FROM projects p JOIN project_members m ON m.project_id = p.id"
                " WHERE p.slug = %s AND m.user_id = %s",
                (project_slug, user.pk),
            )
        found = cur.fetchone()
        if found is None:
            return None
        cur.execute(DETAIL_SQL, (found[0], key)) if key is not None else cur.execute(PAGE_SQL, (found[0], limit + 1))
        rows = cur.fetchall()
        if key is not None and not rows:
            return None
        more = len(rows) > limit
        rows = rows[:limit]
        deps: dict[int, list] = {}
        if rows:
            # The same visibility as the API: a target in a project the reader is not a member of
            # is a placeholder.
            everything = user is None or user.is_superuser
            cur.execute(DEPS_SQL, (everything, getattr(user, "pk", None), [r[0] for r in rows]))
            for d in cur.fetchall():
                deps.setdefault(d[0], []).append(d)
    results = []
    for r in rows:
        dependencies, open_blockers = [], []
        for d in deps.get(r[0], ()):
            ref = None if not d[7] else d[2] if d[3] == d[6] else f"{d[4]}:{d[2]}"
            dependencies.append({"depends_on": ref, "type": d[1], "hidden": ref is None})
            if d[1] == "blocks" and d[5] != "completed":
                open_blockers.append(d[0])
        results.append(
            {
                "key": r[1],
                "title": r[2],
                "project": r[3],
                "backlog": r[4],
                "epic": r[5],
                "status": r[6],
                "status_category": r[7],
                "priority": PRIORITY_WORDS.get(r[8]),
                "estimate": r[9],
                "points_min": _float(r[10]),
                "points_max": _float(r[11]),
                "branch_name": r[12],
                "file_path": r[13],
                "owner": r[14],
                "author": r[15],
                "labels": r[16],
                "created": r[17],
                "last_updated": r[18],
                "body": r[19],
                "metadata": r[20],
                "version": r[21],
                "rank": r[22],
                "source_repo": r[23],
                "source_path": r[24],
                "source_hash": r[25],
                "dependencies": dependencies,
                "blocked": bool(open_blockers),
                "ready": r[7] == "unstarted" and not open_blockers,
                "created_at": r[26],
                "updated_at": r[27],
            }
        )
    if key is not None:
        return orjson.dumps(results[0])
    next_cursor = None
    if more:
        next_cursor = base64.urlsafe_b64encode(orjson.dumps([rows[-1][0], rows[-1][0]])).decode().rstrip("=")
    return orjson.dumps({"next": next_cursor, "results": results})


def _authenticated(request):
    """The API's authentication: a Bearer API key when given, else the session."""
    if "HTTP_AUTHORIZATION" in request.META:
        from rest_framework.exceptions import AuthenticationFailed

        from sessions_app.api.authentication import ApiKeyAuthentication

        try:
            found = ApiKeyAuthentication().authenticate(request)
        except AuthenticationFailed:
            return None
        return found[0] if found else None
    return request.user if request.user.is_authenticated else None


def floor_story_list(request, slug: str):
    user = _authenticated(request)
    if user is None:
        return JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
    body = floor_rows(slug, limit=int(request.GET.get("page_size", 100)), user=user)
    if body is None:
        return JsonResponse({"detail": "Not found."}, status=404)
    return HttpResponse(body, content_type="application/json")


def floor_story_detail(request, slug: str, key: str):
    user = _authenticated(request)
    if user is None:
        return JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
    body = floor_rows(slug, user=user, key=key)
    if body is None:
        return JsonResponse({"detail": "Not found."}, status=404)
    return HttpResponse(body, content_type="application/json")


def worker(request):
    """Which worker answered (the spread measurement in bench/parts/workers.py), after
    `?ms=` milliseconds of waiting, like a request waiting on its database."""
    import os
    import time

    time.sleep(min(float(request.GET.get("ms", "0") or 0), 1000) / 1000)
    return HttpResponse(str(os.getpid()).encode(), content_type="text/plain")


def trivial(request):
    return HttpResponse(b'{"ok":true}', content_type="application/json")
