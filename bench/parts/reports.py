"""Reports (issue 15) on the 100k dataset: every report of one 10,000-story project over a
year (`report_<name>_ms`, median and p95, target < 200 ms, through the API in process:
authentication, project lookup and the report), and whether its query count is the same
for two projects of different shape (`report_queries_constant`). Each report is timed
alternately with a floor, the project's detail (`GET projects/{slug}/`: the same
authentication, lookup and JSON response, no report), so a change in the shared
machine's load hits both: `report_floor_ms` and `report_<name>_ratio_to_floor`; the
load average before and after is kept (`report_loadavg`). A sprint backlog of 300
stories is set up first (setup, not measured). Standalone:
`BENCH_DB=storyhub_bench_reports python -m bench.parts.reports` builds, measures, drops;
with `BENCH_KEEP_DB=1` it keeps the database and with `BENCH_REUSE_DB=1` it measures one
kept before instead of building it again."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from bench.core import Context, record, results, rows, stats, timeit_pair

NOW = datetime(2026, 1, 1, tzinfo=UTC)  # the dataset's `now`
REPORTS = [
    "velocity",
    "velocity?period=sprint",
    "burndown/bench-sprint",
    "burnup/bench-sprint",
    "cumulative-flow",
    "cycle-time",
    "lead-time",
    "throughput",
    "ageing-wip",
    "epic-progress",
    "cross-project",
]
TARGET_MS = 200


def _sprint(project, last_day) -> None:
    from stories import services
    from stories.models import Backlog, Story

    if Backlog.objects.filter(project=project, slug="bench-sprint").exists():
        return
    starts = last_day - timedelta(days=20)
    sprint = services.backlog_create(
        actor=None,
        project=project,
        slug="bench-sprint",
        name="Bench sprint",
        type="sprint",
        starts_on=starts,
        ends_on=starts + timedelta(days=13),
    )
    since = datetime.combine(starts - timedelta(days=10), datetime.min.time(), tzinfo=UTC)
    ids = list(
        Story.objects.filter(project=project, created_at__gte=since).order_by("pk").values_list("pk", flat=True)[:300]
    )
    Story.objects.filter(pk__in=ids).update(backlog=sprint)  # setup: the stories join at their creation


def run(ctx: Context) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from stories.models import Project
    from stories.reports import params as report_params

    member = get_user_model().objects.get(username=ctx.info["member"])
    first, other = Project.objects.get(slug="bench-00"), Project.objects.get(slug="bench-05")
    last_day = (NOW - timedelta(days=14)).date()
    for project in (first, other):
        _sprint(project, last_day)
    client = Client()
    client.force_login(member)
    query = f"from={last_day - timedelta(days=364)}&to={last_day}"
    real_now = report_params.timezone.now
    report_params.timezone.now = lambda: NOW  # ageing WIP and "today" as of the dataset
    repeat = int(os.environ.get("BENCH_REPORT_REPEAT", "15"))
    load_before = os.getloadavg()
    floors: list[float] = []

    def floor():
        response = client.get(f"/api/v1/projects/{first.slug}/")
        assert response.status_code == 200, response.status_code

    try:
        constant = True
        for name in REPORTS:
            path, _, extra = name.partition("?")

            def get(project, path=path, extra=extra):
                response = client.get(f"/api/v1/projects/{project.slug}/reports/{path}/?{query}&{extra}")
                assert response.status_code == 200, (path, response.status_code, response.content[:300])
                return response

            counts = []
            for project in (first, other):
                with CaptureQueriesContext(connection) as ctx_q:
                    get(project)
                counts.append(len(ctx_q.captured_queries))
            constant &= counts[0] == counts[1]
            figure = (
                "report_"
                + name.split("/")[0].split("?")[0].replace("-", "_")
                + ("_sprint" if "period" in name else "")
                + "_ms"
            )
            (floor_median, _), (median, p95) = timeit_pair(floor, lambda get=get: get(first), repeat=repeat)
            floors.append(floor_median)
            record(figure, median, p95, f"< {TARGET_MS} ms ({counts[0]} queries)")
            results[figure.replace("_ms", "_queries")] = counts[0]
            ratio = figure.replace("_ms", "_ratio_to_floor")
            results[ratio] = round(median / floor_median, 1)
            rows.append((ratio, str(results[ratio]), "", "report / project detail, timed alternately"))
        results["report_queries_constant"] = constant
        rows.append(("report_queries_constant", str(constant), "", "same count for bench-00 and bench-05"))
        floor_median = stats([f / 1000 for f in floors])[0]
        results["report_floor_ms"] = floor_median
        rows.append(("report_floor_ms", str(floor_median), "", "project detail (median of the pairs' medians)"))
        load = [round(x, 2) for x in (*load_before, *os.getloadavg())]
        results["report_loadavg"] = load
        rows.append(("report_loadavg", " / ".join(map(str, load)), "", "1, 5, 15 min before, then after"))
    finally:
        report_params.timezone.now = real_now


def main() -> int:
    from bench import core, dataset

    db = os.environ.get("BENCH_DB", "storyhub_bench_reports")
    if os.environ.get("BENCH_REUSE_DB") == "1":
        info = {"database": db, "member": dataset.BENCH_USER}
    else:
        info = dataset.build(
            db, int(os.environ.get("BENCH_STORIES", "100000")), int(os.environ.get("BENCH_PROJECTS", "10"))
        )
    dataset.setup_django(db)
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    try:
        with core.section("reports"):
            run(Context(info=info))
    finally:
        from django.db import connections

        connections.close_all()
        if os.environ.get("BENCH_KEEP_DB") != "1" and os.environ.get("BENCH_REUSE_DB") != "1":
            dataset.drop_database(db)
    for row in core.rows:
        print(" | ".join(row))
    return 1 if core.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
