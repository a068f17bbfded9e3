"""Faults on PostgreSQL, against the live test server: a connection killed mid-request, a
statement timeout, the database going away and coming back, a worker killed in the
middle of a bulk upsert. Each ends with a clear 503 (or a dead worker), nothing partial
in the database, and a server that recovers by itself."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from audit.models import AuditLog
from stories.models import StatusHistory, Story, StoryDependency

from .conftest import backends_waiting_on_locks, pg_connect, wait_for

# Killing the backend that serves a request and the `options` startup parameter need a
# direct connection: through PgBouncer the backend is the pooler's, and it refuses options.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("direct_postgres")]

REPO = Path(__file__).resolve().parents[2]


def counts() -> tuple[int, int, int, int]:
    return (
        Story.objects.count(),
        StatusHistory.objects.count(),
        AuditLog.objects.count(),
        StoryDependency.objects.count(),
    )


def assert_503(response, code: str) -> dict:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Retry-After"]) > 0
    body = response.json()
    assert body["code"] == code
    return body


def terminate(pid: int) -> None:
    with pg_connect(autocommit=True) as killer:
        assert killer.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]


@contextmanager
def database_options(**changes):
    """Reopen the connection pool with changed OPTIONS (e.g. a short pool timeout, a
    statement_timeout) for the server threads and this one; restored afterwards."""
    options = connection.settings_dict["OPTIONS"]
    saved = copy.deepcopy(options)
    connection.close()
    connection.close_pool()
    for name, value in changes.items():
        if isinstance(value, dict):
            options[name] = {**options.get(name, {}), **value}
        else:
            options[name] = value
    try:
        yield
    finally:
        connection.close()
        options.clear()
        options.update(saved)
        connection.close_pool()


def test_connection_killed_mid_request_answers_503_and_the_next_request_recovers(api, story):
    path = f"/projects/{story.project.slug}/stories/{story.key}/"
    before = counts()
    with pg_connect() as control, ThreadPoolExecutor(max_workers=1) as pool:
        control.execute("SELECT id FROM stories WHERE id = %s FOR UPDATE", [story.pk])
        pending = pool.submit(api, "POST", path + "transition/", json={"status": "ready"}, if_match=f'"{story.pk}-1"')
        [pid] = wait_for(backends_waiting_on_locks, what="the request's backend to wait inside its transaction")
        terminate(pid)
        response = pending.result(timeout=30)
        control.rollback()
    assert_503(response, "database_unavailable")
    assert counts() == before
    story.refresh_from_db()
    assert (story.status.slug, story.version) == ("draft", 1)

    # The same server answers the next requests through its pool, no restart.
    for _ in range(5):
        assert api("GET", path).status_code == 200
    again = api("POST", path + "transition/", json={"status": "ready"}, if_match=f'"{story.pk}-1"')
    assert again.status_code == 200, again.text
    assert counts()[1:3] == (before[1] + 1, before[2] + 1)


def test_statement_timeout_answers_503_and_changes_nothing(api, story):
    path = f"/projects/{story.project.slug}/stories/{story.key}/"
    before = counts()
    # What DB_STATEMENT_TIMEOUT=300 sets (storyhub.settings.base.database_config).
    with database_options(options="-c statement_timeout=300"):
        with pg_connect() as control:
            control.execute("SELECT id FROM stories WHERE id = %s FOR UPDATE", [story.pk])
            response = api("PATCH", path, json={"title": "Too slow"}, if_match=f'"{story.pk}-1"')
            control.rollback()
        body = assert_503(response, "database_timeout")
        assert "changed nothing" in body["message"]
        assert counts() == before
        # The connection survived the cancel: the same pool serves the next write.
        ok = api("PATCH", path, json={"title": "In time"}, if_match=f'"{story.pk}-1"')
        assert ok.status_code == 200, ok.text
    story.refresh_from_db()
    assert (story.title, story.version) == ("In time", 2)


def test_database_going_away_and_coming_back(api, story, live_server):
    path = f"/projects/{story.project.slug}/stories/{story.key}/"
    name = connection.settings_dict["NAME"]
    before = counts()
    # A short pool timeout so a request waits at most ~1.5 s for a connection that cannot come.
    with database_options(pool={"timeout": 1.5}), pg_connect("postgres", autocommit=True) as admin:
        assert api("GET", path).status_code == 200
        try:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            assert api.get_root("/healthz").status_code == 200  # the process is alive
            ready = api.get_root("/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
            assert_503(api("GET", path), "database_unavailable")
            assert_503(api("POST", path + "transition/", json={"status": "ready"}), "database_unavailable")
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        # Back: the same server recovers by itself within a bounded time.
        wait_for(lambda: api.get_root("/readyz").status_code == 200, timeout=30, interval=0.5, what="/readyz 200")
        for _ in range(5):
            assert api("GET", path).status_code == 200
        moved = api("POST", path + "transition/", json={"status": "ready"})
        assert moved.status_code == 200, moved.text
    assert counts()[1:3] == (before[1] + 1, before[2] + 1)  # the refused write left nothing


def test_backend_killed_in_the_middle_of_a_bulk_upsert_request_leaves_nothing(api, project, make_story, monkeypatch):
    existing = [make_story(f"OLD-{n}") for n in range(3)]
    before = counts()
    from stories.bulk import apply

    reached, release = threading.Event(), threading.Event()
    write_changed = apply.write_changed

    def stall_after_writing(plan):  # all rows written, transaction still open
        write_changed(plan)
        reached.set()
        release.wait(30)

    monkeypatch.setattr(apply, "write_changed", stall_after_writing)
    items = [{"key": f"NEW-{n:03d}", "title": f"New {n}"} for n in range(200)]
    items += [{"key": s.key, "title": "Changed", "status": "ready"} for s in existing]
    with pg_connect(autocommit=True) as monitor, ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(api, "POST", f"/projects/{project.slug}/stories/bulk/", json={"items": items})
        assert reached.wait(30), "the bulk upsert never got to its writes"
        [(pid,)] = monitor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL "
            "AND state = 'idle in transaction'"
        ).fetchall()
        terminate(pid)
        release.set()
        response = pending.result(timeout=30)
    assert_503(response, "database_unavailable")
    assert counts() == before
    assert not Story.objects.filter(key__startswith="NEW-").exists()
    assert set(Story.objects.filter(key__startswith="OLD-").values_list("title", "version")) == {
        (s.title, 1) for s in existing
    }


def test_worker_process_killed_in_the_middle_of_a_bulk_upsert_leaves_nothing(project, owner, make_story):
    existing = [make_story(f"OLD-{n}") for n in range(3)]
    before = counts()
    settings = connection.settings_dict
    url = (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "storyhub.settings.test",
        "PGAPPNAME": "storyhub-dying-worker",
        "PYTHONUNBUFFERED": "1",
    }
    if settings.get("PASSWORD"):
        env["PGPASSWORD"] = settings["PASSWORD"]
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "tests.robustness.bulk_worker", project.slug, owner.username, "500"]
        + [s.key for s in existing],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while True:
            line = worker.stdout.readline()
            assert line, f"the worker ended early: {''.join(lines)} {worker.stderr.read()}"
            lines.append(line)
            if line.startswith("progress") and line.split()[1].split("/")[0] == line.split()[1].split("/")[1]:
                break
        with pg_connect(autocommit=True) as monitor:
            # The worker's pool opened more than one connection; one holds the open transaction,
            # which has written rows (it has a transaction id).
            [(pid, state)] = monitor.execute(
                "SELECT pid, state FROM pg_stat_activity WHERE application_name = 'storyhub-dying-worker' "
                "AND backend_xid IS NOT NULL"
            ).fetchall()
            assert state == "idle in transaction"
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            # PostgreSQL sees the client gone and rolls its transaction back.
            wait_for(
                lambda: not monitor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone(),
                what="the dead worker's backend to end",
            )
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    assert counts() == before
    assert not Story.objects.filter(key__startswith="KILL-").exists()
    assert set(Story.objects.filter(key__startswith="OLD-").values_list("title", "version")) == {
        (s.title, 1) for s in existing
    }


def test_import_command_killed_while_writing_leaves_nothing(project, tmp_path):
    """`manage.py import_stories` of 10,000 files, frozen (SIGSTOP) as soon as its
    transaction has written rows and then killed (SIGKILL): not one story, history or
    audit row of it remains."""
    files = tmp_path / "stories"
    files.mkdir()
    for n in range(10_000):
        (files / f"{n:05d}_imp.md").write_text(
            f"---\nid: IMP-{n:05d}\ntitle: Imported story {n}\nstatus: ready\npriority: high\n"
            f"labels: [import, killed]\n---\n# IMP-{n:05d}: Imported story {n}\n\nBody {n}.\n"
        )
    before = counts()
    settings = connection.settings_dict
    url = (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
    )
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "storyhub.settings.test"}
    env["PGAPPNAME"] = "storyhub-dying-import"
    if settings.get("PASSWORD"):
        env["PGPASSWORD"] = settings["PASSWORD"]
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "import_stories", str(files), "--project", project.slug],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The transaction that writes the stories: one that holds a write lock on the story
    # table (the import's run row is created and committed in a short transaction of its
    # own first; freezing after that one caught the import between transactions).
    query = (
        "SELECT a.pid, a.state, a.backend_xid IS NOT NULL FROM pg_stat_activity a "
        "WHERE a.application_name = 'storyhub-dying-import' AND a.backend_xid IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted "
        f"AND l.relation = '{Story._meta.db_table}'::regclass AND l.mode = 'RowExclusiveLock')"
    )
    try:
        with pg_connect(autocommit=True) as monitor:
            wait_for(
                lambda: worker.poll() is not None or monitor.execute(query).fetchone(),
                timeout=60,
                interval=0.005,
                what="the import to start writing",
            )
            assert worker.poll() is None, f"the import ended before it could be killed: {worker.stderr.read()}"
            worker.send_signal(signal.SIGSTOP)  # frozen: it cannot commit any more
            # Its backend finishes the statement in flight and waits for the client ("idle in
            # transaction"), or stays "active" inside a COPY that waits for the frozen client's
            # data (seen under load): both hold an open transaction that has written.
            settle = time.monotonic() + 5

            def frozen():
                rows = monitor.execute(query).fetchall()
                return rows if rows and (rows[0][1] != "active" or time.monotonic() > settle) else None

            [(pid, state, writing)] = wait_for(frozen, what="the frozen import's backend to wait for its client")
            assert state in ("idle in transaction", "active") and writing
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            wait_for(
                lambda: not monitor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone(),
                what="the dead import's backend to end",
            )
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    assert counts() == before
    assert not Story.objects.filter(key__startswith="IMP-").exists()
