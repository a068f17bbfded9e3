"""topological_order and critical_path against a naive reference on random graphs.

The reference is the straightforward version the fast path replaced: ORM rows, Decimal
weights, a dict per story and the tie rules written out (priority, then key, then id; on
equal totals the lowest id). Random projects mix equal priorities, keys that differ only
late, fractional estimates, stories without points, `relates` links and links to another
project (none of which may order anything).
"""

import heapq
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stories import graph
from stories.models import Story, StoryDependency
from tests.factories import DependencyFactory, ProjectFactory, StoryFactory

pytestmark = pytest.mark.django_db

ESTIMATES = ["1sp", "1sp", "2sp", "", "", "0.5sp", "1.25-2.5sp", "0.01", "a lot"]  # ties are common
PRIORITIES = ["critical", "high", "medium", "low"]


def reference_graph(project):
    nodes = {
        row["id"]: row
        for row in Story.objects.filter(project=project).values("id", "key", "priority", "points_min", "points_max")
    }
    edges = [
        (blocker, blocked)
        for blocked, blocker in StoryDependency.objects.filter(
            story__project=project, depends_on__project=project, type="blocks"
        ).values_list("story_id", "depends_on_id")
    ]
    return nodes, edges


def reference_order(nodes, edges):
    waiting_for = {i: {a for a, b in edges if b == i} for i in nodes}
    free = [(-row["priority"], row["key"], i) for i, row in nodes.items() if not waiting_for[i]]
    heapq.heapify(free)
    order, placed = [], set()
    while free:
        node = heapq.heappop(free)[2]
        order.append(node)
        placed.add(node)
        for i, row in nodes.items():
            if i not in placed and node in waiting_for[i] and waiting_for[i] <= placed:
                heapq.heappush(free, (-row["priority"], row["key"], i))
    return order


def reference_critical_path(nodes, edges):
    if not nodes:
        return {"story_ids": [], "points": 0.0}

    def weight(row):
        value = row["points_max"] if row["points_max"] is not None else row["points_min"]
        return Decimal(value) if value is not None else Decimal(0)

    predecessors = defaultdict(list)
    for blocker, blocked in edges:
        predecessors[blocked].append(blocker)
    best, parent = {}, {}
    for node in reference_order(nodes, edges):
        chosen = None
        for p in sorted(predecessors[node]):  # the lowest id wins a tie
            if chosen is None or best[p] > best[chosen]:
                chosen = p
        best[node] = weight(nodes[node]) + (best[chosen] if chosen is not None else Decimal(0))
        parent[node] = chosen
    end = min(nodes, key=lambda n: (-best[n], n))
    path = [end]
    while parent[path[-1]] is not None:
        path.append(parent[path[-1]])
    return {"story_ids": path[::-1], "points": float(best[end])}


graphs = st.integers(min_value=0, max_value=14).flatmap(
    lambda n: st.tuples(
        st.lists(
            st.tuples(st.sampled_from(PRIORITIES), st.sampled_from(["A", "B", "AB", "BA"]), st.sampled_from(ESTIMATES)),
            min_size=n,
            max_size=n,
        ),
        # (later story, earlier story, type): always towards an earlier story, so acyclic.
        st.lists(
            st.tuples(st.integers(0, 13), st.integers(0, 13), st.sampled_from(["blocks", "blocks", "relates"])),
            max_size=3 * n,
        ),
        st.lists(st.integers(0, 13), max_size=3),  # stories blocked by another project's story
    )
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=graphs)
def test_order_and_critical_path_agree_with_the_reference(shape, owner):
    stories_spec, links, outside = shape
    project = ProjectFactory(actor=owner)
    other = ProjectFactory(actor=owner)
    stranger = StoryFactory(project=other, key="X-1", estimate="100sp", actor=owner)
    stories = [
        StoryFactory(project=project, key=f"{prefix}-{i % 3}{i}", priority=priority, estimate=estimate, actor=owner)
        for i, (priority, prefix, estimate) in enumerate(stories_spec)
    ]
    seen = set()
    for a, b, kind in links:
        if a < len(stories) and b < a and (a, b) not in seen:
            seen.add((a, b))
            DependencyFactory(story=stories[a], depends_on=stories[b], type=kind, actor=owner)
    for a in set(outside):
        if a < len(stories):
            DependencyFactory(story=stories[a], depends_on=stranger, actor=owner)

    nodes, edges = reference_graph(project)
    assert graph.topological_order(project=project) == reference_order(nodes, edges)
    assert graph.critical_path(project=project) == reference_critical_path(nodes, edges)


def test_equal_chains_resolve_to_the_lowest_ids(project, make_story, owner):
    # Two blockers of END weigh the same: the lower id is the path, whatever the keys say.
    low = make_story("Z-LOW", estimate="2sp")
    high = make_story("A-HIGH", estimate="2sp")
    end = make_story("END", estimate="1sp")
    make_story("OTHER", estimate="3sp")  # 3 points too, but a higher id than the chain's start
    DependencyFactory(story=end, depends_on=high, actor=owner)
    DependencyFactory(story=end, depends_on=low, actor=owner)
    nodes, edges = reference_graph(project)
    assert reference_critical_path(nodes, edges) == {"story_ids": [low.pk, end.pk], "points": 3.0}
    assert graph.critical_path(project=project) == {"story_ids": [low.pk, end.pk], "points": 3.0}


@pytest.mark.django_db(transaction=True)
def test_the_cached_order_follows_every_change_of_its_inputs(project, make_story, owner, django_assert_num_queries):
    """Outside a transaction the order is kept per process; every write that can change
    it (links, a story's priority, points or key, a story created or deleted) must show."""
    from stories import services

    a, b, c = (make_story(k, estimate="1sp") for k in "ABC")

    def agrees():
        nodes, edges = reference_graph(project)
        assert graph.topological_order(project=project) == reference_order(nodes, edges)
        assert graph.critical_path(project=project) == reference_critical_path(nodes, edges)

    agrees()
    with django_assert_num_queries(2):  # the fingerprint of each call, nothing else: cached
        graph.topological_order(project=project)
        graph.critical_path(project=project)
    link = services.dependency_add(actor=owner, story=a, depends_on=c)
    agrees()
    services.story_update(actor=owner, story=b, data={"priority": "critical"})
    with CaptureQueriesContext(connection) as ctx:  # a story edit: the links are kept
        graph.topological_order(project=project)
    assert len(ctx.captured_queries) == 2  # the fingerprint, then the stories
    assert not any(StoryDependency._meta.db_table in q["sql"] for q in ctx.captured_queries)
    agrees()
    services.story_update(actor=owner, story=c, data={"estimate": "5sp"})
    agrees()
    assert graph.critical_path(project=project)["points"] == 6.0
    services.story_update(actor=owner, story=b, data={"key": "AA"})
    agrees()
    d = make_story("D", priority="critical")
    agrees()
    assert graph.topological_order(project=project)[0] in (b.pk, d.pk)
    services.story_delete(actor=owner, story=Story.objects.get(pk=b.pk))
    agrees()
    services.dependency_remove(actor=owner, dependency=link)
    agrees()
    assert graph.critical_path(project=project)["points"] == 5.0
