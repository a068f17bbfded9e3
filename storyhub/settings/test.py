"""Test settings: the database comes from DATABASE_URL (SQLite when unset)."""

import tempfile

from .base import *  # noqa: F403
from .base import DATABASES, env, for_transaction_pooling

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"
# Hashing passwords slowly is the point in production and a waste in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The PostgreSQL run goes through PgBouncer in transaction pooling mode, as production may
# (storyhub.pgtest starts one on loopback, once, and reuses it). STORYHUB_TEST_PGBOUNCER=0
# connects directly; the default follows STORYHUB_REQUIRE_POSTGRES (`make test`'s run).
STORYHUB_TEST_PGBOUNCER = False
if DATABASES["default"]["ENGINE"] == "storyhub.db.postgresql":
    DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_storyhub")}
    if env.bool("STORYHUB_TEST_PGBOUNCER", default=env.bool("STORYHUB_REQUIRE_POSTGRES", default=False)):
        from storyhub import pgtest

        _db = DATABASES["default"]
        _db["DIRECT"] = {"HOST": _db["HOST"] or "127.0.0.1", "PORT": int(_db["PORT"] or 5432)}
        _db["HOST"], _db["PORT"] = pgtest.ensure_pgbouncer(_db["DIRECT"]["HOST"], _db["DIRECT"]["PORT"], _db["USER"])
        for_transaction_pooling(_db)
        # A run that died left PgBouncer's server connections to its test database open.
        pgtest.pgbouncer_release(_db["TEST"]["NAME"], _db["USER"])
        STORYHUB_TEST_PGBOUNCER = True
# High limits so only the throttle test (which lowers them) ever sees a 429.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"api_key": "100000/min", "user": "100000/min", "anon": "100000/min"},
}
# Django's test Client.login() authenticates without a request, which django-axes refuses;
# the lockout tests (tests/admin/test_login_lockout.py) switch it on.
AXES_ENABLED = False

# Webhook receivers in the tests listen on 127.0.0.1; short timeouts; SSE streams end at once.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=1.0)
EVENTS_SSE_MAX_SECONDS = 0.0
EVENTS_SSE_POLL_SECONDS = 0.05

# Tests link repositories in temporary directories; each test process has its own mirrors.
GIT_SYNC_LOCAL_ROOTS = ["/"]
GIT_SYNC_CACHE_DIR = tempfile.mkdtemp(prefix="storyhub-git-sync-test-")
