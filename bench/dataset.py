"""Benchmark dataset generator: N stories on PostgreSQL, loaded with COPY.

Data generation is setup, not a measured service path, so rows are written with COPY;
projects, workflows, users and memberships still go through the services. The shape:

- `projects` projects of equal size (the 100k dataset = 10 projects of 10,000 stories);
- stories grouped in epics of 100; each story `blocks`-depends on ~3 earlier stories:
  the previous story of its epic (half the time: chains up to 100 deep), two random
  earlier ones of its epic, sometimes a story of the project's first ("platform") epic,
  and sometimes (cross-project) a platform story of an earlier project. Edges always point
  to a smaller id, so the graph is acyclic; transitive closures stay realistic (hundreds).
- statuses spread over every workflow category (earlier stories are more often done);
- every story has 1-3 status_history rows (created, then transitions 6 h to 2.7 days
  apart; creations spread over one year) and one audit row per history row, like the
  services write them;
- apart from those, project `bench-chain`: CHAIN_STORIES stories where each one
  `blocks`-depends on the previous two (the worst case for a walk that revisits a story
  once per route length; `transitive_blockers_ms_chain_4k` walks it from the last one).

Usage: python -m bench.dataset --db storyhub_bench --stories 100000 --projects 10
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import time
from bisect import bisect
from datetime import UTC, datetime
from itertools import accumulate

import psycopg
import psycopg.sql

EPIC_SIZE = 100
YEAR_S = 365 * 86400
BENCH_USER = "bench-member"
BENCH_PASSWORD = "bench-password"  # noqa: S105 - local throwaway benchmark database
OTHER_USER = "bench-outsider"
CHAIN_PROJECT = "bench-chain"
CHAIN_STORIES = 4000

# (slug, weight) of the final status; the path walked to get there gives the history.
FINAL_STATUS = [
    ("draft", 10),
    ("backlog", 12),
    ("ready", 16),
    ("in_progress", 8),
    ("review", 5),
    ("blocked", 3),
    ("done", 34),
    ("accepted", 7),
    ("cancelled", 5),
]
PATH_TO = {
    "draft": ["draft"],
    "backlog": ["draft", "backlog"],
    "ready": ["backlog", "ready"],
    "in_progress": ["ready", "in_progress"],
    "review": ["ready", "in_progress", "review"],
    "blocked": ["ready", "blocked"],
    "done": ["ready", "in_progress", "done"],
    "accepted": ["in_progress", "done", "accepted"],
    "cancelled": ["backlog", "cancelled"],
}
LABELS = ["api", "db", "ui", "infra", "security", "perf", "docs", "cli", "import", "graph"]
WORDS = ["sync", "parse", "index", "cache", "export", "import", "render", "queue", "schema", "audit", "graph", "order"]


def server_url(db: str = "postgres") -> str:
    base = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    return f"{base.rstrip('/')}/{db}"


def recreate_database(db: str) -> None:
    if not db.startswith("storyhub_bench"):
        raise SystemExit(f"refusing to drop {db!r}: bench databases are named storyhub_bench*")
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (db,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
        conn.execute(f'CREATE DATABASE "{db}"')


def drop_database(db: str) -> None:
    if not db.startswith("storyhub_bench"):
        raise SystemExit(f"refusing to drop {db!r}")
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (db,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{db}"')


def setup_django(db: str) -> None:
    os.environ["DATABASE_URL"] = server_url(db)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "storyhub.settings.local")
    # Rate limits far above what the benchmark sends, here and in its gunicorn (they still
    # run on every request; per second, so the throttle's history list stays short).
    os.environ.setdefault("API_THROTTLE_KEY", "1000000/s")
    os.environ.setdefault("API_THROTTLE_USER", "1000000/s")
    import django

    django.setup()


def _copy(cur, table: str, columns: list[str], rows) -> int:
    n = 0
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


_EPIC_COLUMNS = ["id", "project_id", "slug", "name", "description", "created_at", "updated_at"]
_DEP_COLUMNS = ["story_id", "depends_on_id", "type", "description", "created_at"]
_HISTORY_COLUMNS = ["story_id", "old_status_id", "new_status_id", "changed_by_id", "changed_at", "notes"]
_AUDIT_COLUMNS = ["action", "entity_type", "entity_id", "project_id", "user_id", "user_repr", "timestamp", "details"]
_COLUMNS = {
    "epics": _EPIC_COLUMNS,
    "story_dependencies": _DEP_COLUMNS,
    "status_history": _HISTORY_COLUMNS,
    "audit_log": _AUDIT_COLUMNS,
}
# The two COPY streams (one connection each, so the server loads on both cores): the
# stories with their epics and links, and the history with its audit rows.
_STREAMS = (("epics", "stories", "story_dependencies"), ("status_history", "audit_log"))
NULL = "\\N"  # COPY's text format: NULL; no generated value holds a tab, newline or backslash
# The variable cells of a story row, in this order; every other column is a constant.
_STORY_CELLS = (
    "id", "project_id", "key", "title", "epic_id", "status_id", "priority", "estimate", "points_min", "points_max",
    "branch_name", "file_path", "labels", "created", "last_updated", "body", "version", "created_at", "updated_at",
)  # fmt: skip
_STORY_CONSTANTS = {
    "backlog_id": NULL,
    "owner": "team-a",
    "author": "planning-agent",
    "metadata": json.dumps({"layer": "bench", "market": "global"}),
    "rank": NULL,
    "source_repo": "",
    "source_path": "",
    "source_hash": "",
}


def _story_template(story_columns: list[str]) -> str:
    """One story's COPY line as a format string, cells in the table's column order."""
    cells = [
        _STORY_CONSTANTS[c].replace("{", "{{").replace("}", "}}")
        if c in _STORY_CONSTANTS
        else f"{{{_STORY_CELLS.index(c)}}}"
        for c in story_columns
    ]
    return "\t".join(cells) + "\n"


class _Clock:
    """COPY text of UTC timestamps and dates from whole seconds since the epoch (every
    generated time is whole seconds), each day's date formatted once."""

    def __init__(self) -> None:
        self.days: dict[int, str] = {}

    def date(self, seconds: int) -> str:
        day = seconds // 86400
        text = self.days.get(day)
        if text is None:
            text = self.days[day] = datetime.fromtimestamp(day * 86400, UTC).date().isoformat()
        return text

    def stamp(self, seconds: int) -> str:
        rest = seconds % 86400
        return f"{self.date(seconds)} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}+00"


