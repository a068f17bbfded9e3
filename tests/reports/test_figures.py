"""Every figure of the fixture (conftest.build_report_world) computed by hand.

Stories of project `rep` (points: upper end of the estimate), times in UTC:

| story | points | history |
| --- | --- | --- |
| A | 3 | created 02-23 09:00, in progress 02-24 09:00, done 02-26 09:00 |
| E | 8 | created 02-27 09:00 in sprint s1, moved out of s1 03-04 09:00 |
| B | 5 | created 03-01 10:00 in s1, in progress 03-02 10:00, done 03-03 10:00, reopened 03-04 10:00, done 03-05 10:00 |
| C | 2 (1-2sp) | created 03-01 12:00, moved into s1 03-03 12:00, in progress 03-04 08:00 (still) |
| D | 1 | created 03-01 08:00, done 03-08 23:30 (03-09 00:30 in Berlin), never started |

Sprint s1: 03-02 … 03-06; sprint s2: 03-09 … 03-13, empty. Now: 03-10 12:00 UTC.
"""

from __future__ import annotations

import pytest

from stories.reports import figures
from stories.reports.params import parse_params

from .conftest import MARKER, NOW

pytestmark = pytest.mark.django_db


def params(**query):
    return parse_params(query, now=NOW)


def test_velocity_per_week_counts_reopenings(rw):
    r = figures.velocity(rw.project, params(**{"from": "2026-02-23", "to": "2026-03-08"}))
    assert [row["week"] for row in r["rows"]] == ["2026-02-23", "2026-03-02"]
    first, second = r["rows"]
    assert (first["completed_stories"], first["completed_points"], first["net_points"]) == (1, 3, 3)
    # B done twice (5 + 5), reopened once (5); D done Sunday 23:30 UTC (1).
    assert second == {
        "week": "2026-03-02",
        "completed_stories": 3,
        "completed_points": 11,
        "reopened_stories": 1,
        "reopened_points": 5,
        "net_stories": 2,
        "net_points": 6,
    }
    assert r["average_net_points"] == 4.5


def test_velocity_time_zone_moves_a_completion_to_the_next_week(rw):
    r = figures.velocity(rw.project, params(tz="Europe/Berlin", **{"from": "2026-02-23", "to": "2026-03-15"}))
    weeks = {row["week"]: row for row in r["rows"]}
    assert weeks["2026-03-02"]["completed_points"] == 10 and weeks["2026-03-02"]["net_points"] == 5
    assert weeks["2026-03-09"]["completed_stories"] == 1 and weeks["2026-03-09"]["completed_points"] == 1


def test_velocity_per_sprint(rw):
    r = figures.velocity(rw.project, params(**{"from": "2026-02-01", "to": "2026-03-10"}), period="sprint")
    rows = {row["sprint"]: row for row in r["rows"]}
    # Stories now in s1: B and C; B completed twice and reopened once inside its days.
    assert rows["s1"]["completed_points"] == 10 and rows["s1"]["reopened_points"] == 5 and rows["s1"]["net_points"] == 5
    assert rows["s2"]["completed_stories"] == 0 and rows["s2"]["net_points"] == 0


def test_throughput(rw):
    r = figures.throughput(rw.project, params(**{"from": "2026-02-23", "to": "2026-03-08"}))
    assert [(row["completed"], row["reopened"], row["net"]) for row in r["rows"]] == [(1, 0, 1), (3, 1, 2)]
    assert r["total_net"] == 3 and r["per_week"]["p50"] == 1 and r["per_week"]["p85"] == 2


def test_cumulative_flow_per_day(rw):
    r = figures.cumulative_flow(rw.project, params(**{"from": "2026-03-01", "to": "2026-03-09"}))
    by_day = {row["day"]: (row["backlog"], row["started"], row["completed"]) for row in r["rows"]}
    assert by_day["2026-03-01"] == (4, 0, 1)  # A done before the range, E, B, C, D drafts
    assert by_day["2026-03-02"] == (3, 1, 1)
    assert by_day["2026-03-03"] == (3, 0, 2)
    assert by_day["2026-03-04"] == (2, 2, 1)  # B reopened, C started
    assert by_day["2026-03-05"] == by_day["2026-03-07"] == (2, 1, 2)
    assert by_day["2026-03-08"] == by_day["2026-03-09"] == (1, 1, 3)
    berlin = figures.cumulative_flow(
        rw.project, params(tz="Europe/Berlin", **{"from": "2026-03-07", "to": "2026-03-09"})
    )
    assert [(row["backlog"], row["completed"]) for row in berlin["rows"]] == [(2, 2), (2, 2), (1, 3)]


