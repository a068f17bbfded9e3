"""The import report over the API: projects/{slug}/imports/ (runs and their files) and
projects/{slug}/import-conflicts/ (parked files and their resolution)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditLog
from stories.models import ImportConflict, ImportRun, Story
from tests.factories import ProjectFactory

from .conftest import make_zip, story_text

API = "/api/v1/projects/plan-pipe"


def _import(client, files: dict[str, str], query: str = "") -> dict:
    archive = make_zip(files)
    response = client.post(
        f"{API}/import/{query}", {"files": [SimpleUploadedFile("plan.zip", archive)]}, format="multipart"
    )
    assert response.status_code == 200, response.content
    return response.json()


MESSY = {
    "backlog/a.md": story_text("DUP-1", "From backlog"),
    "staging/a.md": story_text("DUP-1", "From staging", extra="owner: staging-team\n"),
    "backlog/bad.md": "---\nid: BAD-1\ntitle: [\n---\n",
    "backlog/b.md": story_text("OK-2", "Fine"),
    "README.md": "# About\n",
}


@pytest.fixture
def imported(member_client, project):
    return _import(member_client, MESSY)


def test_runs_list_and_detail(member_client, project, imported, member):
    _import(member_client, {"x.md": story_text("DRY-1")}, "?dry_run=true")
    body = member_client.get(f"{API}/imports/").json()
    assert [r["dry_run"] for r in body["results"]] == [True, False] and body["next"] is None
    run = body["results"][1]
    assert run["id"] == imported["run"] and run["url"] == imported["run_url"]
    assert (run["source"], run["actor"], run["state"]) == ("api", member.username, "finished")
    assert run["counts"] == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "conflict": 1,
        "failed": 1,
        "excluded": 1,
        "skipped": 0,
    }
    assert run["roots"][0]["name"] == "plan.zip"
    assert member_client.get(run["url"]).json() == run
    only_real = member_client.get(f"{API}/imports/?dry_run=false").json()["results"]
    assert [r["id"] for r in only_real] == [run["id"]]
    assert member_client.get(f"{API}/imports/?state=finished").json()["results"][0]["id"] != run["id"]
    bad = member_client.get(f"{API}/imports/?state=done")
    assert bad.status_code == 400 and "state" in bad.json()["details"]


def test_files_with_outcomes_filters_and_detail(member_client, imported):
    files = member_client.get(imported["run_url"] + "files/").json()["results"]
    assert [(f["path"], f["outcome"]) for f in files] == [
        (f["path"], f["outcome"]) for f in imported["files"]
    ]  # the report's order
    failed = member_client.get(imported["run_url"] + "files/?outcome=failed").json()["results"]
    assert [(f["path"], f["code"], f["line"]) for f in failed] == [("backlog/bad.md", "yaml", 3)]
    assert failed[0]["reason"].startswith("malformed YAML")
    [parked] = member_client.get(imported["run_url"] + "files/?outcome=conflict").json()["results"]
    assert (parked["path"], parked["code"], parked["story"]) == ("staging/a.md", "duplicate_key", "DUP-1")
    assert parked["conflict"] == ImportConflict.objects.get().pk
    [created] = [f for f in files if f["path"] == "backlog/a.md"]
    assert created["story"] == "DUP-1" and created["conflict"] is None and len(created["content_hash"]) == 64
    assert member_client.get(parked["url"]).json() == parked
    assert member_client.get(imported["run_url"] + "files/?outcome=lost").status_code == 400


def test_conflict_list_detail_and_both_versions(member_client, imported):
    body = member_client.get(f"{API}/import-conflicts/?state=open").json()
    [conflict] = body["results"]
    assert (conflict["kind"], conflict["key"], conflict["source_path"]) == ("duplicate_key", "DUP-1", "staging/a.md")
    assert conflict["story"] == "DUP-1" and conflict["story_source_path"] == "backlog/a.md"
    assert conflict["run"] == imported["run"] and "content" not in conflict
    assert member_client.get(f"{API}/import-conflicts/?state=resolved").json()["results"] == []
    assert member_client.get(f"{API}/import-conflicts/?run={imported['run'] + 1}").json()["results"] == []
    detail = member_client.get(conflict["url"]).json()
    assert detail["content"] == MESSY["staging/a.md"]
    assert detail["existing"]["key"] == "DUP-1" and detail["existing"]["path"] == "backlog/a.md"
    assert detail["existing"]["text"] == MESSY["backlog/a.md"]  # the story's file, unchanged since
    assert member_client.get(f"{API}/import-conflicts/?kind=cycle").status_code == 400
    assert member_client.get(f"{API}/import-conflicts/?run=x").status_code == 400


def _conflict_url(client) -> str:
    return client.get(f"{API}/import-conflicts/").json()["results"][0]["url"]


def test_resolve_keep_existing_is_audited_and_final(member_client, imported, member):
    url = _conflict_url(member_client)
    response = member_client.post(url + "resolve/", {"resolution": "keep_existing"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["resolved_by"], body["resolved_story"]) == ("kept_existing", "member", "DUP-1")
    assert Story.objects.get(key="DUP-1").title == "From backlog"
    row = AuditLog.objects.get(action="import_conflict.resolved")
    assert (row.user, row.details["changes"]["state"]) == (member, {"old": "open", "new": "kept_existing"})
    again = member_client.post(url + "resolve/", {"resolution": "parked_wins"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    resolved = member_client.get(f"{API}/import-conflicts/?state=resolved").json()["results"]
    assert [c["state"] for c in resolved] == ["kept_existing"]


def test_resolve_parked_wins_and_rekey(member_client, imported, project):
    url = _conflict_url(member_client)
    body = member_client.post(url + "resolve/", {"resolution": "parked_wins"}, format="json").json()
    assert body["state"] == "parked_won"
    story = Story.objects.get(project=project, key="DUP-1")
    assert (story.title, story.owner, story.source_path) == ("From staging", "staging-team", "staging/a.md")
    assert "From backlog" in body["replaced_content"]
    update = AuditLog.objects.filter(action="story.updated", entity_id=str(story.pk)).latest("id")
    assert update.details["source"] == "api"

    _import(member_client, {"again/a.md": story_text("DUP-1", "Third version")})
    third = member_client.get(f"{API}/import-conflicts/?state=open").json()["results"][0]["url"]
    refused = member_client.post(third + "resolve/", {"resolution": "rekey"}, format="json")
    assert refused.status_code == 400 and "new_key" in refused.json()["details"]
    taken = member_client.post(third + "resolve/", {"resolution": "rekey", "new_key": "OK-2"}, format="json")
    assert taken.status_code == 400 and "exists already" in taken.json()["details"]["key"][0]
    body = member_client.post(third + "resolve/", {"resolution": "rekey", "new_key": "DUP-3"}, format="json").json()
    assert (body["state"], body["resolved_story"]) == ("rekeyed", "DUP-3")
    assert Story.objects.get(project=project, key="DUP-3").title == "Third version"
    stray = member_client.post(third + "resolve/", {"resolution": "keep_existing", "new_key": "X"}, format="json")
    assert stray.status_code == 400


@pytest.mark.parametrize(("who", "read", "write"), [("viewer", 200, 403), ("outsider", 404, 404), ("ro_key", 200, 403)])
def test_permissions(caller, member_client, imported, who, read, write):
    url = _conflict_url(member_client)
    client = caller(who)
    assert client.get(f"{API}/imports/").status_code == read
    assert client.get(imported["run_url"] + "files/").status_code == read
    assert client.get(url).status_code == read
    assert client.post(url + "resolve/", {"resolution": "keep_existing"}, format="json").status_code == write
    assert ImportConflict.objects.get().state == "open"


def test_another_projects_run_or_conflict_is_not_found_here(member_client, imported, owner):
    other = ProjectFactory(slug="other", name="Other", actor=owner)
    run = ImportRun.objects.create(project=other, source="cli")
    conflict = ImportConflict.objects.create(project=other, kind="duplicate_key", key="X-1", source_path="x.md")
    assert member_client.get(f"{API}/imports/{run.pk}/").status_code == 404
    assert member_client.get(f"{API}/imports/{run.pk}/files/").status_code == 404
    assert member_client.get(f"{API}/import-conflicts/{conflict.pk}/").status_code == 404
    response = member_client.post(
        f"{API}/import-conflicts/{conflict.pk}/resolve/", {"resolution": "keep_existing"}, format="json"
    )
    assert response.status_code == 404


def test_pages_and_constant_query_counts(member_client, project):
    for i in range(5):
        _import(member_client, {f"r{i}/a.md": story_text("SAME-1", f"v{i}"), f"r{i}/b.md": story_text(f"K-{i}")})
    runs = member_client.get(f"{API}/imports/?page_size=2").json()
    assert len(runs["results"]) == 2 and runs["next"]
    rest = member_client.get(f"{API}/imports/?page_size=2&cursor={runs['next']}").json()
    assert {r["id"] for r in rest["results"]}.isdisjoint(r["id"] for r in runs["results"])
    assert member_client.get(f"{API}/imports/?cursor=nonsense").status_code == 400

    first_run = ImportRun.objects.filter(project=project).order_by("id").first()
    counts = {}
    for size in (1, 5):
        for name, url in (
            ("runs", f"{API}/imports/?page_size={size}"),
            ("files", f"{API}/imports/{first_run.pk}/files/?page_size={size}"),
            ("conflicts", f"{API}/import-conflicts/?page_size={size}"),
        ):
            with CaptureQueriesContext(connection) as queries:
                response = member_client.get(url)
            assert response.status_code == 200
            counts[name, size] = len(queries)
    for name in ("runs", "files", "conflicts"):
        assert counts[name, 1] == counts[name, 5], counts
    assert (counts["runs", 5], counts["files", 5], counts["conflicts", 5]) == (2, 4, 2), counts
    conflicts = member_client.get(f"{API}/import-conflicts/?page_size=5").json()["results"]
    assert len(conflicts) == 4  # SAME-1 in r1..r4 is owned by r0's file
