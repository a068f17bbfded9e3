"""The admin's import report and conflict pages (stories/admin_imports.py): runs per
project with their per-file outcomes, conflicts with both versions side by side, and the
three resolutions through stories.importer.conflicts (audited, refusals as messages)."""

from __future__ import annotations

from html import unescape
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditLog
from stories.importer import import_stories
from stories.models import ImportConflict, ImportFile, ImportRun, Story
from tests.admin.conftest import messages_of
from tests.factories import ProjectFactory, UserFactory
from tests.importexport.test_messy_repos import FILES, ROOTS

pytestmark = pytest.mark.django_db

RUNS = "/admin/stories/importrun/"
CONFLICTS = "/admin/stories/importconflict/"


def write_repo(root: Path, files=FILES) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    return root


@pytest.fixture
def messy(tmp_path, project, owner):
    """The messy planning repository imported into `project`: 11 files, two conflicts."""
    repo = write_repo(tmp_path / "planning")
    report = import_stories([repo / r for r in ROOTS], project=project, actor=owner)
    return ImportRun.objects.get(pk=report.run_id)


@pytest.fixture
def hidden(tmp_path, owner):
    """A project the staff clients are not members of, with an import and a conflict."""
    other = ProjectFactory(slug="secretproj", name="Secretproj", actor=owner)
    repo = write_repo(
        tmp_path / "secret",
        {
            "secretdir/a.md": FILES["backlog/S01.md"],
            "secretdir/b.md": FILES["backlog/S01.md"].replace("Sign in", "Secret twin"),
        },
    )
    report = import_stories([repo / "secretdir"], project=other, actor=owner)
    return ImportRun.objects.get(pk=report.run_id), ImportConflict.objects.get(project=other)


def text_of(response) -> str:
    return unescape(response.content.decode())


def conflict(project, kind: str) -> ImportConflict:
    return ImportConflict.objects.get(project=project, kind=kind)


# --------------------------------------------------------------------------- runs


def test_run_list_shows_who_when_roots_counts_and_mode(staff_client, messy, hidden):
    client = staff_client("viewer")
    response = client.get(RUNS)
    assert response.status_code == 200
    text = text_of(response)
    assert f"#{messy.pk}" in text and "owner" in text
    assert "backlog, refinements, staging" in text
    assert "5 created · 2 conflict · 2 failed · 2 excluded" in text
    assert "written · file by file" in text
    # The other project's run is not listed, nor offered as a filter.
    assert f"#{hidden[0].pk}<" not in text and "secret" not in text.lower()
    assert "Add import run" not in text and 'name="action"' not in text


def test_run_list_filters_by_project_and_outcome(su_client, messy, hidden, project, tmp_path, owner):
    clean = write_repo(tmp_path / "clean", {"ok/A-1.md": "---\nid: A-1\ntitle: Fine\n---\n"})
    tidy = ImportRun.objects.get(pk=import_stories([clean / "ok"], project=project, actor=owner).run_id)
    rows = lambda r: set(r.context["cl"].result_list)  # noqa: E731
    assert rows(su_client.get(RUNS + f"?project__id__exact={project.pk}")) == {messy, tidy}
    assert rows(su_client.get(RUNS + "?outcome=failed")) == {messy}
    assert rows(su_client.get(RUNS + f"?outcome=conflict&project__id__exact={project.pk}")) == {messy}
    assert rows(su_client.get(RUNS + "?outcome=created")) == {messy, tidy, hidden[0]}


def test_run_detail_lists_every_file_with_its_outcome_reason_and_story(staff_client, messy, project):
    response = staff_client("viewer").get(RUNS + f"{messy.pk}/change/")
    assert response.status_code == 200
    text = text_of(response)
    files = list(ImportFile.objects.filter(run=messy))
    assert len(files) == 11
    for f in files:
        assert f"{f.root}/{f.path}" in text
    s01 = Story.objects.get(project=project, key="S01")
    assert f'href="/admin/stories/story/{s01.pk}/change/">S01<' in text
    assert "<code>yaml</code>" in text and "<code>dependency_failed</code>" in text
    # The root cause links to the file that really failed; a parked file to its conflict.
    s04 = ImportFile.objects.get(run=messy, path="S04.md")
    assert f'root cause: <a href="?outcome=failed#file-{s04.pk}">staging/S04.md</a>' in text
    assert f'<tr id="file-{s04.pk}" data-outcome="failed">' in text
    refined = conflict(project, "duplicate_key")
    assert f'href="/admin/stories/importconflict/{refined.pk}/change/">conflict #{refined.pk}<' in text
    assert "2 open conflicts to resolve" in text


def test_run_detail_filters_by_outcome(su_client, messy):
    response = su_client.get(RUNS + f"{messy.pk}/change/?outcome=failed")
    assert [f.path for f in response.context["files"]] == ["S04.md", "S05.md"]
    assert "2 files failed" in text_of(response)
    # An unknown outcome shows every file rather than none.
    assert len(su_client.get(RUNS + f"{messy.pk}/change/?outcome=bogus").context["files"]) == 11


