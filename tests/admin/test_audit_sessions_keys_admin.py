"""Audit log (read-only for everyone), sessions and API keys in the admin."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from audit.models import AuditLog
from sessions_app.backends import SessionStore
from sessions_app.models import ApiKey, Session
from sessions_app.services import api_key_create, api_key_lookup
from tests.admin.conftest import admin_form_data, messages_of
from tests.factories import UserFactory

AUDIT = reverse("admin:audit_auditlog_changelist")
SESSIONS = reverse("admin:sessions_app_session_changelist")
KEYS = reverse("admin:sessions_app_apikey_changelist")


def test_audit_log_is_read_only_even_for_superusers(su_client, story):
    row = AuditLog.objects.get(action="story.created")
    page = su_client.get(AUDIT)
    assert page.status_code == 200
    body = page.content.decode()
    assert "story.created" in body
    # Linked to the story it concerns.
    assert reverse("admin:stories_story_change", args=[story.pk]) in body
    change = su_client.get(reverse("admin:audit_auditlog_change", args=[row.pk]))
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert su_client.post(reverse("admin:audit_auditlog_change", args=[row.pk]), {"action": "x"}).status_code == 403
    assert su_client.get(reverse("admin:audit_auditlog_add")).status_code == 403
    assert su_client.post(reverse("admin:audit_auditlog_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    assert page.context["action_form"] is None  # no actions at all, delete_selected included
    assert AuditLog.objects.filter(pk=row.pk, action="story.created").exists()


def test_audit_log_filters(su_client, story, owner):
    for query in (
        "action=story.created",
        "entity_type=story",
        f"user__id__exact={owner.pk}",
        "timestamp__gte=2000-01-01 00:00:00%2B00:00",  # aware, as the date filter sends it
    ):
        response = su_client.get(f"{AUDIT}?{query}")
        assert response.status_code == 200, query
        assert response.context["cl"].result_count >= 1, query
    response = su_client.get(f"{AUDIT}?action=story.deleted")
    assert response.context["cl"].result_count == 0


def test_sessions_list_and_revoke(superuser, story):
    alice = UserFactory(username="alice")
    for _ in range(2):  # two sessions of alice, as the session middleware stores them
        store = SessionStore()
        store.client_ip, store.user_agent = "10.1.2.3", "Mozilla/5.0 (TestBrowser)"
        store["_auth_user_id"] = str(alice.pk)
        store.create()
    admin = Client()
    admin.force_login(superuser)
    page = admin.get(SESSIONS)
    assert page.status_code == 200
    body = page.content.decode()
    assert "alice" in body and "10.1.2.3" in body and "TestBrowser" in body
    assert "sess" not in page.context["cl"].list_display
    one = Session.objects.filter(user=alice).first()
    response = admin.post(SESSIONS, {"action": "revoke_selected", "_selected_action": [one.sid]})
    assert response.status_code == 302
    assert not Session.objects.filter(sid=one.sid).exists()
    assert AuditLog.objects.filter(action="session.revoked").count() == 1
    other = Session.objects.filter(user=alice).first()
    response = admin.post(SESSIONS, {"action": "revoke_all_of_users", "_selected_action": [other.sid]}, follow=True)
    assert not Session.objects.filter(user=alice).exists()
    assert AuditLog.objects.filter(action="session.revoked_all", entity_id=str(alice.pk)).count() == 1
    assert any("Revoked" in m for m in messages_of(response))
    # The admin's own session is untouched.
    assert Session.objects.filter(user=superuser).exists()
    assert admin.get(reverse("admin:sessions_app_session_add")).status_code == 403
    # One session deleted from its own page is revoked the same way.
    mine = Session.objects.filter(user=superuser).first()
    bob_store = SessionStore()
    bob_store["_auth_user_id"] = str(UserFactory(username="bob").pk)
    bob_store.create()
    delete = reverse("admin:sessions_app_session_delete", args=[bob_store.session_key])
    assert admin.get(delete).status_code == 200
    assert admin.post(delete, {"post": "yes"}).status_code == 302
    assert not Session.objects.filter(sid=bob_store.session_key).exists()
    assert AuditLog.objects.filter(action="session.revoked").count() == 2
    assert Session.objects.filter(sid=mine.sid).exists()


def test_revoke_all_sessions_from_the_user_list(su_client):
    bob = UserFactory(username="bob")
    Client().force_login(bob)
    response = su_client.post(
        reverse("admin:auth_user_changelist"), {"action": "revoke_all_sessions", "_selected_action": [bob.pk]}
    )
    assert response.status_code == 302
    assert not Session.objects.filter(user=bob).exists()


def test_api_key_created_in_the_admin_is_shown_once(su_client, owner):
    add = reverse("admin:sessions_app_apikey_add")
    data = admin_form_data(su_client.get(add))
    data.update(user=owner.pk, name="ci", expires_days="30")
    response = su_client.post(add, data, follow=True)
    assert response.status_code == 200
    text = " ".join(messages_of(response))
    assert "shk_" in text and "will not be shown again" in text
    plaintext = text.split("<code>")[1].split("</code>")[0]
    key = ApiKey.objects.get(name="ci")
    assert api_key_lookup(plaintext) == key
    assert plaintext not in (key.key_hash, key.prefix)
    # Nor does it linger in the database-backed sessions (the message rides in a cookie).
    assert not any(plaintext in str(sess) for sess in Session.objects.values_list("sess", flat=True))
    assert AuditLog.objects.filter(action="api_key.created", entity_id=str(key.pk)).exists()
    # Listed with prefix, owner, scope, last use and expiry; never shown again.
    listing = su_client.get(KEYS).content.decode()
    assert key.prefix in listing and "read-write" in listing and plaintext not in listing
    change = su_client.get(reverse("admin:sessions_app_apikey_change", args=[key.pk]))
    assert change.status_code == 200 and plaintext not in change.content.decode()


def test_api_key_bad_input_is_a_form_error(su_client, owner):
    add = reverse("admin:sessions_app_apikey_add")
    data = admin_form_data(su_client.get(add))
    data.update(user=owner.pk, name="ci", expires_days="0")
    response = su_client.post(add, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["expires_days"]
    assert not ApiKey.objects.exists()


def test_api_key_revoke_action(su_client, owner):
    key, _ = api_key_create(actor=None, user=owner, name="old")
    response = su_client.post(KEYS, {"action": "revoke_selected", "_selected_action": [key.pk]})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditLog.objects.filter(action="api_key.revoked", entity_id=str(key.pk)).exists()
    assert (
        su_client.post(reverse("admin:sessions_app_apikey_delete", args=[key.pk]), {"post": "yes"}).status_code == 403
    )


def test_staff_see_and_make_only_their_own_keys(staff_client, owner):
    client = staff_client("member")
    api_key_create(actor=None, user=owner, name="owners-key")
    mine, _ = api_key_create(actor=None, user=client.user, name="my-key")
    listing = client.get(KEYS)
    assert listing.status_code == 200
    assert [k.pk for k in listing.context["cl"].result_list] == [mine.pk]
    add = reverse("admin:sessions_app_apikey_add")
    page = client.get(add)
    assert "user" not in page.context["adminform"].form.fields
    data = admin_form_data(page)
    data.update(name="second")
    assert client.post(add, data).status_code == 302
    assert ApiKey.objects.get(name="second").user == client.user
    others = ApiKey.objects.get(name="owners-key")
    # Another user's key: not visible, cannot be revoked.
    client.post(KEYS, {"action": "revoke_selected", "_selected_action": [others.pk]})
    others.refresh_from_db()
    assert others.revoked_at is None


def test_users_are_deactivated_not_deleted(su_client, owner):
    response = su_client.post(reverse("admin:auth_user_delete", args=[owner.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert su_client.get(reverse("admin:auth_user_change", args=[owner.pk])).status_code == 200
