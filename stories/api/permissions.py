"""Helpers every project-scoped endpoint uses (also the importer's io_urls views):

- ``get_project_for(request, slug)`` returns the project if request.user may see it, and
  raises Http404 otherwise — a non-member gets exactly what an absent project gets.
- ``require_role(request, project, role)`` raises PermissionDenied (403) unless the user
  has at least ``role`` ("viewer" < "member" < "admin" < "owner") in the project; a
  read-only API key can never pass a role above viewer.
- ``ReadOnlyKeyPermission`` refuses unsafe methods for read-only API keys (403).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404
from rest_framework.permissions import SAFE_METHODS, BasePermission

from stories.models import Project, ProjectMember
from stories.permissions import has_project_role, project_role


def is_read_only_key(request) -> bool:
    return bool(getattr(getattr(request, "auth", None), "read_only", False))


class ReadOnlyKeyPermission(BasePermission):
    message = "This API key is read-only."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or not is_read_only_key(request)


def get_project_for(request, slug: str) -> Project:
    user = request.user
    if user is None or not user.is_authenticated:
        raise Http404
    if user.is_superuser:
        project = Project.objects.filter(slug=slug).first()
    else:
        # One query for the project and the caller's role; the role is cached on the user
        # so the role checks (here and in the services) do not ask again.
        role = ProjectMember.objects.filter(project_id=OuterRef("pk"), user_id=user.pk).values("role")[:1]
        project = Project.objects.filter(slug=slug).annotate(caller_role=Subquery(role)).first()
        if project is not None:
            cache = getattr(user, "_storyhub_roles", None)
            if cache is None:
                cache = user._storyhub_roles = {}
            cache[project.pk] = project.caller_role
    if project is None or project_role(user, project) is None:
        raise Http404
    return project


def require_role(request, project: Project, role: str) -> None:
    if role != ProjectMember.Role.VIEWER and is_read_only_key(request):
        raise PermissionDenied("This API key is read-only.")
    if not has_project_role(request.user, project, role):
        raise PermissionDenied(f"This needs the '{role}' role in project '{project.slug}'.")
