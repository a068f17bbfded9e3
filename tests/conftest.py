"""Shared fixtures. The PostgreSQL run (STORYHUB_REQUIRE_POSTGRES=1, set by `make test`)
fails instead of skipping if it is not really on PostgreSQL."""

from __future__ import annotations

import copy
import os

import pytest
from django.db import connection

from tests.factories import MemberFactory, ProjectFactory, StoryFactory, UserFactory


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"] == "storyhub.db.postgresql"
    if os.environ.get("STORYHUB_REQUIRE_POSTGRES") == "1" and not on_postgres:
        raise pytest.UsageError("STORYHUB_REQUIRE_POSTGRES=1 but DATABASE_URL is not PostgreSQL")
    if not on_postgres:
        skip = pytest.mark.skip(reason="PostgreSQL only; runs in the PostgreSQL pass of `make test`")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, plus: through PgBouncer, its pooled server connections to the test
    database are closed before pytest-django drops it (DROP DATABASE refuses otherwise)."""
    yield
    from django.conf import settings
    from django.db import connections

    if settings.STORYHUB_TEST_PGBOUNCER:
        from storyhub import pgtest

        connections.close_all()
        db = settings.DATABASES["default"]
        pgtest.pgbouncer_release(connection.settings_dict["NAME"], db["USER"])


@pytest.fixture(scope="module")
def direct_postgres(django_db_setup, django_db_blocker):
    """For a module that needs a session PgBouncer does not give (killing the backend
    serving a request, the `options` startup parameter...): its tests connect straight to
    PostgreSQL, the live server's threads included (they share the settings and the pool)."""
    db = connection.settings_dict
    direct = db.get("DIRECT")
    if not direct:
        yield
        return
    saved = copy.deepcopy({k: db[k] for k in ("HOST", "PORT", "OPTIONS", "DISABLE_SERVER_SIDE_CURSORS")})

    def reopen():
        with django_db_blocker.unblock():
            connection.close()
            connection.close_pool()

    reopen()
    db.update(HOST=direct["HOST"], PORT=direct["PORT"], DISABLE_SERVER_SIDE_CURSORS=False)
    db["OPTIONS"].pop("prepare_threshold", None)
    try:
        yield
    finally:
        reopen()
        db.update(saved)


@pytest.fixture
def vendor() -> str:
    return connection.vendor


@pytest.fixture
def owner(db):
    return UserFactory(username="owner")


@pytest.fixture
def project(owner):
    return ProjectFactory(slug="plan-pipe", name="Plan Pipe", actor=owner)


@pytest.fixture
def member(project, owner):
    user = UserFactory(username="member")
    MemberFactory(project=project, user=user, role="member", actor=owner)
    return user


@pytest.fixture
def viewer(project, owner):
    user = UserFactory(username="viewer")
    MemberFactory(project=project, user=user, role="viewer", actor=owner)
    return user


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


@pytest.fixture
def story(project, owner):
    return StoryFactory(project=project, key="INF-001", title="First story", actor=owner)


@pytest.fixture
def make_story(project, owner):
    def make(key: str, **kwargs):
        kwargs.setdefault("title", f"Story {key}")
        return StoryFactory(project=kwargs.pop("project", project), key=key, actor=kwargs.pop("actor", owner), **kwargs)

    return make
