"""A project's workflow transitions, edited as a matrix of checkboxes (one row per "from"
status, one column per "to" status) instead of each status's raw JSON list, where an
empty list silently meant "any move allowed": here that is a checkbox of its own, "any
status". Saving writes every changed status through services.status_update in one
transaction (all or nothing; each change audited). Also the project's JSON fields
(metadata indented) and the project's settings as one form field per setting StoryHub reads
(stories.project_settings.SCHEMA), and a status's moves as checkboxes on its own form."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from storyhub.admin_base import SERVICE_ERRORS, BoundedJSONFormField, error_text
from storyhub.validators import JSON_MAX_DEPTH, json_text_depth_exceeds

from . import project_settings, services
from .models import DEFAULT_WORKFLOW, PRIORITY_BY_WORD, PRIORITY_WORDS, Project, Status

JSON_HELP = {
    "metadata": "A JSON object of your own keys (StoryHub stores it and reads nothing from it).",
}


class PrettyJSONWidget(forms.Textarea):
    """JSON shown indented, one key a line (Django's default is one long line)."""

    def __init__(self, attrs=None):
        super().__init__(attrs={"rows": 6, "cols": 60, **(attrs or {})})

    def format_value(self, value):
        # Text refused for its depth is shown again as typed: decoding it would recurse.
        if isinstance(value, str) and json_text_depth_exceeds(value, JSON_MAX_DEPTH):
            return super().format_value(value)
        try:
            return json.dumps(json.loads(value), indent=2, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            return super().format_value(value)


def moves_text(status: Status, names: dict[str, str] | None = None) -> str:
    """ "any status" or the names of the statuses `status` may move to."""
    if not status.allowed_transitions:
        return "any status"
    return ", ".join((names or {}).get(slug, slug) for slug in status.allowed_transitions)


def _matrix(statuses: list[Status]) -> list[dict]:
    return [
        {
            "status": source,
            "any": not source.allowed_transitions,
            "cells": [
                {
                    "target": target,
                    "checked": target.slug in (source.allowed_transitions or []),
                    "self": target == source,
                }
                for target in statuses
            ],
        }
        for source in statuses
    ]


def _posted(request, statuses: list[Status]) -> dict[int, list[str]]:
    """status id → the allowed list the form asks for ([] for "any status")."""
    slugs = [s.slug for s in statuses]
    wanted: dict[int, list[str]] = {}
    for source in statuses:
        if request.POST.get(f"any-{source.pk}"):
            wanted[source.pk] = []
            continue
        chosen = set(request.POST.getlist(f"to-{source.pk}"))
        allowed = [slug for slug in slugs if slug in chosen and slug != source.slug]
        if not allowed:
            raise forms.ValidationError(f"'{source.name}' allows no move: tick at least one status, or 'any status'.")
        wanted[source.pk] = allowed
    return wanted


@transaction.atomic
def _save(request, statuses: list[Status], wanted: dict[int, list[str]]) -> int:
    changed = 0
    for status in statuses:
        if list(status.allowed_transitions or []) != wanted[status.pk]:
            services.status_update(actor=request.user, status=status, data={"allowed_transitions": wanted[status.pk]})
            changed += 1
    return changed


def workflow_view(model_admin, request, object_id):
    """The project's transition matrix: read by its viewers, saved by its admins."""
    project = model_admin.get_object(request, object_id)
    if project is None or not model_admin.has_view_permission(request, project):
        raise Http404("No such project.")
    can_change = model_admin.has_change_permission(request, project)
    statuses = list(Status.objects.filter(project=project).order_by("order", "slug"))
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied
        try:
            changed = _save(request, statuses, _posted(request, statuses))
        except forms.ValidationError as error:
            messages.error(request, " ".join(error.messages))
        except SERVICE_ERRORS as error:
            messages.error(request, error_text(error))
        else:
            messages.success(request, f"Workflow saved: {changed} status{'es' if changed != 1 else ''} changed.")
            return HttpResponseRedirect(reverse("admin:stories_project_workflow", args=[project.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": project,
        "title": f"Workflow of {project.name}",
        "rows": _matrix(statuses),
        "statuses": statuses,
        "can_change": can_change,
        "has_view_permission": True,
    }
    return TemplateResponse(request, "admin/stories/project/workflow.html", context)


# --------------------------------------------------------------------------- project settings

CUSTOM_SCALE = "custom"
OTHER_SETTINGS = "other_settings"


def setting_field_name(key: str) -> str:
    return f"setting_{key}"


SCALE_TEXT_FIELD = setting_field_name(project_settings.PRIORITY_SCALE) + "_custom"


def _scale_text(mapping: dict) -> str:
    return ", ".join(f"{number}={word}" for number, word in mapping.items())


def _scale_from_text(text: str) -> dict[str, str]:
    """ "1=critical, 2=high" → {"1": "critical", "2": "high"} (checked by the schema)."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        number, sep, word = part.partition("=")
        if not sep or not number.strip().lstrip("-").isdigit():
            raise forms.ValidationError(f"'{part}' is not number=word (e.g. 1=critical).")
        if word.strip().lower() not in PRIORITY_BY_WORD:
            words = ", ".join(PRIORITY_WORDS.values())
            raise forms.ValidationError(f"'{word.strip()}' is not a priority ({words}).")
        out[number.strip()] = word.strip().lower()
    if not out:
        raise forms.ValidationError("Give at least one number=word pair, or pick a named scale.")
    return out


def _setting_formfield(setting: project_settings.Setting, status_choices: list[tuple[str, str]]) -> forms.Field:
    common = {"label": setting.label, "help_text": setting.help}
    if setting.kind == "bool":
        return forms.BooleanField(required=False, **common)
    if setting.kind == "priority_scale":
        named = [(name, name) for name in project_settings.SCALE_NAMES]
        return forms.ChoiceField(choices=[*named, (CUSTOM_SCALE, "your own mapping (below)")], **common)
    return forms.ChoiceField(choices=status_choices, **common)


class _ProjectSettingsBase(forms.ModelForm):
    """Project form whose `settings` JSON is edited as one field per known setting, plus
    the project's own keys as JSON; clean() assembles `cleaned_data["settings"]`. A known
    setting is written when it was set before or now differs from its default, so saving
    an untouched form changes nothing."""

    class Meta:
        model = Project
        # The admin's form factory sets the fields (ProjectAdmin.get_fields) and builds them
        # with its overrides (the repository URL's https scheme); not listed here, so this
        # base class builds no URL field of its own with Django's deprecated default.
        fields = ("slug", "name", "description", "status", "owner", "submodule_path", "metadata")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.settings if isinstance(self.instance.settings, dict) else {}
        if self.instance.pk:
            statuses = Status.objects.filter(project=self.instance).order_by("order", "slug")
            status_choices = [(s.slug, f"{s.name} ({s.slug})") for s in statuses]
        else:
            status_choices = [(step["slug"], f"{step['name']} ({step['slug']})") for step in DEFAULT_WORKFLOW]
        for setting in project_settings.SCHEMA:
            name = setting_field_name(setting.key)
            value = project_settings.value_of(current, setting.key)
            choices = status_choices
            if setting.kind == "status" and value not in {slug for slug, _ in choices}:
                choices = [*choices, (str(value), f"{value} (not in the workflow)")]
            if name not in self.fields:
                continue
            if setting.kind == "status":
                self.fields[name].choices = choices
            if setting.kind == "priority_scale":
                custom = isinstance(value, dict)
                self.fields[name].initial = CUSTOM_SCALE if custom else value
                if SCALE_TEXT_FIELD in self.fields:
                    self.fields[SCALE_TEXT_FIELD].initial = _scale_text(value) if custom else ""
            else:
                self.fields[name].initial = value
        if OTHER_SETTINGS in self.fields:
            self.fields[OTHER_SETTINGS].initial = {k: v for k, v in current.items() if k not in project_settings.KNOWN}

    def _setting_value(self, setting: project_settings.Setting):
        value = self.cleaned_data.get(setting_field_name(setting.key))
        if setting.kind == "priority_scale" and value == CUSTOM_SCALE:
            return _scale_from_text(self.cleaned_data.get(SCALE_TEXT_FIELD) or "")
        return value

    def clean(self):
        cleaned = super().clean()
        original = self.instance.settings if isinstance(self.instance.settings, dict) else {}
        other = cleaned.get(OTHER_SETTINGS)
        if other in (None, ""):
            other = {}
        if not isinstance(other, dict):
            self.add_error(OTHER_SETTINGS, 'Give a JSON object, e.g. {"team": "core"}.')
            return cleaned
        known = sorted(set(other) & set(project_settings.KNOWN))
        if known:
            self.add_error(
                OTHER_SETTINGS, f"Set {', '.join(known)} with {'its' if len(known) == 1 else 'their'} own field above."
            )
        settings = dict(other)
        status_field = self.fields.get(setting_field_name(project_settings.DEFAULT_STATUS))
        slugs = {slug for slug, _ in status_field.choices} if status_field is not None else None
        for setting in project_settings.SCHEMA:
            name = setting_field_name(setting.key)
            if name not in cleaned:
                continue
            try:
                value = self._setting_value(setting)
                unchanged = value == original.get(setting.key, setting.default)
                project_settings.check(setting.key, value, status_slugs=None if unchanged else slugs)
            except (ValueError, forms.ValidationError) as error:
                field = SCALE_TEXT_FIELD if setting.kind == "priority_scale" else name
                self.add_error(field, error.messages if isinstance(error, forms.ValidationError) else str(error))
                continue
            if setting.key in original or value != setting.default:
                settings[setting.key] = value
        cleaned["settings"] = settings
        return cleaned


def _declared_settings_fields() -> dict[str, forms.Field]:
    """One form field per setting of the schema (choices of a status filled per project)."""
    fields: dict[str, forms.Field] = {}
    for setting in project_settings.SCHEMA:
        fields[setting_field_name(setting.key)] = _setting_formfield(setting, [])
        if setting.kind == "priority_scale":
            fields[SCALE_TEXT_FIELD] = forms.CharField(
                required=False,
                label="Your own scale",
                help_text="Only with 'your own mapping': number=word pairs, e.g. 1=critical, 2=high, 3=medium.",
            )
    fields[OTHER_SETTINGS] = BoundedJSONFormField(
        required=False,
        label="Other settings",
        widget=PrettyJSONWidget,
        help_text="A JSON object of your own keys (StoryHub stores them and reads nothing from them).",
    )
    return fields


ProjectSettingsForm = type(
    "ProjectSettingsForm", (_ProjectSettingsBase,), {"__module__": __name__, **_declared_settings_fields()}
)


def settings_fields() -> list[str]:
    """The project form's settings fields, in the schema's order."""
    names = []
    for setting in project_settings.SCHEMA:
        names.append(setting_field_name(setting.key))
        if setting.kind == "priority_scale":
            names.append(SCALE_TEXT_FIELD)
    return [*names, OTHER_SETTINGS]


def settings_summary(project: Project) -> list[tuple[str, str]]:
    """(label, value) of each known setting and the other keys, for read-only pages."""
    current = project.settings if isinstance(project.settings, dict) else {}
    rows = []
    for setting in project_settings.SCHEMA:
        value = project_settings.value_of(current, setting.key)
        if isinstance(value, bool):
            text = "on" if value else "off"
        elif isinstance(value, dict):
            text = _scale_text(value)
        else:
            text = str(value)
        rows.append((setting.label, text))
    other = {k: v for k, v in current.items() if k not in project_settings.KNOWN}
    if other:
        rows.append(("Other settings", json.dumps(other, ensure_ascii=False, sort_keys=True)))
    return rows


# --------------------------------------------------------------------------- a status's moves

ANY_MOVE_HELP = (
    "Ticked: this status may move to any status of the project's workflow (stored as an empty list, "
    "which is what an empty list has always meant). Unticked: only to the statuses ticked below."
)


class StatusMovesForm(forms.ModelForm):
    """A status's allowed transitions as checkboxes of the same project's statuses, with
    "any move allowed" its own box; clean() sets `cleaned_data["allowed_transitions"]`.
    The project is the status's own (change) or the chosen one (add: `?project=` or the
    posted project; before one is chosen, no target can be ticked)."""

    any_move = forms.BooleanField(label="Any move allowed", required=False, initial=True, help_text=ANY_MOVE_HELP)
    moves_to = forms.MultipleChoiceField(
        label="May move to", required=False, widget=forms.CheckboxSelectMultiple, choices=(), initial=[]
    )

    class Meta:
        model = Status
        fields = ("project", "slug", "name", "category", "order")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        project_id = self.instance.project_id if self.instance.pk else self._chosen_project()
        targets = Status.objects.filter(project_id=project_id).order_by("order", "slug") if project_id else []
        self.fields["moves_to"].choices = [(t.slug, t.name) for t in targets if t.pk != self.instance.pk]
        if not project_id:
            self.fields["moves_to"].help_text = "Choose the project (or open this page from it) to pick statuses."
        if self.instance.pk:
            allowed = list(self.instance.allowed_transitions or [])
            self.fields["any_move"].initial = not allowed
            self.fields["moves_to"].initial = allowed

    def _chosen_project(self) -> int | None:
        chosen = self.data.get("project") or self.initial.get("project")
        return int(chosen) if str(chosen or "").isdigit() else None

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("any_move"):
            if cleaned.get("moves_to"):
                self.add_error("moves_to", "Untick 'Any move allowed' to allow only the statuses ticked here.")
            cleaned["allowed_transitions"] = []
        elif not cleaned.get("moves_to"):
            self.add_error("moves_to", "Tick at least one status this one may move to, or 'Any move allowed'.")
        else:
            order = [slug for slug, _ in self.fields["moves_to"].choices]
            cleaned["allowed_transitions"] = [slug for slug in order if slug in cleaned["moves_to"]]
        return cleaned


def moves_change(form: forms.BaseForm, original: Status | None) -> dict:
    """{"allowed_transitions": …} when the form changes them (for status_update)."""
    wanted = form.cleaned_data.get("allowed_transitions")
    if wanted is None or (original is not None and list(original.allowed_transitions or []) == wanted):
        return {}
    return {"allowed_transitions": wanted}
