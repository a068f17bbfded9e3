"""Helpers for the robustness tests: HTTP calls to the live test server (127.0.0.1 only),
with an API key, from many threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from sessions_app.services import api_key_create

HTTP_TIMEOUT = 30  # seconds; every call is bounded


class Api:
    def __init__(self, base: str, key: str):
        self.base = base.rstrip("/") + "/api/v1"
        self.root = base.rstrip("/")
        self.key = key

    def __call__(self, method: str, path: str, *, if_match: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        if if_match is not None:
            headers["If-Match"] = if_match
        url = path if path.startswith("http") else self.base + path
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return requests.request(method, url, headers=headers, **kwargs)

    def get_root(self, path: str) -> requests.Response:
        return requests.get(self.root + path, timeout=HTTP_TIMEOUT)


@pytest.fixture
def api(live_server, member) -> Api:
    return Api(live_server.url, api_key_create(actor=None, user=member, name="robustness")[1])


def all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in as many threads, released together by a barrier; results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait(timeout=HTTP_TIMEOUT)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls, timeout=HTTP_TIMEOUT * 2))


def pg_connect(dbname: str | None = None, **kwargs):
    """A plain psycopg connection (outside Django's pool) to the test database, or to
    `dbname`: a second client that holds locks or kills backends."""
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    params = {
        "host": settings.get("HOST") or None,
        "port": settings.get("PORT") or None,
        "user": settings.get("USER") or None,
        "password": settings.get("PASSWORD") or None,
        "dbname": dbname or settings["NAME"],
        "connect_timeout": 5,
    }
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None}, **kwargs)


def wait_for(predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    """Poll until predicate() is truthy (returns it) or fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def backends_waiting_on_locks() -> list[int]:
    """Pids of the test database's backends that wait for a lock. Asked on a fresh
    autocommit connection: pg_stat_activity is a snapshot within a transaction."""
    with pg_connect(autocommit=True) as monitor:
        rows = monitor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchall()
    return [pid for (pid,) in rows]
