"""Spread of keep-alive clients across gunicorn workers, a graceful reload, a killed worker,
and worker memory over time.

40 clients, each on its own keep-alive connection, loop on /bench/worker?ms=5 (a request
that waits 5 ms, like one waiting on its database) against a gunicorn started from
gunicorn.conf.py with 4 workers. Measured, for the repository's configuration and (as
`..._before`) for the previous one (no per-worker connection cap, no per-connection request
cap):

- `worker_spread_start` / `worker_spread_after_reload`: clients per worker (sorted), from
  the worker that answered each client's last request in the window;
- `reload_stall_ms`: the longest time, during a SIGHUP reload, that no client got a response;
  `reload_max_latency_ms` the slowest single request then;
- `killed_worker_failed_clients_pct`: clients that saw an error in the 4 s after one worker
  was SIGKILLed (the one with the most clients);
- `worker_rss_mb_*`: each worker's resident memory sampled every 5 s while 8 clients request
  the story list, search, the ready page, a transitive walk and the critical path for
  BENCH_MEMORY_SECONDS (default 60; 0 skips), without recycling (bench/run.py also
  samples the main benchmark server's workers through the whole HTTP phase).

`python -m bench.parts.workers` runs the spread part alone (SQLite, no dataset).
"""

from __future__ import annotations

import collections
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from bench.core import Context, results, rows

