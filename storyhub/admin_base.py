"""Shared admin machinery: every admin write goes through a service, and a service's
refusal (ApplicationError, ValidationError, PermissionDenied) comes back as errors on
the form or as a message, never as a 500 and never as a partial write.

How a refused save is shown: the admin's change view runs in one transaction. When a
service refuses inside ``save_model`` / ``save_formset`` we raise ``ServiceFailed``,
which rolls that transaction back (nothing of the request is kept), then render the
same view again with the refusal attached to the form (and to the inline row it
concerns), so the user sees their input with the reason next to it.

Non-superuser staff are scoped by project role (stories.rules) rather than by
Django's model permissions: a viewer sees, a member edits stories, an admin manages the
project's workflow, backlogs and members, an owner may delete the project.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.http import HttpResponseRedirect
from django.urls import reverse

from stories.models import ProjectMember
from stories.rules import request_roles
from storyhub.errors import ApplicationError
from storyhub.validators import JSON_MAX_DEPTH, json_text_depth_exceeds

SERVICE_ERRORS = (ApplicationError, ValidationError, PermissionDenied)

RANK = ProjectMember.RANK


class ServiceFailed(Exception):
    """A service refused a write made from the admin. `prefix` names the (inline) form
    it concerns (None: the main form); `context` says which part of the page it was."""

    def __init__(self, error: Exception, *, prefix: str | None = None, context: str = ""):
        super().__init__(str(error))
        self.error = error
        self.prefix = prefix
        self.context = context

    @property
    def text(self) -> str:
        return error_text(self.error, context=self.context)


# The refusal being shown again (set by ServiceAdminMixin.changeform_view for its second
# rendering): the model admin's form and the inline it concerns read it from here.
_shown_refusal: contextvars.ContextVar[ServiceFailed | None] = contextvars.ContextVar(
    "storyhub_admin_shown_refusal", default=None
)


def error_messages(error: Exception) -> dict[str | None, list[str]]:
    """A service error as field name (None: the whole form) → messages."""
    if isinstance(error, ApplicationError):
        result: dict[str | None, list[str]] = {None: [error.message]}
        for field, items in (error.details or {}).items():
            result.setdefault(field, []).extend(str(item) for item in items)
        return result
    if isinstance(error, ValidationError):
        if hasattr(error, "error_dict"):
            return {
                (None if field == NON_FIELD_ERRORS else field): list(ValidationError(items).messages)
                for field, items in error.error_dict.items()
            }
        return {None: list(error.messages)}
    return {None: [str(error) or "You do not have permission to do this."]}


def error_text(error: Exception, *, context: str = "") -> str:
    """A service error as one line, for messages."""
    if isinstance(error, ApplicationError):
        text = error.message
    else:
        parts = []
        for field, items in error_messages(error).items():
            joined = " ".join(items)
            parts.append(joined if field is None else f"{field}: {joined}")
        text = " ".join(parts)
    return f"{context}: {text}" if context else text


def _visible(form: forms.BaseForm, field: str | None) -> bool:
    return field is not None and field in form.fields and not form.fields[field].widget.is_hidden


def _apply_errors(form: forms.BaseForm, error: Exception) -> None:
    """Put a service error on `form`: next to the field it names when that field is on
    the form, else at the top (naming the field)."""
    by_field = error_messages(error)
    if isinstance(error, ApplicationError):
        # The message says it all; per-field details only help next to a visible field.
        form.add_error(None, error.message)
        by_field.pop(None, None)
        for field, items in by_field.items():
            if _visible(form, field):
                for item in items:
                    form.add_error(field, item)
        return
    for field, items in by_field.items():
        for item in items:
            if _visible(form, field):
                form.add_error(field, item)
            else:
                form.add_error(None, item if field is None else f"{field}: {item}")


def form_with_service_error(form_class: type[forms.BaseForm], failed: ServiceFailed, *, main: bool):
    """`form_class` whose validation also reports `failed`: the main form always (so the
    page cannot be saved again as is), an inline form when its prefix matches."""

    class FormWithServiceError(form_class):  # type: ignore[misc, valid-type]
        def clean(self):
            cleaned = super().clean()
            if main and failed.prefix is None:
                _apply_errors(self, failed.error)
            elif main:
                self.add_error(None, failed.text)
            elif self.prefix == failed.prefix:
                _apply_errors(self, failed.error)
            return cleaned

        def has_changed(self):
            # An untouched extra inline row is skipped by validation; the failed one never is.
            return True if (not main and self.prefix == failed.prefix) else super().has_changed()

    FormWithServiceError.__name__ = form_class.__name__
    return FormWithServiceError


@contextmanager
def service_call(*, prefix: str | None = None, context: str = "") -> Iterator[None]:
    """Turn a service's refusal into ServiceFailed (which the views below catch)."""
    try:
        yield
    except SERVICE_ERRORS as exc:
        raise ServiceFailed(exc, prefix=prefix, context=context) from exc
    except IntegrityError as exc:
        # A concurrent write got there first (e.g. the same key saved twice at once): the
        # form validated, the database said no. Roll back and say so.
        conflict = ValidationError("This conflicts with a change saved meanwhile; reload the page and try again.")
        raise ServiceFailed(conflict, prefix=prefix, context=context) from exc


