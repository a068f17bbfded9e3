"""Races in the bulk path and the dependency services, on PostgreSQL against the live test
server. Each test makes the interleaving happen (a second client holds a row lock until
every writer is queued, or a writer stalls while it holds its locks), so the outcome does
not depend on timing; every wait is bounded."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from audit.models import AuditLog
from stories import services
from stories.models import Story, StoryDependency

from .conftest import backends_waiting_on_locks, pg_connect, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 3


def links_of(story: Story) -> set[str]:
    return set(StoryDependency.objects.filter(story=story).values_list("depends_on__key", flat=True))


def table(model) -> str:
    return model._meta.db_table


def test_two_bulk_requests_replacing_one_storys_links_end_as_one_of_them(api, project, make_story):
    """Both requests read K's links, then queue on K's row lock (held by a second client);
    whichever commits last must find the other's link and replace it: K ends with exactly
    the last writer's list, never with both."""
    bulk = f"/projects/{project.slug}/stories/bulk/"
    for round_no in range(ROUNDS):
        k = make_story(f"K-{round_no}")
        targets = [make_story(f"A-{round_no}-2"), make_story(f"A-{round_no}-3")]
        first_audit = AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
        with pg_connect() as control, ThreadPoolExecutor(max_workers=2) as pool:
            control.execute(f"SELECT id FROM {table(Story)} WHERE id = %s FOR UPDATE", [k.pk])
            futures = [
                pool.submit(api, "POST", bulk, json={"items": [{"key": k.key, "depends_on": [t.key]}]}) for t in targets
            ]
            wait_for(lambda: len(backends_waiting_on_locks()) == 2, what="both bulk requests queued")
            control.rollback()
            results = [f.result(timeout=30) for f in futures]
        assert [r.status_code for r in results] == [200, 200], [r.text for r in results]
        added = list(
            AuditLog.objects.filter(id__gt=first_audit, action="dependency.added")
            .order_by("id")
            .values_list("details", flat=True)
        )
        removed = AuditLog.objects.filter(id__gt=first_audit, action="dependency.removed").count()
        assert len(added) == 2 and removed == 1
        last = added[-1]["depends_on"].split(":")[-1]
        assert links_of(k) == {last}, (links_of(k), last)
        # Each request changed K's links, and says so.
        assert [r.json()["items"][0]["outcome"] for r in results] == ["updated", "updated"]


def test_bulk_update_and_dependency_add_on_one_story_do_not_deadlock(api, project, make_story, monkeypatch):
    """A bulk request holds K's row lock (stalled right after taking its locks) while a
    single dependency_add on K starts: with one lock order the second one waits and both
    succeed; bulk taking the row lock before the blocks-graph lock deadlocked (503)."""
    from stories.bulk import apply

    update_stories = apply.update_stories
    locked, go = threading.Event(), threading.Event()

    def stall_holding_the_locks(plan, changed):
        done = update_stories(plan, changed)
        locked.set()
        assert go.wait(15)
        return done

    monkeypatch.setattr(apply, "update_stories", stall_holding_the_locks)
    base = f"/projects/{project.slug}/stories/"
    for round_no in range(2):
        k, a, x = (make_story(f"D-{round_no}-{name}") for name in ("K", "A", "X"))
        locked.clear()
        go.clear()
        with ThreadPoolExecutor(max_workers=2) as pool:
            bulk = pool.submit(
                api, "POST", base + "bulk/", json={"items": [{"key": k.key, "title": "New", "depends_on": [a.key]}]}
            )
            assert locked.wait(15), "the bulk request never took its locks"
            single = pool.submit(api, "POST", base + f"{x.key}/dependencies/", json={"depends_on": k.key})
            wait_for(lambda: len(backends_waiting_on_locks()) == 1, what="dependency_add to wait for the bulk")
            go.set()
            results = bulk.result(timeout=30), single.result(timeout=30)
        assert [r.status_code for r in results] == [200, 201], [r.text for r in results]
        assert links_of(k) == {a.key} and links_of(x) == {k.key}


