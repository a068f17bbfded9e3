"""Export a project's stories as a markdown zip, JSON or CSV, streamed: stories are read
in key order, 500 at a time, so memory stays flat however large the project is.

- markdown: a zip with one story file per story at its `file_path` (else
  `epic/KEY-slug.md`); see stories.storyfiles for how files are written back.
- json: everything — the project's workflow, epics and backlogs, and each story with its
  dependencies and status history.
- csv: one row per story, with a header row, for spreadsheets.

The output depends only on the stored data (zip entry times are the stories'
`updated_at`), so exporting an unchanged project is byte-identical run to run.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.utils.text import slugify

from . import fields, project_settings
from .bulk import clean_value, match_status, normalize_status_word
from .models import DEFAULT_STATUS_SLUG, Epic, Project, Status, StatusHistory, Story, StoryDependency, priority_scale
from .selectors import reader_visibility
from .storyfiles import (
    ITEM_DEFAULTS,
    SOURCE_KEY,
    StoryFileError,
    export_path,
    parse_story_file,
    render_story_file,
    without_kept_text,
)

Progress = Callable[[int], None]  # called with the number of stories written so far

FORMATS = ("markdown", "json", "csv")
CONTENT_TYPES = {"markdown": "application/zip", "json": "application/json", "csv": "text/csv; charset=utf-8"}
EXTENSIONS = {"markdown": "zip", "json": "json", "csv": "csv"}
CHUNK = 500
PRIORITY_WORDS = fields.PRIORITY_WORDS

# A story dict holds the field table's exported fields, in its order; the links follow.
_EXPORTED = tuple((name, fields.field(name).values_lookup) for name in fields.EXPORT_NAMES)
_VALUES = ("id", *(lookup for _, lookup in _EXPORTED))
# The JSON export copies the stored JSON text of these columns as it is (orjson.Fragment):
# no decoding and re-encoding, so a stored value orjson could not encode (deeper than its
# 254 levels, an integer beyond 64 bits) is exported intact instead of ending the stream.
_JSON_COLUMNS = fields.JSON_NAMES
_VALUES_JSON_AS_TEXT = tuple(v for v in _VALUES if v not in _JSON_COLUMNS)
_JSON_AS_TEXT = {f"{name}_json": Cast(name, TextField()) for name in _JSON_COLUMNS}
CSV_COLUMNS = fields.CSV_COLUMNS


def export_filename(project: Project, fmt: str) -> str:
    return f"{project.slug}-stories.{EXTENSIONS[fmt]}"


def check_export_filters(project: Project, *, epic: str | None = None, status: str | None = None) -> None:
    """Refuse an epic or status that `project` does not have, before anything is streamed
    (an export that has started cannot turn into an error any more)."""
    errors: dict[str, list[str]] = {}
    wanted = {"epic": [epic] if epic else [], "status": [x.strip() for x in (status or "").split(",") if x.strip()]}
    for name, model in (("epic", Epic), ("status", Status)):
        values = wanted[name]
        if any("\x00" in v for v in values):
            errors[name] = ["NUL characters are not allowed."]
            continue
        known = set(model.objects.filter(project=project, slug__in=values).values_list("slug", flat=True))
        missing = [v for v in values if v not in known]
        if missing:
            allowed = ", ".join(model.objects.filter(project=project).order_by("slug").values_list("slug", flat=True))
            errors[name] = [
                f"No {name} {', '.join(map(repr, missing))} in project '{project.slug}'. Known: {allowed or 'none'}."
            ]
    if errors:
        raise ValidationError(errors)


def stories_for_export(project: Project, *, epic: str | None = None, status: str | None = None) -> QuerySet[Story]:
    """The project's stories, filtered by epic slug and status slug(s) (comma-separated)."""
    qs = Story.objects.filter(project=project)
    if epic:
        qs = qs.filter(epic__slug=epic)
    if status:
        qs = qs.filter(status__slug__in=[s.strip() for s in status.split(",") if s.strip()])
    return qs