def copy_saved(source, target) -> None:
    """Put what a service saved into the instance the admin holds (for its redirect,
    log entry and inlines)."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


def formset_changes(formset) -> Iterator[tuple[str, forms.BaseForm, Any]]:
    """("delete" | "change" | "add", form, original) for each row the user touched, deletes
    first. `original` is the row as stored (the form has already changed its instance)."""
    model = formset.model
    deletes, changes, adds = [], [], []
    deleted = {id(form) for form in formset.deleted_forms}  # [] unless can_delete (and valid)
    for form in formset.initial_forms:
        pk = form.instance.pk
        if id(form) in deleted:
            if pk is not None:
                deletes.append(("delete", form, model._default_manager.get(pk=pk)))
        elif form.has_changed():
            changes.append(("change", form, model._default_manager.get(pk=pk)))
    for form in formset.extra_forms:
        if form.has_changed() and id(form) not in deleted:
            adds.append(("add", form, None))
    yield from deletes
    yield from changes
    yield from adds


def changed_values(form: forms.BaseForm, allowed) -> dict[str, Any]:
    return {
        name: form.cleaned_data[name] for name in form.changed_data if name in allowed and name in form.cleaned_data
    }


# --------------------------------------------------------------------------- roles


def admin_roles(request) -> dict[int, str]:
    """project id → the user's role, read once per request (stories.rules.request_roles;
    superusers, who have every role, are answered before this is asked)."""
    return request_roles(request.user) or {}


def has_role(request, project_id: int | None, role: str) -> bool:
    """Superusers have every role; other active staff have their membership's."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    roles = admin_roles(request)
    if project_id is None:
        return any(RANK[r] >= RANK[role] for r in roles.values())
    current = roles.get(project_id)
    return current is not None and RANK[current] >= RANK[role]


def project_ids_with_role(request, role: str) -> list[int]:
    return [pid for pid, r in admin_roles(request).items() if RANK[r] >= RANK[role]]


class ProjectScopedMixin:
    """Role-based permissions for anything that belongs to a project.

    `project_path` is the lookup from the model to its project ("" for Project itself).
    For inlines, the parent object decides (`inline_parent_project_path`)."""

    project_path: str = "project"
    view_role = ProjectMember.Role.VIEWER
    add_role = ProjectMember.Role.MEMBER
    change_role = ProjectMember.Role.MEMBER
    delete_role = ProjectMember.Role.MEMBER

    def project_id_of(self, obj) -> int | None:
        if obj is None:
            return None
        if not self.project_path:
            return obj.pk
        parts = self.project_path.split("__")
        for part in parts[:-1]:
            obj = getattr(obj, part)
        return getattr(obj, f"{parts[-1]}_id")

    def scope_queryset(self, request, qs):
        if request.user.is_superuser:
            return qs
        lookup = f"{self.project_path}__in" if self.project_path else "pk__in"
        return qs.filter(**{lookup: project_ids_with_role(request, ProjectMember.Role.VIEWER)})

    def has_module_permission(self, request):
        return has_role(request, None, ProjectMember.Role.VIEWER)

    def has_view_permission(self, request, obj=None):
        return has_role(request, self.project_id_of(obj), self.view_role)

    def has_add_permission(self, request, *args):
        return has_role(request, None, self.add_role)

    def has_change_permission(self, request, obj=None):
        return has_role(request, self.project_id_of(obj), self.change_role)

    def has_delete_permission(self, request, obj=None):
        return has_role(request, self.project_id_of(obj), self.delete_role)


class BoundedJSONFormField(forms.JSONField):
    """The admin's JSON text box: text nested deeper than a stored value may be is refused
    before it is decoded (Django's decoder would recurse until RecursionError, a 500);
    size and the rest are the model field's validator (storyhub.validators)."""

    def to_python(self, value):
        if isinstance(value, str) and json_text_depth_exceeds(value, JSON_MAX_DEPTH):
            raise ValidationError(f"Nested deeper than {JSON_MAX_DEPTH} levels (the limit for a JSON value).")
        return super().to_python(value)

    def bound_data(self, data, initial):
        # Shown again as typed when refused (re-decoding it would recurse just the same).
        if isinstance(data, str) and json_text_depth_exceeds(data, JSON_MAX_DEPTH):
            return forms.fields.InvalidJSONInput(data)
        return super().bound_data(data, initial)


def bounded_json_formfield(db_field, kwargs: dict[str, Any]) -> dict[str, Any]:
    """formfield_for_dbfield kwargs giving a JSONField the bounded form field."""
    if isinstance(db_field, models.JSONField):
        kwargs.setdefault("form_class", BoundedJSONFormField)
    return kwargs


