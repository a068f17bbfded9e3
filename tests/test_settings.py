"""Settings come from the environment: DATABASE_URL, DB_* parts, SQLite tuning, pool, production guards."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def settings_probe(code: str, env: dict, module: str = "storyhub.settings.local", cwd: Path = ROOT):
    """Import a settings module in a clean interpreter with `env` and run `code`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_URL", "DJANGO_"))}
    full_env = {**base, **env, "DJANGO_SETTINGS_MODULE": module}
    script = f"import django; django.setup()\nfrom django.conf import settings\n{code}"
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env={**full_env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_default_is_sqlite_in_working_directory_with_wal_and_immediate(tmp_path):
    code = (
        "from django.db import connection\n"
        "db = settings.DATABASES['default']\n"
        "print(db['ENGINE'], db['NAME'], db['OPTIONS']['transaction_mode'], db['OPTIONS']['timeout'])\n"
        "with connection.cursor() as c:\n"
        "    c.execute('PRAGMA journal_mode'); print(c.fetchone()[0])\n"
    )
    result = settings_probe(code, {}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    engine, name, mode, timeout, journal = result.stdout.split()
    assert engine == "django.db.backends.sqlite3"
    assert name == str(tmp_path / "db.sqlite3")
    assert (mode, timeout, journal) == ("IMMEDIATE", "20", "wal")


def test_db_parts_build_a_postgres_url_with_pool():
    code = "import json; print(json.dumps(settings.DATABASES['default'], default=str))"
    env = {
        "DB_HOST": "db.internal",
        "DB_PORT": "6543",
        "DB_NAME": "stories",
        "DB_USER": "app",
        "DB_PASSWORD": "p@ss:word",
        "DB_POOL_MIN_SIZE": "3",
        "DB_POOL_MAX_SIZE": "7",
    }
    result = settings_probe(code, env)
    assert result.returncode == 0, result.stderr
    import json

    db = json.loads(result.stdout)
    assert db["ENGINE"] == "storyhub.db.postgresql"  # Django's backend + the C timestamptz loader
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]) == (
        "db.internal",
        6543,
        "stories",
        "app",
        "p@ss:word",
    )
    assert db["OPTIONS"]["pool"]["min_size"] == 3 and db["OPTIONS"]["pool"]["max_size"] == 7
    assert db["CONN_HEALTH_CHECKS"] is True and db["CONN_MAX_AGE"] == 0


def test_database_url_wins_over_parts():
    code = "print(settings.DATABASES['default']['NAME'])"
    result = settings_probe(code, {"DATABASE_URL": "postgres://u@h:5432/from_url", "DB_HOST": "other"})
    assert result.stdout.strip() == "from_url", result.stderr


def test_production_refuses_to_start_without_secret_and_hosts():
    result = settings_probe("print('started')", {}, module="storyhub.settings.production")
    assert result.returncode != 0 and "DJANGO_SECRET_KEY must be set" in result.stderr
    result = settings_probe("print('started')", {"DJANGO_SECRET_KEY": "x" * 60}, module="storyhub.settings.production")
    assert result.returncode != 0 and "DJANGO_ALLOWED_HOSTS must be set" in result.stderr
    ok = settings_probe(
        "print(settings.DEBUG)",
        {"DJANGO_SECRET_KEY": "x" * 60, "DJANGO_ALLOWED_HOSTS": "a.example"},
        module="storyhub.settings.production",
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "False", ok.stderr


def test_production_bounds_postgres_statements_by_default():
    code = "print(settings.DATABASES['default']['OPTIONS'].get('options', ''))"
    env = {"DATABASE_URL": "postgres://u@db.example:5432/storyhub", "DJANGO_SECRET_KEY": "x" * 50}
    env["DJANGO_ALLOWED_HOSTS"] = "example.com"
    production = "storyhub.settings.production"
    result = settings_probe(code, env, module=production)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "-c statement_timeout=30000"
    result = settings_probe(code, {**env, "DB_STATEMENT_TIMEOUT": "0"}, module=production)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stderr
    result = settings_probe(code, {**env, "DB_STATEMENT_TIMEOUT": "5000"}, module=production)
    assert result.stdout.strip() == "-c statement_timeout=5000", result.stderr
    local = settings_probe(code, {"DATABASE_URL": env["DATABASE_URL"]})
    assert local.returncode == 0 and local.stdout.strip() == "", local.stderr