def test_two_concurrent_deletes_of_one_dependency_one_wins(api, project, owner, make_story):
    """Both requests find the link, then queue on it (a second client holds its row): the
    first removes it, the second must answer 404 and write no second audit row."""
    base = f"/projects/{project.slug}/stories/"
    for round_no in range(ROUNDS):
        story, target = make_story(f"R-{round_no}-S"), make_story(f"R-{round_no}-T")
        dep = services.dependency_add(actor=owner, story=story, depends_on=target)
        path = base + f"{story.key}/dependencies/{dep.pk}/"
        with pg_connect() as control, ThreadPoolExecutor(max_workers=2) as pool:
            control.execute(f"SELECT id FROM {table(StoryDependency)} WHERE id = %s FOR UPDATE", [dep.pk])
            futures = [pool.submit(api, "DELETE", path) for _ in range(2)]
            wait_for(lambda: len(backends_waiting_on_locks()) == 2, what="both deletes queued")
            control.rollback()
            results = [f.result(timeout=30) for f in futures]
        assert sorted(r.status_code for r in results) == [204, 404], [r.text for r in results]
        loser = next(r for r in results if r.status_code == 404)
        assert loser.json()["code"] == "not_found"
        assert not StoryDependency.objects.filter(pk=dep.pk).exists()
        removed = AuditLog.objects.filter(action="dependency.removed", entity_id=str(dep.pk))
        assert removed.count() == 1


def test_mixed_link_writers_at_once_never_deadlock(api, project, make_story):
    """Bulk requests (fields and dependency lists of several stories), single
    dependency adds and removals, and story edits, all at once, a few rounds: no 503
    (a deadlock or lock timeout), every refusal a clean 4xx, the blocks graph acyclic, and
    one audit row per link added or removed."""
    import random

    from .conftest import all_at_once
    from .test_concurrency import _assert_acyclic

    rng = random.Random(12)
    stories = [make_story(f"M-{n}") for n in range(6)]
    keys = [s.key for s in stories]
    base = f"/projects/{project.slug}/stories/"
    # One request per connection: the test server's thread keeps its database connection
    # while the client keeps a connection open, and the pool has 10.
    close = {"Connection": "close"}

    def bulk_call():
        picked = rng.sample(keys, 3)
        items = [{"key": k, "title": f"Bulk {rng.random():.6f}", "depends_on": rng.sample(keys, 2)} for k in picked]
        items = [{**item, "depends_on": [d for d in item["depends_on"] if d != item["key"]]} for item in items]
        return lambda: api("POST", base + "bulk/", json={"items": items}, headers=close)

    def add_call():
        source, target = rng.sample(keys, 2)
        return lambda: api("POST", base + f"{source}/dependencies/", json={"depends_on": target}, headers=close)

    def remove_call():
        existing = list(StoryDependency.objects.filter(story__project=project).select_related("story").order_by("pk"))
        if not existing:
            return add_call()
        link = rng.choice(existing)
        return lambda: api("DELETE", base + f"{link.story.key}/dependencies/{link.pk}/", headers=close)

    def edit_call():
        key = rng.choice(keys)
        return lambda: api("PATCH", base + f"{key}/", json={"title": f"Edit {rng.random():.6f}"}, headers=close)

    for _ in range(4):
        calls = [make() for make in (bulk_call, add_call, remove_call, edit_call) for _ in range(3)]
        for response in all_at_once(calls):
            assert response.status_code in (200, 201, 204, 400, 404, 409), response.text
            if response.status_code == 400:
                assert response.json()["code"] == "bulk_invalid", response.text
    _assert_acyclic(project)
    links = StoryDependency.objects.filter(story__project=project).count()
    added = AuditLog.objects.filter(action="dependency.added").count()
    removed = AuditLog.objects.filter(action="dependency.removed").count()
    assert added - removed == links


