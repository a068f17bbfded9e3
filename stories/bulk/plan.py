"""Plan a batch: read what the items refer to in a few batched queries (the workflow,
existing stories and their links, dependency targets), parse the items against it,
resolve every dependency, check cycles among the batch's own links, and classify each
item as created / updated / unchanged. Nothing is written here; `apply` writes the plan."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError

from storyhub.errors import BulkValidationError

from .. import project_settings
from ..models import Backlog, Epic, Project, ProjectMember, Status, Story, StoryDependency, priority_scale
from ..permissions import has_project_role
from ..selectors import visible_project_ids
from .parse import Dep, Errors, Item, Lookup, Prepared, parse_items
from .values import normalize_status_word

CHUNK = 900  # stays under SQLite's 999 bound parameters per query

Link = tuple[str, str]  # (type, description) of an existing link


class Plan:
    """Everything the writes need: the parsed items with their outcome, the project's
    workflow and epics (the writes add the ones they create), the existing stories and
    their links, and the errors found so far."""

    def __init__(self, *, actor, project: Project, raw_items: Sequence[Any], backlog, enforce_workflow, progress):
        self.actor = actor
        self.project = project
        self.raw_items = list(raw_items)
        self.backlog: Backlog | None = backlog  # every story of the batch goes into it
        self.enforce_workflow: bool = enforce_workflow
        self.progress: Callable[[int, int], None] | None = progress
        self.errors = Errors()
        self.items: list[Item] = []
        self.by_key: dict[str, Item] = {}
        self.new_statuses: dict[str, str] = {}
        self.statuses: dict[str, Status] = {}
        self.epics: dict[str, Epic] = {}
        self.backlogs: dict[str, Backlog] | None = None  # read only when needed
        self.existing: dict[str, Story] = {}
        self.existing_deps: dict[int, dict[int, Link]] = defaultdict(dict)
        self.labels: dict[int, str] = {}

    def raise_if_errors(self) -> None:
        if self.errors.rows:
            rows = sorted(self.errors.rows, key=lambda r: r["index"])
            raise BulkValidationError(rows, total=len(self.raw_items))

    def tick(self, done: int) -> None:
        if self.progress is not None:
            self.progress(done, len(self.raw_items))

    def backlog_map(self) -> dict[str, Backlog]:
        if self.backlogs is None:
            self.backlogs = {b.slug: b for b in Backlog.objects.filter(project=self.project)}
            for found in self.backlogs.values():
                found.project = self.project  # str(backlog) in audit rows reads the project
        return self.backlogs

    def related(self, name: str, pk: int | None) -> Backlog | Epic | None:
        """The backlog / epic with id `pk`, from what this batch has read already."""
        if pk is None:
            return None
        known = (self.backlog_map() if name == "backlog" else self.epics).values()
        found = next((obj for obj in known if obj.pk == pk), None)
        return found or (Backlog if name == "backlog" else Epic).objects.filter(pk=pk).first()

    def target_id(self, dep: Dep) -> int:
        """The story id a dependency points to (batch items once they are written)."""
        return dep.target_id if dep.target_id is not None else self.by_key[dep.ref].story_id


def make_plan(
    *,
    actor,
    project: Project,
    raw_items: Sequence[Any],
    backlog: Backlog | None = None,
    enforce_workflow: bool = True,
    progress: Callable[[int, int], None] | None = None,
    sources: Sequence[tuple[str, str, str] | None] | None = None,
    prepared: Sequence[Prepared | None] | None = None,
) -> Plan:
    """Read, parse, resolve and classify the batch. Problems are collected in
    `plan.errors`; the caller raises them (`plan.raise_if_errors()`)."""
    if backlog is not None and backlog.project_id != project.pk:
        raise ValidationError({"backlog": [f"Backlog '{backlog.slug}' belongs to another project."]})
    plan = Plan(
        actor=actor,
        project=project,
        raw_items=raw_items,
        backlog=backlog,
        enforce_workflow=enforce_workflow,
        progress=progress,
    )
    parsed = parse_items(plan.raw_items, load_lookup(plan), plan.errors, prepared)
    plan.items, plan.by_key, plan.new_statuses = parsed.items, parsed.by_key, parsed.new_statuses
    if sources is not None:
        for item in plan.items:
            item.source = sources[item.index]
    load_existing(plan)
    resolve_dependencies(plan)
    check_batch_cycles(plan)
    classify(plan)
    return plan


def _names_a_backlog(raw: Any) -> bool:
    return isinstance(raw, Mapping) and isinstance(raw.get("backlog"), str) and raw["backlog"] != ""


def load_lookup(plan: Plan) -> Lookup:
    """The project's workflow and epics (and backlogs when an item names one)."""
    plan.statuses = {s.slug: s for s in Status.objects.filter(project=plan.project)}
    plan.epics = {e.slug: e for e in Epic.objects.filter(project=plan.project)}
    backlogs = plan.backlog_map() if any(_names_a_backlog(raw) for raw in plan.raw_items) else {}
    return Lookup(
        project_slug=plan.project.slug,
        statuses=plan.statuses,
        status_by_name={normalize_status_word(s.name): s for s in plan.statuses.values()},
        epics=plan.epics,
        backlogs=backlogs,
        create_missing_statuses=bool(plan.project.settings.get(project_settings.CREATE_MISSING_STATUSES)),
        priority_scale=project_priority_scale(plan.project),
    )


