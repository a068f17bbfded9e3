"""The container's start sequence, without Docker: docker-entrypoint.sh waits for the
database, migrates it, execs gunicorn with production settings on a loopback port, serves
the admin and its static files through whitenoise, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import sys

import pytest
from django.db import connection

from tests.deploy.helpers import (
    free_port,
    http_get,
    manage,
    production_env,
    running_entrypoint,
    throwaway_pg_database,
    wait_until_ready,
)

STOP_TIMEOUT = 40


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> str:
    """What the image build does: collectstatic (hashed, compressed) into a STATIC_ROOT."""
    root = str(tmp_path_factory.mktemp("static"))
    env = production_env(DJANGO_STATIC_ROOT=root, DATABASE_URL="sqlite:///:memory:")
    collected = manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
    assert collected.returncode == 0, collected.stderr
    return root


def entrypoint_env(database_url: str, tmp_path, port: int, **extra: str) -> dict[str, str]:
    settings = {
        "DATABASE_URL": database_url,
        "DJANGO_SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback, no proxy
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_GRACEFUL_TIMEOUT": "10",
        "DB_WAIT_TIMEOUT": "20",
        "PYTHON": sys.executable,
    }
    return production_env(**{**settings, **extra})


@pytest.fixture
def deploy_database():
    with throwaway_pg_database(connection.settings_dict, "storyhub_deploy_test") as database:
        yield database


@pytest.mark.postgres
def test_entrypoint_migrates_serves_and_stops_gracefully(deploy_database, static_root, tmp_path):
    _, url = deploy_database
    port = free_port()
    env = entrypoint_env(
        url,
        tmp_path,
        port,
        DJANGO_LOG_JSON="true",
        DJANGO_STATIC_ROOT=static_root,
        CACHE_URL="dbcache://storyhub_cache",
    )

    log_path = tmp_path / "entrypoint.log"
    with running_entrypoint(env, log_path, cwd=tmp_path) as proc:
        body = wait_until_ready(proc, port, log_path)
        ready = json.loads(body)
        assert (ready.pop("status"), ready.pop("database")) == ("ok", "ok")
        assert ready == {  # the events outbox (READINESS_PROBES), empty on a fresh database
            "outbox": {"due_deliveries": 0, "lag_seconds": 0.0, "unpublished_events": 0, "unsequenced_events": 0}
        }
        assert "applying migrations" in log_path.read_text()

        # The admin login page, and the CSS it links, served by whitenoise with hashed names.
        status, headers, body = http_get(port, "/admin/login/", {"X-Request-ID": "deploy-test-req-42"})
        assert status == 200
        assert headers["x-request-id"] == "deploy-test-req-42"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        css = re.findall(r'href="(/static/admin/css/[^"]+\.css)"', body.decode())
        assert css, body[:500]
        assert all(re.search(r"\.[0-9a-f]{12}\.css$", href) for href in css), css  # manifest storage
        status, headers, body = http_get(port, css[0], {"Accept-Encoding": "gzip"})
        assert status == 200 and body
        assert headers["content-type"].startswith("text/css")
        assert headers["content-encoding"] == "gzip"  # compressed at collectstatic time
        assert "max-age=315360000" in headers["cache-control"] and "immutable" in headers["cache-control"]
        status, _, _ = http_get(port, "/static/admin/css/does-not-exist.css")
        assert status == 404

        # An API call with a key made by `manage.py create_api_key` against the same database.
        made = manage(
            "shell", "-c", "from django.contrib.auth.models import User; User.objects.create_user('ops')", env=env
        )
        assert made.returncode == 0, made.stderr
        made = manage("create_api_key", "--user", "ops", "--name", "deploy-test", env=env)
        assert made.returncode == 0, made.stderr
        api_key = made.stdout.strip()
        status, headers, body = http_get(port, "/api/v1/projects/", {"Authorization": f"Bearer {api_key}"})
        assert status == 200, body[:500]
        assert headers["content-type"].startswith("application/json")
        assert json.loads(body) == []  # a new user is a member of no project
        status, _, _ = http_get(port, "/api/v1/projects/", {"Authorization": "Bearer not-a-key"})
        assert status == 401
        # CACHE_URL=dbcache://…: the entrypoint made the cache table and the key's rate-limit
        # counter is kept there, shared by every worker.
        counted = manage(
            "shell",
            "-c",
            "from django.db import connection; c = connection.cursor(); "
            "c.execute(\"SELECT count(*) FROM storyhub_cache WHERE cache_key LIKE '%throttle_api_key_%'\"); "
            "print(c.fetchone()[0])",
            env=env,
        )
        assert counted.returncode == 0, counted.stderr
        assert counted.stdout.split()[-1] == "1"  # after the shell's own "N objects imported"

        # SIGTERM goes straight to gunicorn (exec'd as the entrypoint's process): graceful exit 0.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_TIMEOUT) == 0, log_path.read_text()
    output = log_path.read_text()
    assert "Handling signal: term" in output and "Shutting down" in output

    # JSON access lines carry the request id (DJANGO_LOG_JSON=true).
    access = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"method"' in line]
    login = [entry for entry in access if entry["path"] == "/admin/login/"]
    assert login and login[0]["request_id"] == "deploy-test-req-42" and login[0]["status"] == 200
    generated = [entry for entry in access if entry["path"] == "/readyz"]
    assert generated and re.fullmatch(r"[0-9a-f]{32}", generated[-1]["request_id"])


def test_entrypoint_on_sqlite_migrates_a_new_file_and_serves(tmp_path):
    """The same script from a checkout with no PostgreSQL at all (plain-text logs)."""
    port = free_port()
    database = tmp_path / "storyhub.sqlite3"
    env = entrypoint_env(f"sqlite:///{database}", tmp_path, port)
    log_path = tmp_path / "entrypoint.log"
    with running_entrypoint(env, log_path, cwd=tmp_path) as proc:
        wait_until_ready(proc, port, log_path)
        status, headers, _ = http_get(port, "/healthz", {"X-Request-ID": "sqlite-rid-1"})
        assert status == 200 and headers["x-request-id"] == "sqlite-rid-1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_TIMEOUT) == 0, log_path.read_text()
    assert database.is_file()
    assert re.search(r'"GET /healthz HTTP/1.1" 200 .* request_id=sqlite-rid-1', log_path.read_text())


def test_entrypoint_gives_up_when_the_database_never_answers(tmp_path):
    port = free_port()  # nothing listens there
    env = entrypoint_env(f"postgres://app:hunter2-secret@127.0.0.1:{free_port()}/storyhub", tmp_path, port)
    env["DB_WAIT_TIMEOUT"] = "1"
    log_path = tmp_path / "entrypoint.log"
    with running_entrypoint(env, log_path, cwd=tmp_path) as proc:
        assert proc.wait(timeout=30) == 1
    output = log_path.read_text()
    assert "database not reachable at postgres://app:***@127.0.0.1" in output
    assert "hunter2-secret" not in output
    assert "applying migrations" not in output


@pytest.mark.parametrize(("allow_ips", "trusted"), [("127.0.0.1,::1", True), ("10.9.9.9", False)])
def test_https_redirect_trusts_forwarded_proto_only_from_configured_proxies(static_root, tmp_path, allow_ips, trusted):
    port = free_port()
    env = entrypoint_env(
        f"sqlite:///{tmp_path / 'db.sqlite3'}",
        tmp_path,
        port,
        DJANGO_SECURE_SSL_REDIRECT="true",
        GUNICORN_FORWARDED_ALLOW_IPS=allow_ips,
        GUNICORN_WORKERS="1",
        DJANGO_STATIC_ROOT=static_root,
    )
    log_path = tmp_path / "entrypoint.log"
    with running_entrypoint(env, log_path, cwd=tmp_path) as proc:
        wait_until_ready(proc, port, log_path)  # health endpoints are exempt from the redirect
        assert http_get(port, "/healthz")[0] == 200
        status, headers, _ = http_get(port, "/admin/login/")
        assert status == 301 and headers["location"] == "https://127.0.0.1/admin/login/"
        status, headers, _ = http_get(port, "/admin/login/", {"X-Forwarded-Proto": "https"})
        if trusted:
            assert status == 200, log_path.read_text()
            assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
            assert "secure" in headers["set-cookie"].lower()
        else:  # a client that is not the proxy cannot claim HTTPS
            assert status == 301
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_TIMEOUT) == 0
