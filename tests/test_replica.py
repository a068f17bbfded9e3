"""Read replica routing against a real streaming replica (storyhub.pgtest.ensure_replica:
pg_basebackup -R on loopback, second port; started once and reused). PostgreSQL only.

The `replica` alias is added for this module only (the rest of the suite reads inside
test transactions a replica could never see) and the tests commit (transaction=True).
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext, override_settings

from storyhub import pgtest, replica
from tests.factories import ProjectFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases=["default", "replica"])]


def _add_alias(host: str, port: int) -> None:
    default = connections["default"].settings_dict
    conf = {
        **default,
        "HOST": host,
        "PORT": port,
        "OPTIONS": {k: v for k, v in default["OPTIONS"].items() if k != "pool"} | {"connect_timeout": 1},
        "TEST": {"MIRROR": "default"},
    }
    conf.pop("DIRECT", None)
    connections.settings[replica.REPLICA] = conf
    settings.DATABASES[replica.REPLICA] = conf


def _drop_alias() -> None:
    if replica.REPLICA in connections.settings:
        connections[replica.REPLICA].close()
        del connections[replica.REPLICA]
        del connections.settings[replica.REPLICA]
    settings.DATABASES.pop(replica.REPLICA, None)
    replica.health.reset()


@pytest.fixture(scope="module", autouse=True)
def replica_address(django_db_setup):
    """Before the test case is set up (it checks its databases exist): the alias. A mirror
    of the test database, so the test case never flushes it (a standby is read-only)."""
    if settings.DATABASES["default"]["ENGINE"] != "storyhub.db.postgresql":
        yield None
        return
    db = settings.DATABASES["default"]
    direct = db.get("DIRECT") or {"HOST": db["HOST"] or "127.0.0.1", "PORT": int(db["PORT"] or 5432)}
    address = pgtest.ensure_replica(direct["HOST"], direct["PORT"], db["USER"])
    _add_alias(*address)
    yield address
    _drop_alias()


@pytest.fixture
def routed(replica_address, transactional_db):
    _drop_alias()
    _add_alias(*replica_address)  # afresh: a test may have pointed it elsewhere
    replica.health.reset()
    with override_settings(DATABASE_ROUTERS=["storyhub.replica.ReplicaRouter"]):
        yield


@pytest.fixture
def reader(routed, client):
    owner = UserFactory(username="replica-owner")
    ProjectFactory(slug="replica-proj", name="On both", actor=owner)
    client.force_login(owner)  # not through the middleware: not pinned
    with connections["default"].cursor() as p, connections[replica.REPLICA].cursor() as r:
        pgtest.wait_replayed(p, r)
    return client


def _items(response) -> list:
    data = response.json()
    return data["results"] if isinstance(data, dict) else data


def _where(client, url: str):
    with (
        CaptureQueriesContext(connections["default"]) as on_primary,
        CaptureQueriesContext(connections[replica.REPLICA]) as on_replica,
    ):
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    lag_checks = [q for q in on_replica.captured_queries if "pg_last_wal_replay_lsn" in q["sql"]]
    return response, len(on_primary.captured_queries), len(on_replica.captured_queries) - len(lag_checks)


def test_a_read_goes_to_the_replica_and_finds_the_replicated_rows(reader):
    response, _, replica_queries = _where(reader, "/api/v1/projects/")
    assert replica_queries > 0
    assert [p["slug"] for p in _items(response)] == ["replica-proj"]
    with connections[replica.REPLICA].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0] is True  # really the standby


def test_a_client_that_wrote_reads_its_write_from_the_primary(reader):
    created = reader.post(
        "/api/v1/projects/replica-proj/epics/", {"slug": "fresh", "name": "Fresh"}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    assert replica.PIN_COOKIE in created.cookies
    response, primary_queries, replica_queries = _where(reader, "/api/v1/projects/replica-proj/epics/")
    assert replica_queries == 0 and primary_queries > 0
    assert "fresh" in [e["slug"] for e in _items(response)]
    # The pin is also kept by credential: without the cookie the same session is pinned.
    reader.cookies.pop(replica.PIN_COOKIE)
    _, _, replica_queries = _where(reader, "/api/v1/projects/replica-proj/epics/")
    assert replica_queries == 0


def test_a_lagging_replica_is_not_read(reader):
    with connections[replica.REPLICA].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_pause()")
    try:
        ProjectFactory(slug="while-paused", name="Not replayed yet", actor=None)
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_switch_wal()")  # the replica receives it, cannot replay it
        with override_settings(DATABASE_REPLICA_MAX_LAG=0.0, DATABASE_REPLICA_CHECK_SECONDS=0.0):
            response, primary_queries, replica_queries = _where(reader, "/api/v1/projects/")
        assert replica_queries == 0 and primary_queries > 0
        assert "lag" in replica.health.reason and replica.health.usable is False
    finally:
        with connections[replica.REPLICA].cursor() as cursor:
            cursor.execute("SELECT pg_wal_replay_resume()")


def test_a_replica_that_is_down_falls_back_to_the_primary(routed, client):
    _drop_alias()
    _add_alias("127.0.0.1", pgtest.REPLICA_PORT + 1)  # nothing listens there
    owner = UserFactory(username="replica-down")
    ProjectFactory(slug="down-proj", name="Primary only", actor=owner)
    client.force_login(owner)
    client.cookies.pop(replica.PIN_COOKIE, None)
    with override_settings(DATABASE_REPLICA_PIN_SECONDS=0.0):
        first = client.get("/api/v1/projects/")
        assert first.status_code == 200 and [p["slug"] for p in _items(first)] == ["down-proj"]
        assert replica.health.usable is False and replica.health.reason.startswith("down")
        checked = replica.health.checked_at
        assert client.get("/api/v1/projects/").status_code == 200
        assert replica.health.checked_at == checked  # not probed again within CHECK_SECONDS
