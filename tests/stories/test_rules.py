"""stories.rules: one policy, asked through Django's has_perm for admin, DRF and code."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from stories import rules, selectors, services
from stories.exporter import stream_export
from stories.permissions import has_project_role, project_role, require_project_role
from storyhub.errors import DependencyCycleError
from tests.cross_project import MARKERS, build_world
from tests.factories import MemberFactory, StoryFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = ["viewer", "member", "admin", "owner"]
# permission → the least role that holds it
EXPECTED = {
    "stories.view_project": "viewer",
    "stories.change_project": "admin",
    "stories.delete_project": "owner",
    "stories.manage_members": "admin",
    "stories.view_story": "viewer",
    "stories.change_story": "member",
    "stories.delete_story": "member",
    "stories.add_storydependency": "member",
}


@pytest.mark.parametrize("role", [None, *ROLES])
@pytest.mark.parametrize("perm", list(EXPECTED))
def test_object_permissions_follow_the_role(project, owner, story, role, perm):
    user = UserFactory(username=f"u-{role}")
    if role is not None:
        MemberFactory(project=project, user=user, role=role, actor=owner)
    target = project if perm.endswith("_project") or perm == "stories.manage_members" else story
    expected = role is not None and rules.RANK[role] >= rules.RANK[EXPECTED[perm]]
    assert user.has_perm(perm, target) is expected


def test_superuser_is_owner_and_anonymous_and_inactive_users_are_nobody(project, owner, story):
    root = UserFactory(username="root", is_superuser=True)
    assert project_role(root, project) == "owner" and root.has_perm("stories.delete_story", story)
    assert project_role(AnonymousUser(), project) is None
    assert not AnonymousUser().has_perm("stories.view_story", story)
    owner.is_active = False
    assert project_role(owner, project) is None


def test_without_an_object_no_rule_grants_anything(project, owner):
    # Model-level permissions stay Django's (ModelBackend); a project role grants none.
    assert not owner.has_perm("stories.change_story")


def test_no_role_is_cached_on_the_user(project, owner):
    user = UserFactory(username="late")
    assert not has_project_role(user, project, "viewer")
    MemberFactory(project=project, user=user, role="viewer", actor=owner)
    # Asked again in the same "request": the new membership counts at once.
    assert has_project_role(user, project, "viewer")
    require_project_role(user, project, "viewer")
    assert not [name for name in vars(user) if "role" in name]


def test_story_refs_and_visibility():
    world = build_world()
    refs = selectors.story_refs(ids=[world.secret.pk, world.b2.pk], reader=world.bee, relative_to=world.beta)
    assert refs == {world.secret.pk: selectors.HIDDEN_REF, world.b2.pk: "B-2"}
    # reader=None is the system: it sees everything.
    refs = selectors.story_refs(ids=[world.secret.pk], reader=None, relative_to=world.beta)
    assert refs == {world.secret.pk: "zz-alpha:SEC-1"}
    assert selectors.visibility_for(world.bee).sees(world.beta.pk)
    assert not selectors.visibility_for(world.bee).sees(world.alpha.pk)
    assert set(selectors.visible_project_ids(world.bee).values_list("project_id", flat=True)) == {world.beta.pk}
    assert selectors.collapse_hidden(["A", "(hidden)", "(hidden)", "B"]) == ["A", "(hidden)", "B"]


def test_cycle_error_is_told_in_the_actor_s_terms():
    world = build_world()
    with pytest.raises(DependencyCycleError) as caught:
        services.dependency_add(actor=world.bee, story=world.b2, depends_on=world.b1)
    assert caught.value.cycle == ["B-2", "B-1", "(hidden)", "B-2"]
    assert not any(marker in caught.value.message for marker in MARKERS)
    # The system (an operator) is told everything.
    with pytest.raises(DependencyCycleError) as caught:
        services.dependency_add(actor=None, story=world.b2, depends_on=world.b1)
    assert caught.value.cycle == ["B-2", "B-1", "zz-alpha:SEC-1", "B-2"]


@pytest.mark.parametrize("fmt", ["markdown", "json", "csv"])
def test_export_by_the_system_keeps_every_link_and_by_a_member_none_hidden(fmt):
    world = build_world()
    system = b"".join(stream_export(world.beta, fmt))
    member = b"".join(stream_export(world.beta, fmt, reader=world.bee))
    if fmt != "markdown":  # the zip is compressed
        assert b"zz-alpha:SEC-1" in system
        assert b"SEC-1" not in member and b"zz-alpha" not in member


def test_walk_placeholders_for_a_reader():
    world = build_world()
    extra = StoryFactory(project=world.beta, key="B-9", actor=world.owner)
    services.dependency_add(actor=world.owner, story=extra, depends_on=world.b1)
    from stories import graph

    found = graph.story_blockers(story=extra, transitive=True)
    assert [d for _, d in found] == [1, 2, 3]
    seen = selectors.visible_walk(start_id=extra.pk, found=found, reader=world.bee, forward=True)
    assert seen == [(world.b1.pk, 1), (None, 2)]
    assert selectors.visible_walk(start_id=extra.pk, found=found, reader=None, forward=True) == found


def test_the_request_memo_reads_roles_once_and_ends_with_the_request(project, owner, django_assert_num_queries):
    from stories.rules import RoleMemoMiddleware, request_roles

    user = UserFactory(username="memo")
    MemberFactory(project=project, user=user, role="viewer", actor=owner)
    seen = []

    def view(request):
        with django_assert_num_queries(1):
            for _ in range(5):
                seen.append(request_roles(user))
        return "ok"

    assert RoleMemoMiddleware(view)(object()) == "ok"
    assert seen == [{project.pk: "viewer"}] * 5
    # Outside a request nothing is remembered: each call reads the database.
    with django_assert_num_queries(2):
        request_roles(user)
        request_roles(user)


def test_a_refusal_does_not_name_a_project_the_actor_cannot_see():
    from django.core.exceptions import PermissionDenied

    world = build_world()
    with pytest.raises(PermissionDenied) as caught:
        services.dependency_add(actor=world.bee, story=world.b3, depends_on=world.secret)
    assert not any(marker in str(caught.value) for marker in MARKERS)
    with pytest.raises(PermissionDenied) as caught:
        require_project_role(world.bee, world.beta, "admin")
    assert "beta-proj" in str(caught.value)  # a project it sees is named


def test_a_link_to_a_hidden_story_is_not_the_member_s_to_see_or_remove():
    from stories.models import StoryDependency

    world = build_world()
    hidden = StoryDependency.objects.get(story=world.b1, depends_on=world.secret)
    services.dependency_add(actor=world.owner, story=world.b1, depends_on=world.b3)
    visible = StoryDependency.objects.get(story=world.b1, depends_on=world.b3)
    for perm in ("view", "change", "delete"):
        assert world.bee.has_perm(f"stories.{perm}_storydependency", visible)
        assert not world.bee.has_perm(f"stories.{perm}_storydependency", hidden)
    assert world.owner.has_perm("stories.delete_storydependency", hidden)
