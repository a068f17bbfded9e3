"""`make bench`: build the benchmark dataset on PostgreSQL, measure, and write
docs/benchmarks.md and docs/benchmarks.json.

Each figure has a stable name in the JSON. A part that cannot be measured (its module or
endpoint is missing, a request fails) is listed with the reason and makes the run exit
non-zero; only a missing wrk binary skips the throughput part, with a warning.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import orjson

from bench.core import (
    REPEAT,
    Context,
    Unavailable,
    failures,
    need,
    record,
    results,
    rows,
    run_parts,
    section,
    timeit,
    timeit_pair,
    unavailable,
)

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get("BENCH_DB", "storyhub_bench")
STORIES = int(os.environ.get("BENCH_STORIES", "100000"))
PROJECTS = int(os.environ.get("BENCH_PROJECTS", "10"))
# The list-vs-floor ratios get more samples: they are the figures with the tightest targets.
LIST_REPEAT = int(os.environ.get("BENCH_LIST_REPEAT", str(max(REPEAT, 100))))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "10"))
LIST_PROJECT = "bench-00"
# Figures that depend on the dataset's size carry it: `_100k` by default, `_1m` for the
# million-story stage (BENCH_STORIES=1000000 BENCH_PROJECTS=100, opt-in: it builds for minutes).
SIZE = "1m" if STORIES >= 1_000_000 else f"{STORIES // 1000}k"
API = "/api/v1"
# BENCH_PARTS=list,detail,startup measures only those (comma-separated; empty = everything):
# graph, list, detail, inprocess (transition, search, queries per request), throughput
# (the trivial view's requests/s), import, and the name of any module in bench/parts/.
# A selected run does not touch docs/benchmarks.*: it prints its table and, with
# BENCH_OUT=FILE, writes its JSON there (the full `make bench` writes the docs).
SELECTED = {p.strip() for p in os.environ.get("BENCH_PARTS", "").split(",") if p.strip()}
GROUPS = {"graph", "list", "detail", "inprocess", "throughput", "import"}


def wanted(group: str) -> bool:
    return not SELECTED or group in SELECTED


# --------------------------------------------------------------------------- in process


def same_payload(a: bytes, b: bytes) -> bool:
    """Equal JSON, ignoring the order of each story's dependencies (unordered in the API)."""

    def norm(raw):
        data = orjson.loads(raw)
        for row in data["results"]:
            row["dependencies"] = sorted(row["dependencies"], key=lambda d: (d["depends_on"], d["type"]))
        return data

    return norm(a) == norm(b)


def bench_inprocess(info: dict) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=info["member"])
    if wanted("list"):
        bench_list_inprocess(user)
    if wanted("inprocess"):
        bench_writes_and_search(user)


def bench_list_inprocess(user) -> None:
    from django.test import Client

    from bench.views import floor_rows

    with section("list_inprocess"):
        url = f"{API}/projects/{LIST_PROJECT}/stories/"
        client = Client()
        client.force_login(user)
        resp = client.get(url, {"page_size": 100})
        if resp.status_code == 404 and b"Page not found" in resp.content:
            raise Unavailable(f"story list endpoint {url} not routed yet")
        if resp.status_code != 200:
            raise RuntimeError(f"{url} -> {resp.status_code}: {resp.content[:300]!r}")
        if same_payload(resp.content, floor_rows(LIST_PROJECT, 100, user)) is False:
            raise RuntimeError("the floor view's payload differs from the API's: the comparison would be unfair")
        results["list_payload_bytes"] = len(resp.content)

        def api_get():
            response = client.get(url, {"page_size": 100})
            if response.status_code != 200:
                raise RuntimeError(f"{url} -> {response.status_code}")

        floor, api = timeit_pair(lambda: floor_rows(LIST_PROJECT, 100, user), api_get, repeat=LIST_REPEAT)
        record("list_100_floor_inprocess_ms", *floor, "raw psycopg + orjson")
        record("list_100_inprocess_ms", *api, "")
        results["list_100_inprocess_ratio_to_floor"] = round(api[0] / floor[0], 2)
        rows.append(
            ("list_100_inprocess_ratio_to_floor", str(results["list_100_inprocess_ratio_to_floor"]), "", "≤ 1.5")
        )


