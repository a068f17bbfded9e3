"""The audit log in the admin: read-only for everyone (no add, change or delete, even
for superusers), filterable, each row linked to the entity it concerns."""

from __future__ import annotations

import json

from django.contrib import admin
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from storyhub.admin_base import ReadOnlyAdminMixin, admin_roles, has_role

from .models import AuditLog

# entity_type → admin URL name of its change page.
ENTITY_ADMIN = {
    "project": "admin:stories_project_change",
    "story": "admin:stories_story_change",
    "backlog": "admin:stories_backlog_change",
    "status": "admin:stories_status_change",
    "epic": "admin:stories_epic_change",
    "projectmember": "admin:stories_projectmember_change",
    "story_dependency": "admin:stories_storydependency_change",
    "project_dependency": "admin:stories_projectdependency_change",
    "api_key": "admin:sessions_app_apikey_change",
    "user": "admin:auth_user_change",
}


def sees_every_row(user) -> bool:
    """Superusers and auditors (given the audit.view_auditlog permission) see it all."""
    return user.is_active and user.is_staff and (user.is_superuser or user.has_perm("audit.view_auditlog"))


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("timestamp", "action", "entity_type", "entity_link", "who", "source")
    list_filter = (
        "action",
        "entity_type",
        ("user", admin.RelatedOnlyFieldListFilter),
        ("timestamp", admin.DateFieldListFilter),
    )
    search_fields = ("action", "entity_type", "entity_id", "user_repr")
    ordering = ("-timestamp", "-id")
    date_hierarchy = "timestamp"
    list_per_page = 100
    show_full_result_count = False
    fields = ("timestamp", "action", "entity_type", "entity_id", "entity_link", "user", "user_repr", "details_pretty")
    readonly_fields = fields

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if sees_every_row(request.user):
            return qs
        # Other staff: the rows about projects they belong to.
        from stories.models import Project

        projects = list(Project.objects.filter(pk__in=list(admin_roles(request))).values_list("pk", "slug"))
        return qs.filter(
            Q(details__project__in=[slug for _, slug in projects])
            | Q(entity_type="project", entity_id__in=[str(pk) for pk, _ in projects])
        )

    def has_module_permission(self, request):
        return sees_every_row(request.user) or has_role(request, None, "viewer")

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    @admin.display(description="entity")
    def entity_link(self, obj):
        name = ENTITY_ADMIN.get(obj.entity_type)
        if not name or not obj.entity_id:
            return obj.entity_id or "—"
        try:
            url = reverse(name, args=[obj.entity_id])
        except NoReverseMatch:
            return obj.entity_id
        return format_html('<a href="{}">{} {}</a>', url, obj.entity_type, obj.entity_id)

    @admin.display(description="user", ordering="user_repr")
    def who(self, obj):
        return obj.user_repr or "system"

    @admin.display(description="source")
    def source(self, obj):
        return (obj.details or {}).get("source", "")

    @admin.display(description="details")
    def details_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.details, indent=2, sort_keys=True, ensure_ascii=False))
