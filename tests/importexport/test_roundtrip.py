"""Round trips: import → export → import into a fresh project gives the same stories,
dependencies and metadata; exports of an unchanged project are byte-identical."""

from __future__ import annotations

import csv
import io
import zipfile

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stories import services
from stories.exporter import stream_export
from stories.importer import import_stories
from stories.models import Story, StoryDependency
from stories.storyfiles import SOURCE_KEY, parse_story_file, render_story_file

from .conftest import SEEDS, make_zip, story_text

COMPARED = (
    "key",
    "title",
    "status__slug",
    "epic__slug",
    "priority",
    "estimate",
    "points_min",
    "points_max",
    "branch_name",
    "file_path",
    "owner",
    "author",
    "labels",
    "created",
    "last_updated",
    "body",
    "metadata",
)


def snapshot(project, *, without_source: bool = False) -> dict:
    stories = {}
    for row in Story.objects.filter(project=project).order_by("key").values(*COMPARED):
        if without_source:
            row["metadata"] = {k: v for k, v in row["metadata"].items() if k != SOURCE_KEY}
        stories[row["key"]] = row
    links = sorted(
        (d.story.key, d.depends_on.ref if d.depends_on.project_id != project.pk else d.depends_on.key, d.type)
        for d in StoryDependency.objects.filter(story__project=project).select_related("story", "depends_on__project")
    )
    return {"stories": stories, "links": links}


def export_zip(project, **filters) -> bytes:
    return b"".join(stream_export(project, "markdown", **filters))


def reimport(data: bytes, project, tmp_path, name="export.zip"):
    path = tmp_path / name
    path.write_bytes(data)
    return import_stories([path], project=project, actor=None)


def test_seed_round_trip_into_a_fresh_project(fresh_project, tmp_path):
    first = fresh_project()
    files = [p for p in sorted(SEEDS.glob("*.txt")) if not p.name.startswith("002")]
    assert import_stories(files, project=first, actor=None).ok
    data = export_zip(first)
    second = fresh_project()
    report = reimport(data, second, tmp_path)
    assert report.ok and report.count("created") == 4
    assert snapshot(second) == snapshot(first)
    # Importing the export back into the first project changes nothing.
    again = reimport(data, first, tmp_path, "again.zip")
    assert again.count("unchanged") == 4 and not again.written


def test_generated_files_with_dependencies_round_trip(fresh_project, write_files, tmp_path, owner):
    other = fresh_project("other-project")
    services.story_create(actor=None, project=other, key="API-004", title="Elsewhere")
    root = write_files(
        {
            "a/INF-001.md": story_text("INF-001", deps=["INF-002", "other-project:API-004"]),
            "a/INF-002.md": story_text("INF-002", deps=["INF-003"], status="ready"),
            "b/INF-003.md": "---\nid: INF-003\ntitle: Tagged\ntags: [x]\nmarket: eu\nnested:\n  list: [1, 2]\n"
            "  when: 2025-01-02\n---\nNo heading here.\n",
            "b/INF-004.md": "---\ntitle: Relates\ndependencies: [{key: INF-001, type: relates}]\n---\n# INF-004: Relates\n",
        }
    )
    first = fresh_project()
    report = import_stories(root, project=first, actor=None)
    assert report.ok, report.as_dict()
    snap = snapshot(first)
    assert ("INF-001", "other-project:API-004", "blocks") in snap["links"]
    assert ("INF-004", "INF-001", "relates") in snap["links"]
    assert snap["stories"]["INF-003"]["labels"] == ["x"]
    assert snap["stories"]["INF-003"]["metadata"]["nested"] == {"list": [1, 2], "when": "2025-01-02"}
    data = export_zip(first)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(archive.namelist()) == ["a/INF-001.md", "a/INF-002.md", "b/INF-003.md", "b/INF-004.md"]
    for name in archive.namelist():
        assert archive.read(name) == (root / name).read_bytes()
    second = fresh_project()
    assert reimport(data, second, tmp_path).ok
    assert snapshot(second) == snap


