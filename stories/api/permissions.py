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
from django.db import router
from django.db.models import OuterRef, Subquery
from django.http import Http404
from rest_framework.permissions import SAFE_METHODS, BasePermission

from stories.models import Project, ProjectMember
from stories.rules import has_project_role, is_principal
from storyhub.prepared import Prepared


def is_read_only_key(request) -> bool:
    return bool(getattr(getattr(request, "auth", None), "read_only", False))


class ReadOnlyKeyPermission(BasePermission):
    message = "This API key is read-only."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or not is_read_only_key(request)


def project_access(request, slug: str) -> tuple[Project, str]:
    """The project `slug` and the caller's role in it, in one query; Http404 when the
    caller may not see it (exactly what an absent project answers). The role is returned,
    not cached: a later check in the same request asks the policy again."""
    user = request.user
    if not is_principal(user):
        raise Http404
    if user.is_superuser:
        project, role = Project.objects.filter(slug=slug).first(), ProjectMember.Role.OWNER
    else:
        project, role = _project_with_role(slug, user.pk)
    if project is None or role is None:
        raise Http404
    return project, role


_PROJECT_FIELDS = tuple(f.attname for f in Project._meta.concrete_fields)


def _project_and_role_values(slug: str, user_id: int):
    member_role = ProjectMember.objects.filter(project_id=OuterRef("pk"), user_id=user_id).values("role")[:1]
    return Project.objects.filter(slug=slug).values(*_PROJECT_FIELDS, caller_role=Subquery(member_role))


# Every project-scoped request asks this: compiled once (storyhub.prepared).
_PROJECT_AND_ROLE = Prepared(_project_and_role_values, "\x00prepared-project-slug", -7_000_000_001)


def _project_with_role(slug: str, user_id: int) -> tuple[Project | None, str | None]:
    """The project `slug` (slugs are unique) and `user_id`'s role in it (None: not a member)."""
    rows = _PROJECT_AND_ROLE.rows(slug, user_id)
    if not rows:
        return None, None
    row = rows[0]
    project = Project.from_db(
        router.db_for_read(Project) or "default", _PROJECT_FIELDS, [row[f] for f in _PROJECT_FIELDS]
    )
    return project, row["caller_role"]


def get_project_for(request, slug: str) -> Project:
    return project_access(request, slug)[0]


def require_role(request, project: Project, role: str) -> None:
    if role != ProjectMember.Role.VIEWER and is_read_only_key(request):
        raise PermissionDenied("This API key is read-only.")
    if not has_project_role(request.user, project, role):
        raise PermissionDenied(f"This needs the '{role}' role in project '{project.slug}'.")