class ServiceAdminMixin:
    """ModelAdmin views that show ServiceFailed as form errors or messages.

    Subclasses implement `service_create(request, form)` → saved object,
    `service_update(request, original, form)` and `service_delete(request, obj)`."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        return super().formfield_for_dbfield(db_field, request, **bounded_json_formfield(db_field, kwargs))

    def service_create(self, request, form):
        raise NotImplementedError

    def service_update(self, request, original, form):
        raise NotImplementedError

    def service_delete(self, request, obj):
        raise NotImplementedError

    # --- writes
    def save_model(self, request, obj, form, change):
        with service_call():
            if change:
                saved = self.service_update(request, type(obj)._default_manager.get(pk=obj.pk), form)
            else:
                saved = self.service_create(request, form)
        if saved is not None:
            copy_saved(saved, obj)

    def delete_model(self, request, obj):
        with service_call():
            self.service_delete(request, obj)

    def delete_queryset(self, request, queryset):
        # All or nothing: response_action below rolls back on the first refusal.
        for obj in queryset:
            with service_call(context=str(obj)):
                self.service_delete(request, obj)

    def get_deleted_objects(self, objs, request):
        # The delete service checks the role and removes what belongs to the object (its
        # history too, which no one may delete by hand), so only the role counts here.
        to_delete, model_count, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return to_delete, model_count, set(), protected

    def save_formset(self, request, form, formset, change):
        inline = getattr(formset, "storyhub_inline", None)
        parent = form.instance
        # What the admin's change message (LogEntry) reads after formset.save().
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for kind, row, original in formset_changes(formset):
            if inline is None:
                # A read-only inline (e.g. status history): rows cannot change through it.
                raise ServiceFailed(PermissionDenied("This part of the page is read-only."), prefix=row.prefix)
            with service_call(prefix=row.prefix, context=str(inline.verbose_name_plural).capitalize()):
                if kind == "delete":
                    inline.service_delete(request, parent, original)
                    formset.deleted_objects.append(original)
                elif kind == "change":
                    saved = inline.service_update(request, parent, original, row)
                    formset.changed_objects.append((saved or original, row.changed_data))
                else:
                    saved = inline.service_create(request, parent, row)
                    formset.new_objects.append(saved or row.instance)

    # --- views
    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        failed = _shown_refusal.get()
        return form_with_service_error(form, failed, main=True) if failed else form

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceFailed as failed:
            # The write was rolled back; show the form again with the reason on it.
            token = _shown_refusal.set(failed)
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceFailed as failed:  # pragma: no cover - the form above cannot validate
            self.message_user(request, failed.text, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        finally:
            _shown_refusal.reset(token)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            with transaction.atomic():
                return super().delete_view(request, object_id, extra_context)
        except ServiceFailed as failed:
            self.message_user(request, f"Nothing was deleted. {failed.text}", messages.ERROR)
            opts = self.model._meta
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id]))

    def response_action(self, request, queryset):
        try:
            with transaction.atomic():
                return super().response_action(request, queryset)
        except ServiceFailed as failed:
            self.message_user(request, f"Nothing was changed. {failed.text}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def _labelled_add_fields(formset):
    """A tabular inline shows its fields' labels once, as column headers, so each field
    gets an accessible name of its own ("Type, row 2"; axe: label / select-name)."""
    base = formset.add_fields

    def add_fields(self, form, index):
        base(self, form, index)
        row = "new row" if index is None else f"row {index + 1}"
        for name, field in form.fields.items():
            field.widget.attrs.setdefault("aria-label", f"{field.label or name}, {row}")

    return add_fields


class ServiceInlineMixin:
    """An inline whose rows are written by services. Subclasses implement
    `service_create(request, parent, form)`, `service_update(request, parent, original,
    form)` and `service_delete(request, parent, original)`; permissions follow the
    parent's project (`parent_project_id`)."""

    view_role = ProjectMember.Role.VIEWER
    add_role = ProjectMember.Role.MEMBER
    change_role = ProjectMember.Role.MEMBER
    delete_role = ProjectMember.Role.MEMBER

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        return super().formfield_for_dbfield(db_field, request, **bounded_json_formfield(db_field, kwargs))

    def parent_project_id(self, parent) -> int | None:
        return None if parent is None else parent.project_id

    def service_create(self, request, parent, form):
        raise NotImplementedError

    def service_update(self, request, parent, original, form):
        raise NotImplementedError

    def service_delete(self, request, parent, original):
        raise NotImplementedError

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        attrs: dict[str, Any] = {"storyhub_inline": self, "add_fields": _labelled_add_fields(formset)}
        failed = _shown_refusal.get()
        if failed is not None and failed.prefix is not None:
            attrs["form"] = form_with_service_error(formset.form, failed, main=False)
        return type(formset.__name__, (formset,), attrs)

    # On the parent's add page: True when whoever creates the parent becomes its owner.
    creator_owns_parent = False

    def _allowed(self, request, parent, role: str) -> bool:
        if parent is None and self.creator_owns_parent:
            return request.user.is_active and request.user.is_staff
        return has_role(request, self.parent_project_id(parent), role)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj, self.view_role)

    def has_add_permission(self, request, obj=None):
        return self._allowed(request, obj, self.add_role)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj, self.change_role)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj, self.delete_role)


class ReadOnlyAdminMixin:
    """Nothing can be added, changed or deleted here, by anyone."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def admin_change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
