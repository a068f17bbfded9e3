"""Transitive walks visit each story once, at its shortest depth (issue 10, item 4)."""

import json
import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stories import graph
from stories.bulk import story_bulk_upsert
from stories.models import Story
from tests.factories import DependencyFactory

pytestmark = pytest.mark.django_db

# None: the one-query reach walk; LEVEL_WALK_MAX_DEPTH: the level-by-level walk.
WALKS = [None, graph.LEVEL_WALK_MAX_DEPTH]


def keys(pairs):
    by_id = dict(Story.objects.values_list("pk", "key"))
    return [(by_id[i], d) for i, d in pairs]


@pytest.fixture
def diamond(make_story, owner):
    """E waits for C and D; C waits for B; B and D wait for A. A long route E→C→B→A (3)
    and a short one E→D→A (2) lead to A."""
    s = {k: make_story(k, status="ready") for k in "ABCDE"}
    for story, blocker in [("B", "A"), ("C", "B"), ("D", "A"), ("E", "C"), ("E", "D")]:
        DependencyFactory(story=s[story], depends_on=s[blocker], actor=owner)
    return s


@pytest.mark.parametrize("cap", WALKS)
def test_diamond_gives_each_story_once_at_its_shortest_depth(diamond, cap):
    blockers = keys(graph.story_blockers(story=diamond["E"], transitive=True, max_depth=cap))
    assert blockers == [("C", 1), ("D", 1), ("A", 2), ("B", 2)]
    dependents = keys(graph.story_dependents(story=diamond["A"], transitive=True, max_depth=cap))
    assert dependents == [("B", 1), ("D", 1), ("C", 2), ("E", 2)]


@pytest.mark.parametrize("cap", [1, 2, 3])
def test_max_depth_is_honoured_on_both_walks(diamond, cap, monkeypatch):
    expected = [p for p in [("C", 1), ("D", 1), ("A", 2), ("B", 2)] if p[1] <= cap]
    for level_max in (0, 100):  # force the reach walk, then the level walk
        monkeypatch.setattr(graph, "LEVEL_WALK_MAX_DEPTH", level_max)
        assert keys(graph.story_blockers(story=diamond["E"], transitive=True, max_depth=cap)) == expected


def test_direct_blockers_are_depth_one_only(diamond):
    assert keys(graph.story_blockers(story=diamond["E"])) == [("C", 1), ("D", 1)]


@pytest.fixture
def chain_2k(project):
    """S0001 … S2000, each waiting for the previous two (S0002 for S0001 only)."""
    n = 2000
    items = [
        {"key": f"S{i:04d}", "title": f"Chain {i}", "depends_on": [f"S{j:04d}" for j in (i - 1, i - 2) if j >= 1]}
        for i in range(1, n + 1)
    ]
    story_bulk_upsert(actor=None, project=project, items=items)
    return {s.key: s for s in Story.objects.filter(project=project)}


def test_chain_of_two_predecessors_is_walked_linearly(chain_2k, django_assert_num_queries):
    last = chain_2k["S2000"]
    with django_assert_num_queries(1):
        blockers = graph.story_blockers(story=last, transitive=True)
    # Every other story once, S(2000 - j) at depth ceil(j / 2).
    by_key = dict(keys(blockers))
    assert len(blockers) == len(by_key) == 1999
    assert all(by_key[f"S{2000 - j:04d}"] == math.ceil(j / 2) for j in range(1, 2000))
    assert blockers == sorted(blockers, key=lambda p: (p[1], p[0]))
    # The recursive query itself holds each story once (it held ~1 million rows when it
    # deduplicated on (id, depth)): the work is linear, measured without a clock.
    sql = graph.reach_sql(
        near="story_id", far="depends_on_id", vendor=connection.vendor, select="SELECT COUNT(*) FROM reach"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [last.pk, "blocks"])
        assert cursor.fetchone()[0] == 2000
    dependents = graph.story_dependents(story=chain_2k["S0001"], transitive=True)
    assert len(dependents) == 1999 and max(d for _, d in dependents) == 1000


def test_shallow_cap_walks_one_query_per_level(chain_2k, django_assert_max_num_queries):
    with django_assert_max_num_queries(graph.LEVEL_WALK_MAX_DEPTH):
        blockers = graph.story_blockers(story=chain_2k["S2000"], transitive=True, max_depth=graph.LEVEL_WALK_MAX_DEPTH)
    assert len(blockers) == 2 * graph.LEVEL_WALK_MAX_DEPTH


def _plan_rows(node: dict) -> int:
    rows = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
    return rows + sum(_plan_rows(child) for child in node.get("Plans", ()))


def walk_work(call) -> int:
    """The database's work for `call`, counted without a clock: SQLite's virtual machine
    steps (in hundreds), PostgreSQL's rows through every plan node of each query it ran."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        steps = [0]

        def tick():
            steps[0] += 1
            return 0

        connection.connection.set_progress_handler(tick, 100)
        try:
            call()
        finally:
            connection.connection.set_progress_handler(None, 100)
        return steps[0]
    with CaptureQueriesContext(connection) as ctx:
        call()
    total = 0
    with connection.cursor() as cursor:
        for query in ctx.captured_queries:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query["sql"])
            plan = cursor.fetchone()[0]
            total += _plan_rows((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    return total


def test_walk_work_grows_linearly_with_the_chain(chain_2k):
    # Half the chain (S1000 reaches 999 stories) against all of it (S2000, 1,999): twice
    # the stories, twice the work. Deduplicating on (id, depth) made it four times.
    half = walk_work(lambda: graph.story_blockers(story=chain_2k["S1000"], transitive=True))
    whole = walk_work(lambda: graph.story_blockers(story=chain_2k["S2000"], transitive=True))
    assert 1.5 < whole / half < 2.5, (half, whole)
    # And little work per story: ~11 rows each on PostgreSQL (a plain join planned on the
    # stale statistics of a fresh import scanned every link at every step: ~2,000 rows
    # each), ~50 steps on SQLite (~26,000 when it deduplicated on (id, depth)).
    per_story = whole / 1999
    assert per_story < (20 if connection.vendor == "postgresql" else 2), per_story
