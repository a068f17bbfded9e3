"""The Story field table: for every field of a story, its API name, how it is stored and
read, whether writes accept it, its story-file front-matter key(s), its CSV column and its
limits (from the model's `_meta`, never typed twice).

The API payload, the exporter (JSON, CSV, story files), the story-file reader, bulk
upsert, the services, the serializers, the admin and the benchmark all take their field
lists from here; tests/stories/test_fields.py checks that they do.

A domain module: it imports only the models.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from django.db import models

from .models import PRIORITY_BY_WORD, PRIORITY_WORDS, Priority, Story

__all__ = [
    "API_NAMES",
    "COLUMNS",
    "CSV_COLUMNS",
    "EXPORT_NAMES",
    "FIELDS",
    "FILE_KEY_OF",
    "FILE_KEY_ORDER",
    "FILE_KEYS",
    "ITEM_NAMES",
    "JSON_NAMES",
    "MAX_POINTS",
    "PLAIN_NAMES",
    "PRIORITY_BY_WORD",
    "PRIORITY_WORDS",
    "STORY_FIELDS",
    "TEXT_LIMITS",
    "VALUES",
    "WRITABLE",
    "Kind",
    "StoryField",
    "field",
    "item_default",
    "max_length",
]


class Kind(enum.StrEnum):
    TEXT = "text"
    DATE = "date"
    JSON = "json"
    PRIORITY = "priority"  # stored as a number (Priority), shown and accepted as a word
    ESTIMATE = "estimate"  # text such as "3sp" or "2-5"; points_min / points_max follow it
    REFERENCE = "reference"  # a related row, shown by its slug (or key)
    NUMBER = "number"  # kept by StoryHub: points worked out from the estimate, the version
    TIMESTAMP = "timestamp"
    LINKS = "links"  # the story's dependencies (StoryDependency rows)
    FLAG = "flag"  # worked out on read (blocked, ready)


@dataclass(frozen=True)
class StoryField:
    """One field of a story.

    - `name`: its name in the API payload, the JSON export and CSV header.
    - `column`: the Story model field holding it (None: worked out on read).
    - `lookup`: what `QuerySet.values()` reads for it (default: the column).
    - `item`: its name in a write (API body, bulk item, service data; None: read-only).
    - `writable`: assigned by the story services as given (status and the links have
      their own paths).
    - `file_keys`: front-matter keys of a story file (the first is written, the others are
      read as aliases); `file_position`: its place in a file written from scratch.
    - `csv`: its column number in the CSV export (1-based; None: not in the CSV).
    - `export`: in the exporter's story dict (JSON export, story files).
    """

    name: str
    kind: Kind
    column: str | None
    lookup: str | None = None
    item: str | None = None
    writable: bool = False
    file_keys: tuple[str, ...] = ()
    file_position: int | None = None
    csv: int | None = None
    export: bool = True

    @property
    def values_lookup(self) -> str | None:
        return self.lookup or self.column

    @property
    def max_length(self) -> int | None:
        """The model's limit for this field (None: no limit, or not a text column)."""
        if self.column is None:
            return None
        return getattr(Story._meta.get_field(self.column), "max_length", None)


_T = Kind
TEXT, DATE, JSON, PRIORITY, ESTIMATE = _T.TEXT, _T.DATE, _T.JSON, _T.PRIORITY, _T.ESTIMATE
REFERENCE, NUMBER, TIMESTAMP, LINKS, FLAG = _T.REFERENCE, _T.NUMBER, _T.TIMESTAMP, _T.LINKS, _T.FLAG
F = StoryField
# In API payload order (which is also the order of the JSON export's story keys). "read as":
# the `.values()` lookup when it is not the column; "write as": the name a write gives it;
# "assigned": set as given by the story services; "file#" / "csv#": position in a story file
# written from scratch / column of the CSV export.
# fmt: off
STORY_FIELDS: tuple[StoryField, ...] = (
    # name               kind       column          read as             write as        assigned  file keys           file#  csv#  export
    F("key",             TEXT,      "key",          None,               "key",          True,     ("id",),            1,     1,    True),
    F("title",           TEXT,      "title",        None,               "title",        True,     ("title",),         2,     2,    True),
    F("project",         REFERENCE, "project",      "project__slug",    None,           False,    (),                 None,  None, False),
    F("backlog",         REFERENCE, "backlog",      "backlog__slug",    "backlog",      True,     (),                 None,  5,    True),
    F("epic",            REFERENCE, "epic",         "epic__slug",       "epic",         True,     ("epic",),          4,     4,    True),
    F("status",          REFERENCE, "status",       "status__slug",     "status",       False,    ("status",),        5,     3,    True),
    F("status_category", REFERENCE, "status",       "status__category", None,           False,    (),                 None,  None, True),
    F("priority",        PRIORITY,  "priority",     None,               "priority",     True,     ("priority",),      6,     6,    True),
    F("estimate",        ESTIMATE,  "estimate",     None,               "estimate",     True,     ("estimate",),      7,     7,    True),
    F("points_min",      NUMBER,    "points_min",   None,               None,           False,    (),                 None,  8,    True),
    F("points_max",      NUMBER,    "points_max",   None,               None,           False,    (),                 None,  9,    True),
    F("branch_name",     TEXT,      "branch_name",  None,               "branch_name",  True,     ("branch_name",),   3,     14,   True),
    # A story file's path is where it is, not a key in it; its body is the markdown after the
    # front matter, and its keys StoryHub does not model go to metadata.
    F("file_path",       TEXT,      "file_path",    None,               "file_path",    True,     (),                 None,  15,   True),
    F("owner",           TEXT,      "owner",        None,               "owner",        True,     ("owner",),         12,    12,   True),
    F("author",          TEXT,      "author",       None,               "author",       True,     ("author",),        11,    13,   True),
    F("labels",          JSON,      "labels",       None,               "labels",       True,     ("labels", "tags"), 9,     10,   True),
    F("created",         DATE,      "created",      None,               "created",      True,     ("created",),       10,    16,   True),
    F("last_updated",    DATE,      "last_updated", None,               "last_updated", True,     ("last_updated",),  13,    17,   True),
    F("body",            TEXT,      "body",         None,               "body",         True,     (),                 None,  None, True),
    F("metadata",        JSON,      "metadata",     None,               "metadata",     True,     (),                 None,  None, True),
    F("version",         NUMBER,    "version",      None,               None,           False,    (),                 None,  18,   True),
    # The planner's order (board, ready queue): written only by stories.services.story_rank.
    F("rank",            NUMBER,    "rank",         None,               None,           False,    (),                 None,  None, True),
    # Where the story's file lives (importer, git sync): set by them, read-only elsewhere.
    F("source_repo",     TEXT,      "source_repo",  None,               None,           False,    (),                 None,  None, True),
    F("source_path",     TEXT,      "source_path",  None,               None,           False,    (),                 None,  None, True),
    F("source_hash",     TEXT,      "source_hash",  None,               None,           False,    (),                 None,  None, True),
    # The story's links (StoryDependency rows): written as a whole list, read as references.
    F("dependencies",    LINKS,     None,           None,               "depends_on",   False,    ("dependencies",),  8,     11,   True),
    F("blocked",         FLAG,      None,           None,               None,           False,    (),                 None,  None, False),
    F("ready",           FLAG,      None,           None,               None,           False,    (),                 None,  None, False),
    F("created_at",      TIMESTAMP, "created_at",   None,               None,           False,    (),                 None,  None, True),
    F("updated_at",      TIMESTAMP, "updated_at",   None,               None,           False,    (),                 None,  None, True),
)
# fmt: on
del F, _T, TEXT, DATE, JSON, PRIORITY, ESTIMATE, REFERENCE, NUMBER, TIMESTAMP, LINKS, FLAG

