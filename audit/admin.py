"""The audit log in the admin: read-only for everyone (no add, change or delete, even
for superusers), filterable (by project too), each row saying what it is about
("PP-041 — title", its project) and what changed (old → new), linked to the entity it
concerns; the detail page shows the change as a table. Which rows a user reads, and what
a row may say about a project the user cannot see, is decided by audit.selectors (the
same rule as the API)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from storyhub.admin_base import ReadOnlyAdminMixin, has_role

from .events import EntityType
from .models import AuditLog
from .selectors import audit_details_for, audit_labels, audit_list_for, audit_project_q, audit_sees_all

CHANGE_VALUE_MAX = 40  # characters of an old or new value in the list
CHANGES_IN_LIST = 3  # fields of a change shown in the list (the rest on the detail page)

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


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = "—" if text in ("", "null") else text
    return text if len(text) <= CHANGE_VALUE_MAX else text[: CHANGE_VALUE_MAX - 1] + "…"


def _plain(value) -> str:
    if value is None or value == "":
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1)


class ProjectFilter(admin.SimpleListFilter):
    """The rows of one project the user may read (its own and the links naming it)."""

    title = "project"
    parameter_name = "project"

    def lookups(self, request, model_admin):
        from stories.selectors import project_list_for_user

        return [(str(pk), slug) for pk, slug in project_list_for_user(user=request.user).values_list("pk", "slug")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value or not value.isdigit():
            return queryset
        if not any(value == pk for pk, _ in self.lookup_choices):
            return queryset.none()  # not a project of this user's
        return queryset.filter(audit_project_q(int(value)))


class LabelledChangeList(ChangeList):
    """Reads the labels of the page's rows in a fixed number of queries."""

    def get_results(self, request):
        super().get_results(request)
        labels = audit_labels(user=request.user, rows=list(self.result_list))
        for row in self.result_list:
            row.labels = labels[row.pk]


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("timestamp", "action", "entity_link", "project", "change", "who", "source")
    list_filter = (
        ProjectFilter,
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
        "project",
        "user_repr",
        "change_table",
        "details_table",
    )
    readonly_fields = fields

    def get_changelist(self, request, **kwargs):
        return LabelledChangeList

    def get_queryset(self, request):
        # Superusers and auditors: every row; other staff: the rows of their projects.
        return audit_list_for(user=request.user).order_by(*self.ordering)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # Shown, never saved (the row is append-only): a hidden side of a link is redacted.
            obj.details = audit_details_for(user=request.user, row=obj)
            obj.labels = audit_labels(user=request.user, rows=[obj])[obj.pk]
        return obj

    def has_module_permission(self, request):
        return sees_every_row(request.user) or has_role(request, None, "viewer")

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    @admin.display(description="about")
    def entity_link(self, obj):
        labels = getattr(obj, "labels", None) or {"entity": f"{obj.entity_type} {obj.entity_id}", "exists": True}
        text = f"{obj.entity_type}: {labels['entity']}" if obj.entity_type != "story" else labels["entity"]
        name = ENTITY_ADMIN.get(obj.entity_type)
        if not name or not obj.entity_id or not labels["exists"]:
            return text
        try:
            url = reverse(name, args=[obj.entity_id])
        except NoReverseMatch:
            return text
        return format_html('<a href="{}">{}</a>', url, text)

    @admin.display(description="project")
    def project(self, obj):
        return (getattr(obj, "labels", None) or {}).get("project") or "—"

    @admin.display(description="change (old → new)")
    def change(self, obj):
        changes = (obj.details or {}).get("changes") or {}
        if not changes:
            return "—"
        shown = list(changes.items())[:CHANGES_IN_LIST]
        text = format_html_join(
            "; ",
            "{}: {} → {}",
            ((field, _short(c.get("old")), _short(c.get("new"))) for field, c in shown if isinstance(c, dict)),
        )
        more = len(changes) - len(shown)
        return format_html("{} (+{} more)", text, more) if more else text

    @admin.display(description="user", ordering="user_repr")
    def who(self, obj):
        return obj.user_repr or "system"

    @admin.display(description="source")
    def source(self, obj):
        return (obj.details or {}).get("source", "")

    @admin.display(description="changes")
    def change_table(self, obj):
        changes = (obj.details or {}).get("changes") or {}
        if not changes:
            return "No field changed (see the details)."
        rows = format_html_join(
            "",
            '<tr><th scope="row">{}</th><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>',
            (
                (field, _plain(c.get("old")), _plain(c.get("new")))
                for field, c in changes.items()
                if isinstance(c, dict)
            ),
        )
        return format_html(
            '<table class="storyhub-audit-changes"><thead><tr><th scope="col">field</th>'
            '<th scope="col">old</th><th scope="col">new</th></tr></thead><tbody>{}</tbody></table>',
            rows,
        )

    @admin.display(description="details")
    def details_table(self, obj):
        rest = {k: v for k, v in (obj.details or {}).items() if k != "changes"}
        if not rest:
            return "—"
        rows = format_html_join(
            "",
            '<tr><th scope="row">{}</th><td><pre>{}</pre></td></tr>',
            ((k, _plain(v)) for k, v in sorted(rest.items())),
        )
        return format_html('<table class="storyhub-audit-details"><tbody>{}</tbody></table>', rows)