def bench_writes_and_search(user) -> None:
    from django.db import connection
    from django.test import Client

    from stories import services
    from stories.models import Project, Story

    with section("transition"):
        # Stories that may start (the blocked guard refuses the others), by the ready rule.
        from stories.graph import ready_story_ids

        ready = ready_story_ids(project=Project.objects.get(slug=LIST_PROJECT), limit=REPEAT + 5)
        stories = list(Story.objects.filter(pk__in=ready).order_by("id"))
        if len(stories) < REPEAT + 3:
            raise RuntimeError(f"only {len(stories)} ready stories to transition in {LIST_PROJECT}")
        it = iter(stories)

        def one():
            s = next(it)
            services.story_transition(actor=user, story=s, status="in_progress", notes="bench")

        record("transition_ms", *timeit(one, repeat=REPEAT, warmup=3), "service write + audit + history")

    with section("search"):
        client = Client()
        client.force_login(user)
        search_url = f"{API}/stories/"

        def search():
            response = client.get(search_url, {"q": "story 4242", "page_size": 100})
            if response.status_code != 200:
                raise RuntimeError(f"{search_url} -> {response.status_code}")

        record(f"search_ms_{SIZE}", *timeit(search, repeat=min(REPEAT, 15)), "< 100 (in process, all projects)")

    with section("queries_per_request"):
        from django.db import reset_queries
        from django.test.utils import CaptureQueriesContext

        client = Client()
        client.force_login(user)
        story_key = Story.objects.filter(project__slug=LIST_PROJECT).order_by("-id").values_list("key", flat=True)[0]
        p = f"{API}/projects/{LIST_PROJECT}"
        for name, url in (
            ("story_list", f"{p}/stories/?page_size=100"),
            ("project_list", f"{API}/projects/"),
            ("backlog_list", f"{p}/backlogs/"),
            ("status_list", f"{p}/statuses/"),
            ("epic_list", f"{p}/epics/"),
            ("member_list", f"{p}/members/"),
            ("ready_list", f"{p}/ready/"),
            ("dependency_list", f"{p}/stories/{story_key}/dependencies/"),
            ("history_list", f"{p}/stories/{story_key}/history/"),
            ("blockers_transitive", f"{p}/stories/{story_key}/blockers/?transitive=true"),
            ("search", f"{API}/stories/?q=story&page_size=100"),
            ("audit_list", f"{API}/audit/?page_size=100"),
            ("project_dependency_list", f"{API}/project-dependencies/"),
            ("session_list", f"{API}/sessions/"),
        ):
            with CaptureQueriesContext(connection) as ctx:
                resp = client.get(url)
            if resp.status_code != 200:
                raise RuntimeError(f"{url} -> {resp.status_code}")
            results[f"queries_per_request_{name}"] = len(ctx.captured_queries)
            rows.append((f"queries_per_request_{name}", str(len(ctx.captured_queries)), "", "constant"))
        reset_queries()


