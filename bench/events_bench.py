"""Events figures on PostgreSQL (not part of `make test` or `make bench` yet):

    python -m bench.events_bench [--writes 300] [--writers 50] [--per-writer 4]

- write latency of a story update with the outbox row vs without it (the hook switched
  off in process), timed alternately;
- event → delivered p50 / p95: an `events_worker` process delivering to a receiver on
  127.0.0.1 while `--writers` threads write at once.

Uses (and drops) the database BENCH_DB=storyhub_bench_events on BENCH_PG_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DB", "storyhub_bench_events")


def _psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres", "-qc", sql], check=True, capture_output=True)  # noqa: S607


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def main() -> None:  # noqa: C901 -- one linear script
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--per-writer", type=int, default=4)
    args = parser.parse_args()
    _psql(f"DROP DATABASE IF EXISTS {DB}")
    _psql(f"CREATE DATABASE {DB}")
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{DB}",
        "DJANGO_SETTINGS_MODULE": "storyhub.settings.local",
        "DJANGO_DEBUG": "false",
        "DB_POOL_MAX_SIZE": str(args.writers + 10),
        "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
    }
    os.environ.update(env)
    worker = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        from django.db import connections

        from audit import services as audit_services
        from events.services import endpoint_create
        from stories import services
        from tests.factories import ProjectFactory, StoryFactory, UserFactory

        owner = UserFactory(username="bench-owner")
        project = ProjectFactory(slug="bench-events", name="Bench events", actor=owner)
        story = StoryFactory(project=project, key="W-1", title="Writes", actor=owner)

        # 1. write latency with / without the outbox row
        timings: dict[str, list[float]] = {"with": [], "without": []}
        for n in range(args.writes):
            for label in ("with", "without"):
                patch = mock.patch.object(audit_services, "outbox_event", return_value=None)
                if label == "without":
                    patch.start()
                started = time.perf_counter()
                story = services.story_update(actor=owner, story=story, data={"title": f"Writes {label} {n}"})
                timings[label].append((time.perf_counter() - started) * 1000)
                if label == "without":
                    patch.stop()
        write = {k: {"p50_ms": _pct(v, 0.5), "p95_ms": _pct(v, 0.95)} for k, v in timings.items()}
        write["p50_overhead"] = round(write["with"]["p50_ms"] / write["without"]["p50_ms"] - 1, 3)

        # 2. event -> delivered under concurrent writers
        arrivals: list[float] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if body["type"] == "story.updated" and body["data"]["details"].get("key", "").startswith("C-"):
                    arrivals.append(time.time() - datetime.fromisoformat(body["timestamp"]).timestamp())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        endpoint_create(actor=owner, project=project, url=f"http://127.0.0.1:{server.server_address[1]}/")
        stories = [StoryFactory(project=project, key=f"C-{i}", title="c", actor=owner) for i in range(args.writers)]
        worker = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "events_worker", "--interval", "0.05", "--threads", "8", "-v0"],
            cwd=ROOT,
            env=env,
        )
        time.sleep(3)  # the worker has started and delivered the backlog
        arrivals.clear()
        barrier = threading.Barrier(args.writers)

        def write_some(s):
            barrier.wait()
            for n in range(args.per_writer):
                s = services.story_update(actor=owner, story=s, data={"title": f"c {n}"})
            connections.close_all()

        threads = [threading.Thread(target=write_some, args=(s,)) for s in stories]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expected = args.writers * args.per_writer
        deadline = time.time() + 120
        while len(arrivals) < expected and time.time() < deadline:
            time.sleep(0.1)
        delivered = [a * 1000 for a in arrivals]
        report = {
            "write_latency": write,
            "delivery": {
                "writers": args.writers,
                "events": expected,
                "delivered": len(delivered),
                "p50_ms": _pct(delivered, 0.5) if delivered else None,
                "p95_ms": _pct(delivered, 0.95) if delivered else None,
                "mean_ms": round(statistics.mean(delivered), 2) if delivered else None,
            },
        }
        print(json.dumps(report, indent=2))
        server.shutdown()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        try:
            from django.db import connections

            connections.close_all()
            for alias in connections:
                connections[alias].close_pool()
        except Exception:  # noqa: S110 -- best effort before the drop
            pass
        _psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
