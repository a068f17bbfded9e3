"""bench/run.py's report: the million-story stage replaces only its own `_1m` figures in
docs/benchmarks.json, and the default run keeps them (README "Benchmarks")."""

import json

import pytest

from bench import core
from bench import run as bench_run


def _info(stories, projects, build_seconds):
    return {
        "database": "storyhub_bench_x",
        "member": "m",
        "outsider": "o",
        "stories": stories,
        "projects": projects,
        "stories_per_project": stories // projects,
        "dependencies": 3 * stories,
        "cross_project_dependencies": 1,
        "status_history_rows": 3 * stories,
        "audit_rows": 3 * stories,
        "chain_stories": 4000,
        "build_seconds": build_seconds,
        "build_load_seconds": build_seconds - 1,
    }


def _run(monkeypatch, docs, size, figures):
    monkeypatch.setattr(bench_run, "SIZE", size)
    monkeypatch.setattr(core, "results", {})
    monkeypatch.setattr(core, "rows", [])
    monkeypatch.setattr(bench_run, "results", core.results)
    monkeypatch.setattr(bench_run, "rows", core.rows)
    for name, (median, p95) in figures.items():
        core.record(name, median, p95, "< 50")
    info = _info(1_000_000, 100, 80.0) if size == "1m" else _info(100_000, 10, 20.0)
    bench_run.write_report(info, 12.0, docs=docs)
    return json.loads((docs / "benchmarks.json").read_text())


@pytest.mark.parametrize("first", ["100k", "1m"])
def test_each_stage_keeps_the_others_figures(monkeypatch, tmp_path, first):
    default = {"ready_ms_100k": (9.0, 12.0), "list_100_ratio_to_floor": (1.1, None)}
    million = {"ready_ms_1m": (30.0, 40.0), "list_100_ratio_to_floor": (1.04, None)}
    stages = [("100k", default), ("1m", million)]
    if first == "1m":
        stages.reverse()
    for size, figures in stages:
        data = _run(monkeypatch, tmp_path, size, figures)
    got = data["results"]
    assert got["ready_ms_100k"] == 9.0 and got["ready_p95_ms_100k"] == 12.0
    assert got["list_100_ratio_to_floor"] == 1.1  # the default run's, against its own floor
    assert got["ready_ms_1m"] == 30.0 and got["ready_p95_ms_1m"] == 40.0
    assert got["list_100_ratio_to_floor_1m"] == 1.04  # the 1m run's, named for it
    assert got["build_seconds_1m"] == 80.0
    assert data["dataset"]["stories"] == 100_000 and data["stage_1m"]["dataset"]["stories"] == 1_000_000
    md = (tmp_path / "benchmarks.md").read_text()
    assert "| `ready_ms_100k` | 9.0 | 12.0 |" in md
    assert "## The million-story stage" in md and "| `ready_ms_1m` | 30.0 | 40.0 |" in md
    svg = (tmp_path / "benchmarks.svg").read_text()
    assert "ready list, ms (1m)" in svg and "ready list, ms (100k)" in svg


def test_a_new_million_run_replaces_the_old_one(monkeypatch, tmp_path):
    _run(monkeypatch, tmp_path, "100k", {"ready_ms_100k": (9.0, 12.0)})
    _run(monkeypatch, tmp_path, "1m", {"ready_ms_1m": (30.0, 40.0), "search_ms_1m": (50.0, 60.0)})
    got = _run(monkeypatch, tmp_path, "1m", {"ready_ms_1m": (20.0, 25.0)})["results"]
    assert got["ready_ms_1m"] == 20.0 and "search_ms_1m" not in got  # nothing left over from the older run
    assert got["ready_ms_100k"] == 9.0