def test_edited_story_exports_same_keys_in_same_order(fresh_project, write_files, tmp_path):
    root = write_files(
        {
            "s.md": "---\nid: S-1\ntitle: Old\ntags: [t]\nmarket: eu\nstatus: draft\npriority: low\n---\nBody\n",
            "t.md": story_text("S-2"),
        }
    )
    first = fresh_project()
    import_stories(root, project=first, actor=None)
    story = Story.objects.get(project=first, key="S-1")
    services.story_update(actor=None, story=story, data={"title": "New: with a colon", "status": "ready"})
    services.dependency_add(actor=None, story=story, depends_on=Story.objects.get(project=first, key="S-2"))
    text = zipfile.ZipFile(io.BytesIO(export_zip(first))).read("s.md").decode()
    assert text == (
        "---\nid: S-1\ntitle: 'New: with a colon'\ntags: [t]\nmarket: eu\nstatus: ready\npriority: low\n"
        "dependencies: [S-2]\n---\nBody\n"
    )
    second = fresh_project()
    assert reimport(export_zip(first), second, tmp_path).ok
    assert snapshot(second, without_source=True) == snapshot(first, without_source=True)


def test_story_made_through_the_api_exports_and_round_trips(fresh_project, tmp_path):
    first = fresh_project()
    services.story_create(
        actor=None,
        project=first,
        key="API-1",
        title="Made by a tool",
        epic=services.epic_create(actor=None, project=first, slug="tools"),
        labels=["x, y", "- z"],
        estimate="1-2sp",
        metadata={"weird": "yes: no", "n": 1.5, "empty": {}},
        body="Hi\n",
    )
    data = export_zip(first)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.namelist() == ["tools/API-1-made-by-a-tool.md"]
    second = fresh_project()
    assert reimport(data, second, tmp_path).ok
    a = snapshot(first, without_source=True)
    b = snapshot(second, without_source=True)
    assert b["stories"]["API-1"].pop("file_path") == "tools/API-1-made-by-a-tool.md"
    a["stories"]["API-1"].pop("file_path")
    assert a == b


def test_exports_of_an_unchanged_project_are_byte_identical(fresh_project):
    project = fresh_project()
    import_stories(
        [p for p in sorted(SEEDS.glob("*.txt")) if not p.name.startswith("002")], project=project, actor=None
    )
    for fmt in ("markdown", "json", "csv"):
        first = b"".join(stream_export(project, fmt))
        assert first == b"".join(stream_export(project, fmt)), fmt


def test_json_export_has_everything(fresh_project, make_story):
    project = fresh_project()
    import_stories(
        [SEEDS / "003_b8894d00f89e475e.txt", SEEDS / "000_10f708c90851b329.txt"], project=project, actor=None
    )
    story = Story.objects.get(project=project, key="INF-013")
    services.story_transition(actor=None, story=story, status="ready", notes="groomed")
    data = orjson.loads(b"".join(stream_export(project, "json")))
    assert data["project"]["slug"] == project.slug
    assert {s["slug"] for s in data["project"]["statuses"]} >= {"draft", "done"}
    inf = next(s for s in data["stories"] if s["key"] == "INF-013")
    assert [h["new_status"] for h in inf["history"]] == ["draft", "ready"]
    assert inf["history"][1]["notes"] == "groomed"
    assert inf["metadata"]["emit_metadata"] == {"source_id": None, "layer": None, "input_path": None, "notes": None}
    assert inf["points_min"] == 3.0


def test_csv_export_and_filters(fresh_project, write_files):
    project = fresh_project()
    root = write_files(
        {
            "a.md": story_text("C-1", "=SUM(A1)", deps=["C-2"]),
            "b.md": story_text("C-2", status="done"),
            "c.md": "---\nid: C-3\ntitle: Other epic\nepic: elsewhere\n---\n",
        }
    )
    assert import_stories(root, project=project, actor=None).ok
    rows = list(csv.DictReader(io.StringIO(b"".join(stream_export(project, "csv")).decode())))
    assert [r["key"] for r in rows] == ["C-1", "C-2", "C-3"]
    assert rows[0]["title"] == "'=SUM(A1)"  # not run as a formula by spreadsheets
    assert rows[0]["dependencies"] == "C-2" and rows[0]["labels"] == "a; b"
    assert rows[0]["priority"] == "high" and rows[0]["points_min"] == "2"
    done = list(csv.DictReader(io.StringIO(b"".join(stream_export(project, "csv", status="done")).decode())))
    assert [r["key"] for r in done] == ["C-2"]
    archive = zipfile.ZipFile(io.BytesIO(export_zip(project, epic="elsewhere")))
    assert archive.namelist() == ["c.md"]


