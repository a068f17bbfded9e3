"""stories.graph: walks, the ready list, topological order, critical path, renderings."""

import pytest

from stories import graph
from stories.models import Story
from tests.factories import DependencyFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(make_story, owner):
    """D → C → B → A (D waits for C, …), plus E → A and a `relates` link F ~ A."""
    s = {k: make_story(k, status="ready") for k in "ABCDEF"}
    for story, blocker in [("B", "A"), ("C", "B"), ("D", "C"), ("E", "A")]:
        DependencyFactory(story=s[story], depends_on=s[blocker], actor=owner)
    DependencyFactory(story=s["F"], depends_on=s["A"], type="relates", actor=owner)
    return s


def keys(pairs):
    by_id = dict(Story.objects.values_list("pk", "key"))
    return [(by_id[i], d) for i, d in pairs]


def test_direct_and_transitive_blockers(chain):
    assert keys(graph.story_blockers(story=chain["D"])) == [("C", 1)]
    assert keys(graph.story_blockers(story=chain["D"], transitive=True)) == [("C", 1), ("B", 2), ("A", 3)]
    assert keys(graph.story_blockers(story=chain["D"], transitive=True, max_depth=2)) == [("C", 1), ("B", 2)]
    assert graph.story_blockers(story=chain["F"], transitive=True) == []  # relates never blocks


def test_dependents_take_the_shortest_depth(chain, owner):
    # A second, shorter route D → A makes A's dependents list D at depth 1, not 3.
    DependencyFactory(story=chain["D"], depends_on=chain["A"], actor=owner)
    assert keys(graph.story_dependents(story=chain["A"])) == [("B", 1), ("D", 1), ("E", 1)]
    assert keys(graph.story_dependents(story=chain["A"], transitive=True)) == [("B", 1), ("D", 1), ("E", 1), ("C", 2)]


def test_walk_is_one_query(chain, django_assert_num_queries):
    with django_assert_num_queries(1):
        graph.story_blockers(story=chain["D"], transitive=True)


def test_ready_needs_unstarted_and_completed_blockers(project, make_story, owner):
    done = make_story("DONE", status="done")
    waiting = make_story("WAIT", status="ready")
    free = make_story("FREE", status="ready", priority="low")
    make_story("URG", status="ready", priority="urgent")
    make_story("STARTED", status="in_progress")
    make_story("DRAFT")  # backlog category: not ready
    unblocked = make_story("UNBL", status="ready", priority="low")
    DependencyFactory(story=waiting, depends_on=free, actor=owner)  # FREE is not completed
    DependencyFactory(story=unblocked, depends_on=done, actor=owner)
    ready = [Story.objects.get(pk=i).key for i in graph.ready_story_ids(project=project)]
    # urgent first; among the low ones FREE unblocks a waiting story, so it goes first.
    assert ready == ["URG", "FREE", "UNBL"]
    assert graph.ready_story_ids(project=project, limit=1, offset=1) == [free.pk]


def test_ready_counts_cancelled_blockers_as_open_and_only_open_waiting_stories(
    project, make_story, owner, django_assert_num_queries
):
    # A cancelled blocker still blocks (only the completed category frees a story).
    dropped = make_story("DROP", status="cancelled")
    held = make_story("HELD", status="ready")
    DependencyFactory(story=held, depends_on=dropped, actor=owner)
    # B is waited for by a cancelled and a done story, C by one unstarted story: only
    # stories still waiting for work count in the order, so C comes before B.
    b, c = make_story("B", status="ready", priority="low"), make_story("C", status="ready", priority="low")
    for key, status, blocker in (("X", "cancelled", b), ("Y", "done", b), ("Z", "draft", c)):
        DependencyFactory(story=make_story(key, status=status), depends_on=blocker, actor=owner)
    with django_assert_num_queries(1):
        ready = graph.ready_story_ids(project=project)
    assert [Story.objects.get(pk=i).key for i in ready] == ["C", "B"]


def test_ready_treats_cross_project_blockers(project, make_story, owner):
    other = ProjectFactory(slug="other", actor=owner)
    blocker = make_story("X-1", project=other, status="in_progress")
    story = make_story("A-1", status="ready")
    DependencyFactory(story=story, depends_on=blocker, actor=owner)
    assert graph.ready_story_ids(project=project) == []


def test_topological_order_puts_blockers_first_and_prefers_priority(project, make_story, owner):
    a = make_story("A", priority="low")
    b = make_story("B", priority="critical")
    c = make_story("C", priority="high")
    DependencyFactory(story=b, depends_on=a, actor=owner)  # B waits for A
    order = [Story.objects.get(pk=i).key for i in graph.topological_order(project=project)]
    # C and A are free at the start; C has the higher priority. B only after A.
    assert order == ["C", "A", "B"]
    assert order.index("A") < order.index("B")
    assert c.pk in graph.topological_order(project=project)


def test_critical_path_follows_the_heaviest_chain(project, make_story, owner):
    a = make_story("A", estimate="3sp")
    b = make_story("B", estimate="1-2sp")
    c = make_story("C", estimate="8")
    d = make_story("D", estimate="1sp")
    make_story("LONE", estimate="5")
    DependencyFactory(story=b, depends_on=a, actor=owner)  # A(3) → B(2) = 5
    DependencyFactory(story=d, depends_on=c, actor=owner)  # C(8) → D(1) = 9
    result = graph.critical_path(project=project)
    assert [Story.objects.get(pk=i).key for i in result["story_ids"]] == ["C", "D"]
    assert result["points"] == 9.0


def test_critical_path_of_an_empty_project(project):
    assert graph.critical_path(project=project) == {"story_ids": [], "points": 0.0}


def test_project_graph_json_dot_and_mermaid(project, make_story, owner):
    other = ProjectFactory(slug="other", actor=owner)
    ext = make_story("X-1", project=other, status="done")
    a = make_story("A", status="ready", title='Quote "this"')
    b = make_story("B", status="ready")
    DependencyFactory(story=b, depends_on=a, actor=owner)
    DependencyFactory(story=a, depends_on=ext, actor=owner)
    g = graph.project_graph(project=project, reader=None)
    nodes = {n["id"]: n for n in g["nodes"]}
    assert nodes["A"]["ready"] is True and nodes["B"]["blocked"] is True
    assert nodes["other:X-1"]["external"] is True
    assert {"from": "B", "to": "A", "type": "blocks"} in g["edges"]
    assert {"from": "A", "to": "other:X-1", "type": "blocks"} in g["edges"]
    dot = graph.graph_to_dot(g)
    assert dot.startswith('digraph "plan-pipe" {') and '"B" -> "A";' in dot
    assert '\\"this\\"' in dot
    mermaid = graph.graph_to_mermaid(g)
    assert mermaid.startswith("flowchart LR") and "-->" in mermaid and "#quot;this#quot;" in mermaid
