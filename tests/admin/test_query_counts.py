"""Changelists read a constant number of queries however many rows they show."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from events.services import endpoint_create, endpoint_ping
from sessions_app.backends import SessionStore
from sessions_app.services import api_key_create
from stories import services
from stories.importer import Source, import_sources
from stories.models import Project, SyncConflict
from stories.sync.links import sync_link_set
from tests.factories import ProjectFactory, StoryFactory, UserFactory


def _story_rows(project, owner, start, count):
    backlog = project.backlogs.first() or services.backlog_create(actor=owner, project=project, slug="b", name="B")
    epic = project.epics.first() or services.epic_create(actor=owner, project=project, slug="e")
    for i in range(start, start + count):
        StoryFactory(project=project, key=f"Q-{i:03d}", actor=owner, backlog=backlog, epic=epic)


def _dependency_rows(project, owner, start, count):
    for i in range(start, start + count):
        a = StoryFactory(project=project, key=f"D-{i:03d}a", actor=owner)
        b = StoryFactory(project=project, key=f"D-{i:03d}b", actor=owner)
        services.dependency_add(actor=owner, story=a, depends_on=b)


def _project_rows(project, owner, start, count):
    for i in range(start, start + count):
        other = ProjectFactory(slug=f"p-{i:03d}", actor=owner)
        StoryFactory(project=other, key="X-1", actor=owner)


def _session_rows(project, owner, start, count):
    for i in range(start, start + count):
        store = SessionStore()
        store["_auth_user_id"] = str(UserFactory(username=f"s{i}").pk)
        store.create()


def _key_rows(project, owner, start, count):
    for i in range(start, start + count):
        api_key_create(actor=None, user=UserFactory(username=f"k{i}"), name=f"key {i}")


def _member_rows(project, owner, start, count):
    for i in range(start, start + count):
        services.project_member_set(actor=owner, project=project, user=UserFactory(username=f"m{i}"), role="member")


def _backlog_rows(project, owner, start, count):
    for i in range(start, start + count):
        services.backlog_create(actor=owner, project=project, slug=f"bl-{i}", name=f"B {i}", owner=owner)


def _epic_rows(project, owner, start, count):
    for i in range(start, start + count):
        services.epic_create(actor=owner, project=project, slug=f"ep-{i}")


def _status_rows(project, owner, start, count):
    for i in range(start, start + count):
        services.status_create(actor=owner, project=project, slug=f"st-{i}", name=f"S {i}", category="started")


def _project_dependency_rows(project, owner, start, count):
    for i in range(start, start + count):
        services.project_dependency_add(
            actor=owner, from_project=project, to_project=ProjectFactory(slug=f"dep-{i:03d}", actor=owner)
        )


def _import_rows(project, owner, start, count):
    """An import run each, with a parked conflict (two files with one new key), a failed
    file and its actor, in a project of its own every other run."""
    for i in range(start, start + count):
        target = project if i % 2 else ProjectFactory(slug=f"imp-{i:03d}", actor=owner)
        text = f"---\nid: IMP-{i:03d}\ntitle: Imported {i}\n---\nbody\n"
        files = [
            Source(path=f"plans/{i}-a.md", data=text.encode()),
            Source(path=f"plans/{i}-b.md", data=text.replace("Imported", "Again").encode()),
            Source(path=f"plans/{i}-bad.md", data=b"---\nid: BAD\ntitle: [\n---\n"),
        ]
        import_sources(files, project=target, actor=owner, source="api")


def _sync_link_rows(project, owner, start, count):
    """A sync link per project, each with a conflict: open, or (every other one) resolved
    by a user of its own."""
    for i in range(start, start + count):
        other = ProjectFactory(slug=f"sync-{i:03d}", actor=owner)
        link = sync_link_set(
            actor=owner, project=other, data={"repository": f"https://git.example.com/r{i}.git", "folders": ["plans"]}
        )
        resolver = UserFactory(username=f"resolver{i}") if i % 2 else None
        SyncConflict.objects.create(
            link=link,
            key=f"S-{i}",
            path=f"plans/S-{i}.md",
            remote_commit="0" * 40,
            state="kept_storyhub" if resolver else "open",
            resolved_by=resolver,
        )


def _webhook_rows(project, owner, start, count):
    """An endpoint each, in a project of its own, with a test ping."""
    for i in range(start, start + count):
        target = ProjectFactory(slug=f"hook-{i:03d}", actor=owner)
        endpoint, _ = endpoint_create(actor=owner, project=target, url=f"http://127.0.0.1:9/hook-{i}")
        endpoint_ping(actor=owner, endpoint=endpoint)


CASES = {
    "stories_backlog": _backlog_rows,
    "stories_epic": _epic_rows,
    "stories_status": _status_rows,
    "stories_projectdependency": _project_dependency_rows,
    "stories_story": _story_rows,
    "stories_statushistory": _story_rows,
    "stories_storydependency": _dependency_rows,
    "stories_project": _project_rows,
    "stories_projectmember": _member_rows,
    "audit_auditlog": _story_rows,
    "sessions_app_session": _session_rows,
    "sessions_app_apikey": _key_rows,
    "stories_importrun": _import_rows,
    "stories_importconflict": _import_rows,
    "stories_synclink": _sync_link_rows,
    "stories_syncconflict": _sync_link_rows,
    "events_webhookendpoint": _webhook_rows,
    "events_delivery": _webhook_rows,
    "audit_outboxevent": _story_rows,
}


def _shown(client, url) -> tuple[int, int]:
    """(queries, rows on the page) of one GET of a changelist."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), len(response.context["cl"].result_list)


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("name", CASES)
def test_changelist_queries_do_not_grow_with_rows(su_client, project, owner, name):
    url = reverse(f"admin:{name}_changelist")
    CASES[name](project, owner, 0, 5)
    su_client.get(url)  # warm up the session and content type caches
    small, small_rows = _shown(su_client, url)
    CASES[name](project, owner, 5, 45)
    large, large_rows = _shown(su_client, url)
    assert large_rows > small_rows > 0, f"{name}: the page shows {small_rows} then {large_rows} rows"
    assert small == large, f"{name}: {small} queries for the small list, {large} for the large one"


