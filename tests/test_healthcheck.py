"""`manage.py healthcheck` and /healthz, /readyz: exit codes from real runs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, database_url, cwd):
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "storyhub.settings.local"}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_healthcheck_exit_codes_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'health.sqlite3'}"
    pending = run_manage("healthcheck", database_url=url, cwd=tmp_path)
    assert pending.returncode == 1
    assert "migration(s) pending" in pending.stderr and "stories.0001_initial" in pending.stderr
    assert run_manage("migrate", "--noinput", database_url=url, cwd=tmp_path).returncode == 0
    healthy = run_manage("healthcheck", database_url=url, cwd=tmp_path)
    assert healthy.returncode == 0, healthy.stderr
    assert "healthy" in healthy.stdout


def test_healthcheck_fails_when_database_unreachable(tmp_path):
    result = run_manage("healthcheck", database_url="postgres://postgres@127.0.0.1:1/none", cwd=tmp_path)
    assert result.returncode == 1
    assert "database unavailable" in result.stderr


@pytest.mark.django_db
def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert response["X-Request-ID"]