def test_run_detail_reads_a_fixed_number_of_queries(su_client, tmp_path, project, owner):
    def queries(n: int) -> int:
        root = write_repo(
            tmp_path / f"r{n}", {f"d/K-{n}-{i}.md": f"---\nid: K-{n}-{i}\ntitle: T\n---\n" for i in range(n)}
        )
        run = ImportRun.objects.get(pk=import_stories([root / "d"], project=project, actor=owner).run_id)
        with CaptureQueriesContext(connection) as ctx:
            assert su_client.get(RUNS + f"{run.pk}/change/").status_code == 200
        return len(ctx.captured_queries)

    assert queries(3) == queries(30)


def test_run_pages_are_read_only(su_client, messy):
    assert su_client.get(RUNS + "add/").status_code == 403
    assert su_client.post(RUNS + f"{messy.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ImportRun.objects.filter(pk=messy.pk).exists()


def test_a_hidden_or_missing_run_is_404(staff_client, hidden):
    client = staff_client("owner", username="b-owner")
    run, parked = hidden
    assert client.get(RUNS + f"{run.pk}/change/").status_code == 404
    assert client.get(RUNS + "999999/change/").status_code == 404
    assert client.get(CONFLICTS + f"{parked.pk}/change/").status_code == 404
    assert client.get(CONFLICTS + "999999/change/").status_code == 404


# --------------------------------------------------------------------------- conflicts


def test_conflict_list_shows_open_conflicts_with_both_paths_and_reason(staff_client, messy, project, owner):
    client = staff_client("viewer")
    text = text_of(client.get(CONFLICTS))
    assert "refinements/S01-refined.md" in text and "backlog/S01.md" in text
    assert "same key as another file of the import" in text and "heading key differs from id" in text
    from stories.importer import import_conflict_keep_existing

    import_conflict_keep_existing(actor=owner, conflict=conflict(project, "heading_mismatch"))
    assert set(client.get(CONFLICTS).context["cl"].result_list) == {conflict(project, "duplicate_key")}
    assert len(client.get(CONFLICTS + "?state=all").context["cl"].result_list) == 2
    assert set(client.get(CONFLICTS + "?state=kept_existing").context["cl"].result_list) == {
        conflict(project, "heading_mismatch")
    }


def test_conflict_page_shows_both_versions_side_by_side(staff_client, messy, project):
    refined = conflict(project, "duplicate_key")
    response = staff_client("member").get(CONFLICTS + f"{refined.pk}/change/")
    assert response.status_code == 200
    text = text_of(response)
    assert FILES["refinements/S01-refined.md"] in text  # the parked file's full text
    assert FILES["backlog/S01.md"] in text  # the existing story, as its file reads
    assert 'class="storyhub-versions"' in text
    assert 'value="keep"' in text and 'value="win"' in text and 'name="new_key"' in text


def test_a_viewer_sees_the_conflict_but_no_resolution(staff_client, messy, project):
    text = text_of(staff_client("viewer").get(CONFLICTS + f"{conflict(project, 'duplicate_key').pk}/change/"))
    assert FILES["refinements/S01-refined.md"] in text
    assert 'name="resolution"' not in text and "needs the member role" in text


def _post(client, c, **data):
    return client.post(CONFLICTS + f"{c.pk}/resolve/", data, follow=True)


def _audited(c) -> int:
    return AuditLog.objects.filter(action="import_conflict.resolved", entity_id=str(c.pk)).count()


def test_keep_the_existing_story(staff_client, messy, project):
    client = staff_client("member")
    refined = conflict(project, "duplicate_key")
    response = _post(client, refined, resolution="keep")
    assert response.redirect_chain[-1][0] == CONFLICTS + f"{refined.pk}/change/"
    refined.refresh_from_db()
    assert refined.state == "kept_existing" and refined.resolved_by == client.user and _audited(refined) == 1
    assert Story.objects.get(project=project, key="S01").title == "Sign in"
    assert any("kept the existing story" in m for m in messages_of(response))
    # Resolved: no second resolution is offered, and a second POST is refused.
    assert 'name="resolution"' not in text_of(response)
    again = _post(client, refined, resolution="win")
    assert any("already resolved" in m for m in messages_of(again))
    assert _audited(refined) == 1


def test_the_parked_file_wins(staff_client, messy, project):
    refined = conflict(project, "duplicate_key")
    response = _post(staff_client("member"), refined, resolution="win")
    refined.refresh_from_db()
    assert refined.state == "parked_won" and _audited(refined) == 1
    s01 = Story.objects.get(project=project, key="S01")
    assert (s01.title, s01.source_path) == ("Sign in (refined)", "refinements/S01-refined.md")
    # The page now shows what the winner replaced.
    assert "What it replaced" in text_of(response) and '"title": "Sign in"' in text_of(response)


def test_a_new_key_for_the_parked_file(staff_client, messy, project):
    client = staff_client("member")
    heading = conflict(project, "heading_mismatch")
    taken = _post(client, heading, resolution="rekey", new_key="S01")
    assert any("not resolved" in m and "S01 exists already" in m for m in messages_of(taken))
    assert taken.redirect_chain[-1][0].endswith("?new_key=S01")
    assert 'value="S01"' in text_of(taken)  # the typed key is offered again
    empty = _post(client, heading, resolution="rekey", new_key="  ")
    assert any("Give the new key" in m for m in messages_of(empty))
    bad = _post(client, heading, resolution="rekey", new_key="bad key with spaces!")
    assert any("not resolved" in m for m in messages_of(bad))
    heading.refresh_from_db()
    assert heading.state == "open" and _audited(heading) == 0
    done = _post(client, heading, resolution="rekey", new_key="S07")
    heading.refresh_from_db()
    assert heading.state == "rekeyed" and heading.resolved_story.key == "S07" and _audited(heading) == 1
    assert any("imported under the new key (S07)" in m for m in messages_of(done))


def test_a_heading_conflict_cannot_be_won_and_says_why(staff_client, messy, project):
    client = staff_client("member")
    heading = conflict(project, "heading_mismatch")
    assert 'value="win"' not in text_of(client.get(CONFLICTS + f"{heading.pk}/change/"))
    response = _post(client, heading, resolution="win")
    assert any("resolved by choosing its key" in m for m in messages_of(response))
    heading.refresh_from_db()
    assert heading.state == "open"


def test_an_unknown_resolution_and_a_get_change_nothing(staff_client, messy, project):
    client = staff_client("member")
    refined = conflict(project, "duplicate_key")
    assert any("Choose a resolution" in m for m in messages_of(_post(client, refined, resolution="merge")))
    response = client.get(CONFLICTS + f"{refined.pk}/resolve/")
    assert response.status_code == 302 and response["Location"] == CONFLICTS + f"{refined.pk}/change/"
    refined.refresh_from_db()
    assert refined.state == "open" and _audited(refined) == 0


def test_a_viewer_posting_a_resolution_is_refused_with_the_reason(staff_client, messy, project):
    refined = conflict(project, "duplicate_key")
    response = _post(staff_client("viewer"), refined, resolution="keep")
    assert any("not resolved" in m for m in messages_of(response))
    refined.refresh_from_db()
    assert refined.state == "open" and _audited(refined) == 0


def test_staff_of_another_project_get_404_on_resolve(messy, project, hidden):
    from django.test import Client

    outsider = UserFactory(username="outsider-staff", is_staff=True)
    client = Client()
    client.force_login(outsider)
    refined = conflict(project, "duplicate_key")
    assert client.post(CONFLICTS + f"{refined.pk}/resolve/", {"resolution": "keep"}).status_code == 404
    refined.refresh_from_db()
    assert refined.state == "open"


def _list_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_lists_read_a_fixed_number_of_queries(staff_client, tmp_path, project, owner):
    client = staff_client("viewer")

    def imports(n: int) -> None:
        for i in range(n):
            text = f"---\nid: K{n}-{i}\ntitle: Twice {n} {i}\n---\n"
            files = {f"d{i}/x{n}-{i}.md": text, f"d{i}/y{n}-{i}.md": text + "again\n"}
            root = write_repo(tmp_path / f"{n}-{i}", files)
            import_stories([root / f"d{i}"], project=project, actor=owner)

    imports(1)
    few = (_list_queries(client, RUNS), _list_queries(client, CONFLICTS + "?state=all"))
    imports(6)
    assert ImportConflict.objects.filter(project=project).count() >= 6
    assert (_list_queries(client, RUNS), _list_queries(client, CONFLICTS + "?state=all")) == few


def test_a_running_and_a_failed_run_say_so(su_client, project):
    running = ImportRun.objects.create(project=project, actor_repr="someone", source="api")
    failed = ImportRun.objects.create(
        project=project, source="sync", state="failed", error="GitSyncError: remote unreachable", dry_run=True
    )
    text = text_of(su_client.get(RUNS))
    assert "running" in text and "dry run · file by file" in text
    detail = text_of(su_client.get(RUNS + f"{failed.pk}/change/"))
    assert "failed: GitSyncError: remote unreachable" in detail and "No file." in detail
    assert su_client.get(RUNS + f"{running.pk}/change/").status_code == 200


def test_the_project_page_links_to_its_imports(staff_client, messy, project):
    text = text_of(staff_client("viewer").get(f"/admin/stories/project/{project.pk}/change/"))
    url = f"/admin/stories/importrun/?project__id__exact={project.pk}"
    assert f'href="{url}">Imports<' in text
