"""Deactivating a user revokes their API keys and sessions in the same transaction, with
audit rows, so reactivating the user does not bring them back."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditLog
from sessions_app import services
from sessions_app.backends import SessionStore
from sessions_app.models import ApiKey, Session
from tests.admin.conftest import admin_form_data
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss():
    return UserFactory(username="boss", is_staff=True, is_superuser=True)


@pytest.fixture
def alice():
    return UserFactory(username="alice")


def credentials_of(user) -> tuple[list[str], list[str]]:
    """Two working keys and two sessions of `user`, plus one key revoked long ago."""
    plaintexts = [services.api_key_create(actor=None, user=user, name=f"k{i}")[1] for i in range(2)]
    services.api_key_revoke(actor=None, key=services.api_key_create(actor=None, user=user, name="old")[0])
    sids = []
    for _ in range(2):
        store = SessionStore()
        store["_auth_user_id"] = str(user.pk)
        store.create()
        sids.append(store.session_key)
    return plaintexts, sids


def api_status(plaintext: str) -> int:
    return APIClient().get("/api/v1/projects/", HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code


def assert_revoked_and_audited(user, boss, sids):
    assert not ApiKey.objects.filter(user=user, revoked_at=None).exists()
    assert not Session.objects.filter(sid__in=sids).exists()
    key_rows = AuditLog.objects.filter(action="api_key.revoked", details__reason="user deactivated")
    assert sorted(key_rows.values_list("entity_id", flat=True)) == sorted(
        str(pk) for pk in ApiKey.objects.filter(user=user, name__in=["k0", "k1"]).values_list("pk", flat=True)
    )
    assert {row.user_id for row in key_rows} == {boss.pk}
    session_row = AuditLog.objects.get(action="session.revoked_all", entity_id=str(user.pk))
    assert session_row.user_id == boss.pk
    assert session_row.details["count"] == 2 and session_row.details["reason"] == "user deactivated"
    # Reactivated, the user must sign in again and make new keys.
    user.is_active = True
    services.user_save(actor=boss, user=user)
    assert not ApiKey.objects.filter(user=user, revoked_at=None).exists()
    assert not Session.objects.filter(sid__in=sids).exists()


def test_deactivating_through_the_service(boss, alice):
    plaintexts, sids = credentials_of(alice)
    assert [api_status(p) for p in plaintexts] == [200, 200]
    alice.is_active = False
    services.user_save(actor=boss, user=alice)
    assert_revoked_and_audited(alice, boss, sids)
    assert [api_status(p) for p in plaintexts] == [401, 401]


def test_deactivating_in_the_admin(boss, alice):
    plaintexts, sids = credentials_of(alice)
    admin = Client()
    admin.force_login(boss)
    url = reverse("admin:auth_user_change", args=[alice.pk])
    data = admin_form_data(admin.get(url))
    data.pop("is_active")  # an unticked checkbox is not sent
    response = admin.post(url, data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    alice.refresh_from_db()
    assert not alice.is_active
    assert_revoked_and_audited(alice, boss, sids)
    assert [api_status(p) for p in plaintexts] == [401, 401]


def test_other_edits_leave_credentials_alone(boss, alice):
    plaintexts, sids = credentials_of(alice)
    alice.first_name = "Alice"
    services.user_save(actor=boss, user=alice)
    assert ApiKey.objects.filter(user=alice, revoked_at=None).count() == 2
    assert Session.objects.filter(sid__in=sids).count() == 2