def bench_graph() -> None:
    from stories.models import Story

    graph = None
    with section("graph"):
        try:
            graph = importlib.import_module("stories.graph")
        except ImportError as exc:
            raise Unavailable(f"stories.graph not importable: {exc}") from exc
    if graph is None:
        return
    from stories.models import Project

    # The last story of the last project sits deepest: its blockers reach back through
    # its epic, the platform epic and other projects.
    deep = Story.objects.filter(project__slug=f"bench-{PROJECTS - 1:02d}").order_by("-id").first()
    ready_project = Project.objects.get(slug="bench-05")
    project_10k = Project.objects.get(slug="bench-03")
    # Each story of this chain waits for the previous two: every story is reachable from
    # the last one by many routes of different lengths.
    chain_last = Story.objects.filter(project__slug="bench-chain").order_by("-id").first()

    def uncached(fn, project):
        graph._order_cache.clear()  # noqa: SLF001 - the benchmark times the cold path on purpose
        return fn(project=project)

    results["transitive_blockers_count"] = len(graph.story_blockers(story=deep, transitive=True))
    results["transitive_blockers_chain_count"] = len(graph.story_blockers(story=chain_last, transitive=True))
    for name, target, call in (
        (f"transitive_blockers_ms_{SIZE}", "< 50", lambda: graph.story_blockers(story=deep, transitive=True)),
        (
            "transitive_blockers_ms_chain_4k",
            "< 50",
            lambda: graph.story_blockers(story=chain_last, transitive=True),
        ),
        (f"ready_ms_{SIZE}", "< 50", lambda: graph.ready_story_ids(project=ready_project, limit=100)),
        ("topo_order_ms_10k", "≤ 30", lambda: graph.topological_order(project=project_10k)),
        ("critical_path_ms_10k", "≤ 40", lambda: graph.critical_path(project=project_10k)),
        # The same with the per-process cache emptied first: the first request after a
        # change of the project's graph (two reads and the ordering in Python).
        ("topo_order_uncached_ms_10k", "", lambda: uncached(graph.topological_order, project_10k)),
        ("critical_path_uncached_ms_10k", "", lambda: uncached(graph.critical_path, project_10k)),
    ):
        with section(name):
            try:
                call()
            except (AttributeError, TypeError) as exc:
                raise Unavailable(f"stories.graph API differs: {exc}") from exc
            record(name, *timeit(call, repeat=min(REPEAT, 15)), target)


def bench_import() -> None:
    """10,000 story files imported end to end (bench/importing.py): median and p95 of
    several runs, PyYAML's C loader as the floor, re-imports unchanged and changed."""
    with section("import"):
        need("stories.importer", "import_stories")
        from bench import importing

        importing.run()


# --------------------------------------------------------------------------- over HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int) -> subprocess.Popen:
    # os.environ carries the benchmark's rate limits (bench.dataset.setup_django sets them).
    env = dict(os.environ)
    env.update(
        DATABASE_URL=os.environ["DATABASE_URL"],
        DJANGO_SETTINGS_MODULE="storyhub.settings.local",
        STORYHUB_BENCH_VIEWS="true",
        DB_POOL="true",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=str(max(2, os.cpu_count() or 2)),
        GUNICORN_THREADS="1",
        GUNICORN_ACCESS_LOG="",
        GUNICORN_LOG_LEVEL="warning",
        GUNICORN_MAX_REQUESTS="0",
        DJANGO_MIGRATE="false",
        DEBUG="false",
    )
    py = sys.executable
    if (ROOT / "gunicorn.conf.py").exists():
        cmd = [py, "-m", "gunicorn", "storyhub.wsgi", "-c", "gunicorn.conf.py"]
    else:
        cmd = [py, "-m", "gunicorn", "storyhub.wsgi", "-b", f"127.0.0.1:{port}", "-w", env["GUNICORN_WORKERS"]]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("gunicorn did not come up")


def http_ok(url: str, headers: dict) -> bytes:
    """GET that must answer 200: a timing of 429s or 500s would be meaningless."""
    status, body = http_get(url, headers)
    if status != 200:
        raise RuntimeError(f"{url} -> {status}: {body[:300]!r}")
    return body


