"""What "ready" and "blocked" mean (PRODUCT.md), decided here once.

- Only `blocks` links block; a blocker is *open* until its status is in the `completed`
  category (a cancelled blocker is still open).
- A story is *blocked* while it has an open blocker (hidden ones count too: the reader
  sees a placeholder, not what blocks it).
- A story is *ready* when its status is in the `unstarted` category and it is not blocked.
- The *blocked guard* (a per-project workflow rule, on unless the project's settings say
  ``"blocked_guard": false``): a blocked story may not enter the `started` or `completed`
  category; a project admin may override it with a reason.

The ready SQL (stories.graph), the `blocked` / `ready` flags of the API payloads and the
graph, and the guard in stories.services all take the rule from here: the Python
predicates, the ORM filter and the SQL condition below are built from the same constants.
"""

from __future__ import annotations

import re

from django.db.models import Q

from .models import Project, Status, StatusCategory, StoryDependency
from .rules import HIDDEN_REF

BLOCKING_TYPE = StoryDependency.Type.BLOCKS.value
DONE_CATEGORY = StatusCategory.COMPLETED.value
READY_CATEGORY = StatusCategory.UNSTARTED.value
# Stories in these categories are finished: they no longer wait for anything.
CLOSED_CATEGORIES = (StatusCategory.COMPLETED.value, StatusCategory.CANCELLED.value)
# A blocked story may not enter these (unless a project admin overrides the guard).
GUARDED_CATEGORIES = frozenset({StatusCategory.STARTED.value, StatusCategory.COMPLETED.value})

# The project setting (Project.settings) that turns the guard off when false.
GUARD_SETTING = "blocked_guard"
HIDDEN_LABEL = HIDDEN_REF  # stories.rules names hidden stories


def is_open_blocker(dependency_type: str, target_category: str | None) -> bool:
    """A dependency of this type on a story in this category blocks."""
    return dependency_type == BLOCKING_TYPE and target_category != DONE_CATEGORY


def is_ready(category: str, open_blockers: int) -> bool:
    return category == READY_CATEGORY and open_blockers == 0


def is_blocked(open_blockers: int) -> bool:
    return open_blockers > 0


def enters_guarded_category(old_category: str | None, new_category: str) -> bool:
    """A move (old None: a new story) that the guard checks: into `started` or
    `completed` from another category. Moves inside a category (in progress → review)
    are not checked."""
    return new_category in GUARDED_CATEGORIES and old_category != new_category


def guard_enabled(project: Project) -> bool:
    """The guard is on for every project unless its settings turn it off."""
    settings = project.settings if isinstance(project.settings, dict) else {}
    return settings.get(GUARD_SETTING, True) is not False


def open_blocker_q(prefix: str = "") -> Q:
    """ORM filter on StoryDependency rows (`prefix` reaches them from another model)."""
    return Q(**{f"{prefix}type": BLOCKING_TYPE}) & ~Q(**{f"{prefix}depends_on__status__category": DONE_CATEGORY})


_SQL_ALIAS = re.compile(r"^[a-z_][a-z0-9_]*$")
for _value in (BLOCKING_TYPE, DONE_CATEGORY, READY_CATEGORY, *CLOSED_CATEGORIES):
    assert _SQL_ALIAS.match(_value), _value  # safe as SQL literals below


_STATUSES = Status._meta.db_table


def open_blocker_sql(dependency: str, target_status_id: str) -> str:
    """SQL condition: the row `dependency` of story_dependencies, whose target's status id
    is the column `target_status_id`, is an open blocker. The completed statuses are one
    uncorrelated subquery (PostgreSQL hashes it once per statement), so a probe reads the
    blocker's status id, not its status row."""
    assert _SQL_ALIAS.match(dependency) and re.match(r"^[a-z_]+\.[a-z_]+$", target_status_id)
    return (
        f"{dependency}.type = '{BLOCKING_TYPE}' AND {target_status_id} NOT IN "
        f"(SELECT done.id FROM {_STATUSES} done WHERE done.category = '{DONE_CATEGORY}')"
    )


def ready_category_sql(status: str) -> str:
    """SQL condition: the status row `status` is in the ready (unstarted) category."""
    assert _SQL_ALIAS.match(status)
    return f"{status}.category = '{READY_CATEGORY}'"


def open_status_sql(status_id: str) -> str:
    """SQL condition: the status id in column `status_id` is not finished (its story still
    waits for work); like open_blocker_sql, one uncorrelated subquery of status ids."""
    assert re.match(r"^[a-z_]+\.[a-z_]+$", status_id)
    closed = ", ".join(repr(c) for c in CLOSED_CATEGORIES)
    return f"{status_id} NOT IN (SELECT closed.id FROM {_STATUSES} closed WHERE closed.category IN ({closed}))"