_LOADED_TABLES = ["epics", "stories", "story_dependencies", "status_history", "audit_log"]
# Indexes that back no constraint (the primary and unique keys stay: they check the rows).
_SECONDARY_INDEXES_SQL = """
    SELECT i.indexname, i.indexdef FROM pg_indexes i
    WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
"""


def _drop_secondary_indexes(cur) -> list[str]:
    """Drop the loaded tables' secondary indexes and return their definitions: building
    each once after the COPY is several times faster than updating it row by row (the
    stories' full-text GIN index most of all)."""
    cur.execute(_SECONDARY_INDEXES_SQL, [_LOADED_TABLES])
    found = cur.fetchall()
    for name, _ in found:
        cur.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in found]


def _create_indexes(db: str, definitions: list[str]) -> None:
    """Build the indexes again, two at a time (one per core), largest tables first."""
    from concurrent.futures import ThreadPoolExecutor

    def create(definition: str) -> None:
        with psycopg.connect(server_url(db), autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '256MB'")
            conn.execute(definition)

    order = sorted(definitions, key=lambda d: ("gin" not in d, "audit_log" not in d, d))
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(create, order))


_PRIORITIES = [1, 2, 2, 3, 3, 3, 4, 5]
_ESTIMATES = ["1sp", "2sp", "3sp", "1-2sp", "5", "8sp"]
_POINTS = {}  # estimate -> (points_min, points_max) as COPY text
for _estimate in _ESTIMATES:
    _lo, _, _hi = _estimate.rstrip("sp").partition("-")
    _POINTS[_estimate] = (_lo, _hi or _lo)
_FINALS = [s for s, _ in FINAL_STATUS]
_CUM_BASE = list(accumulate(float(w) for _, w in FINAL_STATUS[:6]))  # the weights before done
assert [s for s, _ in FINAL_STATUS[6:]] == ["done", "accepted", "cancelled"]
_W_DONE, _W_ACCEPTED, _W_CANCELLED = (w for _, w in FINAL_STATUS[6:])