def http_get(url: str, headers: dict) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def auth_headers(info: dict) -> dict:
    """A Bearer API key for the member when API keys exist, else a session cookie."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=info["member"])
    try:
        from sessions_app.services import api_key_create
    except ImportError:
        return {"Cookie": session_cookie(info)}
    _, plaintext = api_key_create(actor=None, user=user, name="bench")
    return {"Authorization": f"Bearer {plaintext}"}


def session_cookie(info: dict) -> str:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    c = Client()
    c.force_login(get_user_model().objects.get(username=info["member"]))
    return f"{settings.SESSION_COOKIE_NAME}={c.cookies[settings.SESSION_COOKIE_NAME].value}"


def wrk(url: str, headers: dict) -> float:
    args = ["wrk", "-t2", "-c8", f"-d{WRK_SECONDS}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=WRK_SECONDS + 30, check=True).stdout
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests; requests/s would count them:\n{out}")
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"no Requests/sec in wrk output: {out}")


def bench_throughput(base: str, headers: dict, floor_url: str, list_url: str, detail_url: str) -> None:
    if wanted("throughput"):
        with section("framework_floor_rps"):
            results["framework_floor_rps"] = round(wrk(f"{base}/bench/trivial", headers))
            rows.append(("framework_floor_rps", str(results["framework_floor_rps"]), "", "floor"))
    if wanted("list"):
        with section("list_floor_rps"):
            results["list_floor_rps"] = round(wrk(floor_url, headers))
            rows.append(("list_floor_rps", str(results["list_floor_rps"]), "", "floor"))
    if "list_100_http_ms" in results:
        with section("list_rps"):
            results["list_rps"] = round(wrk(list_url, headers))
            rows.append(("list_rps", str(results["list_rps"]), "", ""))
    if "detail_ms" in results:
        with section("detail_rps"):
            results["detail_floor_rps"] = round(
                wrk(detail_url.replace(f"{API}/", "/bench/floor/").rstrip("/"), headers)
            )
            rows.append(("detail_floor_rps", str(results["detail_floor_rps"]), "", "floor"))
            results["detail_rps"] = round(wrk(detail_url, headers))
            rows.append(("detail_rps", str(results["detail_rps"]), "", ""))
            results["detail_ratio_to_floor"] = round(results["detail_rps"] / results["detail_floor_rps"], 2)
            rows.append(("detail_ratio_to_floor", str(results["detail_ratio_to_floor"]), "", "≥ 0.70 (requests/s)"))


class RssSampler(threading.Thread):
    """The largest resident memory of any worker of `proc`, sampled every second."""

    def __init__(self, proc: subprocess.Popen) -> None:
        super().__init__(daemon=True)
        self.proc, self.stop, self.max_mb = proc, threading.Event(), 0.0

    def run(self) -> None:
        from bench.parts.workers import rss_mb, worker_pids

        while not self.stop.wait(1.0):
            for pid in worker_pids(self.proc.pid):
                self.max_mb = max(self.max_mb, rss_mb(pid) or 0.0)


def bench_http(info: dict) -> None:
    port = free_port()
    proc = start_gunicorn(port)
    sampler = RssSampler(proc)
    sampler.start()
    base = f"http://127.0.0.1:{port}"
    headers = auth_headers(info)
    results["http_auth"] = next(iter(headers))
    try:
        floor_url = f"{base}/bench/floor/projects/{LIST_PROJECT}/stories"
        list_url = f"{base}{API}/projects/{LIST_PROJECT}/stories/?page_size=100"
        detail_url = f"{base}{API}/projects/{LIST_PROJECT}/stories/B00-00042/"
        if wanted("list"):
            bench_list_http(headers, floor_url, list_url)
        if wanted("detail"):
            bench_detail_http(base, headers, detail_url)
        if shutil.which("wrk") is None:
            unavailable["throughput"] = "wrk not installed"
        else:
            bench_throughput(base, headers, floor_url, list_url, detail_url)
        # Each area's own part (bench/parts/), with this server up.
        run_parts(Context(info=info, base=base, headers=headers), only=SELECTED - GROUPS if SELECTED else None)
    finally:
        sampler.stop.set()
        sampler.join(timeout=5)
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    # Every worker of this server through the whole HTTP phase (lists, detail, wrk, parts);
    # worker_rss_mb_max is the larger of that and the workers part's own memory run.
    if sampler.max_mb:
        results["worker_rss_mb_http_run_max"] = round(sampler.max_mb, 1)
        rows.append(("worker_rss_mb_http_run_max", str(results["worker_rss_mb_http_run_max"]), "", "< 250"))
        results["worker_rss_mb_max"] = max(results.get("worker_rss_mb_max", 0), results["worker_rss_mb_http_run_max"])


def bench_list_http(headers: dict, floor_url: str, list_url: str) -> None:
    with section("list_http"):
        status, _ = http_get(floor_url, headers)
        if status != 200:
            raise RuntimeError(f"floor view -> {status}")
        status, body = http_get(list_url, headers)
        if status == 404:
            raise Unavailable("story list endpoint not routed yet")
        if status != 200:
            raise RuntimeError(f"list -> {status}: {body[:300]!r}")
        floor, api = timeit_pair(
            lambda: http_ok(floor_url, headers), lambda: http_ok(list_url, headers), repeat=LIST_REPEAT, warmup=10
        )
        record("list_100_floor_http_ms", *floor, "raw psycopg + orjson")
        record("list_100_http_ms", *api, "")
        results["list_100_ratio_to_floor"] = round(api[0] / floor[0], 2)
        rows.append(("list_100_ratio_to_floor", str(results["list_100_ratio_to_floor"]), "", "≤ 1.2"))


def bench_detail_http(base: str, headers: dict, detail_url: str) -> None:
    with section("detail_http"):
        status, _ = http_get(detail_url, headers)
        if status == 404:
            raise Unavailable("story detail endpoint not routed yet")
        detail_floor_url = f"{base}/bench/floor/projects/{LIST_PROJECT}/stories/B00-00042"
        api_body, floor_body = http_ok(detail_url, headers), http_ok(detail_floor_url, headers)
        if not same_payload(b'{"results":[%s]}' % api_body, b'{"results":[%s]}' % floor_body):
            raise RuntimeError("the detail floor's payload differs from the API's: the comparison would be unfair")
        floor, api = timeit_pair(
            lambda: http_ok(detail_floor_url, headers), lambda: http_ok(detail_url, headers), warmup=10
        )
        record("detail_floor_http_ms", *floor, "raw psycopg + orjson")
        record("detail_ms", *api, "")


# --------------------------------------------------------------------------- report


# (figure, target, label) drawn in docs/benchmarks.svg: each bar is the measured value as
# a share of its target, so everything left of the target line meets it.
PLOTTED = [
    ("list_100_ratio_to_floor", 1.2, "story list over HTTP, × floor"),
    ("list_100_inprocess_ratio_to_floor", 1.5, "story list in process, × floor"),
    ("detail_ratio_to_floor", 0.7, "story detail, share of floor req/s"),
    ("transitive_blockers_ms_100k", 50, "transitive blockers, ms (100k)"),
    ("transitive_blockers_ms_chain_4k", 50, "transitive blockers, ms (4k chain)"),
    ("ready_ms_100k", 50, "ready list, ms (100k)"),
    ("search_ms_100k", 100, "search, ms (100k)"),
    ("topo_order_ms_10k", 30, "topological order, ms (10k)"),
    ("critical_path_ms_10k", 40, "critical path, ms (10k)"),
    ("import_stories_per_s", 10000, "import, stories/s (target ÷ value)"),
    ("manage_startup_s", 1, "manage.py check, s"),
    ("make_run_fresh_s", 60, "make run, fresh clone, s"),
    ("worker_rss_mb_max", 250, "worker RSS, MB"),
    # The million-story stage (its own run, merged in: see write_report).
    ("transitive_blockers_ms_1m", 50, "transitive blockers, ms (1m)"),
    ("ready_ms_1m", 50, "ready list, ms (1m)"),
    ("search_ms_1m", 100, "search, ms (1m)"),
    ("list_100_ratio_to_floor_1m", 1.3, "story list over HTTP, × floor (1m)"),
    ("worker_rss_mb_max_1m", 250, "worker RSS, MB (1m)"),
    ("build_seconds_1m", 300, "1m dataset build, s"),
]
HIGHER_IS_BETTER = {"import_stories_per_s", "detail_ratio_to_floor"}
# The million-story stage is its own run (`make bench BENCH_STORIES=1000000
# BENCH_PROJECTS=100`): every figure it measures is named with `_1m`, and it replaces only
# the `_1m` figures of docs/benchmarks.json, so the default run's figures stay, and each
# figure and each ratio comes from one run, against floors timed in that run.
STAGE = "_1m"
DOCS = Path(os.environ.get("BENCH_DOCS", str(ROOT / "docs")))  # another directory: to test the writing


def write_plot(path: Path) -> bool:
    """A dependency-free SVG bar chart of the figures that have targets."""
    bars = []
    for name, target, label in PLOTTED:
        value = results.get(name)
        if isinstance(value, int | float):
            bars.append((name, label, float(value), target))
    if not bars:
        return False
    width, left, row, scale = 760, 250, 28, 300  # the target sits at left + scale
    height = 50 + row * len(bars)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif"'
        ' font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="10" y="18" font-weight="bold">Measured value as a share of its target'
        " (the line is the target; shorter is better)</text>",
    ]
    for i, (name, label, value, target) in enumerate(bars):
        y = 34 + i * row
        share = target / value if name in HIGHER_IS_BETTER else value / target
        colour = "#4caf50" if share <= 1 else "#e53935"
        out.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{min(share, 1.45) * scale:.1f}" height="18" fill="{colour}"/>')
        # The figure right of its bar, and never across the target line.
        text_x = left + max(min(share, 1.45), 1.0 if share > 0.75 else 0) * scale + 6
        out.append(f'<text x="{text_x:.1f}" y="{y + 14}">{value:g} / {target:g}</text>')
    out.append(f'<line x1="{left + scale}" y1="28" x2="{left + scale}" y2="{height - 8}" stroke="black"/>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")
    return True


def staged(name: str) -> str:
    return name if name.endswith(STAGE) else name + STAGE


def stage_payload(info: dict, total_s: float) -> dict:
    """This run's description, figures and table rows: the default dataset's, or the
    million-story stage's (every name ending in `_1m`)."""
    stage = SIZE == "1m"
    dataset = {k: v for k, v in info.items() if k not in ("database", "member", "outsider")}
    run_results, run_rows = dict(results), list(rows)
    if stage:
        run_results = {staged(k): v for k, v in run_results.items()}
        run_results |= {staged(k): v for k, v in dataset.items() if k.startswith("build_")}
        run_rows = [(staged(n), m, p, t) for n, m, p, t in run_rows]
        run_rows.append((staged("build_seconds"), str(dataset.get("build_seconds")), "", "< 300"))
    return {
        "dataset": dataset,
        "repeat": REPEAT,
        "list_repeat": LIST_REPEAT,
        "wrk_seconds": WRK_SECONDS,
        "results": run_results,
        "rows": run_rows,
        "unavailable": dict(unavailable),
        "failures": list(failures),
        "run_seconds": round(total_s, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def write_report(info: dict, total_s: float, docs: Path = DOCS) -> None:
    """docs/benchmarks.{json,md,svg}: this run's stage replaces its own figures and keeps
    the other stage's from the JSON already there (README "Benchmarks")."""
    docs.mkdir(exist_ok=True)
    run = stage_payload(info, total_s)
    path = docs / "benchmarks.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    if SIZE == "1m":
        base = {k: v for k, v in previous.items() if k != "stage_1m"}
        base.setdefault("results", {})
        base["results"] = {k: v for k, v in base["results"].items() if not k.endswith(STAGE)} | run["results"]
        payload = base | {"stage_1m": {k: v for k, v in run.items() if k != "results"}}
    else:
        kept = {k: v for k, v in previous.get("results", {}).items() if k.endswith(STAGE)}
        payload = {k: v for k, v in run.items() if k != "results"} | {"results": run["results"] | kept}
        if "stage_1m" in previous:
            payload["stage_1m"] = previous["stage_1m"]
    payload["machine"] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    write_markdown(payload, docs)


def _dataset_line(info: dict) -> str:
    return (
        f"{info['stories']} stories in {info['projects']} projects of {info['stories_per_project']},"
        f" {info['dependencies']} `blocks` dependencies ({info['cross_project_dependencies']} cross-project),"
        f" {info['status_history_rows']} status_history rows, {info['audit_rows']} audit rows;"
        f" built with COPY in {info['build_seconds']} s"
    )


def _table(table_rows: list) -> list[str]:
    lines = ["| figure | median | p95 | target / note |", "| --- | --- | --- | --- |"]
    return lines + [f"| `{n}` | {m} | {p} | {t} |" for n, m, p, t in table_rows]


def write_markdown(payload: dict, docs: Path) -> None:
    info = payload.get("dataset")
    lines = [
        "# StoryHub benchmarks",
        "",
        "Generated by `make bench` (bench/run.py); do not edit by hand. Figures in milliseconds",
        f"are medians and p95 over {payload.get('repeat')} runs after warm-up ({payload.get('list_repeat')} for the story",
        "list and its floor, timed alternately so both see the same machine); throughput is wrk, 2 threads,",
        f"8 connections, {payload.get('wrk_seconds')} s per endpoint, on loopback against gunicorn (every response",
        "checked to be a 200).",
        "",
        f"- machine: {os.cpu_count()} CPUs, Python {platform.python_version()}",
    ]
    if info and "rows" not in payload:  # written before the table rows were kept: the figures alone
        payload["rows"] = [(k, v, "", "") for k, v in sorted(payload["results"].items()) if not k.endswith(STAGE)]
    if info:
        lines += [
            f"- dataset: {_dataset_line(info)}",
            f"- whole run: {round(payload.get('run_seconds', 0))} s, finished {payload.get('finished', '?')},"
            f" load average at the end {payload.get('loadavg', '?')}",
            "",
            *_table(payload["rows"]),
        ]
    for title, key in (("Not measured in this run", "unavailable"), ("Failed", "failures")):
        if payload.get(key):
            entries = payload[key].items() if key == "unavailable" else ((f, "") for f in payload[key])
            lines += ["", f"## {title}", ""] + [f"- `{k}`{': ' + v if v else ''}" for k, v in sorted(entries)]
    stage = payload.get("stage_1m")
    if stage:
        lines += [
            "",
            "## The million-story stage",
            "",
            "Its own run (`make bench BENCH_STORIES=1000000 BENCH_PROJECTS=100`), every figure named `_1m`",
            "and every ratio against a floor timed in that run.",
            "",
            f"- dataset: {_dataset_line(stage['dataset'])}",
            f"- whole run: {round(stage['run_seconds'])} s, finished {stage.get('finished', '?')},"
            f" load average at the end {stage.get('loadavg', '?')}",
            "",
            *_table(stage["rows"]),
        ]
        if stage.get("failures"):
            lines += ["", "Failed in that run: " + ", ".join(f"`{f}`" for f in stage["failures"])]
    results.update(payload["results"])  # the plot draws both stages
    if write_plot(docs / "benchmarks.svg"):
        lines += ["", "![each figure against its target](benchmarks.svg)"]
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    (docs / "benchmarks.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    from bench import dataset

    t0 = time.perf_counter()
    # BENCH_REUSE_DB=1 (with BENCH_KEEP_DB=1 on the run before): measure the database a
    # previous run kept, if it has the same size, instead of building it again. Only for
    # parts that do not write (list, detail, throughput, graph, startup).
    info = dataset.existing(DB, STORIES, PROJECTS) if os.environ.get("BENCH_REUSE_DB") == "1" else None
    if info is None:
        info = dataset.build(DB, STORIES, PROJECTS)
    dataset.setup_django(DB)
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the in-process test client
    unknown = SELECTED - GROUPS - {m.name for m in pkgutil.iter_modules([str(ROOT / "bench" / "parts")])}
    if unknown:
        raise SystemExit(f"BENCH_PARTS: unknown {', '.join(sorted(unknown))}")
    try:
        if wanted("graph"):
            bench_graph()
        bench_inprocess(info)
        bench_http(info)
        if wanted("import"):
            bench_import()
    finally:
        from django.db import connections

        connections.close_all()
        if SELECTED:
            write_selected(info, time.perf_counter() - t0)
        else:
            write_report(info, time.perf_counter() - t0)
        if os.environ.get("BENCH_KEEP_DB") != "1":
            dataset.drop_database(DB)
    if not SELECTED:
        print((DOCS / "benchmarks.md").read_text())
    return 1 if failures else 0


def write_selected(info: dict, total_s: float) -> None:
    """A BENCH_PARTS run: its table on stdout (with the load average, since the machine is
    shared), its JSON in BENCH_OUT if set; docs/benchmarks.* stay as the last full run left them."""
    load = os.getloadavg()
    print(f"BENCH_PARTS={','.join(sorted(SELECTED))}  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"whole run {round(total_s)} s; failures: {failures or 'none'}")
    print("| figure | median | p95 | target / note |\n| --- | --- | --- | --- |")
    for n, m, p95, t in rows:
        print(f"| `{n}` | {m} | {p95} | {t} |")
    out = os.environ.get("BENCH_OUT")
    if out:
        payload = {"parts": sorted(SELECTED), "loadavg": load, "results": results, "failures": failures}
        Path(out).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    sys.exit(main())
