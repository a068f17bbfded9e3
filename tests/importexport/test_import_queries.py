"""An import's queries do not grow with its files: everything is read and written per
run in batches (owners, source hashes, parked conflicts, the per-file report, the root
causes), never per file. Measured for 20 and 200 files of the same mix: good files,
broken ones, files depending on a broken one, duplicate keys (parked conflicts)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stories.importer import import_stories

from .conftest import story_text


def _files(n: int, title: str = "") -> dict[str, str]:
    files = {}
    for i in range(n):
        key = f"Q-{i:04d}"
        deps = [f"Q-{i - i % 10:04d}"] if i % 10 else []  # the group's first story
        if i % 10 == 1:
            files[f"q/{i:04d}.md"] = "---\nid: " + key + "\ntitle: [broken\n---\n"  # fails
            continue
        if i % 10 == 2:
            deps = [f"Q-{i - 1:04d}"]  # depends on the broken one: dependency_failed
        files[f"q/{i:04d}.md"] = story_text(key, f"{title}Story {i}", deps=deps)
        if i % 10 == 5:
            files[f"q/{i:04d}-copy.md"] = story_text(key, f"Copy of {i}")  # duplicate key: parked
    return files


def _queries(fn) -> int:
    """The statements `fn` sends. On SQLite a batched insert is split by its 999-variable
    limit (Django's bulk_create), so there the INSERTs count once per table; every other
    statement counts each time. PostgreSQL counts everything (COPY: one per table)."""
    with CaptureQueriesContext(connection) as ctx:
        fn()
    sqls = [q["sql"] for q in ctx.captured_queries]
    if connection.vendor != "sqlite":
        return len(sqls)
    inserts = {sql.split("(", 1)[0] for sql in sqls if sql.startswith("INSERT INTO")}
    return len(inserts) + sum(1 for sql in sqls if not sql.startswith("INSERT INTO"))


def _run(fresh_project, write_files, tmp_path, n: int) -> dict[str, int]:
    project = fresh_project()
    root = write_files(_files(n), tmp_path / f"n{n}")
    counts = {}
    counts["dry_run"] = _queries(lambda: import_stories(root, project=project, actor=None, dry_run=True))
    report = None

    def first():
        nonlocal report
        report = import_stories(root, project=project, actor=None)

    counts["first"] = _queries(first)
    assert report.count("created") == n - 2 * (n // 10)  # the broken and their dependents fail
    assert report.count("conflict") == n // 10 and report.count("failed") == 2 * (n // 10)
    counts["unchanged"] = _queries(lambda: import_stories(root, project=project, actor=None))
    write_files(_files(n, title="Edited "), root)
    counts["changed"] = _queries(lambda: import_stories(root, project=project, actor=None))
    counts["atomic"] = _queries(lambda: import_stories(root, project=project, actor=None, continue_on_error=False))
    return counts


@pytest.mark.django_db(transaction=False)
def test_import_query_count_is_constant_in_the_number_of_files(fresh_project, write_files, tmp_path):
    # Once per database, not per import: the first write of links creates the graph's
    # version row (stories.graph's cache); a warm-up import makes it before counting.
    import_stories(write_files(_files(5), tmp_path / "warm-up"), project=fresh_project(), actor=None)
    small = _run(fresh_project, write_files, tmp_path, 20)
    large = _run(fresh_project, write_files, tmp_path, 200)
    assert large == small, (small, large)
    assert small["unchanged"] < small["first"]  # the counts are real: an unchanged file writes no story
