"""The session store never hangs: only a key collision is retried, a bounded number of
times; a user id naming no user and data that is not strict JSON do not loop for ever.

Each call runs under a timer (SIGALRM in the main thread, where pytest runs the test) so a
regression fails the test instead of hanging the run."""

from __future__ import annotations

import contextlib
import math
import signal

import pytest
from django.contrib.sessions.backends.base import CreateError

from sessions_app import backends
from sessions_app.backends import SessionStore
from sessions_app.models import Session
from tests.factories import UserFactory

LIMIT_SECONDS = 10


class Hung(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float = LIMIT_SECONDS):
    def expired(signum, frame):
        raise Hung(f"did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# transaction=True: the store's own transaction is the outermost one, as in a request, so
# PostgreSQL checks the (deferred) user foreign key at its commit.
@pytest.mark.django_db(transaction=True)
def test_a_user_id_naming_no_user_is_stored_as_no_user():
    store = SessionStore()
    store["_auth_user_id"] = "999999"
    with time_limit():
        store.save()
    row = Session.objects.get(sid=store.session_key)
    assert row.user_id is None
    assert row.sess == {"_auth_user_id": "999999"}
    # A real user is still copied into the column, also when it changes on a later save.
    alice = UserFactory(username="alice")
    store["_auth_user_id"] = str(alice.pk)
    with time_limit():
        store.save()
    assert Session.objects.get(sid=store.session_key).user_id == alice.pk


@pytest.mark.django_db
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_not_retried(value):
    store = SessionStore()
    store["score"] = {"x": [value]}
    with time_limit(), pytest.raises(ValueError, match="strict JSON"):
        store.save()
    assert not Session.objects.exists()


@pytest.mark.django_db
def test_a_colliding_key_is_retried_then_a_fresh_one_used(monkeypatch):
    taken = SessionStore()
    taken["a"] = 1
    taken.save()
    keys = iter([taken.session_key, taken.session_key, "f" * 32])
    monkeypatch.setattr(SessionStore, "_get_new_session_key", lambda self: next(keys))
    store = SessionStore()
    store["b"] = 2
    with time_limit():
        store.save()
    assert store.session_key == "f" * 32
    assert Session.objects.get(sid="f" * 32).sess == {"b": 2}
    assert Session.objects.get(sid=taken.session_key).sess == {"a": 1}  # untouched


@pytest.mark.django_db
def test_collisions_are_retried_a_bounded_number_of_times(monkeypatch):
    taken = SessionStore()
    taken.save()
    calls = []

    def same_key(self):
        calls.append(1)
        return taken.session_key

    monkeypatch.setattr(SessionStore, "_get_new_session_key", same_key)
    with time_limit(), pytest.raises(CreateError):
        SessionStore().create()
    assert len(calls) == backends.CREATE_ATTEMPTS
