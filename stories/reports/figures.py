"""Each report's figures, as plain dicts (JSON as it is; `columns` + `rows` are the CSV).

The definitions (README "Reports") in one place:

- A *completion* is a status_history row into a completed status from outside the
  completed category (a story created completed counts too); a *reopening* is a row out
  of the completed category. Velocity and throughput count both, per week (Monday to
  Sunday in the report's time zone) or per sprint, and their difference (`net`).
- Points are the upper end of a story's estimate (`1-2sp` is 2), 0 without one; a story's
  points today are used for every day.
- Cycle time: the first entry into a started status → the last completion, lead time:
  the story's first history row (its creation) → the last completion; both for the
  stories that are completed now and whose last completion lies in the range.
- Percentiles are nearest-rank: p of n sorted values is the ceil(p × n / 100)-th.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal

from audit.selectors import backlog_moves

from ..models import Backlog, Project, StatusCategory
from ..rules import visibility_for
from . import selectors as db
from .params import ReportParams, day_start, week_of

CATEGORIES = [c.value for c in StatusCategory]
HIDDEN = {"hidden": True}
DAY = 86400.0
# Upper bounds (days, exclusive) of the cycle / lead time distribution's buckets.
BUCKETS = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]
AGE_BUCKETS = [1, 2, 3, 5, 8, 13, 21, 34]
WIP_LISTED = 200


def num(value: Decimal | float | int | None) -> float:
    """Points and days as JSON numbers (whole numbers stay whole)."""
    if value is None:
        return 0
    f = round(float(value), 2)
    return int(f) if f == int(f) else f


def percentile(sorted_values: list[float], p: int) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p * len(sorted_values) / 100))
    return sorted_values[rank - 1]


def is_completion(old: str | None, new: str) -> bool:
    return new == db.COMPLETED and old != db.COMPLETED


def is_reopening(old: str | None, new: str) -> bool:
    return old == db.COMPLETED and new != db.COMPLETED


def sprint_days(backlog: Backlog) -> tuple[date, date]:
    """A sprint backlog's first and last day (selectors.sprint_backlogs gives only those
    that have both; the API refuses the others)."""
    if backlog.starts_on is None or backlog.ends_on is None:
        raise ValueError(f"backlog {backlog.slug} has no sprint dates")
    return backlog.starts_on, backlog.ends_on


def _header(project: Project, params: ReportParams, report: str) -> dict:
    return {"project": project.slug, "report": report, **params.as_dict()}


# --------------------------------------------------------------------------- velocity, throughput


def _completion_tally(flows: Iterable[db.Flow], key) -> dict:
    tally: dict = defaultdict(lambda: [0, Decimal(0), 0, Decimal(0)])
    for flow in flows:
        slot = key(flow)
        if slot is None:
            continue
        if is_completion(flow.old, flow.new):
            tally[slot][0] += flow.stories
            tally[slot][1] += flow.points
        elif is_reopening(flow.old, flow.new):
            tally[slot][2] += flow.stories
            tally[slot][3] += flow.points
    return tally


def _tally_row(values) -> dict:
    done, done_pts, reopened, reopened_pts = values
    return {
        "completed_stories": done,
        "completed_points": num(done_pts),
        "reopened_stories": reopened,
        "reopened_points": num(reopened_pts),
        "net_stories": done - reopened,
        "net_points": num(done_pts - reopened_pts),
    }


TALLY_COLUMNS = [
    "completed_stories",
    "completed_points",
    "reopened_stories",
    "reopened_points",
    "net_stories",
    "net_points",
]


def weeks_of(params: ReportParams) -> list[date]:
    first, last = week_of(params.start), week_of(params.end)
    return [first + timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]


def weekly_tally(project: Project, params: ReportParams) -> list[dict]:
    flows = db.flow_rows(
        project_id=project.pk, tz=params.tz, since=params.start_at, until=params.end_at, completion_only=True
    )
    tally = _completion_tally(flows, lambda f: week_of(f.day))
    empty = [0, Decimal(0), 0, Decimal(0)]
    return [{"week": week.isoformat(), **_tally_row(tally.get(week, empty))} for week in weeks_of(params)]


def velocity(project: Project, params: ReportParams, *, period: str = "week") -> dict:
    """Points (and stories) completed per week or per sprint, reopenings subtracted."""
    if period == "sprint":
        return sprint_velocity(project, params)
    rows = weekly_tally(project, params)
    nets = [r["net_points"] for r in rows]
    return {
        **_header(project, params, "velocity"),
        "period": "week",
        "average_net_points": num(sum(nets) / len(nets)) if nets else 0,
        "columns": ["week", *TALLY_COLUMNS],
        "rows": rows,
    }


def sprint_velocity(project: Project, params: ReportParams) -> dict:
    """Per sprint backlog (with dates) whose dates meet the range: the completions, inside
    the sprint's days, of the stories now in it."""
    backlogs = db.sprint_backlogs(project_id=project.pk)
    spans = {s.pk: sprint_days(s) for s in backlogs}
    sprints = [s for s in backlogs if spans[s.pk][1] >= params.start and spans[s.pk][0] <= params.end]
    rows: list[dict] = []
    if sprints:
        first, last = min(spans[s.pk][0] for s in sprints), max(spans[s.pk][1] for s in sprints)
        flows = db.flow_rows(
            project_id=project.pk,
            tz=params.tz,
            since=day_start(first, params.tz),
            until=day_start(last + timedelta(days=1), params.tz),
            completion_only=True,
            by_backlog=[s.pk for s in sprints],
        )
        tally = _completion_tally(
            flows, lambda f: f.backlog_id if spans[f.backlog_id][0] <= f.day <= spans[f.backlog_id][1] else None
        )
        empty = [0, Decimal(0), 0, Decimal(0)]
        rows = [
            {
                "sprint": s.slug,
                "name": s.name,
                "starts_on": spans[s.pk][0].isoformat(),
                "ends_on": spans[s.pk][1].isoformat(),
                **_tally_row(tally.get(s.pk, empty)),
            }
            for s in sprints
        ]
    nets = [r["net_points"] for r in rows]
    return {
        **_header(project, params, "velocity"),
        "period": "sprint",
        "average_net_points": num(sum(nets) / len(nets)) if nets else 0,
        "columns": ["sprint", "name", "starts_on", "ends_on", *TALLY_COLUMNS],
        "rows": rows,
    }


