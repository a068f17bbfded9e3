"""Per-project roles: viewer reads; member writes stories, dependencies and transitions;
admin also manages members, backlogs and the workflow; owner also deletes or archives."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from .models import Project, ProjectMember


def project_role(user, project: Project) -> str | None:
    """The user's role in `project` ("owner" for superusers), or None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return ProjectMember.Role.OWNER
    cache = getattr(user, "_storyhub_roles", None)
    if cache is None:
        cache = user._storyhub_roles = {}
    if project.pk not in cache:
        cache[project.pk] = (
            ProjectMember.objects.filter(project_id=project.pk, user_id=user.pk).values_list("role", flat=True).first()
        )
    return cache[project.pk]


def has_project_role(user, project: Project, role: str) -> bool:
    current = project_role(user, project)
    return current is not None and ProjectMember.RANK[current] >= ProjectMember.RANK[role]


def require_project_role(actor, project: Project, role: str) -> None:
    """Raise PermissionDenied unless `actor` has at least `role` in `project`.

    `actor=None` is the system itself (management commands, imports run by an operator)."""
    if actor is None:
        return
    if not has_project_role(actor, project, role):
        raise PermissionDenied(f"This needs the '{role}' role in project '{project.slug}'.")


def forget_roles(user) -> None:
    """Drop the per-request role cache after memberships change."""
    if user is not None and hasattr(user, "_storyhub_roles"):
        del user._storyhub_roles
