"""The service layer: audit rows, status history, workflow, versions, graph rules, roles."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from audit.context import write_context
from audit.models import AuditLog
from stories import services
from stories.models import (
    DEFAULT_WORKFLOW,
    Project,
    ProjectMember,
    Status,
    StatusHistory,
    StatusWriteError,
    Story,
    StoryDependency,
)
from storyhub.errors import ConflictError, DependencyCycleError, InvalidTransitionError
from tests.factories import ProjectFactory, StoryFactory, UserFactory

pytestmark = pytest.mark.django_db


def audit_rows(action, entity_id=None):
    qs = AuditLog.objects.filter(action=action)
    if entity_id is not None:
        qs = qs.filter(entity_id=str(entity_id))
    return list(qs)


def test_project_create_makes_default_workflow_owner_and_audit(owner):
    with write_context(source="cli", request_id="req-1"):
        project = services.project_create(actor=owner, slug="alpha", name="Alpha")
    slugs = list(Status.objects.filter(project=project).values_list("slug", flat=True))
    assert slugs == [step["slug"] for step in DEFAULT_WORKFLOW]
    assert {"draft", "ready", "in_progress", "active", "review", "done", "accepted", "blocked", "cancelled"} <= set(
        slugs
    )
    assert ProjectMember.objects.get(project=project, user=owner).role == "owner"
    [row] = audit_rows("project.created", project.pk)
    assert row.user == owner and row.user_repr == "owner"
    assert row.details["source"] == "cli" and row.details["request_id"] == "req-1"
    assert row.details["changes"]["slug"] == {"old": None, "new": "alpha"}


def test_story_create_writes_one_history_and_one_audit_row(project, owner):
    story = services.story_create(
        actor=owner, project=project, key="INF-013", title="DB", priority="high", estimate="1-2sp", labels=["db"]
    )
    assert story.status.slug == "draft" and story.priority == 3 and story.version == 1
    assert (story.points_min, story.points_max) == (Decimal("1"), Decimal("2"))
    history = list(StatusHistory.objects.filter(story=story))
    assert len(history) == 1 and history[0].old_status is None and history[0].new_status.slug == "draft"
    [row] = audit_rows("story.created", story.pk)
    assert row.details["changes"]["key"]["new"] == "INF-013"


def test_transition_writes_exactly_one_history_row_and_audit(story, member):
    before = StatusHistory.objects.filter(story=story).count()
    updated = services.story_transition(actor=member, story=story, status="ready", notes="groomed")
    assert updated.status.slug == "ready" and updated.version == 2
    rows = list(StatusHistory.objects.filter(story=story).order_by("id"))
    assert len(rows) == before + 1
    assert (rows[-1].old_status.slug, rows[-1].new_status.slug, rows[-1].changed_by, rows[-1].notes) == (
        "draft",
        "ready",
        member,
        "groomed",
    )
    [row] = audit_rows("story.status_changed", story.pk)
    assert row.details["changes"]["status"] == {"old": "draft", "new": "ready"}
    assert row.user == member


def test_transition_to_same_status_is_a_no_op(story, member):
    services.story_transition(actor=member, story=story, status="draft")
    assert StatusHistory.objects.filter(story=story).count() == 1
    assert not audit_rows("story.status_changed")


def test_update_with_status_change_writes_one_history_row(story, member):
    updated = services.story_update(
        actor=member, story=story, data={"title": "New", "status": "ready"}, expected_version=1
    )
    assert updated.title == "New" and updated.status.slug == "ready"
    assert StatusHistory.objects.filter(story=story).count() == 2
    [row] = audit_rows("story.updated", story.pk)
    assert set(row.details["changes"]) == {"title", "status"}


def test_update_without_changes_writes_nothing(story, member):
    services.story_update(actor=member, story=story, data={"title": story.title})
    assert not audit_rows("story.updated")
    assert Story.objects.get(pk=story.pk).version == 1


def test_update_estimate_reparses_points(story, member):
    updated = services.story_update(actor=member, story=story, data={"estimate": "5"})
    assert (updated.points_min, updated.points_max) == (Decimal("5"), Decimal("5"))


def test_invalid_transition_names_allowed_targets(story, member):
    story = services.story_transition(actor=member, story=story, status="cancelled")
    with pytest.raises(InvalidTransitionError) as excinfo:
        services.story_transition(actor=member, story=story, status="done")
    assert excinfo.value.allowed == ["draft", "backlog"]
    assert "draft, backlog" in excinfo.value.message
    assert Story.objects.get(pk=story.pk).status.slug == "cancelled"
    assert StatusHistory.objects.filter(story=story).count() == 2


def test_unknown_status_is_a_validation_error_listing_the_workflow(story, member):
    with pytest.raises(ValidationError) as excinfo:
        services.story_transition(actor=member, story=story, status="nope")
    assert "in_progress" in str(excinfo.value.message_dict["status"])


def test_stale_version_is_a_conflict_and_changes_nothing(story, member):
    services.story_update(actor=member, story=story, data={"title": "First edit"}, expected_version=1)
    with pytest.raises(ConflictError):
        services.story_update(actor=member, story=story, data={"title": "Second edit"}, expected_version=1)
    with pytest.raises(ConflictError):
        services.story_transition(actor=member, story=story, status="ready", expected_version=1)
    fresh = Story.objects.get(pk=story.pk)
    assert fresh.title == "First edit" and fresh.version == 2 and fresh.status.slug == "draft"


def test_queryset_update_of_status_is_refused(story, project):
    done = Status.objects.get(project=project, slug="done")
    with pytest.raises(StatusWriteError):
        Story.objects.filter(pk=story.pk).update(status=done)
    with pytest.raises(StatusWriteError):
        Story.objects.filter(pk=story.pk).update(status_id=done.pk)
    story.status = done
    with pytest.raises(StatusWriteError):
        Story.objects.bulk_update([story], ["status"])


def test_rolled_back_write_leaves_no_audit_row(project, owner):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.story_create(actor=owner, project=project, key="RB-1", title="Rolled back")
        raise RuntimeError("boom")
    assert not Story.objects.filter(key="RB-1").exists()
    assert not audit_rows("story.created")
    assert not StatusHistory.objects.exists()


def test_failed_validation_writes_nothing(project, owner):
    with pytest.raises(ValidationError) as excinfo:
        services.story_create(actor=owner, project=project, key="bad key!", title="x")
    assert "key" in excinfo.value.message_dict
    with pytest.raises(ValidationError):
        services.story_create(actor=owner, project=project, key="OK-1", title="x", priority="enormous")
    assert not Story.objects.exists() and not audit_rows("story.created")


def test_duplicate_key_in_project_is_refused(story, owner, project):
    with pytest.raises(ValidationError) as excinfo:
        services.story_create(actor=owner, project=project, key=story.key, title="again")
    assert "already exists" in str(excinfo.value)


def test_story_move_and_delete_audit(story, member, owner, project):
    backlog = services.backlog_create(actor=owner, project=project, slug="sprint-1", name="Sprint 1", type="sprint")
    moved = services.story_move(actor=member, story=story, backlog=backlog, expected_version=1)
    assert moved.backlog == backlog and moved.version == 2
    assert audit_rows("story.moved", story.pk)[0].details["changes"]["backlog"] == {"old": None, "new": "sprint-1"}
    services.story_delete(actor=member, story=moved, expected_version=2)
    assert not Story.objects.filter(pk=story.pk).exists()
    assert audit_rows("story.deleted", story.pk)


# ---------------------------------------------------------------- dependencies


def test_dependency_add_and_remove_audit(make_story, owner):
    a, b = make_story("A-1"), make_story("B-1")
    dep = services.dependency_add(actor=owner, story=a, depends_on=b)
    [row] = audit_rows("dependency.added", dep.pk)
    assert row.details["story"] == "plan-pipe:A-1" and row.details["depends_on"] == "plan-pipe:B-1"
    services.dependency_remove(actor=owner, dependency=dep)
    assert not StoryDependency.objects.exists() and audit_rows("dependency.removed", dep.pk)


def test_self_dependency_refused(story, owner):
    with pytest.raises(ValidationError) as excinfo:
        services.dependency_add(actor=owner, story=story, depends_on=story)
    assert "itself" in str(excinfo.value)


def test_duplicate_dependency_refused(make_story, owner):
    a, b = make_story("A-1"), make_story("B-1")
    services.dependency_add(actor=owner, story=a, depends_on=b)
    with pytest.raises(ValidationError) as excinfo:
        services.dependency_add(actor=owner, story=a, depends_on=b, type="relates")
    assert "already depends on B-1" in str(excinfo.value)


def test_direct_cycle_refused_and_named(make_story, owner):
    a, b = make_story("A-1"), make_story("B-1")
    services.dependency_add(actor=owner, story=a, depends_on=b)
    with pytest.raises(DependencyCycleError) as excinfo:
        services.dependency_add(actor=owner, story=b, depends_on=a)
    assert excinfo.value.cycle == ["B-1", "A-1", "B-1"]
    assert "B-1 → A-1 → B-1" in excinfo.value.message
    assert StoryDependency.objects.count() == 1 and len(audit_rows("dependency.added")) == 1


def test_long_cycle_refused_and_named(make_story, owner):
    chain = [make_story(f"C-{n}") for n in range(6)]
    for first, second in zip(chain, chain[1:], strict=False):
        services.dependency_add(actor=owner, story=first, depends_on=second)
    with pytest.raises(DependencyCycleError) as excinfo:
        services.dependency_add(actor=owner, story=chain[-1], depends_on=chain[0])
    assert excinfo.value.cycle == ["C-5", "C-0", "C-1", "C-2", "C-3", "C-4", "C-5"]


def test_relates_links_may_form_loops(make_story, owner):
    a, b = make_story("A-1"), make_story("B-1")
    services.dependency_add(actor=owner, story=a, depends_on=b)
    services.dependency_add(actor=owner, story=b, depends_on=a, type="relates")
    assert StoryDependency.objects.count() == 2


def test_cross_project_dependency_and_cycle_across_projects(owner, make_story):
    other = ProjectFactory(slug="other", actor=owner)
    a = make_story("A-1")
    x = StoryFactory(project=other, key="X-1", actor=owner)
    services.dependency_add(actor=owner, story=a, depends_on=x)
    with pytest.raises(DependencyCycleError) as excinfo:
        services.dependency_add(actor=owner, story=x, depends_on=a)
    assert excinfo.value.cycle == ["X-1", "plan-pipe:A-1", "X-1"]


def test_cross_project_needs_visibility_of_target(owner, member, make_story):
    secret = ProjectFactory(slug="secret", actor=owner)
    hidden = StoryFactory(project=secret, key="S-1", actor=owner)
    with pytest.raises(PermissionDenied):
        services.dependency_add(actor=member, story=make_story("A-1"), depends_on=hidden)


# ---------------------------------------------------------------- roles


def test_viewer_and_outsider_cannot_write_stories(project, viewer, outsider, story):
    for user in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            services.story_create(actor=user, project=project, key="X-1", title="x")
        with pytest.raises(PermissionDenied):
            services.story_transition(actor=user, story=story, status="ready")


def test_member_cannot_manage_members_or_workflow(project, member):
    with pytest.raises(PermissionDenied):
        services.project_member_set(actor=member, project=project, user=UserFactory(), role="viewer")
    with pytest.raises(PermissionDenied):
        services.status_create(actor=member, project=project, slug="qa", name="QA", category="started")
    with pytest.raises(PermissionDenied):
        services.project_delete(actor=member, project=project)


def test_admin_manages_members_but_only_owner_archives(project, owner):
    admin = UserFactory(username="adm")
    services.project_member_set(actor=owner, project=project, user=admin, role="admin")
    services.project_member_set(actor=admin, project=project, user=UserFactory(username="new"), role="viewer")
    with pytest.raises(PermissionDenied):
        services.project_archive(actor=admin, project=project)
    with pytest.raises(PermissionDenied):
        services.project_member_set(actor=admin, project=project, user=admin, role="owner")
    assert services.project_archive(actor=owner, project=project).status == "archived"
    assert audit_rows("project.member_added") and audit_rows("project.updated", project.pk)


def test_last_owner_cannot_leave(project, owner):
    membership = ProjectMember.objects.get(project=project, user=owner)
    with pytest.raises(ValidationError):
        services.project_member_remove(actor=owner, member=membership)
    with pytest.raises(ValidationError):
        services.project_member_set(actor=owner, project=project, user=owner, role="viewer")


def test_member_role_change_is_audited(project, owner, member):
    services.project_member_set(actor=owner, project=project, user=member, role="viewer")
    [row] = audit_rows("project.member_role_changed")
    assert row.details["changes"]["role"] == {"old": "member", "new": "viewer"}


def test_workflow_services(project, owner, story):
    qa = services.status_create(
        actor=owner, project=project, slug="qa", name="QA", category="started", allowed_transitions=["done"]
    )
    story = services.story_transition(actor=owner, story=story, status="qa")
    with pytest.raises(InvalidTransitionError):
        services.story_transition(actor=owner, story=story, status="draft")
    with pytest.raises(ValidationError):
        services.status_delete(actor=owner, status=qa)
    with pytest.raises(ValidationError):
        services.status_update(actor=owner, status=qa, data={"allowed_transitions": ["nowhere"]})
    services.status_update(actor=owner, status=qa, data={"allowed_transitions": []})
    assert audit_rows("status.created") and audit_rows("status.updated")


def test_project_delete_cascades_and_audits(project, owner, story):
    services.project_delete(actor=owner, project=project)
    assert not Project.objects.exists() and not Story.objects.exists()
    assert audit_rows("project.deleted")[0].details["stories"] == 1


def test_epic_get_or_create_is_idempotent(project, owner):
    first = services.epic_get_or_create(actor=owner, project=project, slug="infrastructure")
    again = services.epic_get_or_create(actor=owner, project=project, slug="infrastructure")
    assert first.pk == again.pk and len(audit_rows("epic.created")) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3sp", (3, 3)),
        ("1-2sp", (1, 2)),
        ("5", (5, 5)),
        (" 0.5 SP", (Decimal("0.5"), Decimal("0.5"))),
        ("8 points", (8, 8)),
        ("", (None, None)),
        ("XL", (None, None)),
        (None, (None, None)),
    ],
)
def test_parse_estimate(text, expected):
    assert services.parse_estimate(text) == expected


@pytest.mark.parametrize("key", ["bulk", "BULK"])
def test_route_names_are_not_story_keys(project, owner, make_story, key):
    with pytest.raises(ValidationError) as excinfo:
        services.story_create(actor=owner, project=project, key=key, title="Clash")
    assert "reserved" in str(excinfo.value.message_dict["key"])
    story = make_story("OK-1")
    with pytest.raises(ValidationError):
        services.story_update(actor=owner, story=story, data={"key": key})
    assert Story.objects.filter(key__iexact="bulk").count() == 0
