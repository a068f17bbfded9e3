"""The reports' database reads. status_history is the source of every figure over time;
each read is one aggregating query whatever the project's size (the query count of a
report is constant), and only the grouped rows come back to Python.

Days are cut in the report's time zone by the database (TruncDate with tzinfo: AT TIME
ZONE on PostgreSQL, Django's registered function on SQLite). Every read is the ORM's
(grouped with `.order_by()` cleared, so the model's ordering never widens a GROUP BY);
raw SQL, should a report need it, belongs here with names from `_meta`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, F, Max, Min, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from ..models import Backlog, BacklogType, Epic, StatusCategory, StatusHistory, Story, StoryDependency
from ..readiness import BLOCKING_TYPE, CLOSED_CATEGORIES, DONE_CATEGORY, open_blocker_q

COMPLETED = StatusCategory.COMPLETED.value
STARTED = StatusCategory.STARTED.value
CANCELLED = StatusCategory.CANCELLED.value
NOT_COMPLETED = [c for c in StatusCategory.values if c != COMPLETED]
ZERO = Value(Decimal(0), output_field=DecimalField(max_digits=9, decimal_places=2))


def points(prefix: str = "") -> Coalesce:
    """A story's points: the upper end of its estimate (`1-2sp` counts 2), 0 without one."""
    return Coalesce(F(f"{prefix}points_max"), F(f"{prefix}points_min"), ZERO)


@dataclass(frozen=True)
class Flow:
    """History rows of one day with one (old category → new category) move."""

    day: date
    old: str | None  # None: the story's first row (its creation)
    new: str
    stories: int
    points: Decimal
    backlog_id: int | None = None


def flow_rows(
    *,
    project_id: int,
    tz: ZoneInfo,
    until: datetime,
    since: datetime | None = None,
    completion_only: bool = False,
    by_backlog: Iterable[int] | None = None,
) -> list[Flow]:
    """status_history of the project's stories before `until` (and from `since`), grouped
    by day in `tz` and (old, new) status category: how many rows, the stories' points.
    `completion_only`: only moves into or out of the completed category. `by_backlog`:
    only stories now in those backlogs, grouped by backlog too."""
    rows = StatusHistory.objects.filter(story__project_id=project_id, changed_at__lt=until)
    if since is not None:
        rows = rows.filter(changed_at__gte=since)
    if completion_only:
        rows = rows.filter(Q(new_status__category=COMPLETED) | Q(old_status__category=COMPLETED))
    group = ["day", "old_status__category", "new_status__category"]
    if by_backlog is not None:
        rows = rows.filter(story__backlog_id__in=list(by_backlog))
        group.append("story__backlog_id")
    grouped = (
        rows.annotate(day=TruncDate("changed_at", tzinfo=tz))
        .order_by()
        .values(*group)
        .annotate(n=Count("id"), pts=Sum(points("story__")))
    )
    return [
        Flow(
            day=row["day"],
            old=row["old_status__category"],
            new=row["new_status__category"],
            stories=row["n"],
            points=row["pts"] or Decimal(0),
            backlog_id=row.get("story__backlog_id"),
        )
        for row in grouped
    ]


def _entered_completed() -> Q:
    """A history row that moves a story into the completed category (from outside it)."""
    return Q(status_history__new_status__category=COMPLETED) & (
        Q(status_history__old_status__isnull=True) | Q(status_history__old_status__category__in=NOT_COMPLETED)
    )


def completed_spans(
    *, project_id: int, since: datetime, until: datetime
) -> list[tuple[datetime, datetime | None, datetime]]:
    """(created, first started, completed) of each story of the project that is completed
    now and whose last entry into the completed category lies in [since, until); one
    grouped query. `created` is the story's first history row; first started is None for
    a story that never entered a started status."""
    rows = (
        Story.objects.filter(project_id=project_id, status__category=COMPLETED)
        .order_by()
        .annotate(
            created_at_h=Min("status_history__changed_at"),
            started_at=Min("status_history__changed_at", filter=Q(status_history__new_status__category=STARTED)),
            completed_at=Max("status_history__changed_at", filter=_entered_completed()),
        )
        .filter(completed_at__gte=since, completed_at__lt=until)
        .values_list("created_at_h", "started_at", "completed_at")
    )
    return list(rows)


def wip_rows(*, project_id: int) -> list[tuple[str, str, str, datetime | None, Decimal]]:
    """(key, title, status slug, first entry into a started status, points) of every
    story of the project that is in a started status now, oldest first."""
    rows = (
        Story.objects.filter(project_id=project_id, status__category=STARTED)
        .order_by()
        .annotate(
            since=Min("status_history__changed_at", filter=Q(status_history__new_status__category=STARTED)),
            pts=points(),
        )
        .order_by(F("since").asc(nulls_first=True), "key")
        .values_list("key", "title", "status__slug", "since", "pts")
    )
    return list(rows)