ROOT = Path(__file__).resolve().parent.parent.parent
CLIENTS = 40
WORKERS = 4
# The configuration before this issue: gunicorn's defaults for what gunicorn.conf.py now sets,
# and the URLconf loaded by the first request.
BEFORE = {
    "GUNICORN_WORKER_CONNECTIONS": "1000",
    "GUNICORN_KEEPALIVE_REQUESTS": "0",
    "GUNICORN_PRELOAD": "false",
    "STORYHUB_WARM_URLS": "false",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, extra: dict) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
    env.update(
        DJANGO_SETTINGS_MODULE="storyhub.settings.local",
        STORYHUB_BENCH_VIEWS="true",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=str(WORKERS),
        GUNICORN_ACCESS_LOG="",
        GUNICORN_LOG_LEVEL="warning",
        GUNICORN_MAX_REQUESTS="0",
        DEBUG="false",
    )
    env.update(extra)
    cmd = [sys.executable, "-m", "gunicorn", "storyhub.wsgi", "-c", "gunicorn.conf.py"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            if len(worker_pids(proc.pid)) >= WORKERS:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gunicorn did not come up")


def worker_pids(master: int) -> list[int]:
    try:
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Client(threading.Thread):
    def __init__(self, port: int, path: str, headers: dict, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.headers, self.stop = port, path, headers, stop
        self.log: list[tuple[float, float, int | None]] = []  # (end, latency s, pid or None = error)

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                conn.request("GET", self.path, headers=self.headers)
                resp = conn.getresponse()
                body = resp.read()
                pid = int(body) if resp.status == 200 and body.isdigit() else (0 if resp.status == 200 else None)
            except (OSError, http.client.HTTPException, ValueError):
                pid = None
                conn.close()
            end = time.perf_counter()
            self.log.append((end, end - t, pid))


def spread(clients: list[Client], since: float, until: float) -> list[int]:
    last: dict[int, int] = {}
    for i, c in enumerate(clients):
        for end, _, pid in c.log:
            if since <= end <= until and pid:
                last[i] = pid
    return sorted(collections.Counter(last.values()).values(), reverse=True)


def longest_gap(clients: list[Client], since: float, until: float) -> float:
    ends = sorted(end for c in clients for end, _, pid in c.log if since <= end <= until and pid)
    if not ends:
        return until - since
    edges = [since, *ends, until]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


class Stream(threading.Thread):
    """An open event stream (/api/v1/events/stream/), held while the clients run: each one
    takes a worker thread for its whole life."""

    def __init__(self, port: int, headers: dict, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.headers, self.stop, self.status = port, headers, stop, None

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/api/v1/events/stream/", headers=self.headers)
            resp = conn.getresponse()
            self.status = resp.status
            while not self.stop.is_set() and resp.status == 200:
                resp.fp.readline()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()


def run_spread(extra: dict, streams: int = 0, headers: dict | None = None) -> dict:
    port = _free_port()
    proc = start(port, extra)
    stop = threading.Event()
    clients = [Client(port, "/bench/worker?ms=5", {}, stop) for _ in range(CLIENTS)]
    held = [Stream(port, headers or {}, stop) for _ in range(streams)]
    out: dict = {}
    try:
        for s in held:
            s.start()
        time.sleep(0.5 if held else 0)
        out["streams_open"] = sum(1 for s in held if s.status == 200)
        t0 = time.perf_counter()
        for c in clients:
            c.start()
        time.sleep(6)
        out["start"] = spread(clients, t0 + 3, t0 + 6)
        t1 = time.perf_counter()
        os.kill(proc.pid, signal.SIGHUP)
        time.sleep(12)
        t2 = time.perf_counter()
        out["stall_ms"] = round(longest_gap(clients, t1, t1 + 8) * 1000)
        out["max_latency_ms"] = round(
            max((lat for c in clients for end, lat, pid in c.log if t1 <= end <= t1 + 8), default=0) * 1000
        )
        out["after_reload"] = spread(clients, t2 - 4, t2)
        # Kill the worker with the most clients.
        last = collections.Counter(
            next((pid for end, _, pid in reversed(c.log) if pid), None) for c in clients
        ).most_common()
        victim = next(pid for pid, _ in last if pid)
        os.kill(victim, signal.SIGKILL)
        time.sleep(4)
        t3 = time.perf_counter()
        failed = sum(1 for c in clients if any(pid is None for end, _, pid in c.log if t3 - 4 <= end <= t3))
        out["killed_failed_pct"] = round(100 * failed / CLIENTS)
        out["errors_before_kill"] = sum(1 for c in clients for end, _, pid in c.log if end < t3 - 4 and pid is None)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=10)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=40)
        for s in held:
            s.join(timeout=10)
    return out


def run_memory(seconds: int, paths: list[str], headers: dict) -> dict:
    port = _free_port()
    proc = start(port, {})
    stop = threading.Event()
    clients = [Client(port, paths[i % len(paths)], headers, stop) for i in range(8)]
    samples: dict[int, list[float]] = collections.defaultdict(list)
    try:
        for c in clients:
            c.start()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            for pid in worker_pids(proc.pid):
                mb = rss_mb(pid)
                if mb is not None:
                    samples[pid].append(mb)
            time.sleep(5)
    finally:
        stop.set()
        for c in clients:
            c.join(timeout=10)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=40)
    requests = sum(1 for c in clients for *_, pid in c.log if pid is not None)
    series = [s for s in samples.values() if len(s) >= 4]
    half = [s[len(s) // 2 :] for s in series]
    return {
        "max": round(max(max(s) for s in series), 1),
        "first": round(max(s[0] for s in series), 1),
        "last": round(max(s[-1] for s in series), 1),
        # MB per minute over the second half of the run: ~0 when it has levelled off.
        "growth_second_half_mb_per_min": round(
            max((h[-1] - h[0]) / ((len(h) - 1) * 5 / 60) for h in half if len(h) > 1), 1
        ),
        "requests": requests,
        "seconds": seconds,
    }


def _record_spread(prefix: str, out: dict) -> None:
    results[f"worker_spread_start{prefix}"] = out["start"]
    results[f"worker_spread_after_reload{prefix}"] = out["after_reload"]
    results[f"reload_stall_ms{prefix}"] = out["stall_ms"]
    results[f"reload_max_latency_ms{prefix}"] = out["max_latency_ms"]
    results[f"killed_worker_failed_clients_pct{prefix}"] = out["killed_failed_pct"]
    note = {"_before": "before this issue's config", "": "clients per worker, 40 keep-alive clients, 4 workers"}.get(
        prefix, prefix.strip("_").replace("_", " ")
    )
    rows.append((f"worker_spread_start{prefix}", "/".join(map(str, out["start"])), "", note))
    rows.append((f"worker_spread_after_reload{prefix}", "/".join(map(str, out["after_reload"])), "", ""))
    rows.append((f"reload_stall_ms{prefix}", str(out["stall_ms"]), str(out["max_latency_ms"]), "p95 column: slowest"))
    rows.append((f"killed_worker_failed_clients_pct{prefix}", str(out["killed_failed_pct"]), "", "%"))


def run(ctx: Context) -> None:
    _record_spread("_before", run_spread(BEFORE))
    _record_spread("", run_spread({}))
    # The same with three event streams open (one per worker at most: EVENTS_SSE_MAX_STREAMS).
    with_streams = run_spread({}, streams=3, headers=ctx.headers)
    results["worker_spread_streams_open"] = with_streams["streams_open"]
    _record_spread("_with_3_streams", with_streams)
    seconds = int(os.environ.get("BENCH_MEMORY_SECONDS", "60"))
    if seconds:
        # The story list on half the clients; the others on the reads that load the most
        # per request: search, the ready page, a transitive walk, the whole-project graph.
        p = "/api/v1/projects/bench-00"
        last_key = f"B00-{ctx.info.get('stories_per_project', 10_000):05d}"
        list_path = f"{p}/stories/?page_size=100"
        paths = [list_path, "/api/v1/stories/?q=story&page_size=100", list_path, f"{p}/ready/"]
        paths += [
            list_path,
            f"{p}/stories/{last_key}/blockers/?transitive=true",
            list_path,
            f"{p}/graph/critical-path/",
        ]
        mem = run_memory(seconds, paths, ctx.headers)
        for k, v in mem.items():
            results[f"worker_rss_mb_{k}" if k in ("max", "first", "last") else f"worker_memory_{k}"] = v
        rows.append(
            ("worker_rss_mb_max", str(mem["max"]), "", "< 250 (list, search, ready, walk, graph; no recycling)")
        )
        rows.append(("worker_memory_growth_second_half_mb_per_min", str(mem["growth_second_half_mb_per_min"]), "", ""))


if __name__ == "__main__":
    print("before", run_spread(BEFORE))
    print("after", run_spread({}))