def iter_story_dicts(
    queryset: QuerySet[Story],
    project_id: int,
    *,
    history: bool = False,
    progress: Progress | None = None,
    reader=None,
    json_as_fragments: bool = False,
) -> Iterator[dict[str, Any]]:
    """Story dicts in key order, CHUNK at a time (keyset pagination on the key);
    `progress(done)` after each chunk. A dependency on a story `reader` cannot see is
    left out (`reader=None`: the system, which sees every project). `json_as_fragments`:
    labels and metadata as their stored JSON text wrapped in orjson.Fragment (for orjson
    output only)."""
    seen = reader_visibility(reader)
    last = None
    done = 0
    while True:
        page = queryset.order_by("key")
        if last is not None:
            page = page.filter(key__gt=last)
        if json_as_fragments:
            rows = list(page.values(*_VALUES_JSON_AS_TEXT, **_JSON_AS_TEXT)[:CHUNK])
            for r in rows:
                for name in _JSON_COLUMNS:
                    text = r.pop(f"{name}_json")
                    r[name] = None if text is None else orjson.Fragment(text)
                    r[f"{name}_text"] = text
        else:
            rows = list(page.values(*_VALUES)[:CHUNK])
        if not rows:
            return
        last = rows[-1]["key"]
        ids = [r["id"] for r in rows]
        deps, hidden = _visible_dependencies(ids, seen)
        changes = _status_changes(ids) if history else {}
        for r in rows:
            if r["id"] in hidden:  # the kept file text names the story the reader cannot see
                text = r.get("metadata_text")
                r["metadata"] = without_kept_text(orjson.loads(text) if text is not None else r["metadata"])
            yield _story_dict(r, deps.get(r["id"], []), changes.get(r["id"]) if history else None, project_id)
        done += len(rows)
        if progress is not None:
            progress(done)


def _visible_dependencies(ids: list[int], seen) -> tuple[dict[int, list[dict]], set[int]]:
    """(story id -> its links to stories `seen` lets the reader see, in link order; the
    ids of the stories with a link the reader cannot see)."""
    deps: dict[int, list[dict]] = defaultdict(list)
    hidden: set[int] = set()
    for d in (
        StoryDependency.objects.filter(story_id__in=ids)
        .order_by("story_id", "id")
        .values(
            "story_id",
            "type",
            "description",
            "depends_on__key",
            "depends_on__project_id",
            "depends_on__project__slug",
        )
    ):
        if seen.sees(d["depends_on__project_id"]):
            deps[d["story_id"]].append(d)
        else:
            hidden.add(d["story_id"])
    return deps, hidden


def _status_changes(ids: list[int]) -> dict[int, list[dict]]:
    """story id -> its status history, oldest first."""
    changes: dict[int, list[dict]] = defaultdict(list)
    for h in (
        StatusHistory.objects.filter(story_id__in=ids)
        .order_by("story_id", "changed_at", "id")
        .values("story_id", "old_status__slug", "new_status__slug", "changed_by__username", "changed_at", "notes")
    ):
        changes[h["story_id"]].append(
            {
                "old_status": h["old_status__slug"],
                "new_status": h["new_status__slug"],
                "changed_by": h["changed_by__username"],
                "changed_at": h["changed_at"],
                "notes": h["notes"],
            }
        )
    return changes


def _story_dict(r: dict, deps: list[dict], history: list[dict] | None, project_id: int) -> dict[str, Any]:
    dependencies = []
    for d in deps:
        ref = d["depends_on__key"]
        if d["depends_on__project_id"] != project_id:
            ref = f"{d['depends_on__project__slug']}:{ref}"
        entry = {"depends_on": ref, "type": d["type"]}
        if d["description"]:
            entry["description"] = d["description"]
        dependencies.append(entry)
    dependencies.sort(key=lambda e: e["depends_on"])
    story = {name: r[lookup] for name, lookup in _EXPORTED}
    story["priority"] = PRIORITY_WORDS.get(r["priority"])
    story["dependencies"] = dependencies
    if history is not None:
        story["history"] = history
    return story


# --------------------------------------------------------------------------- markdown


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream whose bytes are taken out as they come."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks = []
        return out


