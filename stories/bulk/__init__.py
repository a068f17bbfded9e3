"""Bulk create-or-update of stories by key: the engine of `POST …/stories/bulk/` and of
the story-file importer (stories.importer).

This is a service like those in stories.services (same rules: one transaction, role
checks, `full_clean()`, an audit row for every write, a status_history row for every
status a story takes). It exists apart because it must be fast for 10,000 items:

- everything the items refer to (existing stories, their dependencies, statuses, epics,
  backlogs, dependency targets) is read up front in a few batched queries, and every
  item is validated in memory, so a bad batch is refused before anything is written and
  every bad item is reported at once;
- new stories are written with batched inserts: the stories, their first status_history
  rows, their `story.created` audit rows (which list the story's dependencies) and
  their dependency rows. Cycles among the new links are checked in memory (new stories
  have no dependents outside the batch, so a cycle through them must lie in the batch);
- changed stories are locked (FOR NO KEY UPDATE, in id order, after the dependency-graph
  lock when the batch may change links: the lock order of stories.services), their links
  are read again under the lock, and they are updated together: what
  story_update does for one story (new version, points, workflow check unless the batch
  is an import, a status_history row for a status move, one `story.updated` audit row
  with the changes), sent as one batched UPDATE; their changed links go through
  dependency_remove / dependency_add one by one (cycle checks against the database);
- unchanged stories are compared in memory and write nothing (no audit rows). An item
  whose fields are as stored but whose dependency list differs is "updated" (its links
  change, with their own audit rows; the story's version does not).

Any failing item fails the whole batch with BulkValidationError (nothing is written);
`dry_run=True` runs every step and then rolls the transaction back.

The package: `values` (what a field value may be, pure), `parse` (raw items → typed
items and per-item errors, pure), `plan` (batched reads, dependency resolution, cycle
check, created / updated / unchanged), `apply` (the writes, history and audit rows) and
`service` (the entry point, `story_bulk_upsert`).
"""

from .service import BulkResult, story_bulk_upsert
from .values import ITEM_FIELDS, STATUS_ALIASES, clean_value, jsonable, match_status, normalize_status_word

__all__ = [
    "ITEM_FIELDS",
    "STATUS_ALIASES",
    "BulkResult",
    "clean_value",
    "jsonable",
    "match_status",
    "normalize_status_word",
    "story_bulk_upsert",
]
