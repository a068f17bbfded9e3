"""Sessions and API keys in the admin; users get a "revoke all sessions" action, and
their creation, edits and password changes are saved through the services (audited).

Sessions: list and revoke (one, selected, or every session of a user) through
sessions_app.services, so each revocation is audited. API keys: created here (the key
is shown once, in a message, and only its hash is stored), listed, revoked; never
edited or deleted (revoking keeps the record of the key). Who may do what is
sessions_app.permissions: every staff user manages their own keys; the view permission
only lists other users' keys; only superusers create keys for other users."""

from __future__ import annotations

import contextvars

from axes import admin as axes_admin  # registers axes' admins first, so the one below replaces it
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html

from storyhub.admin_base import (
    SERVICE_ERRORS,
    ServiceAdminMixin,
    ServiceFailed,
    copy_saved,
    error_text,
    service_call,
)

from . import permissions as policy
from . import services
from .models import ApiKey, Session

User = get_user_model()


def _revoke_all_for_users(modeladmin, request, users) -> None:
    total = 0
    for user in users:
        with service_call(context=user.get_username()):
            total += services.session_revoke_all_for_user(actor=request.user, user=user)
    modeladmin.message_user(request, f"Revoked {total} session(s) of {len(users)} user(s).", messages.SUCCESS)


class ActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("expired", "expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(expire__gt=now)
        if self.value() == "expired":
            return queryset.filter(expire__lte=now)
        return queryset


@admin.register(Session)
class SessionAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = (
        "short_sid",
        "user",
        "ip_address",
        "short_user_agent",
        "created_at",
        "last_activity",
        "expire",
        "active",
    )
    list_filter = (ActiveFilter, ("user", admin.RelatedOnlyFieldListFilter))
    search_fields = ("user__username", "user__email", "ip_address", "user_agent")
    ordering = ("-last_activity",)
    list_select_related = ("user",)
    # The session data itself (`sess`) holds secrets such as the auth hash: never shown.
    fields = ("short_sid", "user", "ip_address", "user_agent", "created_at", "last_activity", "expire", "active")
    readonly_fields = fields
    actions = ("revoke_selected", "revoke_all_of_users")

    def get_search_fields(self, request):
        return policy.search_fields_without_email(request.user, super().get_search_fields(request))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "revoke" says what it does
        return actions

    @admin.display(description="session")
    def short_sid(self, obj):
        return f"{obj.sid[:8]}…"

    @admin.display(description="user agent")
    def short_user_agent(self, obj):
        return obj.user_agent if len(obj.user_agent) <= 60 else obj.user_agent[:59] + "…"

    @admin.display(boolean=True)
    def active(self, obj):
        return obj.expire > timezone.now()

    def service_delete(self, request, obj):
        services.session_revoke(actor=request.user, session=obj)

    @admin.action(description="Revoke the selected sessions", permissions=["delete"])
    def revoke_selected(self, request, queryset):
        count = 0
        for session in queryset:
            with service_call(context=str(session)):
                services.session_revoke(actor=request.user, session=session)
            count += 1
        self.message_user(request, f"Revoked {count} session(s).", messages.SUCCESS)

    @admin.action(description="Revoke every session of these sessions' users", permissions=["delete"])
    def revoke_all_of_users(self, request, queryset):
        users = list(User.objects.filter(pk__in=queryset.exclude(user=None).values("user_id")))
        _revoke_all_for_users(self, request, users)


class ApiKeyCreateForm(forms.ModelForm):
    expires_days = forms.IntegerField(
        required=False, min_value=1, label="Expires after (days)", help_text="Empty: the key does not expire."
    )

    class Meta:
        model = ApiKey
        fields = ("user", "name", "read_only")


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ("name", "prefix_display", "user", "scope", "last_used_at", "expires_at", "revoked_at", "active")
    list_filter = ("read_only", ("revoked_at", admin.EmptyFieldListFilter), ("user", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "prefix", "user__username")
    ordering = ("-created_at",)
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    actions = ("revoke_selected",)
    readonly_fields = (
        "name",
        "prefix_display",
        "user",
        "scope",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "active",
    )

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if policy.may_see_all_keys(request.user) else qs.filter(user=request.user)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        if not (request.user.is_active and request.user.is_staff):
            return False
        return obj is None or policy.may_see_all_keys(request.user) or obj.user_id == request.user.pk

    def has_add_permission(self, request):
        # Every staff user may make keys for themselves; the owner field is for superusers.
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request, obj=None):
        # Keys are never edited; revoking is an action (see `has_revoke_permission`).
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_revoke_permission(self, request):
        # Own keys always; other users' keys as sessions_app.permissions.may_revoke_key says
        # (checked for each key by the service).
        return request.user.is_active and request.user.is_staff

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            base = ("user", "name", "read_only", "expires_days")
            return base if request.user.is_superuser else base[1:]
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    @admin.display(description="prefix", ordering="prefix")
    def prefix_display(self, obj):
        return format_html("<code>{}…</code>", obj.prefix)

    @admin.display(description="scope", ordering="read_only")
    def scope(self, obj):
        return "read-only" if obj.read_only else "read-write"

    @admin.display(boolean=True)
    def active(self, obj):
        return obj.is_active

    def save_model(self, request, obj, form, change):
        user = form.cleaned_data.get("user") if request.user.is_superuser else request.user
        with service_call():
            key, plaintext = services.api_key_create(
                actor=request.user,
                user=user,
                name=form.cleaned_data["name"],
                read_only=form.cleaned_data.get("read_only", False),
                expires_days=form.cleaned_data.get("expires_days"),
            )
        copy_saved(key, obj)
        # Shown once: only the hash is stored. (The message travels in the signed
        # messages cookie to the next page, not in the database.)
        self.message_user(
            request,
            format_html(
                "The new API key for {} is <code>{}</code> — copy it now; it will not be shown again.",
                user.get_username(),
                plaintext,
            ),
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected keys", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        count = 0
        for key in queryset.filter(revoked_at=None):
            with service_call(context=key.name):
                services.api_key_revoke(actor=request.user, key=key)
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


# The auth app's user admin, plus: staff may pick users in autocomplete fields (project
# members, owners) by exact username without the right to browse or edit users, and a
# revoke-all action.
# Users are deactivated, not deleted (see has_delete_permission).
if admin.site.is_registered(User):
    admin.site.unregister(User)


# The admin's password form saves through sessions_app.services.user_save like the other
# user forms; the view sets who is acting, since the form is built without the request.
_password_actor: contextvars.ContextVar = contextvars.ContextVar("storyhub_password_actor")


class AuditedPasswordChangeForm(AdminPasswordChangeForm):
    def save(self, commit=True):
        user = self.set_password_and_save(self.user, commit=False)
        return services.user_save(actor=_password_actor.get(None), user=user) if commit else user


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    actions = ("revoke_all_sessions",)
    change_password_form = AuditedPasswordChangeForm
    # Only superusers change these (sessions_app.permissions.may_change_access).
    access_fields = ("is_superuser", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if policy.may_change_access(request.user) else fields + self.access_fields

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or policy.may_change_user(request.user, obj))

    def has_revoke_sessions_permission(self, request):
        return request.user.has_perm("sessions_app.delete_session")

    # Creating and editing users goes through the services, so each change is audited.
    def save_model(self, request, obj, form, change):
        services.user_save(actor=request.user, user=obj)

    def save_related(self, request, form, formsets, change):
        data = form.cleaned_data
        services.user_set_access(
            actor=request.user, user=form.instance, groups=data.get("groups"), permissions=data.get("user_permissions")
        )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def user_change_password(self, request, id, form_url=""):
        token = _password_actor.set(request.user)
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _password_actor.reset(token)

    def has_view_permission(self, request, obj=None):
        if super().has_view_permission(request, obj):
            return True
        match = getattr(request, "resolver_match", None)
        is_autocomplete = match is not None and match.url_name == "autocomplete"
        return obj is None and is_autocomplete and request.user.is_active and request.user.is_staff

    def get_search_results(self, request, queryset, search_term):
        if policy.may_browse_users(request.user):
            return super().get_search_results(request, queryset, search_term)
        # Staff who may not browse users (they reach this only through autocomplete, to
        # pick a project member or owner) find a user only by their exact username: no
        # listing, no matching on email or names, so nobody can enumerate accounts.
        term = search_term.strip()
        return (queryset.filter(username__iexact=term) if term else queryset.none()), False

    def has_delete_permission(self, request, obj=None):
        # Deactivate users instead: deleting one would drop their memberships, sessions and
        # keys without audit rows, and blank "changed by" in the status history.
        return False

    @admin.action(description="Revoke every session of the selected users", permissions=["revoke_sessions"])
    def revoke_all_sessions(self, request, queryset):
        try:
            with transaction.atomic():
                _revoke_all_for_users(self, request, list(queryset))
        except ServiceFailed as failed:
            self.message_user(request, f"Nothing was changed. {failed.text}", messages.ERROR)
        except SERVICE_ERRORS as exc:
            self.message_user(request, error_text(exc), messages.ERROR)


# django-axes' login-attempt admin, whose cleanup action deletes rows without asking for
# any permission (a view-only staff user was offered it): here it needs the delete permission.
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    actions = ["cleanup_expired_attempts"]

    @admin.action(description="Clean up expired attempts", permissions=["delete"])
    def cleanup_expired_attempts(self, request, queryset):
        return super().cleanup_expired_attempts(request, queryset)


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, AccessAttemptAdmin)
