"""Missing or bad credentials count towards the caller's address limit (DRF refuses them
with 401 before its throttles run, so they used to be free); past the limit the answer is
429 with Retry-After. Callers that do authenticate keep their own buckets."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from sessions_app.services import api_key_create

P = "/api/v1/projects/"


@pytest.fixture
def low_anon_limit(settings, db):
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "100/min", "user": "100/min", "anon": "3/min"},
    }
    yield
    cache.clear()


def get(headers: dict | None = None, address: str = "203.0.113.7"):
    return APIClient().get(P, REMOTE_ADDR=address, **(headers or {}))


def test_failed_authentication_is_throttled_by_address(low_anon_limit, owner):
    bad = {"HTTP_AUTHORIZATION": "Bearer shk_guess"}
    assert [get(bad).status_code for _ in range(3)] == [401, 401, 401]
    limited = get(bad)
    assert limited.status_code == 429
    assert limited.json()["code"] == "throttled"
    assert int(limited["Retry-After"]) > 0
    # Without credentials, or with a malformed header, the same address is still limited.
    assert get().status_code == 429
    assert get({"HTTP_AUTHORIZATION": "Bearer a b"}).status_code == 429
    # Another address has its own bucket.
    assert get(bad, address="198.51.100.9").status_code == 401
    # A valid key from the limited address is not slowed down by the failures.
    plaintext = api_key_create(actor=None, user=owner, name="ci")[1]
    assert get({"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}).status_code == 200


def test_revoked_key_failures_count_too(low_anon_limit, owner):
    from sessions_app.services import api_key_revoke

    key, plaintext = api_key_create(actor=None, user=owner, name="old")
    api_key_revoke(actor=None, key=key)
    statuses = [get({"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_a_forged_forwarded_for_header_does_not_give_a_fresh_bucket(low_anon_limit):
    statuses = [
        get({"HTTP_AUTHORIZATION": "Bearer shk_guess", "HTTP_X_FORWARDED_FOR": f"10.0.0.{i}"}).status_code
        for i in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


def test_behind_a_trusted_proxy_the_address_it_appends_counts(low_anon_limit, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # The client may send its own X-Forwarded-For; the proxy appends the real address.
    forged = [f"10.0.0.{i}, 198.51.100.20" for i in range(4)]
    statuses = [get({"HTTP_X_FORWARDED_FOR": xff}, address="192.0.2.1").status_code for xff in forged]
    assert statuses == [401, 401, 401, 429]
    assert get({"HTTP_X_FORWARDED_FOR": "198.51.100.21"}, address="192.0.2.1").status_code == 401
