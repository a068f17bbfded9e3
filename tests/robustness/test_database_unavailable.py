"""storyhub.middleware: database failures answer 503 JSON with Retry-After (API and pages),
everything else keeps its usual status. Real outages on PostgreSQL are in test_faults.py;
here the failure is injected with connection.execute_wrapper, on both databases."""

from __future__ import annotations

import psycopg.errors
import pytest
from django.db import IntegrityError, OperationalError, connection
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from audit.models import AuditLog
from stories.models import StatusHistory
from storyhub import middleware

pytestmark = pytest.mark.django_db


def failing(exc_factory):
    """An execute_wrapper that fails every query with exc_factory()."""

    def wrapper(execute, sql, params, many, context):
        raise exc_factory()

    return wrapper


def gone():
    return OperationalError("server closed the connection unexpectedly")


def assert_503(response, code: str, retry_after: str):
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == retry_after
    body = response.json()
    assert body["code"] == code and body["message"] and body["retry_after"] == int(retry_after)
    assert "Traceback" not in response.content.decode()
    assert response["X-Request-ID"]


def test_api_read_answers_503_when_the_database_is_gone(story, member):
    client = APIClient()
    client.force_authenticate(member)
    with connection.execute_wrapper(failing(gone)):
        response = client.get(f"/api/v1/projects/{story.project.slug}/stories/{story.key}/")
    assert_503(response, "database_unavailable", "5")
    # and the same client works again once the database answers
    assert client.get(f"/api/v1/projects/{story.project.slug}/stories/{story.key}/").status_code == 200


def test_api_write_answers_503_and_changes_nothing(story, member):
    client = APIClient()
    client.force_authenticate(member)
    audit, history = AuditLog.objects.count(), StatusHistory.objects.count()
    url = f"/api/v1/projects/{story.project.slug}/stories/{story.key}/transition/"
    calls = {"n": 0}

    def fail_on_the_write(execute, sql, params, many, context):
        calls["n"] += 1
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            raise gone()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_on_the_write):
        response = client.post(url, {"status": "ready"}, format="json", HTTP_IF_MATCH=f'"{story.pk}-1"')
    assert_503(response, "database_unavailable", "5")
    assert calls["n"] > 1  # it got as far as the write
    assert (AuditLog.objects.count(), StatusHistory.objects.count()) == (audit, history)
    story.refresh_from_db()
    assert (story.status.slug, story.version) == ("draft", 1)


def test_admin_page_answers_503_json_too(owner):
    owner.is_staff = owner.is_superuser = True
    owner.save(update_fields=["is_staff", "is_superuser"])
    client = Client()
    client.force_login(owner)
    with connection.execute_wrapper(failing(gone)):
        response = client.get("/admin/")
    assert_503(response, "database_unavailable", "5")


@pytest.mark.parametrize(
    ("cause", "code", "retry_after"),
    [
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), "database_timeout", "2"),
        (psycopg.errors.DeadlockDetected("deadlock detected"), "database_busy", "1"),
        (psycopg.errors.LockNotAvailable("could not obtain lock"), "database_busy", "1"),
        (
            psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
            "database_unavailable",
            "5",
        ),
    ],
)
def test_the_kind_of_failure_is_named(story, member, cause, code, retry_after):
    def raise_wrapped():
        try:
            raise cause
        except psycopg.Error as exc:
            try:
                raise OperationalError(str(exc)) from exc
            except OperationalError as wrapped:
                return wrapped

    client = APIClient()
    client.force_authenticate(member)
    with connection.execute_wrapper(failing(raise_wrapped)):
        response = client.get(f"/api/v1/projects/{story.project.slug}/stories/{story.key}/")
    assert_503(response, code, retry_after)


def test_sqlite_lock_is_busy_not_gone():
    assert middleware.classify(OperationalError("database is locked")) is middleware.BUSY


def test_other_database_errors_are_not_hidden_as_503():
    assert middleware.classify(IntegrityError("duplicate key")) is None
    assert middleware.classify(ValueError("bug")) is None
    assert middleware.classify(None) is None


def test_handler500_turns_a_database_failure_outside_a_view_into_503():
    request = RequestFactory().get("/admin/")
    try:
        raise gone()
    except OperationalError:
        response = middleware.server_error(request)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        response = middleware.server_error(request)
    assert response.status_code == 500


def test_statement_timeout_setting_bounds_every_postgres_statement(monkeypatch):
    from storyhub.settings.base import database_config

    monkeypatch.delenv("DB_STATEMENT_TIMEOUT", raising=False)
    assert "options" not in database_config("postgres://u@db.example:5432/storyhub")["OPTIONS"]
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT", "1500")
    assert database_config("postgres://u@db.example:5432/storyhub")["OPTIONS"]["options"] == (
        "-c statement_timeout=1500"
    )
    assert "options" not in database_config("sqlite:///db.sqlite3")["OPTIONS"]
