"""No one acts for a user with more privileges than their own (sessions_app.permissions):
the "view API key" permission only lists keys; only superusers mint keys for other users;
revoking others' keys or sessions needs the change / delete permission and never reaches
a superuser's; only superusers change superusers, groups and permissions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from sessions_app import services
from sessions_app.backends import SessionStore
from sessions_app.models import ApiKey, Session
from tests.admin.conftest import admin_form_data, messages_of
from tests.factories import UserFactory

KEYS = reverse("admin:sessions_app_apikey_changelist")
KEY_ADD = reverse("admin:sessions_app_apikey_add")
SESSIONS = reverse("admin:sessions_app_session_changelist")
USERS = reverse("admin:auth_user_changelist")

pytestmark = pytest.mark.django_db


def staff_with(*codenames: str, username: str = "clerk") -> Client:
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def session_of(user) -> str:
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store.create()
    return store.session_key


def test_view_permission_cannot_mint_a_key_for_a_superuser(superuser):
    client = staff_with("view_apikey")
    page = client.get(KEY_ADD)
    assert page.status_code == 200
    assert "user" not in page.context["adminform"].form.fields
    data = admin_form_data(page)
    data.update(user=superuser.pk, name="escalate")  # a forged owner is ignored
    response = client.post(KEY_ADD, data, follow=True)
    assert response.status_code == 200
    key = ApiKey.objects.get(name="escalate")
    assert key.user == client.user
    assert not superuser.api_keys.exists()
    assert all(superuser.username not in m for m in messages_of(response))


def test_view_permission_lists_but_cannot_revoke_others_keys(superuser, owner):
    client = staff_with("view_apikey")
    root_key, _ = services.api_key_create(actor=None, user=superuser, name="root-key")
    owner_key, _ = services.api_key_create(actor=None, user=owner, name="owner-key")
    listing = client.get(KEYS)
    assert {k.pk for k in listing.context["cl"].result_list} == {root_key.pk, owner_key.pk}
    for key in (root_key, owner_key):
        response = client.post(KEYS, {"action": "revoke_selected", "_selected_action": [key.pk]}, follow=True)
        key.refresh_from_db()
        assert key.revoked_at is None
        assert any("Nothing was changed" in m for m in messages_of(response))


def test_change_permission_revokes_others_keys_but_not_a_superusers(superuser, owner):
    client = staff_with("view_apikey", "change_apikey")
    root_key, _ = services.api_key_create(actor=None, user=superuser, name="root-key")
    owner_key, _ = services.api_key_create(actor=None, user=owner, name="owner-key")
    client.post(KEYS, {"action": "revoke_selected", "_selected_action": [owner_key.pk]})
    client.post(KEYS, {"action": "revoke_selected", "_selected_action": [root_key.pk]})
    owner_key.refresh_from_db()
    root_key.refresh_from_db()
    assert owner_key.revoked_at is not None
    assert root_key.revoked_at is None


def test_only_superusers_mint_keys_for_others_whatever_the_permissions(superuser, owner):
    clerk = staff_with("add_apikey", "change_apikey", "view_apikey").user
    with pytest.raises(PermissionDenied):
        services.api_key_create(actor=clerk, user=owner, name="x")
    with pytest.raises(PermissionDenied):
        services.api_key_create(actor=clerk, user=superuser, name="x")
    assert services.api_key_create(actor=clerk, user=clerk, name="mine")[0].user == clerk
    assert services.api_key_create(actor=superuser, user=owner, name="ci")[0].user == owner
    assert set(ApiKey.objects.values_list("name", flat=True)) == {"mine", "ci"}


def test_session_revocation_needs_delete_permission_and_spares_superusers(superuser, owner):
    viewer = staff_with("view_session", username="watcher")
    owner_sid, root_sid = session_of(owner), session_of(superuser)
    assert viewer.get(SESSIONS).status_code == 200
    viewer.post(SESSIONS, {"action": "revoke_selected", "_selected_action": [owner_sid]})
    assert Session.objects.filter(sid=owner_sid).exists()
    revoker = staff_with("view_session", "delete_session")
    for action in ("revoke_selected", "revoke_all_of_users"):
        response = revoker.post(SESSIONS, {"action": action, "_selected_action": [root_sid]}, follow=True)
        assert Session.objects.filter(sid=root_sid).exists(), action
        assert any("Nothing was changed" in m for m in messages_of(response))
    revoker.post(SESSIONS, {"action": "revoke_selected", "_selected_action": [owner_sid]})
    assert not Session.objects.filter(sid=owner_sid).exists()
    with pytest.raises(PermissionDenied):
        services.session_revoke_all_for_user(actor=revoker.user, user=superuser)


def test_user_editors_cannot_touch_superusers_or_grant_access(superuser, owner):
    client = staff_with("view_user", "change_user")
    # A superuser's page is read-only for them (Django would let them edit it).
    root_url = reverse("admin:auth_user_change", args=[superuser.pk])
    assert client.get(root_url).status_code == 200
    assert client.post(root_url, {"username": "pwned"}).status_code == 403
    superuser.refresh_from_db()
    assert superuser.username == "root"
    pw_url = reverse("admin:auth_user_password_change", args=[superuser.pk])
    assert client.post(pw_url, {"password1": "x-long-pass-9", "password2": "x-long-pass-9"}).status_code == 403
    # Their own page: names and email yes; superuser status, groups and permissions no.
    own_url = reverse("admin:auth_user_change", args=[client.user.pk])
    page = client.get(own_url)
    form = page.context["adminform"].form
    assert not {"is_superuser", "groups", "user_permissions"} & set(form.fields)
    data = admin_form_data(page)
    all_perms = [str(p.pk) for p in Permission.objects.all()]
    data.update(is_superuser="on", user_permissions=all_perms, email="clerk@example.org")
    assert client.post(own_url, data).status_code == 302
    client.user.refresh_from_db()
    assert client.user.email == "clerk@example.org"
    assert not client.user.is_superuser
    assert client.user.user_permissions.count() == 2
    # The services say the same to any caller.
    owner.is_superuser = True
    with pytest.raises(PermissionDenied):
        services.user_save(actor=client.user, user=owner)
    with pytest.raises(PermissionDenied):
        services.user_set_access(actor=client.user, user=owner, permissions=Permission.objects.all())