def throughput(project: Project, params: ReportParams) -> dict:
    """Stories completed per week (completions − reopenings), with the weekly p50 / p85."""
    rows = [
        {
            "week": r["week"],
            "completed": r["completed_stories"],
            "reopened": r["reopened_stories"],
            "net": r["net_stories"],
        }
        for r in weekly_tally(project, params)
    ]
    nets = sorted(float(r["net"]) for r in rows)
    return {
        **_header(project, params, "throughput"),
        "total_net": int(sum(nets)),
        "per_week": {
            "mean": num(sum(nets) / len(nets)) if nets else 0,
            "p50": percentile(nets, 50),
            "p85": percentile(nets, 85),
        },
        "columns": ["week", "completed", "reopened", "net"],
        "rows": rows,
    }


# --------------------------------------------------------------------------- cumulative flow


def cumulative_flow(project: Project, params: ReportParams) -> dict:
    """Stories per status category at the end of each day: each history row moves one
    story out of its old category into its new one; the days before the range give the
    counts the range starts with."""
    flows = db.flow_rows(project_id=project.pk, tz=params.tz, until=params.end_at)
    counts = dict.fromkeys(CATEGORIES, 0)
    by_day: dict[date, list[db.Flow]] = defaultdict(list)
    for flow in flows:
        if flow.day < params.start:
            _apply(counts, flow)
        else:
            by_day[flow.day].append(flow)
    rows = []
    for day in params.days():
        for flow in by_day.get(day, ()):
            _apply(counts, flow)
        rows.append({"day": day.isoformat(), **counts})
    return {**_header(project, params, "cumulative-flow"), "columns": ["day", *CATEGORIES], "rows": rows}


def _apply(counts: dict[str, int], flow: db.Flow) -> None:
    if flow.old is not None:
        counts[flow.old] -= flow.stories
    counts[flow.new] += flow.stories


# --------------------------------------------------------------------------- cycle and lead time


def _distribution(days: list[float], buckets: list[int]) -> list[dict]:
    rows: list[dict] = []
    low = 0
    for high in [*buckets, None]:
        count = sum(1 for d in days if d >= low and (high is None or d < high))
        rows.append({"from_days": low, "to_days": high, "stories": count})
        low = high if high is not None else low
    return rows