def project_priority_scale(project: Project) -> dict[int, int]:
    """The project's numeric priority scale (a bad setting is refused by name)."""
    try:
        return priority_scale(project.settings)
    except ValueError as exc:
        raise ValidationError({"priority": [str(exc)]}) from None


def load_existing(plan: Plan) -> None:
    """The batch's stories that exist already (and dependency targets of this project),
    and the links of those whose dependency list the batch sets."""
    keys = set(plan.by_key)
    for item in plan.items:
        for dep in item.deps or ():
            if ":" not in dep.ref:
                keys.add(dep.ref)
    if len(keys) > CHUNK:
        # Large batches: one cheap query for the project's keys, then whole rows only
        # for the keys that exist (none at all for a first import).
        keys &= set(Story.objects.filter(project=plan.project).values_list("key", flat=True))
    keys_list = sorted(keys)
    for start in range(0, len(keys_list), CHUNK):
        for story in Story.objects.filter(project=plan.project, key__in=keys_list[start : start + CHUNK]):
            story.project = plan.project  # services read story.project.slug
            plan.existing[story.key] = story
    # Links of the stories this batch updates, for the comparison and the diff.
    ids = [plan.existing[item.key].pk for item in plan.items if item.deps is not None and item.key in plan.existing]
    plan.existing_deps.update(read_links(ids, reader=plan.actor))


def read_links(story_ids: Sequence[int], *, reader) -> dict[int, dict[int, Link]]:
    """story id → {target id: (type, description)} for the given stories. Links to
    stories `reader` cannot see are not part of the list an item replaces, so they are
    left out here and kept as they are (README "Visibility"); `reader=None` is the system."""
    links: dict[int, dict[int, Link]] = defaultdict(dict)
    queryset = StoryDependency.objects.all()
    if reader is not None:
        queryset = queryset.filter(depends_on__project_id__in=visible_project_ids(reader))
    for start in range(0, len(story_ids), CHUNK):
        rows = queryset.filter(story_id__in=story_ids[start : start + CHUNK]).values_list(
            "story_id", "depends_on_id", "type", "description"
        )
        for story_id, target_id, kind, description in rows:
            links[story_id][target_id] = (kind, description)
    return links


def _foreign_targets(plan: Plan) -> dict[str, int]:
    """Story ids of the dependency targets in other projects ("other-project:KEY" → id),
    in the projects the actor may see."""
    foreign: dict[str, set[str]] = defaultdict(set)
    for item in plan.items:
        for dep in item.deps or ():
            if ":" in dep.ref:
                slug, key = dep.ref.split(":", 1)
                foreign[slug].add(key)
    found: dict[str, int] = {}
    if not foreign:
        return found
    projects = {p.slug: p for p in Project.objects.filter(slug__in=list(foreign))}
    for slug, keys in foreign.items():
        other = projects.get(slug)
        if other is None or (
            plan.actor is not None and not has_project_role(plan.actor, other, ProjectMember.Role.VIEWER)
        ):
            continue  # answered exactly like a story that does not exist
        keys_list = sorted(keys)
        for start in range(0, len(keys_list), CHUNK):
            for pk, key in Story.objects.filter(project=other, key__in=keys_list[start : start + CHUNK]).values_list(
                "pk", "key"
            ):
                found[f"{slug}:{key}"] = pk
    return found


