"""The values a bulk item may carry, as stored: pure functions, no database.

`clean_value()` is also what the exporter uses to round-trip story files, and
`match_status()` / `normalize_status_word()` map the status words seen in story files to a
project's workflow."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

from storyhub.validators import validate_json_value

from .. import fields, services
from ..models import DEFAULT_PRIORITY_SCALE, PRIORITY_SCALES, Priority, Status, priority_from_number

# Fields an item may carry (besides "key"). "depends_on" is the story's complete list of
# dependencies: links missing from it are removed; leave it out to keep the links as they are.
# "notes" is not a story field: it goes with a status change.
ITEM_FIELDS = (*fields.ITEM_NAMES, "notes")
# Text fields with a length limit: the model's max_length, the check full_clean() would make.
TEXT_LIMITS = fields.TEXT_LIMITS
PLAIN_FIELDS = fields.PLAIN_NAMES
MAX_POINTS = fields.MAX_POINTS
_PRIORITY_WORDS = fields.PRIORITY_BY_WORD

# Status words seen in story files that are not slugs of the default workflow.
STATUS_ALIASES = {
    "todo": "ready",
    "to_do": "ready",
    "open": "backlog",
    "new": "draft",
    "wip": "in_progress",
    "doing": "in_progress",
    "started": "in_progress",
    "in_review": "review",
    "ready_for_review": "review",
    "code_review": "review",
    "complete": "done",
    "completed": "done",
    "closed": "done",
    "finished": "done",
    "canceled": "cancelled",
}

# (part of a slug, category) for statuses a batch creates (project setting create_missing_statuses).
CATEGORY_HINTS = (
    ("cancel", "cancelled"),
    ("done", "completed"),
    ("complete", "completed"),
    ("closed", "completed"),
    ("accepted", "completed"),
    ("progress", "started"),
    ("review", "started"),
    ("active", "started"),
    ("ready", "unstarted"),
)


def normalize_status_word(word: str) -> str:
    """'Ready for Review' → 'ready_for_review', '**Done**' → 'done', '✅ ACCEPTED' and
    'Accepted!' → 'accepted': case, markdown emphasis, emoji and punctuation do not count."""
    text = unicodedata.normalize("NFKC", str(word))
    text = "".join(ch if ch.isalnum() else " " for ch in text.replace("_", " "))
    return "_".join(text.lower().split())


def match_status(word: str, statuses: Mapping[str, Status], by_name: Mapping[str, Status]) -> Status | None:
    """The workflow status a word names: its slug, its name, or a known alias."""
    if word in statuses:
        return statuses[word]
    norm = normalize_status_word(word)
    return statuses.get(norm) or by_name.get(norm) or statuses.get(STATUS_ALIASES.get(norm, ""))


# Priority words seen in planning repositories besides the stored ones.
PRIORITY_ALIASES = {
    "highest": Priority.CRITICAL,
    "blocker": Priority.CRITICAL,
    "normal": Priority.MEDIUM,
    "med": Priority.MEDIUM,
    "lowest": Priority.LOW,
}
_PRIORITY_NUMBER = re.compile(r"^[Pp]?(-?\d{1,6})$")


def clean_priority(value: Any, scale: Mapping[int, int] | None = None) -> int:
    """The stored priority for a priority as written: a word ("high", "**High**"), or a
    number ("1", 1, "P1") on the project's scale (models.priority_scale; default: 1 is
    the highest). ValidationError otherwise."""
    scale = scale or PRIORITY_SCALES[DEFAULT_PRIORITY_SCALE]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return priority_from_number(value, dict(scale))
    if isinstance(value, str):
        if value in _PRIORITY_WORDS:
            return _PRIORITY_WORDS[value]
        number = _PRIORITY_NUMBER.match(value.strip())
        if number:
            return priority_from_number(int(number.group(1)), dict(scale))
        word = normalize_status_word(value)
        if word in _PRIORITY_WORDS or word in PRIORITY_ALIASES:
            return _PRIORITY_WORDS.get(word) or PRIORITY_ALIASES[word]
    if isinstance(value, bool | list | dict | float):
        raise ValidationError(f"Unknown priority '{value}'; use a word ({', '.join(_PRIORITY_WORDS)}) or a number.")
    return services.resolve_priority(value)


def clean_value(name: str, value: Any, *, priority_scale: Mapping[int, int] | None = None) -> Any:
    """The stored value of a plain story field as given in an item (ValidationError if
    bad); numeric priorities are read on `priority_scale` (default: 1 is the highest)."""
    if name == "priority":
        return clean_priority(value, priority_scale)
    if name in TEXT_LIMITS or name == "body":
        return _clean_text(name, value)
    if name == "labels":
        return _clean_labels(value)
    if name in ("created", "last_updated"):
        return _clean_date(value)
    if name == "metadata":
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError("Give an object (a mapping of keys to values).")
        validate_json_value(value)  # the one depth and size limit (also keeps jsonable's recursion short)
        return jsonable(value)
    raise AssertionError(name)


def _clean_text(name: str, value: Any) -> str:
    if value is None:
        if name == "title":
            raise ValidationError("Give a title.")
        return ""
    if isinstance(value, bool | list | dict):
        raise ValidationError("Give text.")
    text = value if isinstance(value, str) else str(value)
    if name == "title" and not text.strip():
        raise ValidationError("Give a title.")
    limit = TEXT_LIMITS.get(name)
    if limit and len(text) > limit:
        raise ValidationError(f"At most {limit} characters (this has {len(text)}).")
    if name == "estimate" and (services.parse_estimate(text)[1] or 0) > MAX_POINTS:
        raise ValidationError(f"At most {MAX_POINTS} points.")
    if "\x00" in text:
        raise ValidationError("NUL characters are not allowed.")
    return text


def _clean_labels(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(x, str) for x in value):
        raise ValidationError("Give a list of strings.")
    validate_json_value(list(value))
    return list(value)


def _clean_date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(f"'{value}' is not a date (use YYYY-MM-DD).") from None


def jsonable(value: Any, _depth: int = 0) -> Any:
    """`value` as JSON can store it: YAML dates become ISO text; anything JSON cannot
    hold (binary, NaN, sets, very deep nesting) is a ValidationError."""
    if _depth > 50:
        raise ValidationError("Nested too deeply.")
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError("NUL characters are not allowed.")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError("NaN and infinity cannot be stored.")
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    raise ValidationError(f"A {type(value).__name__} value cannot be stored as JSON.")