def _time_report(name: str, project: Project, params: ReportParams, days: list[float], extra: dict) -> dict:
    days.sort()
    return {
        **_header(project, params, name),
        "stories": len(days),
        "mean_days": num(sum(days) / len(days)) if days else None,
        "p50_days": num(percentile(days, 50)) if days else None,
        "p85_days": num(percentile(days, 85)) if days else None,
        "p95_days": num(percentile(days, 95)) if days else None,
        **extra,
        "columns": ["from_days", "to_days", "stories"],
        "rows": _distribution(days, BUCKETS),
    }


def cycle_time(project: Project, params: ReportParams) -> dict:
    """First start → last completion, of the stories completed in the range."""
    spans = db.completed_spans(project_id=project.pk, since=params.start_at, until=params.end_at)
    days = [
        (done - started).total_seconds() / DAY for _, started, done in spans if started is not None and done >= started
    ]
    return _time_report("cycle-time", project, params, days, {"never_started": len(spans) - len(days)})


def lead_time(project: Project, params: ReportParams) -> dict:
    """Creation → last completion, of the stories completed in the range."""
    spans = db.completed_spans(project_id=project.pk, since=params.start_at, until=params.end_at)
    days = [(done - created).total_seconds() / DAY for created, _, done in spans if created is not None]
    return _time_report("lead-time", project, params, days, {})


# --------------------------------------------------------------------------- ageing WIP


def ageing_wip(project: Project, params: ReportParams) -> dict:
    """Stories in a started status now, by days since they first started (oldest first;
    the first WIP_LISTED are listed, the buckets count them all)."""
    rows: list[dict] = []
    ages: list[float] = []
    for key, title, status, since, pts in db.wip_rows(project_id=project.pk):
        age = max(0.0, (params.now - since).total_seconds() / DAY) if since else 0.0
        ages.append(age)
        if len(rows) < WIP_LISTED:
            started = since.astimezone(params.tz).date().isoformat() if since else None
            rows.append(
                {
                    "key": key,
                    "title": title,
                    "status": status,
                    "started_on": started,
                    "age_days": num(age),
                    "points": num(pts),
                }
            )
    ages.sort()
    return {
        **_header(project, params, "ageing-wip"),
        "stories": len(ages),
        "p50_age_days": num(percentile(ages, 50)) if ages else None,
        "p85_age_days": num(percentile(ages, 85)) if ages else None,
        "buckets": _distribution(ages, AGE_BUCKETS),
        "columns": ["key", "title", "status", "started_on", "age_days", "points"],
        "rows": rows,
    }


# --------------------------------------------------------------------------- epics


def epic_progress(project: Project, params: ReportParams) -> dict:
    """Per epic: stories and points done of all (cancelled ones aside), open blockers."""
    blockers = db.epic_open_blockers(project_id=project.pk)
    rows = []
    for epic in db.epic_rows(project_id=project.pk):
        total, done = epic["points_total"], epic["points_done"]
        links, blocked = blockers.get(epic["pk"], (0, 0))
        rows.append(
            {
                "epic": epic["slug"],
                "name": epic["name"],
                "stories_total": epic["stories_total"],
                "stories_done": epic["stories_done"],
                "stories_cancelled": epic["stories_cancelled"],
                "points_total": num(total),
                "points_done": num(done),
                "percent_done": num(100 * done / total)
                if total
                else (100 if epic["stories_total"] and epic["stories_done"] == epic["stories_total"] else 0),
                "open_blockers": links,
                "blocked_stories": blocked,
            }
        )
    columns = [
        "epic",
        "name",
        "stories_total",
        "stories_done",
        "stories_cancelled",
        "points_total",
        "points_done",
        "percent_done",
        "open_blockers",
        "blocked_stories",
    ]
    return {**_header(project, params, "epic-progress"), "columns": columns, "rows": rows}


# --------------------------------------------------------------------------- cross-project


