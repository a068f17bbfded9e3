"""The audit log in the admin: read-only for everyone (no add, change or delete, even
for superusers), filterable, each row linked to the entity it concerns. Which rows a
user reads is decided by audit.selectors (the same rule as the API)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from storyhub.admin_base import ReadOnlyAdminMixin, has_role

from .events import EntityType
from .models import AuditLog
from .selectors import audit_details_for, audit_list_for, audit_sees_all

# entity_type → admin URL name of its change page.
ENTITY_ADMIN = {
    EntityType.PROJECT: "admin:stories_project_change",
    EntityType.STORY: "admin:stories_story_change",
    EntityType.BACKLOG: "admin:stories_backlog_change",
    EntityType.STATUS: "admin:stories_status_change",
    EntityType.EPIC: "admin:stories_epic_change",
    EntityType.PROJECT_MEMBER: "admin:stories_projectmember_change",
    EntityType.STORY_DEPENDENCY: "admin:stories_storydependency_change",
    EntityType.PROJECT_DEPENDENCY: "admin:stories_projectdependency_change",
    EntityType.API_KEY: "admin:sessions_app_apikey_change",
    EntityType.USER: "admin:auth_user_change",
}


def sees_every_row(user) -> bool:
    """Superusers and auditors (given the audit.view_auditlog permission) see it all."""
    return audit_sees_all(user)


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
    fields = (
        "timestamp",
        "action",
        "entity_type",
        "entity_id",
        "entity_link",
        "project_id",
        "user",
        "user_repr",
        "details_pretty",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        # Superusers and auditors: every row; other staff: the rows of their projects.
        return audit_list_for(user=request.user).order_by(*self.ordering)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # Shown, never saved (the row is append-only): a hidden side of a link is redacted.
            obj.details = audit_details_for(user=request.user, row=obj)
        return obj

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
