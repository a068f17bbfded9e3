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
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta

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


def _flush(cur, story_columns: list[str], epics: list, stories: list, deps: list, history: list, audit: list) -> None:
    """COPY one project's rows (parents first: links only point to stories written
    already) and empty the buffers, so a million stories never sit in memory at once."""
    for table, columns, buffer in (
        ("epics", _EPIC_COLUMNS, epics),
        ("stories", story_columns, stories),
        ("story_dependencies", _DEP_COLUMNS, deps),
        ("status_history", _HISTORY_COLUMNS, history),
        ("audit_log", _AUDIT_COLUMNS, audit),
    ):
        _copy(cur, table, columns, buffer)
        buffer.clear()


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

    rng = random.Random(seed)
    per_project = stories // projects
    finals = [s for s, _ in FINAL_STATUS]
    weights = [w for _, w in FINAL_STATUS]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    sid = 0
    story_rows, dep_rows, hist_rows, audit_rows = [], [], [], []
    counts = dict.fromkeys(("stories", "dependencies", "cross", "history", "audit"), 0)
    dj_cur = connection.cursor()
    cur = dj_cur.cursor  # the psycopg cursor underneath
    indexes = _drop_secondary_indexes(cur)
    # The rows are generated consistent (links point to stories written before them), so
    # the foreign-key triggers are skipped for the load (superuser only; bench databases).
    cur.execute("SET session_replication_role = replica")
    story_columns = ["id", *fields.COLUMNS]  # the field table's, so the COPY matches the model
    platform_ids: dict[int, list[int]] = {}
    epic_rows = []
    epic_id = 0
    for p, proj in enumerate(project_objs):
        first_in_project = sid + 1
        for j in range(per_project):
            sid += 1
            epic_idx, pos = divmod(j, EPIC_SIZE)
            if pos == 0:
                epic_id += 1
                epic_rows.append((epic_id, proj.pk, f"epic-{epic_idx:03d}", f"Epic {epic_idx}", "", now, now))
            # earlier stories are more often finished
            bias = 1.0 - j / per_project
            w = [
                wt * (1.0 + 2.0 * bias if s in ("done", "accepted") else 1.0)
                for s, wt in zip(finals, weights, strict=False)
            ]
            final = rng.choices(finals, w)[0]
            prio = rng.choice([1, 2, 2, 3, 3, 3, 4, 5])
            est = rng.choice(["1sp", "2sp", "3sp", "1-2sp", "5", "8sp"])
            lo, _, hi = est.rstrip("sp").partition("-")
            key = f"B{p:02d}-{j + 1:05d}"
            # A year of history per project, oldest first, ending two weeks before `now`.
            created = now - timedelta(days=379) + timedelta(seconds=j * YEAR_S // per_project)
            row = {
                "id": sid,
                "project_id": proj.pk,
                "key": key,
                "title": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} for {key}",
                "backlog_id": None,
                "epic_id": epic_id,
                "status_id": status_ids[(proj.pk, final)],
                "priority": prio,
                "estimate": est,
                "points_min": lo,
                "points_max": hi or lo,
                "branch_name": f"{key.lower()}-branch",
                "file_path": f"stories/{key}.md",
                "owner": "team-a",
                "author": "planning-agent",
                "labels": json.dumps(rng.sample(LABELS, 2)),
                "created": created.date(),
                "last_updated": created.date(),
                "body": f"# {key}\n\nGenerated benchmark story.\n",
                "metadata": json.dumps({"layer": "bench", "market": "global"}),
                "version": len(PATH_TO[final]) + (0 if PATH_TO[final][0] == "draft" else 1),
                "rank": None,
                "source_repo": "",
                "source_path": "",
                "source_hash": "",
                "created_at": created,
                "updated_at": created,
            }
            story_rows.append(tuple(row[column] for column in story_columns))
            # ~3 blocks dependencies, always to earlier stories
            epic_start = first_in_project + epic_idx * EPIC_SIZE
            deps: set[int] = set()
            if pos > 0 and rng.random() < 0.5:
                deps.add(sid - 1)
            while pos > 1 and len(deps) < 2 + (pos > 3):
                deps.add(rng.randint(epic_start, sid - 1))
            plat = platform_ids.setdefault(p, [])
            if epic_idx == 0:
                plat.append(sid)
            elif rng.random() < 0.3:
                deps.add(rng.choice(plat))
            if p > 0 and rng.random() < 0.03:
                deps.add(rng.choice(platform_ids[rng.randrange(p)]))
            for d in deps:
                dep_rows.append((sid, d, "blocks", "", created))
            # history: created (old NULL) then each step; one audit row each
            path = PATH_TO[final] if PATH_TO[final][0] == "draft" else ["draft", *PATH_TO[final]]
            old = None
            for k, slug in enumerate(path):
                at = created + timedelta(hours=k * (6 + j % 60))  # 6 h to 2.7 days a step
                hist_rows.append(
                    (
                        sid,
                        None if old is None else status_ids[(proj.pk, old)],
                        status_ids[(proj.pk, slug)],
                        None,
                        at,
                        "created" if old is None else "",
                    )
                )
                action = "story.created" if old is None else "story.status_changed"
                details = {
                    "source": "import" if old is None else "api",
                    "changes": {"status": {"old": old, "new": slug}},
                }
                audit_rows.append((action, "story", str(sid), proj.pk, None, "", at, json.dumps(details)))
                old = slug
        counts["stories"] += len(story_rows)
        counts["dependencies"] += len(dep_rows)
        counts["cross"] += sum(1 for _, d, *_ in dep_rows if d < first_in_project)
        counts["history"] += len(hist_rows)
        counts["audit"] += len(audit_rows)
        _flush(cur, story_columns, epic_rows, story_rows, dep_rows, hist_rows, audit_rows)

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
        _flush(cur, story_columns, [], chain_rows, chain_deps, [], [])
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
