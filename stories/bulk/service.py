"""The bulk upsert service: `story_bulk_upsert`, one transaction around plan and apply."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from ..models import Backlog, Project, ProjectMember
from ..permissions import require_project_role
from . import apply, plan
from .parse import Prepared


@dataclass
class BulkResult:
    items: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.items if item["outcome"] == outcome)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.count("created"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "items": self.items,
        }


class _DryRun(Exception):
    """Raised at the end of a dry run to roll its transaction back."""


def story_bulk_upsert(
    *,
    actor,
    project: Project,
    items: Sequence[Mapping[str, Any]],
    dry_run: bool = False,
    source: str | None = None,
    backlog: Backlog | None = None,
    enforce_workflow: bool = True,
    progress: Callable[[int, int], None] | None = None,
    sources: Sequence[tuple[str, str, str] | None] | None = None,
    prepared: Sequence[Prepared | None] | None = None,
) -> BulkResult:
    """Create or update `items` (dicts with "key" and the ITEM_FIELDS) in `project`, all
    or nothing. `backlog` puts every story of the batch into that backlog. With
    `enforce_workflow=False` (imports) a changed status is taken as written, without
    checking the workflow's allowed transitions. `source` (e.g. "import") is recorded in
    the audit rows. `sources` gives, per item, the (repository, path, content hash) of
    the file it came from (Story.source_*; stories.importer), `prepared` per item what
    parse.prepare_item made of it beforehand (or None). Raises BulkValidationError
    listing every bad item."""
    require_project_role(actor, project, ProjectMember.Role.MEMBER)
    if source is not None:
        from audit.context import write_context

        with write_context(source=source):
            return story_bulk_upsert(
                actor=actor,
                project=project,
                items=items,
                dry_run=dry_run,
                backlog=backlog,
                enforce_workflow=enforce_workflow,
                progress=progress,
                sources=sources,
                prepared=prepared,
            )
    try:
        with transaction.atomic():
            result = _run(actor, project, items, backlog, enforce_workflow, progress, sources, prepared)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    result.dry_run = dry_run
    return result


def _run(actor, project, items, backlog, enforce_workflow, progress, sources, prepared) -> BulkResult:
    the_plan = plan.make_plan(
        actor=actor,
        project=project,
        raw_items=items,
        backlog=backlog,
        enforce_workflow=enforce_workflow,
        progress=progress,
        sources=sources,
        prepared=prepared,
    )
    the_plan.raise_if_errors()
    apply.apply_plan(the_plan)
    the_plan.raise_if_errors()
    outcomes = {item.index: item for item in the_plan.items}
    return BulkResult(
        items=[
            {"index": i, "key": outcomes[i].key, "outcome": outcomes[i].outcome} for i in range(len(the_plan.raw_items))
        ]
    )
