"""One source per fact: the Story field table (stories.fields) and the priority map.

The table's limits are the model's `_meta`, every column of the stories table is in it,
and every consumer (API payload, serializers, exporter, story files, bulk, services,
admin, benchmark) takes its field list from it rather than from a copy."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from django.contrib.admin.utils import flatten_fieldsets
from rest_framework.test import APIClient

from stories import exporter, fields, services, storyfiles
from stories.admin import StoryAdmin, StoryAdminForm
from stories.api import filters, payloads, serializers
from stories.bulk import apply, values
from stories.models import PRIORITY_BY_WORD, PRIORITY_WORDS, Priority, Story

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- the table


def test_limits_come_from_the_model():
    for f in fields.STORY_FIELDS:
        if f.column is not None:
            assert f.max_length == Story._meta.get_field(f.column).max_length, f.name
    text_columns = {"title", "estimate", "branch_name", "file_path", "owner", "author"}
    assert {name: Story._meta.get_field(name).max_length for name in text_columns} == fields.TEXT_LIMITS
    points = Story._meta.get_field("points_min")
    assert 10 ** (points.max_digits - points.decimal_places) - 1 == fields.MAX_POINTS
    assert values.TEXT_LIMITS is fields.TEXT_LIMITS
    assert values.MAX_POINTS == fields.MAX_POINTS


def test_every_column_of_the_stories_table_is_in_the_table():
    """A new Story model field must be given its row (API name, file key, CSV column)."""
    stored = {f.attname for f in Story._meta.concrete_fields if not f.primary_key}
    assert set(fields.COLUMNS) == stored
    assert len(fields.COLUMNS) == len(stored)
    for f in fields.STORY_FIELDS:
        if f.column is not None:
            Story._meta.get_field(f.column)  # raises FieldDoesNotExist for a typo


def test_positions_are_a_sequence():
    csv_positions = sorted(f.csv for f in fields.STORY_FIELDS if f.csv)
    assert csv_positions == list(range(1, len(csv_positions) + 1))
    file_positions = sorted(f.file_position for f in fields.STORY_FIELDS if f.file_position)
    assert file_positions == list(range(1, len(file_positions) + 1))
    # A written key has a place; a field with a place has a key.
    assert all(bool(f.file_keys) == bool(f.file_position) for f in fields.STORY_FIELDS)
    assert len(fields.FILE_KEYS) == sum(len(f.file_keys) for f in fields.STORY_FIELDS)  # no key twice


def test_item_defaults_are_the_model_defaults():
    assert storyfiles.ITEM_DEFAULTS == {
        "branch_name": "",
        "epic": None,
        "priority": "medium",
        "estimate": "",
        "depends_on": [],
        "labels": [],
        "created": None,
        "author": "",
        "owner": "",
        "last_updated": None,
    }


# --------------------------------------------------------------------------- consumers


def test_consumers_take_their_lists_from_the_table():
    assert payloads.FIELDS is fields.VALUES
    assert payloads.JSON_FIELDS is fields.JSON_NAMES
    assert exporter.CSV_COLUMNS is fields.CSV_COLUMNS
    assert tuple(v for v in fields.VALUES if v != "project__slug") == exporter._VALUES  # noqa: SLF001
    assert services.STORY_FIELDS is fields.WRITABLE
    assert values.PLAIN_FIELDS is fields.PLAIN_NAMES
    assert set(values.ITEM_FIELDS) == {*fields.ITEM_NAMES, "notes"}
    assert apply.STORY_COLUMNS is fields.COLUMNS
    assert storyfiles.MODELED is fields.FILE_KEYS
    assert storyfiles.CANONICAL_ORDER is fields.FILE_KEY_ORDER
    assert storyfiles.FIELD_TO_KEY == {"key": "id", "depends_on": "dependencies"}
    story = dict.fromkeys(fields.EXPORT_NAMES) | {"dependencies": [], "labels": []}
    assert tuple(storyfiles.front_matter_values(story)) == tuple(
        f.file_keys[0] for f in fields.STORY_FIELDS if f.file_keys
    )
    assert set(StoryAdminForm._meta.fields) == {"project", "status", "version", *fields.WRITABLE}


def test_serializers_follow_the_table():
    given = serializers.StoryInputSerializer().fields
    # Every write field of the table (links have their own endpoint), and of the table's
    # fields no read-only one but the version the client read (the rest go with a write:
    # notes, the guard's override).
    assert {"key", *fields.ITEM_NAMES} - {"depends_on"} <= set(given)
    assert {name for name in given if name in fields.FIELDS and not fields.FIELDS[name].item} == {"version"}
    for name, field in given.items():
        if name in fields.FIELDS and hasattr(field, "max_length"):
            assert field.max_length == Story._meta.get_field(name).max_length, name
    assert list(given["priority"].choices) == list(PRIORITY_BY_WORD)
    assert tuple(serializers.StorySerializer().fields) == fields.API_NAMES


def test_admin_form_shows_every_stored_field_once():
    fieldsets = StoryAdmin(Story, None).get_fieldsets(request=None, obj=Story())
    shown = flatten_fieldsets(fieldsets)
    assert len(shown) == len(set(shown))
    stored = {f.name for f in fields.STORY_FIELDS if f.column} - {"status_category"}
    form_only = set(StoryAdminForm.declared_fields) - stored  # status notes, the guard's override
    assert set(shown) - form_only == stored


def test_bench_loads_and_serves_the_table_columns():
    dataset = (ROOT / "bench" / "dataset.py").read_text()
    assert 'story_columns = ["id", *fields.COLUMNS]' in dataset
    floor = (ROOT / "bench" / "views.py").read_text()
    select = re.search(r"SELECT (.*?)\n\s*FROM stories s", floor, re.S).group(1)
    read = [part.strip().split(".")[1] for part in select.split(",")]
    expected = [v.split("__")[-1] for v in fields.VALUES]
    assert read == expected  # the floor view reads the same columns, in the same order


@pytest.fixture
def api(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.mark.django_db
def test_payload_and_exports_use_the_table(api, make_story):
    make_story("INF-001", labels=["a"], estimate="3sp")
    make_story("INF-002", title="Second")
    detail = api.get("/api/v1/projects/plan-pipe/stories/INF-001/")
    assert detail.status_code == 200
    assert tuple(detail.json()) == fields.API_NAMES

    exported = api.get("/api/v1/projects/plan-pipe/export/?format=csv")
    assert exported.status_code == 200
    text = b"".join(exported.streaming_content).decode()
    assert tuple(next(csv.reader(io.StringIO(text)))) == fields.CSV_COLUMNS

    exported = api.get("/api/v1/projects/plan-pipe/export/?format=json")
    document = json.loads(b"".join(exported.streaming_content))
    story = document["stories"][0]
    assert tuple(story) == (*fields.EXPORT_NAMES, "dependencies", "history")


# --------------------------------------------------------------------------- the priority map


def test_priority_map_is_the_choices():
    assert PRIORITY_WORDS == {1: "low", 2: "medium", 3: "high", 4: "urgent", 5: "critical"}
    assert {v: k for k, v in PRIORITY_WORDS.items()} == PRIORITY_BY_WORD
    assert dict(Priority.choices) == PRIORITY_WORDS
    assert Priority.from_word(" High ") == Priority.HIGH
    with pytest.raises(ValueError):
        Priority.from_word("huge")


def test_priority_map_is_defined_once():
    from bench import views as bench_views
    from stories import graph

    assert fields.PRIORITY_WORDS is PRIORITY_WORDS
    assert fields.PRIORITY_BY_WORD is PRIORITY_BY_WORD
    for module in (payloads, exporter, graph, bench_views):
        assert module.PRIORITY_WORDS is PRIORITY_WORDS, module.__name__
    assert filters.PRIORITY_BY_WORD is PRIORITY_BY_WORD
    assert values._PRIORITY_WORDS is PRIORITY_BY_WORD  # noqa: SLF001
    # No other copy: nothing but the model reads Priority.choices or spells the words out.
    copies = []
    for path in [*(ROOT / "stories").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]:
        if "migrations" in path.parts or path.name == "models.py":
            continue
        source = path.read_text()
        if "Priority.choices" in source or re.search(r"[\"']urgent[\"']", source):
            copies.append(str(path.relative_to(ROOT)))
    assert copies == []
