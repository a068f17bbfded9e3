"""Production settings: `check --deploy` is clean with a proper environment, reports what
an operator turns down, and the settings refuse to load without a key and hosts."""

from __future__ import annotations

import json

import pytest

from tests.deploy.helpers import clean_env, manage, production_env


def test_check_deploy_has_no_warnings_with_a_proper_environment(tmp_path):
    env = production_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_check_deploy_reports_weakened_settings(tmp_path):
    env = production_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_HSTS_SECONDS="0",
        DJANGO_SESSION_COOKIE_SECURE="false",
    )
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    for check_id in ("security.W004", "security.W008"):
        assert check_id in result.stderr + result.stdout


def test_production_values(tmp_path):
    code = (
        "import json; from django.conf import settings as s;"
        "print(json.dumps({k: getattr(s, k, None) for k in ('DEBUG', 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS',"
        " 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_CONTENT_TYPE_NOSNIFF', 'SECURE_REFERRER_POLICY',"
        " 'CSRF_TRUSTED_ORIGINS', 'ALLOWED_HOSTS', 'SECURE_PROXY_SSL_HEADER')} | {'STATIC_ROOT': str(s.STATIC_ROOT)}))"
    )
    env = production_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_DEBUG="true",  # ignored: production never debugs
        DJANGO_SECURE_HSTS_SECONDS="3600",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
    )
    result = manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 3600,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "CSRF_TRUSTED_ORIGINS": ["https://storyhub.example.com"],
        "ALLOWED_HOSTS": ["127.0.0.1", "storyhub.example.com"],
        "SECURE_PROXY_SSL_HEADER": None,  # gunicorn decides, from GUNICORN_FORWARDED_ALLOW_IPS
        "STATIC_ROOT": str(tmp_path / "static"),
    }


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_ALLOWED_HOSTS": "a.example"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "x" * 60}, "DJANGO_ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_to_start_without_secret_key_or_hosts(env, missing, tmp_path):
    full = clean_env(DJANGO_SETTINGS_MODULE="storyhub.settings.production", **env)
    result = manage("check", env=full)
    assert result.returncode != 0
    assert f"{missing} must be set for production settings" in result.stderr
