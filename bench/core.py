"""What every benchmark part shares: the results, timing helpers and the part registry.

A part is a module in bench/parts/ with `run(ctx: Context) -> None`; `make bench` runs
every part (in name order) after its own figures, inside `section(<module name>)`, with
the dataset built, Django set up on it and gunicorn serving it at `ctx.base`. A part
records figures with `record()` (milliseconds, median + p95) or by setting
`results[name]` and appending a row to `rows`. Figure names are stable: docs and the
issue's targets refer to them.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field

REPEAT = int(os.environ.get("BENCH_REPEAT", "30"))

results: dict = {}
unavailable: dict[str, str] = {}
failures: list[str] = []
rows: list[tuple[str, str, str, str]] = []  # (name, median, p95, target)


def stats(samples_s: list[float]) -> tuple[float, float]:
    ms = sorted(x * 1000 for x in samples_s)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return round(statistics.median(ms), 3), round(p95, 3)


def timeit(fn, repeat: int = REPEAT, warmup: int = 3) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return stats(samples)


def timeit_pair(floor_fn, api_fn, repeat: int = REPEAT, warmup: int = 3):
    """Time two calls alternately, so a change in the machine's load hits both alike:
    the ratio between them is what the targets are about."""
    for _ in range(warmup):
        floor_fn()
        api_fn()
    floor, api = [], []
    for _ in range(repeat):
        for fn, samples in ((floor_fn, floor), (api_fn, api)):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
    return stats(floor), stats(api)


def record(name: str, median: float, p95: float | None = None, target: str = "") -> None:
    results[name] = median
    if p95 is not None:
        results[name.replace("_ms", "_p95_ms") if "_ms" in name else name + "_p95"] = p95
    rows.append((name, f"{median}", "" if p95 is None else f"{p95}", target))


@contextlib.contextmanager
def section(name: str):
    try:
        yield
    except Unavailable as exc:
        # Every part has landed: a module or endpoint that went missing is a failure.
        unavailable[name] = str(exc)
        failures.append(name)
        print(f"[bench] {name}: FAILED, cannot be measured ({exc})", file=sys.stderr)
    except Exception:
        failures.append(name)
        print(f"[bench] {name}: FAILED", file=sys.stderr)
        traceback.print_exc()


class Unavailable(Exception):
    pass


def need(module: str, attr: str):
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(f"{module} not importable: {exc}") from exc
    if not hasattr(mod, attr):
        raise Unavailable(f"{module}.{attr} missing")
    return getattr(mod, attr)


@dataclass
class Context:
    """What a part gets: the dataset's description (`info`: database, member, projects...),
    the running server's base URL and the member's auth headers."""

    info: dict
    base: str = ""
    headers: dict = field(default_factory=dict)


def run_parts(ctx: Context, only: set[str] | None = None) -> None:
    """Every part in name order, or only those named in `only` (BENCH_PARTS)."""
    import bench.parts

    for mod in sorted(pkgutil.iter_modules(bench.parts.__path__), key=lambda m: m.name):
        if only is not None and mod.name not in only:
            continue
        with section(mod.name):
            part = importlib.import_module(f"bench.parts.{mod.name}")
            t = time.perf_counter()
            part.run(ctx)
            print(f"[bench] part {mod.name}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
