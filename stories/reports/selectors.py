"""The reports' database reads. status_history is the source of every figure over time;
each read is one aggregating query whatever the project's size (the query count of a
report is constant), and only the grouped rows come back to Python.

Days are cut in the report's time zone by the database, with the SQL of Django's own
TruncDate (connection.ops.datetime_cast_date_sql: AT TIME ZONE on PostgreSQL, Django's
registered function on SQLite). Reads are the ORM's (grouped with `.order_by()` cleared,
so the model's ordering never widens a GROUP BY), except the history flows and the
cross-project links: hand-written SQL, with table and column names from `_meta`, that
reach the rows from the project's own stories through the indexes (a LATERAL probe per
story on PostgreSQL), because a project has no column of its own in either table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, DecimalField, F, Max, Min, Q, Sum, Value
from django.db.models.functions import Coalesce

from ..models import Backlog, BacklogType, Epic, Project, Status, StatusCategory, StatusHistory, Story, StoryDependency
from ..readiness import BLOCKING_TYPE, CLOSED_CATEGORIES, DONE_CATEGORY

COMPLETED = StatusCategory.COMPLETED.value
STARTED = StatusCategory.STARTED.value
CANCELLED = StatusCategory.CANCELLED.value
NOT_COMPLETED = [c for c in StatusCategory.values if c != COMPLETED]
ZERO = Value(Decimal(0), output_field=DecimalField(max_digits=9, decimal_places=2))


def points(prefix: str = "") -> Coalesce:
    """A story's points: the upper end of its estimate (`1-2sp` counts 2), 0 without one."""
    return Coalesce(F(f"{prefix}points_max"), F(f"{prefix}points_min"), ZERO)


class Flow(NamedTuple):
    """History rows of one day with one (old category → new category) move. A named tuple:
    cumulative flow builds ~3,000 of them per request, a frozen dataclass took 1.7x longer."""

    day: date
    old: str | None  # None: the story's first row (its creation)
    new: str
    stories: int
    points: Decimal
    backlog_id: int | None = None


_HISTORY = StatusHistory._meta.db_table
_H_STORY = StatusHistory._meta.get_field("story").column
_H_OLD = StatusHistory._meta.get_field("old_status").column
_H_NEW = StatusHistory._meta.get_field("new_status").column
_H_AT = StatusHistory._meta.get_field("changed_at").column
_S_PROJECT = Story._meta.get_field("project").column
_S_BACKLOG = Story._meta.get_field("backlog").column
_S_MIN = Story._meta.get_field("points_min").column
_S_MAX = Story._meta.get_field("points_max").column
_ST_PROJECT = Status._meta.get_field("project").column
_ST_CATEGORY = Status._meta.get_field("category").column

# The history of one project's stories `s`, row by row as `h`. PostgreSQL gets a LATERAL
# probe per story (OFFSET 0 keeps it one) into status_history's covering index
# (story, changed_at INCLUDE old / new status): an index-only scan of the project's rows.
# As a plain join the planner hash-joined a scan of the whole table (every project's
# history) against the project's stories: 110-200 ms on the 100k dataset, against
# ~30 ms. Elsewhere (SQLite) the plain join.
_HISTORY_OF = {
    "postgresql": (
        " FROM {stories} s CROSS JOIN LATERAL (SELECT x.{at}, x.{old}, x.{new} FROM {history} x"
        " WHERE x.{story} = s.id AND x.{at} < %s{since} OFFSET 0) h"
    ),
    "default": " FROM {stories} s JOIN {history} h ON h.{story} = s.id AND h.{at} < %s{since_h}",
}


def _history_of(*, since: bool) -> str:
    template = _HISTORY_OF.get(connection.vendor, _HISTORY_OF["default"])
    return template.format(
        stories=_STORIES,
        history=_HISTORY,
        story=_H_STORY,
        at=_H_AT,
        old=_H_OLD,
        new=_H_NEW,
        since=f" AND x.{_H_AT} >= %s" if since else "",
        since_h=f" AND h.{_H_AT} >= %s" if since else "",
    )


