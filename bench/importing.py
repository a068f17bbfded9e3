"""The import benchmark: 10,000 story files (3 dependencies each) imported end to end
with `stories.importer.import_stories` (the CLI's path: files read, parsed, checked,
written, the run's report recorded), into a fresh project per run.

Figures (files per second, higher is better):
- `yaml_floor_stories_per_s`: PyYAML's C loader alone on the same front matters, one
  core, read + split + load, measured in the same run (the floor);
- `import_stories_per_s` (median) and `import_stories_p95_per_s` (the slow end: the 5th
  percentile of the rates, i.e. the p95 of the times) over BENCH_IMPORT_RUNS runs;
- `import_ratio_to_floor`: floor ÷ import (1.0 = as fast as parsing alone on one core);
- `reimport_unchanged_per_s`: the same directory imported again (every file unchanged);
- `reimport_changed_per_s`: every file's title edited, imported again (10,000 updates).

Standalone: `BENCH_DB=storyhub_bench_import python -m bench.importing` (creates and drops
that database; BENCH_IMPORT_RUNS, default 5; BENCH_IMPORT_PROFILE=1 prints a cProfile of
one run).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

FILES = int(os.environ.get("BENCH_IMPORT_FILES", "10000"))
RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "5"))


def story_text(i: int, title: str) -> str:
    deps = [f"IMP-{d:05d}" for d in range(max(1, i - 3), i)]
    return (
        "---\n"
        f"id: IMP-{i:05d}\n"
        f"title: {title}\n"
        "epic: importing\n"
        "status: draft\n"
        "priority: high\n"
        'estimate: "2sp"\n'
        f"dependencies: [{', '.join(deps)}]\n"
        "labels: [bench, import]\n"
        "created: 2025-08-28\n"
        "author: planning-agent\n"
        "last_updated: 2025-08-28\n"
        "emit_metadata: {source_id: null}\n"
        "---\n"
        f"# IMP-{i:05d}: {title}\n\nBody.\n"
    )


def write_files(tmp: Path, title: str = "Imported story {i}") -> list[Path]:
    files = []
    for i in range(FILES):
        p = tmp / f"{i:05d}_story.txt"
        p.write_text(story_text(i, title.format(i=i)))
        files.append(p)
    return files


def yaml_floor(files: list[Path]) -> float:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    t = time.perf_counter()
    for p in files:
        fm = p.read_text().split("---\n", 2)[1]
        yaml.load(fm, Loader=loader)  # noqa: S506 - CSafeLoader
    return len(files) / (time.perf_counter() - t)


def _rates(samples_s: list[float]) -> tuple[int, int]:
    times = sorted(samples_s)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return round(FILES / statistics.median(times)), round(FILES / p95)


def measure(runs: int = RUNS, profile: bool = False) -> dict:
    from stories import services
    from stories.importer import import_stories

    tmp = Path(tempfile.mkdtemp(prefix="storyhub-bench-import-"))
    stamp = int(time.time() * 1000)
    out: dict = {"import_files": FILES, "import_runs": runs, "loadavg_before": os.getloadavg()[0]}
    try:
        files = write_files(tmp)
        floors, samples = [], []
        last = None
        for r in range(runs):
            floors.append(yaml_floor(files))
            project = services.project_create(actor=None, slug=f"bench-import-{stamp}-{r}", name="Bench import")
            t = time.perf_counter()
            report = import_stories(tmp, project=project, actor=None)
            samples.append(time.perf_counter() - t)
            counts = report.counts()
            assert counts["created"] == FILES, counts
            last = project
        out["yaml_floor_stories_per_s"] = round(statistics.median(floors))
        out["import_stories_per_s"], out["import_stories_p95_per_s"] = _rates(samples)
        out["import_ratio_to_floor"] = round(out["yaml_floor_stories_per_s"] / out["import_stories_per_s"], 2)

        t = time.perf_counter()
        report = import_stories(tmp, project=last, actor=None)
        out["reimport_unchanged_per_s"] = round(FILES / (time.perf_counter() - t))
        assert report.counts()["unchanged"] == FILES, report.counts()

        write_files(tmp, title="Imported story {i}, edited")
        t = time.perf_counter()
        report = import_stories(tmp, project=last, actor=None)
        out["reimport_changed_per_s"] = round(FILES / (time.perf_counter() - t))
        assert report.counts()["updated"] == FILES, report.counts()

        if profile:
            import cProfile
            import pstats

            write_files(tmp)
            project = services.project_create(actor=None, slug=f"bench-import-{stamp}-prof", name="Bench import")
            prof = cProfile.Profile()
            prof.enable()
            import_stories(tmp, project=project, actor=None)
            prof.disable()
            stats = pstats.Stats(prof)
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(30)
        out["loadavg_after"] = os.getloadavg()[0]
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run() -> None:
    """`make bench`'s import section: the figures into bench.core's results and rows."""
    from bench.core import results, rows

    out = measure()
    results.update({k: v for k, v in out.items() if not k.startswith("loadavg")})
    rows.append(("yaml_floor_stories_per_s", str(out["yaml_floor_stories_per_s"]), "", "floor"))
    rows.append(
        ("import_stories_per_s", str(out["import_stories_per_s"]), str(out["import_stories_p95_per_s"]), "≥ 10000")
    )
    rows.append(("reimport_unchanged_per_s", str(out["reimport_unchanged_per_s"]), "", ""))
    rows.append(("reimport_changed_per_s", str(out["reimport_changed_per_s"]), "", ""))


if __name__ == "__main__":
    from bench.dataset import drop_database, recreate_database, setup_django

    db = os.environ.get("BENCH_DB", "storyhub_bench_import")
    recreate_database(db)
    try:
        setup_django(db)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        result = measure(profile=os.environ.get("BENCH_IMPORT_PROFILE") == "1")
        print(result)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(db)
