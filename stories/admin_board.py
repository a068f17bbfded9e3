"""The admin's board of a project: one column per workflow status (grouped by category),
cards in the project's rank order (models.STORY_RANK_ORDER), a blocked badge naming the
open blockers ("(hidden)" for a story the reader cannot see). Moves go through the
services: a drop on another column (or the card's "Move to" form, the keyboard way) is
stories.services.story_transition with the card's version; a drop inside a column (or the
card's up / down buttons) is story_rank. A refusal comes back with the reason and the
moves allowed. The page reads a constant number of queries whatever the story count."""

from __future__ import annotations

from typing import Any

from django.contrib import admin as _admin
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect, JsonResponse
from django.urls import reverse

from storyhub.errors import ApplicationError, BlockedError, InvalidTransitionError

from . import readiness, selectors, services
from .models import STORY_RANK_ORDER, Project, Status, StatusCategory, Story, StoryDependency
from .rules import HIDDEN_REF

CATEGORY_ORDER = [value for value, _ in StatusCategory.choices]
FILTERS = ("backlog", "epic", "owner", "label")


def board_filters(params) -> dict[str, str]:
    return {name: params.get(name, "").strip() for name in FILTERS if params.get(name, "").strip()}


def _filtered(project: Project, filters: dict[str, str]):
    stories = Story.objects.filter(project=project)
    if "backlog" in filters:
        stories = stories.filter(backlog__slug=filters["backlog"])
    if "epic" in filters:
        stories = stories.filter(epic__slug=filters["epic"])
    if "owner" in filters:
        stories = stories.filter(owner=filters["owner"])
    if "label" in filters:
        # Python-side: a JSON list; exact label match on both databases.
        return [
            s
            for s in stories.select_related("epic", "status").order_by(*STORY_RANK_ORDER)
            if filters["label"] in (s.labels or [])
        ]
    return list(stories.select_related("epic", "status").order_by(*STORY_RANK_ORDER))


def open_blockers(project: Project, story_ids: list[int], reader) -> dict[int, list[str]]:
    """story id → labels of its open `blocks` targets, in one query (HIDDEN_REF for a
    story of a project the reader cannot see)."""
    seen = selectors.reader_visibility(reader)
    rows = (
        StoryDependency.objects.filter(story__project=project, type=readiness.BLOCKING_TYPE)
        .exclude(depends_on__status__category=readiness.DONE_CATEGORY)
        .values_list("story_id", "depends_on__key", "depends_on__project_id", "depends_on__project__slug")
        .order_by("story_id", "depends_on__key")
    )
    wanted = set(story_ids)
    out: dict[int, list[str]] = {}
    for story_id, key, project_id, slug in rows:
        if story_id not in wanted:
            continue
        label = (
            selectors.story_ref(key=key, project_id=project_id, slug=slug, relative_to=project)
            if seen.sees(project_id)
            else HIDDEN_REF
        )
        if not (label == HIDDEN_REF and HIDDEN_REF in out.get(story_id, [])):
            out.setdefault(story_id, []).append(label)
    return out


def allowed_moves(story_status: Status, statuses: list[Status], blocked: bool, guard: bool) -> list[Status]:
    """The statuses the workflow lets the story move to now (the blocked guard included)."""
    return [
        s
        for s in statuses
        if s.pk != story_status.pk
        and story_status.allows(s)
        and not (blocked and guard and readiness.enters_guarded_category(story_status.category, s.category))
    ]


def board_context(project: Project, reader, filters: dict[str, str]) -> dict[str, Any]:
    statuses = sorted(project.statuses.all(), key=lambda s: (CATEGORY_ORDER.index(s.category), s.order, s.slug))
    stories = _filtered(project, filters)
    blockers = open_blockers(project, [s.pk for s in stories], reader)
    guard = readiness.guard_enabled(project)
    columns = {s.pk: {"status": s, "cards": []} for s in statuses}
    for story in stories:
        story.blockers = blockers.get(story.pk, [])
        story.moves = allowed_moves(story.status, statuses, bool(story.blockers), guard)
        columns[story.status_id]["cards"].append(story)
    groups = []
    for category in CATEGORY_ORDER:
        cols = [c for c in columns.values() if c["status"].category == category]
        if cols:
            groups.append({"category": category, "label": StatusCategory(category).label, "columns": cols})
    for cols in (g["columns"] for g in groups):
        for column in cols:
            cards = column["cards"]
            for i, card in enumerate(cards):
                card.prev_key = cards[i - 1].key if i > 0 else ""
                card.next_key = cards[i + 1].key if i + 1 < len(cards) else ""
    return {
        "groups": groups,
        "filters": filters,
        "story_count": len(stories),
        "backlogs": list(project.backlogs.order_by("slug").values_list("slug", flat=True)),
        "epics": list(project.epics.order_by("slug").values_list("slug", flat=True)),
    }


