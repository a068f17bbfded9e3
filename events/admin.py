"""Webhook endpoints, deliveries (with their attempt log) and the outbox in the admin.
Endpoints and deliveries are their project's admins' (global endpoints: superusers');
every write calls events.services. The outbox is read-only, filtered by the audit rule
(events.selectors), with the hidden side of a link redacted."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from audit.models import OutboxEvent
from audit.selectors import audit_details_for
from stories.models import Project, ProjectMember
from storyhub.admin_base import (
    ProjectScopedMixin,
    ReadOnlyAdminMixin,
    ServiceAdminMixin,
    changed_values,
    has_role,
    project_ids_with_role,
    service_call,
)

from . import selectors, services
from .models import Delivery, DeliveryAttempt, WebhookEndpoint

Role = ProjectMember.Role
NO_PROJECT = -1  # a global endpoint's "project": no role reaches it, only superusers


class _GlobalIsSuperusersMixin(ProjectScopedMixin):
    def project_id_of(self, obj) -> int | None:
        if obj is None:
            return None
        project_id = super().project_id_of(obj)
        return NO_PROJECT if project_id is None else project_id


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdminMixin, _GlobalIsSuperusersMixin, admin.ModelAdmin):
    view_role = add_role = change_role = delete_role = Role.ADMIN
    list_display = ("url", "project", "active", "event_types", "disabled_reason", "created_at")
    list_filter = ("active",)
    search_fields = ("url", "description")
    ordering = ("id",)
    list_select_related = ("project",)
    fields = (
        "project",
        "url",
        "description",
        "event_types",
        "active",
        "secret_prefix",
        "disabled_reason",
        "disabled_at",
        "created_by",
        "created_at",
        "version",
    )
    readonly_fields = ("secret_prefix", "disabled_reason", "disabled_at", "created_by", "created_at", "version")
    actions = ["send_test_ping"]

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        base = tuple(super().get_readonly_fields(request, obj))
        return ("project", *base) if obj else base

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":
            projects = Project.objects.order_by("slug")
            if not request.user.is_superuser:
                projects = projects.filter(pk__in=project_ids_with_role(request, Role.ADMIN))
            kwargs["queryset"] = projects
            kwargs["help_text"] = "Empty: a global endpoint, receiving every event (superusers only)."
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def service_create(self, request, form):
        data = form.cleaned_data
        endpoint, secret = services.endpoint_create(
            actor=request.user,
            project=data.get("project"),
            url=data["url"],
            event_types=data.get("event_types") or [],
            description=data.get("description", ""),
        )
        self.message_user(request, f"The signing secret, shown this once (copy it now): {secret}", messages.WARNING)
        return endpoint

    def service_update(self, request, original, form):
        return services.endpoint_update(
            actor=request.user, endpoint=original, data=changed_values(form, services.EDITABLE)
        )

    def service_delete(self, request, obj):
        services.endpoint_delete(actor=request.user, endpoint=obj)

    @admin.action(description="Send a test ping", permissions=["change"])
    def send_test_ping(self, request, queryset):
        for endpoint in queryset:
            with service_call(context=str(endpoint)):
                services.endpoint_ping(actor=request.user, endpoint=endpoint)
        self.message_user(request, f"{queryset.count()} ping(s) queued; see Deliveries.")


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "manual", "started_at", "duration_ms", "status_code", "ok", "error", "response_excerpt")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "attempts"

    def has_view_permission(self, request, obj=None):
        return True  # the delivery's page decides who sees it

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, _GlobalIsSuperusersMixin, admin.ModelAdmin):
    project_path = "endpoint__project"
    view_role = Role.ADMIN
    list_display = ("message_id", "event_type", "endpoint", "state", "attempts", "last_status_code", "next_attempt_at")
    list_filter = ("state", "kind")
    search_fields = ("message_id", "event_type", "endpoint__url")
    ordering = ("-id",)
    list_select_related = ("endpoint", "endpoint__project")
    fields = (
        "message_id",
        "kind",
        "event_type",
        "endpoint",
        "seq",
        "state",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "completed_at",
        "payload_pretty",
    )
    readonly_fields = fields
    inlines = [AttemptInline]
    actions = ["redeliver_selected"]

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def has_redeliver_permission(self, request):
        return has_role(request, None, Role.ADMIN)

    @admin.action(description="Redeliver now", permissions=["redeliver"])
    def redeliver_selected(self, request, queryset):
        for delivery in queryset.select_related("endpoint__project"):
            with service_call(context=delivery.message_id):
                services.delivery_redeliver(actor=request.user, delivery=delivery)
        self.message_user(request, f"{queryset.count()} redelivery(ies) queued.")

    @admin.display(description="body")
    def payload_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True, ensure_ascii=False))


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("seq", "type", "occurred_at", "project_id", "entity_type", "entity_id", "actor_repr")
    list_filter = ("type", "entity_type")
    search_fields = ("type", "entity_id", "actor_repr", "request_id")
    ordering = ("-id",)
    show_full_result_count = False
    fields = (
        "id",
        "seq",
        "type",
        "occurred_at",
        "project_id",
        "entity_type",
        "entity_id",
        "actor_repr",
        "request_id",
        "audit_id",
        "data_pretty",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return selectors.outbox_list_for(user=request.user).order_by(*self.ordering)

    def has_module_permission(self, request):
        return selectors.sees_every_event(request.user) or has_role(request, None, Role.VIEWER)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    @admin.display(description="data")
    def data_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, sort_keys=True, ensure_ascii=False))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # Shown, never saved: the hidden side of a link is redacted (the audit rule).
            obj.data = audit_details_for(
                user=request.user,
                row={"entity_type": obj.entity_type, "project_id": obj.project_id, "details": obj.data},
            )
        return obj
