"""Lost updates outside stories, on PostgreSQL against the live test server: writers that
all hold the same ETag of a project, backlog, status, epic or membership queue on its row
lock; on release exactly one wins and every other one is told 412."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from sessions_app.services import api_key_create
from stories.models import Backlog, Epic, Project, ProjectMember, Status
from tests.factories import BacklogFactory, EpicFactory

from .conftest import Api, backends_waiting_on_locks, pg_connect, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

P = "/projects/plan-pipe/"
# resource → (path, model, lookup, body for writer n)
RESOURCES = {
    "project": (P, Project, {"slug": "plan-pipe"}, lambda n: {"name": f"Name {n}"}),
    "backlog": (P + "backlogs/b1/", Backlog, {"slug": "b1"}, lambda n: {"name": f"B {n}"}),
    "status": (P + "statuses/ready/", Status, {"slug": "ready"}, lambda n: {"name": f"Ready {n}"}),
    "epic": (P + "epics/core/", Epic, {"slug": "core"}, lambda n: {"name": f"Core {n}"}),
    "member": (
        P + "members/member/",
        ProjectMember,
        {"user__username": "member"},
        lambda n: {"role": ["viewer", "admin"][n % 2]},
    ),
}


@pytest.mark.parametrize("kind", RESOURCES)
def test_one_winner_per_version_the_others_get_412(kind, live_server, project, owner, member):
    BacklogFactory(project=project, slug="b1", actor=owner)
    EpicFactory(project=project, slug="core", actor=owner)
    path, model, lookup, body = RESOURCES[kind]
    api = Api(live_server.url, api_key_create(actor=None, user=owner, name="versions")[1])
    etag = api("GET", path).headers["ETag"]
    row = model.objects.get(**lookup)
    writers = 5
    with pg_connect() as control:
        control.execute(f"SELECT id FROM {model._meta.db_table} WHERE id = %s FOR UPDATE", [row.pk])  # noqa: S608
        with ThreadPoolExecutor(max_workers=writers) as pool:
            futures = [pool.submit(api, "PATCH", path, json=body(n), if_match=etag) for n in range(writers)]
            wait_for(lambda: len(backends_waiting_on_locks()) == writers, what="writers queued on the row lock")
            control.rollback()
            results = [f.result(timeout=30) for f in futures]
    codes = Counter(r.status_code for r in results)
    assert codes == {200: 1, 412: writers - 1}, (codes, [r.json() for r in results])
    winner = next(r for r in results if r.status_code == 200)
    assert model.objects.get(**lookup).version == 2
    for loser in (r for r in results if r.status_code == 412):
        assert loser.json()["code"] == "precondition_failed"
        assert loser.headers["ETag"] == winner.headers["ETag"]