def resolve_dependencies(plan: Plan) -> None:
    """Point every dependency at a batch item or an existing story; unknown ones are errors."""
    found = _foreign_targets(plan)
    plan.labels = {pk: ref for ref, pk in found.items()}
    for story in plan.existing.values():
        plan.labels[story.pk] = story.key
    for item in plan.items:
        for dep in item.deps or ():
            if dep.ref in plan.by_key and plan.by_key[dep.ref].key not in plan.existing:
                dep.batch_index = plan.by_key[dep.ref].index
            elif dep.ref in plan.existing:
                dep.target_id = plan.existing[dep.ref].pk
            elif dep.ref in found:
                dep.target_id = found[dep.ref]
            elif dep.ref not in plan.by_key:
                plan.errors.add(
                    item.index,
                    item.key,
                    "depends_on",
                    f"Unknown dependency '{dep.ref}': no such story in this batch or in the project"
                    + (" (or you cannot see it)." if ":" in dep.ref else "."),
                )


def check_batch_cycles(plan: Plan) -> None:
    """Cycles among the batch's own `blocks` links, found before anything is written.
    Cycles through links outside the batch are caught by dependency_add."""
    graph: dict[str, list[str]] = {}
    for item in plan.items:
        if item.deps is None or item.key not in plan.by_key:
            continue
        graph[item.key] = [d.ref for d in item.deps if d.type == "blocks" and d.ref in plan.by_key]
    reported: set[str] = set()
    for cycle in _cycles(graph):
        text = " → ".join(cycle)
        for key in cycle[:-1]:
            if key not in reported:
                reported.add(key)
                plan.errors.add(plan.by_key[key].index, key, "depends_on", f"Dependency cycle: {text}.")


def _cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """The cycles an iterative depth-first search meets (each as [a, …, a])."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    found: list[list[str]] = []
    for root in graph:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, pos = stack.pop()
            if pos == 0:
                state[node] = 1
                path.append(node)
            targets = graph.get(node, [])
            if pos >= len(targets):
                state[node] = 2
                path.pop()
                continue
            stack.append((node, pos + 1))
            nxt = targets[pos]
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                stack.append((nxt, 0))
    return found


def classify(plan: Plan) -> None:
    """created (new key), updated (something differs) or unchanged, for each good item."""
    for item in plan.items:
        if item.index in plan.errors.failed:
            continue
        story = plan.existing.get(item.key)
        if not version_ok(plan, item, story):
            continue
        if story is None:
            if "title" not in item.data:
                plan.errors.add(item.index, item.key, "title", "A new story needs a title.")
            item.outcome = "created"
            continue
        item.existing = story
        item.story_id = story.pk
        item.outcome = "updated" if _differs(plan, item, story) else "unchanged"


def version_ok(plan: Plan, item: Item, story: Story | None) -> bool:
    """An item that names the version it read must match the stored one (checked again
    under the row lock when the story is written)."""
    if item.expected_version is None:
        return True
    if story is None:
        plan.errors.add(
            item.index, item.key, "version", f"Story {item.key} does not exist; leave version out to create it."
        )
        return False
    if story.version != item.expected_version:
        plan.errors.add(
            item.index,
            item.key,
            "version",
            f"Stale version {item.expected_version}: the current version is {story.version}; read the story again.",
        )
        return False
    return True


def _differs(plan: Plan, item: Item, story: Story) -> bool:
    if _fields_differ(item, story) or source_differs(item, story):
        return True
    if plan.backlog is not None and story.backlog_id != plan.backlog.pk:
        return True
    if item.status_slug is not None or (item.status is not None and item.status.pk != story.status_id):
        return True
    if item.epic_given and _epic_differs(plan, item, story):
        return True
    return item.deps is not None and links_differ(plan.existing_deps.get(story.pk, {}), item.deps)


def _fields_differ(item: Item, story: Story) -> bool:
    for name, value in item.data.items():
        if name == "backlog":
            if (value.pk if value else None) != story.backlog_id:
                return True
        elif getattr(story, name) != value:
            return True
    return False


def source_differs(item: Item, story: Story) -> bool:
    """Whether the item comes from another file (repository, path) than the story's
    source. The content hash alone is no change: it is written with the story's next
    change (an export of an edited story read back is unchanged)."""
    return item.source is not None and item.source[:2] != (story.source_repo, story.source_path)


def _epic_differs(plan: Plan, item: Item, story: Story) -> bool:
    epic = plan.epics.get(item.epic_slug) if item.epic_slug else None
    if item.epic_slug and epic is None:
        return True
    return (epic.pk if epic else None) != story.epic_id


def links_differ(current: Mapping[int, Link], deps: Sequence[Dep]) -> bool:
    """Whether setting the dependency list `deps` would change the links `current`."""
    if len(current) != len(deps):
        return True
    return any(dep.target_id is None or not same_link(current.get(dep.target_id), dep) for dep in deps)


def same_link(current: Link | None, dep: Dep) -> bool:
    if current is None:
        return False
    kind, description = current
    return kind == dep.type and (dep.description is None or dep.description == description)
