"""Start-up: `manage_startup_s` (a `manage.py check`, median of 5 after one run that writes
the bytecode) and `make_run_fresh_s` (a fresh clone's `make run` until /healthz answers,
installing only requirements.txt; BENCH_FRESH_RUN=0 skips it, e.g. offline)."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.core import Context, rows

ROOT = Path(__file__).resolve().parent.parent.parent


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DJANGO_", "DB_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure what a user's checkout does: bytecode cached
    return env


def manage_startup(record_into: dict) -> None:
    env = {**_clean_env(), "DJANGO_SETTINGS_MODULE": "storyhub.settings.local"}
    cmd = [sys.executable, "manage.py", "check"]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)  # writes __pycache__
    samples, cpu = [], []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    # CPU time (user + system) as well: on a shared machine the wall time includes waiting.
    record_into["manage_startup_cpu_s"] = round(statistics.median(cpu), 2)
    record_into["manage_startup_s"] = round(statistics.median(samples), 2)
    record_into["manage_startup_max_s"] = round(max(samples), 2)
    rows.append(
        ("manage_startup_s", str(record_into["manage_startup_s"]), str(record_into["manage_startup_max_s"]), "< 1")
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_run_fresh(record_into: dict) -> None:
    """A clone of the committed tree, no .venv, no pip download cache: `make run` until it serves."""
    tmp = Path(tempfile.mkdtemp(prefix="storyhub-fresh-"))
    port = _free_port()
    env = {**_clean_env(), "PIP_NO_CACHE_DIR": "1", "PYTHON": shutil.which("python3") or "python3"}
    log = open(tmp / "make-run.log", "wb")  # noqa: SIM115 - closed in finally
    proc = None
    try:
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(tmp / "clone")], check=True)
        t = time.perf_counter()
        proc = subprocess.Popen(
            ["make", "run", f"RUN_ADDR=127.0.0.1:{port}"],
            cwd=tmp / "clone",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = t + 300
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"make run exited {proc.returncode}: {(tmp / 'make-run.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("make run did not serve within 300 s")
        record_into["make_run_fresh_s"] = round(time.perf_counter() - t, 1)
        rows.append(("make_run_fresh_s", str(record_into["make_run_fresh_s"]), "", "< 60 (clone, no pip cache)"))
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def run(ctx: Context) -> None:
    from bench.core import results

    manage_startup(results)
    if os.environ.get("BENCH_FRESH_RUN", "1") != "0":
        make_run_fresh(results)


if __name__ == "__main__":  # python -m bench.parts.startup: just these two figures
    out: dict = {}
    manage_startup(out)
    if os.environ.get("BENCH_FRESH_RUN", "1") != "0":
        make_run_fresh(out)
    print(out)
