"""API fixtures: clients for each kind of caller in the permission matrix."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from sessions_app.models import ApiKey
from sessions_app.services import api_key_create, api_key_revoke
from tests.factories import MemberFactory, UserFactory


@pytest.fixture
def admin_user(project, owner):
    user = UserFactory(username="admin")
    MemberFactory(project=project, user=user, role="admin", actor=owner)
    return user


def _client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _key_client(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def caller(request, owner, member, viewer, outsider, admin_user, db):
    """A client for the named caller: anonymous, outsider, viewer, member, admin, owner,
    ro_key (read-only key of the owner), expired_key, revoked_key, rw_key."""

    def make(name: str) -> APIClient:
        users = {"outsider": outsider, "viewer": viewer, "member": member, "admin": admin_user, "owner": owner}
        if name == "anonymous":
            return APIClient()
        if name in users:
            return _key_client(api_key_create(actor=None, user=users[name], name=name)[1])
        if name == "rw_key":
            return _key_client(api_key_create(actor=None, user=owner, name="rw")[1])
        if name == "ro_key":
            return _key_client(api_key_create(actor=None, user=owner, name="ro", read_only=True)[1])
        if name == "expired_key":
            key, plaintext = api_key_create(actor=None, user=owner, name="old", expires_days=1)
            ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
            return _key_client(plaintext)
        if name == "revoked_key":
            key, plaintext = api_key_create(actor=None, user=owner, name="gone")
            api_key_revoke(actor=None, key=key)
            return _key_client(plaintext)
        raise AssertionError(name)

    return make


@pytest.fixture
def owner_client(owner):
    return _client_for(owner)


@pytest.fixture
def member_client(member):
    return _client_for(member)
