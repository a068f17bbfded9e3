"""The admin's front page: per project the reader can see, how many stories are in each
status category, how many are ready and blocked (stories.readiness, the one rule; a
blocker in a project the reader cannot see counts, as everywhere, but is not named),
points done / total, and the latest audited changes the reader may read
(audit.selectors). A fixed number of queries whatever the number of projects and stories."""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse

from audit.selectors import audit_labels, audit_list_for

from . import readiness
from .models import StatusCategory, Story, StoryDependency
from .selectors import project_list_for_user

RECENT_CHANGES = 12
CATEGORIES = [(value, label) for value, label in StatusCategory.choices]


def _empty(project) -> dict:
    return {
        "project": project,
        "total": 0,
        "categories": dict.fromkeys((value for value, _ in CATEGORIES), 0),
        "ready": 0,
        "blocked": 0,
        "points_done": 0.0,
        "points_total": 0.0,
        "stories_url": reverse("admin:stories_story_changelist") + f"?project__id__exact={project.pk}",
        "graph_url": reverse("admin:stories_project_graph", args=[project.pk]),
    }


def project_summaries(*, user) -> list[dict]:
    """One summary per project `user` may see, by slug (two queries)."""
    projects = list(project_list_for_user(user=user).order_by("slug"))
    summaries = {p.pk: _empty(p) for p in projects}
    if not projects:
        return []
    waiting = StoryDependency.objects.filter(story=OuterRef("pk")).filter(readiness.open_blocker_q())
    rows = (
        Story.objects.filter(project_id__in=list(summaries))
        .annotate(waits=Exists(waiting))
        .values("project_id", "status__category", "waits")
        .annotate(n=Count("id"), points=Sum(Coalesce("points_max", "points_min")))
        .order_by()
    )
    for row in rows:
        summary = summaries[row["project_id"]]
        category, n, points = row["status__category"], row["n"], float(row["points"] or 0)
        open_blockers = 1 if row["waits"] else 0
        summary["total"] += n
        summary["categories"][category] += n
        summary["points_total"] += points
        if category == readiness.DONE_CATEGORY:
            summary["points_done"] += points
        if readiness.is_ready(category, open_blockers):
            summary["ready"] += n
        elif readiness.is_blocked(open_blockers) and category not in readiness.CLOSED_CATEGORIES:
            summary["blocked"] += n
    return [summaries[p.pk] for p in projects]


def recent_changes(*, user) -> list[dict]:
    """The latest audit rows `user` may read, labelled as the audit log labels them."""
    rows = list(audit_list_for(user=user).order_by("-timestamp", "-id")[:RECENT_CHANGES])
    labels = audit_labels(user=user, rows=rows)
    return [
        {
            "row": row,
            "url": reverse("admin:audit_auditlog_change", args=[row.pk]),
            **labels[row.pk],
            "changes": ", ".join(sorted((row.details or {}).get("changes") or {})),
        }
        for row in rows
    ]


def dashboard(*, user) -> dict:
    return {
        "project_summaries": project_summaries(user=user),
        "recent_changes": recent_changes(user=user),
        "status_categories": CATEGORIES,
    }