def cross_project(project: Project, params: ReportParams, *, reader) -> dict:
    """Which projects this one waits for and which wait for it (`blocks` links), and the
    open cross-project blockers. A project the reader cannot see is never named: its
    links are summed into one `{"hidden": true}` row per direction that counts this
    project's stories only, and an open blocker on its side is a placeholder, listed
    once per story of this project (how many of its stories stand behind it is not the
    reader's to know)."""
    seen = visibility_for(reader, system=True)
    groups: dict[tuple[str, object], dict] = {}
    open_links: list[dict] = []
    listed_hidden: set[tuple[str, str]] = set()
    for link in db.cross_project_links(project_id=project.pk):
        waits = link["story__project_id"] == project.pk  # our story waits for theirs
        direction = "waits_for" if waits else "blocks"
        mine, other = ("story", "depends_on") if waits else ("depends_on", "story")
        other_pid = link[f"{other}__project_id"]
        visible = seen.sees(other_pid)
        group = groups.setdefault(
            (direction, other_pid if visible else "hidden"),
            {
                "direction": direction,
                "project": link[f"{other}__project__slug"] if visible else HIDDEN,
                "ours": set(),
                "theirs": set(),
                "links": 0,
                "open": 0,
            },
        )
        is_open = link["depends_on__status__category"] != db.COMPLETED
        group["ours"].add(link[f"{mine}_id"])
        if visible:
            group["theirs"].add(link[f"{other}_id"])
            group["links"] += 1
            group["open"] += is_open
        if not is_open:
            continue
        entry = {"direction": direction, "story": link[f"{mine}__key"], "title": link[f"{mine}__title"]}
        if visible:
            entry["other"] = {
                "project": link[f"{other}__project__slug"],
                "key": link[f"{other}__key"],
                "title": link[f"{other}__title"],
                "category": link[f"{other}__status__category"],
            }
        else:
            if (direction, link[f"{mine}__key"]) in listed_hidden:
                continue
            listed_hidden.add((direction, link[f"{mine}__key"]))
            entry["other"] = HIDDEN
        open_links.append(entry)
    rows = []
    for (_, pid), g in sorted(
        groups.items(), key=lambda item: (item[0][0], item[0][1] == "hidden", str(item[1]["project"]))
    ):
        hidden = pid == "hidden"
        rows.append(
            {
                "direction": g["direction"],
                "project": g["project"],
                "stories_here": len(g["ours"]),
                "stories_there": None if hidden else len(g["theirs"]),
                "links": None if hidden else g["links"],
                "open_links": None if hidden else g["open"],
            }
        )
    return {
        **_header(project, params, "cross-project"),
        "open_blockers": open_links,
        "columns": ["direction", "project", "stories_here", "stories_there", "links", "open_links"],
        "rows": rows,
    }


# --------------------------------------------------------------------------- sprint burndown / burnup


def _membership(story_id: int, created: datetime, now_in: bool, moves: dict[int, list[tuple[datetime, bool]]]):
    """The intervals a story spent in the sprint backlog: from its recorded moves in and
    out (audit rows), else since its creation."""
    events = moves.get(story_id, [])
    if not events:
        return [(created, None)] if now_in else []
    intervals: list[tuple[datetime, datetime | None]] = []
    since = created if not events[0][1] else None
    for when, into in events:
        if into and since is None:
            since = when
        elif not into and since is not None:
            intervals.append((since, when))
            since = None
    if since is not None:
        intervals.append((since, None))
    elif now_in:  # in it now without a recorded move in (e.g. a raw import): since the last move
        intervals.append((events[-1][0], None))
    return intervals


def _inside(intervals, moment: datetime) -> bool:
    return any(start <= moment and (end is None or moment < end) for start, end in intervals)


def _category_at(changes: list[tuple[datetime, str]], moment: datetime) -> str | None:
    current = None
    for when, category in changes:
        if when > moment:
            break
        current = category
    return current