def _history_steps(status_of: dict[str, int]) -> dict[str, tuple[int, list[tuple[str, str, str, str, str]]]]:
    """Per final status: the story's version and its history steps as COPY cells (old
    status id, new status id, notes, audit action, audit details), for one project."""
    steps = {}
    for final, walked in PATH_TO.items():
        path = walked if walked[0] == "draft" else ["draft", *walked]
        rows, old = [], None
        for slug in path:
            details = {"source": "import" if old is None else "api", "changes": {"status": {"old": old, "new": slug}}}
            rows.append(
                (
                    NULL if old is None else str(status_of[old]),
                    str(status_of[slug]),
                    "created" if old is None else "",
                    "story.created" if old is None else "story.status_changed",
                    json.dumps(details),
                )
            )
            old = slug
        steps[final] = (len(walked) + (0 if walked[0] == "draft" else 1), rows)
    return steps


def generate(
    out, projects: list[tuple[int, dict[str, int]]], per_project: int, story_columns: list[str], seed: int
) -> None:  # noqa: C901 -- one pass per story, every table's rows (bench only)
    """Every project's rows as COPY text, in id order, one `(table, bytes)` list per
    project put on `out` (None at the end). Runs in its own process while the parent
    COPYs, and makes exactly the random draws the row-by-row writer made, in the same
    order, so the dataset is the same for a seed. `projects`: (project id, status id by
    slug) in order."""
    rng = random.Random(seed)
    random_, choice, randint, sample = rng.random, rng.choice, rng.randint, rng.sample
    clock = _Clock()
    story_line = _story_template(story_columns).format
    now_s = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    now_stamp = clock.stamp(now_s)
    start_s = now_s - 379 * 86400  # a year of history per project, ending two weeks before `now`
    platform_ids: dict[int, list[int]] = {}
    sid = epic_id = 0
    for p, (pk, status_of) in enumerate(projects):
        steps = _history_steps(status_of)
        final_status = {final: str(status_of[final]) for final in _FINALS}
        first_in_project = sid + 1
        pks = str(pk)
        epics, lines, deps_out, hist, audit = [], [], [], [], []
        cross = 0
        plat = platform_ids.setdefault(p, [])
        for j in range(per_project):
            sid += 1
            epic_idx, pos = divmod(j, EPIC_SIZE)
            if pos == 0:
                epic_id += 1
                epics.append(f"{epic_id}\t{pk}\tepic-{epic_idx:03d}\tEpic {epic_idx}\t\t{now_stamp}\t{now_stamp}\n")
            # earlier stories are more often finished: rng.choices's draw over the weights
            # (done and accepted scaled up), the cumulative sums added in the same order
            scale = 1.0 + 2.0 * (1.0 - j / per_project)
            done = _CUM_BASE[5] + _W_DONE * scale
            accepted = done + _W_ACCEPTED * scale
            cum = [*_CUM_BASE, done, accepted, accepted + _W_CANCELLED]
            final = _FINALS[bisect(cum, random_() * (cum[-1] + 0.0), 0, 8)]
            prio = choice(_PRIORITIES)
            est = choice(_ESTIMATES)
            lo, hi = _POINTS[est]
            key = f"B{p:02d}-{j + 1:05d}"
            created_s = start_s + j * YEAR_S // per_project
            created = clock.stamp(created_s)
            day = clock.date(created_s)
            title = f"{choice(WORDS).title()} {choice(WORDS)} for {key}"
            version, story_steps = steps[final]
            labels = json.dumps(sample(LABELS, 2))
            lines.append(
                story_line(
                    sid,
                    pks,
                    key,
                    title,
                    epic_id,
                    final_status[final],
                    prio,
                    est,
                    lo,
                    hi,
                    f"{key.lower()}-branch",
                    f"stories/{key}.md",
                    labels,
                    day,
                    day,
                    f"# {key}\\n\\nGenerated benchmark story.\\n",
                    version,
                    created,
                    created,
                )  # fmt: skip
            )
            # ~3 blocks dependencies, always to earlier stories
            epic_start = first_in_project + epic_idx * EPIC_SIZE
            deps: set[int] = set()
            if pos > 0 and random_() < 0.5:
                deps.add(sid - 1)
            while pos > 1 and len(deps) < 2 + (pos > 3):
                deps.add(randint(epic_start, sid - 1))
            if epic_idx == 0:
                plat.append(sid)
            elif random_() < 0.3:
                deps.add(choice(plat))
            if p > 0 and random_() < 0.03:
                deps.add(choice(platform_ids[rng.randrange(p)]))
            for d in deps:
                deps_out.append(f"{sid}\t{d}\tblocks\t\t{created}\n")
                cross += d < first_in_project
            # history: created (old NULL) then each step 6 h to 2.7 days apart; one audit row each
            step_s = (6 + j % 60) * 3600
            for k, (old, new, notes, action, details) in enumerate(story_steps):
                at = clock.stamp(created_s + k * step_s)
                hist.append(f"{sid}\t{old}\t{new}\t{NULL}\t{at}\t{notes}\n")
                audit.append(f"{action}\tstory\t{sid}\t{pks}\t{NULL}\t\t{at}\t{details}\n")
        counts = {"stories": len(lines), "dependencies": len(deps_out), "cross": cross, "history": len(hist)}
        blobs = [
            ("epics", "".join(epics).encode()),
            ("stories", "".join(lines).encode()),
            ("story_dependencies", "".join(deps_out).encode()),
            ("status_history", "".join(hist).encode()),
            ("audit_log", "".join(audit).encode()),
        ]
        out.put((counts, blobs))
    out.put(None)


