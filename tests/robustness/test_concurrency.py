"""Many clients at once against the live test server, on PostgreSQL: optimistic
concurrency (If-Match) has exactly one winner per version and loses nothing, and
concurrent dependency writers cannot close a cycle."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from audit.models import AuditLog
from stories.models import Status, StatusHistory, Story, StoryDependency

from .conftest import all_at_once, backends_waiting_on_locks, pg_connect, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 12
ROUNDS = 6
TARGETS = ["ready", "in_progress", "active", "review", "blocked", "backlog"]


def story_rows(story: Story) -> tuple[int, int]:
    """(status_history rows, audit_log rows) of `story`."""
    return (
        StatusHistory.objects.filter(story=story).count(),
        AuditLog.objects.filter(entity_type="story", entity_id=str(story.pk)).count(),
    )


def transition(api, path: str, etag: str, target: str):
    return ("transition", target, api("POST", path + "transition/", json={"status": target}, if_match=etag))


def edit(api, path: str, etag: str, title: str):
    return ("edit", title, api("PATCH", path, json={"title": title}, if_match=etag))


def test_if_match_has_one_winner_per_version_and_loses_nothing(api, story):
    path = f"/projects/{story.project.slug}/stories/{story.key}/"
    history, audit = story_rows(story)
    transitions = edits = 0
    last_title = story.title
    for round_no in range(ROUNDS):
        current = api("GET", path)
        assert current.status_code == 200
        etag, state = current.headers["ETag"], current.json()
        choices = [t for t in TARGETS if t != state["status"]]
        calls = [
            partial(transition, api, path, etag, choices[n % len(choices)])
            if n % 2
            else partial(edit, api, path, etag, f"Round {round_no} writer {n}")
            for n in range(THREADS)
        ]
        results = all_at_once(calls)

        codes = Counter(response.status_code for _, _, response in results)
        assert codes[200] == 1, codes
        # Every loser is refused as stale with 412, whether the view's If-Match check or
        # the service's check under the row lock caught it.
        assert codes[412] == THREADS - 1, (codes, [r[2].json() for r in results if r[2].status_code == 409][:2])
        for _, _, response in results:
            if response.status_code == 412:
                assert response.json()["code"] == "precondition_failed"
        kind, value, response = next(r for r in results if r[2].status_code == 200)
        assert response.json()["version"] == state["version"] + 1
        assert response.headers["ETag"] != etag

        after = api("GET", path).json()
        assert after["version"] == state["version"] + 1  # exactly one write per version
        if kind == "transition":
            transitions += 1
            assert after["status"] == value and after["title"] == last_title
        else:
            edits += 1
            last_title = value
            assert after["title"] == value and after["status"] == state["status"]

    story.refresh_from_db()
    assert story.version == 1 + ROUNDS
    assert story.title == last_title
    # One history row per transition that won, one audit row per write that won.
    assert story_rows(story) == (history + transitions, audit + transitions + edits)


def test_if_match_losers_queued_on_the_row_lock_get_412(api, story):
    """Deterministic race: a second client holds the story's row lock while every writer
    passes the view's If-Match check and queues on the lock; on release one wins and all
    the others must be told 412."""
    path = f"/projects/{story.project.slug}/stories/{story.key}/"
    etag = api("GET", path).headers["ETag"]
    writers = 6
    with pg_connect() as control:
        control.execute("SELECT id FROM stories WHERE id = %s FOR UPDATE", [story.pk])
        with ThreadPoolExecutor(max_workers=writers) as pool:
            futures = [
                pool.submit(api, "PATCH", path, json={"title": f"Queued {n}"}, if_match=etag) for n in range(writers)
            ]
            wait_for(lambda: len(backends_waiting_on_locks()) == writers, what="writers queued on the lock")
            control.rollback()  # release the row lock
            results = [f.result(timeout=30) for f in futures]
    codes = Counter(r.status_code for r in results)
    assert codes[200] == 1, codes
    story.refresh_from_db()
    assert story.version == 2
    assert codes[412] == writers - 1, codes


def test_a_writer_waiting_on_one_story_does_not_block_the_project(api, story, make_story):
    """Row locks are per story: a write stuck behind story A's lock must not hold locks
    that a write to story B of the same project needs (project or status rows)."""
    other = make_story("INF-002")
    base = f"/projects/{story.project.slug}/stories/"
    with pg_connect() as control, ThreadPoolExecutor(max_workers=1) as pool:
        control.execute("SELECT id FROM stories WHERE id = %s FOR UPDATE", [story.pk])
        stuck = pool.submit(api, "POST", base + f"{story.key}/transition/", json={"status": "ready"})
        wait_for(lambda: backends_waiting_on_locks(), what="the first write to wait on the row lock")
        started = time.monotonic()
        response = api("POST", base + f"{other.key}/transition/", json={"status": "ready"}, timeout=10)
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < 5
        assert not stuck.done()
        control.rollback()
        assert stuck.result(timeout=30).status_code == 200


def test_a_slow_write_to_one_story_does_not_serialize_the_project(api, story, make_story):
    """A write that holds story A's row lock and is slow further on (here: waiting for the
    target status row, which a second client holds) must not block a write to story B of
    the same project: the service locks the story row only, not its project or status."""
    other = make_story("INF-002")
    base = f"/projects/{story.project.slug}/stories/"
    review = Status.objects.get(project=story.project, slug="review").pk
    with pg_connect() as control, ThreadPoolExecutor(max_workers=1) as pool:
        control.execute("SELECT id FROM statuses WHERE id = %s FOR UPDATE", [review])
        slow = pool.submit(api, "POST", base + f"{story.key}/transition/", json={"status": "review"})
        wait_for(backends_waiting_on_locks, what="the first write to wait inside its transaction")
        started = time.monotonic()
        response = api("POST", base + f"{other.key}/transition/", json={"status": "ready"}, timeout=10)
        elapsed = time.monotonic() - started
        assert not slow.done()
        control.rollback()
        assert slow.result(timeout=30).status_code == 200
    assert response.status_code == 200, response.text
    assert elapsed < 5


def test_stale_writers_never_overwrite_after_the_winner_commits(api, story):
    """Writers that all read version 1 keep being refused after version 2 exists."""
    path = f"/projects/{story.project.slug}/stories/{story.key}/"
    etag = api("GET", path).headers["ETag"]
    assert api("PATCH", path, json={"title": "Winner"}, if_match=etag).status_code == 200
    results = all_at_once(
        [lambda n=n: api("PATCH", path, json={"title": f"Stale {n}"}, if_match=etag) for n in range(THREADS)]
    )
    assert {r.status_code for r in results} == {412}
    story.refresh_from_db()
    assert (story.title, story.version) == ("Winner", 2)


def _assert_acyclic(project) -> None:
    """A full scan of the blocks graph: Kahn's algorithm must consume every node."""
    edges = list(
        StoryDependency.objects.filter(type="blocks", story__project=project).values_list("story_id", "depends_on_id")
    )
    nodes = {n for edge in edges for n in edge}
    indegree = dict.fromkeys(nodes, 0)
    out: dict[int, list[int]] = {}
    for source, target in edges:
        out.setdefault(source, []).append(target)
        indegree[target] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for nxt in out.get(node, ()):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    assert seen == len(nodes), "the blocks graph has a cycle"


