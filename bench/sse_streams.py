"""Do open event streams starve the API? A short, bounded load on 127.0.0.1.

    python -m bench.sse_streams [--streams 40] [--requests 200] [--workers 2] [--threads 4]

Starts gunicorn with the repository's gunicorn.conf.py (gthread) on a copy of the local
SQLite database (make seed first), then: the latency of a list request alone; the same
with --streams clients holding /api/v1/events/stream/ open (each process takes
EVENTS_SSE_MAX_STREAMS = threads - 1 of them and answers the rest 503 + Retry-After);
prints the figures as JSON. Nothing here runs in `make test`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = "/api/v1/projects/seed-stories/stories/?page_size=50"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, key: str, path: str) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, (time.perf_counter() - started) * 1000


def _latencies(port: int, key: str, n: int) -> dict:
    samples = []
    for _ in range(n):
        status, ms = _get(port, key, LIST)
        assert status == 200, status
        samples.append(ms)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2), "p95_ms": round(samples[int(0.95 * len(samples)) - 1], 2)}


class Stream(threading.Thread):
    def __init__(self, port: int, key: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.key, self.stop = port, key, stop
        self.status: int | None = None

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request("GET", "/api/v1/events/stream/", headers={"Authorization": f"Bearer {self.key}"})
        response = conn.getresponse()
        self.status = response.status
        while self.status == 200 and not self.stop.is_set():
            if not response.fp.readline():
                break
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=40)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-streams", type=int, default=None, help="per process (default: threads - 1)")
    args = parser.parse_args()
    limit = args.max_streams if args.max_streams is not None else max(1, args.threads - 1)
    source = ROOT / "db.sqlite3"
    if not source.exists():
        sys.exit("no db.sqlite3: run `make seed` first")
    work = Path(tempfile.mkdtemp(prefix="sse-bench-"))
    db = work / "db.sqlite3"
    shutil.copy(source, db)
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "DJANGO_SETTINGS_MODULE": "storyhub.settings.local",
        "DJANGO_DEBUG": "false",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(args.workers),
        "GUNICORN_THREADS": str(args.threads),
        "EVENTS_SSE_MAX_STREAMS": str(limit),
        "EVENTS_SSE_MAX_SECONDS": "300",
        "API_THROTTLE_KEY": "1000000/min",
    }
    python = sys.executable
    out = subprocess.run(
        [python, "manage.py", "create_api_key", "--user", "admin", "--name", "sse-bench"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    key = next(word for word in out.split() if word.startswith("shk_"))
    server = subprocess.Popen(  # noqa: S603
        [python, "-m", "gunicorn", "storyhub.wsgi", "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stop = threading.Event()
    try:
        for _ in range(100):
            try:
                if _get(port, key, "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        _latencies(port, key, 20)  # warm up every worker
        alone = _latencies(port, key, args.requests)
        streams = [Stream(port, key, stop) for _ in range(args.streams)]
        for s in streams:
            s.start()
        time.sleep(2)
        try:
            with_streams = _latencies(port, key, args.requests)
        except TimeoutError:
            with_streams = {"p50_ms": None, "p95_ms": None, "starved": "a list request waited > 10 s"}
        statuses = [s.status for s in streams]
        report = {
            "workers": args.workers,
            "threads": args.threads,
            "max_streams_per_process": limit,
            "streams_requested": args.streams,
            "streams_open": statuses.count(200),
            "streams_refused_503": statuses.count(503),
            "list_alone": alone,
            "list_with_streams": with_streams,
            "p50_ratio": round(with_streams["p50_ms"] / alone["p50_ms"], 2) if with_streams["p50_ms"] else None,
        }
        print(json.dumps(report, indent=2))
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