def _stream(db: str, columns: dict[str, list[str]], inbox, errors: list) -> None:
    """One COPY connection: each list of (table, COPY text) from `inbox` until None, the
    foreign-key triggers skipped (the rows are consistent by construction; superuser
    only). A failure is kept for the caller, and the inbox drained so it never blocks."""
    try:
        with psycopg.connect(server_url(db)) as conn, conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            while (blobs := inbox.get()) is not None:
                for table, data in blobs:
                    with cur.copy(f"COPY {table} ({', '.join(columns[table])}) FROM STDIN") as copy:
                        copy.write(data)
    except BaseException as exc:  # noqa: BLE001 -- re-raised by _load
        errors.append(exc)
        while inbox.get() is not None:
            pass


def _load(db: str, story_columns: list[str], produced) -> dict[str, int]:
    """COPY what `produced` yields on two connections at once (_STREAMS) and return the
    row counts."""
    import queue
    import threading

    columns = {**_COLUMNS, "stories": story_columns}
    inboxes = [queue.Queue(maxsize=2) for _ in _STREAMS]
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_stream, args=(db, columns, inbox, errors)) for inbox in inboxes]
    for thread in threads:
        thread.start()
    counts = dict.fromkeys(("stories", "dependencies", "cross", "history", "audit"), 0)
    try:
        for item_counts, blobs in produced:
            for key, value in item_counts.items():
                counts[key] += value
            by_table = dict(blobs)
            for inbox, tables in zip(inboxes, _STREAMS, strict=True):
                inbox.put([(t, by_table[t]) for t in tables if by_table[t]])
    finally:
        for inbox in inboxes:
            inbox.put(None)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    counts["audit"] = counts["history"]
    return counts


def _produced(queue, producer):
    """The generator's items until its None; a generator that died raises."""
    import queue as queues

    while True:
        try:
            item = queue.get(timeout=1)
        except queues.Empty:
            if not producer.is_alive():
                raise RuntimeError(f"the row generator exited with {producer.exitcode}") from None
            continue
        if item is None:
            return
        yield item


