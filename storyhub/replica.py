"""Read replica routing (DATABASE_REPLICA_URL; README "Operations").

- `ReplicaMiddleware` marks a GET / HEAD request as replica-eligible unless its client
  wrote recently: a write (any other method) pins that client to the primary for
  DATABASE_REPLICA_PIN_SECONDS, by a cookie and by its credential (API key or session) in
  the cache, so a client reads its own writes whichever it keeps.
- `ReplicaRouter` sends an eligible request's reads to the replica; writes, reads inside
  a transaction on the primary and everything outside such a request stay on the primary.
- `replica_usable()` checks the replica at most every DATABASE_REPLICA_CHECK_SECONDS per
  process: down (no connection within DATABASE_REPLICA_CONNECT_TIMEOUT) or lagging more
  than DATABASE_REPLICA_MAX_LAG seconds behind, reads go to the primary until a later
  check finds it back.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections

REPLICA = "replica"
PIN_COOKIE = "storyhub_primary_until"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

log = logging.getLogger("storyhub.replica")
_eligible: contextvars.ContextVar[bool] = contextvars.ContextVar("storyhub_replica_eligible", default=False)


def configured() -> bool:
    return REPLICA in settings.DATABASES


class _Health:
    """The last check of the replica in this process (shared by its threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checked_at = float("-inf")
        self.usable = False
        self.reason = "not checked"

    def reset(self) -> None:
        with self.lock:
            self.checked_at = float("-inf")


health = _Health()

# Seconds the replica is behind: 0 when it has replayed all it received, else the age of
# the last transaction it replayed.
LAG_SQL = (
    "SELECT CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0"
    " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


def measure_lag() -> float:
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(LAG_SQL)
        return float(cursor.fetchone()[0])


def replica_usable(now: float | None = None) -> bool:
    now = time.monotonic() if now is None else now
    with health.lock:
        if now - health.checked_at < settings.DATABASE_REPLICA_CHECK_SECONDS:
            return health.usable
        health.checked_at = now
        try:
            lag = measure_lag()
        except DatabaseError as exc:
            usable, reason = False, f"down: {exc.__class__.__name__}: {str(exc).strip()[:200]}"
            connections[REPLICA].close()
        else:
            usable = lag <= settings.DATABASE_REPLICA_MAX_LAG
            reason = f"lag {lag:.3f} s" + ("" if usable else f" > {settings.DATABASE_REPLICA_MAX_LAG} s")
        if usable != health.usable or reason.startswith("down"):
            log.log(
                logging.INFO if usable else logging.WARNING,
                "replica %s (%s)",
                "in use" if usable else "not used",
                reason,
            )
        health.usable, health.reason = usable, reason
        return usable


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if not _eligible.get() or connections["default"].in_atomic_block:
            return None
        return REPLICA if replica_usable() else None

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same data on both

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db != REPLICA


def _client_key(request) -> str | None:
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    credential = auth or request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
    if not credential:
        return None
    return "storyhub:replica-pin:" + hashlib.sha256(credential.encode()).hexdigest()[:32]


def _pinned(request, now: float) -> bool:
    try:
        if float(request.COOKIES.get(PIN_COOKIE, "0")) > now:
            return True
    except ValueError:
        pass
    key = _client_key(request)
    return key is not None and (cache.get(key) or 0) > now


class ReplicaMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not configured():
            return self.get_response(request)
        now = time.time()
        eligible = request.method in SAFE_METHODS and not _pinned(request, now)
        token = _eligible.set(eligible)
        try:
            response = self.get_response(request)
        finally:
            _eligible.reset(token)
        if request.method not in SAFE_METHODS:
            until = now + settings.DATABASE_REPLICA_PIN_SECONDS
            response.set_cookie(
                PIN_COOKIE,
                f"{until:.3f}",
                max_age=int(settings.DATABASE_REPLICA_PIN_SECONDS) + 1,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
            key = _client_key(request)
            if key is not None:
                cache.set(key, until, timeout=int(settings.DATABASE_REPLICA_PIN_SECONDS) + 1)
        return response