def _refusal(exc: Exception, story: Story, reader) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "message": services_error_text(exc)}
    if isinstance(exc, ApplicationError):
        body["code"] = exc.code
    if isinstance(exc, BlockedError):
        body["blockers"] = list(getattr(exc, "extra", {}).get("blockers", []) or [])
    fresh = Story.objects.select_related("status", "project").get(pk=story.pk)
    statuses = list(fresh.project.statuses.all())
    blocked = bool(open_blockers(fresh.project, [fresh.pk], reader).get(fresh.pk))
    moves = allowed_moves(fresh.status, statuses, blocked, readiness.guard_enabled(fresh.project))
    body["allowed"] = [{"slug": s.slug, "name": s.name} for s in moves]
    body["version"] = fresh.version
    return body


def services_error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(getattr(exc, "message", None) or exc)


def board_move(request, project: Project) -> dict[str, Any]:
    """One move from the board (POST: key, version, and status or before / after)."""
    data = request.POST
    story = Story.objects.select_related("project", "status").filter(project=project, key=data.get("key", "")).first()
    if story is None:
        return {"ok": False, "message": f"No story '{data.get('key', '')}' in this project.", "status": 404}
    try:
        version = int(data.get("version", ""))
    except ValueError:
        version = None
    try:
        if data.get("status"):
            story = services.story_transition(
                actor=request.user, story=story, status=data["status"], expected_version=version, notes="board"
            )
        else:
            anchors = {}
            for name in ("before", "after"):
                if data.get(name):
                    anchors[name] = Story.objects.filter(project=project, key=data[name]).first()
                    if anchors[name] is None:
                        raise ValidationError({name: [f"No story '{data[name]}' in this project."]})
            story = services.story_rank(actor=request.user, story=story, expected_version=version, **anchors)
    except PermissionDenied as exc:
        return {"ok": False, "message": str(exc) or "Your role does not allow this.", "status": 403}
    except (ApplicationError, ValidationError, InvalidTransitionError) as exc:
        return _refusal(exc, story, request.user)
    return {"ok": True, "key": story.key, "status_slug": story.status.slug, "version": story.version}


def board_post_response(request, project: Project):
    result = board_move(request, project)
    code = result.pop("status", 200 if result["ok"] else 409)
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse(result, status=code)
    if result["ok"]:
        messages.success(request, f"{result['key']}: saved.")
    else:
        allowed = ", ".join(m["name"] for m in result.get("allowed", []))
        messages.error(request, f"{result['message']}" + (f" Allowed moves: {allowed}." if allowed else ""))
    url = reverse("admin:stories_project_board", args=[project.pk])
    query = request.GET.urlencode()
    return HttpResponseRedirect(f"{url}?{query}" if query else url)


# --------------------------------------------------------------------------- the story list


def with_readiness(queryset):
    """Stories annotated `is_blocked` (an open `blocks` dependency, hidden ones included:
    stories.readiness) with one EXISTS per row, in the list's own query."""
    from django.db.models import Exists, OuterRef

    open_links = StoryDependency.objects.filter(story=OuterRef("pk")).filter(readiness.open_blocker_q())
    return queryset.annotate(is_blocked=Exists(open_links))


def readiness_label(story) -> str:
    """ "ready", "blocked" or "" for a story annotated by with_readiness."""
    blocked = bool(getattr(story, "is_blocked", False))
    if readiness.is_ready(story.status.category, 1 if blocked else 0):
        return "ready"
    return "blocked" if blocked and story.status.category not in readiness.CLOSED_CATEGORIES else ""


class ReadinessListFilter(_admin.SimpleListFilter):
    """Ready (unstarted and not blocked: what can start now) / blocked / not blocked."""

    title = "readiness"
    parameter_name = "readiness"

    def lookups(self, request, model_admin):
        return [("ready", "ready to start"), ("blocked", "blocked"), ("unblocked", "not blocked")]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        queryset = with_readiness(queryset)
        if value == "ready":
            return queryset.filter(is_blocked=False, status__category=readiness.READY_CATEGORY)
        if value == "blocked":
            return queryset.filter(is_blocked=True).exclude(status__category__in=readiness.CLOSED_CATEGORIES)
        return queryset.filter(is_blocked=False)


# --------------------------------------------------------------------------- the ready queue


def ready_queue(project: Project, limit: int = 200) -> list[Story]:
    """The API's ready order (stories.graph.ready_story_ids: priority, then what a story
    unblocks, then key), each story with `waiting` = how many stories wait for it through
    `blocks` links, in three queries."""
    from django.db.models import Count

    from .graph import ready_story_ids

    ids = ready_story_ids(project=project, limit=limit)
    rows = Story.objects.filter(pk__in=ids).select_related("status", "epic")
    by_id = {s.pk: s for s in rows}
    waiting = dict(
        StoryDependency.objects.filter(depends_on_id__in=ids, type=readiness.BLOCKING_TYPE)
        .values_list("depends_on_id")
        .annotate(n=Count("id"))
        .values_list("depends_on_id", "n")
    )
    out = []
    for story_id in ids:
        if story_id in by_id:
            story = by_id[story_id]
            story.waiting = waiting.get(story_id, 0)
            out.append(story)
    return out