def epic_rows(*, project_id: int) -> list[dict]:
    """Per epic of the project: stories and points, all and completed (cancelled stories
    count in neither), one grouped query."""
    not_cancelled = ~Q(stories__status__category=CANCELLED)
    done = Q(stories__status__category=COMPLETED)
    pts = Coalesce(F("stories__points_max"), F("stories__points_min"), ZERO)
    return list(
        Epic.objects.filter(project_id=project_id)
        .order_by("slug")
        .annotate(
            stories_total=Count("stories", filter=not_cancelled),
            stories_done=Count("stories", filter=done),
            stories_cancelled=Count("stories", filter=Q(stories__status__category=CANCELLED)),
            points_total=Coalesce(Sum(pts, filter=not_cancelled), ZERO),
            points_done=Coalesce(Sum(pts, filter=done), ZERO),
        )
        .values(
            "pk",
            "slug",
            "name",
            "stories_total",
            "stories_done",
            "stories_cancelled",
            "points_total",
            "points_done",
        )
    )


def epic_open_blockers(*, project_id: int) -> dict[int, tuple[int, int]]:
    """epic id → (open `blocks` links of its unfinished stories, stories they block),
    hidden blockers included (stories.readiness: they block all the same)."""
    rows = (
        StoryDependency.objects.filter(open_blocker_q(), story__project_id=project_id, story__epic__isnull=False)
        .exclude(story__status__category__in=CLOSED_CATEGORIES)
        .order_by()
        .values("story__epic_id")
        .annotate(links=Count("id"), stories=Count("story_id", distinct=True))
    )
    return {row["story__epic_id"]: (row["links"], row["stories"]) for row in rows}


CROSS_FIELDS = (
    "story_id",
    "story__key",
    "story__title",
    "story__project_id",
    "story__project__slug",
    "story__status__category",
    "depends_on_id",
    "depends_on__key",
    "depends_on__title",
    "depends_on__project_id",
    "depends_on__project__slug",
    "depends_on__status__category",
)


def cross_project_links(*, project_id: int) -> list[dict]:
    """Every `blocks` link between a story of the project and a story of another one,
    both directions, in one query. Rows carry both sides: the caller (figures) decides
    what of the other side the reader may see."""
    here, there = Q(story__project_id=project_id), Q(depends_on__project_id=project_id)
    return list(
        StoryDependency.objects.filter(type=BLOCKING_TYPE)
        .filter((here & ~there) | (there & ~here))
        .order_by("story__key", "depends_on_id")
        .values(*CROSS_FIELDS)
    )


def sprint_backlogs(*, project_id: int) -> list[Backlog]:
    """The project's sprint backlogs that have both dates, in date order."""
    return list(
        Backlog.objects.filter(
            project_id=project_id, type=BacklogType.SPRINT, starts_on__isnull=False, ends_on__isnull=False
        ).order_by("starts_on", "slug")
    )


def sprint_stories(
    *, backlog: Backlog, also: Iterable[int]
) -> list[tuple[int, str, str, Decimal, datetime, int | None]]:
    """(id, key, title, points, created_at, backlog id) of the stories now in `backlog`
    and of the stories `also` (moved out of it) that still exist in its project."""
    return list(
        Story.objects.filter(Q(backlog=backlog) | Q(pk__in=list(also)), project_id=backlog.project_id)
        .order_by("key")
        .annotate(pts=points())
        .values_list("pk", "key", "title", "pts", "created_at", "backlog_id")
    )


def category_changes(*, story_ids: list[int], until: datetime) -> list[tuple[int, datetime, str]]:
    """(story id, changed_at, new category) of the history of `story_ids` before `until`,
    in time order (a sprint's stories: bounded by the sprint's size)."""
    if not story_ids:
        return []
    return list(
        StatusHistory.objects.filter(story_id__in=story_ids, changed_at__lt=until)
        .order_by("story_id", "changed_at", "id")
        .values_list("story_id", "changed_at", "new_status__category")
    )


__all__ = [
    "CANCELLED",
    "COMPLETED",
    "DONE_CATEGORY",
    "STARTED",
    "Flow",
    "category_changes",
    "completed_spans",
    "cross_project_links",
    "epic_open_blockers",
    "epic_rows",
    "flow_rows",
    "sprint_backlogs",
    "sprint_stories",
    "wip_rows",
]
