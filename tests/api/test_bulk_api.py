"""POST /api/v1/projects/{slug}/stories/bulk/: create-or-update by key, atomic, dry run,
per-item errors, audit and history, and a query count that does not grow per item."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditLog
from stories.models import StatusHistory, Story, StoryDependency
from tests.factories import ProjectFactory

BULK = "/api/v1/projects/plan-pipe/stories/bulk/"


def post(client, items, query=""):
    return client.post(BULK + query, {"items": items}, format="json")


def deps_of(key: str, project_slug: str = "plan-pipe") -> set[str]:
    story = Story.objects.get(project__slug=project_slug, key=key)
    return {
        d.depends_on.key if d.depends_on.project_id == story.project_id else d.depends_on.ref
        for d in StoryDependency.objects.filter(story=story).select_related("depends_on__project")
    }


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 401), ("outsider", 404), ("viewer", 403), ("ro_key", 403), ("member", 200), ("owner", 200)],
)
def test_bulk_permissions(caller, project, who, expected):
    response = post(caller(who), [{"key": "B-1", "title": "One"}])
    assert response.status_code == expected, response.json()
    assert Story.objects.filter(key="B-1").exists() == (expected == 200)


def test_bulk_creates_with_forward_references_audit_and_history(member_client, member, project):
    items = [
        {"key": "B-1", "title": "One", "depends_on": ["B-3", "B-2"], "priority": "high", "estimate": "1-2sp"},
        {"key": "B-2", "title": "Two", "depends_on": ["B-3"], "status": "ready", "labels": ["x"]},
        {"key": "B-3", "title": "Three", "epic": "infra", "metadata": {"market": None}},
    ]
    response = post(member_client, items)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["created"] == 3 and body["updated"] == 0 and body["unchanged"] == 0
    assert body["dry_run"] is False
    assert body["items"] == [
        {"index": 0, "key": "B-1", "outcome": "created"},
        {"index": 1, "key": "B-2", "outcome": "created"},
        {"index": 2, "key": "B-3", "outcome": "created"},
    ]
    assert deps_of("B-1") == {"B-2", "B-3"}
    assert deps_of("B-2") == {"B-3"}
    b1 = Story.objects.get(project=project, key="B-1")
    assert (b1.priority, b1.estimate, b1.points_min, b1.points_max) == (3, "1-2sp", 1, 2)
    assert Story.objects.get(project=project, key="B-2").status.slug == "ready"
    assert Story.objects.get(project=project, key="B-3").epic.slug == "infra"
    created = AuditLog.objects.filter(action="story.created", details__key="B-1").get()
    assert created.user == member
    assert created.details["source"] == "api"
    assert created.details["changes"]["dependencies"]["new"] == ["B-3", "B-2"]
    assert AuditLog.objects.filter(action="epic.created").count() == 1
    history = StatusHistory.objects.filter(story__project=project, story__key__startswith="B-")
    assert history.count() == 3
    assert {h.changed_by for h in history} == {member}


def test_bulk_update_unchanged_and_changed(member_client, project, make_story):
    make_story("B-1", title="One")
    make_story("B-2", title="Two")
    post(member_client, [{"key": "B-1", "title": "One", "depends_on": ["B-2"]}])
    audit_before = AuditLog.objects.count()
    history_before = StatusHistory.objects.count()

    response = post(
        member_client,
        [
            {"key": "B-1", "title": "One", "depends_on": ["B-2"]},  # same as stored
            {"key": "B-2", "title": "Two, renamed", "status": "ready"},
            {"key": "B-4", "title": "Four"},
        ],
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert [i["outcome"] for i in body["items"]] == ["unchanged", "updated", "created"]
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 1, 1)
    new_rows = AuditLog.objects.count() - audit_before
    # B-2: one story.updated row (title + status); B-4: one story.created row; B-1: nothing.
    assert new_rows == 2
    assert not AuditLog.objects.filter(action="story.updated", details__key="B-1").exists()
    updated = AuditLog.objects.get(action="story.updated", details__key="B-2")
    assert updated.details["changes"]["status"] == {"old": "draft", "new": "ready"}
    assert StatusHistory.objects.count() - history_before == 2  # B-2 moved, B-4 created

    # Same payload again: nothing changes, nothing is written.
    audit_before = AuditLog.objects.count()
    response = post(member_client, [{"key": "B-2", "title": "Two, renamed", "status": "ready"}])
    assert response.json()["unchanged"] == 1
    assert AuditLog.objects.count() == audit_before


def test_bulk_replaces_dependencies_when_given(member_client, project, make_story):
    post(member_client, [{"key": k, "title": k} for k in "ABC"])
    post(member_client, [{"key": "A", "depends_on": ["B"]}])
    # Move A's link from B to C, and let B depend on A (no false cycle: removals go first).
    response = post(member_client, [{"key": "A", "depends_on": ["C"]}, {"key": "B", "depends_on": ["A"]}])
    assert response.status_code == 200, response.json()
    assert deps_of("A") == {"C"} and deps_of("B") == {"A"}
    assert AuditLog.objects.filter(action="dependency.removed").count() == 1
    assert AuditLog.objects.filter(action="dependency.added").count() == 3
    # Leaving depends_on out keeps the links.
    post(member_client, [{"key": "A", "title": "A2"}])
    assert deps_of("A") == {"C"}


def test_bulk_cross_project_reference(member_client, owner, member, project):
    other = ProjectFactory(slug="other", actor=owner)
    from tests.factories import MemberFactory, StoryFactory

    StoryFactory(project=other, key="API-004", actor=owner)
    response = post(member_client, [{"key": "B-1", "title": "x", "depends_on": ["other:API-004"]}])
    # The member cannot see `other`: answered like a story that does not exist.
    assert response.status_code == 400
    assert "Unknown dependency 'other:API-004'" in response.json()["details"]["items"][0]["reason"]
    MemberFactory(project=other, user=member, role="viewer", actor=owner)
    response = post(member_client, [{"key": "B-1", "title": "x", "depends_on": ["other:API-004"]}])
    assert response.status_code == 200, response.json()
    assert deps_of("B-1") == {"other:API-004"}


def test_bulk_one_bad_item_fails_everything_with_per_item_errors(member_client, project, make_story):
    make_story("B-0", title="Existing")
    audit_before = AuditLog.objects.count()
    response = post(
        member_client,
        [
            {"key": "B-1", "title": "Good"},
            {"key": "B-2", "title": "Bad status", "status": "nope"},
            {"key": "B-3", "title": "Bad dep", "depends_on": ["NOWHERE-1"]},
            {"key": "bad key", "title": "x"},
            {"key": "B-5"},
            {"key": "B-0", "title": "Renamed", "priority": "whenever"},
            {"key": "B-6", "title": "x", "colour": "red"},
            {"key": "B-7", "title": "x", "created": "yesterday"},
        ],
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "bulk_invalid"
    assert "7 of 8 items" in body["message"]
    errors = body["details"]["items"]
    by_index = {(e["index"], e["field"]): e for e in errors}
    assert set(by_index) == {
        (1, "status"),
        (2, "depends_on"),
        (3, "key"),
        (4, "title"),
        (5, "priority"),
        (6, "colour"),
        (7, "created"),
    }
    assert all(set(e) == {"index", "key", "field", "reason"} for e in errors)
    assert "draft" in by_index[(1, "status")]["reason"]  # names the allowed statuses
    assert by_index[(2, "depends_on")]["key"] == "B-3"
    assert "NOWHERE-1" in by_index[(2, "depends_on")]["reason"]
    assert not Story.objects.filter(key="B-1").exists()
    assert Story.objects.get(key="B-0").title == "Existing"
    assert AuditLog.objects.count() == audit_before


def test_bulk_duplicate_keys_and_cycles(member_client, project, make_story):
    response = post(member_client, [{"key": "D-1", "title": "a"}, {"key": "D-1", "title": "b"}])
    assert response.status_code == 400
    assert [(e["index"], e["field"]) for e in response.json()["details"]["items"]] == [(0, "key"), (1, "key")]

    response = post(
        member_client,
        [
            {"key": "C-1", "title": "a", "depends_on": ["C-2"]},
            {"key": "C-2", "title": "b", "depends_on": ["C-3"]},
            {"key": "C-3", "title": "c", "depends_on": ["C-1"]},
        ],
    )
    assert response.status_code == 400
    errors = response.json()["details"]["items"]
    assert {e["index"] for e in errors} == {0, 1, 2}
    assert "C-1 → C-2 → C-3 → C-1" in errors[0]["reason"]
    assert not Story.objects.filter(key__startswith="C-").exists()

    # A cycle through links already stored is caught too, and rolls everything back.
    post(member_client, [{"key": "E-1", "title": "a"}, {"key": "E-2", "title": "b", "depends_on": ["E-1"]}])
    response = post(member_client, [{"key": "E-0", "title": "new"}, {"key": "E-1", "depends_on": ["E-2"]}])
    assert response.status_code == 400
    error = response.json()["details"]["items"][0]
    assert (error["index"], error["field"]) == (1, "depends_on")
    assert "E-1" in error["reason"] and "E-2" in error["reason"]
    assert not Story.objects.filter(key="E-0").exists()


def test_bulk_self_dependency_and_workflow(member_client, project, make_story):
    response = post(member_client, [{"key": "S-1", "title": "a", "depends_on": ["S-1"]}])
    assert response.json()["details"]["items"][0]["reason"] == "A story cannot depend on itself."
    make_story("S-2", title="b", status="accepted")
    response = post(member_client, [{"key": "S-2", "status": "ready"}])
    assert response.status_code == 400
    error = response.json()["details"]["items"][0]
    assert error["field"] == "status" and "done" in error["reason"]


def test_bulk_dry_run_writes_nothing(member_client, project, make_story):
    make_story("B-1", title="One")
    audit_before = AuditLog.objects.count()
    items = [{"key": "B-1", "title": "One, renamed"}, {"key": "B-2", "title": "Two", "depends_on": ["B-1"]}]
    response = post(member_client, items, "?dry_run=true")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["dry_run"] is True
    assert [i["outcome"] for i in body["items"]] == ["updated", "created"]
    assert Story.objects.get(key="B-1").title == "One"
    assert not Story.objects.filter(key="B-2").exists()
    assert AuditLog.objects.count() == audit_before
    bad = post(member_client, [{"key": "B-3", "title": "x", "status": "nope"}], "?dry_run=true")
    assert bad.status_code == 400 and bad.json()["code"] == "bulk_invalid"


def test_bulk_validation_of_the_envelope(member_client, project):
    assert member_client.post(BULK, {"items": []}, format="json").status_code == 400
    assert member_client.post(BULK, {"items": "x"}, format="json").status_code == 400
    response = member_client.post(BULK, [{"key": "L-1", "title": "bare list"}], format="json")
    assert response.status_code == 200
    assert post(member_client, [{"key": "L-2", "title": "x"}], "?dry_run=maybe").status_code == 400


def _queries_for(member_client, n: int, prefix: str) -> int:
    items = [
        {"key": f"{prefix}-{i}", "title": f"t{i}", "epic": "e", "depends_on": [f"{prefix}-{i - 1}"] if i else []}
        for i in range(n)
    ]
    with CaptureQueriesContext(connection) as ctx:
        response = post(member_client, items)
    assert response.status_code == 200, response.json()
    return len(ctx.captured_queries)


def test_bulk_create_query_count_does_not_grow_per_item(member_client, project):
    small = _queries_for(member_client, 5, "Q")
    large = _queries_for(member_client, 100, "R")
    # Batched inserts: 20x the items costs at most a handful more queries (not 95 x N).
    assert large - small <= 4, (small, large)


def test_bulk_unchanged_reimport_reads_only(member_client, project):
    items = [{"key": f"U-{i}", "title": f"t{i}", "depends_on": [f"U-{i - 1}"] if i else []} for i in range(60)]
    assert post(member_client, items).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        response = post(member_client, items)
    assert response.json()["unchanged"] == 60
    writes = [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))]
    writes = [q for q in writes if "sessions" not in q and "api_keys" not in q]
    assert writes == []
    assert len(ctx.captured_queries) < 15


def test_bulk_accepts_dependencies_as_in_story_files(member_client, project):
    items = [{"key": "F-1", "title": "a", "dependencies": ["F-2"]}, {"key": "F-2", "title": "b"}]
    assert post(member_client, items).status_code == 200
    assert deps_of("F-1") == {"F-2"}
    both = post(member_client, [{"key": "F-3", "title": "c", "dependencies": [], "depends_on": []}])
    assert both.status_code == 400 and both.json()["details"]["items"][0]["field"] == "dependencies"


def test_bulk_key_created_meanwhile_is_a_conflict(member_client, project, make_story, monkeypatch):
    """A key another writer creates between the batch's reads and its inserts: 409, and
    nothing of the batch is written."""
    from stories.bulk import plan

    make_story("RACE-1", title="Created by someone else")
    load_existing = plan.load_existing

    def miss_the_other_writer(the_plan):
        load_existing(the_plan)
        the_plan.existing.pop("RACE-1", None)

    monkeypatch.setattr(plan, "load_existing", miss_the_other_writer)
    response = post(member_client, [{"key": "RACE-0", "title": "a"}, {"key": "RACE-1", "title": "b"}])
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "conflict"
    assert not Story.objects.filter(key="RACE-0").exists()
    assert Story.objects.get(key="RACE-1").title == "Created by someone else"


def test_bulk_update_of_epic_backlog_estimate_is_audited(member_client, owner, project, make_story):
    from stories import services

    backlog = services.backlog_create(actor=owner, project=project, slug="sprint-1", name="Sprint 1")
    post(member_client, [{"key": "V-1", "title": "a", "epic": "old-epic", "estimate": "2sp"}])
    response = post(member_client, [{"key": "V-1", "epic": "new-epic", "backlog": "sprint-1", "estimate": "1-3sp"}])
    assert response.json()["updated"] == 1
    story = Story.objects.get(project=project, key="V-1")
    assert (story.epic.slug, story.backlog, story.points_min, story.points_max, story.version) == (
        "new-epic",
        backlog,
        1,
        3,
        2,
    )
    changes = AuditLog.objects.get(action="story.updated", details__key="V-1").details["changes"]
    assert changes["epic"] == {"old": "old-epic", "new": "new-epic"}
    assert changes["backlog"] == {"old": None, "new": "plan-pipe/sprint-1"}
    assert changes["estimate"] == {"old": "2sp", "new": "1-3sp"}
    assert changes["points_max"] == {"old": "2.00", "new": "3"}
    assert set(changes) == {"epic", "backlog", "estimate", "points_min", "points_max"}
    # No status moved: no history row beyond the first.
    assert StatusHistory.objects.filter(story=story).count() == 1


def test_bulk_item_changing_only_its_links_is_reported_updated(member_client, project, make_story):
    """An item whose fields are all as stored but whose dependency list differs changes
    links and writes audit rows: it is 'updated', in a dry run too, and an item sending
    the same list again is 'unchanged' and writes nothing."""
    make_story("DO-1")
    make_story("DO-2")
    make_story("DO-3")
    post(member_client, [{"key": "DO-1", "depends_on": ["DO-2"]}])
    item = {"key": "DO-1", "title": Story.objects.get(key="DO-1").title, "depends_on": ["DO-3"]}

    dry = post(member_client, [item], "?dry_run=true")
    assert dry.status_code == 200, dry.json()
    assert dry.json()["items"][0]["outcome"] == "updated"
    assert (dry.json()["updated"], dry.json()["unchanged"]) == (1, 0)
    assert deps_of("DO-1") == {"DO-2"}

    before = AuditLog.objects.count()
    real = post(member_client, [item])
    assert real.json()["items"][0]["outcome"] == "updated"
    assert deps_of("DO-1") == {"DO-3"}
    assert sorted(AuditLog.objects.order_by("-id")[:2].values_list("action", flat=True)) == [
        "dependency.added",
        "dependency.removed",
    ]
    assert AuditLog.objects.count() == before + 2
    again = post(member_client, [item])
    assert again.json()["items"][0]["outcome"] == "unchanged"
    assert AuditLog.objects.count() == before + 2
