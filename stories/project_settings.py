"""The project settings StoryHub reads (Project.settings, a JSON object), declared once:
each key, what it means, its default and how a value is checked. The admin's project
form builds one field per setting from SCHEMA; the readers (the blocked guard, the bulk
writer, the exporter, the services) take the keys from here. Keys not listed are the
project's own: StoryHub stores them and reads nothing from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import readiness
from .models import DEFAULT_PRIORITY_SCALE, DEFAULT_STATUS_SLUG, PRIORITY_SCALE_SETTING, PRIORITY_SCALES, priority_scale

BLOCKED_GUARD = readiness.GUARD_SETTING
CREATE_MISSING_STATUSES = "create_missing_statuses"
PRIORITY_SCALE = PRIORITY_SCALE_SETTING
DEFAULT_STATUS = "default_status"


@dataclass(frozen=True)
class Setting:
    key: str
    label: str
    kind: str  # "bool", "priority_scale" or "status" (a slug of the project's workflow)
    default: Any
    help: str


SCHEMA: tuple[Setting, ...] = (
    Setting(
        BLOCKED_GUARD,
        "Blocked guard",
        "bool",
        True,
        "On: a story waiting on an unfinished blocker may not enter a started or completed status "
        "(a project admin may override it, with a reason).",
    ),
    Setting(
        CREATE_MISSING_STATUSES,
        "Create missing statuses on import",
        "bool",
        False,
        "On: an imported story whose status this workflow does not have creates that status; "
        "off: the story is refused with the status named.",
    ),
    Setting(
        PRIORITY_SCALE,
        "Numeric priority scale",
        "priority_scale",
        DEFAULT_PRIORITY_SCALE,
        "How story files' numeric priorities read: high-first (1 is critical), low-first (1 is low), "
        "or your own mapping of numbers to priority words.",
    ),
    Setting(
        DEFAULT_STATUS,
        "Default status",
        "status",
        DEFAULT_STATUS_SLUG,
        "The status of a new story that names none (API, admin, import).",
    ),
)
KNOWN: dict[str, Setting] = {setting.key: setting for setting in SCHEMA}
SCALE_NAMES: tuple[str, ...] = tuple(PRIORITY_SCALES)


def check(key: str, value: Any, *, status_slugs: set[str] | None = None) -> None:
    """Raise ValueError (with a message naming the setting) unless `value` is valid for
    the known setting `key`. `status_slugs`: the project's workflow, for a status."""
    setting = KNOWN[key]
    if setting.kind == "bool" and not isinstance(value, bool):
        raise ValueError(f"'{key}' must be true or false.")
    if setting.kind == "priority_scale":
        priority_scale({key: value})  # raises ValueError naming the accepted forms
    if setting.kind == "status":
        if not isinstance(value, str) or not value:
            raise ValueError(f"'{key}' must be a status slug.")
        if status_slugs is not None and value not in status_slugs:
            raise ValueError(f"'{key}': the workflow has no status '{value}'.")


def value_of(settings: dict | None, key: str) -> Any:
    """The setting's value in `settings`, or its default."""
    given = settings if isinstance(settings, dict) else {}
    return given.get(key, KNOWN[key].default)
