"""POST /api/v1/projects/{slug}/import/ and GET /api/v1/projects/{slug}/export/."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditLog
from stories.models import Story

from .conftest import SEEDS, make_zip, story_text

IMPORT = "/api/v1/projects/plan-pipe/import/"
EXPORT = "/api/v1/projects/plan-pipe/export/"


def upload(name: str, content: bytes | str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content)


@pytest.mark.parametrize(
    ("who", "imported", "exported"),
    [
        ("anonymous", 401, 401),
        ("outsider", 404, 404),
        ("viewer", 403, 200),
        ("ro_key", 403, 200),
        ("member", 200, 200),
        ("owner", 200, 200),
    ],
)
def test_permissions(caller, project, who, imported, exported):
    client = caller(who)
    response = client.post(IMPORT, {"files": [upload("a.md", story_text("API-1"))]}, format="multipart")
    assert response.status_code == imported, response.content
    assert Story.objects.filter(key="API-1").exists() == (imported == 200)
    assert client.get(EXPORT + "?format=json").status_code == exported


def test_import_files_and_zip_with_audit(member_client, member, project):
    request_zip = make_zip({"z/one.md": story_text("ZIP-1"), "z/two.md": story_text("ZIP-2", deps=["API-1"])})
    response = member_client.post(
        IMPORT,
        {"files": [upload("a.md", story_text("API-1")), upload("stories.zip", request_zip)]},
        format="multipart",
        HTTP_X_REQUEST_ID="req-import-1",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["created"], body["failed"], body["written"]) == (3, 0, True)
    assert [f["path"] for f in body["files"]] == ["a.md", "z/one.md", "z/two.md"]
    rows = AuditLog.objects.filter(action="story.created", details__key__in=["API-1", "ZIP-1", "ZIP-2"])
    assert rows.count() == 3
    assert {(r.user, r.details["source"], r.details.get("request_id")) for r in rows} == {
        (member, "import", "req-import-1")
    }
    again = member_client.post(IMPORT, {"files": [upload("a.md", story_text("API-1"))]}, format="multipart")
    assert again.json()["unchanged"] == 1 and again.json()["written"] is False


def test_import_failure_is_a_400_with_the_report(member_client, project):
    response = member_client.post(
        IMPORT,
        {"files": [upload("good.md", story_text("G-1")), upload("bad.md", "---\nid: B-1\ntitle: [\n---\n")]},
        format="multipart",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "import_failed"
    assert "nothing was written" in body["message"]
    assert body["details"]["bad.md"][0].startswith("line 3: malformed YAML")
    assert {f["path"]: f["outcome"] for f in body["report"]["files"]} == {"good.md": "skipped", "bad.md": "failed"}
    assert not Story.objects.filter(project=project).exists()
    partial = member_client.post(
        IMPORT + "?continue_on_error=true",
        {"files": [upload("good.md", story_text("G-1")), upload("bad.md", "---\nid: B-1\ntitle: [\n---\n")]},
        format="multipart",
    )
    assert partial.status_code == 200 and partial.json()["failed"] == 1
    assert Story.objects.filter(project=project, key="G-1").exists()


def test_import_dry_run_and_bad_requests(member_client, project):
    response = member_client.post(
        IMPORT + "?dry_run=true", {"files": [upload("a.md", story_text("D-1"))]}, format="multipart"
    )
    assert response.status_code == 200
    assert response.json()["dry_run"] is True and response.json()["created"] == 1
    assert not Story.objects.filter(key="D-1").exists()
    assert member_client.post(IMPORT, {}, format="multipart").json()["code"] == "validation_error"
    assert member_client.post(IMPORT, {"x": 1}, format="json").status_code == 415
    assert (
        member_client.post(IMPORT + "?dry_run=maybe", {"files": [upload("a.md", "x")]}, format="multipart").status_code
        == 400
    )
    missing = member_client.post(IMPORT + "?backlog=nope", {"files": [upload("a.md", "x")]}, format="multipart")
    assert missing.status_code == 404 and "backlog" in missing.json()["details"]
    escape = member_client.post(
        IMPORT, {"files": [upload("x.zip", make_zip({"../x.md": story_text("E-1")}))]}, format="multipart"
    )
    assert escape.status_code == 400 and "escapes the archive" in str(escape.json()["details"])


def test_export_formats_and_filters(member_client, owner, project):
    seed = SEEDS / "000_10f708c90851b329.txt"
    member_client.post(
        IMPORT,
        {"files": [upload(seed.name, seed.read_bytes()), upload("b.md", story_text("B-1", status="done"))]},
        format="multipart",
    )
    response = member_client.get(EXPORT)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="plan-pipe-stories.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.read(seed.name) == seed.read_bytes()

    response = member_client.get(EXPORT + "?format=csv&status=done", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["key"] for r in rows] == ["B-1"]

    response = member_client.get(EXPORT + "?format=json&epic=infrastructure")
    import orjson

    data = orjson.loads(b"".join(response.streaming_content))
    assert [s["key"] for s in data["stories"]] == ["INF-013"]
    bad = member_client.get(EXPORT + "?format=xml")
    assert bad.status_code == 400 and bad.json()["details"] == {"format": ["Give one of: markdown, json, csv."]}
    # Unknown filters are refused before the stream starts (once it has, only a 500 is left).
    bad = member_client.get(EXPORT + "?format=csv&epic=nope&status=done,gone")
    assert bad.status_code == 400
    assert bad.json()["details"]["epic"][0].startswith("No epic 'nope' in project 'plan-pipe'. Known: ")
    assert bad.json()["details"]["status"][0].startswith("No status 'gone' in project 'plan-pipe'. Known: ")
    # Found by schemathesis: a NUL in a filter broke the stream on PostgreSQL.
    nul = member_client.get(EXPORT + "?format=csv&epic=a%00b")
    assert nul.status_code == 400 and nul.json()["details"] == {"epic": ["NUL characters are not allowed."]}
