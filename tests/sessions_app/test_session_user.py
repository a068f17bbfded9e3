"""The session row and its user in one statement (sessions_app.backends): one query
authenticates a session, and what logs a session out still does."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sessions_app.backends import SessionStore, SessionUserBackend, lend_session_user
from sessions_app.middleware import get_user
from sessions_app.models import Session
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PROJECTS = "/api/v1/projects/"


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def logged_in(alice):
    client = Client()
    client.force_login(alice)
    return client


def _request_with(session_key):
    request = RequestFactory().get("/")
    request.session = SessionStore(session_key)
    return request


def test_session_and_user_are_one_query(logged_in, alice, django_assert_num_queries):
    request = _request_with(logged_in.session.session_key)
    with django_assert_num_queries(1) as ctx:
        assert get_user(request) == alice
    sql = ctx.captured_queries[0]["sql"]
    assert "sessions" in sql and "auth_user" in sql


def test_an_api_request_reads_the_user_only_with_the_session(logged_in):
    with CaptureQueriesContext(connection) as ctx:
        assert logged_in.get(PROJECTS).status_code == 200
    # the session with its user, the caller's roles, the projects
    assert len(ctx.captured_queries) == 3
    assert [q["sql"] for q in ctx.captured_queries if "auth_user" in q["sql"]] == [ctx.captured_queries[0]["sql"]]


def test_the_backend_reads_the_user_itself_outside_a_lent_session(alice, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert SessionUserBackend().get_user(alice.pk) == alice
    with lend_session_user(None), django_assert_num_queries(1):
        assert SessionUserBackend().get_user(alice.pk) == alice


def test_a_lent_session_gives_only_its_own_user(logged_in, alice, django_assert_num_queries):
    other = UserFactory(username="bob")
    store = SessionStore(logged_in.session.session_key)
    assert store.get("_auth_user_id") == str(alice.pk)  # read, as a request's first access does
    with lend_session_user(store):
        with django_assert_num_queries(0):
            assert SessionUserBackend().get_user(alice.pk) == alice
        with django_assert_num_queries(1):
            assert SessionUserBackend().get_user(other.pk) == other
        store["changed"] = True  # a changed session (a login, a logout) reads the user afresh
        with django_assert_num_queries(1):
            assert SessionUserBackend().get_user(alice.pk) == alice


def test_a_password_change_logs_the_session_out(logged_in, alice):
    key = logged_in.session.session_key
    alice.set_password("a-new-password")
    alice.save()
    assert logged_in.get(PROJECTS).status_code == 401
    assert not Session.objects.filter(sid=key).exists()  # flushed, as Django's get_user does


def test_a_tampered_session_hash_logs_the_session_out(logged_in):
    key = logged_in.session.session_key
    row = Session.objects.get(sid=key)
    row.sess["_auth_user_hash"] = "0" * 64
    Session.objects.filter(sid=key).update(sess=row.sess)
    assert logged_in.get(PROJECTS).status_code == 401
    assert not Session.objects.filter(sid=key).exists()


def test_an_inactive_user_is_anonymous(logged_in, alice):
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert logged_in.get(PROJECTS).status_code == 401


def test_an_expired_session_is_anonymous(logged_in):
    Session.objects.filter(sid=logged_in.session.session_key).update(expire=timezone.now())
    assert logged_in.get(PROJECTS).status_code == 401


def test_a_fallback_secret_keeps_the_user_and_cycles_the_key(alice):
    with override_settings(SECRET_KEY="old-secret-" * 5):
        client = Client()
        client.force_login(alice)
        key = client.session.session_key
    with override_settings(SECRET_KEY="new-secret-" * 5, SECRET_KEY_FALLBACKS=["old-secret-" * 5]):
        assert client.get(PROJECTS).status_code == 200
        assert not Session.objects.filter(sid=key).exists()
        [row] = Session.objects.filter(user=alice)
        assert row.sess["_auth_user_hash"] == alice.get_session_auth_hash()
        assert client.get(PROJECTS).status_code == 200


def test_logout_ends_the_session(logged_in):
    key = logged_in.session.session_key
    logged_in.logout()
    assert not Session.objects.filter(sid=key).exists()
    assert logged_in.get(PROJECTS).status_code == 401