FIELDS: dict[str, StoryField] = {f.name: f for f in STORY_FIELDS}


def field(name: str) -> StoryField:
    return FIELDS[name]


def _model_field(name: str) -> models.Field:
    """The concrete model field `name` of Story (the table lists no reverse relations)."""
    field = Story._meta.get_field(name)
    assert isinstance(field, models.Field), name
    return field


def max_length(name: str) -> int | None:
    """The model's max_length of story field `name` (for serializers and checks)."""
    return FIELDS[name].max_length


API_NAMES: tuple[str, ...] = tuple(f.name for f in STORY_FIELDS)
# The stories table's columns (attnames, the id aside), each once: the project first (rows
# written in bulk start with it), then in table order.
COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(["project_id", *(_model_field(f.column).attname for f in STORY_FIELDS if f.column)])
)
# What `.values()` reads for a page of stories: the id, then every stored field in order.
VALUES: tuple[str, ...] = ("id", *(f.values_lookup for f in STORY_FIELDS if f.values_lookup))
JSON_NAMES: tuple[str, ...] = tuple(f.name for f in STORY_FIELDS if f.kind is Kind.JSON)
# The exporter's story dict: the stored fields in order (the links are added after them).
EXPORT_NAMES: tuple[str, ...] = tuple(f.name for f in STORY_FIELDS if f.export and f.values_lookup)
# Fields the story services assign as given (story_create / story_update `data`).
WRITABLE: tuple[str, ...] = tuple(f.item for f in STORY_FIELDS if f.writable and f.item)
# Fields a write may name (besides "key"), in payload order.
ITEM_NAMES: tuple[str, ...] = tuple(f.item for f in STORY_FIELDS if f.item and f.item != "key")
# Write fields stored as given once their value is checked (no row to look up).
PLAIN_NAMES: tuple[str, ...] = tuple(
    f.item for f in STORY_FIELDS if f.writable and f.item and f.item != "key" and f.kind is not Kind.REFERENCE
)
CSV_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in sorted((f for f in STORY_FIELDS if f.csv), key=lambda f: f.csv or 0)
)
# Front-matter key (aliases included) -> the write field it carries.
FILE_KEYS: dict[str, str] = {key: f.item for f in STORY_FIELDS if f.item for key in f.file_keys}
# Write field -> the front-matter key a story file is written with.
FILE_KEY_OF: dict[str, str] = {f.item: f.file_keys[0] for f in STORY_FIELDS if f.item and f.file_keys}
# The order of a story file's keys when no original order is known.
FILE_KEY_ORDER: tuple[str, ...] = tuple(
    f.file_keys[0] for f in sorted((f for f in STORY_FIELDS if f.file_position), key=lambda f: f.file_position or 0)
)
# Text limits of the write fields that have one (title 500, estimate 32, ...).
TEXT_LIMITS: dict[str, int] = {
    f.item: f.max_length
    for f in STORY_FIELDS
    if f.item and f.item != "key" and f.kind in (Kind.TEXT, Kind.ESTIMATE) and f.max_length
}
# points_min / points_max are DECIMAL(max_digits, decimal_places): the largest whole number of points.
_points = Story._meta.get_field("points_min")
MAX_POINTS: int = 10 ** (_points.max_digits - _points.decimal_places) - 1
del _points


def item_default(name: str) -> Any:
    """What a story file that leaves out the key for write field `name` means: the model's
    default (a priority as its word; no links)."""
    if name == "depends_on":
        return []
    default = _model_field(name).get_default()
    if name == "priority":
        return PRIORITY_WORDS[Priority(default)]
    return default