# The import, sync and webhook lists for staff: the rows are scoped to the projects the
# user administers (and checked per row for what it may do), so those reads must not
# repeat per row either. The staff user is made an admin of every project the rows made.
STAFF_CASES = [
    "stories_importrun",
    "stories_importconflict",
    "stories_synclink",
    "stories_syncconflict",
    "events_webhookendpoint",
    "events_delivery",
    "audit_outboxevent",
]


@pytest.mark.parametrize("name", STAFF_CASES)
def test_staff_changelists_of_imports_sync_and_webhooks_are_constant(staff_client, project, owner, name):
    client = staff_client("admin")

    def grow(start, count):
        CASES[name](project, owner, start, count)
        for other in Project.objects.exclude(members__user=client.user):
            services.project_member_set(actor=owner, project=other, user=client.user, role="admin")

    url = reverse(f"admin:{name}_changelist")
    grow(0, 5)
    client.get(url)
    small, small_rows = _shown(client, url)
    grow(5, 45)
    large, large_rows = _shown(client, url)
    assert large_rows > small_rows > 0, f"{name}: the page shows {small_rows} then {large_rows} rows"
    assert small == large, f"{name}: {small} queries for the small list, {large} for the large one"


def test_story_changelist_query_budget(su_client, project, owner, django_assert_max_num_queries):
    _story_rows(project, owner, 0, 50)
    url = reverse("admin:stories_story_changelist")
    su_client.get(url)
    with django_assert_max_num_queries(12):
        su_client.get(url)


def test_staff_story_changelist_is_constant_too(staff_client, project, owner):
    client = staff_client("member")
    url = reverse("admin:stories_story_changelist")
    _story_rows(project, owner, 0, 5)
    client.get(url)
    small = _count(client, url)
    _story_rows(project, owner, 5, 45)
    assert _count(client, url) == small


def test_story_change_page_queries_do_not_grow_with_dependencies(su_client, story, make_story, owner):
    from stories.models import Story

    def grow(n):
        while story.dependencies.count() < n:
            i = story.dependencies.count()
            services.dependency_add(actor=owner, story=story, depends_on=make_story(f"D-{i:03d}"))
            services.dependency_add(actor=owner, story=make_story(f"W-{i:03d}"), depends_on=story)
            services.story_transition(actor=owner, story=Story.objects.get(pk=story.pk), status="ready")
            services.story_transition(actor=owner, story=Story.objects.get(pk=story.pk), status="draft")

    url = reverse("admin:stories_story_change", args=[story.pk])
    grow(2)
    su_client.get(url)
    small = _count(su_client, url)
    grow(20)
    page = su_client.get(url).content.decode()
    assert "plan-pipe:D-019 — Story D-019" in page and "plan-pipe:W-019 — Story W-019" in page
    assert _count(su_client, url) == small
