"""Graph endpoints: blockers/dependents, ready, graph renderings, topological order,
critical path — including visibility and query counts."""

import pytest

from tests.factories import DependencyFactory, ProjectFactory

pytestmark = pytest.mark.django_db

P = "/api/v1/projects/plan-pipe/"


@pytest.fixture
def chain(make_story, owner):
    s = {k: make_story(k, status="ready", estimate="2sp") for k in ["A", "B", "C"]}
    DependencyFactory(story=s["B"], depends_on=s["A"], actor=owner)
    DependencyFactory(story=s["C"], depends_on=s["B"], actor=owner)
    return s


def test_blockers_direct_and_transitive(member_client, chain):
    direct = member_client.get(P + "stories/C/blockers/")
    assert direct.status_code == 200
    assert [(r["key"], r["depth"]) for r in direct.json()] == [("B", 1)]
    deep = member_client.get(P + "stories/C/blockers/?transitive=true").json()
    assert [(r["key"], r["depth"]) for r in deep] == [("B", 1), ("A", 2)]
    assert deep[0]["dependencies"] == [{"depends_on": "A", "type": "blocks", "hidden": False}]
    capped = member_client.get(P + "stories/C/blockers/?transitive=true&max_depth=1").json()
    assert [r["key"] for r in capped] == ["B"]
    assert member_client.get(P + "stories/C/blockers/?max_depth=0").status_code == 400


def test_long_walks_read_their_stories_in_chunks_with_the_same_answer(member_client, make_story, owner, monkeypatch):
    """Walks longer than one statement's id list (SQLite binds at most 32,766 parameters)
    are read in chunks; here a chunk of 2 ids against a chain of 7."""
    from stories.api import payloads

    stories = [make_story(f"L{i}", status="ready") for i in range(7)]
    for later, earlier in zip(stories[1:], stories, strict=False):
        DependencyFactory(story=later, depends_on=earlier, actor=owner)
    url = P + "stories/L6/blockers/?transitive=true"
    whole = member_client.get(url).json()
    monkeypatch.setattr(payloads, "ID_CHUNK", 2)
    chunked = member_client.get(url).json()
    assert [(r["key"], r["depth"]) for r in chunked] == [(f"L{5 - i}", i + 1) for i in range(6)]
    assert chunked == whole
    assert chunked[0]["dependencies"] == [{"depends_on": "L4", "type": "blocks", "hidden": False}]


def test_dependents(member_client, chain):
    body = member_client.get(P + "stories/A/dependents/?transitive=true").json()
    assert [(r["key"], r["depth"]) for r in body] == [("B", 1), ("C", 2)]


def test_blockers_hide_stories_of_projects_the_caller_cannot_see(member_client, make_story, owner):
    secret = ProjectFactory(slug="secret", actor=owner)
    hidden = make_story("H-1", project=secret)
    story = make_story("A-1")
    DependencyFactory(story=story, depends_on=hidden, actor=owner)
    # A placeholder, not the story: no key, title or status (README "Visibility").
    assert member_client.get(P + "stories/A-1/blockers/").json() == [{"hidden": True, "depth": 1}]


def test_blockers_query_count_does_not_grow_with_depth(member_client, make_story, owner, django_assert_num_queries):
    stories = [make_story(f"S-{i}", status="ready") for i in range(12)]
    for i in range(1, 12):
        DependencyFactory(story=stories[i], depends_on=stories[i - 1], actor=owner)
    member_client.get(P + "stories/S-11/blockers/?transitive=true")
    # session user's project + role, story, walk, the caller's projects, the walk's projects, rows, dependencies
    with django_assert_num_queries(7):
        response = member_client.get(P + "stories/S-11/blockers/?transitive=true")
    assert len(response.json()) == 11
    with django_assert_num_queries(7):
        assert len(member_client.get(P + "stories/S-3/blockers/?transitive=true").json()) == 3


def test_ready_list(member_client, chain, make_story):
    make_story("URG", status="ready", priority="urgent")
    body = member_client.get(P + "ready/").json()
    assert [r["key"] for r in body] == ["URG", "A"]
    assert all(r["ready"] for r in body)
    assert [r["key"] for r in member_client.get(P + "ready/?limit=1&offset=1").json()] == ["A"]
    assert member_client.get(P + "ready/?limit=0").status_code == 400


def test_graph_formats(member_client, chain):
    body = member_client.get(P + "graph/").json()
    assert {n["id"] for n in body["nodes"]} == {"A", "B", "C"}
    assert {"from": "C", "to": "B", "type": "blocks"} in body["edges"]
    dot = member_client.get(P + "graph/?format=dot")
    assert dot.status_code == 200 and dot["Content-Type"].startswith("text/vnd.graphviz")
    assert '"C" -> "B";' in dot.content.decode()
    mermaid = member_client.get(P + "graph/?format=mermaid")
    assert mermaid.content.decode().startswith("flowchart LR")
    assert member_client.get(P + "graph/?format=svg").status_code == 400


def test_topological_order_and_critical_path(member_client, chain, make_story):
    make_story("D", estimate="5")
    topo = member_client.get(P + "graph/topological/").json()["keys"]
    assert topo.index("A") < topo.index("B") < topo.index("C") and "D" in topo
    critical = member_client.get(P + "graph/critical-path/").json()
    assert critical == {"keys": ["A", "B", "C"], "points": 6.0}


@pytest.mark.parametrize(
    "url", ["stories/A/blockers/", "ready/", "graph/", "graph/topological/", "graph/critical-path/"]
)
def test_graph_endpoints_hide_projects_from_outsiders(caller, chain, url):
    assert caller("outsider").get(P + url).status_code == 404
    assert caller("anonymous").get(P + url).status_code == 401
    assert caller("viewer").get(P + url).status_code == 200