def sprint(project: Project, backlog: Backlog, params: ReportParams) -> dict:
    """Burndown and burnup of a sprint backlog, per day of the sprint (the end of the day
    in the report's time zone, or now for today; later days are null): the scope (stories
    in the backlog then, and their points), what of it is completed, what remains, the
    ideal line from the starting scope to zero, and every change of scope after the
    sprint started (stories added or removed, from the audit log's recorded moves)."""
    moves_by_story: dict[int, list[tuple[datetime, bool]]] = defaultdict(list)
    for story_id, when, into in backlog_moves(
        project_id=project.pk, project_slug=project.slug, backlog_slug=backlog.slug
    ):
        moves_by_story[story_id].append((when, into))
    stories = db.sprint_stories(backlog=backlog, also=moves_by_story)
    first, last = sprint_days(backlog)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    start_at = day_start(first, params.tz)
    end_at = day_start(last + timedelta(days=1), params.tz)
    history: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for story_id, when, category in db.category_changes(
        story_ids=[s[0] for s in stories], until=min(end_at, params.now + timedelta(seconds=1))
    ):
        history[story_id].append((when, category))
    members = [
        (pk, key, pts, _membership(pk, created, backlog_id == backlog.pk, moves_by_story))
        for pk, key, _, pts, created, backlog_id in stories
    ]

    def scope_at(moment: datetime):
        inside = [(pk, pts) for pk, _, pts, spans in members if _inside(spans, moment)]
        done = [(pk, pts) for pk, pts in inside if _category_at(history[pk], moment) == db.COMPLETED]
        return inside, done

    initial, _ = scope_at(start_at)
    initial_points = sum((p for _, p in initial), Decimal(0))
    rows = []
    for i, day in enumerate(days):
        moment = day_start(day + timedelta(days=1), params.tz) - timedelta(microseconds=1)
        ideal = num(initial_points * (len(days) - 1 - i) / (len(days) - 1)) if len(days) > 1 else 0
        if day_start(day, params.tz) > params.now:
            rows.append(
                {
                    "day": day.isoformat(),
                    "scope_stories": None,
                    "scope_points": None,
                    "done_stories": None,
                    "done_points": None,
                    "remaining_points": None,
                    "ideal_points": ideal,
                }
            )
            continue
        inside, done = scope_at(min(moment, params.now))
        scope_pts, done_pts = sum((p for _, p in inside), Decimal(0)), sum((p for _, p in done), Decimal(0))
        rows.append(
            {
                "day": day.isoformat(),
                "scope_stories": len(inside),
                "scope_points": num(scope_pts),
                "done_stories": len(done),
                "done_points": num(done_pts),
                "remaining_points": num(scope_pts - done_pts),
                "ideal_points": ideal,
            }
        )
    return {
        **_header(project, params, "sprint"),
        "sprint": backlog.slug,
        "name": backlog.name,
        "starts_on": first.isoformat(),
        "ends_on": last.isoformat(),
        "initial_scope_points": num(initial_points),
        "initial_scope_stories": len(initial),
        "scope_changes": _scope_changes(members, start_at, end_at, params),
        "columns": [
            "day",
            "scope_stories",
            "scope_points",
            "done_stories",
            "done_points",
            "remaining_points",
            "ideal_points",
        ],
        "rows": rows,
    }


def _scope_changes(members, start_at: datetime, end_at: datetime, params: ReportParams) -> list[dict]:
    changes = []
    for _, key, pts, spans in members:
        for begin, end in spans:
            if start_at < begin < end_at:
                changes.append((begin, key, "added", pts))
            if end is not None and start_at < end < end_at:
                changes.append((end, key, "removed", pts))
    changes.sort(key=lambda c: (c[0], c[1]))
    return [
        {
            "day": when.astimezone(params.tz).date().isoformat(),
            "at": when.isoformat(),
            "story": key,
            "change": kind,
            "points": num(pts),
        }
        for when, key, kind, pts in changes
    ]


# --------------------------------------------------------------------------- everything


def project_reports(project: Project, params: ReportParams, *, reader, sprint_backlog: Backlog | None = None) -> dict:
    """Every report of a project (the admin page and the static dashboard); the sprint
    report for `sprint_backlog`, else for the latest sprint started by the range's end."""
    if sprint_backlog is None:
        last = min(params.today, params.end)
        started = [s for s in db.sprint_backlogs(project_id=project.pk) if sprint_days(s)[0] <= last]
        sprint_backlog = started[-1] if started else None
    return {
        "velocity": velocity(project, params),
        "sprint": sprint(project, sprint_backlog, params) if sprint_backlog is not None else None,
        "cumulative_flow": cumulative_flow(project, params),
        "cycle_time": cycle_time(project, params),
        "lead_time": lead_time(project, params),
        "throughput": throughput(project, params),
        "ageing_wip": ageing_wip(project, params),
        "epic_progress": epic_progress(project, params),
        "cross_project": cross_project(project, params, reader=reader),
    }
