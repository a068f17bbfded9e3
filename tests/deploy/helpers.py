"""Shared by the deployment tests: clean subprocess environments, throwaway PostgreSQL
databases, and a snapshot of every table for comparing a database with its restore."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "deploy-tests-" + "k3y" * 20  # long and varied enough for check --deploy


def clean_env(**overrides: str) -> dict[str, str]:
    """The current environment without any StoryHub / Django / database variables, plus overrides."""
    prefixes = ("DB_", "DATABASE_URL", "DJANGO_", "GUNICORN_", "TEST_DATABASE", "STORYHUB_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k != "PYTHON"}
    env.update(overrides)
    return env


def production_env(**overrides: str) -> dict[str, str]:
    return clean_env(
        DJANGO_SETTINGS_MODULE="storyhub.settings.production",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,storyhub.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://storyhub.example.com",
        **overrides,
    )


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pg_server_url(settings_dict: dict, dbname: str) -> str:
    user = quote(settings_dict.get("USER") or "postgres", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{dbname}"


@contextmanager
def throwaway_pg_database(settings_dict: dict, prefix: str):
    """Create an empty PostgreSQL database on the test server; always drop it afterwards.
    Its URL names the server itself, not the PgBouncer the test run may go through (a
    deployment through PgBouncer also sets DB_PGBOUNCER=true)."""
    import psycopg

    settings_dict = {**settings_dict, **settings_dict.get("DIRECT", {})}

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = {
        "host": settings_dict.get("HOST") or "127.0.0.1",
        "port": settings_dict.get("PORT") or 5432,
        "user": settings_dict.get("USER") or "postgres",
        "password": settings_dict.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
        "connect_timeout": 5,
    }
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name, pg_server_url(settings_dict, name)
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def snapshot(alias: str = "default") -> dict[str, dict]:
    """Every table: its row count and all its rows (as text, sorted) for exact comparison."""
    from django.db import connections

    connection = connections[alias]
    qn = connection.ops.quote_name
    result = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT * FROM {qn(table)}")
            rows = sorted(json.dumps([str(value) for value in row]) for row in cursor.fetchall())
            result[table] = {"count": len(rows), "rows": rows}
    return result


def snapshot_in_subprocess(env: dict[str, str]) -> dict[str, dict]:
    """snapshot() of the database that `env` points at, taken by a separate interpreter."""
    code = (
        "import json, django; django.setup()\n"
        "from tests.deploy.helpers import snapshot\n"
        "print(json.dumps(snapshot()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """GET from the loopback server: (status, lower-cased headers, body)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": "127.0.0.1", **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@contextmanager
def running_entrypoint(env: dict[str, str], log_path: Path, cwd: Path):
    """Start docker-entrypoint.sh in its own process group; always kill the group afterwards
    (gunicorn and its workers, even if the script itself died first)."""
    import signal

    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603
            [str(ROOT / "docker-entrypoint.sh")],
            cwd=cwd,  # anywhere: the script finds the project itself
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def wait_until_ready(proc: subprocess.Popen, port: int, log_path: Path, timeout: float = 90) -> bytes:
    """Poll /readyz until it answers 200; fail with the entrypoint's output otherwise."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"entrypoint exited with {proc.returncode}:\n{log_path.read_text()}"
        try:
            status, _, body = http_get(port, "/readyz")
            if status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"/readyz never answered 200 within {timeout}s:\n{log_path.read_text()}")