_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=30)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    title=_text.filter(lambda t: t.strip() != ""),
    labels=st.lists(_text, max_size=4),
    metadata=st.dictionaries(
        _text.filter(lambda k: k not in ("id", "title", SOURCE_KEY) and k.strip() == k and k), _json, max_size=4
    ),
    owner=_text,
    estimate=st.sampled_from(["", "3sp", "1-2sp", "5", "x"]),
)
def test_front_matter_rendering_round_trips(title, labels, metadata, owner, estimate):
    """Whatever the values, the written front matter reads back to the same values."""
    from stories.storyfiles import MODELED

    metadata = {k: v for k, v in metadata.items() if k not in MODELED}
    story = {
        "key": "H-1",
        "title": title,
        "status": "draft",
        "priority": "medium",
        "epic": None,
        "estimate": estimate,
        "branch_name": "",
        "owner": owner,
        "author": "",
        "labels": labels,
        "created": None,
        "last_updated": None,
        "dependencies": [],
        "body": "# H-1: body\n",
        "metadata": metadata,
        "file_path": "h.md",
    }
    text = render_story_file(story, "h.md", imports_as=lambda _t: False)
    item = parse_story_file(text, "h.md").item
    assert item["key"] == "H-1"
    assert item["title"] == title
    assert item.get("labels", []) == labels
    assert item.get("owner", "") == owner
    assert item.get("estimate", "") == estimate
    assert {k: v for k, v in item["metadata"].items() if k != SOURCE_KEY} == metadata
    assert item["body"] == "# H-1: body\n"


def test_zip_import_of_the_export_keeps_paths(fresh_project, tmp_path):
    data = make_zip({"deep/dir/x.md": story_text("Z-1"), "README.json": "{}"})
    project = fresh_project()
    report = reimport(data, project, tmp_path)
    assert [f.path for f in report.files] == ["deep/dir/x.md"]
    assert Story.objects.get(project=project, key="Z-1").file_path == "deep/dir/x.md"


def test_exports_stream_in_pages(fresh_project, write_files, monkeypatch):
    """Stories are read CHUNK at a time (keyset on the key) and each page is sent before
    the next is read, so memory does not grow with the project."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from stories import exporter

    project = fresh_project()
    root = write_files({f"{i}.md": story_text(f"PG-{i}", deps=[f"PG-{i - 1}"] if i else []) for i in range(5)})
    assert import_stories(root, project=project, actor=None).ok
    monkeypatch.setattr(exporter, "CHUNK", 2)
    for fmt in ("markdown", "json", "csv"):
        with CaptureQueriesContext(connection) as ctx:
            stream = stream_export(project, fmt)
            first = next(stream)
            reads_before_rest = sum(1 for q in ctx.captured_queries if 'FROM "stories"' in q["sql"])
            rest = b"".join(stream)
        page_reads = [q for q in ctx.captured_queries if 'FROM "stories"' in q["sql"] and "LIMIT 2" in q["sql"]]
        assert len(page_reads) == 4, fmt  # 2 + 2 + 1 stories, then an empty page
        assert reads_before_rest <= 1, fmt
        assert first and rest


def test_crlf_and_bom_files(fresh_project, write_files, tmp_path):
    crlf = "---\r\nid: CR-1\r\ntitle: Windows file\r\nstatus: ready\r\n---\r\n# CR-1: Windows file\r\n\r\nBody.\r\n"
    root = write_files(
        {"crlf.md": crlf.encode(), "bom.md": "\ufeff---\nid: BOM-1\ntitle: With a BOM\n---\nx\n".encode()}
    )
    project = fresh_project()
    assert import_stories(root, project=project, actor=None).ok
    story = Story.objects.get(project=project, key="CR-1")
    assert (story.title, story.status.slug, story.body) == (
        "Windows file",
        "ready",
        "# CR-1: Windows file\r\n\r\nBody.\r\n",
    )
    data = export_zip(project)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.read("crlf.md") == crlf.encode()  # byte for byte, line endings included
    assert archive.read("bom.md") == b"---\nid: BOM-1\ntitle: With a BOM\n---\nx\n"  # the BOM is dropped
    again = reimport(data, project, tmp_path)
    assert again.count("unchanged") == 2
