"""Database sessions: JSON data in `sessions`, login / logout / clearsessions."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from sessions_app.backends import SessionStore
from sessions_app.models import Session
from sessions_app.services import session_revoke_all_for_user
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return UserFactory(username="staffer", is_staff=True, is_superuser=True)


def admin_login(client, user):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": user.username, "password": "pw-for-tests"},
        HTTP_USER_AGENT="pytest-agent/1.0",
    )


def test_admin_login_creates_json_session_row_and_logout_removes_it(client, staff):
    response = admin_login(client, staff)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    [row] = Session.objects.all()
    assert row.sess["_auth_user_id"] == str(staff.pk)  # plain JSON, queryable
    assert Session.objects.filter(sess___auth_user_id=str(staff.pk)).count() == 1
    assert row.user == staff and row.user_agent == "pytest-agent/1.0" and row.ip_address == "127.0.0.1"
    assert row.expire > timezone.now()
    assert client.cookies["sessionid"].value == row.sid
    assert client.get("/admin/").status_code == 200
    client.post("/admin/logout/")
    assert not Session.objects.filter(sid=row.sid).exists()


def test_revoked_session_logs_the_user_out(client, staff):
    admin_login(client, staff)
    assert session_revoke_all_for_user(actor=staff, user=staff) == 1
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_store_round_trip_and_clearsessions():
    store = SessionStore()
    store["cart"] = {"items": [1, 2]}
    store.save()
    loaded = SessionStore(store.session_key)
    assert loaded["cart"] == {"items": [1, 2]}
    assert SessionStore().exists(store.session_key)
    old = SessionStore()
    old["x"] = 1
    old.set_expiry(-10)
    old.save()
    assert Session.objects.count() == 2
    call_command("clearsessions")
    assert list(Session.objects.values_list("sid", flat=True)) == [store.session_key]
    # An expired row reads as empty, even before it is cleared.
    Session.objects.filter(sid=store.session_key).update(expire=timezone.now() - timedelta(seconds=1))
    assert SessionStore(store.session_key).load() == {}


def test_session_data_is_never_pickled():
    store = SessionStore()
    store["when"] = "2025-01-01"
    store.save()
    row = Session.objects.get(sid=store.session_key)
    assert row.sess == {"when": "2025-01-01"}