def add_dependency(api, project, story, depends_on):
    return api(
        "POST", f"/projects/{project.slug}/stories/{story.key}/dependencies/", json={"depends_on": depends_on.key}
    )


def test_two_writers_closing_a_cycle_from_both_ends_one_fails(api, project, make_story):
    """A ← B ← … chain per round; two clients add the two edges that would close it."""
    for round_no in range(8):
        a = make_story(f"CYC-{round_no}-A")
        b = make_story(f"CYC-{round_no}-B")
        c = make_story(f"CYC-{round_no}-C")
        assert api("POST", f"/projects/{project.slug}/stories/{b.key}/dependencies/", json={"depends_on": a.key}).ok

        # c → b (extends the chain) and a → c (closes a → c → b → a with it): only one may win.
        results = all_at_once(
            [partial(add_dependency, api, project, c, b), partial(add_dependency, api, project, a, c)]
        )
        codes = sorted(r.status_code for r in results)
        assert codes == [201, 409], codes
        loser = next(r for r in results if r.status_code == 409).json()
        assert loser["code"] == "dependency_cycle"
    _assert_acyclic(project)
    added = StoryDependency.objects.filter(story__project=project).count()
    assert added == 8 * 2
    assert AuditLog.objects.filter(action="dependency.added").count() == added


def test_many_writers_adding_random_edges_keep_the_graph_acyclic(api, project, make_story):
    import random

    rng = random.Random(7)
    stories = [make_story(f"G-{n:02d}") for n in range(8)]
    successes = 0
    for _ in range(6):
        pairs = set()
        while len(pairs) < THREADS:
            x, y = rng.sample(stories, 2)
            pairs.add((x.key, y.key))
        results = all_at_once(
            [
                lambda s=s, d=d: api(
                    "POST", f"/projects/{project.slug}/stories/{s}/dependencies/", json={"depends_on": d}
                )
                for s, d in pairs
            ]
        )
        for response in results:
            assert response.status_code in (201, 409), response.text
            if response.status_code == 409:
                assert response.json()["code"] in ("dependency_cycle", "conflict")
        successes += sum(r.status_code == 201 for r in results)
    _assert_acyclic(project)
    assert StoryDependency.objects.filter(story__project=project).count() == successes
    assert AuditLog.objects.filter(action="dependency.added").count() == successes