def build(db: str, stories: int, projects: int, seed: int = 7, quiet: bool = False) -> dict:  # noqa: C901 -- one pass that writes every row in id order (bench only)
    """Create `db` from scratch (migrations + COPY) and return a description of it."""
    t0 = time.perf_counter()
    recreate_database(db)
    setup_django(db)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth import get_user_model

    from stories import fields, services
    from stories.models import Status

    User = get_user_model()
    member = User.objects.create_user(username=BENCH_USER, password=BENCH_PASSWORD, is_staff=False)
    outsider = User.objects.create_user(username=OTHER_USER, password=BENCH_PASSWORD)
    project_objs = []
    for p in range(projects):
        proj = services.project_create(actor=None, slug=f"bench-{p:02d}", name=f"Bench project {p:02d}")
        services.project_member_set(actor=None, project=proj, user=member, role="member")
        project_objs.append(proj)
    status_ids = {
        (s.project_id, s.slug): s.pk for s in Status.objects.filter(project__in=project_objs).only("project_id", "slug")
    }

    per_project = stories // projects
    now = datetime(2026, 1, 1, tzinfo=UTC)
    dj_cur = connection.cursor()
    cur = dj_cur.cursor  # the psycopg cursor underneath
    indexes = _drop_secondary_indexes(cur)
    story_columns = ["id", *fields.COLUMNS]  # the field table's, so the COPY matches the model
    # The rows are generated in a child process (one core) while this one COPYs them on
    # two connections (the server's share); the queue holds at most a few projects.
    context = multiprocessing.get_context("fork")
    queue = context.Queue(maxsize=4)
    plan = [(proj.pk, {slug: status_ids[(proj.pk, slug)] for slug in PATH_TO}) for proj in project_objs]
    producer = context.Process(target=generate, args=(queue, plan, per_project, story_columns, seed), daemon=True)
    producer.start()
    try:
        counts = _load(db, story_columns, _produced(queue, producer))
    finally:
        producer.join(timeout=5)
        if producer.is_alive():
            producer.kill()
    if producer.exitcode != 0:
        raise RuntimeError(f"the row generator exited with {producer.exitcode}")
    sid = counts["stories"]
    cur.execute("SET session_replication_role = replica")

    chain = services.project_create(actor=None, slug=CHAIN_PROJECT, name="Bench chain")
    chain_ready = Status.objects.get(project=chain, slug="ready").pk
    chain_rows, chain_deps = [], []
    for i in range(CHAIN_STORIES):
        chain_id = sid + 1 + i
        key = f"CH-{i + 1:05d}"
        row = dict.fromkeys(story_columns, "")  # the text columns empty
        row |= {"id": chain_id, "project_id": chain.pk, "key": key, "title": f"Chain {key}", "status_id": chain_ready}
        row |= {"backlog_id": None, "epic_id": None, "priority": 2, "points_min": None, "points_max": None}
        row |= {"labels": "[]", "created": None, "last_updated": None, "metadata": "{}", "version": 1, "rank": None}
        row |= {"created_at": now, "updated_at": now}
        chain_rows.append(tuple(row[column] for column in story_columns))
        chain_deps += [(chain_id, chain_id - k, "blocks", "", now) for k in (1, 2) if i - k >= 0]

    with dj_cur:
        _copy(cur, "stories", story_columns, chain_rows)
        _copy(cur, "story_dependencies", _DEP_COLUMNS, chain_deps)
        cur.execute("SET session_replication_role = DEFAULT")
        load_seconds = time.perf_counter() - t0
        _create_indexes(db, indexes)
        index_seconds = time.perf_counter() - t0 - load_seconds
        for table in ("epics", "stories"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        # VACUUM too, as autovacuum would soon after such a load: it sets the visibility map
        # that index-only scans need (the reports read status_history's covering index).
        for table in ("stories", "story_dependencies", "status_history", "audit_log", "epics"):
            cur.execute(f"VACUUM ANALYZE {table}")
    info = {
        "database": db,
        "stories": counts["stories"],
        "projects": projects,
        "stories_per_project": per_project,
        "dependencies": counts["dependencies"],
        "cross_project_dependencies": counts["cross"],
        "status_history_rows": counts["history"],
        "audit_rows": counts["audit"],
        "chain_stories": CHAIN_STORIES,
        "build_seconds": round(time.perf_counter() - t0, 1),
        "build_load_seconds": round(load_seconds, 1),
        "build_index_seconds": round(index_seconds, 1),
        "member": member.username,
        "outsider": outsider.username,
    }
    with psycopg.connect(server_url(), autocommit=True) as conn:
        # The description travels with the database, so BENCH_REUSE_DB=1 can measure it again.
        conn.execute(f'COMMENT ON DATABASE "{db}" IS {psycopg.sql.quote(json.dumps(info))}')
    if not quiet:
        print(json.dumps(info), file=sys.stderr)
    return info


def existing(db: str, stories: int, projects: int) -> dict | None:
    """The description of a benchmark database built before with the same size, or None."""
    with psycopg.connect(server_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (db,)
        ).fetchone()
    if not row or not row[0]:
        return None
    info = json.loads(row[0])
    return info if (info.get("stories"), info.get("projects")) == (stories, projects) else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="storyhub_bench")
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    build(args.db, args.stories, args.projects, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
