"""What issue 11 promised and nothing tested yet: a project's own priority scale survives
import → edit → export; a JSON export imports back to the same project; a CSV export is
refused with one clear reason; errors outside the command are one line."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from stories import services
from stories.exporter import stream_export
from stories.importer import import_stories
from stories.models import Priority, Story

from .conftest import make_zip, story_text
from .test_file_shape import changed_lines, edit, export_files
from .test_roundtrip import snapshot

FIVE = "---\nid: PS-1\ntitle: Scaled\nstatus: draft\npriority: 5\nestimate: 3\n---\n# PS-1: Scaled\n\nBody.\n"

SCALES = [
    # (settings.priority_scale, what 5 means, a priority to change to, the number it writes)
    ("low-first", Priority.CRITICAL, "medium", 2),
    ("high-first", Priority.LOW, "critical", 1),
    ({"1": "critical", "3": "high", "5": "medium", "9": "low"}, Priority.MEDIUM, "low", 9),
]


@pytest.mark.parametrize(("scale", "five", "changed", "number"), SCALES, ids=["low-first", "high-first", "mapping"])
def test_a_custom_priority_scale_survives_an_edit(fresh_project, write_files, owner, scale, five, changed, number):
    project = fresh_project()
    services.project_update(
        actor=owner, project=project, data={"settings": {**project.settings, "priority_scale": scale}}
    )
    report = import_stories([write_files({"ps.md": FIVE})], project=project, actor=owner)
    assert report.ok, report.as_dict()
    assert Story.objects.get(project=project, key="PS-1").priority == five
    edit(owner, project, "PS-1", title="Scaled, retitled")
    after = export_files(project)["ps.md"].decode()
    assert changed_lines(FIVE, after) == (["title: Scaled\n"], ["title: Scaled, retitled\n"])  # priority: 5 stays
    edit(owner, project, "PS-1", priority=changed)
    removed, added = changed_lines(FIVE, export_files(project)["ps.md"].decode())
    assert "priority: 5\n" in removed and f"priority: {number}\n" in added
    # ... and the file written imports back to the same priority on the project's scale.
    data = b"".join(stream_export(project, "markdown"))
    again = import_stories([write_files({"back.zip": data})], project=project, actor=owner)
    assert again.ok and Story.objects.get(project=project, key="PS-1").priority == Priority[changed.upper()]


def test_a_json_export_imports_back_the_same(fresh_project, write_files, owner):
    first = fresh_project()
    files = {
        "a.md": story_text("J-1", "First", status="done", extra="market: eu\nowner: team-a\n", body="Body one.\n"),
        "b.md": story_text("J-2", "Second", deps=["J-1"], status="done"),
        "c.md": story_text("J-3", "Third", deps=["J-2", "{key: J-1, type: relates}"]),
    }
    first_report = import_stories([write_files(files)], project=first, actor=owner)
    assert first_report.ok, first_report.as_dict()
    edit(owner, first, "J-3", title="Third, edited in StoryHub")
    data = b"".join(stream_export(first, "json"))
    path = write_files({"export.json": data}, root=write_files({}).parent / "exports") / "export.json"
    second = fresh_project()
    report = import_stories([path], project=second, actor=owner)
    assert report.ok and report.count("created") == 3, report.as_dict()
    assert snapshot(second) == snapshot(first)
    # Into the project it came from: nothing changes.
    back = import_stories([path], project=first, actor=owner)
    assert back.ok and back.count("unchanged") == 3 and not back.written, back.as_dict()


def test_a_csv_export_is_refused_with_one_clear_reason(fresh_project, write_files, owner):
    project = fresh_project()
    assert import_stories([write_files({"a.md": story_text("C-1")})], project=project, actor=owner).ok
    data = b"".join(stream_export(project, "csv"))
    path = write_files({"stories.csv": data}, root=write_files({}).parent / "exports") / "stories.csv"
    report = import_stories([path], project=project, actor=owner)  # an export is given by name
    [result] = report.files
    assert (result.outcome, result.code) == ("failed", "csv_export")
    assert "\n" not in result.reason and "CSV export cannot be imported" in result.reason
    assert "JSON" in result.reason  # says what to use instead


BAD_FILES = {
    "yaml.md": "---\nid: Y-1\ntitle: [\n---\n",
    "list.md": "---\n- a\n- b\n---\n",
    "utf8.md": b"---\nid: U-1\ntitle: caf\xe9\n---\n",
    "unknown-dep.md": story_text("D-1", deps=["NOPE-9"]),
    "status.md": story_text("S-1", status="no-such-status"),
    "cycle-a.md": story_text("CY-1", deps=["CY-2"]),
    "cycle-b.md": story_text("CY-2", deps=["CY-1"]),
    "bad-key.md": "---\nid: 'bad key!'\ntitle: Bad\n---\n",
    "priority.md": "---\nid: P-1\ntitle: P\npriority: whenever\n---\n",
    "stories.csv": "key,title\nX-1,x\n",
}


def test_errors_over_the_api_are_one_line_each(member_client, project):
    """Every bad file gets one line (and its line number), never a traceback or a
    multi-line dump, over the API as in the command."""
    archive = make_zip({name: text for name, text in BAD_FILES.items() if not name.endswith(".csv")})
    uploads = [
        SimpleUploadedFile("bad.zip", archive),
        SimpleUploadedFile("stories.csv", BAD_FILES["stories.csv"].encode()),
    ]
    response = member_client.post("/api/v1/projects/plan-pipe/import/", {"files": uploads}, format="multipart")
    assert response.status_code == 200, response.content
    files = response.json()["files"]
    assert len(files) == len(BAD_FILES) and {f["outcome"] for f in files} == {"failed"}, files
    for result in files:
        reason = result["reason"]
        assert reason and "\n" not in reason and "Traceback" not in reason and len(reason) < 400, result
        assert result["code"], result
    atomic = member_client.post(
        "/api/v1/projects/plan-pipe/import/?atomic=true",
        {"files": [SimpleUploadedFile("bad.zip", archive)]},
        format="multipart",
    )
    body = atomic.json()
    assert atomic.status_code == 400 and "\n" not in body["message"]
    assert all(len(reasons) == 1 and "\n" not in reasons[0] for reasons in body["details"].values()), body
    assert len(body["report"]["files"]) == len(BAD_FILES) - 1
