"""Users in the admin: creating one, editing its flags and groups, and changing its password
each write an audit row through sessions_app.services (never the password hash)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from audit.models import AuditLog
from sessions_app import services
from tests.admin.conftest import admin_form_data

User = get_user_model()


def _details_text(row: AuditLog) -> str:
    return json.dumps(row.details)


def test_creating_a_user_in_the_admin_is_audited_without_the_hash(su_client, superuser):
    response = su_client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "carol",
            "password1": "a-long-pass-123",
            "password2": "a-long-pass-123",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    carol = User.objects.get(username="carol")
    row = AuditLog.objects.get(action="user.created", entity_id=str(carol.pk))
    assert row.user_id == superuser.pk
    assert row.details["source"] == "admin"
    assert row.details["changes"]["username"] == {"old": None, "new": "carol"}
    assert row.details["changes"]["password"] == {"old": None, "new": "set"}
    assert carol.password not in _details_text(row)


def test_editing_flags_and_groups_is_audited_field_by_field(su_client, superuser):
    dave = User.objects.create_user("dave", password="pw-dave-123")
    planners = Group.objects.create(name="planners")
    url = reverse("admin:auth_user_change", args=[dave.pk])
    data = admin_form_data(su_client.get(url))
    data.update(is_staff="on", email="dave@example.com", groups=[str(planners.pk)])
    response = su_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    dave.refresh_from_db()
    assert dave.is_staff and list(dave.groups.all()) == [planners]
    updated = AuditLog.objects.get(action="user.updated", entity_id=str(dave.pk))
    assert updated.details["changes"] == {
        "is_staff": {"old": False, "new": True},
        "email": {"old": "", "new": "dave@example.com"},
    }
    assert updated.user_id == superuser.pk
    access = AuditLog.objects.get(action="user.access_changed", entity_id=str(dave.pk))
    assert access.details["changes"] == {"groups": {"old": [], "new": ["planners"]}}
    # Saving the same form again changes nothing and writes nothing.
    before = AuditLog.objects.count()
    assert su_client.post(url, admin_form_data(su_client.get(url))).status_code == 302
    assert AuditLog.objects.count() == before


def test_password_change_in_the_admin_is_audited_and_never_logs_the_hash(su_client, superuser):
    erin = User.objects.create_user("erin", password="old-pass-123")
    old_hash = erin.password
    response = su_client.post(
        reverse("admin:auth_user_password_change", args=[erin.pk]),
        {"password1": "new-pass-456x", "password2": "new-pass-456x", "usable_password": "true"},
    )
    assert response.status_code == 302
    erin.refresh_from_db()
    assert erin.check_password("new-pass-456x")
    row = AuditLog.objects.get(action="user.updated", entity_id=str(erin.pk))
    assert row.user_id == superuser.pk
    assert row.details["changes"] == {"password": {"old": "set", "new": "changed"}}
    text = _details_text(row)
    assert old_hash not in text and erin.password not in text and "new-pass" not in text


@pytest.mark.django_db
def test_user_save_without_changes_writes_no_row():
    frank = User.objects.create_user("frank")
    before = AuditLog.objects.count()
    services.user_save(actor=None, user=User.objects.get(pk=frank.pk))
    assert AuditLog.objects.count() == before
