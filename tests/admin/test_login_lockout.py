"""Admin login lockout (django-axes): 5 failed logins for one username from one address
lock that pair out for 15 minutes with a clear 429 page; a success resets the count;
`manage.py axes_reset` unlocks; API keys are unaffected. (Test settings switch axes off
for every other test, since Django's Client.login() authenticates without a request.)"""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from sessions_app.services import api_key_create
from tests.factories import UserFactory

LOGIN = "/admin/login/?next=/admin/"
ADDRESS = "192.0.2.10"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def axes_on(settings):
    settings.AXES_ENABLED = True


@pytest.fixture
def staff():
    return UserFactory(username="staffer", is_staff=True)


def login(username: str, password: str, address: str = ADDRESS):
    return Client(REMOTE_ADDR=address).post(LOGIN, {"username": username, "password": password})


def test_five_failures_lock_the_username_at_that_address(settings, staff):
    assert settings.AXES_FAILURE_LIMIT == 5
    # The fifth failure is answered with the lockout page already.
    assert [login("staffer", "wrong").status_code for _ in range(5)] == [200] * 4 + [429]
    locked = login("staffer", "pw-for-tests")  # now even the right password is refused
    assert locked.status_code == 429
    body = locked.content.decode()
    assert "Sign-in is locked" in body and "15 minutes" in body and "axes_reset" in body
    assert int(locked["Retry-After"]) == 15 * 60
    assert "sessionid" not in locked.cookies
    # The same user from another address, and another user from this one, still sign in.
    assert login("staffer", "pw-for-tests", address="192.0.2.99").status_code == 302
    UserFactory(username="other", is_staff=True)
    assert login("other", "pw-for-tests").status_code == 302
    # The attempts are in the database, which every worker shares.
    assert AccessAttempt.objects.filter(username="staffer", ip_address=ADDRESS).exists()
    call_command("axes_reset", verbosity=0)
    assert login("staffer", "pw-for-tests").status_code == 302


def test_a_successful_login_resets_the_count(staff):
    for _ in range(2):
        assert [login("staffer", "wrong").status_code for _ in range(4)] == [200] * 4
        assert login("staffer", "pw-for-tests").status_code == 302


def test_api_keys_are_not_affected_by_a_lockout(staff):
    plaintext = api_key_create(actor=None, user=staff, name="ci")[1]
    for _ in range(5):
        login("staffer", "wrong")
    assert login("staffer", "pw-for-tests").status_code == 429
    api = APIClient(REMOTE_ADDR=ADDRESS)
    assert api.get("/api/v1/projects/", HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code == 200
    # Bad keys are the API throttle's business, never a login lockout.
    assert api.get("/api/v1/projects/", HTTP_AUTHORIZATION="Bearer shk_wrong").status_code == 401
    assert not AccessAttempt.objects.exclude(username="staffer").exists()
