"""A project's workflow transitions, edited as a matrix of checkboxes (one row per "from"
status, one column per "to" status) instead of each status's raw JSON list, where an
empty list silently meant "any move allowed": here that is a checkbox of its own, "any
status". Saving writes every changed status through services.status_update in one
transaction (all or nothing; each change audited). Also the project's JSON fields
(metadata, settings) shown indented with what StoryHub reads from them."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from storyhub.admin_base import SERVICE_ERRORS, error_text

from . import readiness, services
from .models import Status

JSON_HELP = {
    "metadata": "A JSON object of your own keys (StoryHub stores it and reads nothing from it).",
    "settings": (
        "A JSON object. StoryHub reads: "
        f'"{readiness.GUARD_SETTING}" (true or false, default true: a story waiting on an unfinished '
        "blocker may not enter a started or completed status). Workflow transitions are edited on "
        "the project's Workflow page, not here."
    ),
}


class PrettyJSONWidget(forms.Textarea):
    """JSON shown indented, one key a line (Django's default is one long line)."""

    def __init__(self, attrs=None):
        super().__init__(attrs={"rows": 6, "cols": 60, **(attrs or {})})

    def format_value(self, value):
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
