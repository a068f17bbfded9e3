"""Who may see what, and who may do what: StoryHub's one policy module.

A principal sees a project when it holds a role there: viewer < member < admin < owner
(higher roles include the lower ones); a superuser is owner everywhere, an anonymous or
inactive user nowhere. `actor=None` in the services is the system itself (management
commands, imports run by an operator) and may do anything.

Object permissions are registered with the `rules` library, so
``user.has_perm("stories.change_story", story)`` answers through Django's own
object-permission hook (``rules.permissions.ObjectPermissionBackend`` in
AUTHENTICATION_BACKENDS) for the admin, DRF and plain code alike. Without an object
these permissions are never granted: the admin's model-level permissions stay with
Django's ModelBackend.

Nothing here caches roles on the user or the request: each answer is one indexed query
(none for superusers and the anonymous). Callers that need several answers in one
request ask once (`roles_for`, `visibility_for`) and pass the result along.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

import rules
from django.core.exceptions import PermissionDenied

from .models import (
    Backlog,
    Epic,
    Project,
    ProjectDependency,
    ProjectMember,
    Status,
    StatusHistory,
    Story,
    StoryDependency,
)

# How a story of a project the reader cannot see is named: in lists of references (a
# cycle, a blocked error's blockers, audit details) and in drawings (graph renderings).
HIDDEN_REF = "(hidden)"
HIDDEN_STORY_LABEL = "(hidden story)"

Role = ProjectMember.Role
RANK = ProjectMember.RANK
VIEWER, MEMBER, ADMIN, OWNER = Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER


def is_principal(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_active", True)


def role_at_least(current: str | None, minimum: str) -> bool:
    """Does `current` (a role or None) include the rights of `minimum`?"""
    return current is not None and RANK[current] >= RANK[minimum]


def project_id_of(obj) -> int | None:
    """The project an object belongs to (the owning story's for dependencies and
    history, the depending project's for project dependencies)."""
    if isinstance(obj, Project):
        return obj.pk
    if isinstance(obj, Story | Backlog | Epic | Status | ProjectMember):
        return obj.project_id
    if isinstance(obj, StoryDependency | StatusHistory):
        return obj.story.project_id
    if isinstance(obj, ProjectDependency):
        return obj.from_project_id
    return None


def project_role(user, project: Project | int) -> str | None:
    """The user's role in `project` ("owner" for superusers), or None."""
    if not is_principal(user):
        return None
    if user.is_superuser:
        return OWNER
    project_id = project.pk if isinstance(project, Project) else project
    return ProjectMember.objects.filter(project_id=project_id, user_id=user.pk).values_list("role", flat=True).first()


def has_project_role(user, project: Project | int, role: str) -> bool:
    return role_at_least(project_role(user, project), role)


def require_project_role(actor, project: Project, role: str) -> None:
    """Raise PermissionDenied unless `actor` has at least `role` in `project`.

    `actor=None` is the system itself (management commands, imports run by an operator)."""
    if actor is None:
        return
    current = project_role(actor, project)
    if current is None:
        # Not even a viewer: the project is not named (it is hidden from the actor).
        raise PermissionDenied("This needs a role in a project you are not a member of.")
    if not role_at_least(current, role):
        raise PermissionDenied(f"This needs the '{role}' role in project '{project.slug}'.")


def roles_for(user) -> dict[int, str] | None:
    """project id → the user's role, in one query; None means "every project, as owner"
    (superusers and the system, `user=None` is *not* the system here: it sees nothing)."""
    if not is_principal(user):
        return {}
    if user.is_superuser:
        return None
    return dict(ProjectMember.objects.filter(user_id=user.pk).values_list("project_id", "role"))


# Read-only pages (the admin asks "may this user see / change X?" dozens of times per
# page) may share one read of the user's roles for the length of one request. The memo
# lives in a context variable that RoleMemoMiddleware opens and closes around each
# request, never on the user or the request object, and is keyed by the user's id. It
# only ever decides what a page shows: the services check roles against the database on
# every write, so a membership changed during the request can never grant a write.
_request_roles: ContextVar[dict[int, dict[int, str] | None] | None] = ContextVar("storyhub_request_roles", default=None)


def request_roles(user) -> dict[int, str] | None:
    """roles_for(user), read once per request when RoleMemoMiddleware is active."""
    memo = _request_roles.get()
    if memo is None or not is_principal(user):
        return roles_for(user)
    if user.pk not in memo:
        memo[user.pk] = roles_for(user)
    return memo[user.pk]


class RoleMemoMiddleware:
    """Opens the per-request memo of request_roles() and drops it when the request ends."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request_roles.set({})
        try:
            return self.get_response(request)
        finally:
            _request_roles.reset(token)


@dataclass(frozen=True)
class Visibility:
    """Which projects a reader sees, resolved once and passed along (not cached)."""

    everything: bool
    project_ids: frozenset[int] = frozenset()

    def sees(self, project_id: int | None) -> bool:
        return self.everything or project_id in self.project_ids


EVERYTHING = Visibility(everything=True)


def visibility_for(reader, *, system: bool = False) -> Visibility:
    """The projects `reader` may see. `system=True` with `reader=None` is the system
    (a management command, an operator's import): it sees everything."""
    if reader is None and system:
        return EVERYTHING
    roles = roles_for(reader)
    if roles is None:
        return EVERYTHING
    return Visibility(everything=False, project_ids=frozenset(roles))


# --------------------------------------------------------------------------- rules


def _role_predicate(minimum: str) -> rules.Predicate:
    def check(user, obj=None) -> bool:
        if obj is None:
            return False  # model-level permissions are Django's, not ours
        project_id = project_id_of(obj)
        return project_id is not None and has_project_role(user, project_id, minimum)

    return rules.predicate(check, name=f"has_{minimum}_role")


def _link_predicate(minimum: str) -> rules.Predicate:
    """For a story dependency: `minimum` in the depending story's project *and* a role in
    the other story's project. A link to a story the user cannot see is neither shown
    nor changed nor removed by it (README "Visibility")."""

    def check(user, obj=None) -> bool:
        if not isinstance(obj, StoryDependency):
            return False
        return has_project_role(user, obj.story.project_id, minimum) and has_project_role(
            user, obj.depends_on.project_id, VIEWER
        )

    return rules.predicate(check, name=f"has_{minimum}_role_on_link")


is_project_viewer = _role_predicate(VIEWER)
is_project_member = _role_predicate(MEMBER)
is_project_admin = _role_predicate(ADMIN)
is_project_owner = _role_predicate(OWNER)

# permission → the least role that holds it, on the object's project.
PERMISSIONS: dict[str, str] = {
    "stories.view_project": VIEWER,
    "stories.change_project": ADMIN,
    "stories.archive_project": OWNER,
    "stories.delete_project": OWNER,
    "stories.manage_members": ADMIN,
    "stories.manage_owners": OWNER,
    "stories.manage_workflow": ADMIN,
    "stories.add_story": MEMBER,  # on the project
    "stories.view_story": VIEWER,
    "stories.change_story": MEMBER,
    "stories.delete_story": MEMBER,
    "stories.add_storydependency": MEMBER,  # on the story that depends
    "stories.view_statushistory": VIEWER,
    "stories.view_backlog": VIEWER,
    "stories.change_backlog": ADMIN,
    "stories.delete_backlog": ADMIN,
    "stories.view_status": VIEWER,
    "stories.change_status": ADMIN,
    "stories.delete_status": ADMIN,
    "stories.view_epic": VIEWER,
    "stories.change_epic": MEMBER,
    "stories.delete_epic": ADMIN,
    "stories.view_projectmember": VIEWER,
    "stories.view_projectdependency": VIEWER,
    "stories.change_projectdependency": ADMIN,
    "stories.delete_projectdependency": ADMIN,
}
_PREDICATES: dict[str, rules.Predicate] = {
    VIEWER: is_project_viewer,
    MEMBER: is_project_member,
    ADMIN: is_project_admin,
    OWNER: is_project_owner,
}

# On a StoryDependency: the role in the depending story's project, and sight of the other.
LINK_PERMISSIONS: dict[str, str] = {
    "stories.view_storydependency": VIEWER,
    "stories.change_storydependency": MEMBER,
    "stories.delete_storydependency": MEMBER,
}

for _name, _role in PERMISSIONS.items():
    rules.set_perm(_name, _PREDICATES[_role])
for _name, _role in LINK_PERMISSIONS.items():
    rules.set_perm(_name, _link_predicate(_role))