# Fields a story file carries that compare as clean_value() stores them (the others below).
_COMPARED_AS_CLEANED = tuple(n for n in fields.PLAIN_NAMES if n not in ("priority", "file_path", "body", "metadata"))


class RoundTrip:
    """Tells whether a story file imports back to exactly a given story (in this project)."""

    def __init__(self, project: Project):
        self.project = project
        self.statuses = {s.slug: s for s in Status.objects.filter(project=project)}
        self.by_name = {normalize_status_word(s.name): s for s in self.statuses.values()}
        self.epics = set(Epic.objects.filter(project=project).values_list("slug", flat=True))
        self.default_status = project.settings.get(project_settings.DEFAULT_STATUS, DEFAULT_STATUS_SLUG)
        # A number in a file means what the project's scale says (1 may be low or critical).
        self.scale = priority_scale(project.settings)

    def same(self, text: str, path: str, story: dict[str, Any], *, source_too: bool = True) -> bool:
        """Whether `text` imports as `story`; `source_too=False`: apart from the kept front
        matter text itself (a file edited in place has a new one)."""
        try:
            item = {**ITEM_DEFAULTS, **parse_story_file(text, path).item}
        except StoryFileError:
            return False
        if not _same_plain_values(item, story, source_too=source_too, scale=self.scale):
            return False
        status = item.get("status")
        if status in (None, ""):
            if story["status"] != self.default_status:
                return False
        else:
            found = match_status(str(status), self.statuses, self.by_name)
            if found is None or found.slug != story["status"]:
                return False
        if self._epic_slug(item["epic"]) != story["epic"]:
            return False
        return _deps_of(item["depends_on"], self.project.slug) == sorted(
            (d["depends_on"], d["type"], d.get("description", "")) for d in story["dependencies"]
        )

    def _epic_slug(self, epic: Any) -> str | None:
        """The epic slug the importer would give the file's `epic` value."""
        if epic in (None, ""):
            return None
        text = str(epic).strip()
        return text if text in self.epics else slugify(text)[:100]


def _same_plain_values(
    item: dict[str, Any], story: dict[str, Any], *, source_too: bool, scale: dict[int, int] | None = None
) -> bool:
    """Whether a parsed file's plain values (all but status, epic and links) are the
    story's (a numeric priority read on the project's `scale`); `source_too=False`: the
    kept front matter text aside."""
    try:
        if item["key"] != story["key"] or item["file_path"] != story["file_path"]:
            return False
        for name in _COMPARED_AS_CLEANED:
            if clean_value(name, item[name]) != story[name]:
                return False
        metadata = clean_value("metadata", item["metadata"])
        if not source_too:
            metadata = {**metadata, SOURCE_KEY: story["metadata"].get(SOURCE_KEY)}
        if item["body"] != story["body"] or metadata != story["metadata"]:
            return False
        return PRIORITY_WORDS[clean_value("priority", item["priority"], priority_scale=scale)] == story["priority"]
    except Exception:  # noqa: BLE001 - any value the importer would refuse is "not the same"
        return False


def _deps_of(value: Any, own_slug: str) -> list[tuple[str, str, str]] | None:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return None
    out = []
    for entry in value:
        if isinstance(entry, dict):
            ref, kind, description = (
                entry.get("depends_on", entry.get("key")),
                entry.get("type", "blocks"),
                entry.get("description") or "",
            )
        else:
            ref, kind, description = entry, "blocks", ""
        ref = str(ref).strip()
        if ref.startswith(f"{own_slug}:"):
            ref = ref.split(":", 1)[1]
        if (ref, kind, description) not in out:
            out.append((ref, kind, description))
    return sorted(out)