@contextmanager
def _report_cursor() -> Iterator:
    """A cursor for one hand-written report read. On PostgreSQL with JIT compilation off
    for it (SET LOCAL: this transaction only): the planner prices the per-story probes
    above `jit_above_cost` (it cannot know how few rows they return) and compiling took
    35-170 ms of queries that run in 20-40 ms. `savepoint=False`: no extra statements
    inside a caller's transaction."""
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL jit = off")
        yield cursor


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)  # SQLite: ISO text


def _as_decimal(value) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))  # SQLite: a float


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
    only stories now in those backlogs, grouped by backlog too. One query: grouped first
    by day and (old, new) status id, the few grouped rows then by category; the day is
    cut by the database's own TruncDate SQL (connection.ops)."""
    day_sql, day_params = connection.ops.datetime_cast_date_sql(f"h.{_H_AT}", (), tz.key)
    params: list = [*day_params, until]
    if since is not None:
        params.append(since)
    where = [f"s.{_S_PROJECT} = %s"]
    params.append(project_id)
    if completion_only:
        completed = f"(SELECT id FROM {_STATUSES} WHERE {_ST_PROJECT} = %s AND {_ST_CATEGORY} = %s)"
        where.append(f"(h.{_H_NEW} IN {completed} OR h.{_H_OLD} IN {completed})")
        params += [project_id, COMPLETED, project_id, COMPLETED]
    backlog = ""
    if by_backlog is not None:
        ids = [int(pk) for pk in by_backlog]
        if not ids:
            return []
        where.append(f"s.{_S_BACKLOG} IN ({', '.join(['%s'] * len(ids))})")
        params += ids
        backlog = f", s.{_S_BACKLOG} AS backlog_id"
    inner = (
        f"SELECT {day_sql} AS day, h.{_H_OLD} AS old_id, h.{_H_NEW} AS new_id{backlog},"
        " COUNT(*) AS n,"
        f" SUM(COALESCE(s.{_S_MAX}, s.{_S_MIN}, 0)) AS pts"
        f"{_history_of(since=since is not None)} WHERE {' AND '.join(where)}"
        f" GROUP BY 1, 2, 3{', 4' if backlog else ''}"
    )
    group_backlog = ", g.backlog_id" if backlog else ""
    sql = (
        f"SELECT g.day, so.{_ST_CATEGORY}, sn.{_ST_CATEGORY}, SUM(g.n), SUM(g.pts){group_backlog}"
        f" FROM ({inner}) g LEFT JOIN {_STATUSES} so ON so.id = g.old_id JOIN {_STATUSES} sn ON sn.id = g.new_id"
        f" GROUP BY g.day, so.{_ST_CATEGORY}, sn.{_ST_CATEGORY}{group_backlog}"
    )
    with _report_cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    return [
        Flow(
            day=_as_date(day),
            old=old,
            new=new,
            stories=int(n),
            points=_as_decimal(pts),
            backlog_id=rest[0] if rest else None,
        )
        for day, old, new, n, pts, *rest in fetched
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
    return [
        dict(row)
        for row in Epic.objects.filter(project_id=project_id)
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
    ]


OPEN_CATEGORIES = [c for c in StatusCategory.values if c not in CLOSED_CATEGORIES]


def epic_open_blockers(*, project_id: int) -> dict[int, tuple[int, int]]:
    """epic id → (open `blocks` links of its unfinished stories, stories they block),
    hidden blockers included (stories.readiness: they block all the same). The rule of
    readiness.open_blocker_q (a blocker is open until completed), written with positive
    IN lists so the planner joins from the project's stories (the negated form scanned
    every link: 200 ms → a few ms on the 100k dataset)."""
    rows = (
        StoryDependency.objects.filter(
            type=BLOCKING_TYPE,
            story__project_id=project_id,
            story__epic__isnull=False,
            story__status__category__in=OPEN_CATEGORIES,
            depends_on__status__category__in=NOT_COMPLETED,
        )
        .order_by()
        .values("story__epic_id")
        # COUNT(*), not of the id: the links then come from the (story, type) index alone.
        .annotate(links=Count("*"), stories=Count("story_id", distinct=True))
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


_DEPS = StoryDependency._meta.db_table
_STORIES = Story._meta.db_table
_DEP_STORY = StoryDependency._meta.get_field("story").column
_DEP_ON = StoryDependency._meta.get_field("depends_on").column
_DEP_TYPE = StoryDependency._meta.get_field("type").column
_STORY_PROJECT = Story._meta.get_field("project").column
_PK = "id"

_STATUSES = Status._meta.db_table
_PROJECTS = Project._meta.db_table
_STORY_STATUS = Story._meta.get_field("status").column
_STORY_KEY = Story._meta.get_field("key").column
_STORY_TITLE = Story._meta.get_field("title").column
_CATEGORY = Status._meta.get_field("category").column
_SLUG = Project._meta.get_field("slug").column

# The cross-project `blocks` links of one project with both sides, reached from its own
# stories `s` through the link indexes (`o` is the other side). PostgreSQL gets a LATERAL
# probe per story (OFFSET 0 keeps it one) into the links' covering indexes: as a plain
# join the planner hash-joined full scans of the links and the stories (490 ms on the 100k
# dataset, for a handful of rows). (A hashed `NOT IN` this project's stories instead of
# the other side's project: priced so high that the planner scanned every story.)
_CROSS = {
    "postgresql": (
        "SELECT %s, s.{pk}, s.{key}, s.{title}, s.{project}, sp.{slug}, ss.{category},"
        " o.{pk}, o.{key}, o.{title}, o.{project}, op.{slug}, os.{category}"
        " FROM {stories} s CROSS JOIN LATERAL (SELECT x.{far} FROM {deps} x"
        " WHERE x.{near} = s.{pk} AND x.{type} = %s OFFSET 0) d"
        " JOIN {stories} o ON o.{pk} = d.{far} JOIN {statuses} ss ON ss.{pk} = s.{status}"
        " JOIN {statuses} os ON os.{pk} = o.{status} JOIN {projects} sp ON sp.{pk} = s.{project}"
        " JOIN {projects} op ON op.{pk} = o.{project} WHERE s.{project} = %s AND o.{project} <> %s"
    ),
}
_CROSS["default"] = _CROSS["postgresql"].replace(
    " CROSS JOIN LATERAL (SELECT x.{far} FROM {deps} x WHERE x.{near} = s.{pk} AND x.{type} = %s OFFSET 0) d",
    " JOIN {deps} d ON d.{near} = s.{pk} AND d.{type} = %s",
)
_SIDE = ("_id", "__key", "__title", "__project_id", "__project__slug", "__status__category")


def _cross_sql(vendor: str) -> str:
    template = _CROSS.get(vendor, _CROSS["default"])
    names = {
        "pk": _PK, "stories": _STORIES, "deps": _DEPS, "type": _DEP_TYPE, "project": _STORY_PROJECT,
        "key": _STORY_KEY, "title": _STORY_TITLE, "status": _STORY_STATUS, "statuses": _STATUSES,
        "projects": _PROJECTS, "category": _CATEGORY, "slug": _SLUG,
    }  # fmt: skip
    waits = template.format(near=_DEP_STORY, far=_DEP_ON, **names)
    blocks = template.format(near=_DEP_ON, far=_DEP_STORY, **names)
    return f"{waits} UNION ALL {blocks}"


def cross_project_links(*, project_id: int) -> list[dict]:
    """Every `blocks` link between a story of the project and a story of another one,
    both directions, with both sides (the CROSS_FIELDS), ordered by the depending story's
    key, in one query. The caller (figures) decides what of the other side the reader
    may see."""
    with _report_cursor() as cursor:
        cursor.execute(
            _cross_sql(connection.vendor),
            [1, BLOCKING_TYPE, project_id, project_id, 0, BLOCKING_TYPE, project_id, project_id],
        )
        fetched = cursor.fetchall()
    rows = []
    for waits, *values in fetched:
        ours, theirs = values[:6], values[6:]
        story, depends_on = (ours, theirs) if waits else (theirs, ours)
        row = {f"story{suffix}": value for suffix, value in zip(_SIDE, story, strict=True)}
        row |= {f"depends_on{suffix}": value for suffix, value in zip(_SIDE, depends_on, strict=True)}
        rows.append(row)
    rows.sort(key=lambda r: (r["story__key"], r["depends_on_id"]))
    return rows


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
