"""A story of a project the caller cannot see is a placeholder on every API surface:
no key, title, status or project slug (README "Visibility"). Each test fails on the
code before the policy module, where these surfaces printed the linked story."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from rest_framework.test import APIClient

from stories.models import StoryDependency
from tests.cross_project import assert_no_marker, build_world

pytestmark = pytest.mark.django_db

B = "/api/v1/projects/beta-proj/"


@pytest.fixture
def world():
    return build_world()


@pytest.fixture
def bee(world):
    client = APIClient()
    client.force_authenticate(world.bee)
    return client


def get(client, url):
    response = client.get(url)
    assert response.status_code == 200, (url, response.content[:300])
    assert_no_marker(response.content, url)
    return response


HIDDEN_DEP = {"depends_on": None, "type": "blocks", "hidden": True}


def test_story_detail_list_and_search_show_a_placeholder_and_count_it_as_blocked(bee):
    detail = get(bee, B + "stories/B-1/").json()
    assert detail["dependencies"] == [HIDDEN_DEP]
    # The hidden blocker is open (in progress): B-1 is blocked and not ready.
    assert detail["blocked"] is True and detail["ready"] is False
    listed = {s["key"]: s for s in get(bee, B + "stories/").json()["results"]}
    assert listed["B-1"]["dependencies"] == [HIDDEN_DEP] and listed["B-1"]["blocked"] is True
    found = {s["key"]: s for s in get(bee, "/api/v1/stories/?q=Beta").json()["results"]}
    assert found["B-1"]["dependencies"] == [HIDDEN_DEP]
    ready = [s["key"] for s in get(bee, B + "ready/").json()]
    assert "B-1" not in ready and "B-2" in ready


def test_a_member_of_both_projects_sees_the_key(world):
    from tests.factories import MemberFactory

    MemberFactory(project=world.alpha, user=world.bee, role="viewer", actor=world.owner)
    client = APIClient()
    client.force_authenticate(world.bee)
    detail = client.get(B + "stories/B-1/").json()
    assert detail["dependencies"] == [{"depends_on": "zz-alpha:SEC-1", "type": "blocks", "hidden": False}]


def test_dependencies_endpoint_shows_a_placeholder(bee):
    rows = get(bee, B + "stories/B-1/dependencies/").json()
    assert rows == [{"id": None, "depends_on": None, "type": "blocks", "description": "", "hidden": True}]


def test_a_hidden_link_cannot_be_deleted_by_id(world, bee):
    link = StoryDependency.objects.get(story=world.b1, depends_on=world.secret)
    response = bee.delete(B + f"stories/B-1/dependencies/{link.pk}/")
    assert response.status_code == 404
    assert StoryDependency.objects.filter(pk=link.pk).exists()


@pytest.mark.parametrize("fmt", ["json", "dot", "mermaid"])
def test_graph_shows_a_placeholder_node(bee, fmt):
    response = get(bee, B + f"graph/?format={fmt}")
    if fmt != "json":
        text = response.content.decode()
        assert "(hidden story)" in text and ("hidden-1" in text or fmt == "mermaid")
        return
    graph = response.json()
    hidden = [n for n in graph["nodes"] if n.get("hidden")]
    assert hidden == [{"id": "hidden-1", "hidden": True}]
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    # B-1 waits for the hidden story, which waits for B-2.
    assert edges == {("B-1", "hidden-1"), ("hidden-1", "B-2")}
    b1 = next(n for n in graph["nodes"] if n["id"] == "B-1")
    assert b1["blocked"] is True


def test_transitive_walks_do_not_pass_a_hidden_story(bee):
    # B-1 → (hidden) → B-2: B-2 is not reached through the hidden hop.
    blockers = get(bee, B + "stories/B-1/blockers/?transitive=true").json()
    assert blockers == [{"hidden": True, "depth": 1}]
    dependents = get(bee, B + "stories/B-2/dependents/?transitive=true").json()
    assert dependents == [{"hidden": True, "depth": 1}]
    # Direct walks too.
    assert get(bee, B + "stories/B-2/dependents/").json() == [{"hidden": True, "depth": 1}]


def test_visible_depths_count_visible_hops_only(world, bee):
    from stories import services

    # B-3 → B-1 (visible) and B-1 → (hidden) → B-2, plus a direct B-3 → B-2 link later.
    services.dependency_add(actor=world.owner, story=world.b3, depends_on=world.b1)
    rows = get(bee, B + "stories/B-3/blockers/?transitive=true").json()
    assert [(r.get("key"), r["depth"]) for r in rows] == [("B-1", 1), (None, 2)]
    services.dependency_add(actor=world.owner, story=world.b3, depends_on=world.b2)
    rows = get(bee, B + "stories/B-3/blockers/?transitive=true").json()
    assert [(r.get("key"), r["depth"]) for r in rows] == [("B-1", 1), ("B-2", 1), (None, 2)]


@pytest.mark.parametrize("fmt", ["markdown", "json", "csv"])
def test_exports_leave_the_hidden_link_out(bee, fmt):
    response = bee.get(B + f"export/?format={fmt}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    if fmt == "markdown":
        archive = zipfile.ZipFile(io.BytesIO(body))
        texts = {name: archive.read(name).decode() for name in archive.namelist()}
        for name, text in texts.items():
            assert_no_marker(text, name)
        b1 = next(text for name, text in texts.items() if "B-1" in name)
        assert "dependencies" not in b1 or "[]" in b1
    elif fmt == "json":
        assert_no_marker(body, "json export")
        stories = {s["key"]: s for s in json.loads(body)["stories"]}
        assert stories["B-1"]["dependencies"] == []
    else:
        assert_no_marker(body, "csv export")
        rows = {r["key"]: r for r in csv.DictReader(io.StringIO(body.decode()))}
        assert rows["B-1"]["dependencies"] == ""


def test_cycle_error_names_no_hidden_story(world, bee):
    # B-2 → B-1 would close B-2 → B-1 → SEC-1 → B-2.
    response = bee.post(B + "stories/B-2/dependencies/", {"depends_on": "B-1"}, format="json")
    assert response.status_code == 409
    assert_no_marker(response.content, "cycle error")
    body = response.json()
    assert body["code"] == "dependency_cycle"
    assert body["cycle"] == ["B-2", "B-1", "(hidden)", "B-2"]


def test_hidden_keys_cannot_be_probed(world, bee):
    url = B + "stories/B-3/dependencies/"
    hidden = bee.post(url, {"depends_on": "zz-alpha:SEC-1"}, format="json")
    absent = bee.post(url, {"depends_on": "zz-alpha:NOPE-1"}, format="json")
    no_project = bee.post(url, {"depends_on": "no-such:SEC-1"}, format="json")
    assert hidden.status_code == absent.status_code == no_project.status_code == 404
    strip = lambda r, ref: json.dumps(r.json()).replace(ref, "REF")  # noqa: E731
    assert strip(hidden, "zz-alpha:SEC-1") == strip(absent, "zz-alpha:NOPE-1") == strip(no_project, "no-such:SEC-1")
    bulk = B + "stories/bulk/"
    hidden = bee.post(bulk, {"items": [{"key": "B-3", "depends_on": ["zz-alpha:SEC-1"]}]}, format="json")
    absent = bee.post(bulk, {"items": [{"key": "B-3", "depends_on": ["zz-alpha:NOPE-1"]}]}, format="json")
    assert hidden.status_code == absent.status_code == 400
    assert strip(hidden, "zz-alpha:SEC-1") == strip(absent, "zz-alpha:NOPE-1")


def test_replacing_the_dependency_list_keeps_hidden_links(world, bee):
    response = bee.post(B + "stories/bulk/", {"items": [{"key": "B-1", "depends_on": ["B-3"]}]}, format="json")
    assert response.status_code == 200, response.json()
    assert_no_marker(response.content, "bulk")
    links = set(StoryDependency.objects.filter(story=world.b1).values_list("depends_on__key", flat=True))
    assert links == {"SEC-1", "B-3"}
    response = bee.post(B + "stories/bulk/", {"items": [{"key": "B-1", "depends_on": []}]}, format="json")
    assert response.status_code == 200
    assert set(StoryDependency.objects.filter(story=world.b1).values_list("depends_on__key", flat=True)) == {"SEC-1"}


def test_export_then_import_by_a_member_keeps_hidden_links(world, bee):
    zipped = b"".join(bee.get(B + "export/?format=markdown").streaming_content)
    upload = io.BytesIO(zipped)
    upload.name = "beta.zip"
    response = bee.post(B + "import/", {"files": [upload]}, format="multipart")
    assert response.status_code == 200, response.content[:500]
    assert_no_marker(response.content, "import report")
    assert StoryDependency.objects.filter(story=world.b1, depends_on=world.secret).exists()
