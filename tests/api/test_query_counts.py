"""Every list endpoint runs the same number of SQL queries whether it returns 2 rows or
7 (and, for the paginated ones, whatever the page size)."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from stories import services
from tests.factories import BacklogFactory, DependencyFactory, EpicFactory, MemberFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

P = "/api/v1/projects/plan-pipe/"
LISTS = [
    "/api/v1/projects/",
    P + "backlogs/",
    P + "statuses/",
    P + "epics/",
    P + "members/",
    P + "stories/",
    P + "stories/HUB/dependencies/",
    P + "stories/HUB/history/",
    P + "stories/HUB/blockers/?transitive=true",
    P + "stories/ROOT/dependents/?transitive=true",
    P + "ready/",
    "/api/v1/stories/?q=story",
    "/api/v1/audit/",
    "/api/v1/project-dependencies/",
    "/api/v1/sessions/",
]
PAGED = [P + "stories/", "/api/v1/stories/?q=story", "/api/v1/audit/"]


@pytest.fixture
def world(project, owner, make_story):
    hub = make_story("HUB", status="ready")
    root = make_story("ROOT", status="done")
    DependencyFactory(story=hub, depends_on=root, actor=owner)
    state = {"n": 0}

    def grow(to: int):
        for i in range(state["n"], to):
            other = ProjectFactory(slug=f"side-{i}", actor=owner)
            services.project_dependency_add(actor=owner, from_project=project, to_project=other, type="shares")
            BacklogFactory(project=project, slug=f"bl-{i}", actor=owner)
            EpicFactory(project=project, slug=f"ep-{i}", actor=owner)
            services.status_create(actor=owner, project=project, slug=f"st-{i}", name=f"St {i}", category="started")
            MemberFactory(project=project, user=UserFactory(username=f"m-{i}"), role="viewer", actor=owner)
            story = make_story(f"S-{i}", status="ready")
            DependencyFactory(story=story, depends_on=root, actor=owner)
            if i:
                DependencyFactory(story=hub, depends_on=story, actor=owner)
            # HUB waits for S-1 …: the owner overrides the blocked guard (more history rows).
            services.story_transition(
                actor=owner,
                story=hub.__class__.objects.get(pk=hub.pk),
                status="in_progress",
                override_blocked=True,
                override_reason="grow the history",
            )
            services.story_transition(actor=owner, story=hub.__class__.objects.get(pk=hub.pk), status="ready")
            Client().login(username="owner", password="pw-for-tests")  # one more session row
        state["n"] = to

    return grow


def measure(client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.content[:300])
    body = response.json()
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    return len(ctx.captured_queries), len(rows)


def test_list_endpoints_run_a_constant_number_of_queries(world, owner):
    client = Client()
    client.login(username="owner", password="pw-for-tests")
    world(2)
    small = {url: measure(client, url) for url in LISTS}
    world(7)
    large = {url: measure(client, url) for url in LISTS}
    for url in LISTS:
        assert large[url][1] > small[url][1], f"{url} did not grow: the comparison would prove nothing"
        assert large[url][0] == small[url][0], f"{url}: {small[url][0]} queries for {small[url][1]} rows, {large[url]}"


@pytest.mark.parametrize("url", PAGED)
def test_paginated_lists_do_not_depend_on_the_page_size(world, owner, url):
    client = Client()
    client.login(username="owner", password="pw-for-tests")
    world(7)
    sep = "&" if "?" in url else "?"
    two = measure(client, f"{url}{sep}page_size=2")
    six = measure(client, f"{url}{sep}page_size=6")
    assert (two[1], six[1]) == (2, 6)
    assert two[0] == six[0]


def test_story_detail_reads_in_four_queries_however_many_links(world, owner):
    """API key, project + the caller's role, the story's row, its dependencies: 4 queries,
    for a story with 1 link and with 7 (the key's last-use touch is at most once a minute)."""
    from sessions_app.services import api_key_create

    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(actor=None, user=owner, name='qc')[1]}")
    url = P + "stories/HUB/"
    assert client.get(url).status_code == 200  # records the key's first use
    counts = []
    for size in (2, 7):
        world(size)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200 and response["ETag"]
        counts.append((len(ctx.captured_queries), len(response.json()["dependencies"])))
    assert counts == [(4, 2), (4, 7)], counts