def test_bulk_replacing_a_link_and_deleting_its_target_do_not_deadlock(api, project, make_story, monkeypatch):
    """A bulk request has removed S → T (to add it again as `relates`) and holds that row
    when T is deleted, whose cascade needs the row; the bulk's new link then needs T. The
    deletion takes the dependency-graph lock first, as every writer of links does, so it
    waits instead of deadlocking (503)."""
    from stories.bulk import apply

    add_links = apply._add_links
    removed, go = threading.Event(), threading.Event()

    def stall_between_removal_and_addition(plan, additions):
        removed.set()
        assert go.wait(15)
        return add_links(plan, additions)

    monkeypatch.setattr(apply, "_add_links", stall_between_removal_and_addition)
    base = f"/projects/{project.slug}/stories/"
    s, t = make_story("DEL-S"), make_story("DEL-T")
    assert api("POST", base + f"{s.key}/dependencies/", json={"depends_on": t.key}).status_code == 201
    item = {"key": s.key, "depends_on": [{"depends_on": t.key, "type": "relates"}]}
    with ThreadPoolExecutor(max_workers=2) as pool:
        bulk = pool.submit(api, "POST", base + "bulk/", json={"items": [item]})
        assert removed.wait(15), "the bulk request never removed the old link"
        deletion = pool.submit(api, "DELETE", base + f"{t.key}/")
        wait_for(lambda: len(backends_waiting_on_locks()) == 1, what="the deletion to wait for the bulk")
        go.set()
        results = bulk.result(timeout=30), deletion.result(timeout=30)
    assert [r.status_code for r in results] == [200, 204], [r.text for r in results]
    assert not Story.objects.filter(pk=t.pk).exists()
    assert not StoryDependency.objects.filter(story=s).exists()


def test_admin_story_save_with_link_inlines_and_dependency_add_do_not_deadlock(api, project, make_story, monkeypatch):
    """The admin saves a story (its row locked by story_update) and then its dependency
    inline, in one transaction, while a dependency_add on the same story starts: the admin
    page takes the dependency-graph lock before the story's row, so the other writer waits
    instead of deadlocking with it (503 / 500)."""
    from django.test import Client
    from django.urls import reverse

    from tests.admin.conftest import add_inline_row, admin_form_data
    from tests.factories import UserFactory

    story_update = services.story_update
    locked, go = threading.Event(), threading.Event()

    def stall_after_the_story_row(**kwargs):
        story = story_update(**kwargs)
        locked.set()
        assert go.wait(15)
        return story

    s, a, x = make_story("ADM-S"), make_story("ADM-A"), make_story("ADM-X")
    admin = Client()
    admin.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    change = reverse("admin:stories_story_change", args=[s.pk])
    data = admin_form_data(admin.get(change))
    data["title"] = "Changed in the admin"
    add_inline_row(data, "dependencies", depends_on=a.pk, type="blocks")
    monkeypatch.setattr(services, "story_update", stall_after_the_story_row)
    base = f"/projects/{project.slug}/stories/"

    def post_the_admin_form():
        from django.db import connections

        try:
            return admin.post(change, data)
        finally:
            connections.close_all()  # this thread's connection, before the test database goes

    with ThreadPoolExecutor(max_workers=2) as pool:
        saved = pool.submit(post_the_admin_form)
        assert locked.wait(15), "the admin never saved the story"
        single = pool.submit(api, "POST", base + f"{s.key}/dependencies/", json={"depends_on": x.key})
        wait_for(lambda: len(backends_waiting_on_locks()) == 1, what="dependency_add to wait for the admin")
        go.set()
        page, response = saved.result(timeout=30), single.result(timeout=30)
    assert (page.status_code, response.status_code) == (302, 201), response.text
    assert links_of(s) == {a.key, x.key}