def test_cycle_time(rw):
    r = figures.cycle_time(rw.project, params(**{"from": "2026-02-23", "to": "2026-03-10"}))
    # A 2 days, B 3 days (first start 03-02 10:00 → last completion 03-05 10:00); D never started.
    assert (r["stories"], r["never_started"]) == (2, 1)
    assert (r["p50_days"], r["p85_days"], r["p95_days"], r["mean_days"]) == (2, 3, 3, 2.5)
    counts = {(row["from_days"], row["to_days"]): row["stories"] for row in r["rows"]}
    assert counts[(2, 3)] == 1 and counts[(3, 5)] == 1 and sum(counts.values()) == 2


def test_lead_time(rw):
    r = figures.lead_time(rw.project, params(**{"from": "2026-02-23", "to": "2026-03-10"}))
    # A 3 days, B 4 days, D 7 days 15.5 hours = 7.65.
    assert r["stories"] == 3
    assert (r["p50_days"], r["p85_days"], r["p95_days"]) == (4, 7.65, 7.65)
    only_a = figures.lead_time(rw.project, params(**{"from": "2026-02-23", "to": "2026-02-28"}))
    assert only_a["stories"] == 1 and only_a["p50_days"] == 3


def test_ageing_wip(rw):
    r = figures.ageing_wip(rw.project, params())
    assert r["stories"] == 1
    (row,) = r["rows"]
    assert row["key"] == "C" and row["started_on"] == "2026-03-04" and row["age_days"] == 6.17 and row["points"] == 2


def test_epic_progress(rw):
    r = figures.epic_progress(rw.project, params())
    (row,) = r["rows"]
    assert (row["points_total"], row["points_done"], row["percent_done"]) == (10, 8, 80)
    assert (row["stories_total"], row["stories_done"]) == (3, 2)
    # C waits for O1 (in progress) and a hidden story (draft): two open blockers, one story.
    assert (row["open_blockers"], row["blocked_stories"]) == (2, 1)


def test_sprint_burndown_and_burnup_show_scope_changes(rw):
    r = figures.sprint(rw.project, rw.sprint, params())
    assert (r["initial_scope_stories"], r["initial_scope_points"]) == (2, 13)  # B and E
    rows = [
        (x["day"], x["scope_points"], x["done_points"], x["remaining_points"], x["ideal_points"]) for x in r["rows"]
    ]
    assert rows == [
        ("2026-03-02", 13, 0, 13, 13),
        ("2026-03-03", 15, 5, 10, 9.75),  # C added, B done
        ("2026-03-04", 7, 0, 7, 6.5),  # E removed, B reopened
        ("2026-03-05", 7, 5, 2, 3.25),
        ("2026-03-06", 7, 5, 2, 0),
    ]
    assert [(c["day"], c["story"], c["change"], c["points"]) for c in r["scope_changes"]] == [
        ("2026-03-03", "C", "added", 2),
        ("2026-03-04", "E", "removed", 8),
    ]


def test_empty_sprint(rw):
    r = figures.sprint(rw.project, rw.empty_sprint, params())
    assert r["initial_scope_points"] == 0 and r["scope_changes"] == []
    assert [x["scope_points"] for x in r["rows"]] == [0, 0, None, None, None]  # later days are in the future
    assert all(x["ideal_points"] == 0 for x in r["rows"])


def test_cross_project_hides_what_the_reader_cannot_see(rw):
    r = figures.cross_project(rw.project, params(), reader=rw.viewer)
    assert r["rows"] == [
        {"direction": "blocks", "project": "oth", "stories_here": 1, "stories_there": 1, "links": 1, "open_links": 1},
        {
            "direction": "blocks",
            "project": {"hidden": True},
            "stories_here": 1,
            "stories_there": None,
            "links": None,
            "open_links": None,
        },
        {
            "direction": "waits_for",
            "project": "oth",
            "stories_here": 2,
            "stories_there": 2,
            "links": 2,
            "open_links": 1,
        },
        {
            "direction": "waits_for",
            "project": {"hidden": True},
            "stories_here": 1,
            "stories_there": None,
            "links": None,
            "open_links": None,
        },
    ]
    opened = [(b["direction"], b["story"], b["other"].get("key", "hidden")) for b in r["open_blockers"]]
    assert sorted(opened) == [("blocks", "C", "O3"), ("waits_for", "C", "O1"), ("waits_for", "C", "hidden")]
    assert MARKER not in repr(r)
    system = figures.cross_project(rw.project, params(), reader=None)
    assert {row["project"] for row in system["rows"]} == {"oth", f"{MARKER}-secret"}


def test_parameters_are_validated():
    from django.core.exceptions import ValidationError

    for query, field in (
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "to"),
    ):
        with pytest.raises(ValidationError) as caught:
            parse_params(query, now=NOW)
        assert field in caught.value.message_dict
    p = parse_params({}, now=NOW)
    assert (p.start.isoformat(), p.end.isoformat()) == ("2025-12-17", "2026-03-10")