def story_files(
    project: Project,
    queryset: QuerySet[Story],
    progress: Progress | None = None,
    *,
    reader=None,
    path_of: Callable[[dict[str, Any]], str] = export_path,
) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(story dict, path, file text) for each story, in key order: the file a markdown
    export (and a git sync's push) writes for it, at `path_of(story)` (a path taken by
    an earlier story gets the `epic/KEY-slug.md` form, then a `-KEY` suffix)."""
    checker = RoundTrip(project)
    scale = priority_scale(project.settings)
    used: set[str] = set()
    for story in iter_story_dicts(queryset, project.pk, progress=progress, reader=reader):
        path = path_of(story)
        if path in used:
            path = export_path({**story, "file_path": ""})
            if path in used:
                path = f"{path.rsplit('.', 1)[0]}-{story['key']}.md"
        used.add(path)
        text = render_story_file(
            story,
            path,
            imports_as=lambda t, p=path, s=story: checker.same(t, p, s),
            edit_imports_as=lambda t, p=path, s=story: checker.same(t, p, s, source_too=False),
            priority_scale=scale,
        )
        yield story, path, text


def stream_markdown(
    project: Project, queryset: QuerySet[Story], progress: Progress | None = None, *, reader=None
) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for story, path, text in story_files(project, queryset, progress, reader=reader):
            info = zipfile.ZipInfo(path, date_time=_zip_time(story["updated_at"]))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8"))
            yield sink.take()
    yield sink.take()


def story_markdown(story: Story, *, reader=None) -> tuple[str, str]:
    """(path, text) of one story's file, exactly as the markdown export writes it (the
    imported file itself while the story is unchanged); links `reader` cannot see are
    left out, as in every export."""
    project = story.project
    found = next(iter_story_dicts(Story.objects.filter(pk=story.pk), project.pk, reader=reader))
    path = export_path(found)
    checker = RoundTrip(project)
    return path, render_story_file(found, path, imports_as=lambda text: checker.same(text, path, found))


def _zip_time(when: dt.datetime) -> tuple[int, int, int, int, int, int]:
    when = when.astimezone(dt.UTC) if when.tzinfo else when
    if when.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)


# --------------------------------------------------------------------------- json and csv


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def stream_json(
    project: Project, queryset: QuerySet[Story], progress: Progress | None = None, *, reader=None
) -> Iterator[bytes]:
    head = {
        "format": "storyhub-export",
        "version": 1,
        "project": {
            "slug": project.slug,
            "name": project.name,
            "description": project.description,
            "statuses": list(
                Status.objects.filter(project=project)
                .order_by("order", "slug")
                .values("slug", "name", "category", "order", "allowed_transitions")
            ),
            "epics": list(Epic.objects.filter(project=project).order_by("slug").values("slug", "name", "description")),
            "backlogs": list(project.backlogs.order_by("slug").values("slug", "name", "type", "status")),
        },
    }
    opening = orjson.dumps(head, default=_json_default)
    yield opening[:-1] + b',"stories":['
    first = True
    stories = iter_story_dicts(
        queryset, project.pk, history=True, progress=progress, reader=reader, json_as_fragments=True
    )
    for story in stories:
        yield (b"" if first else b",") + orjson.dumps(story, default=_json_default)
        first = False
    yield b"]}\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        value = format(value.normalize(), "f")
    text = str(value)
    # Spreadsheets run cells that start like a formula; keep them text.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def stream_csv(
    project: Project, queryset: QuerySet[Story], progress: Progress | None = None, *, reader=None
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for n, story in enumerate(iter_story_dicts(queryset, project.pk, progress=progress, reader=reader), start=1):
        row = dict(story)
        row["labels"] = "; ".join(story["labels"] or [])
        row["dependencies"] = " ".join(
            d["depends_on"] if d["type"] == "blocks" else f"{d['depends_on']}({d['type']})"
            for d in story["dependencies"]
        )
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
        if n % CHUNK == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def stream_export(
    project: Project,
    fmt: str,
    *,
    epic: str | None = None,
    status: str | None = None,
    progress: Progress | None = None,
    reader=None,
) -> Iterator[bytes]:
    """The export of `project` in `fmt` (markdown / json / csv), as a stream of bytes,
    as `reader` may see it (`reader=None`: the system); `progress(stories_done)` is
    called as the stories go out."""
    if fmt not in FORMATS:
        raise ValueError(fmt)
    queryset = stories_for_export(project, epic=epic, status=status)
    stream = {"markdown": stream_markdown, "json": stream_json, "csv": stream_csv}[fmt]
    return stream(project, queryset, progress, reader=reader)
