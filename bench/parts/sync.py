"""Git sync: `sync_roundtrip_ms_1k` — one sync of a 1,000-story project with 10 files
changed in git and 10 other stories changed in StoryHub (pull 10, push 10, one commit),
median of BENCH_REPEAT rounds against a local bare repository; `sync_first_s_1k` — the
first sync, importing all 1,000 files. The "other side" is played with the git binary.

Standalone: `BENCH_DB=storyhub_bench_sync python -m bench.parts.sync` (creates and drops
that database)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.core import Context

STORIES = int(os.environ.get("BENCH_SYNC_STORIES", "1000"))
CHANGED = 10
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "HOME": "/nonexistent",
    "PATH": "/usr/bin:/bin",
}


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True
    )


def _file(n: int, title: str) -> str:
    deps = f"[SY-{n - 1:04d}]" if n % 3 and n > 0 else "[]"
    return (
        f"---\nid: SY-{n:04d}\ntitle: {title}\nstatus: draft\npriority: high\nestimate: 3\n"
        f"dependencies: {deps}\nlabels: [bench, sync]\ncreated: 2025-08-28\n---\n"
        f"# SY-{n:04d}: {title}\n\nBody of story {n}.\n"
    )


def measure(repeat: int) -> dict:
    from django.conf import settings

    from stories import services
    from stories.models import Story
    from stories.sync.engine import sync_project
    from stories.sync.links import sync_link_set

    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    settings.GIT_SYNC_LOCAL_ROOTS = [str(tmp)]
    settings.GIT_SYNC_CACHE_DIR = str(tmp / "cache")
    try:
        bare, clone = tmp / "remote.git", tmp / "clone"
        _git(tmp, "init", "-q", "--bare", str(bare))
        _git(tmp, "clone", "-q", str(bare), str(clone))
        (clone / "backlog").mkdir()
        for n in range(STORIES):
            (clone / "backlog" / f"SY-{n:04d}.md").write_text(_file(n, f"Story {n}"))
        _git(clone, "add", "-A")
        _git(clone, "commit", "-q", "-m", "stories")
        _git(clone, "push", "-q", "origin", "main")

        slug = f"bench-sync-{int(time.time())}"
        project = services.project_create(actor=None, slug=slug, name="Bench sync")
        sync_link_set(actor=None, project=project, data={"repository": str(bare), "folders": ["backlog"]})
        t = time.perf_counter()
        first = sync_project(actor=None, project=project)
        first_s = time.perf_counter() - t
        assert len(first.imported) == STORIES, first.summary()

        samples = []
        for r in range(repeat):
            # git side: 10 files edited and pushed.
            _git(clone, "pull", "-q", "--ff-only", "origin", "main")
            for n in range(r * 20, r * 20 + CHANGED):
                (clone / "backlog" / f"SY-{n:04d}.md").write_text(_file(n, f"Story {n}, edited in git {r}"))
            _git(clone, "commit", "-q", "-am", f"edit {r}")
            _git(clone, "push", "-q", "origin", "main")
            # StoryHub side: 10 other stories edited.
            for n in range(r * 20 + CHANGED, r * 20 + 2 * CHANGED):
                story = Story.objects.get(project=project, key=f"SY-{n:04d}")
                services.story_update(actor=None, story=story, data={"title": f"Story {n}, edited in StoryHub {r}"})
            t = time.perf_counter()
            report = sync_project(actor=None, project=project)
            samples.append((time.perf_counter() - t) * 1000)
            assert len(report.imported) == CHANGED and len(report.pushed) == CHANGED, report.summary()
            assert not report.conflicts, report.summary()
        t = time.perf_counter()
        idle = sync_project(actor=None, project=project)
        idle_ms = (time.perf_counter() - t) * 1000
        assert not idle.changed
        # The project stays: the bench database is dropped at the end.
        return {
            "sync_roundtrip_ms_1k": round(statistics.median(samples), 1),
            "sync_roundtrip_max_ms_1k": round(max(samples), 1),
            "sync_idle_ms_1k": round(idle_ms, 1),
            "sync_first_s_1k": round(first_s, 2),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(ctx: Context) -> None:
    from bench.core import results, rows

    out = measure(int(os.environ.get("BENCH_REPEAT", "5")))
    results.update(out)
    rows.append(
        ("sync_roundtrip_ms_1k", str(out["sync_roundtrip_ms_1k"]), str(out["sync_roundtrip_max_ms_1k"]), "< 30000")
    )
    rows.append(("sync_idle_ms_1k", str(out["sync_idle_ms_1k"]), "", ""))
    rows.append(("sync_first_s_1k", str(out["sync_first_s_1k"]), "", ""))


if __name__ == "__main__":
    from bench.dataset import drop_database, recreate_database, setup_django

    db = os.environ.get("BENCH_DB", "storyhub_bench_sync")
    recreate_database(db)
    try:
        setup_django(db)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(measure(int(os.environ.get("BENCH_REPEAT", "5"))))
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(db)
