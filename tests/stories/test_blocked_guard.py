"""The blocked guard (issue 10, item 8): a story may not start or complete while a `blocks`
dependency is not completed; a project admin may override it with a reason (audited).
One rule (stories.readiness) for services, bulk upsert and import."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditLog
from stories import readiness, services
from stories.bulk import story_bulk_upsert
from stories.importer import import_stories
from stories.models import StatusHistory, Story
from storyhub.errors import BlockedError, BulkValidationError
from tests.factories import DependencyFactory, MemberFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def blocked(make_story, owner):
    """B waits for A (A is still a draft)."""
    a = make_story("A", status="ready")
    b = make_story("B", status="ready")
    DependencyFactory(story=b, depends_on=a, actor=owner)
    return b


@pytest.fixture
def admin(project, owner):
    user = UserFactory(username="padmin")
    MemberFactory(project=project, user=user, role="admin", actor=owner)
    return user


def status_of(key: str) -> str:
    return Story.objects.get(key=key).status.slug


@pytest.mark.parametrize("target", ["in_progress", "done", "review"])
def test_transition_into_started_or_completed_is_refused(blocked, member, target):
    history = StatusHistory.objects.count()
    audit = AuditLog.objects.count()
    with pytest.raises(BlockedError) as info:
        services.story_transition(actor=member, story=blocked, status=target)
    assert info.value.code == "blocked" and info.value.http_status == 409
    assert info.value.extra == {"blockers": ["A"]}
    assert "B is blocked by unfinished stories: A" in info.value.message
    assert status_of("B") == "ready"
    assert (StatusHistory.objects.count(), AuditLog.objects.count()) == (history, audit)


def test_other_categories_and_moves_inside_a_category_are_free(blocked, member, owner):
    services.story_transition(actor=member, story=blocked, status="backlog")
    services.story_transition(actor=member, story=blocked, status="cancelled")
    assert status_of("B") == "cancelled"
    # Started before the link existed: moving between started statuses is not "starting".
    c = services.story_create(actor=owner, project=blocked.project, key="C", title="C", status="in_progress")
    DependencyFactory(story=c, depends_on=Story.objects.get(key="A"), actor=owner)
    services.story_transition(actor=member, story=c, status="review")
    with pytest.raises(BlockedError):
        services.story_transition(actor=member, story=c, status="done")


def test_a_completed_blocker_frees_the_story_and_cancelled_does_not(blocked, member):
    a = Story.objects.get(key="A")
    services.story_transition(actor=member, story=a, status="cancelled")
    with pytest.raises(BlockedError):
        services.story_transition(actor=member, story=blocked, status="in_progress")
    services.story_transition(actor=member, story=a, status="draft")
    services.story_transition(actor=member, story=a, status="done")
    services.story_transition(actor=member, story=blocked, status="in_progress")
    assert status_of("B") == "in_progress"


def test_relates_links_never_block(make_story, member, owner):
    a, b = make_story("A"), make_story("B")
    DependencyFactory(story=b, depends_on=a, type="relates", actor=owner)
    services.story_transition(actor=member, story=b, status="in_progress")


def test_story_update_with_a_status_is_guarded(blocked, member):
    with pytest.raises(BlockedError):
        services.story_update(actor=member, story=blocked, data={"status": "done", "title": "New"})
    assert Story.objects.get(key="B").title == "Story B"


def test_hidden_blockers_count_and_are_not_named(blocked, project, member, owner):
    other = ProjectFactory(slug="secret", actor=owner)
    shared = ProjectFactory(slug="shared", actor=owner)
    MemberFactory(project=shared, user=member, role="viewer", actor=owner)
    hidden = services.story_create(actor=owner, project=other, key="S-1", title="Secret")
    seen = services.story_create(actor=owner, project=shared, key="P-1", title="Shared")
    DependencyFactory(story=blocked, depends_on=hidden, actor=owner)
    DependencyFactory(story=blocked, depends_on=seen, actor=owner)
    with pytest.raises(BlockedError) as info:
        services.story_transition(actor=member, story=blocked, status="in_progress")
    assert info.value.blockers == ["A", "shared:P-1", readiness.HIDDEN_LABEL]
    assert "S-1" not in info.value.message and "secret" not in info.value.message
    with pytest.raises(BlockedError) as info:
        services.story_transition(actor=owner, story=blocked, status="in_progress")
    assert info.value.blockers == ["A", "secret:S-1", "shared:P-1"]


def test_admin_overrides_with_a_reason_recorded_in_history_and_audit(blocked, admin):
    story = services.story_transition(
        actor=admin,
        story=blocked,
        status="in_progress",
        notes="sprint 4",
        override_blocked=True,
        override_reason="A is done in the other repository",
    )
    assert story.status.slug == "in_progress"
    history = StatusHistory.objects.filter(story=story).order_by("-id").first()
    assert history.notes == "sprint 4\nBlocked guard overridden (blockers: A): A is done in the other repository"
    row = AuditLog.objects.filter(action="story.status_changed", entity_id=str(story.pk)).get()
    assert row.details["override_blocked"] == {"reason": "A is done in the other repository", "blockers": ["A"]}
    # story_update records it the same way.
    services.story_update(
        actor=admin, story=story, data={"status": "done"}, override_blocked=True, override_reason="shipped"
    )
    row = AuditLog.objects.filter(action="story.updated", entity_id=str(story.pk)).latest("id")
    assert row.details["override_blocked"] == {"reason": "shipped", "blockers": ["A"]}


def test_override_needs_the_admin_role_and_a_reason(blocked, member, admin):
    with pytest.raises(PermissionDenied):
        services.story_transition(
            actor=member, story=blocked, status="in_progress", override_blocked=True, override_reason="please"
        )
    with pytest.raises(ValidationError) as info:
        services.story_transition(actor=admin, story=blocked, status="in_progress", override_blocked=True)
    assert "reason" in info.value.message_dict
    with pytest.raises(ValidationError):
        services.story_transition(
            actor=admin, story=blocked, status="in_progress", override_blocked=True, override_reason="   "
        )
    assert status_of("B") == "ready"
    assert not AuditLog.objects.filter(action="story.status_changed", entity_id=str(blocked.pk)).exists()


def test_the_rule_is_per_project_on_by_default(blocked, project, owner, member):
    assert project.settings[readiness.GUARD_SETTING] is True
    services.project_update(actor=owner, project=project, data={"settings": {readiness.GUARD_SETTING: False}})
    services.story_transition(actor=member, story=blocked, status="in_progress")
    assert status_of("B") == "in_progress"
    # Settings without the key keep the rule on.
    services.project_update(actor=owner, project=project, data={"settings": {}})
    with pytest.raises(BlockedError):
        services.story_transition(actor=member, story=blocked, status="done")
    with pytest.raises(ValidationError):
        services.project_update(actor=owner, project=project, data={"settings": {readiness.GUARD_SETTING: "no"}})


# --------------------------------------------------------------------------- bulk and import


def test_bulk_upsert_refuses_a_blocked_move(blocked, project, member):
    with pytest.raises(BulkValidationError) as info:
        story_bulk_upsert(actor=member, project=project, items=[{"key": "B", "status": "in_progress"}])
    (error,) = info.value.errors
    assert (error["key"], error["field"]) == ("B", "status")
    assert "blocked by unfinished stories: A" in error["reason"]
    assert status_of("B") == "ready"


def test_bulk_upsert_sees_the_batch_final_state(blocked, project, member):
    # A is completed by the same batch: B may start.
    items = [{"key": "B", "status": "in_progress"}, {"key": "A", "status": "done"}]
    story_bulk_upsert(actor=member, project=project, items=items)
    assert (status_of("A"), status_of("B")) == ("done", "in_progress")


def test_bulk_upsert_guards_new_stories_and_new_links(project, member, make_story):
    make_story("A")
    with pytest.raises(BulkValidationError) as info:
        story_bulk_upsert(
            actor=member,
            project=project,
            items=[
                {"key": "N-1", "title": "New", "status": "done", "depends_on": ["A"]},
                {"key": "N-2", "title": "New too", "status": "in_progress", "depends_on": ["N-3"]},
                {"key": "N-3", "title": "Draft"},
                {
                    "key": "N-4",
                    "title": "Free",
                    "status": "in_progress",
                    "depends_on": [{"key": "A", "type": "relates"}],
                },
            ],
        )
    assert sorted(e["key"] for e in info.value.errors) == ["N-1", "N-2"]
    assert not Story.objects.filter(key__startswith="N-").exists()
    # Replacing the links in the same item counts: without A, B may be done.
    story_bulk_upsert(actor=member, project=project, items=[{"key": "N-1", "title": "New", "status": "done"}])
    assert status_of("N-1") == "done"


def test_bulk_upsert_without_the_rule(blocked, project, owner, member):
    services.project_update(actor=owner, project=project, data={"settings": {readiness.GUARD_SETTING: False}})
    story_bulk_upsert(actor=member, project=project, items=[{"key": "B", "status": "done"}])
    assert status_of("B") == "done"


def test_import_goes_through_the_guard(project, member, tmp_path):
    def write(name, key, status, deps=""):
        (tmp_path / name).write_text(
            f"---\nid: {key}\ntitle: Story {key}\nstatus: {status}\ndependencies: [{deps}]\n---\n# {key}\n"
        )

    write("a.md", "IM-1", "draft")
    write("b.md", "IM-2", "in_progress", "IM-1")
    report = import_stories([tmp_path], project=project, actor=member, continue_on_error=False)
    failed = {f.path: f.reason for f in report.files if f.outcome == "failed"}
    assert "b.md" in failed and "blocked by unfinished stories: IM-1" in failed["b.md"]
    assert not Story.objects.filter(key__startswith="IM-").exists()
    write("a.md", "IM-1", "done")
    report = import_stories([tmp_path], project=project, actor=member)
    assert status_of("IM-2") == "in_progress" and status_of("IM-1") == "done"
